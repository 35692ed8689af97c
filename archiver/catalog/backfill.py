"""Describing, once, the items archived before the manifest kept what the catalog shows.

A manifest brought to schema version 3 holds no description (`items.catalog`) for the items
it already had, and an item recorded without one (taken over from a bucket's sidecars) has
none either. The first catalog built after that reads their sidecars, describes them as a run
would have (`describe.describe_sidecar`) and keeps the descriptions, a batch per transaction,
so that no later build reads a sidecar. An item whose sidecar cannot be read keeps none: the
catalog shows it as unreadable, and the next build tries again.

Quiet unless it takes long: a large archive upgraded gets one line saying why this catalog is
slow, the first and only time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence

from archiver.catalog.describe import describe_sidecar
from archiver.errors import ArchiveWriteError
from archiver.store.manifest import ManifestStore
from archiver.store.queries import UndescribedItem

log = logging.getLogger("archiver")

BATCH = 500  # sidecars read, then their descriptions written in one transaction
SAY_AFTER = 2.0  # seconds of reading sidecars before the user is told why


class Backfill:
    """One pass over the items the manifest does not describe, batch by batch.

    The caller reads each batch's sidecars (from a folder, or from a bucket) and gives them
    to `keep`.
    """

    def __init__(self, manifest: ManifestStore) -> None:
        self.manifest = manifest
        self.described = 0
        self._started = time.monotonic()
        self._told = False
        self.stopped: ArchiveWriteError | None = None  # why descriptions could not be kept

    def batches(self) -> Iterator[list[UndescribedItem]]:
        """The undescribed archived items, `BATCH` at a time, in key order."""
        after: tuple[str, str, str] | None = None
        while self.stopped is None and (batch := self.manifest.undescribed(after, BATCH)):
            yield batch
            after = batch[-1][:3]

    def keep(self, batch: Sequence[UndescribedItem], sidecars: Sequence[bytes | None]) -> None:
        """Keep the description of each item of `batch` whose sidecar could be read."""
        descriptions = []
        for item, data in zip(batch, sidecars, strict=True):
            text = describe_sidecar(item.kind, data) if data is not None else None
            if text is not None:
                descriptions.append((item.source, item.kind, item.item_id, text))
        try:
            self.manifest.set_catalog(descriptions)
        except ArchiveWriteError as exc:
            # A manifest that cannot be written now (a run writing it, a full disk) costs a
            # local catalog speed, not content: it reads the rest of the sidecars as it goes.
            log.debug("cannot keep the catalog's descriptions: %s", exc)
            self.stopped = exc
            return
        self.described += len(descriptions)
        self._tell()

    def _tell(self) -> None:
        if self._told or time.monotonic() - self._started < SAY_AFTER:
            return
        self._told = True
        log.warning(
            "catalog: reading the sidecars of %d more items archived by an older archiver, "
            "once; later catalogs are built from the manifest alone",
            self.manifest.undescribed_count(),
        )

"""What a run does around its job when the archive is a bucket: check, lock, publish.

- `open_bucket_items`: the bucket as the job's store, for one run (`backend.open_store`).
- `check_bucket`: a missing bucket, a denied request or a wrong endpoint is a `ConfigError`
  (exit 2) before any listing, one line naming the bucket and the store's code.
- `BucketLock`: one run per bucket prefix, across machines: `.archiver/lock` is created with a
  conditional PUT (`If-None-Match: *`), holding its holder and expiry, and rewritten while the
  run lasts. A live lock held by another is `ArchiveBusy` (exit 4); an expired one (a run
  killed with -9) is taken over. A lock that another takes during the run, or that cannot be
  renewed before it would expire, stops the run (`lost`, exit 4). A store that does not do
  conditional writes (it refuses them, or ignores their condition) gets a warning, and the
  local lock of the state folder is all there is.
- `publish_manifest`: after the run (whose `SHA256SUMS` went up through the store's
  `publish_checksums`), a consistent copy of the manifest (SQLite's backup API into a
  temporary file, then an upload) at `.archiver/manifest.sqlite3`, so that the bucket alone is
  a complete archive.

Each step runs on a short event loop of its own: the job's loop is closed by then.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import socket
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from archiver.config.settings import BucketSettings
from archiver.errors import ArchiveBusy, ArchiverError, ConfigError
from archiver.store.archivefs import archive_folder, atomic_file
from archiver.store.lock import HeldLock, busy
from archiver.store.manifest import ManifestStore
from archiver.store.multipart import error_code
from archiver.store.s3 import MISSING, BucketItems, BucketStore, with_store
from archiver.store.uploads import UploadRecords

log = logging.getLogger("archiver")

LOCK = ".archiver/lock"
MANIFEST_COPY = ".archiver/manifest.sqlite3"
LOCK_LIFETIME = 600.0  # seconds a lock lives unless renewed
RENEW_EVERY = 120.0
# What a store answers to a conditional write it does not support.
NO_CONDITIONAL = frozenset({"NotImplemented", "501", "InvalidArgument"})
# What it answers to one whose condition does not hold (an object there, or another ETag).
REFUSED = frozenset({"PreconditionFailed", "412", "ConditionalRequestConflict"})


@contextlib.asynccontextmanager
async def open_bucket_items(
    settings: BucketSettings, state_dir: Path, connections: int
) -> AsyncIterator[BucketItems]:
    """The bucket's items for a run's job; multipart uploads nobody can resume, aborted.

    The run holds the archive's lock: an upload in progress is one a killed run left, to be
    resumed if a record says how, else never to be completed.
    """
    records = UploadRecords(state_dir)
    async with BucketStore(settings, connections=connections) as bucket:
        await _abort_orphans(bucket, records)
        yield BucketItems(bucket, records)
        await _abort_orphans(bucket, records)


async def _abort_orphans(bucket: BucketStore, records: UploadRecords) -> None:
    aborted = await bucket.abort_uploads(keep=records.upload_ids())
    if aborted:
        log.info("%s: aborted %d uploads that cannot be resumed", bucket.url, aborted)


def check_bucket(settings: BucketSettings) -> None:
    """Exit 2 (a `ConfigError`) if the bucket cannot be used; before anything is listed."""
    # Few attempts: a wrong endpoint or a missing bucket is told at once, not after backoff.
    with_store(settings, lambda store: store.check_usable(), attempts=2)


class BucketLock(HeldLock):
    """Exclusive use of one bucket prefix by one run, renewed in the background.

    Renewals run on a thread of their own (the job's event loop is busy with the job). If
    the lock is lost, `lost` says why and the function given to `watch` is called, from that
    thread: the run must then stop writing.
    """

    def __init__(self, settings: BucketSettings, state_dir: Path) -> None:
        self.settings = settings
        self.holder = f"{socket.gethostname()} pid {os.getpid()}"
        self.state = _state_id(state_dir)
        self.lost: str | None = None  # why the lock is no longer ours, once it is not
        self._held = False
        self._stop = threading.Event()
        self._renewed = 0.0  # monotonic time of the last write that the store took
        self._renewer: threading.Thread | None = None
        self._watcher: Callable[[], None] | None = None
        self._guard = threading.Lock()  # `lost` and the watcher, between the two threads

    def _document(self) -> bytes:
        expires = time.time() + LOCK_LIFETIME
        document = {"holder": self.holder, "state": self.state, "expires": expires}
        return json.dumps(document).encode()

    async def _write(self, store: BucketStore, **condition: Any) -> None:
        """Write the lock on `condition` (`if_none_match`, `if_match`); store errors raised."""
        await store.put_bytes(LOCK, self._document(), **condition)
        self._renewed = time.monotonic()

    async def _take(self, store: BucketStore) -> bool:
        """True if taken; False if the store cannot do conditional writes."""
        for _ in range(2):
            try:
                await self._write(store, if_none_match=True)
                return await self._conditions_kept(store)
            except ArchiverError as exc:
                code = _code(exc)
                if code in NO_CONDITIONAL:
                    return False
                if code not in REFUSED:
                    raise
            holder, state, expires = _parse_lock(await store.read(LOCK))
            # A lock of this state folder was left by a run that is dead: the local lock,
            # held now, keeps two runs of one state folder apart.
            if state != self.state and expires > time.time():
                raise busy(store.url, holder)
            why = "of a run of this state folder" if state == self.state else "expired"
            log.warning("%s: taking over the lock of %s, %s", store.url, holder, why)
            await store.delete(LOCK)
        raise busy(store.url, None)

    async def _conditions_kept(self, store: BucketStore) -> bool:
        """Whether the store refuses a second create of the lock, as it must.

        Some stores take `If-None-Match` without a word and ignore it: the lock would then
        keep no one out, so it is removed and the run says so.
        """
        try:
            await self._write(store, if_none_match=True)
        except ArchiverError as exc:
            if _code(exc) in REFUSED:
                return True
            raise
        await store.delete(LOCK)
        return False

    def __enter__(self) -> BucketLock:
        try:
            taken = with_store(self.settings, self._take)
        except ArchiveBusy:
            raise
        except ArchiverError as exc:
            # The lock is the run's first write: a store that refuses it refuses them all.
            code = _code(exc) or str(exc)
            raise ConfigError(f"{self.settings.url}: cannot write to the bucket: {code}") from exc
        if not taken:
            log.warning(
                "%s: the store does not support conditional writes; only the local lock keeps "
                "two runs apart, so point one machine only at this prefix",
                self.settings.url,
            )
            return self
        self._held = True
        self._renewer = threading.Thread(target=self._renew, name="bucket-lock", daemon=True)
        self._renewer.start()
        return self

    def watch(self, stop: Callable[[], None] | None) -> None:
        """Call `stop` (from the renewing thread) once the lock is lost; None: no longer."""
        with self._guard:
            self._watcher = stop
            lost = self.lost
        if lost is not None and stop is not None:
            stop()

    def _lose(self, why: str) -> None:
        with self._guard:
            self.lost = why
            watcher = self._watcher
        log.debug("%s: %s", self.settings.url, why)
        if watcher is not None:
            watcher()

    def _renew(self) -> None:
        while not self._stop.wait(RENEW_EVERY):
            try:
                why = with_store(self.settings, self._renew_once)
            except Exception as exc:
                log.error("%s: could not renew the lock: %s", self.settings.url, exc)
                # Another run may take it once it has expired: stop before that can happen.
                if time.monotonic() + RENEW_EVERY - self._renewed < LOCK_LIFETIME:
                    continue
                why = f"could not renew its lock for {time.monotonic() - self._renewed:.0f} s"
            if why is not None:
                self._lose(f"{self.settings.url}: the run stopped: {why}")
                return

    async def _renew_once(self, store: BucketStore) -> str | None:
        """Renew the lock; None if done (or to be tried again), else who holds it now.

        The lock is read before it is rewritten: a store that ignores `If-Match` (or does not
        take it) would otherwise let a renewal write over another run's lock unseen.
        """
        found = await store.read_tagged(LOCK)
        if found is None:  # deleted: ours again, unless another makes it first
            try:
                await self._write(store, if_none_match=True)
                return None
            except ArchiverError as exc:
                if _code(exc) not in REFUSED:
                    raise
            found = await store.read_tagged(LOCK)
        holder, state, _ = _parse_lock(found[0] if found else None)
        if found is None or state != self.state:
            return f"another archiver run took over the lock ({holder})"
        try:
            await self._write(store, if_match=found[1])
        except ArchiverError as exc:
            code = _code(exc)
            if code in NO_CONDITIONAL:  # the read above is all the check such a store allows
                await self._write(store)
            elif code not in REFUSED | MISSING:
                raise
            # Else it changed since it was read: the next renewal, soon, says by whom.
        return None

    async def _release(self, store: BucketStore) -> None:
        """Delete the lock if it is still ours: another's (ours expired) is left alone."""
        _, state, _ = _parse_lock(await store.read(LOCK))
        if state == self.state:
            await store.delete(LOCK)

    def release(self) -> None:
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join()
        if self._held:
            self._held = False
            try:
                with_store(self.settings, self._release)
            except Exception as error:  # it expires by itself
                log.warning("%s: could not release the lock: %s", self.settings.url, error)


def _code(exc: ArchiverError) -> str:
    """The store's code behind an error of `BucketStore` ('' if it had none)."""
    return error_code(exc.__cause__) if exc.__cause__ else ""


def _parse_lock(data: bytes | None) -> tuple[str, str, float]:
    """The lock's holder, state folder id and expiry (0 if it cannot be read)."""
    try:
        document = json.loads(data or b"{}")
        holder, state = str(document.get("holder", "?")), str(document.get("state", ""))
        return holder, state, float(document.get("expires", 0))
    except (ValueError, TypeError, AttributeError):
        return "?", "", 0.0


def _state_id(state_dir: Path) -> str:
    """A random id of the state folder, made once: whose lock in the bucket is whose."""
    path = state_dir / ".archiver" / "state-id"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    made = secrets.token_hex(16)
    with (
        archive_folder(state_dir, ".archiver") as folder,
        atomic_file(folder, path.name, durable=True) as out,
    ):
        out.write(made.encode())
    return made


def uploads_in_progress(settings: BucketSettings) -> int | str:
    """How many multipart uploads are in progress under the prefix, or why it is not known."""
    try:
        return with_store(settings, lambda store: store.count_uploads(), attempts=2)
    except ArchiverError as exc:
        return str(exc)


def take_over(settings: BucketSettings, manifest: Path) -> bool:
    """Fetch the bucket's manifest copy into the empty state folder; False if it has none.

    A lost state folder then costs no download: what the copy lists is archived already.
    """
    temp = manifest.with_name(f".{manifest.name}.{os.getpid()}.tmp")

    async def fetch(store: BucketStore) -> bool:
        found = False
        with temp.open("wb") as out:
            async for chunk in store.stream(MANIFEST_COPY):
                if chunk is None:
                    return False
                out.write(chunk)
                found = True
            out.flush()
            os.fsync(out.fileno())
        return found

    try:
        if not with_store(settings, fetch):
            return False
        temp.replace(manifest)
    finally:
        temp.unlink(missing_ok=True)
    return True


def adopt_from_sidecars(settings: BucketSettings, manifest: ManifestStore) -> int:
    """Record what the bucket holds whole and the manifest does not (see `rebuild`)."""
    from archiver.store.rebuild import BucketSidecars, adopt_sidecars

    run_id = manifest.begin_run("take-over")
    adoption = with_store(
        settings, lambda store: adopt_sidecars(BucketSidecars(store), manifest, run_id)
    )
    manifest.finish_run(run_id, 0, {"adopted": adoption.adopted})
    return adoption.adopted


def publish_manifest(settings: BucketSettings, manifest: ManifestStore, state_dir: Path) -> None:
    """A consistent copy of the manifest into the bucket (the checksums went up before it)."""
    copy = state_dir / ".archiver" / f".manifest-copy.{os.getpid()}.tmp"
    try:
        source = sqlite3.connect(manifest.path)
        target = sqlite3.connect(copy)
        try:
            source.backup(target)
        finally:
            target.close()
            source.close()

        async def upload(store: BucketStore) -> None:
            upload = store.upload(MANIFEST_COPY, "application/vnd.sqlite3")
            try:
                with copy.open("rb") as stream:
                    while block := stream.read(1 << 20):
                        await upload.append(block)
                await upload.finish()
            except BaseException:
                await upload.abort()
                raise

        with_store(settings, upload)
    finally:
        copy.unlink(missing_ok=True)

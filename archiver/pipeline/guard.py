"""Telling a listing that never ends from a long one.

A service that ignores `page`, alternates two pages, or announces a billion pages of the same
tasks would keep a source listing all night, and the nightly run would never end. Each source
keeps its own stop conditions (an empty or short page, `total_page`); `ListingGuard` is the one
the job adds to every source: a listing whose last `PAGES_WITHOUT_NEW` pages brought no task it
had not already listed in this run is stopped.

"New" means new to this run, not new to the archive: a rerun lists thousands of archived,
unchanged tasks, and each of them is new to the run. The ids listed so far are kept in a Bloom
filter of fixed size (`SeenIds`), so memory stays the same however long the list: a set of the
ids would cost about 100 bytes an id, 100 MB at a million tasks.
"""

from __future__ import annotations

from archiver.errors import ListingRepeats
from archiver.sources.records import ArchiveItem, Page

# Pages in a row without a new task before the listing is taken to repeat itself. A list that
# grows at the top while it is read shifts its pages, so a page or two may hold only tasks
# already listed; ten in a row would need a page's worth of new tasks before every one of ten
# page requests. Waiting that long costs ten requests, about a second.
PAGES_WITHOUT_NEW = 10

# 2 MiB per listing source, four hashes. The guard stops a listing by mistake only if ten pages
# in a row have every id taken for one seen before: with pages of 50 ids, a chance below 1e-80
# even at ten million tasks; with pages of a single id, below 1e-10 up to three million.
FILTER_BITS = 1 << 24
HASHES = 4


class SeenIds:
    """A Bloom filter of strings: `add` tells whether a string was (almost surely) new.

    It may take a new string for one already seen (rarely, see `FILTER_BITS`), never the other
    way round. Python's `hash` is salted per process, so no service can choose ids that collide.
    """

    def __init__(self, bits: int = FILTER_BITS) -> None:
        if bits & (bits - 1):
            raise ValueError("bits must be a power of two")
        self._bits = bytearray(bits // 8)
        self._mask = bits - 1

    def add(self, key: str) -> bool:
        """Remember `key`; True if it was not there before."""
        digest = hash(key)
        position, step = digest & 0xFFFFFFFF, (digest >> 32) | 1
        bits, mask, new = self._bits, self._mask, False
        for _ in range(HASHES):
            where = position & mask
            bit = 1 << (where & 7)
            if not bits[where >> 3] & bit:
                bits[where >> 3] |= bit
                new = True
            position += step
        return new


class ListingGuard:
    """Stops one source's listing once it stops bringing tasks new to this run."""

    def __init__(self, pages: int = PAGES_WITHOUT_NEW) -> None:
        self._seen = SeenIds()
        self._limit = pages
        self._stale = 0  # pages in a row without a new task

    def check(self, page: Page) -> None:
        """Count `page` in; raise `ListingRepeats` if it ends too long a run of nothing new.

        Every task counts, whatever its state: a list may hold pages of failed or rejected tasks
        only. A record without an id is never new, since it cannot be told from another one.
        Templates come with their tasks and are not counted.
        """
        new = False
        for entry in page.items:
            if entry.id is None or (isinstance(entry, ArchiveItem) and entry.kind != "task"):
                continue
            new = self._seen.add(entry.id) or new
        self._stale = 0 if new else self._stale + 1
        if self._stale >= self._limit:
            raise ListingRepeats(
                f"page {page.number}: no task new to this run in {self._stale} pages in a row; "
                "the service seems to repeat its list, so the listing stops here"
            )

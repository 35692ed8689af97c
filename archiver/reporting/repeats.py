"""Warnings that repeat: the first few of a kind per source are printed, the rest counted.

A page of 5,000 rejected records, or a media host that fails every file, would otherwise print
a line per record into the cron mail or the log file, hundreds of megabytes a night. The run
report keeps the details (bounded, see `stats.MAX_DETAILS`); the log says how many it left out.
With `-v` every one is still logged, at debug level.
"""

from __future__ import annotations

import logging
from collections import Counter

SHOWN_PER_SOURCE = 5  # warnings of one kind printed per source and run

REJECTED = "records rejected"
FAILED = "files failed"


class RepeatedWarnings:
    """Counts warnings by (source, kind) and prints only the first `shown` of each."""

    def __init__(self, logger: logging.Logger, shown: int = SHOWN_PER_SOURCE) -> None:
        self._log = logger
        self._shown = shown
        self._counts: Counter[tuple[str, str]] = Counter()

    def warn(self, source: str, kind: str, message: str, *args: object) -> None:
        """Log `source: message % args` as a warning, at debug level once `shown` were."""
        self._counts[source, kind] += 1
        level = logging.WARNING if self._counts[source, kind] <= self._shown else logging.DEBUG
        self._log.log(level, "%s: " + message, source, *args)

    def close(self, source: str, kind: str | None = None) -> None:
        """Say how many warnings of `source` (of `kind`, else of every kind) were left out."""
        for key in [k for k in self._counts if k[0] == source and kind in (None, k[1])]:
            left_out = self._counts.pop(key) - self._shown
            if left_out > 0:
                self._log.warning(
                    "%s: and %s more %s; see the run report", source, f"{left_out:,}", key[1]
                )

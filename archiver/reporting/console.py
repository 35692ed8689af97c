"""What a person (or cron's mail) sees: log lines, progress bars and the closing summary.

On a terminal: tqdm bars and a summary. Not on a terminal: plain time-stamped log lines, and
nothing at all when nothing new happened, so a nightly cron job mails only when it matters.
Every line passes through a `Redactor`, so no configured secret is ever printed or logged.
"""

from __future__ import annotations

import errno
import io
import json
import logging
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from archiver.errors import UsageError
from archiver.reporting.redact import REDACT
from archiver.reporting.stats import RunStats

log = logging.getLogger("archiver")


class _RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return REDACT(super().format(record))


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": utc_time(record.created),
            "level": record.levelname.lower(),
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        return REDACT(json.dumps(entry, ensure_ascii=False))


def utc_time(seconds: float) -> str:
    """ISO 8601 in UTC with `Z` and milliseconds: a log line's time in any zone it is read."""
    moment = datetime.fromtimestamp(seconds, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class _TqdmHandler(logging.StreamHandler[IO[str]]):
    """Writes above the progress bars instead of through them."""

    def emit(self, record: logging.LogRecord) -> None:
        from tqdm import tqdm  # see BarProgress

        try:
            tqdm.write(self.format(record), file=self.stream)
        except Exception:
            self.handleError(record)


def setup_logging(
    *,
    verbosity: int,
    interactive: bool,
    log_file: Path | None = None,
    log_format: str = "text",
    stream: IO[str] | None = None,
) -> None:
    """Configure the `archiver` logger; `verbosity` is -1 (quiet), 0 or 1 (verbose)."""
    stream = stream or sys.stderr
    logger = logging.getLogger("archiver")
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    level = {-1: logging.ERROR, 0: logging.INFO, 1: logging.DEBUG}[max(-1, min(1, verbosity))]
    if interactive and verbosity == 0:
        level = logging.WARNING  # the bars show progress; per-item lines would drown them
    formatter: logging.Formatter
    if log_format == "json":
        formatter = _JsonFormatter()
    elif interactive:
        formatter = _RedactingFormatter("%(levelname)s: %(message)s")
    else:
        formatter = _RedactingFormatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S")
    console: logging.Handler = (
        _TqdmHandler(stream) if interactive else logging.StreamHandler(stream)
    )
    console.setFormatter(formatter)
    console.setLevel(level)
    logger.addHandler(console)
    logger.setLevel(logging.DEBUG if log_file or verbosity > 0 else level)
    if log_file is not None:
        file_handler = _log_file_handler(log_file)
        file_handler.setFormatter(
            _JsonFormatter()
            if log_format == "json"
            else _RedactingFormatter("%(asctime)s %(levelname)s %(message)s")
        )
        file_handler.setLevel(logging.DEBUG if verbosity > 0 else logging.INFO)
        logger.addHandler(file_handler)
    logger.propagate = False
    _redact_libraries(stream, formatter)


class _AppendHandler(logging.FileHandler):
    """A log file opened without following a link at its name.

    The log often lives inside the archive (`.archiver/archiver.log`), where a link planted at
    that name would have the run append to a file anywhere the run may write.
    """

    def _open(self) -> io.TextIOWrapper:
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(self.baseFilename, flags, 0o644)
        return open(fd, "a", encoding=self.encoding, errors=self.errors)


def _log_file_handler(path: Path) -> logging.FileHandler:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return _AppendHandler(path, encoding="utf-8")
    except OSError as exc:
        why = "a symbolic link; not followed" if exc.errno == errno.ELOOP else exc.strerror
        raise UsageError(f"cannot open the log file {path}: {why}") from exc


class _LibraryHandler(logging.StreamHandler[IO[str]]):
    """The root logger's handler: what asyncio, aiohttp and warnings have to say."""


def _redact_libraries(stream: IO[str], formatter: logging.Formatter) -> None:
    # Libraries log through the root logger, whose last-resort output is unredacted stderr;
    # their warnings (an exception's text among them) pass the same redaction as ours.
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _LibraryHandler)]:
        root.removeHandler(handler)
    library = _LibraryHandler(stream)
    library.setFormatter(formatter)
    library.setLevel(logging.WARNING)
    root.addHandler(library)
    logging.captureWarnings(True)


class NoProgress:
    """Progress for when nobody is watching."""

    def listed(self, count: int) -> None:
        return

    def file_done(self) -> None:
        return

    def received(self, count: int) -> None:
        return

    def close(self) -> None:
        return


class BarProgress:
    """Three tqdm bars: tasks listed, files fetched, bytes received."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        # Imported here: tqdm costs a start-up of tens of milliseconds, and a run off a
        # terminal (cron, a pipe) never shows a bar.
        from tqdm import tqdm

        # The bars vanish at the end: the summary that follows says it all.
        options: dict[str, Any] = {
            "file": stream or sys.stderr,
            "dynamic_ncols": True,
            "leave": False,
        }
        self._tasks = tqdm(desc="tasks listed", unit=" tasks", position=0, **options)
        self._files = tqdm(desc="files", unit=" files", position=1, **options)
        self._bytes = byte_bar("received", position=2, **options)

    def listed(self, count: int) -> None:
        self._tasks.update(count)

    def file_done(self) -> None:
        self._files.update(1)

    def received(self, count: int) -> None:
        self._bytes.update(count)

    def close(self) -> None:
        for bar in (self._bytes, self._files, self._tasks):
            bar.close()


def human_bytes(count: float) -> str:
    """A size in binary units, as everything archiver shows sizes: `512 B`, `17.1 MiB`.

    The catalog's page does the same in JavaScript (`formatBytes` in catalog.js).
    """
    for unit in ("B", "KiB", "MiB"):
        if count < 1024:
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} GiB"


def byte_bar(desc: str, **options: Any) -> Any:
    """A tqdm bar counting bytes in the units of `human_bytes` (tqdm's own say `16.3MB`)."""
    from tqdm import tqdm  # see BarProgress

    class ByteBar(tqdm):  # type: ignore[misc]
        @property
        def format_dict(self) -> dict[str, Any]:
            values: dict[str, Any] = super().format_dict
            rate = values.get("rate")
            values["size"] = human_bytes(values["n"])
            values["speed"] = f"{human_bytes(rate)}/s" if rate else "? B/s"
            return values

    bar_format = "{desc}: {size} [{elapsed}, {speed}]"
    return ByteBar(desc=desc, bar_format=bar_format, **options)


def summary_lines(stats: RunStats) -> list[str]:
    """The closing summary, a few lines a person reads in a glance."""
    verb = "would archive" if stats.dry_run else "archived"
    lines = [
        f"{verb} {stats.total('archived')} new tasks and {stats.total('templates_archived')} "
        f"templates, {stats.total('already_archived')} already archived, "
        f"{stats.total('failed')} failed, {stats.total('rejected')} rejected; "
        f"{human_bytes(stats.total('bytes'))} in {stats.duration:.1f} s"
    ]
    for name, s in stats.sources.items():
        waiting = ", ".join(f"{state} {n}" for state, n in sorted(s.unfinished.items()))
        line = (
            f"  {name}: listed {s.listed} ({s.succeeded} succeeded"
            + (f"; not succeeded: {waiting}" if waiting else "")
            + f"), new {s.archived}, already {s.already_archived}"
        )
        if s.updated:
            line += f", updated {s.updated}"
        if s.failed:
            line += f", failed {s.failed}"
        if s.rejected:
            line += f", rejected {s.rejected}"
            if s.rejected_again:
                line += f" ({s.rejected_again} as by the last run)"
        if s.stopped_early:
            line += ", listing stopped at known tasks"
        if s.listing_error:
            line += f"; LISTING FAILED: {s.listing_error}"
        lines.append(line)
        lines.extend(f"    failed {f['kind']} {f['id']}: {f['reason']}" for f in s.failures[:20])
        if s.failed > 20:
            lines.append(f"    ... and {s.failed - 20} more (see the run report)")
        lines.extend(
            f"    rejected record {r['id'] if r['id'] is not None else '(no id)'}: {r['reason']}"
            for r in s.rejections[:20]
        )
        if s.rejected > 20:
            lines.append(f"    ... and {s.rejected - 20} more rejected (see the run report)")
    if stats.fatal:
        lines.append(f"  stopped: {stats.fatal}")
    if stats.interrupted:
        lines.append("  interrupted: partial downloads are kept and resumed by the next run")
    return [REDACT(line) for line in lines]

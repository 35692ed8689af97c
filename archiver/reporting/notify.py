"""Telling someone how a run ended: a healthchecks.io-style ping, and Apprise notifications.

The ping follows the healthchecks.io convention: `<ping_url>/start` when a run starts, the bare
`<ping_url>` when it ends with 0, `<ping_url>/fail` otherwise, the run's summary as the body.
Apprise URLs get a message when `when` says so: on failure (exit status other than 0), on news
(something archived or failed), or always.

Delivery is best effort and bounded in time: a message that cannot be delivered is a warning,
never a change of the run's exit status, and never holds the run's end up by more than
`DEADLINE` seconds. Apprise URLs hold credentials, so a URL is only ever named by its scheme
and host, and every text sent passes the secrets' redaction.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from archiver import __version__
from archiver.config.settings import NotifySettings
from archiver.reporting.console import summary_lines
from archiver.reporting.redact import REDACT
from archiver.reporting.stats import RunStats

log = logging.getLogger("archiver")

DEADLINE = 10.0  # seconds all of a run's end messages may take together
PING_ATTEMPTS = 2
PING_RETRY_DELAY = 0.5
MAX_BODY = 10_000  # characters of summary sent (healthchecks.io keeps the first 100 kB)

MEANINGS = {
    0: "everything listed was archived",
    1: "some items failed; the next run retries them",
    2: "usage or configuration error; nothing was touched",
    3: "a source could not be listed",
    4: "another run holds the archive",
    130: "interrupted",
}


@dataclass(frozen=True)
class Outcome:
    """How a run ended, as the messages tell it."""

    exit_status: int
    lines: tuple[str, ...]  # the summary, or the one line of the error that stopped the run
    news: bool  # something archived, updated or failed

    @classmethod
    def of_run(cls, stats: RunStats) -> Outcome:
        return cls(stats.exit_status, tuple(summary_lines(stats)), stats.eventful)

    @classmethod
    def of_error(cls, exit_status: int, message: str) -> Outcome:
        return cls(exit_status, (REDACT(message),), True)


def where(url: str) -> str:
    """`scheme://host[:port]` of a URL: enough to say which it is, nothing of its credentials.

    Many Apprise schemes put a token where the host goes (`tgram://<bot token>/...`), so a
    host is named only when it looks like one (a dotted name, an address, localhost).
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return f"{urlsplit(url).scheme}://..."
    if host == "localhost" or "." in host or ":" in host:
        return f"{parts.scheme}://{host}{port}"
    return f"{parts.scheme}://..."


class Notifier:
    """Sends a run's start and end messages; collects the warnings of those that failed."""

    def __init__(self, settings: NotifySettings, *, archive: str) -> None:
        self.settings = settings
        self.archive = archive
        self.warnings: list[str] = []
        self._ended = False

    def start(self) -> None:
        """Ping `<ping_url>/start`."""
        if self.settings.ping_url:
            self._ping("/start", "", time.monotonic() + DEADLINE)

    def run_ended(self, stats: RunStats) -> list[str]:
        """Tell of a run that ran; every warning of what could not be delivered, start too."""
        self.end(Outcome.of_run(stats))
        return list(self.warnings)

    def end(self, outcome: Outcome) -> list[str]:
        """Send the end messages once (a second call does nothing); return new warnings."""
        if self._ended:
            return []
        self._ended = True
        before = len(self.warnings)
        deadline = time.monotonic() + DEADLINE
        jobs: list[Callable[[], None]] = []
        body = self._body(outcome)
        if self.settings.ping_url:
            suffix = "" if outcome.exit_status == 0 else "/fail"
            jobs.append(lambda: self._ping(suffix, body, deadline))
        if self.settings.urls and self._wanted(outcome):
            title = self._title(outcome)
            jobs.extend(
                functools.partial(self._apprise, i, url, title, body)
                for i, url in enumerate(self.settings.urls)
            )
        _run_until(jobs, deadline, self._warn)
        return self.warnings[before:]

    def _wanted(self, outcome: Outcome) -> bool:
        if self.settings.when == "always":
            return True
        if self.settings.when == "news":
            return outcome.news or outcome.exit_status != 0
        return outcome.exit_status != 0

    def _title(self, outcome: Outcome) -> str:
        meaning = MEANINGS.get(outcome.exit_status, "ended")
        return REDACT(f"archiver {self.archive}: exit {outcome.exit_status}, {meaning}")

    def _body(self, outcome: Outcome) -> str:
        text = "\n".join((f"archive: {self.archive}", *outcome.lines))
        return REDACT(text)[:MAX_BODY]

    def _ping(self, suffix: str, body: str, deadline: float) -> None:
        url = (self.settings.ping_url or "").rstrip("/") + suffix
        request = urllib.request.Request(  # noqa: S310 (an http(s) URL, checked with the config)
            url,
            data=body.encode("utf-8"),
            method="POST",
            headers={"User-Agent": f"archiver/{__version__}", "Content-Type": "text/plain"},
        )
        reason = "no time left"
        for attempt in range(PING_ATTEMPTS):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                with urllib.request.urlopen(request, timeout=min(5.0, left)) as answer:  # noqa: S310
                    answer.read(1024)
                return
            except urllib.error.HTTPError as exc:
                reason = f"HTTP {exc.code}"
            except (OSError, ValueError) as exc:
                reason = str(getattr(exc, "reason", None) or exc)
            if attempt + 1 < PING_ATTEMPTS:
                time.sleep(min(PING_RETRY_DELAY, max(0.0, deadline - time.monotonic())))
        self._warn(f"notify: ping {where(url)}{suffix or ' (success)'} failed: {reason}")

    def _apprise(self, index: int, url: str, title: str, body: str) -> None:
        import apprise  # the optional extra; the config loader has checked it is there

        # Apprise logs the URLs it fails with; ours says which by scheme and host only.
        logging.getLogger("apprise").setLevel(logging.CRITICAL)
        name = f"notify.urls[{index}] ({where(url)})"
        sender = apprise.Apprise()
        if not sender.add(url):
            self._warn(f"{name}: not a URL Apprise can use")
            return
        if not sender.notify(body=body, title=title):
            self._warn(f"{name}: could not deliver the notification")

    def _warn(self, message: str) -> None:
        message = REDACT(message)
        self.warnings.append(message)
        log.warning("%s", message)


def _run_until(
    jobs: list[Callable[[], None]], deadline: float, warn: Callable[[str], None]
) -> None:
    """Run `jobs` side by side; stop waiting at `deadline` (the rest are left behind)."""

    def guarded(job: Callable[[], None]) -> None:
        try:
            job()
        except Exception as exc:  # a notifier's bug must not print a traceback into cron mail
            warn(f"notify: unexpected error: {type(exc).__name__}: {exc}")

    threads = [
        threading.Thread(target=guarded, args=(job,), daemon=True, name="notify") for job in jobs
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    late = sum(thread.is_alive() for thread in threads)
    if late:
        warn(f"notify: {late} message(s) not delivered within {DEADLINE:.0f} s; left behind")

"""Where items are archived: in the run's own process, or spread over download processes.

For thousands of small files a run is bound by one core: each file costs some hundreds of
microseconds of Python (the HTTP request, the hash, creating and renaming the file, the
sidecar). `ProcessPool` hands items to `download_processes` `archiver.worker` processes and
keeps for the run only the listing, the statistics and the manifest; they start with the
first item to fetch, so a run with nothing new starts none. `LocalRunner` does the same work
in the run's own process (the default, `download_processes: 0`). On two cores the processes
measured about 13 % faster for small files, for a third more CPU time and some 40 MB of
memory each (docs/benchmarks.md); on a network slower than loopback they gain nothing.

Either way an item is archived by `archiver.itemwork.archive_item`, and the run records it
only once the result is back: a download process that dies loses no recorded work, and its
finished but unrecorded files are adopted by the next run like those of a killed run.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import sys
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, Protocol, Self

import archiver
from archiver import errors, frames
from archiver.errors import ArchiverError, DownloadProcessLost
from archiver.http import HttpClient
from archiver.itemwork import ItemLimits, ItemResult, ItemTask, archive_item
from archiver.worker import WorkerSetup

log = logging.getLogger("archiver")

STOP_WAIT = 30.0  # seconds a download process gets to settle its files once told to stop


class ItemRunner(Protocol):
    """Archives one item and says what it did."""

    async def archive(self, task: ItemTask) -> ItemResult: ...


class LocalRunner:
    """Archives items in this process, with the run's own HTTP client."""

    def __init__(
        self, http: HttpClient, limits: ItemLimits, received: Callable[[str, int], None]
    ) -> None:
        self.http = http
        self.limits = limits
        self.received = received

    async def archive(self, task: ItemTask) -> ItemResult:
        def count(n: int) -> None:
            self.received(task.source, n)

        return await archive_item(self.http, task, self.limits, count)


class _Child:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.waiting: dict[int, asyncio.Future[ItemResult]] = {}
        self.lost: str | None = None
        self.reader: asyncio.Task[None] | None = None

    def send(self, message: tuple[object, ...]) -> None:
        stdin = self.process.stdin
        if stdin is not None and not stdin.is_closing():
            stdin.write(frames.encode(message))


class ProcessPool:
    """Download processes that archive the run's items; use with `async with`."""

    def __init__(
        self,
        count: int,
        setup: WorkerSetup,
        received: Callable[[str, int], None],
        keep_fds: Sequence[int] = (),
    ) -> None:
        self.count = count
        self.setup = setup
        self.received = received
        # The archive's lock goes with them: it is held until the last of them has exited,
        # so no next run can start while one still settles a file.
        self.keep_fds = tuple(keep_fds)
        self._children: list[_Child] = []
        self._numbers = itertools.count()
        self._closing = False
        self._starting = asyncio.Lock()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._stop()

    async def archive(self, task: ItemTask) -> ItemResult:
        if not self._children:
            await self._start_all()
        child = min(self._children, key=lambda c: len(c.waiting))
        if child.lost is not None:
            raise DownloadProcessLost(child.lost)
        number = next(self._numbers)
        answer: asyncio.Future[ItemResult] = asyncio.get_running_loop().create_future()
        child.waiting[number] = answer
        child.send(("item", number, task))
        try:
            return await answer
        except asyncio.CancelledError:
            child.send(("cancel", number))  # it keeps what arrived, for the next run
            raise
        finally:
            child.waiting.pop(number, None)

    async def _start_all(self) -> None:
        """Start the processes, on the first item: a run with nothing to fetch starts none."""
        async with self._starting:
            if self._children or self._closing:
                return
            started = await asyncio.gather(
                *(self._start() for _ in range(self.count)), return_exceptions=True
            )
            self._children = [c for c in started if isinstance(c, _Child)]
            failed = next((e for e in started if isinstance(e, BaseException)), None)
            if failed is not None:
                raise DownloadProcessLost(f"cannot start a download process: {failed}")

    async def _start(self) -> _Child:
        package_parent = os.path.dirname(os.path.dirname(archiver.__file__))  # noqa: PTH120
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_parent, env.get("PYTHONPATH")]))
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "archiver.worker",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            pass_fds=self.keep_fds,
            env=env,
        )
        child = _Child(process)
        child.send(("setup", self.setup))
        child.reader = asyncio.create_task(self._read(child))
        return child

    async def _read(self, child: _Child) -> None:
        stdout = child.process.stdout
        assert stdout is not None
        try:
            while (message := await frames.read(stdout)) is not None:
                self._take(child, message)
        except (ValueError, EOFError, OSError) as exc:
            log.debug("a download process sent something unreadable: %s", exc)
        status = await child.process.wait()
        if not self._closing or child.waiting:
            child.lost = f"a download process ended unexpectedly (exit status {status})"
        for answer in child.waiting.values():
            if not answer.done():
                answer.set_exception(DownloadProcessLost(child.lost or "stopped"))

    def _take(self, child: _Child, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "bytes":
            counts = message[1]
            assert isinstance(counts, dict)
            for source, count in counts.items():
                self.received(source, count)
        elif kind == "log":
            level, text = message[1], message[2]
            assert isinstance(level, int)
            log.log(level, "%s", text)
        elif kind in ("done", "error", "crash"):
            answer = child.waiting.get(message[1])
            if answer is None or answer.done():
                return
            if kind == "done":
                answer.set_result(message[2])
            elif kind == "error":
                answer.set_exception(_rebuild(str(message[2]), str(message[3])))
            else:
                log.debug("a download process failed:\n%s", message[2])
                last = str(message[2]).strip().splitlines()[-1:] or ["?"]
                answer.set_exception(RuntimeError(f"in a download process: {last[0]}"))

    async def _stop(self) -> None:
        """Close every child's stdin (it settles and exits), wait, and kill a stuck one.

        Cancelled while waiting (a second Ctrl-C), it kills them all and is cancelled still.
        """
        self._closing = True
        for child in self._children:
            stdin = child.process.stdin
            if stdin is not None and not stdin.is_closing():
                stdin.close()
        try:
            for child in self._children:
                try:
                    await asyncio.wait_for(asyncio.shield(child.process.wait()), STOP_WAIT)
                except TimeoutError:
                    log.warning("a download process did not stop in %.0f s; killed", STOP_WAIT)
                    _kill(child)
        except asyncio.CancelledError:
            for child in self._children:
                _kill(child)
            raise
        finally:
            for child in self._children:
                await child.process.wait()
                if child.reader is not None:
                    with contextlib.suppress(Exception):
                        await child.reader


def _kill(child: _Child) -> None:
    if child.process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            child.process.kill()


def _rebuild(name: str, message: str) -> Exception:
    """The error a download process raised, as this process's class of that name."""
    cls = getattr(errors, name, None)
    if isinstance(cls, type) and issubclass(cls, ArchiverError):
        with contextlib.suppress(TypeError):  # one that needs more than a message
            return cls(message)
    return ArchiverError(message)

"""A download process: archives the items its run sends it (`python -m archiver.worker`).

`archiver.pool` starts a few of these so that the work that grows with the number of files
(HTTP, hashing, writing files and sidecars) spreads over the machine's cores. Messages come
on stdin and go back on stdout (`archiver.frames`); logging goes back as messages too, so the
run's own log settings and redaction apply to it. The process knows no credential: media
requests carry none.

It ignores SIGINT and SIGTERM, which reach the whole process group: the run decides, and
cancels what is in flight or closes stdin. At the end of stdin, whatever is still in flight
is cancelled (its `.part` files kept for the next run) and the process exits.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import signal
import sys
import traceback
from collections import Counter
from dataclasses import dataclass
from typing import Any

from archiver import frames
from archiver.errors import ArchiverError
from archiver.http import HttpClient
from archiver.itemwork import ItemLimits, ItemTask, archive_item
from archiver.settings import HttpSettings

BYTES_EVERY = 0.2  # seconds between reports of bytes received, for the progress bar


@dataclass(frozen=True, slots=True)
class WorkerSetup:
    """The first message to a download process."""

    limits: ItemLimits
    http: HttpSettings
    bandwidth_limit: int  # this process's share of the run's limit; 0 = none
    log_level: int


class _Channel:
    """The way back to the run."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.received: Counter[str] = Counter()

    def send(self, message: tuple[Any, ...]) -> None:
        if not self.writer.is_closing():
            self.writer.write(frames.encode(message))

    def flush_bytes(self) -> None:
        if self.received:
            self.send(("bytes", dict(self.received)))
            self.received.clear()


class _Forward(logging.Handler):
    """Sends log lines to the run, which writes them where its own go."""

    def __init__(self, channel: _Channel) -> None:
        super().__init__()
        self.channel = channel

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.channel.send(("log", record.levelno, record.getMessage()))
        except Exception:
            self.handleError(record)


async def _serve(reader: asyncio.StreamReader, channel: _Channel) -> None:
    first = await frames.read(reader)
    if first is None:
        return
    setup: WorkerSetup = first[1]
    log = logging.getLogger("archiver")
    log.handlers[:] = [_Forward(channel)]
    log.setLevel(setup.log_level)
    log.propagate = False
    in_flight: dict[int, asyncio.Task[None]] = {}
    async with HttpClient(setup.http, bandwidth_limit=setup.bandwidth_limit) as http:
        ticker = asyncio.create_task(_report_bytes(channel))
        try:
            while (message := await frames.read(reader)) is not None:
                if message[0] == "item":
                    _, number, task = message
                    job = asyncio.create_task(_archive(http, number, task, setup, channel))
                    in_flight[number] = job
                    job.add_done_callback(functools.partial(_forget, in_flight, number))
                elif message[0] == "cancel" and message[1] in in_flight:
                    in_flight[message[1]].cancel()
        finally:
            # The run is over, or stopping: nothing more will be asked.
            for job in list(in_flight.values()):
                job.cancel()
            await asyncio.gather(*in_flight.values(), return_exceptions=True)
            ticker.cancel()
            channel.flush_bytes()


def _forget(in_flight: dict[int, asyncio.Task[None]], number: int, _: object) -> None:
    in_flight.pop(number, None)


async def _archive(
    http: HttpClient, number: int, task: ItemTask, setup: WorkerSetup, channel: _Channel
) -> None:
    def received(count: int) -> None:
        channel.received[task.source] += count

    try:
        result = await archive_item(http, task, setup.limits, received)
    except asyncio.CancelledError:
        channel.send(("cancelled", number))
        raise
    except ArchiverError as exc:
        channel.send(("error", number, type(exc).__name__, str(exc)))
    except Exception:
        channel.send(("crash", number, traceback.format_exc()))
    else:
        channel.send(("done", number, result))


async def _report_bytes(channel: _Channel) -> None:
    while True:
        await asyncio.sleep(BYTES_EVERY)
        channel.flush_bytes()


async def _main(protocol_out: int) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(0, "rb", buffering=0)
    )
    transport, protocol = await loop.connect_write_pipe(
        lambda: asyncio.streams.FlowControlMixin(), os.fdopen(protocol_out, "wb", buffering=0)
    )
    writer = asyncio.StreamWriter(transport, protocol, None, loop)
    try:
        await _serve(reader, _Channel(writer))
        await writer.drain()
    except (BrokenPipeError, ConnectionResetError):
        return  # the run has gone: nobody is left to tell
    finally:
        writer.close()


def main() -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # The messages own stdout: a stray print goes to stderr instead of into a message.
    protocol_out = os.dup(1)
    os.dup2(2, 1)
    asyncio.run(_main(protocol_out))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`python -m archiver` is the same as the `archiver` command, whose entry point this is.

Loading the command's modules takes tens of milliseconds, and a Ctrl-C then would end in a
`KeyboardInterrupt` traceback. So the first thing the entry point does is hold SIGINT and
SIGTERM back; once the command's own handling of them is in place (a `KeyboardInterrupt` that
`main` turns into 130), a signal that came meanwhile is let through and ends the process
quietly with 130, like one that comes later.
"""

import contextlib
import logging
import os
import signal
import sys

HELD = {signal.SIGINT, signal.SIGTERM}


def entry_point() -> None:
    """The `archiver` console script."""
    signal.pthread_sigmask(signal.SIG_BLOCK, HELD)
    code = 130
    try:
        try:
            try:
                from archiver import interrupts
                from archiver.cli import main

                # Until a run's loop takes them, both raise KeyboardInterrupt, remembered in
                # case one strikes inside a finalizer, where Python would drop it.
                interrupts.install()
            finally:
                signal.pthread_sigmask(signal.SIG_UNBLOCK, HELD)  # a held signal strikes here
            code = main()
        finally:
            # The outcome is decided: a late signal would only turn it into a traceback.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
    except KeyboardInterrupt:
        pass  # a signal that struck after `main` returned: the outcome stands
    if code == 130:
        _leave_interrupted()
    sys.exit(code)


def _leave_interrupted() -> None:
    """Exit 130 now, with everything written out.

    CPython remembers a `KeyboardInterrupt` that passed through code made by `exec` from text
    (a dataclass being made while a module loads) and, under `python -m`, ends the process by
    SIGINT at exit even though the interrupt was handled: the caller would see a kill by a
    signal instead of our 130.
    """
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(130)


if __name__ == "__main__":
    entry_point()

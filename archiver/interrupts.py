"""SIGINT and SIGTERM before a run's loop takes them: raised as `KeyboardInterrupt`, and remembered.

Until `run_cancellable` puts the event loop's handlers in place, a signal raises
`KeyboardInterrupt` wherever the main thread is. Python drops an exception raised inside a
finalizer (an object's `__del__`, a generator closed by the garbage collector) with a line on
stderr, so a signal that struck there would be lost, and a run would go on to wait on its
listing until stopped some other way. Remembered here, it cancels the run as soon as the loop
starts (`pending`), and the dropped exception makes no noise.
"""

from __future__ import annotations

import signal
import sys
from types import FrameType
from typing import Any

_seen = False


def install() -> None:
    """Both signals raise `KeyboardInterrupt` and are remembered; one dropped stays quiet."""
    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)
    fallback = sys.unraisablehook

    def quiet(unraisable: Any) -> None:
        if unraisable.exc_type is KeyboardInterrupt and _seen:
            return  # a signal that struck in a finalizer: `pending` acts on it
        fallback(unraisable)

    sys.unraisablehook = quiet


def interrupt(signum: int, frame: FrameType | None) -> None:
    global _seen
    _seen = True
    raise KeyboardInterrupt


def pending() -> bool:
    """Whether a signal came before the run's loop took the signals over."""
    return _seen

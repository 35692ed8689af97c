"""Messages between a run and its download processes: length-prefixed pickles over a pipe.

Both ends are this package, started by the same run, so pickle is safe here and carries the
dataclasses as they are. A message is a tuple whose first element names its kind.
"""

from __future__ import annotations

import asyncio
import pickle
import struct
from typing import Any

_LENGTH = struct.Struct("!I")
MAX_FRAME = 1 << 28  # a sanity bound: an item's record and files, never near this


def encode(message: tuple[Any, ...]) -> bytes:
    """One message as bytes for the pipe."""
    body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return _LENGTH.pack(len(body)) + body


async def read(reader: asyncio.StreamReader) -> tuple[Any, ...] | None:
    """The next message, or None at the end of the stream (the other end has gone)."""
    try:
        head = await reader.readexactly(_LENGTH.size)
        (size,) = _LENGTH.unpack(head)
        if size > MAX_FRAME:
            raise ValueError(f"a message of {size} bytes")
        body = await reader.readexactly(size)
    except asyncio.IncompleteReadError:
        return None
    message = pickle.loads(body)  # noqa: S301 - written by this package's other end
    if not isinstance(message, tuple) or not message:
        raise ValueError("not a message")
    return message

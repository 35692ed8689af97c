"""Responses on the wire, including the broken ones: error pages, cut bodies, dropped sockets.

`fault_response` answers for the fault kinds that replace the service's answer outright (a
proxy's 502 page, S3's expiry error, a 429, a redirect, a body that is not JSON). `send_body`
streams a body the server has promised in full, and is where `truncate`, `reset` and `stall`
really break the connection, so a client sees what it would see from a failing network.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import socket
import struct
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any
from xml.sax.saxutils import escape

from aiohttp import web

from archiver.standin.faults import Fault

WRITE_SIZE = 16 * 1024
STALL_SECONDS = 3600.0
_DEFAULT_BAD_JSON = '{"code": 200, "msg": "SUCCESS", "data": [{"id": 141, "taskId": '


def json_response(payload: Any, status: int = 200) -> web.Response:
    """A JSON answer with raw UTF-8, as the services send it (Chinese messages unescaped)."""
    return web.Response(
        status=status,
        body=json.dumps(payload, ensure_ascii=False).encode(),
        content_type="application/json",
        charset="utf-8",
    )


def error_page(status: int) -> web.Response:
    """The HTML error page a reverse proxy in front of the service would send."""
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Error"
    html = (
        f"<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n"
        f"<center><h1>{status} {reason}</h1></center>\r\n<hr><center>nginx</center>\r\n"
        "</body>\r\n</html>\r\n"
    )
    return web.Response(status=status, text=html, content_type="text/html")


def s3_error(status: int, code: str, message: str, **details: str) -> web.Response:
    """An S3 error document (`<Error><Code>...`), as the bucket sends it."""
    extra = "".join(f"<{k}>{escape(v)}</{k}>" for k, v in details.items())
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{escape(message)}</Message>{extra}"
        f"<RequestId>{secrets.token_hex(8).upper()}</RequestId>"
        f"<HostId>{secrets.token_urlsafe(48)}</HostId></Error>"
    )
    return web.Response(status=status, body=xml.encode(), content_type="application/xml")


def fault_response(fault: Fault) -> web.Response | None:
    """The answer of a fault that stands in for the service's own; None for other kinds."""
    if fault.kind == "http_status":
        return error_page(int(fault.number(500)))
    if fault.kind == "expired":
        now = datetime.now(UTC)
        return s3_error(
            403,
            "AccessDenied",
            "Request has expired",
            **{"X-Amz-Expires": "3600", "Expires": f"{now:%Y-%m-%dT%H:%M:%SZ}"},
            ServerTime=f"{now:%Y-%m-%dT%H:%M:%SZ}",
        )
    if fault.kind == "retry_after":
        response = error_page(429)
        # A string goes out as given, so tests can send the HTTP-date form too.
        value = fault.value if isinstance(fault.value, str) else int(fault.number(1))
        response.headers["Retry-After"] = str(value)
        return response
    if fault.kind == "redirect":
        return web.Response(status=302, headers={"Location": str(fault.value)})
    if fault.kind == "bad_json":
        body = _DEFAULT_BAD_JSON if fault.value is None else str(fault.value)
        return web.Response(text=body, content_type="application/json")
    return None


async def send_body(
    request: web.Request,
    response: web.StreamResponse,
    chunks: Iterable[bytes],
    *,
    fault: Fault | None = None,
    on_sent: Callable[[int], None] | None = None,
    closing: asyncio.Event | None = None,
) -> web.StreamResponse:
    """Send `response` (its Content-Length set) and stream `chunks` as its body.

    With a `truncate`, `reset` or `stall` fault, only `fault.value` bytes (default: half the
    promised length) are sent; then the connection is closed, reset, or left hanging until
    the client gives up or the stand-in stops. A client that hangs up is not an error here.
    """
    length = response.content_length or 0
    cut = None
    if fault is not None and fault.kind in ("truncate", "reset", "stall"):
        cut = min(int(fault.number(length // 2)), max(length - 1, 0))
    try:
        await response.prepare(request)
        sent = 0
        for chunk in _pieces(chunks):
            if cut is not None and sent + len(chunk) > cut:
                chunk = chunk[: cut - sent]
            if chunk:
                await response.write(chunk)
                sent += len(chunk)
                if on_sent is not None:
                    on_sent(len(chunk))
            if cut is not None and sent >= cut:
                break
        if fault is not None and cut is not None:
            await _break_connection(request, fault.kind, closing)
    except ConnectionError:
        pass  # the client hung up: aiohttp notices on its own
    return response


def _pieces(chunks: Iterable[bytes]) -> Iterable[bytes]:
    # Small writes, so that a cut lands where it was asked and a stall holds back the rest.
    for chunk in chunks:
        for start in range(0, len(chunk), WRITE_SIZE):
            yield chunk[start : start + WRITE_SIZE]


async def _break_connection(request: web.Request, kind: str, closing: asyncio.Event | None) -> None:
    transport = request.transport
    if transport is None:
        return
    await _flushed(request)
    if kind == "stall":
        event = closing or asyncio.Event()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), STALL_SECONDS)
    elif kind == "reset":
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # Linger 0: close() sends an RST instead of a FIN, i.e. "connection reset by peer".
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    if request.transport is not None:
        request.transport.close()


async def _flushed(request: web.Request) -> None:
    # The part of the body that was promised must really leave before the connection breaks.
    for _ in range(200):
        transport = request.transport
        if transport is None or transport.get_write_buffer_size() == 0:
            break
        await asyncio.sleep(0.005)
    await asyncio.sleep(0.02)

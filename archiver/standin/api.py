"""The API host: the video task history, and Chanjing's token endpoint and its four lists.

Chanjing's lists are the lip-sync videos, the synthesized videos (`video_list`, which answers
with capitalised `List` and `PageInfo`, as the real one does), the custom avatars and the AI
creations (one `type` per request: 3 images, 4 videos, at most 50 a page).

Each handler reads and records the request first, then gives a matching fault the chance to
answer instead (a proxy's error page, a wrong code, a cut body); only then does the service
itself judge the request, in the order the real one does: Chanjing's gateway counts the
request against QPS 10, then the token is checked, then the parameters.

Chanjing tokens behave like the real ones: minting one for an app id invalidates the app's
previous token (the ready token given to the stand-in counts as the current token of the
configured app id), and a token is refused once its `expire_in` has passed.
"""

from __future__ import annotations

import asyncio
import json
import math
import secrets
import time
from collections import deque
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from archiver.standin import wire
from archiver.standin.dataset import Dataset, Service
from archiver.standin.faults import Fault, Faults
from archiver.standin.stats import RecordedRequest, Stats

TOKEN_LIFETIME = 86_400
VTH_MESSAGES = {200: "SUCCESS", 401: "unauthorized", 510: "系统异常", 800: "参数错误"}
CHANJING_MESSAGES = {
    0: "success",
    10400: "AccessToken验证失败",
    40000: "参数错误",
    40001: "超出QPS限制",
    50000: "系统内部错误",
}
WRONG_APP_MESSAGE = "app_id或secret_key错误"
AI_TYPES = (3, 4)
AI_MAX_PAGE_SIZE = 50
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def trace_id() -> str:
    """A fresh Chanjing trace id (32 hex digits)."""
    return secrets.token_hex(16)


def positive_int(value: Any, *, text_ok: bool) -> int | None:
    """`value` as a positive int, or None; digits in a string count only for form fields."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value > 0 else None
    if text_ok and isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value) or None
    return None


async def read_params(request: web.Request) -> tuple[dict[str, Any] | None, str]:
    """The request's parameters and how they came: `json`, `form`, `query` or `none`.

    The parameters are None when the body cannot be read as what it claims to be.
    """
    if request.content_type.startswith("multipart/"):
        return {k: v for k, v in (await request.post()).items()}, "form"
    raw = await request.read()
    if request.content_type in _FORM_TYPES:
        try:
            return dict(parse_qsl(raw.decode(), keep_blank_values=True)), "form"
        except UnicodeDecodeError:
            return None, "form"
    if not raw.strip():
        if request.query:
            return dict(request.query), "query"
        return {}, "none"
    try:
        parsed = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None, "json"
    return (parsed if isinstance(parsed, dict) else None), "json"


def reshape(service: Service, payload: dict[str, Any], shape: str) -> dict[str, Any]:
    """`payload` with its `data` bent into the wrong shape named by a `wrong_shape` fault."""
    data = payload.get("data")
    key = "List" if isinstance(data, dict) and "List" in data else "list"  # video_list's casing
    if shape == "data_null":
        payload["data"] = None
    elif shape == "data_string":
        payload["data"] = "SUCCESS"
    elif shape == "list_object":
        # The opposite container: vth's list becomes an object, Chanjing's object a list.
        payload["data"] = {"list": data} if service == "vth" else data[key] if data else []
    elif shape == "items_not_objects":
        junk = [141, "153", None, ["id"]]
        if service == "vth":
            payload["data"] = junk
        elif isinstance(data, dict):
            data[key] = junk
    return payload


class ApiSite:
    """The aiohttp application of the API host, and the state of its tokens and QPS window."""

    def __init__(
        self,
        dataset: Dataset,
        faults: Faults,
        stats: Stats,
        closing: asyncio.Event,
        *,
        vth_token: str,
        chanjing_apps: dict[str, str],
        chanjing_access_token: str | None,
        qps_limit: int,
    ) -> None:
        self.dataset = dataset
        self.faults = faults
        self.stats = stats
        self.closing = closing
        self.vth_token = vth_token
        self.chanjing_apps = dict(chanjing_apps)
        self.qps_limit = qps_limit
        self._tokens: dict[str, tuple[str | None, float]] = {}  # token -> (app id, expiry)
        self.current_tokens: dict[str, str] = {}  # app id -> its one valid minted token
        self._window: deque[float] = deque()
        if chanjing_access_token is not None:
            app_id = next(iter(self.chanjing_apps), None)
            self._tokens[chanjing_access_token] = (app_id, math.inf)
            if app_id is not None:
                self.current_tokens[app_id] = chanjing_access_token

    def app(self) -> web.Application:
        """A new application serving both services' APIs."""
        app = web.Application()
        app.router.add_post("/videoTaskHistory", self.video_task_history)
        app.router.add_post("/open/v1/access_token", self.access_token)
        app.router.add_post("/open/v1/video_lip_sync/list", self.lip_sync_list)
        app.router.add_post("/open/v1/video_list", self.video_list)
        app.router.add_post("/open/v1/list_customised_person", self.avatar_list)
        app.router.add_post("/open/v1/ai_creation/task/page", self.ai_creation_list)
        return app

    def expire_tokens(self) -> None:
        """Let every Chanjing token expire now, the ready one included."""
        self._tokens.clear()
        self.current_tokens.clear()

    # -- handlers ------------------------------------------------------------------------

    async def video_task_history(self, request: web.Request) -> web.StreamResponse:
        """`POST /videoTaskHistory`: one page of the face-swap task history."""
        params, encoding = await self._arrive(request)
        self.stats.vth_encodings[encoding] += 1
        text_ok = encoding in ("form", "query")
        page = positive_int((params or {}).get("page"), text_ok=text_ok)
        size = positive_int((params or {}).get("pageSize"), text_ok=text_ok)
        fault = self.faults.take(request.path, page)
        if fault is not None and (early := await self._early("vth", fault)) is not None:
            return early
        if request.headers.get("Authorization") != self.vth_token:
            return wire.json_response({"code": 401, "msg": VTH_MESSAGES[401]}, status=401)
        if page is None or size is None:
            return wire.json_response({"code": 800, "msg": VTH_MESSAGES[800], "data": None})
        data = self.dataset.page("vth", page, size)
        payload = {"code": 200, "msg": "SUCCESS", "data": data}
        return await self._send(request, "vth", payload, fault)

    async def access_token(self, request: web.Request) -> web.StreamResponse:
        """`POST /open/v1/access_token`: a new token for an app id, the old one revoked."""
        over_limit = self._count_arrival()
        params, _ = await self._arrive(request)
        fault = self.faults.take(request.path)
        if fault is not None and (early := await self._early("chanjing", fault)) is not None:
            return early
        if over_limit:
            return self._chanjing_error(40001)
        app_id = (params or {}).get("app_id")
        secret = (params or {}).get("secret_key")
        if not isinstance(app_id, str) or not isinstance(secret, str) or not app_id:
            return self._chanjing_error(40000)
        if self.chanjing_apps.get(app_id) != secret:
            return self._chanjing_error(10400, WRONG_APP_MESSAGE)
        token = secrets.token_hex(16)
        expires = int(time.time()) + TOKEN_LIFETIME
        previous = self.current_tokens.get(app_id)
        if previous is not None:
            self._tokens.pop(previous, None)
        self._tokens[token] = (app_id, expires)
        self.current_tokens[app_id] = token
        self.stats.mints[app_id] += 1
        data = {"access_token": token, "expire_in": expires}
        payload = {"trace_id": trace_id(), "code": 0, "msg": "success", "data": data}
        return await self._send(request, "chanjing", payload, fault)

    async def lip_sync_list(self, request: web.Request) -> web.StreamResponse:
        """`POST /open/v1/video_lip_sync/list`: one page of lip-sync videos."""
        return await self._chanjing_list(request, "chanjing")

    async def video_list(self, request: web.Request) -> web.StreamResponse:
        """`POST /open/v1/video_list`: one page of synthesized videos, capitalised keys."""
        return await self._chanjing_list(request, "cj_video", capitalised=True)

    async def avatar_list(self, request: web.Request) -> web.StreamResponse:
        """`POST /open/v1/list_customised_person`: one page of custom avatars."""
        return await self._chanjing_list(request, "cj_avatar")

    async def ai_creation_list(self, request: web.Request) -> web.StreamResponse:
        """`POST /open/v1/ai_creation/task/page`: one page of AI images (3) or videos (4)."""
        return await self._chanjing_list(request, "cj_ai", max_size=AI_MAX_PAGE_SIZE)

    async def _chanjing_list(
        self,
        request: web.Request,
        service: Service,
        *,
        capitalised: bool = False,
        max_size: int | None = None,
    ) -> web.StreamResponse:
        over_limit = self._count_arrival()
        params, _ = await self._arrive(request)
        raw_page = (params or {}).get("page")
        raw_size = (params or {}).get("page_size")
        page = 1 if raw_page is None else positive_int(raw_page, text_ok=False)
        size = 10 if raw_size is None else positive_int(raw_size, text_ok=False)
        fault = self.faults.take(request.path, page)
        if fault is not None and (early := await self._early("chanjing", fault)) is not None:
            return early
        if over_limit:
            return self._chanjing_error(40001)
        if not self._token_valid(request.headers.get("access_token")):
            return self._chanjing_error(10400)
        if params is None or page is None or size is None:
            return self._chanjing_error(40000)
        if max_size is not None and size > max_size:
            return self._chanjing_error(40000)
        if service == "cj_ai":
            kind = params.get("type")
            if kind not in AI_TYPES or isinstance(kind, bool):
                return self._chanjing_error(40000)  # `type` is required
            everything = self.dataset.ai_list(kind)
            rows, total = everything[(page - 1) * size : page * size], len(everything)
        else:
            rows, total = self.dataset.page(service, page, size), self.dataset.count(service)
        info = {
            "page": page,
            "size": size,
            "total_count": total,
            "total_page": math.ceil(total / size),
        }
        if capitalised:
            data: dict[str, Any] = {"List": rows, "PageInfo": info}
        else:
            data = {"list": rows, "page_info": info}
        if service == "cj_ai":
            data["total"] = total
        payload = {"trace_id": trace_id(), "code": 0, "msg": "success", "data": data}
        return await self._send(request, "chanjing", payload, fault)

    # -- internals -----------------------------------------------------------------------

    async def _arrive(self, request: web.Request) -> tuple[dict[str, Any] | None, str]:
        arrived = time.monotonic()
        params, encoding = await read_params(request)
        self.stats.record(
            RecordedRequest(
                site="api",
                method=request.method,
                path=request.path,
                query=request.query_string,
                headers=tuple(request.headers.items()),
                body=params,
                encoding=encoding,
                at=arrived,
            )
        )
        return params, encoding

    def _count_arrival(self) -> bool:
        """Note a Chanjing request; True if it is one too many for the QPS window."""
        now = time.monotonic()
        self.stats.chanjing_arrivals.append(now)
        window = self._window
        while window and now - window[0] >= 1.0:
            window.popleft()
        window.append(now)
        over = self.qps_limit > 0 and len(window) > self.qps_limit
        if over:
            self.stats.qps_violations += 1
        return over

    def _token_valid(self, token: str | None) -> bool:
        entry = self._tokens.get(token or "")
        return entry is not None and time.time() < entry[1]

    def _chanjing_error(self, code: int, msg: str | None = None) -> web.Response:
        message = msg or CHANJING_MESSAGES.get(code, "error")
        return wire.json_response({"trace_id": trace_id(), "code": code, "msg": message})

    async def _early(self, service: Service, fault: Fault) -> web.StreamResponse | None:
        """The fault's answer in place of the service's, or None to go on (maybe later)."""
        if fault.kind == "slow":
            await asyncio.sleep(fault.number(1.0))
            return None
        if fault.kind == "api_code":
            code = int(fault.number(0))
            if service == "vth":
                msg = VTH_MESSAGES.get(code, "error")
                return wire.json_response({"code": code, "msg": msg, "data": None})
            return self._chanjing_error(code)
        return wire.fault_response(fault)

    async def _send(
        self, request: web.Request, service: Service, payload: dict[str, Any], fault: Fault | None
    ) -> web.StreamResponse:
        if fault is not None and fault.kind == "wrong_shape":
            payload = reshape(service, payload, str(fault.value))
        body = json.dumps(payload, ensure_ascii=False).encode()
        response = web.StreamResponse(
            status=200, headers={"Content-Type": "application/json; charset=utf-8"}
        )
        response.content_length = len(body)
        return await wire.send_body(request, response, [body], fault=fault, closing=self.closing)

"""Property-based tests of record parsing and path sanitisation (Hypothesis).

Any JSON value as a record or a page, any string as an id or a URL: parsing returns one of
its three answers and never raises anything else; an archived item's folder and file names
stay inside the archive, one folder per id; only http(s) URLs are ever let through; a sidecar
holds any record as valid UTF-8 JSON that reads back equal.
"""

from __future__ import annotations

import contextlib
import json
import math
import tempfile
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote

import pytest
import yarl
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from archiver.config.settings import HttpSettings
from archiver.errors import ArchiverError, MalformedResponse
from archiver.net.http import HttpClient
from archiver.net.mediatype import allowed_extensions
from archiver.sources import chanjing_lip_sync as chanjing
from archiver.sources import chanjing_token
from archiver.sources import video_task_history as vth
from archiver.sources.fields import media_url, record_id, unix_time
from archiver.sources.records import ArchiveItem, Listed, MediaRef, Rejected, Unfinished
from archiver.standin import StandIn
from archiver.store.archivefs import archive_folder
from archiver.store.paths import (
    extension_for,
    file_stem,
    item_folder,
    safe_name,
    within,
)
from archiver.store.sidecar import fingerprint, sidecar_bytes, write_sidecar

EXAMPLES = settings(max_examples=300, deadline=None)

# Any character, lone surrogates (JSON can carry `"\ud800"`) and path trouble included.
CHARS = (
    st.characters() | st.characters(codec=None, categories=["Cs"]) | st.sampled_from("/\\:.\0%~")
)
TEXT = st.text(CHARS, max_size=40)
ROLES = ["video", "cover", "preview", "thumb", "subtitles", "output-1"]
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**400)
    | st.floats()
    | TEXT
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)
URLS = (
    st.builds(
        "{}://{}{}".format,
        st.sampled_from(["http", "https", "HTTP", "file", "javascript", "ftp", "data", ""]),
        st.sampled_from(["media.example", "127.0.0.1:80", "[::1]", "", "a b", "ho\x00st"]) | TEXT,
        TEXT,
    )
    | JSON
)
IDS = TEXT | st.sampled_from(["..", ".", "", " ", "/", "a/../../b", "c:\\x", "\0"]) | JSON
TIMES = st.integers() | st.floats() | TEXT | st.sampled_from(["²", "١٢٣", "1758489933"]) | JSON


def _task(state_key: str, done: int, fields: tuple[tuple[str, str], ...]) -> Any:
    optional = {"id": IDS, state_key: st.just(done) | JSON, "createdAt": TIMES}
    optional |= {"create_time": TIMES, **{key: URLS for _, key in fields}}
    return st.fixed_dictionaries({}, optional=optional) | JSON


VTH_TASKS = st.builds(
    lambda task, template: {**task, "videoTemp": template} if isinstance(task, dict) else task,
    _task("state", 30, vth.TASK_FIELDS.media),
    _task("state", 30, vth.TEMPLATE_MEDIA),
)
CHANJING_TASKS = _task("status", 20, (("video", "video_url"), ("preview", "preview_url")))


def _check(listed: Listed) -> None:
    assert isinstance(listed, ArchiveItem | Unfinished | Rejected)
    if not isinstance(listed, ArchiveItem):
        return
    assert listed.id == record_id(listed.id) and listed.media
    assert listed.created_at is None or isinstance(listed.created_at, datetime)
    for ref in listed.media:
        assert media_url(ref.url) == (ref.url, None)
        assert yarl.URL(ref.url).scheme in ("http", "https")
    _check_paths(listed)


def _check_paths(item: ArchiveItem) -> None:
    root = Path("/archive/root")
    for layout in ("{year}/{month}/{id}", "{id}", "{year}-{month}-{day}_{id}"):
        folder = item_folder("faceswap", item, layout)
        assert not folder.is_absolute()
        for part in folder.parts:
            assert part not in ("", ".", "..")
            assert not set(part) & set("/\\:\0")
        placed = Path(within(f"{root}/", str(folder)))
        assert placed.resolve().is_relative_to(root)
        for ref in item.media:
            name = file_stem(ref) + extension_for(ref.url, None, ref.role)
            assert "/" not in name and "\0" not in name and not name.startswith(".")
            assert (placed / name).resolve().parent == placed


@EXAMPLES
@given(VTH_TASKS)
def test_any_video_task_history_record_parses_safely(record: Any) -> None:
    _check(vth.parse_task(record))
    template = vth.parse_template(record.get("videoTemp") if isinstance(record, dict) else None)
    if template is not None:
        _check(template)


@EXAMPLES
@given(CHANJING_TASKS)
def test_any_chanjing_record_parses_safely(record: Any) -> None:
    _check(chanjing.parse_task(record))


@EXAMPLES
@given(st.dictionaries(TEXT, JSON) | st.fixed_dictionaries({"code": JSON, "data": JSON}))
def test_any_page_answer_parses_or_is_malformed(doc: dict[str, Any]) -> None:
    for parse in (
        vth._page_data,
        vth._page_list,
        chanjing._page_answer,
        chanjing_token._token_data,
    ):
        with contextlib.suppress(MalformedResponse):
            parse(doc)


@EXAMPLES
@given(IDS)
def test_any_id_is_one_folder_inside_the_archive(value: Any) -> None:
    ident = record_id(value)
    if ident is None:
        return
    name = safe_name(ident)
    assert name not in ("", ".", "..") and not set(name) & set("/\\:\0")
    assert name.isascii() and len(name) <= 120
    if "~" not in name:
        assert (
            unquote(name, errors="surrogatepass") == ident
        )  # reversible, so the sidecar's id names it
    item = ArchiveItem("task", ident, None, (MediaRef("video", "http://h/v.mp4"),), {})
    _check_paths(item)


@EXAMPLES
@given(st.lists(st.text(st.characters(), min_size=1, max_size=30), min_size=2, max_size=6))
def test_different_ids_get_different_folders(values: list[str]) -> None:
    ids = {v for v in values if record_id(v) is not None}
    assert len({safe_name(i) for i in ids}) == len(ids)


@EXAMPLES
@given(URLS)
def test_only_http_urls_are_let_through(value: Any) -> None:
    url, problem = media_url(value)
    if url is None:
        assert problem
        return
    parsed = yarl.URL(url)
    assert parsed.scheme in ("http", "https") and parsed.host
    assert media_url(url) == (url, None)


@EXAMPLES
@given(TIMES)
def test_any_creation_time_is_a_date_or_none(value: Any) -> None:
    moment = unix_time(value)
    assert moment is None or 1990 <= moment.year < 2200


@EXAMPLES
@given(st.text(CHARS), st.text(CHARS) | st.none(), st.sampled_from(ROLES))
def test_any_url_and_content_type_give_an_allowed_extension(
    url: str, content_type: str | None, role: str
) -> None:
    ext = extension_for(url, content_type, role)
    assert ext in allowed_extensions(role) | {".bin"}


@given(
    st.builds(
        "{}://{}{}".format,
        st.sampled_from(["http", "https"]),
        st.sampled_from(["example.com", "127.0.0.1:8080", "h"]) | TEXT,
        st.sampled_from(["", "/", "/a/b.mp4", "/a.b/c", "/x.JPG"]) | TEXT,
    ),
    st.none() | st.sampled_from(["video/mp4", "image/png; q=1", "x/unknown"]),
)
def test_the_extension_of_a_plain_url_is_the_one_urlsplit_gives(
    url: str, content_type: str | None
) -> None:
    # extension_for skips urlsplit for URLs without ?, # or %: it must not change the answer.
    # An empty query sends the same URL down the urlsplit path.
    try:
        expected = extension_for(url + "?", content_type, "cover")
    except ValueError:  # urlsplit refuses it (media_url rejects it before any download)
        assume(False)
    assert extension_for(url, content_type, "cover") == expected


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(JSON)
def test_any_record_is_kept_in_its_sidecar_as_utf8_json(record: Any) -> None:
    with tempfile.TemporaryDirectory() as top, archive_folder(top, "item") as folder:
        path = write_sidecar(
            folder, sidecar_bytes({"record": record, "fingerprint": fingerprint(record)})
        )
        data = Path(path).read_bytes()
    back = json.loads(data.decode("utf-8"))["record"]
    assert _same(back, record)


@pytest.mark.parametrize(
    ("value", "written"),
    [
        (float("nan"), b"NaN"),
        (float("-inf"), b"-Infinity"),
        (2**70, b"1180591620717411303424"),
        ("\ud800 kept", b'"\\ud800 kept"'),
        ("plain \u4eba", '"plain \u4eba"'.encode()),
        (None, b"null"),
    ],
)
def test_what_the_compiled_writer_cannot_take_is_written_as_the_api_sent_it(
    value: Any, written: bytes
) -> None:
    # The sidecar's fast JSON writer refuses lone surrogates and integers past 64 bits, and
    # would write NaN as null: each is written the standard library's way instead.
    data = sidecar_bytes({"record": {"value": value, "other": None}})
    assert data.endswith(b"}\n") and b'\n  "record": {\n    "value": ' + written in data
    assert _same(json.loads(data.decode("utf-8"))["record"]["value"], value)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return bool(a == b and type(a) is type(b))


@pytest.fixture(scope="module")
def media_host() -> Any:
    """A stand-in serving 404 for any path it does not know (its own loop, in a thread)."""
    import asyncio
    import threading

    loop = asyncio.new_event_loop()
    standin = StandIn()
    ready = threading.Event()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(standin.start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    ready.wait(10)
    yield standin
    asyncio.run_coroutine_threadsafe(standin.close(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(path=TEXT, query=TEXT)
def test_fetching_any_url_raises_only_our_errors(
    media_host: StandIn, path: str, query: str
) -> None:
    import asyncio

    from archiver.net.download import download_file

    url = f"{media_host.media_url}/media/{path}?{query}"

    async def fetch() -> None:
        http = HttpClient(HttpSettings(retries=1, read_timeout=5))
        async with http:
            with tempfile.TemporaryDirectory() as folder:
                await download_file(http, "video", url, Path(folder), "video", max_bytes=10**6)

    with contextlib.suppress(ArchiverError):  # anything else fails the test
        asyncio.run(fetch())


def test_the_folder_of_a_template_is_under_templates() -> None:
    item = ArchiveItem("template", "..", None, (MediaRef("thumb", "http://h/t.png", "../1"),), {})
    folder = item_folder("faceswap", item, "{year}/{month}/{id}")
    assert folder == PurePosixPath("faceswap/templates/%2E.")
    assert file_stem(item.media[0]) == "thumb.v%2E.%2F1"

"""A web page is never archived as a video: media roles refuse documents, names stay tame.

A media URL that answers 200 with a login page or a proxy's error page used to be stored as
`video.mp4`. A picture or video role now fails such a file, known by its Content-Type or, when
the type says nothing, by its first bytes; a `subtitles` role takes the JSON it expects. And
whatever the host sends, the file's extension is one its role allows, or `.bin`.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from aiohttp import web

from archiver.errors import TransferError
from archiver.net.download import download_file
from archiver.standin import DatasetSpec, Fault
from tests.conftest import StandInFactory
from tests.loopback import Host, client, send
from tests.support import assert_archive_exact, config_dict, run_cli, write_config

LOGIN_PAGE = b"<!DOCTYPE html>\n<html><head><title>Sign in</title></head><body>...</body></html>"
MP4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + random.Random(3).randbytes(3000)
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + random.Random(4).randbytes(2000)
SUBTITLES = b'[{"start": 0.0, "end": 1.5, "text": "hello"}]'


def _host(body: bytes, content_type: str | None) -> Host:
    async def answer(request: web.Request, count: int) -> web.StreamResponse:
        headers = {"ETag": '"e1"'} if content_type is None else {"Content-Type": content_type}
        return await send(request, 200, headers, body)

    return Host(answer)


async def _fetch(host: Host, folder: Path, role: str, path: str) -> str:
    async with client() as http:
        fetched = await download_file(http, role, host.url(path), folder, role, max_bytes=1 << 30)
    return fetched.name


@pytest.mark.parametrize(
    ("role", "content_type", "body", "said"),
    [
        pytest.param("video", "text/html; charset=utf-8", LOGIN_PAGE, "a web page (text/html)",
                     id="html-declared"),
        pytest.param("cover", "application/octet-stream", b"\r\n  " + LOGIN_PAGE, "a web page",
                     id="html-sniffed"),
        pytest.param("video", None, b"\xef\xbb\xbf<html lang=en><p>proxy error</p>", "a web page",
                     id="html-no-type"),
        pytest.param("video", None, b'{"code": 403, "msg": "expired"}', "a JSON document",
                     id="json-sniffed"),
        pytest.param("preview", "application/json", b'{"a": 1}',
                     "a JSON document (application/json)", id="json-declared"),
        pytest.param("thumb", "binary/octet-stream",
                     b'<?xml version="1.0"?><Error><Code>AccessDenied</Code></Error>',
                     "an XML document", id="xml-sniffed"),
        pytest.param("cover", "image/svg+xml", b"<svg xmlns='http://www.w3.org/2000/svg'/>",
                     "an XML document (image/svg+xml)", id="svg"),
        pytest.param("subtitles", "text/html", LOGIN_PAGE, "a web page (text/html)",
                     id="subtitles-html"),
        # Larger than a block written to disk: refused before a byte is.
        pytest.param("video", "application/octet-stream", LOGIN_PAGE + b" " * 600_000,
                     "a web page", id="large-page"),
    ],
)  # fmt: skip
async def test_a_media_role_answered_with_a_document_fails_that_file(
    tmp_path: Path, role: str, content_type: str | None, body: bytes, said: str
) -> None:
    async with _host(body, content_type) as host:
        with pytest.raises(TransferError) as failed:
            await _fetch(host, tmp_path, role, "/media/file")
    assert str(failed.value) == f"the media host answered with {said}"
    assert len(host.seen) == 1  # not retried: the host will say the same again
    assert not tmp_path.exists() or list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("role", "content_type", "body", "path", "name"),
    [
        pytest.param("subtitles", "application/json", SUBTITLES, "/subs", "subtitles.json",
                     id="subtitles-json"),
        pytest.param("subtitles", None, SUBTITLES, "/s/track.json", "subtitles.json",
                     id="subtitles-sniffed"),
        pytest.param("video", "application/octet-stream", MP4, "/v/noext", "video.bin",
                     id="generic-type-real-video"),
        pytest.param("cover", None, JPEG, "/c/cover.JPG", "cover.jpg", id="no-type-jpeg"),
        pytest.param("cover", "image/jpeg", JPEG, "/c/page.html", "cover.jpg",
                     id="html-url-jpeg-type"),
        pytest.param("video", "video/mp4", MP4, "/v/run.sh", "video.mp4", id="sh-url"),
        pytest.param("preview", "image/png", JPEG, "/p/x.php?id=1", "preview.png",
                     id="php-url"),
        pytest.param("cover", "text/plain", JPEG, "/c/x.svg", "cover.bin", id="svg-url"),
    ],
)  # fmt: skip
async def test_media_is_kept_under_a_name_its_role_allows(
    tmp_path: Path, role: str, content_type: str | None, body: bytes, path: str, name: str
) -> None:
    async with _host(body, content_type) as host:
        assert await _fetch(host, tmp_path, role, path) == name
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == {name: body}


async def test_a_run_fails_a_login_page_and_the_next_run_archives_the_video(
    make_standin: StandInFactory, tmp_path: Path
) -> None:
    standin = await make_standin(DatasetSpec(vth_tasks=0, chanjing_tasks=3, succeeded_share=1.0))
    # The proxy in front of the bucket answers 200 with its own page, once.
    page = standin.faults.add(Fault("http_status", path="/media/lip-sync/*.mp4", value=200))
    config = write_config(tmp_path, config_dict(standin, only="chanjing"))
    archive = tmp_path / "archive"
    first = await run_cli("run", "-c", config, "--no-progress")
    assert first.code == 1, first.output
    assert page.fired == 1
    assert "video: the media host answered with a web page (text/html)" in first.output
    assert len(list(archive.rglob("video.*"))) == 2  # the other two tasks' videos
    assert list(archive.rglob("*.part*")) == []
    again = await run_cli("run", "-c", config, "--no-progress")
    assert again.code == 0, again.output
    assert_archive_exact(archive, standin, ("chanjing",))

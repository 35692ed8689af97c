"""Path parts made from API data: safe, reversible, and never outside the archive."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from urllib.parse import unquote

import pytest

from archiver.sources.records import ArchiveItem
from archiver.store.paths import extension_for, item_folder, safe_name, within


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("141", "141"),
        ("9499ed79995c4bdb95f0d66ca84419fd", "9499ed79995c4bdb95f0d66ca84419fd"),
        ("..", "%2E."),
        (".hidden", "%2Ehidden"),
        ("a/b", "a%2Fb"),
        ("a\\b", "a%5Cb"),
        ("c:d", "c%3Ad"),
        ("nul\0", "nul%00"),
        ("100%", "100%25"),
        ("视频", "%E8%A7%86%E9%A2%91"),
    ],
)
def test_safe_names_are_plain_or_percent_encoded(value: str, expected: str) -> None:
    assert safe_name(value) == expected
    assert unquote(expected, errors="surrogatepass") == value


def test_long_names_are_shortened_with_a_digest() -> None:
    name = safe_name("x" * 500)
    assert len(name) <= 120
    assert name != safe_name("x" * 499)


@pytest.mark.parametrize(
    ("role", "url", "content_type", "ext"),
    [
        ("video", "https://h/a/b.mp4", None, ".mp4"),
        ("video", "https://h/a/b.MP4?v=2", "image/png", ".mp4"),
        ("cover", "https://h/a/noext", "image/jpeg", ".jpg"),
        ("video", "https://h/a/noext", "video/mp4; charset=x", ".mp4"),
        ("video", "https://h/a/noext", None, ".bin"),
        ("video", "https://h/a/noext", "application/x-unknown-thing", ".bin"),
        ("video", "https://h/a/b.tar.gz", None, ".bin"),
        # Off the role's allow-list, from the URL or the type: never written as such.
        ("cover", "https://h/a/login.html", "text/html", ".bin"),
        ("cover", "https://h/a/logo.svg", "image/svg+xml", ".bin"),
        ("video", "https://h/a/run.sh", None, ".bin"),
        ("cover", "https://h/a/b.mp4", None, ".bin"),
        ("video", "https://h/a/b.jpg", None, ".bin"),
        # The URL's extension is not allowed, the type's is.
        ("cover", "https://h/a/image.php?id=3", "image/webp", ".webp"),
        ("preview", "https://h/a/b.JPEG", None, ".jpeg"),
        ("thumb", "https://h/a/b.avif", None, ".avif"),
        ("video", "https://h/a/b", "video/x-matroska", ".mkv"),
        ("subtitles", "https://h/a/subs", "application/json", ".json"),
        ("subtitles", "https://h/a/subs.srt", None, ".bin"),
        # A role no source names yet may be a picture or a video.
        ("output-1", "https://h/a/b.mp4", None, ".mp4"),
        ("output-2", "https://h/a/b.png", None, ".png"),
        ("output-2", "https://h/a/b.html", None, ".bin"),
    ],
)
def test_extension_from_url_then_content_type_within_the_roles_allow_list(
    role: str, url: str, content_type: str | None, ext: str
) -> None:
    assert extension_for(url, content_type, role) == ext


@pytest.mark.parametrize(
    ("expects", "url", "ext"),
    [
        ("picture", "https://h/o/1.png", ".png"),
        ("picture", "https://h/o/1.mp4", ".bin"),
        ("video", "https://h/o/1.mp4", ".mp4"),
        ("video", "https://h/o/1.jpg", ".bin"),
        (None, "https://h/o/1.mp4", ".mp4"),
        (None, "https://h/o/1.webp", ".webp"),
    ],
)
def test_a_role_takes_the_extensions_of_what_it_expects(
    expects: str | None, url: str, ext: str
) -> None:
    assert extension_for(url, None, "output-1", expects) == ext


def test_item_folders() -> None:
    when = datetime(2025, 9, 21, 21, 25, tzinfo=UTC)
    task = ArchiveItem("task", "../../etc", when, (), {})
    assert item_folder("faceswap", task, "{year}/{month}/{id}") == PurePosixPath(
        "faceswap/2025/09/%2E.%2F..%2Fetc"
    )
    undated = ArchiveItem("task", "7", None, (), {})
    assert item_folder("s", undated, "{year}/{month}/{id}") == PurePosixPath("s/undated/7")
    template = ArchiveItem("template", "2", when, (), {})
    assert item_folder("s", template, "{year}/{id}") == PurePosixPath("s/templates/2")


def test_within_refuses_escapes(tmp_path: Path) -> None:
    assert within(f"{tmp_path}/", "a/b") == f"{tmp_path}/a/b"
    for bad in ("../x", "/etc/passwd", "a/../../x"):
        with pytest.raises(ValueError):
            within(f"{tmp_path}/", bad)

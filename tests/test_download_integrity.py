"""The download state machine: a file is archived only when it is every byte of one version.

A real `HttpClient` fetches from a loopback host that misbehaves as CDNs do: a body cut short,
a range capped in size, a range that starts elsewhere or claims another total, a 206 to a plain
GET, a file replaced between requests, a `.part` that is already whole. Each test checks what
the item's folder holds afterwards: the exact bytes served, or nothing but what a later attempt
resumes, and a failure that says why.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from pathlib import Path

import pytest

from archiver.errors import ArchivePathError, TransferError
from archiver.net.download import FetchedFile, download_file
from tests.loopback import Host, Origin, client

SIZE = 4096
BODY = random.Random(10).randbytes(SIZE)
NEW_BODY = random.Random(11).randbytes(SIZE)


async def _fetch(host: Host, folder: Path, retries: int = 3, role: str = "video") -> FetchedFile:
    async with client(retries=retries) as http:
        return await download_file(http, role, host.url(), folder, role, max_bytes=1 << 30)


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir()} if folder.exists() else {}


def _saved(folder: Path) -> dict[str, object]:
    loaded: dict[str, object] = json.loads((folder / "video.part.json").read_text())
    return loaded


def _plant_part(folder: Path, data: bytes, **saved: object) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "video.part").write_bytes(data)
    (folder / "video.part.json").write_text(json.dumps(saved))


def _archived(folder: Path, fetched: FetchedFile, body: bytes = BODY) -> None:
    """The folder holds the file, exactly `body`, and nothing else."""
    assert _files(folder) == {"video.mp4": body}
    assert fetched.name == "video.mp4" and fetched.bytes == len(body)


async def test_a_capped_range_is_continued_to_the_announced_total(tmp_path: Path) -> None:
    # The reported case: 1,000 of 4,096 bytes, then 206s of 500 bytes each. Two attempts
    # are allowed: the first is cut; every continuation after it makes progress, so it
    # costs no retry.
    origin = Origin(BODY, cut=1000, cap=500)
    async with Host(origin) as host:
        fetched = await _fetch(host, tmp_path, retries=2)
    _archived(tmp_path, fetched)
    assert host.ranges == [None, *(f"bytes={n}-" for n in range(1000, SIZE, 500))]
    assert {s.if_range for s in host.seen[1:]} == {'"v1"'}


async def test_the_total_is_kept_beside_the_part_and_holds_a_later_run_to_it(
    tmp_path: Path,
) -> None:
    origin = Origin(BODY, cut=1000)
    async with Host(origin) as host:
        with pytest.raises(TransferError, match="gave up after 1 attempts: the connection broke"):
            await _fetch(host, tmp_path, retries=1)
    assert _files(tmp_path)["video.part"] == BODY[:1000]
    assert _saved(tmp_path) == {"validator": '"v1"', "content_type": "video/mp4", "total": SIZE}

    # A later run: the host now claims the file has 1,500 bytes. Cannot be trusted.
    origin.content_range = "bytes 1000-1499/1500"
    async with Host(origin) as host:
        with pytest.raises(TransferError, match=r"announced before \(4096 bytes\)"):
            await _fetch(host, tmp_path)
    assert host.ranges == ["bytes=1000-"]  # failed at once, not retried
    assert _files(tmp_path) == {}

    async with Host(origin) as host:
        fetched = await _fetch(host, tmp_path)
    _archived(tmp_path, fetched)
    assert host.ranges == [None]


@pytest.mark.parametrize(
    ("content_range", "why"),
    [
        pytest.param("bytes 500-1499/4096", "asked for the bytes from 1000, got", id="offset"),
        pytest.param("bytes 1000-1499/5000", "announced before", id="total"),
        pytest.param("bytes 1000-4999/4096", "is not a range of the file", id="past-end"),
        pytest.param("bytes 1000-999/4096", "is not a range of the file", id="backwards"),
        pytest.param("bytes 1000-4096/*", "is not a range of the file of 4096", id="past-known"),
        pytest.param("bytes */4096", "is not a byte range", id="no-range"),
        pytest.param("pages 1-2/9", "is not a byte range", id="not-bytes"),
    ],
)
async def test_a_resume_answered_with_another_range_fails_the_file(
    tmp_path: Path, content_range: str, why: str
) -> None:
    origin = Origin(BODY, cut=1000, content_range=content_range)
    async with Host(origin) as host:
        with pytest.raises(TransferError, match=f"cannot be trusted: .*{why}"):
            await _fetch(host, tmp_path)
    assert host.ranges == [None, "bytes=1000-"]
    assert _files(tmp_path) == {}  # the .part and its .part.json are gone: nothing spliced
    async with Host(origin) as host:  # a later run fetches it whole
        _archived(tmp_path, await _fetch(host, tmp_path))


async def test_a_range_with_an_unknown_total_is_held_to_the_known_one(tmp_path: Path) -> None:
    origin = Origin(BODY, cut=1000, cap=2000, content_range="bytes 1000-2999/*")
    async with Host(origin) as host:
        fetched = await _fetch(host, tmp_path)
    _archived(tmp_path, fetched)
    assert host.ranges == [None, "bytes=1000-", "bytes=3000-"]


async def test_a_206_to_a_plain_get_must_start_at_the_start(tmp_path: Path) -> None:
    # Archived as a 500-byte file before: now the file fails, and says why.
    origin = Origin(BODY, plain_206="bytes 500-999/4096")
    async with Host(origin) as host:
        with pytest.raises(TransferError, match="asked for the bytes from 0, got bytes 500-999"):
            await _fetch(host, tmp_path)
    assert host.ranges == [None]
    assert _files(tmp_path) == {}


async def test_a_206_to_a_plain_get_with_the_whole_file_is_kept(tmp_path: Path) -> None:
    origin = Origin(BODY, plain_206=f"bytes 0-{SIZE - 1}/{SIZE}")
    async with Host(origin) as host:
        fetched = await _fetch(host, tmp_path)
    _archived(tmp_path, fetched)
    assert host.ranges == [None]


async def test_a_short_206_to_a_plain_get_is_continued(tmp_path: Path) -> None:
    origin = Origin(BODY, plain_206="bytes 0-999/4096", cap=2000)
    async with Host(origin) as host:
        fetched = await _fetch(host, tmp_path, retries=1)
    _archived(tmp_path, fetched)
    assert host.ranges == [None, "bytes=1000-", "bytes=3000-"]


async def test_a_short_206_without_a_validator_fails_the_file(tmp_path: Path) -> None:
    # Without an ETag or Last-Modified, the rest could be of another version of the file.
    origin = Origin(BODY, etag=None, plain_206="bytes 0-999/4096")
    async with Host(origin) as host:
        with pytest.raises(TransferError, match="no validator to ask for the rest"):
            await _fetch(host, tmp_path)
    assert _files(tmp_path) == {}


async def test_a_body_cut_short_is_resumed_after_its_last_byte(tmp_path: Path) -> None:
    origin = Origin(BODY, cut=1234)
    async with Host(origin) as host:
        fetched = await _fetch(host, tmp_path)
    _archived(tmp_path, fetched)
    assert host.ranges == [None, "bytes=1234-"]


async def test_a_body_cut_short_without_a_validator_starts_over(tmp_path: Path) -> None:
    origin = Origin(BODY, etag=None, cut=1234)
    async with Host(origin) as host:
        fetched = await _fetch(host, tmp_path)
    _archived(tmp_path, fetched)
    assert host.ranges == [None, None]


@pytest.mark.parametrize("total", [SIZE, None], ids=["total-saved", "older-part-json"])
async def test_416_on_a_part_that_is_already_whole_finishes_it(
    tmp_path: Path, total: int | None
) -> None:
    # Killed after the last byte, before the rename: the host refuses a range past the end.
    saved = {"validator": '"v1"', "content_type": "video/mp4"}
    _plant_part(tmp_path, BODY, **saved, **({} if total is None else {"total": total}))
    origin = Origin(BODY)
    async with Host(origin) as host:
        fetched = await _fetch(host, tmp_path)
    _archived(tmp_path, fetched)
    assert host.ranges == [f"bytes={SIZE}-"]
    assert origin.answered == [416]


async def test_416_that_disagrees_with_the_saved_total_starts_over(tmp_path: Path) -> None:
    # The part is 4,096 bytes, but the file was announced at 5,000: not whole after all.
    _plant_part(tmp_path, BODY, validator='"v1"', content_type="video/mp4", total=5000)
    async with Host(Origin(BODY)) as host:
        fetched = await _fetch(host, tmp_path)
    _archived(tmp_path, fetched)
    assert host.ranges == [f"bytes={SIZE}-", None]  # refused, dropped, started over


async def test_a_part_longer_than_its_total_is_started_over(tmp_path: Path) -> None:
    _plant_part(tmp_path, BODY + b"x", validator='"v1"', content_type="video/mp4", total=SIZE)
    async with Host(Origin(BODY)) as host:
        fetched = await _fetch(host, tmp_path)
    _archived(tmp_path, fetched)
    assert host.ranges == [None]


async def test_a_part_of_a_file_since_replaced_is_never_spliced(tmp_path: Path) -> None:
    _plant_part(tmp_path, BODY[:1000], validator='"v1"', content_type="video/mp4", total=SIZE)
    origin = Origin(NEW_BODY, etag='"v2"')  # If-Range no longer holds: a 200, all of it
    async with Host(origin) as host:
        fetched = await _fetch(host, tmp_path)
    _archived(tmp_path, fetched, NEW_BODY)
    assert host.ranges == ["bytes=1000-"] and origin.answered == [200]


async def test_a_206_with_another_validator_starts_over(tmp_path: Path) -> None:
    # A host that ignores If-Range sends the range of the new version: dropped, started over.
    _plant_part(tmp_path, BODY[:1000], validator='"v1"', content_type="video/mp4", total=SIZE)
    origin = Origin(NEW_BODY, etag='"v2"', honour_if_range=False)
    async with Host(origin) as host:
        fetched = await _fetch(host, tmp_path)
    _archived(tmp_path, fetched, NEW_BODY)
    assert host.ranges == ["bytes=1000-", None]


async def test_a_part_json_of_an_older_version_learns_the_total(tmp_path: Path) -> None:
    _plant_part(tmp_path, BODY[:1000], validator='"v1"', content_type="video/mp4")
    origin = Origin(BODY, cap=1000, cut=500)  # the resume is cut after 500 of its 1,000
    async with Host(origin) as host:
        with pytest.raises(TransferError, match="gave up after 1 attempts: the connection broke"):
            await _fetch(host, tmp_path, retries=1)
    assert _saved(tmp_path)["total"] == SIZE
    assert _files(tmp_path)["video.part"] == BODY[:1500]
    async with Host(origin) as host:
        fetched = await _fetch(host, tmp_path, retries=1)
    _archived(tmp_path, fetched)
    assert host.ranges == ["bytes=1500-", "bytes=2500-", "bytes=3500-"]


# -- never through a link ---------------------------------------------------------------------


@pytest.mark.parametrize("planted", ["video.part", "video.part.json"])
@pytest.mark.parametrize("scanned", [True, False], ids=["folder-scanned", "new-folder"])
async def test_a_link_planted_as_a_part_file_is_never_written_through(
    tmp_path: Path, planted: str, scanned: bool
) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"precious")
    folder = tmp_path / "item"
    folder.mkdir()
    if planted == "video.part.json" and scanned:
        (folder / "video.part").write_bytes(BODY[:1000])
    link = folder / planted
    link.symlink_to(outside)
    origin = Origin(BODY, cut=1000)  # the first attempt leaves a part: both files are opened
    async with Host(origin) as host, client() as http:
        said = f"{link}: a symbolic link inside the archive; not followed"
        with pytest.raises(ArchivePathError, match=re.escape(said)):
            await download_file(
                http, "video", host.url(), folder, "video", max_bytes=1 << 20,
                new_folder=not scanned,
            )  # fmt: skip
    assert outside.read_bytes() == b"precious"
    assert link.is_symlink() and link.readlink() == outside
    assert not (folder / "video.mp4").exists()


async def test_a_large_body_cut_with_blocks_in_flight_is_resumed_byte_for_byte(
    tmp_path: Path,
) -> None:
    # 40 MB: blocks grow to 4 MiB, so several are with the writer and hasher threads when
    # the body is cut. What reached the `.part` must be exactly the bytes before the cut,
    # in order, and hashed in the same order, or the resumed file and its sha256 are wrong.
    body = random.Random(12).randbytes(40_000_000)
    origin = Origin(body, cut=29_999_999)
    async with Host(origin) as host:
        fetched = await _fetch(host, tmp_path, retries=2)
        resumed_from = host.seen[1].range
    _archived(tmp_path, fetched, body)
    assert fetched.sha256 == hashlib.sha256(body).hexdigest()
    assert origin.answered == [200, 206]
    assert resumed_from == "bytes=29999999-"

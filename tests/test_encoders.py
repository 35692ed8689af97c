"""The stand-in's media encoders: valid files, the same bytes per seed, served with their type.

Structure is checked here byte by byte (markers, chunk CRCs, box trees); that a browser really
decodes the pictures and plays the video, and shows the scene, is checked in headless Chromium
at the end, skipped without it.
"""

from __future__ import annotations

import base64
import struct
import zlib
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import aiohttp
import pytest

from archiver.standin import Dataset, DatasetSpec, StandIn
from archiver.standin.content import content_type_for, scene_name
from archiver.standin.encoders import Scene, jpeg_image, mp4_video, png_image, webp_image
from archiver.standin.encoders.lossless import huffman_lengths
from archiver.standin.encoders.scene import to_bytes

SCENE = Scene.from_seed("test scene")
ENCODERS = {"jpeg": jpeg_image, "png": png_image, "webp": webp_image, "mp4": mp4_video}
MAGIC = {
    "image/jpeg": (0, b"\xff\xd8\xff"),
    "image/png": (0, b"\x89PNG\r\n\x1a\n"),
    "image/webp": (8, b"WEBPVP8L"),
    "video/mp4": (4, b"ftyp"),
}


@pytest.mark.parametrize("name", list(ENCODERS))
def test_the_same_seed_gives_the_same_bytes(name: str) -> None:
    encode = ENCODERS[name]
    first = encode(Scene.from_seed("one"))

    assert encode(Scene.from_seed("one")) == first
    assert encode(Scene.from_seed("two")) != first


def test_scenes_vary_with_the_seed() -> None:
    scenes = {Scene.from_seed(seed) for seed in range(50)}

    assert len(scenes) == 50
    assert {len(scene.discs) for scene in scenes} == {2, 3, 4}


def test_jpeg_is_a_baseline_file_with_its_markers() -> None:
    data = jpeg_image(SCENE, 256, 144)
    markers = []
    pos = 2
    while data[pos + 1] != 0xDA:  # segments up to the start of scan
        marker, length = data[pos + 1], struct.unpack(">H", data[pos + 2 : pos + 4])[0]
        markers.append(marker)
        if marker == 0xC0:
            assert struct.unpack(">BHHB", data[pos + 4 : pos + 10]) == (8, 144, 256, 3)
        pos += 2 + length
    scan = data[pos + 2 + struct.unpack(">H", data[pos + 2 : pos + 4])[0] : -2]

    assert data[:2] == b"\xff\xd8" and data[-2:] == b"\xff\xd9"
    assert markers == [0xE0, 0xDB, 0xC0, 0xC4, 0xC4]
    assert scan and all(scan[i + 1] == 0 for i in range(len(scan) - 1) if scan[i] == 0xFF)


def test_png_chunks_have_valid_crcs_and_hold_the_scene() -> None:
    data = png_image(SCENE, 40, 24)
    chunks = dict(_png_chunks(data))

    assert data[:8] == b"\x89PNG\r\n\x1a\n" and list(chunks) == [b"IHDR", b"IDAT", b"IEND"]
    assert struct.unpack(">IIBBBBB", chunks[b"IHDR"]) == (40, 24, 8, 2, 0, 0, 0)
    rows = zlib.decompress(chunks[b"IDAT"])
    red, green, blue = (to_bytes(c) for c in SCENE.paint(40, 24).channels)
    assert rows[0] == 0 and rows[1:4] == bytes((red[0], green[0], blue[0]))
    assert len(rows) == 24 * (1 + 3 * 40)


def _png_chunks(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    pos = 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(kind + body), kind
        yield kind, body
        pos += 12 + length


def test_webp_is_a_lossless_riff_of_the_right_size() -> None:
    data = webp_image(SCENE, 100, 60)
    (riff_size,) = struct.unpack("<I", data[4:8])
    (chunk_size,) = struct.unpack("<I", data[16:20])
    (fields,) = struct.unpack("<I", data[21:25])  # after the 0x2F signature, LSB first

    assert data[:4] == b"RIFF" and data[8:16] == b"WEBPVP8L"
    assert riff_size == len(data) - 8 and chunk_size + chunk_size % 2 == len(data) - 20
    assert data[20] == 0x2F
    assert (fields & 0x3FFF) + 1 == 100 and ((fields >> 14) & 0x3FFF) + 1 == 60


@pytest.mark.parametrize(
    "counts",
    [[5, 0, 0, 9, 1], [1, 1], [2**n for n in range(40)], [1] * 280],
    ids=["sparse", "two", "skewed", "flat"],
)
def test_huffman_codes_are_complete_and_length_limited(counts: list[int]) -> None:
    lengths = huffman_lengths(counts, 15)

    assert max(lengths) <= 15
    assert all((length > 0) == (count > 0) for length, count in zip(lengths, counts, strict=True))
    assert sum(2.0**-length for length in lengths if length) == 1.0  # no code left unused


def test_mp4_boxes_frames_and_sample_table_agree() -> None:
    data = mp4_video(SCENE, 192, 108, fps=8)
    top = dict(_boxes(data))
    stbl = dict(_boxes(_child(top[b"moov"], b"trak", b"mdia", b"minf", b"stbl")))
    _, _, count, *sizes = struct.unpack(f">{len(stbl[b'stsz']) // 4}I", stbl[b"stsz"])
    (offset,) = struct.unpack(">I", stbl[b"stco"][8:12])
    avcc = stbl[b"stsd"][8 + 8 + 78 + 8 :]  # entry count, avc1 header, visual fields, avcC box
    samples = []
    for size in sizes:
        samples.append(data[offset : offset + size])
        offset += size

    assert list(top) == [b"ftyp", b"moov", b"mdat"], "moov first, so playback starts at once"
    assert count == 16 and b"".join(samples) == top[b"mdat"]
    assert stbl[b"stss"][4:] == struct.pack(">II", 1, 1), "only the first frame is a key frame"
    assert struct.unpack(">I", _child(top[b"moov"], b"mvhd")[16:20])[0] == 2000  # ms
    assert avcc[0] == 1 and avcc[1] == 66, "H.264 Constrained Baseline"
    nal_types = [sample[4] & 0x1F for sample in samples]
    assert nal_types == [5] + [1] * 15, "an IDR picture, then P pictures"
    assert all(struct.unpack(">I", s[:4])[0] == len(s) - 4 for s in samples)
    assert len(data) < 150_000, "unchanged macroblocks are skipped, not sent again"


def _boxes(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    pos = 0
    while pos < len(data):
        size, kind = struct.unpack(">I4s", data[pos : pos + 8])
        assert size >= 8 and pos + size <= len(data), kind
        yield kind, data[pos + 8 : pos + size]
        pos += size


def _child(body: bytes, *kinds: bytes) -> bytes:
    for kind in kinds:
        body = dict(_boxes(body))[kind]
    return body


# -- the stand-in's decodable media ----------------------------------------------------------

StandInFactory = Callable[..., Awaitable[StandIn]]
DECODABLE = DatasetSpec(vth_tasks=60, chanjing_tasks=60, templates=2, decodable_media=True)


def test_each_path_keeps_its_bytes_until_replaced() -> None:
    one, two = Dataset(DECODABLE, "http://m"), Dataset(DECODABLE, "http://m")
    record = one.succeeded_vth()[0]
    cover, video = one.media_path(record["covering"]), one.media_path(record["origin"])
    before = one.contents.file(cover)

    assert one.media_bytes(cover) == two.media_bytes(cover) == before.data()
    assert before.size == len(before.data()) and scene_name(cover) == scene_name(video)
    after = one.replace_media(cover)
    assert after.data() != before.data() and after.etag != before.etag
    assert one.media_bytes(cover) == after.data() != two.media_bytes(cover)
    plain = Dataset(DatasetSpec(vth_tasks=60, chanjing_tasks=60, templates=2), "http://m")
    random_bytes = plain.contents.file(cover)
    assert random_bytes.encoded is None and 2_000 <= random_bytes.size <= 40_000


async def test_the_stand_in_serves_each_kind_with_its_type(
    make_standin: StandInFactory,
) -> None:
    standin: StandIn = await make_standin(DECODABLE)
    dataset = standin.dataset
    template = dataset.templates()[0]
    bare = [  # paths without an extension: the type must still name what the bytes are
        url
        for url in [r["covering"] for r in dataset.succeeded_vth()]
        + [r["preview_url"] for r in dataset.succeeded_chanjing()]
        if "." not in url.rsplit("/", 1)[1]
    ]
    assert bare, "about 1 cover or preview in 25 has no extension"
    urls = [
        dataset.succeeded_vth()[0]["covering"],
        dataset.succeeded_vth()[0]["origin"],
        dataset.succeeded_chanjing()[0]["video_url"],
        template["thumb"],
        template["covering"],
        template["video"],
        *bare,
    ]
    async with aiohttp.ClientSession() as http:
        for url in urls:
            async with http.get(url) as response:
                body = await response.read()
                content_type = response.headers["Content-Type"]
            offset, magic = MAGIC[content_type]
            assert response.status == 200 and body[offset : offset + len(magic)] == magic, url
            assert content_type == content_type_for(dataset.media_path(url))
            assert body == dataset.media_bytes(url)
        async with http.get(urls[1], headers={"Range": "bytes=100-199"}) as response:
            part = await response.read()
        assert response.status == 206 and part == dataset.media_bytes(urls[1])[100:200]


# -- in a browser ----------------------------------------------------------------------------

PROBE = """async (sources) => {
  const canvas = document.createElement("canvas");
  const context = canvas.getContext("2d", {willReadFrequently: true});
  const draw = (element, width, height) => {
    canvas.width = width; canvas.height = height;
    context.drawImage(element, 0, 0);
    return context.getImageData(0, 0, width, height).data;
  };
  const encoded = (data) => {  // RGBA as base64: a big array is slow to hand to Python
    let text = "";
    for (let i = 0; i < data.length; i += 8192) {
      text += String.fromCharCode(...data.subarray(i, i + 8192));
    }
    return btoa(text);
  };
  const pixels = (element, width, height) => encoded(draw(element, width, height));
  const out = {};
  for (const [name, url] of Object.entries(sources.images)) {
    const image = new Image();
    image.src = url;
    await image.decode();
    out[name] = pixels(image, image.naturalWidth, image.naturalHeight);
  }
  const video = document.createElement("video");
  video.muted = true;
  video.src = sources.video;
  await new Promise((resolve, reject) => {
    video.onloadeddata = resolve; video.onerror = () => reject(video.error.message);
  });
  const frameAt = async (time) => {
    await new Promise(resolve => { video.onseeked = resolve; video.currentTime = time; });
    // A busy machine may not have the decoded frame ready yet: nothing is drawn until it is.
    for (let tries = 0; tries < 100; tries++) {
      const data = draw(video, video.videoWidth, video.videoHeight);
      if (data[3] === 255) return encoded(data);
      await new Promise(resolve => setTimeout(resolve, 20));
    }
    throw new Error(`no frame at ${time}s`);
  };
  out.first = await frameAt(0.01);
  out.later = await frameAt(1.01);
  out.size = [video.videoWidth, video.videoHeight, video.duration];
  return out;
}"""


@pytest.mark.browser
def test_a_browser_decodes_every_format_to_the_scene() -> None:
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    from tests.test_catalog_browser import CHROMIUM_ARGS, find_chromium

    chromium = find_chromium()
    if chromium is None:
        pytest.skip("headless Chromium not found: apt-get install chromium")
    files = {
        "jpeg": ("image/jpeg", jpeg_image(SCENE, 256, 144)),
        "png": ("image/png", png_image(SCENE, 160, 90)),
        "webp": ("image/webp", webp_image(SCENE, 160, 90)),
    }
    video = mp4_video(SCENE, 192, 108)
    sources = {
        "images": {name: _data_url(kind, data) for name, (kind, data) in files.items()},
        "video": _data_url("video/mp4", video),
    }
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            decoded: dict[str, Any] = browser.new_page().evaluate(PROBE, sources)
        finally:
            browser.close()

    pixels = {name: base64.b64decode(value) for name, value in decoded.items() if name != "size"}
    assert pixels["png"] == _rgba(160, 90), "lossless: every pixel exact"
    assert pixels["webp"] == _rgba(160, 90), "lossless: every pixel exact"
    assert _mean_error(pixels["jpeg"], _rgba(256, 144)) < 3, "blocks with ramps track the scene"
    assert decoded["size"] == [192, 108, 2]
    assert _mean_error(pixels["first"], _rgba(192, 108)) < 5, "the scene, with an orb on it"
    assert _mean_error(pixels["later"], _rgba(192, 108)) < 5
    assert pixels["first"] != pixels["later"], "the orb moved"


def _data_url(kind: str, data: bytes) -> str:
    return f"data:{kind};base64,{base64.b64encode(data).decode()}"


def _rgba(width: int, height: int) -> bytes:
    """The scene as the canvas returns a picture: RGBA, row by row."""
    red, green, blue = (to_bytes(c) for c in SCENE.paint(width, height).channels)
    out = bytearray(b"\xff" * (4 * width * height))
    out[0::4], out[1::4], out[2::4] = red, green, blue
    return bytes(out)


def _mean_error(got: bytes, expected: bytes) -> float:
    assert len(got) == len(expected)
    return sum(abs(a - b) for a, b in zip(got, expected, strict=True)) / len(got)

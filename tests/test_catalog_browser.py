"""The catalog page in a real browser: headless Chromium driven by Playwright.

Chromium comes from the distribution (`apt-get install chromium`), not from Playwright's own
download, which needs the network; Playwright's Python package brings the driver. Without
either, these tests skip and say how to get them. The page is opened straight from the file
system, as a user would, and every request it makes is watched.

Screenshots land in `test-artifacts/` at the repository root, for a person to look at.
"""

from __future__ import annotations

import base64
import os
import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

import pytest

from archiver.catalog.build import write_catalog
from archiver.reporting.console import human_bytes
from archiver.standin import DatasetSpec
from tests.catalog_fixture import (
    CHANJING,
    FACESWAP,
    XSS_TITLE,
    BuiltArchive,
    build_archive,
    shared_archive,
)
from tests.support import archive_chanjing_account

try:
    from playwright.sync_api import Browser, ConsoleMessage, Dialog, Page, sync_playwright
except ImportError:  # pragma: no cover - depends on the machine
    pytest.skip(
        "Playwright is not installed: pip install playwright (and apt-get install chromium)",
        allow_module_level=True,
    )

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
CARDS = "#grid .card"
Scheme = Literal["light", "dark"]


def find_chromium() -> str | None:
    """The distribution's Chromium: `$ARCHIVER_CHROMIUM`, else `chromium` on the PATH."""
    configured = os.environ.get("ARCHIVER_CHROMIUM")
    if configured:
        return configured
    return shutil.which("chromium") or shutil.which("chromium-browser")


@dataclass
class OpenPage:
    """A catalog page and what it did: console errors, dialogs, every URL it requested."""

    page: Page
    root: Path
    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def card_ids(self) -> list[str]:
        """The ids of the task cards on screen, in order."""
        ids: list[str] = self.page.eval_on_selector_all(
            CARDS, "cards => cards.map(c => c.dataset.id)"
        )
        return ids

    def wait_for_cards(self, count: int) -> None:
        """Wait until exactly `count` task cards are shown."""
        self.page.wait_for_function(
            "n => document.querySelectorAll('#grid .card').length === n", arg=count
        )


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Chromium for the module."""
    chromium = find_chromium()
    if chromium is None:
        pytest.skip(
            "headless Chromium not found: apt-get install chromium "
            "(with pip install playwright), or set ARCHIVER_CHROMIUM to its path"
        )
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> BuiltArchive:
    """The small archive, with one unreadable sidecar, and its catalog."""
    built = build_archive(tmp_path_factory.mktemp("catalog") / "archive", unreadable_sidecar=True)
    write_catalog(built.root)
    return built


def open_catalog(
    browser: Browser, root: Path, *, scheme: Scheme = "light", fragment: str = ""
) -> OpenPage:
    """Open `root/index.html` from file:// and wait until the page says it is ready."""
    context = browser.new_context(
        viewport={"width": 1280, "height": 800}, color_scheme=scheme, device_scale_factor=1
    )
    opened = OpenPage(context.new_page(), root)

    def on_console(message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            opened.errors.append(f"{message.type}: {message.text}")

    def on_dialog(dialog: Dialog) -> None:
        opened.dialogs.append(dialog.message)
        dialog.dismiss()

    opened.page.on("console", on_console)
    opened.page.on("pageerror", lambda error: opened.errors.append(f"page error: {error}"))
    opened.page.on("dialog", on_dialog)
    opened.page.on("request", lambda request: opened.requests.append(request.url))
    opened.page.goto((root / "index.html").as_uri() + fragment)
    opened.page.wait_for_selector("html[data-state=ready]")
    return opened


@pytest.fixture
def catalog(browser: Browser, archive: BuiltArchive) -> Iterator[OpenPage]:
    """The small archive's catalog, open in light mode."""
    opened = open_catalog(browser, archive.root)
    yield opened
    opened.page.context.close()


def wait_for_images(opened: OpenPage) -> None:
    """Wait until every image on the page has loaded (or failed)."""
    # Functions, not expressions: the page's CSP forbids the eval that expressions need.
    opened.page.wait_for_function("() => [...document.images].every(image => image.complete)")


def local_path(url: str) -> Path:
    """The file a file:// URL names."""
    parts = urlsplit(url)
    assert parts.scheme == "file", url
    return Path(unquote(parts.path))


def test_loads_from_file_url_without_console_errors(catalog: OpenPage) -> None:
    wait_for_images(catalog)
    broken = catalog.page.evaluate(
        "() => [...document.images].filter(i => !i.naturalWidth).map(i => i.src)"
    )

    assert catalog.page.url.startswith("file://")
    assert catalog.errors == []
    assert catalog.dialogs == []
    assert broken == []
    assert catalog.page.locator("#notice").is_hidden(), "data and page are from one build"
    root = catalog.root.resolve()
    for url in catalog.requests:  # nothing outside the archive, and nothing on the network
        assert local_path(url).resolve().is_relative_to(root), url


def test_policy_blocks_any_request_off_the_archive(catalog: OpenPage) -> None:
    blocked = catalog.page.evaluate(
        """() => new Promise(resolve => {
            document.addEventListener("securitypolicyviolation",
                event => resolve(event.effectiveDirective), {once: true});
            const image = document.createElement("img");
            image.src = "http://127.0.0.1:9/beacon.png";
            document.body.append(image);
        })"""
    )

    assert blocked == "img-src", "the CSP refused the load before it reached the network"


def test_one_card_per_archived_task(catalog: OpenPage, archive: BuiltArchive) -> None:
    assert sorted(catalog.card_ids()) == sorted(task.id for task in archive.tasks)
    assert catalog.page.inner_text("#count") == f"{len(archive.tasks)} videos"


def test_search_narrows_the_cards(catalog: OpenPage, archive: BuiltArchive) -> None:
    neon = [task.id for task in archive.tasks if task.title == "Neon city walk"]
    catalog.page.fill("#search", "neon city")
    catalog.wait_for_cards(len(neon))
    assert sorted(catalog.card_ids()) == sorted(neon)

    some_id = archive.tasks_of(CHANJING)[3].id
    catalog.page.fill("#search", some_id[:10])
    catalog.wait_for_cards(1)
    assert catalog.card_ids() == [some_id]

    catalog.page.fill("#search", "dolly shot")  # a word of a template's prompt
    catalog.wait_for_cards(len([t for t in archive.tasks if t.title == "Sunset over the bay"]))

    catalog.page.fill("#search", "no such video anywhere")
    catalog.wait_for_cards(0)
    assert catalog.page.locator("#tasks-empty").is_visible()


def test_source_filter_narrows_the_cards(catalog: OpenPage, archive: BuiltArchive) -> None:
    chanjing = archive.tasks_of(CHANJING)
    catalog.page.select_option("#source", CHANJING)
    catalog.wait_for_cards(len(chanjing))

    sources = catalog.page.eval_on_selector_all(CARDS, "cards => cards.map(c => c.dataset.source)")
    assert set(sources) == {CHANJING}
    assert sorted(catalog.card_ids()) == sorted(task.id for task in chanjing)
    catalog.page.select_option("#source", FACESWAP)
    catalog.wait_for_cards(len(archive.tasks_of(FACESWAP)))


def test_card_plays_a_local_video_file(catalog: OpenPage, archive: BuiltArchive) -> None:
    catalog.page.click(f"{CARDS} >> nth=0")
    catalog.page.wait_for_function(
        "() => { const v = document.getElementById('video'); return v.readyState >= 1; }"
    )
    video: dict[str, Any] = catalog.page.evaluate(
        "() => { const v = document.getElementById('video');"
        " return {src: v.currentSrc, width: v.videoWidth, duration: v.duration}; }"
    )

    path = local_path(video["src"])
    assert path.is_file() and path.resolve().is_relative_to(archive.root.resolve())
    assert video["width"] > 0 and video["duration"] > 0, "the file is a real, playable video"
    links = catalog.page.eval_on_selector_all("#player-links a", "links => links.map(a => a.href)")
    assert {local_path(link).name for link in links} == {path.parent.name, "metadata.json"}
    assert all(local_path(link).exists() for link in links)
    catalog.page.keyboard.press("Escape")
    catalog.page.wait_for_function("() => !document.getElementById('player').open")


def test_every_card_video_resolves_to_an_existing_file(catalog: OpenPage) -> None:
    urls: list[str] = catalog.page.evaluate(
        "() => window.ARCHIVER_CATALOG.tasks.filter(t => t.video)"
        ".map(t => new URL(t.video, location.href).href)"
    )

    assert len(urls) == len(catalog.card_ids())
    for url in urls:
        assert local_path(url).is_file(), url


def test_html_in_a_title_renders_as_text(catalog: OpenPage, archive: BuiltArchive) -> None:
    catalog.page.fill("#search", "onerror")
    expected = [task.id for task in archive.tasks if task.title == XSS_TITLE]
    catalog.wait_for_cards(len(expected))

    titles = catalog.page.eval_on_selector_all(
        f"{CARDS} .title", "nodes => nodes.map(n => n.textContent)"
    )
    assert titles == [XSS_TITLE] * len(expected)
    assert catalog.page.locator("img[src='x']").count() == 0
    catalog.page.click(f"{CARDS} >> nth=0")
    assert catalog.page.inner_text("#player-title") == XSS_TITLE
    assert "</script><script>alert('prompt')</script>" in catalog.page.inner_text("#player-prompt")
    catalog.page.wait_for_timeout(200)  # room for an onerror handler to fire, if one existed
    assert catalog.dialogs == [] and catalog.errors == []


def test_states_of_files_show_on_cards(catalog: OpenPage) -> None:
    states = catalog.page.eval_on_selector_all(
        CARDS, "cards => cards.map(c => [c.dataset.id, c.querySelector('.state').textContent])"
    )

    by_id = dict(states)
    assert by_id["142"] == "cover missing"
    assert list(by_id.values()).count("sidecar unreadable") == 1
    assert list(by_id.values()).count("complete") == len(by_id) - 2


def test_sorts_by_date_with_undated_last(catalog: OpenPage, archive: BuiltArchive) -> None:
    def created() -> list[str]:
        values: list[str] = catalog.page.eval_on_selector_all(
            CARDS, "cards => cards.map(c => c.dataset.created)"
        )
        return values

    newest = created()
    assert newest[:-1] == sorted(newest[:-1], reverse=True) and newest[-1] == ""
    first = catalog.card_ids()[0]
    catalog.page.select_option("#sort", "old")
    catalog.page.wait_for_function(
        "first => document.querySelector('#grid .card').dataset.id !== first", arg=first
    )
    oldest = created()
    assert oldest[:-1] == sorted(oldest[:-1]) and oldest[-1] == ""
    assert "sort=old" in catalog.page.url, "the view is kept in the address"


def test_templates_view_lists_templates_with_their_tasks(
    catalog: OpenPage, archive: BuiltArchive
) -> None:
    catalog.page.click("#tab-templates")
    catalog.page.wait_for_selector("#templates-view:not([hidden]) .template")

    rows = catalog.page.eval_on_selector_all(
        ".template",
        "rows => rows.map(r => [r.dataset.id, r.querySelector('h3').textContent,"
        " Number(r.dataset.tasks), r.querySelectorAll('.mini').length])",
    )
    assert len(rows) == len(archive.templates)
    for template_id, title, count, minis in rows:
        template = next(t for t in archive.templates if t.id == template_id)
        assert title == template.title
        assert count == minis == sum(task.title == template.title for task in archive.tasks)
    assert catalog.page.locator("#tasks-view").is_hidden()

    catalog.page.locator(".template[data-id='2'] .link-button").click()
    used = sorted(task.id for task in archive.tasks if task.title == XSS_TITLE)
    catalog.wait_for_cards(len(used))
    assert sorted(catalog.card_ids()) == used
    assert catalog.page.inner_text("#filter-chip-text") == f"Template: {XSS_TITLE}"


def test_page_says_when_its_data_is_from_another_build(browser: Browser, tmp_path: Path) -> None:
    built = build_archive(tmp_path / "archive", tasks=3)
    old_page = write_catalog(built.root).read_bytes()
    write_catalog(built.root)
    (built.root / "index.html").write_bytes(old_page)  # as if opened between the two renames
    opened = open_catalog(browser, built.root)
    try:
        assert "rebuilt while this page was loading" in opened.page.inner_text("#notice")
        assert opened.page.locator(CARDS).count() == 3, "the cards still show"
    finally:
        opened.page.context.close()

    (built.root / "index-data.js").unlink()
    opened = open_catalog(browser, built.root)
    try:
        assert "archiver index" in opened.page.inner_text("#notice")
        assert opened.errors and all("index-data.js" in e or "ERR_FILE" in e for e in opened.errors)
    finally:
        opened.page.context.close()


def test_media_that_do_not_decode_get_a_label(browser: Browser, tmp_path: Path) -> None:
    built = build_archive(tmp_path / "archive", tasks=3)
    task = built.tasks_of(FACESWAP)[0]
    for role in ("cover", "video"):
        (built.root / task.files[role]).write_bytes(b"\xff\xd8\xff\xe0 not really media")
    write_catalog(built.root)
    opened = open_catalog(browser, built.root)
    try:
        card = opened.page.locator(f"{CARDS}[data-id='{task.id}']")
        card.locator(".placeholder").wait_for()
        assert card.locator(".placeholder").inner_text() == "Picture unreadable"
        card.click()
        opened.page.locator("#no-video").wait_for()
        assert "cannot play" in opened.page.inner_text("#no-video")
        assert opened.errors == []
    finally:
        opened.page.context.close()


def test_screenshots_for_a_person_to_look_at(browser: Browser, archive: BuiltArchive) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    shots: dict[str, tuple[Scheme, str, str | None]] = {
        "catalog.png": ("light", "", None),
        "catalog-dark.png": ("dark", "", None),
        "catalog-templates.png": ("light", "#view=templates", None),
        "catalog-player.png": ("dark", "", f"{CARDS} >> nth=4"),
    }
    titles = {task.title for task in archive.tasks} | {t.title for t in archive.templates}
    for name, (scheme, fragment, click) in shots.items():
        opened = open_catalog(browser, archive.root, scheme=scheme, fragment=fragment)
        try:
            wait_for_images(opened)
            if click:
                opened.page.click(click)
                opened.page.wait_for_function(
                    "() => document.getElementById('video').readyState >= 2"
                )
            png = opened.page.screenshot(path=str(ARTIFACTS / name), full_page=click is None)
            # What a person would see on it: a title they wrote, a picture, a frame.
            heading = "#player-title" if click else ".template h3" if fragment else ".title"
            first = opened.page.locator(heading).first
            assert first.is_visible(), name
            text = first.inner_text()
            assert text.strip(), name
            if fragment or click:  # a card may say "Untitled"; these show the title itself
                assert text in titles, name
            if click:
                assert opened.page.eval_on_selector("#video", "v => v.videoWidth") > 0
            else:
                widths = opened.page.eval_on_selector_all(
                    "img", "images => images.map(i => i.naturalWidth)"
                )
                assert widths and max(widths) > 0, name
            assert opened.errors == []
        finally:
            opened.page.context.close()
        assert _colours(browser, png) >= 16, name  # not one flat colour: something drawn


def _colours(browser: Browser, png: bytes) -> int:
    """How many distinct colours a PNG holds (every 97th pixel), decoded by the browser."""
    page = browser.new_page()  # about:blank: none of the catalog's policy applies
    try:
        count = page.evaluate(
            """async (data) => {
                const image = new Image();
                image.src = "data:image/png;base64," + data;
                await image.decode();
                const canvas = document.createElement("canvas");
                canvas.width = image.naturalWidth;
                canvas.height = image.naturalHeight;
                const context = canvas.getContext("2d");
                context.drawImage(image, 0, 0);
                const pixels = context.getImageData(0, 0, canvas.width, canvas.height).data;
                const seen = new Set();
                for (let i = 0; i < pixels.length; i += 4 * 97) {
                    seen.add((pixels[i] << 16) | (pixels[i + 1] << 8) | pixels[i + 2]);
                }
                return seen.size;
            }""",
            base64.b64encode(png).decode("ascii"),
        )
        return int(count)
    finally:
        page.close()


@pytest.mark.timeout(600)  # building 20,000 task folders is slow on a slow disk
def test_twenty_thousand_tasks_render_a_page_at_a_time(
    browser: Browser, tmp_path_factory: pytest.TempPathFactory
) -> None:
    big = shared_archive(tmp_path_factory.getbasetemp(), 20_000)
    write_catalog(big.root)
    opened = open_catalog(browser, big.root)
    try:
        shown = opened.page.locator(CARDS).count()
        assert 0 < shown < 200, "cards are rendered in pages, not all at once"
        assert opened.page.inner_text("#count") == f"Showing {shown} of 20,000 videos"

        opened.page.mouse.wheel(0, 20_000)
        opened.page.wait_for_function(
            "n => document.querySelectorAll('#grid .card').length > n", arg=shown
        )

        opened.page.select_option("#source", CHANJING)
        opened.page.fill("#search", big.tasks_of(CHANJING)[1234].id)
        opened.wait_for_cards(1)
        assert opened.errors == []
    finally:
        opened.page.context.close()


# -- the whole Chanjing account, archived from the stand-in ----------------------------------

ACCOUNT_SPEC = DatasetSpec(
    vth_tasks=0,
    chanjing_tasks=6,
    chanjing_videos=6,
    chanjing_avatars=8,
    ai_creations=12,
    decodable_media=True,
)
Account = tuple[Path, dict[str, list[dict[str, Any]]]]


@pytest.fixture(scope="module")
def account(tmp_path_factory: pytest.TempPathFactory) -> Account:
    """An archive of the four Chanjing lists (real pictures and videos), and their records."""
    folder = tmp_path_factory.mktemp("account")
    return folder / "archive", archive_chanjing_account(folder, ACCOUNT_SPEC)


def _shown(opened: OpenPage, selector: str) -> Path:
    """The local file that the picture or video at `selector` shows."""
    source: str = opened.page.eval_on_selector(selector, "node => node.currentSrc")
    return local_path(source)


def test_avatars_and_ai_images_show_as_pictures(browser: Browser, account: Account) -> None:
    root, records = account
    kinds = {("cjavatar", r["id"]): "picture" for r in records["cjavatar"]}
    for r in records["cjai"]:
        kinds[("cjai", r["unique_id"])] = "picture" if r["type"] == 3 else "video"
    kinds |= {("cjvideo", r["id"]): "video" for r in records["cjvideo"]}
    kinds |= {("chanjing", r["id"]): "video" for r in records["chanjing"]}
    opened = open_catalog(browser, root)
    try:
        wait_for_images(opened)
        cards = opened.page.eval_on_selector_all(
            CARDS,
            "cards => cards.map(c => [c.dataset.source, c.dataset.id, c.dataset.kind,"
            " c.querySelector('.play') !== null])",
        )
        assert {(source, i): kind for source, i, kind, _ in cards} == kinds
        assert all(play == (kind == "video") for _, _, kind, play in cards)

        avatar = next(r for r in records["cjavatar"] if "pic_url" in r)
        opened.page.click(f"{CARDS}[data-id='{avatar['id']}']")
        opened.page.wait_for_function(
            "() => { const i = document.querySelector('#picture img'); "
            "return i && i.complete && i.naturalWidth > 0; }"
        )
        assert _shown(opened, "#picture img").name == "cover.png"
        assert opened.page.inner_text("#player-title") == avatar["name"]
        assert opened.page.locator("#video").is_hidden()
        opened.page.keyboard.press("Escape")

        image = next(r for r in records["cjai"] if r["type"] == 3 and r["output_url"][0])
        opened.page.click(f"{CARDS}[data-id='{image['unique_id']}']")
        opened.page.wait_for_function(
            "() => { const i = document.querySelector('#picture img'); "
            "return i && i.complete && i.naturalWidth > 0; }"
        )
        assert _shown(opened, "#picture img").name == "output-1.jpg"
        assert opened.page.inner_text("#player-prompt") == image["photo_info"]["ref_prompt"]
        opened.page.keyboard.press("Escape")

        video = next(r for r in records["cjai"] if r["type"] == 4 and r["output_url"][0])
        card = f"{CARDS}[data-id='{video['unique_id']}']"
        # No cover of its own: the card shows the video's first frame instead.
        opened.page.wait_for_function(
            "card => document.querySelector(card + ' .thumb video').readyState >= 2", arg=card
        )
        assert _shown(opened, f"{card} .thumb video").name == "output-1.mp4"
        opened.page.click(card)
        opened.page.wait_for_function("() => document.getElementById('video').readyState >= 1")
        assert _shown(opened, "#video").name == "output-1.mp4"
        assert opened.page.locator("#picture").is_hidden()
        assert opened.errors == [] and opened.dialogs == []
    finally:
        opened.page.context.close()


def test_source_filter_names_the_kind_of_work(browser: Browser, account: Account) -> None:
    root, records = account
    opened = open_catalog(browser, root)
    try:
        options = opened.page.eval_on_selector_all(
            "#source option", "options => options.map(o => [o.value, o.textContent])"
        )
        count = {name: len(rows) for name, rows in records.items()}
        assert options == [
            ["", "All sources"],
            ["chanjing", f"chanjing (Lip sync, {count['chanjing']})"],
            ["cjai", f"cjai (AI creation, {count['cjai']})"],
            ["cjavatar", f"cjavatar (Avatar, {count['cjavatar']})"],
            ["cjvideo", f"cjvideo (Synthesized video, {count['cjvideo']})"],
        ]
        opened.page.select_option("#source", "cjavatar")
        opened.wait_for_cards(count["cjavatar"])
        assert sorted(opened.card_ids()) == sorted(r["id"] for r in records["cjavatar"])

        # Durations show in one unit: the video list counts seconds, the lip-sync list ms.
        opened.page.select_option("#source", "cjvideo")
        opened.wait_for_cards(count["cjvideo"])
        video = records["cjvideo"][0]
        badge = opened.page.inner_text(f"{CARDS}[data-id='{video['id']}'] .duration")
        assert badge == f"{video['duration'] // 60}:{video['duration'] % 60:02d}"
        opened.page.select_option("#source", "chanjing")
        timed = next(r for r in records["chanjing"] if "duration" in r)
        badge = opened.page.inner_text(f"{CARDS}[data-id='{timed['id']}'] .duration")
        seconds = round(timed["duration"] / 1000)
        assert badge == f"{seconds // 60}:{seconds % 60:02d}"
        assert opened.errors == []
    finally:
        opened.page.context.close()


def test_sizes_are_in_the_units_of_the_command_line(
    catalog: OpenPage, archive: BuiltArchive
) -> None:
    manifest = sqlite3.connect(archive.root / "manifest.sqlite3")
    try:
        total = manifest.execute("SELECT sum(bytes) FROM files").fetchone()[0]
    finally:
        manifest.close()
    summary = catalog.page.locator("#summary").inner_text()
    assert f" · {human_bytes(total)} · " in summary, summary

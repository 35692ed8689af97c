"""The catalog of an archive in a bucket: `index.html`, `index-data.js` and `index-first.js`.

Against moto's S3 server on loopback: a run writes the three objects at the prefix's root,
`archiver index` rewrites them, every link of the data resolves to an object under the
prefix, and the bucket synced down to a folder is an archive whose own catalog is the same.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from archiver.catalog.build import write_catalog
from archiver.standin import StandIn
from tests.bucket import Bucket
from tests.support import config_dict, expected_items, run_cli, write_config

PREFIX = "videos"
LINKS = ("folder", "sidecar", "video", "image")
FIRST = "window.ARCHIVER_CATALOG_FIRST = "


def catalog_data(text: str, prefix: str = "window.ARCHIVER_CATALOG = ") -> dict[str, Any]:
    body = text[text.index(prefix) + len(prefix) :].rstrip().removesuffix(";")
    value: dict[str, Any] = json.loads(body)
    return value


def body(text: str) -> str:
    """The data script from its `"tasks"` line on: all but the build's token and time."""
    return text.split("\n", 2)[2]


def links(entry: dict[str, Any]) -> list[str]:
    found = [entry[key] for key in LINKS if key in entry]
    return found + [f["href"] for f in entry["files"] if f["href"] is not None]


async def run_into(bucket: Bucket, standin: StandIn, tmp_path: Path) -> Path:
    config = write_config(tmp_path, config_dict(standin, catalog=True, **bucket.s3_config()))
    result = await run_cli("run", "-c", config, "--no-progress")
    assert result.code == 0, result.output
    return config


async def test_a_run_into_a_bucket_writes_its_catalog_at_the_prefix(
    standin: StandIn, bucket: Bucket, tmp_path: Path
) -> None:
    config = await run_into(bucket, standin, tmp_path)

    keys = bucket.objects(f"{PREFIX}/")
    assert bucket.head(f"{PREFIX}/index.html")["ContentType"].startswith("text/html")
    assert bucket.head(f"{PREFIX}/index-data.js")["ContentType"].startswith("text/javascript")
    data = catalog_data(bucket.get(f"{PREFIX}/index-data.js").decode("utf-8"))
    listed = {(t["source"], "task", t["id"]) for t in data["tasks"]}
    listed |= {(t["source"], "template", t["id"]) for t in data["templates"]}
    assert listed == expected_items(standin, ("faceswap", "chanjing"))
    for entry in [*data["tasks"], *data["templates"]]:
        assert entry["state"] == "complete", entry
        for link in links(entry):  # relative to the prefix, as a static site resolves it
            key = f"{PREFIX}/{unquote(link)}"
            assert key in keys or (link.endswith("/") and any(k.startswith(key) for k in keys))
    page = bucket.get(f"{PREFIX}/index.html").decode("utf-8")
    assert f'data-token="{data["token"]}"' in page
    assert bucket.head(f"{PREFIX}/index-first.js")["ContentType"].startswith("text/javascript")
    first = catalog_data(bucket.get(f"{PREFIX}/index-first.js").decode("utf-8"), FIRST)
    assert first["token"] == data["token"], "the first screen is of the same build"
    assert first["counts"] == {"tasks": len(data["tasks"]), "templates": len(data["templates"])}
    assert {(t["source"], t["id"]) for t in first["tasks"]} <= {
        (t["source"], t["id"]) for t in data["tasks"]
    }

    index = await run_cli("index", "-c", config)

    assert index.code == 0, index.output
    assert f"s3://{bucket.name}/{PREFIX}/index.html" in index.output
    again = bucket.get(f"{PREFIX}/index-data.js").decode("utf-8")
    assert catalog_data(again)["token"] != data["token"], "rewritten"
    assert data["token"] not in bucket.get(f"{PREFIX}/index.html").decode("utf-8")
    assert body(again) == body(bucket.get(f"{PREFIX}/index-data.js").decode("utf-8"))
    assert not list((tmp_path / "state").glob(".index-data.js.*")), "no temporary file left"
    assert (
        catalog_data(bucket.get(f"{PREFIX}/index-first.js").decode("utf-8"), FIRST)["token"]
        == catalog_data(again)["token"]
    )


async def test_a_quiet_run_leaves_the_catalog_and_makes_a_missing_one(
    standin: StandIn, bucket: Bucket, tmp_path: Path
) -> None:
    config = await run_into(bucket, standin, tmp_path)
    data = bucket.get(f"{PREFIX}/index-data.js")

    assert (await run_cli("run", "-c", config, "--no-progress")).code == 0
    assert bucket.get(f"{PREFIX}/index-data.js") == data, "nothing new: not rebuilt"

    bucket.client.delete_object(Bucket=bucket.name, Key=f"{PREFIX}/index.html")
    assert (await run_cli("run", "-c", config, "--no-progress")).code == 0
    assert f"{PREFIX}/index.html" in bucket.objects(f"{PREFIX}/")


async def test_the_bucket_synced_down_has_the_same_catalog(
    standin: StandIn, bucket: Bucket, tmp_path: Path
) -> None:
    await run_into(bucket, standin, tmp_path)
    in_bucket = bucket.get(f"{PREFIX}/index-data.js").decode("utf-8")
    synced = tmp_path / "synced"  # as `aws s3 sync s3://bucket/videos synced` leaves it
    for key in bucket.objects(f"{PREFIX}/"):
        path = synced / key.removeprefix(f"{PREFIX}/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(bucket.get(key))
    shutil.copy(synced / ".archiver" / "manifest.sqlite3", synced / "manifest.sqlite3")
    # Described again from the synced sidecars, not from what the run kept.
    db = sqlite3.connect(synced / "manifest.sqlite3")
    with db:
        db.execute("UPDATE items SET catalog = NULL, catalog_texts = NULL")
    db.close()

    write_catalog(synced)

    local = (synced / "index-data.js").read_text(encoding="utf-8")
    assert body(local) == body(in_bucket)
    first = bucket.get(f"{PREFIX}/index-first.js").decode("utf-8")
    assert body(first) == body((synced / "index-first.js").read_text(encoding="utf-8"))
    assert catalog_data(local)["token"] != catalog_data(in_bucket)["token"]


async def test_items_not_described_are_described_from_the_bucket(
    standin: StandIn, bucket: Bucket, tmp_path: Path
) -> None:
    config = await run_into(bucket, standin, tmp_path)
    before = bucket.get(f"{PREFIX}/index-data.js").decode("utf-8")
    manifest = tmp_path / "state" / "manifest.sqlite3"
    db = sqlite3.connect(manifest)
    with db:  # as items taken over from the bucket's sidecars are recorded
        db.execute("UPDATE items SET catalog = NULL, catalog_texts = NULL")
    db.close()

    assert (await run_cli("index", "-c", config)).code == 0

    assert body(bucket.get(f"{PREFIX}/index-data.js").decode("utf-8")) == body(before)
    db = sqlite3.connect(manifest)
    (missing,) = db.execute("SELECT count(*) FROM items WHERE catalog IS NULL").fetchone()
    db.close()
    assert missing == 0

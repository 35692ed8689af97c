"""No task or template id lands on a name the archive uses for itself, under any layout.

Tasks and templates with ids like `SHA256SUMS`, `templates` or `index.html` are archived by
real runs under the layout `{id}` (their folders would sit beside the source's own files):
their folders are encoded reversibly, their sidecars keep the ids, and later runs, `verify`
and `sha256sum -c` all keep working.
"""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal
from urllib.parse import unquote

import pytest

from archiver.sources.records import ArchiveItem
from archiver.standin import StandIn
from archiver.store.paths import RESERVED, item_folder
from tests.support import config_dict, run_cli, sidecars, write_config

TASK_IDS = ("SHA256SUMS", "templates", "undated", "index.html", "Metadata.JSON", "sha256sums")


def plant_reserved_ids(standin: StandIn) -> None:
    for task_id in TASK_IDS:
        standin.dataset.add_vth_task(id=task_id)
    template = dict(standin.dataset.templates()[0], id="SHA256SUMS")
    standin.dataset.add_vth_task(id="uses-a-reserved-template", videoTemp=template)
    standin.dataset.add_vth_task(id="templates2", createdAt=None)


async def test_reserved_ids_are_encoded_and_every_later_run_works(
    standin: StandIn, tmp_path: Path
) -> None:
    plant_reserved_ids(standin)
    config = write_config(tmp_path, config_dict(standin, only="faceswap", layout="{id}"))
    archive = tmp_path / "archive"
    first = await run_cli("run", "-c", config)
    assert first.code == 0, first.output

    source = archive / "faceswap"
    assert (source / "SHA256SUMS").is_file()
    templates = {p.name for p in (source / "templates").iterdir()}
    assert "%53HA256SUMS" in templates
    kinds = {json.loads((source / "templates" / t / "metadata.json").read_text())["kind"]
             for t in templates}  # fmt: skip
    assert kinds == {"template"}  # no task among the templates
    docs = sidecars(archive)
    for task_id in TASK_IDS:
        folder = source / f"%{ord(task_id[0]):02X}{task_id[1:]}"
        assert json.loads((folder / "metadata.json").read_text())["id"] == task_id
        assert unquote(folder.name, errors="surrogatepass") == task_id
        assert ("faceswap", "task", task_id) in docs
    assert ("faceswap", "template", "SHA256SUMS") in docs
    assert (source / "undated" / "templates2" / "metadata.json").is_file()
    assert {p.name for p in source.iterdir() if p.name.lower() in RESERVED} == {
        "SHA256SUMS",
        "templates",
        "undated",
    }

    for _ in range(2):  # a second run used to meet "Is a directory" and end without a report
        again = await run_cli("run", "-c", config)
        assert again.code == 0, again.output
    verified = await run_cli("verify", "-c", config)
    assert verified.code == 0, verified.output
    checked = subprocess.run(
        ["sha256sum", "-c", "--quiet", "faceswap/SHA256SUMS"],
        cwd=archive,
        capture_output=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout


@pytest.mark.parametrize(
    "layout", ["{id}", "{year}/{month}/{id}", "{id}/{year}", "{id}SUMS", "templates/{id}", "x{id}"]
)
@pytest.mark.parametrize("dated", [True, False])
@pytest.mark.parametrize("kind", ["task", "template"])
def test_no_layout_puts_an_item_on_a_reserved_name(
    layout: str, dated: bool, kind: Literal["task", "template"]
) -> None:
    when = datetime(2025, 9, 21, tzinfo=UTC) if dated else None
    seen = set()
    for name in (*RESERVED, "SHA256", "Templates", ".archiver", "1"):
        folder = item_folder("faceswap", ArchiveItem(kind, name, when, (), {}), layout)
        fixed = 1 if kind == "template" or not dated else 0  # `templates/`, `undated/`
        assert not any(part.lower() in RESERVED for part in folder.parts[1 + fixed :])
        if kind == "template" or not dated or layout == "{id}":
            assert unquote(folder.name, errors="surrogatepass") == name
        assert folder not in seen
        seen.add(folder)

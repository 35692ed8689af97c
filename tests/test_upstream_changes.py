"""A record that changed upstream: its sidecar is refreshed, new media archived, nothing lost."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from archiver.standin import DatasetSpec
from tests.conftest import StandInFactory
from tests.support import config_dict, run_cli, write_config

SPEC = DatasetSpec(vth_tasks=20, chanjing_tasks=0, succeeded_share=1.0, templates=2)


def digests(folder: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in folder.iterdir()
        if p.name != "metadata.json"
    }


async def test_a_retitled_template_refreshes_sidecars_without_downloads(
    make_standin: StandInFactory, tmp_path: Path
) -> None:
    standin = await make_standin(SPEC)
    config = write_config(tmp_path, config_dict(standin, only="faceswap"))
    assert (await run_cli("run", "-c", config)).code == 0
    template_id = standin.dataset.succeeded_vth()[0]["videoTemp"]["id"]
    folder = tmp_path / "archive" / "faceswap" / "templates" / str(template_id)
    before = digests(folder)
    standin.dataset.retitle_template(template_id, "A new title")
    standin.stats.reset()
    result = await run_cli("run", "-c", config, "--no-progress")
    assert result.code == 0
    assert standin.stats.media_bytes_sent == 0
    assert json.loads((folder / "metadata.json").read_text())["record"]["title"] == "A new title"
    assert digests(folder) == before
    users = [r for r in standin.dataset.succeeded_vth() if r["videoTemp"]["id"] == template_id]
    for record in users:
        sidecar = next(
            (tmp_path / "archive" / "faceswap").glob(f"*/*/{record['id']}/metadata.json")
        )
        assert json.loads(sidecar.read_text())["record"]["videoTemp"]["title"] == "A new title"
    assert "updated" in result.output


async def test_a_new_template_version_is_archived_beside_the_old(
    make_standin: StandInFactory, tmp_path: Path
) -> None:
    standin = await make_standin(SPEC)
    config = write_config(tmp_path, config_dict(standin, only="faceswap"))
    assert (await run_cli("run", "-c", config)).code == 0
    template_id = standin.dataset.succeeded_vth()[0]["videoTemp"]["id"]
    folder = tmp_path / "archive" / "faceswap" / "templates" / str(template_id)
    old = (folder / "video.v2.mp4").read_bytes()
    standin.dataset.set_template_version(template_id, "video", 3)
    standin.stats.reset()
    assert (await run_cli("run", "-c", config)).code == 0
    assert (folder / "video.v2.mp4").read_bytes() == old  # kept, never overwritten
    new_url = next(
        r for r in standin.dataset.succeeded_vth() if r["videoTemp"]["id"] == template_id
    )["videoTemp"]["video"]
    new = standin.dataset.media_bytes(new_url)
    assert new != old
    assert (folder / "video.v3.mp4").read_bytes() == new
    sidecar = json.loads((folder / "metadata.json").read_text())
    assert sidecar["files"]["video"]["name"] == "video.v3.mp4"
    assert [f["name"] for f in sidecar["previous_files"]] == ["video.v2.mp4"]
    fetched = [r.path for r in standin.stats.media_requests]
    assert len(fetched) == 1  # only the new version
    verify = await run_cli("verify", "-c", config)
    assert verify.code == 0, verify.output
    sums = (tmp_path / "archive" / "faceswap" / "SHA256SUMS").read_text()
    assert "video.v2.mp4" in sums and "video.v3.mp4" in sums

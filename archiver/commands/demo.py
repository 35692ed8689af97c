"""`archiver demo`: the whole tool, end to end, against a bundled stand-in of both services.

Both services means every list they have: the face-swap task history, and the whole Chanjing
account (lip-sync and synthesized videos, custom avatars, AI images and videos).

The stand-in runs on loopback ports in the same process; the demo writes an ordinary config
file for it (under `.archiver/`), then archives exactly as `archiver run` would. Its data comes
from a fixed seed, so a second demo into the same folder finds everything already archived.
"""

from __future__ import annotations

import asyncio
import re
import shlex
import sys
from pathlib import Path

from archiver.commands.run import RunOptions, finish_run, print_summary, run_cancellable
from archiver.config.load import load_config
from archiver.errors import ArchiveWriteError
from archiver.pipeline.job import ArchiveJob
from archiver.reporting.console import BarProgress, NoProgress
from archiver.reporting.stats import RunStats
from archiver.standin import DatasetSpec, StandIn
from archiver.standin.server import (
    DEMO_CHANJING_APP_ID,
    DEMO_CHANJING_SECRET_KEY,
    DEMO_VTH_TOKEN,
)
from archiver.store.archivefs import archive_folder, atomic_file
from archiver.store.lock import ArchiveLock
from archiver.store.manifest import MANIFEST, ManifestStore

CONFIG_TEMPLATE = """\
# Written by `archiver demo`: the archive of a local stand-in of both services.
# `archiver status -c` and `archiver verify -c` with this file look at the archive; the
# stand-in runs only inside `archiver demo`, so `archiver run` refuses it (demo: true).
demo: true
archive_dir: ..
concurrency: 8
sources:
  faceswap:
    type: video_task_history
    base_url: {api_url}
    token: {vth_token}
    page_size: 50
  chanjing:
    type: chanjing_lip_sync
    base_url: {api_url}
    app_id: {app_id}
    secret_key: {secret_key}
    page_size: 50
  chanjing-videos:
    type: chanjing_video
    base_url: {api_url}
    app_id: {app_id}
    secret_key: {secret_key}
  chanjing-avatars:
    type: chanjing_avatar
    base_url: {api_url}
    app_id: {app_id}
    secret_key: {secret_key}
  chanjing-ai:
    type: chanjing_ai_creation
    base_url: {api_url}
    app_id: {app_id}
    secret_key: {secret_key}
"""


def run_demo(directory: Path, *, tasks: int, interactive: bool, verbosity: int) -> int:
    """Archive the stand-in's tasks into `directory`; returns the exit status."""
    directory = directory.resolve()
    config_path = directory / ".archiver" / "demo-config.yaml"
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ArchiveWriteError(f"cannot create {directory}: {exc.strerror}") from exc
    # Real pictures and videos, so the catalog the demo writes shows covers and plays videos.
    spec = DatasetSpec(
        vth_tasks=tasks,
        chanjing_tasks=tasks,
        chanjing_videos=tasks // 2,
        chanjing_avatars=max(tasks // 5, 1),
        ai_creations=tasks // 2,
        decodable_media=True,
    )
    with ArchiveLock(directory):
        manifest = ManifestStore.open(directory / MANIFEST)
        try:
            stats = run_cancellable(
                lambda: _demo(spec, config_path, manifest, interactive and verbosity >= 0)
            )
        finally:
            manifest.close()
    print_summary(stats, interactive=interactive, verbosity=max(verbosity, 0))
    if verbosity >= 0:
        for line in next_steps(directory, config_path):
            print(line, file=sys.stderr)
    return stats.exit_status


def next_steps(directory: Path, config_path: Path) -> list[str]:
    """What to try after the demo: the catalog, and the commands that read the archive."""
    index = directory / "index.html"
    lines = [f"open {index} in a browser to see the archive"] if index.exists() else []
    config = _shell_word(str(config_path))
    return [
        *lines,
        "then look at it as you would at your own archive:",
        f"  archiver status -c {config}",
        f"  archiver verify -c {config}",
    ]


def _shell_word(text: str) -> str:
    # Quoted only when it must be, so the usual path reads plainly and still pastes right.
    return text if re.fullmatch(r"[\w@%+=:,./-]+", text) else shlex.quote(text)


async def _demo(
    spec: DatasetSpec, config_path: Path, manifest: ManifestStore, progress: bool
) -> RunStats:
    async with StandIn(spec) as standin:
        text = CONFIG_TEMPLATE.format(
            api_url=standin.api_url,
            vth_token=DEMO_VTH_TOKEN,
            app_id=DEMO_CHANJING_APP_ID,
            secret_key=DEMO_CHANJING_SECRET_KEY,
        )
        await asyncio.to_thread(_write_config, config_path, text)
        config = load_config(config_path)
        run_id = manifest.begin_run("demo")
        bars = BarProgress() if progress else None
        job = ArchiveJob(config, manifest, bars or NoProgress(), run_id=run_id)
        try:
            stats = await job.run(config.sources)
        finally:
            if bars is not None:
                bars.close()
        # The manifest's connection belongs to this thread; the work is brief.
        finish_run(config, manifest, run_id, stats, RunOptions(command="demo"))
        return stats


def _write_config(path: Path, text: str) -> None:
    # Inside the archive, so through the archive's own writer: never through a planted link.
    with (
        archive_folder(path.parent.parent, path.parent.name) as folder,
        atomic_file(folder, path.name, durable=False) as out,
    ):
        out.write(text.encode("utf-8"))

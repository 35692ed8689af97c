"""`archiver demo`: the whole tool, end to end, against a bundled stand-in of both services.

Both services means every list they have: the face-swap task history, and the whole Chanjing
account (lip-sync and synthesized videos, custom avatars, AI images and videos).

The stand-in runs on loopback ports in the same process; the demo writes an ordinary config
file for it (under `.archiver/`), then archives exactly as `archiver run` would. Its data comes
from a fixed seed, so a second demo into the same folder finds everything already archived.

`archiver demo --s3 s3://bucket/prefix DIR` archives into a bucket instead, DIR being its state
folder (the manifest, the lock and the run reports). The bucket's endpoint is `--s3-endpoint`,
else the standard AWS chain's (`AWS_ENDPOINT_URL`), and so are its credentials, which are never
written anywhere. The run is `archiver run`'s own bucket run, with the stand-in served from a
thread: that run opens an event loop for each step around the job (the bucket's check, lock and
manifest copy), and the stand-in must answer across all of them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import shlex
import signal
import sys
import threading
from pathlib import Path
from types import TracebackType

from archiver.commands.run import (
    RunOptions,
    finish_run,
    print_summary,
    run_archive,
    run_cancellable,
)
from archiver.config.load import load_config, split_bucket_url
from archiver.config.settings import BucketSettings
from archiver.errors import ArchiveWriteError, UsageError
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
{archive}
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


LOCAL_ARCHIVE = "archive_dir: .."
BUCKET_ARCHIVE = """\
archive_dir: {url}
state_dir: ..   # the manifest, the lock and the run reports: the demo's folder
s3:
  {endpoint}"""


def demo_bucket(url: str, endpoint: str | None) -> BucketSettings:
    """The bucket of `--s3 URL` and `--s3-endpoint URL`; `UsageError` if either is not one."""
    try:
        bucket, prefix = split_bucket_url(url)
    except ValueError as exc:
        raise UsageError(f"--s3: {exc}") from None
    if endpoint is not None and not re.match(r"https?://[^/]+", endpoint):
        raise UsageError(f"--s3-endpoint: expected an http(s) URL, got {endpoint!r}")
    return BucketSettings(bucket=bucket, prefix=prefix, endpoint_url=endpoint)


def run_demo(
    directory: Path,
    *,
    tasks: int,
    interactive: bool,
    verbosity: int,
    bucket: BucketSettings | None = None,
) -> int:
    """Archive the stand-in's tasks into `directory`, or into `bucket` with `directory` as its
    state folder; returns the exit status."""
    directory = directory.resolve()
    config_path = directory / ".archiver" / "demo-config.yaml"
    # Real pictures and videos, so the catalog the demo writes shows covers and plays videos.
    spec = DatasetSpec(
        vth_tasks=tasks,
        chanjing_tasks=tasks,
        chanjing_videos=tasks // 2,
        chanjing_avatars=max(tasks // 5, 1),
        ai_creations=tasks // 2,
        decodable_media=True,
    )
    if bucket is not None:
        stats = _bucket_demo(spec, bucket, config_path, interactive and verbosity >= 0)
    else:
        _make_folder(directory)
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
        for line in next_steps(directory, config_path, bucket):
            print(line, file=sys.stderr)
    return stats.exit_status


def _make_folder(directory: Path) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ArchiveWriteError(f"cannot create {directory}: {exc.strerror}") from exc


def _bucket_demo(
    spec: DatasetSpec, bucket: BucketSettings, config_path: Path, progress: bool
) -> RunStats:
    """The demo into a bucket: `archiver run`'s bucket run, its config pointed at the stand-in."""
    from archiver.store.remote import check_bucket

    check_bucket(bucket)  # exit 2 before the demo's folder is made or the stand-in started
    _make_folder(config_path.parent.parent)
    with StandInThread(spec) as api_url:
        _write_config(config_path, _config_text(api_url, _bucket_lines(bucket)))
        config = load_config(config_path)
        # `demo: true` makes `archiver run` refuse the config, whose stand-in is gone by then;
        # here, inside the demo, the stand-in answers.
        config = dataclasses.replace(config, demo=False)
        return run_archive(config, RunOptions(command="demo", progress=progress))


def _bucket_lines(bucket: BucketSettings) -> str:
    # JSON strings are YAML strings: a prefix or URL with `#` or `: ` stays one value.
    endpoint = (
        f"endpoint_url: {json.dumps(bucket.endpoint_url)}"
        if bucket.endpoint_url is not None
        else "# endpoint_url: from the AWS chain (AWS_ENDPOINT_URL), as when the demo ran"
    )
    return BUCKET_ARCHIVE.format(url=json.dumps(bucket.url), endpoint=endpoint)


def _config_text(api_url: str, archive: str) -> str:
    return CONFIG_TEMPLATE.format(
        archive=archive,
        api_url=api_url,
        vth_token=DEMO_VTH_TOKEN,
        app_id=DEMO_CHANJING_APP_ID,
        secret_key=DEMO_CHANJING_SECRET_KEY,
    )


class StandInThread:
    """The stand-in served by a thread of its own while the block runs; yields its API URL."""

    def __init__(self, spec: DatasetSpec) -> None:
        self.spec = spec
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._url = ""
        self._thread = threading.Thread(target=self._main, name="demo-standin", daemon=True)

    def __enter__(self) -> str:
        # Signals are the main thread's to take: a thread started with them blocked never
        # takes one, so the run's handling of Ctrl-C and SIGTERM stays as it is.
        signals = {signal.SIGINT, signal.SIGTERM}
        before = signal.pthread_sigmask(signal.SIG_BLOCK, signals)
        try:
            self._thread.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, before)
        self._ready.wait()
        if self._error is not None:
            raise self._error
        return self._url

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join()

    def _main(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # told in the caller's thread by __enter__
            self._error = exc
        finally:
            self._ready.set()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        async with StandIn(self.spec) as standin:
            self._url = standin.api_url
            self._loop = asyncio.get_running_loop()
            self._ready.set()
            await self._stop.wait()


def next_steps(
    directory: Path, config_path: Path, bucket: BucketSettings | None = None
) -> list[str]:
    """What to try after the demo: the catalog, and the commands that read the archive."""
    index = directory / "index.html"
    lines = [f"open {index} in a browser to see the archive"] if index.exists() else []
    if bucket is not None:
        lines = [f"the archive is in {bucket.url}; its manifest and run reports in {directory}"]
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
        text = _config_text(standin.api_url, LOCAL_ARCHIVE)
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

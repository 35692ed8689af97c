"""The benchmark's cases: each sets up its data, runs its commands alternated, and judges.

Every case runs the archiver as a user would (`python -m archiver run -c FILE --no-progress`,
default settings: fsync durability, catalog, templates), in a fresh process per measurement.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from archiver.standin import DatasetSpec
from bench.data import SOURCE, TOKEN, Workload, clear, fresh_folder
from bench.measure import BenchError, Measurement, alternate, median_rss, median_wall, run_measured
from bench.servers import Nginx, StandInProcess

MIB = 1024 * 1024


@dataclass
class Sizes:
    """How big each case is: the issue's sizes, or a smoke-test version of them."""

    small_tasks: int = 3_000
    big_bytes: int = 1024 * MIB
    memory_tasks: int = 50_000
    memory_rounds: int = 1
    rerun_tasks: int = 10_000
    rated_files: int = 40  # the real-world case: about 10-20 s a round at the rate below
    rated_rate: int = 4 * MIB  # bytes/s per connection
    scale_tasks: int = 200_000

    @classmethod
    def quick(cls) -> Sizes:
        return cls(
            small_tasks=300,
            big_bytes=64 * MIB,
            memory_tasks=5_000,
            rerun_tasks=1_000,
            rated_files=8,
            scale_tasks=2_000,
        )


@dataclass
class CaseResult:
    """One row of the table, and the figures behind it."""

    case: str
    archiver: str
    peers: str
    goal: str
    met: bool | None  # None: not measured
    verdict: str
    rounds: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


@dataclass
class Bench:
    """What every case shares."""

    tools: dict[str, str]
    work: Path
    www: Path
    nginx: Nginx
    python: str
    env: dict[str, str]
    rounds: int
    sizes: Sizes
    say: Callable[[str], None]
    workloads: dict[str, Workload] = field(default_factory=dict)

    def workload(self, name: str, spec: DatasetSpec) -> Workload:
        self.say(f"  preparing {name}: {spec.vth_tasks:,} tasks")
        workload = Workload(name, spec, self.work / name, self.www, self.nginx.url)
        workload.export()
        self.workloads[name] = workload
        return workload

    def archiver(self, config: Path, command: str = "run") -> Measurement:
        """`archiver run` (or another command) with `config`, measured."""
        argv = [self.python, "-m", "archiver", command, "-c", str(config)]
        if command == "run":
            argv.append("--no-progress")
        return run_measured(argv, env=self.env, log=config.parent / f"{command}.log")

    def archive_anew(self, w: Workload, api_url: str, **settings: Any) -> Measurement:
        """`archiver run` into a new, empty archive of its own (`settings` beyond defaults)."""
        folder = fresh_folder(w.work / "runs", "archiver")
        measured = self.archiver(w.write_config(folder, api_url, **settings))
        w.archives.append(folder / "archive")
        return measured

    def tool(
        self, *argv: str | Path, cwd: Path | None = None, log: Path | None = None
    ) -> Measurement:
        """A peer or another tool, measured; `cwd` is where it writes, `log` its output."""
        log = log or (cwd or self.work) / "tool.log"
        return run_measured([self.tools[str(argv[0])], *argv[1:]], cwd=cwd, log=log)

    def peer_folder(self, w: Workload, name: str) -> Path:
        return fresh_folder(w.work / "runs", name)

    def alternate(
        self,
        commands: dict[str, Callable[[], Measurement]],
        prepare: Callable[[str], None] = lambda name: None,
        rounds: int | None = None,
    ) -> dict[str, list[Measurement]]:
        return alternate(commands, rounds or self.rounds, prepare, self.say)


def small_workload(b: Bench) -> Workload:
    """The small-files dataset, prepared once for every case that uses it."""
    if "small" in b.workloads:
        return b.workloads["small"]
    spec = DatasetSpec(
        vth_tasks=b.sizes.small_tasks,
        chanjing_tasks=0,
        succeeded_share=1.0,
        media_min_bytes=1_000,
        media_max_bytes=30_000,
    )
    w = b.workload("small", spec)
    w.write_peer_inputs()
    return w


def big_workload(b: Bench) -> Workload:
    """One task whose video is `sizes.big_bytes` of random bytes, prepared once."""
    if "big" in b.workloads:
        return b.workloads["big"]
    spec = DatasetSpec(vth_tasks=1, chanjing_tasks=0, templates=0, succeeded_share=1.0)
    w = b.workload("big", spec)
    _write_big(w.local_path(big_video(w)), b.sizes.big_bytes)
    w.total_bytes = sum(w.local_path(url).stat().st_size for url in w.urls)
    return w


def big_video(w: Workload) -> str:
    """The URL of the big workload's large file."""
    return next(url for url in w.urls if url.endswith(".mp4"))


def small_files(b: Bench) -> CaseResult:
    """Thousands of small files: the archiver's own overhead per file, against curl and aria2c."""
    w = small_workload(b)
    spec = w.spec
    with StandInProcess(w.spec_json, w.media_base_url, w.work) as api:
        commands = {
            "archiver": lambda: b.archive_anew(w, api.api_url),
            "curl": lambda: b.tool(
                "curl",
                *("-sSf", "--create-dirs", "-Z", "--parallel-max", "16", "-K", w.curl_list),
                cwd=b.peer_folder(w, "curl"),
            ),
            "aria2c": lambda: b.tool(
                "aria2c",
                *("-q", "-j", "16", "-i", w.aria2_list),
                cwd=b.peer_folder(w, "aria2c"),
            ),
            # A reference, not a peer: the least a Python program on aiohttp does for the
            # same files (bench/fetchall.py).
            "aiohttp": lambda: run_measured(
                [b.python, "-m", "bench.fetchall", w.aria2_list, b.peer_folder(w, "aiohttp")],
                env=b.env,
                log=w.work / "fetchall.log",
            ),
        }
        results = b.alternate(commands)
    archived = _checksum_lines(w.archives[-1])
    if archived != len(w.urls):
        raise BenchError(f"small files: the archive holds {archived} files of {len(w.urls)}")
    ours, curl, aria2c = (median_wall(results[n]) for n in ("archiver", "curl", "aria2c"))
    floor = median_wall(results["aiohttp"])
    return CaseResult(
        case=(
            f"small files: {spec.vth_tasks:,} tasks of one source "
            f"({len(w.urls):,} files, {w.total_bytes / 1e6:.0f} MB)"
        ),
        archiver=f"{ours:.2f} s",
        peers=f"bare aiohttp loop {floor:.2f} s, curl {curl:.2f} s, aria2c {aria2c:.2f} s",
        # The archiver's own cost per file beside the least a Python program on aiohttp does
        # for the same files; at or under it, the archiver is at or below aria2c too.
        goal="≤ 1.3× the bare aiohttp loop",
        met=ours <= 1.3 * floor,
        verdict=(
            f"{ours / floor:.2f}× the bare loop ({ours / curl:.2f}× curl, "
            f"{ours / aria2c:.2f}× aria2c)"
        ),
        rounds=_walls(results),
        notes=[
            "the bare aiohttp loop (`python -m bench.fetchall`) only fetches, hashes and writes "
            f"the files, 16 at a time: no listing, sidecar, manifest or flush "
            f"({floor / curl:.2f}× curl)",
        ],
    )


def one_big_file(b: Bench) -> CaseResult:
    """One large file: throughput, hashing and the final fsync included, against `curl -o`."""
    w = big_workload(b)
    video = big_video(w)
    runs = w.work / "runs"
    with StandInProcess(w.spec_json, w.media_base_url, w.work) as api:
        commands = {
            "archiver": lambda: b.archive_anew(w, api.api_url),
            "curl": lambda: b.tool(
                "curl", "-sSf", "-o", "video.mp4", video, cwd=b.peer_folder(w, "curl")
            ),
            # A reference, not the peer: curl, then the file system flushed as the archiver
            # flushes it (`sync -f` is syncfs), so both pay for the disk.
            "curl+sync": lambda: run_measured(
                [
                    "sh",
                    "-c",
                    '"$0" -sSf -o video.mp4 "$1" && sync -f video.mp4',
                    b.tools["curl"],
                    video,
                ],
                cwd=b.peer_folder(w, "curl-sync"),
                log=w.work / "curl-sync.log",
            ),
        }
        # A few big files deleted cost the next run nothing; gigabytes kept would fill the disk.
        results = b.alternate(commands, lambda name: clear(runs))
    clear(runs)
    ours = w.total_bytes / median_wall(results["archiver"])
    curl = b.sizes.big_bytes / median_wall(results["curl"])
    durable = b.sizes.big_bytes / median_wall(results["curl+sync"])
    return CaseResult(
        case=f"one {_size(b.sizes.big_bytes)} file",
        archiver=f"{ours / MIB:,.0f} MiB/s",
        peers=f"curl -o {curl / MIB:,.0f} MiB/s",
        goal="≥ 0.9× curl",
        met=ours >= 0.9 * curl,
        verdict=f"{ours / curl:.2f}× curl",
        rounds=_walls(results),
        notes=[
            "throughput = bytes / wall time of the whole process (start-up, listing, "
            "sha256, rename and fsync included for the archiver; curl does not fsync)",
            f"curl -o, then `sync -f` on the file (flushed as the archiver flushes): "
            f"{durable / MIB:,.0f} MiB/s; the archiver is {ours / durable:.2f}× that",
        ],
    )


def peak_memory(b: Bench) -> CaseResult:
    """Many tasks with tiny media: the peak RSS of one run."""
    spec = DatasetSpec(
        vth_tasks=b.sizes.memory_tasks,
        chanjing_tasks=0,
        succeeded_share=1.0,
        media_min_bytes=100,
        media_max_bytes=1_000,
    )
    w = b.workload("memory", spec)
    with StandInProcess(w.spec_json, w.media_base_url, w.work) as api:
        results = b.alternate(
            {"archiver": lambda: b.archive_anew(w, api.api_url)}, rounds=b.sizes.memory_rounds
        )
    rss = median_rss(results["archiver"])
    wall = median_wall(results["archiver"])
    return CaseResult(
        case=f"{spec.vth_tasks:,} tasks with tiny media ({len(w.urls):,} files of 0.1 to 1 KB)",
        archiver=f"peak RSS {rss / 1e6:.0f} MB",
        peers="",
        goal="≤ 100 MB",
        met=rss <= 100e6,
        verdict=f"{rss / 1e6:.0f} MB; the run took {wall:.1f} s "
        f"({len(w.urls) / wall:,.0f} files/s)",
        rounds={"archiver peak RSS": [f"{m.max_rss / 1e6:.0f} MB" for m in results["archiver"]]}
        | _walls(results),
    )


def rerun_nothing_new(b: Bench) -> CaseResult:
    """A nightly run that finds nothing new: against listing the same pages and nothing else."""
    spec = DatasetSpec(
        vth_tasks=b.sizes.rerun_tasks,
        chanjing_tasks=0,
        succeeded_share=1.0,
        media_min_bytes=100,  # nothing is fetched again: small files only make setup quicker
        media_max_bytes=1_000,
    )
    w = b.workload("rerun", spec)
    fetched: list[tuple[int, int]] = []
    with StandInProcess(w.spec_json, w.media_base_url, w.work) as api:
        config = w.write_config(w.work / "rerun", api.api_url)
        first = b.archiver(config)
        b.say(f"    initial archive: {first.wall:.2f} s")

        def rerun() -> Measurement:
            position = b.nginx.log_position()
            measured = b.archiver(config)
            fetched.append(b.nginx.media_bytes(position, f"/{w.name}/"))
            return measured

        listing = [b.python, "-m", "bench.listing", "--api-url", api.api_url, "--token", TOKEN]
        commands = {
            "archiver": rerun,
            "listing": lambda: run_measured(listing, env=b.env, log=config.parent / "listing.log"),
        }
        results = b.alternate(commands)
    ours, alone = median_wall(results["archiver"]), median_wall(results["listing"])
    media = max(sent for _, sent in fetched)
    return CaseResult(
        case=f"rerun with nothing new on {spec.vth_tasks:,} archived tasks",
        archiver=f"{ours:.2f} s, {media:,} media bytes",
        peers=f"listing alone {alone:.2f} s",
        goal="≤ 1.5× the listing, 0 bytes",
        met=ours <= 1.5 * alone and media == 0,
        verdict=f"{ours / alone:.2f}× the listing, {media:,} bytes",
        rounds=_walls(results)
        | {"media fetched": [f"{n} requests, {sent} bytes" for n, sent in fetched]},
        notes=[
            f"initial archive of {len(w.urls):,} files: {first.wall:.1f} s",
            "listing alone = `python -m bench.listing`: the same pages, one after another, "
            "by a bare aiohttp loop in a fresh process",
        ],
    )


def verify_archive(b: Bench) -> CaseResult:
    """`archiver verify` against `sha256sum -c` over the same files."""
    case = "`archiver verify` on the small-files archive"
    goal = "≥ 0.8× sha256sum"
    if not _has_verify(b):
        return CaseResult(case, "not available", "", goal, None, "`archiver verify` not available")
    w = b.workloads.get("small")
    if w is None or not w.archives:
        raise BenchError("the verify case needs the small-files case's archive: run both")
    archive = w.archives[-1]
    sums = archive / SOURCE / "SHA256SUMS"
    size = sum(
        (archive / line.split("  ", 1)[1]).stat().st_size
        for line in sums.read_text(encoding="utf-8").splitlines()
        if "  " in line
    )
    commands = {
        "archiver": lambda: b.archiver(archive.parent / "config.yaml", "verify"),
        # Its log goes beside the archive: a file inside it is a stray to the next verify.
        "sha256sum": lambda: b.tool(
            "sha256sum",
            *("--quiet", "-c", f"{SOURCE}/SHA256SUMS"),
            cwd=archive,
            log=archive.parent / "sha256sum.log",
        ),
    }
    results = b.alternate(commands)
    ours = size / median_wall(results["archiver"])
    theirs = size / median_wall(results["sha256sum"])
    return CaseResult(
        case=f"{case} ({_checksum_lines(archive):,} files, {size / 1e6:.0f} MB)",
        archiver=f"{ours / MIB:,.0f} MiB/s",
        peers=f"sha256sum {theirs / MIB:,.0f} MiB/s",
        goal=goal,
        met=ours >= 0.8 * theirs,
        verdict=f"{ours / theirs:.2f}× sha256sum",
        rounds=_walls(results),
    )


def _has_verify(b: Bench) -> bool:
    probe = [b.python, "-m", "archiver", "verify", "--help"]
    done = subprocess.run(probe, env=b.env, capture_output=True, check=False)
    return done.returncode == 0


def _checksum_lines(archive: Path) -> int:
    sums = archive / SOURCE / "SHA256SUMS"
    return len(sums.read_text(encoding="utf-8").splitlines()) if sums.exists() else 0


def _write_big(path: Path, size: int) -> None:
    block = os.urandom(16 * MIB)
    with open(path, "wb") as out:
        for start in range(0, size, len(block)):
            out.write(block[: min(len(block), size - start)])


def _walls(results: dict[str, list[Measurement]]) -> dict[str, list[str]]:
    return {f"{name} wall": [f"{m.wall:.3f} s" for m in ms] for name, ms in results.items()}


def _size(count: int) -> str:
    return f"{count / 1024**3:g} GiB" if count >= 1024**3 else f"{count / MIB:g} MiB"


CASES: dict[str, Callable[[Bench], CaseResult]] = {
    "small": small_files,
    "big": one_big_file,
    "memory": peak_memory,
    "rerun": rerun_nothing_new,
    "verify": verify_archive,
}

"""The cases of issue 14 beyond the loopback ones: a CDN's pace, a large archive, start-up.

- real world: media held to a few MB/s per connection (nginx `limit_rate`, as a CDN gives
  one connection) and listing pages that take their time; the wall time against the least
  it can be, `total bytes / (concurrency × rate)` plus the first page, beside `aria2c -j N`.
- scale: an archive of many tasks with tiny media: peak RSS of the first run, a rerun with
  nothing new against the bare listing, `archiver index` and `archiver status`.
- start-up: `archiver run` with nothing new on a one-task archive, against the bare
  `python -c "import aiohttp"` that any aiohttp program pays.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence

from archiver.standin import DatasetSpec
from bench.cases import CASES as LOOPBACK_CASES
from bench.cases import MIB, Bench, CaseResult, _walls
from bench.data import TOKEN
from bench.measure import Measurement, median_rss, median_wall, run_measured
from bench.s3case import s3_upload
from bench.servers import Nginx, StandInProcess

CONCURRENCY = 8  # the archiver's default `concurrency`; aria2c gets as many connections
PAGE_DELAY = 0.2  # seconds per listing page: the middle of the 100-300 ms a service takes


def real_world(b: Bench) -> CaseResult:
    """Media at a CDN's pace per connection, slow listing pages: is any slot ever idle?"""
    spec = DatasetSpec(
        vth_tasks=b.sizes.rated_files // 2,  # a video and its cover per task
        chanjing_tasks=0,
        templates=0,
        succeeded_share=1.0,
        media_min_bytes=2_000_000,
        media_max_bytes=20_000_000,
    )
    w = b.workload(Nginx.RATED, spec)
    w.write_peer_inputs()
    with StandInProcess(w.spec_json, w.media_base_url, w.work, page_delay=PAGE_DELAY) as api:
        commands = {
            "archiver": lambda: b.archive_anew(w, api.api_url),
            "aria2c": lambda: b.tool(
                "aria2c",
                *("-q", "-j", str(CONCURRENCY), "-i", w.aria2_list),
                cwd=b.peer_folder(w, "aria2c"),
            ),
        }
        results = b.alternate(commands)
    rate = b.nginx.rate
    ideal = PAGE_DELAY + w.total_bytes / (CONCURRENCY * rate)
    # No schedule beats the largest file alone at one connection's pace.
    largest = max(w.local_path(url).stat().st_size for url in w.urls)
    bound = PAGE_DELAY + max(w.total_bytes / (CONCURRENCY * rate), largest / rate)
    ours, aria2c = median_wall(results["archiver"]), median_wall(results["aria2c"])
    size = {url: w.local_path(url).stat().st_size / rate for url in w.urls}
    # Listing order, no slot ever idle: per file is what aria2c can reach; per task (a task's
    # files one after another, as the archiver's workers take them) is what the archiver can.
    per_file = PAGE_DELAY + _makespan([size[url] for url in w.urls], CONCURRENCY)
    per_task = PAGE_DELAY + _makespan(
        [sum(size[url] for url in item) for item in w.items], CONCURRENCY
    )
    return CaseResult(
        case=(
            f"real world: {len(w.urls)} files of 2 to 20 MB ({w.total_bytes / 1e6:.0f} MB) "
            f"at {rate / MIB:g} MiB/s per connection, {PAGE_DELAY * 1000:.0f} ms per page"
        ),
        archiver=f"{ours:.2f} s",
        peers=f"aria2c -j {CONCURRENCY} {aria2c:.2f} s",
        goal=f"≤ 1.05× ideal ({ideal:.2f} s)",
        met=ours <= 1.05 * ideal,
        verdict=f"{ours / ideal:.3f}× ideal; aria2c {aria2c / ideal:.3f}× ideal",
        rounds=_walls(results),
        notes=[
            f"ideal = first page + total bytes / ({CONCURRENCY} connections × "
            f"{rate / MIB:g} MiB/s) = {ideal:.2f} s; the largest file ({largest / 1e6:.1f} MB) "
            f"alone takes {largest / rate:.2f} s, so no schedule ends before {bound:.2f} s "
            f"(archiver {ours / bound:.3f}×, aria2c {aria2c / bound:.3f}× that)",
            f"in listing order with no slot idle: {per_file:.2f} s fetching file by file "
            f"(aria2c {aria2c / per_file:.3f}× that), {per_task:.2f} s task by task, a task's "
            f"files one after another as the archiver's workers take them "
            f"(archiver {ours / per_task:.3f}× that)",
        ],
    )


def _makespan(durations: Sequence[float], slots: int) -> float:
    """When the last job ends if each, in order, starts on the first slot to come free."""
    free = [0.0] * slots
    for duration in durations:
        heapq.heappush(free, heapq.heappop(free) + duration)
    return max(free)


def scale(b: Bench) -> CaseResult:
    """A large archive of tiny media: memory of the first run, then the everyday commands."""
    tasks = b.sizes.scale_tasks
    spec = DatasetSpec(
        vth_tasks=tasks,
        chanjing_tasks=0,
        succeeded_share=1.0,
        media_min_bytes=100,
        media_max_bytes=1_000,
    )
    w = b.workload("scale", spec)
    with StandInProcess(w.spec_json, w.media_base_url, w.work) as api:
        config = w.write_config(w.work / "archive", api.api_url)
        first = b.archiver(config)
        b.say(f"    first run: {first.wall:.1f} s, peak RSS {first.max_rss / 1e6:.0f} MB")
        listing = [b.python, "-m", "bench.listing", "--api-url", api.api_url, "--token", TOKEN]
        log = config.parent / "listing.log"
        results = b.alternate(
            {
                "rerun": lambda: b.archiver(config),
                "listing": lambda: run_measured(listing, env=b.env, log=log),
                "index": lambda: b.archiver(config, "index"),
                "status": lambda: b.archiver(config, "status"),
            }
        )
    rerun, alone = median_wall(results["rerun"]), median_wall(results["listing"])
    index, status = median_wall(results["index"]), median_wall(results["status"])
    rss = first.max_rss
    met = rss <= 100e6 and rerun <= 1.5 * alone and index <= 5 and status <= 1
    return CaseResult(
        case=f"scale: {tasks:,} tasks ({len(w.urls):,} files of 0.1 to 1 KB)",
        archiver=(
            f"first run peak RSS {rss / 1e6:.0f} MB; rerun {rerun:.2f} s; "
            f"index {index:.2f} s; status {status:.2f} s"
        ),
        peers=f"listing alone {alone:.2f} s",
        goal="RSS ≤ 100 MB, rerun ≤ 1.5× listing, index ≤ 5 s, status ≤ 1 s",
        met=met,
        verdict=(
            f"{rss / 1e6:.0f} MB, {rerun / alone:.2f}× listing, "
            f"index {index:.2f} s, status {status:.2f} s"
        ),
        rounds=_walls(results),
        notes=[
            f"first run: {first.wall:.1f} s ({len(w.urls) / first.wall:,.0f} files/s), "
            f"peak RSS {rss / 1e6:.0f} MB (one round)",
            f"peak RSS of the rerun {median_rss(results['rerun']) / 1e6:.0f} MB, of index "
            f"{median_rss(results['index']) / 1e6:.0f} MB",
        ],
    )


def start_up(b: Bench) -> CaseResult:
    """`archiver run` with nothing to do: what a user pays at every start, whole process."""
    spec = DatasetSpec(vth_tasks=1, chanjing_tasks=0, templates=0, succeeded_share=1.0)
    w = b.workload("startup", spec)
    with StandInProcess(w.spec_json, w.media_base_url, w.work) as api:
        config = w.write_config(w.work / "archive", api.api_url)
        b.archiver(config)  # the one task archived: every measured run finds nothing new
        commands: dict[str, Callable[[], Measurement]] = {
            "archiver": lambda: b.archiver(config),
            "import aiohttp": lambda: run_measured(
                [b.python, "-c", "import aiohttp"], env=b.env, log=w.work / "aiohttp.log"
            ),
            "status": lambda: b.archiver(config, "status"),
        }
        # Each run is a fraction of a second: more rounds buy a steadier median cheaply.
        results = b.alternate(commands, rounds=max(b.rounds, 3) * 5)
    ours, bare = median_wall(results["archiver"]), median_wall(results["import aiohttp"])
    status = median_wall(results["status"])
    return CaseResult(
        case="start-up: `archiver run` with nothing new, a one-task archive",
        archiver=f"{ours * 1000:.0f} ms",
        peers=f'python -c "import aiohttp" {bare * 1000:.0f} ms',
        goal='≤ 1.5× `python -c "import aiohttp"`',
        met=ours <= 1.5 * bare,
        verdict=f"{ours / bare:.2f}× import aiohttp",
        rounds={name: [f"{m.wall * 1000:.0f} ms" for m in ms] for name, ms in results.items()},
        notes=[f"`archiver status` on the same archive: {status * 1000:.0f} ms"],
    )


CASES: dict[str, Callable[[Bench], CaseResult]] = {
    **LOOPBACK_CASES,
    "realworld": real_world,
    "scale": scale,
    "startup": start_up,
    "s3": s3_upload,
}
# Run only when named (`--case s3`): moto is a test dependency, and the case takes minutes.
# Its figures go to a section of their own in the document (`report.write_doc`).
OPT_IN = frozenset({"s3"})

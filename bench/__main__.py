"""`python -m bench`: archiver beside curl, aria2c and sha256sum, on loopback.

Starts nginx for the media and the stand-in for the listing API, runs each case with its
commands alternated over several rounds, prints a table with the machine's facts, and (for a
full run) writes the figures into `docs/benchmarks.md`. Needs nginx, curl, aria2c and
sha256sum from the distribution (`apt-get install nginx aria2`).

`--tmpfs` puts the work folder in memory (a tmpfs mounted for the run as root, else
`/dev/shm`): durability stays on, but a flush costs next to nothing, so the figures show each
program's own work instead of the disk's mood; they go to a section of their own.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

from bench.cases import Bench, CaseResult, Sizes
from bench.env import archiver_environment, find_tools, interpreter, machine
from bench.measure import BenchError
from bench.report import details, results_section, table, write_doc
from bench.scenarios import CASES, OPT_IN
from bench.servers import Nginx

REPO = Path(__file__).resolve().parent.parent


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Measure archiver beside curl, aria2c and sha256sum, with nginx on loopback.",
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds per case (default 3)")
    parser.add_argument(
        "--quick", action="store_true", help="small sizes, a smoke test (writes no docs)"
    )
    parser.add_argument(
        "--case",
        action="append",
        choices=sorted(CASES),
        help="run only this case (repeatable; verify needs small; "
        f"{', '.join(sorted(OPT_IN))} run only when named)",
    )
    parser.add_argument(
        "--workdir", type=Path, help="where to put data and archives (default: a temp folder)"
    )
    parser.add_argument(
        "--tmpfs",
        action="store_true",
        help="work in memory (a tmpfs mounted for the run as root, else /dev/shm): "
        "the tools' own cost without the disk's",
    )
    parser.add_argument(
        "--scale-tasks",
        type=int,
        help=f"tasks of the scale case (default {Sizes().scale_tasks:,})",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work folder afterwards")
    parser.add_argument(
        "--doc",
        type=Path,
        default=REPO / "docs" / "benchmarks.md",
        help="the results document to update (default: docs/benchmarks.md)",
    )
    parser.add_argument("--no-doc", action="store_true", help="do not update the document")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.rounds < 1:
        print("--rounds must be at least 1", file=sys.stderr)
        return 2
    if args.tmpfs and args.workdir is not None:
        print("--tmpfs and --workdir exclude each other", file=sys.stderr)
        return 2
    started = time.monotonic()
    # SIGTERM unwinds like Ctrl-C, so nginx and the stand-in are stopped and the work goes.
    signal.signal(signal.SIGTERM, _interrupt)
    with _in_memory(args.keep) if args.tmpfs else contextlib.nullcontext(args.workdir) as workdir:
        return _in_workdir(args, workdir, started)


def _in_workdir(args: argparse.Namespace, workdir: Path | None, started: float) -> int:
    if workdir is not None:
        workdir.mkdir(parents=True, exist_ok=True)  # a new folder is a fine place to work
    work = Path(tempfile.mkdtemp(prefix="archiver-bench-", dir=workdir))
    work.chmod(0o755)  # nginx's workers may run as another user
    try:
        return _run(args, work, started)
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        return 130
    finally:
        if args.keep:
            print(f"work folder kept: {work}")
        else:
            print(f"removing {work} ...", flush=True)
            shutil.rmtree(work, ignore_errors=True)


@contextlib.contextmanager
def _in_memory(keep: bool) -> Iterator[Path]:
    """A tmpfs of our own while the run lasts (root only; left mounted to `keep` the work)."""
    if os.geteuid() != 0:
        yield Path("/dev/shm")
        return
    mountpoint = Path(tempfile.mkdtemp(prefix="archiver-bench-tmpfs-"))
    # Three quarters of the memory: every case keeps its archives (about 11 GB with the scale
    # case at 200,000 tasks), and the default half left the last run short of min_free_space.
    options = "mode=755,size=75%"
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "bench", str(mountpoint)], check=True)
    try:
        yield mountpoint
    finally:
        if keep:
            print(f"tmpfs left mounted at {mountpoint}: umount it when done")
        else:
            # Lazy: a straggling process with a file open must not leave the mount behind.
            subprocess.run(["umount", "-l", str(mountpoint)], check=False)
            mountpoint.rmdir()


def _run(args: argparse.Namespace, work: Path, started: float) -> int:
    tools = find_tools()
    python = interpreter()
    facts = machine(tools, work, python)
    say = _say
    for line in facts.lines():
        say(line)
    chosen = [name for name in CASES if name in (args.case or set(CASES) - OPT_IN)]
    results: list[CaseResult] = []
    www = work / "www"
    sizes = Sizes.quick() if args.quick else Sizes()
    if args.scale_tasks is not None:
        sizes.scale_tasks = args.scale_tasks
    with Nginx(tools["nginx"], work / "nginx", www, sizes.rated_rate) as nginx:
        bench = Bench(
            tools=tools,
            work=work,
            www=www,
            nginx=nginx,
            python=python,
            env=archiver_environment(REPO),
            rounds=args.rounds,
            sizes=sizes,
            say=say,
        )
        for name in chosen:
            say(f"case {name}")
            results.append(CASES[name](bench))
    elapsed = time.monotonic() - started
    print()
    for line in [*table(results), "", *details(results)]:
        print(line)
    print()
    for line in facts.lines():
        print(line)
    print(f"measuring took {elapsed:.0f} s")
    if not args.quick and not args.no_doc:
        command = "python -m bench" + (" --tmpfs" if args.tmpfs else "")
        command += f" --rounds {args.rounds}" if args.rounds != 3 else ""
        command += f" --scale-tasks {sizes.scale_tasks}" if args.scale_tasks else ""
        command += "".join(f" --case {c}" for c in args.case or ())
        for opt_in in (False, True):
            group = [r for n, r in zip(chosen, results, strict=True) if (n in OPT_IN) == opt_in]
            if group:
                section = results_section(
                    group, facts, args.rounds, elapsed, command, args.tmpfs, opt_in
                )
                write_doc(args.doc, section, args.tmpfs, opt_in)
        print(f"results written to {args.doc}")
    return 0


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _say(line: str) -> None:
    print(line, flush=True)


if __name__ == "__main__":
    sys.exit(main())

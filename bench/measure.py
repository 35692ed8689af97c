"""Running one command and measuring it: wall time and the peak RSS of that very process.

Each measurement is a fresh process, forked by a small launcher that reports its wall time and
the peak RSS `wait4` gives for exactly that process. Before each command the page cache's
dirty data is written out (`os.sync`, not timed), so no command pays for the writes of the one
before it.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

LAUNCHER = Path(__file__).with_name("launch.py")


class BenchError(Exception):
    """A benchmark that cannot go on: a tool missing, a command that failed."""


@dataclass(frozen=True, slots=True)
class Measurement:
    """One run of one command."""

    wall: float  # seconds, start to exit
    max_rss: int  # bytes, the process's peak resident set
    status: int  # exit status
    cpu: float = 0.0  # seconds of user and system time of that process


def run_measured(
    argv: Sequence[str | Path],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    log: Path | None = None,
    timeout: float = 900.0,
    check: bool = True,
) -> Measurement:
    """Run `argv` to its end and measure it; output goes to `log` (appended).

    The command is started by `launch.py`, a small process of its own that measures it from
    the fork to the exit (see there why).
    """
    os.sync()
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        result = Path(handle.name)
    command = [sys.executable, str(LAUNCHER), str(result), str(timeout), "--"]
    try:
        with open(log or os.devnull, "ab") as out:
            subprocess.run(
                [*command, *(str(a) for a in argv)],
                cwd=cwd,
                env=dict(env) if env is not None else None,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                check=True,
            )
        fields = json.loads(result.read_text(encoding="utf-8"))
    finally:
        result.unlink(missing_ok=True)
    measured = Measurement(fields["wall"], fields["max_rss"], fields["status"], fields["cpu"])
    if check and measured.status != 0:
        where = f"; see {log}" if log else ""
        raise BenchError(
            f"{' '.join(str(a) for a in argv[:4])} ... exited {measured.status}{where}"
        )
    return measured


def alternate(
    commands: Mapping[str, Callable[[], Measurement]],
    rounds: int,
    prepare: Callable[[str], None] = lambda name: None,
    report: Callable[[str], None] = lambda line: None,
) -> dict[str, list[Measurement]]:
    """Run every command once per round, in an order that rotates from round to round.

    `prepare(name)` runs before each command, untimed (clearing the output of the last run).
    """
    names = list(commands)
    results: dict[str, list[Measurement]] = {name: [] for name in names}
    for number in range(rounds):
        shift = number % len(names)
        for name in names[shift:] + names[:shift]:
            prepare(name)
            measured = commands[name]()
            results[name].append(measured)
            report(f"    round {number + 1}: {name:<10} {measured.wall:7.3f} s")
    return results


def median_wall(measured: Sequence[Measurement]) -> float:
    """The median wall time of some runs."""
    return statistics.median(m.wall for m in measured)


def median_rss(measured: Sequence[Measurement]) -> float:
    """The median peak RSS of some runs."""
    return statistics.median(m.max_rss for m in measured)

"""The results: a table for the terminal, and the generated part of `docs/benchmarks.md`.

Only the part of `docs/benchmarks.md` between the two markers is rewritten by a run; what
people wrote around it (how to run it, what holds a figure back) stays.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from bench.cases import CaseResult
from bench.env import Machine

BEGIN = "<!-- bench:results:begin -->"
END = "<!-- bench:results:end -->"
# `--tmpfs` runs write a section of their own, so the disk's figures stay beside them; so do
# the opt-in cases (`--case s3`), so that running one alone keeps the others' figures.
TMPFS_BEGIN = "<!-- bench:tmpfs:begin -->"
TMPFS_END = "<!-- bench:tmpfs:end -->"


def markers(tmpfs: bool, opt_in: bool = False) -> tuple[str, str]:
    """The begin and end markers of one generated section."""
    if not opt_in:
        return (TMPFS_BEGIN, TMPFS_END) if tmpfs else (BEGIN, END)
    name = "s3-tmpfs" if tmpfs else "s3"
    return f"<!-- bench:{name}:begin -->", f"<!-- bench:{name}:end -->"


DOC_HEAD = """\
# Benchmarks

`python -m bench` measures `archiver` beside the downloaders people use, on this machine, with
media served by nginx on loopback and the listing API by the stand-in (see the README). The
part between the markers below is rewritten by each full run.

"""


def table(results: Sequence[CaseResult]) -> list[str]:
    """The results as a Markdown table."""
    lines = [
        "| case | archiver | peers | goal | result |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in results:
        outcome = {True: "met", False: "**missed**", None: "skipped"}[r.met]
        if r.met is None and not r.goal:  # figures to compare, with no goal to meet
            outcome = "measured"
        lines.append(
            f"| {r.case} | {r.archiver} | {r.peers or '—'} | {r.goal or '—'} | "
            f"{outcome}: {r.verdict} |"
        )
    return lines


def details(results: Sequence[CaseResult]) -> list[str]:
    """Every round's figures and the notes of each case."""
    lines: list[str] = []
    for r in results:
        if not r.rounds and not r.notes:
            continue
        lines.append(f"- {r.case}")
        lines.extend(f"  - {name}: {'; '.join(values)}" for name, values in r.rounds.items())
        lines.extend(f"  - {note}" for note in r.notes)
    return lines


def results_section(
    results: Sequence[CaseResult],
    machine: Machine,
    rounds: int,
    elapsed: float,
    command: str,
    tmpfs: bool = False,
    opt_in: bool = False,
) -> list[str]:
    """The generated section: machine, table, per-round figures."""
    title = "## Latest results on tmpfs (the tool's own cost)" if tmpfs else "## Latest results"
    if opt_in:
        title = "## Latest results into S3" + (" on tmpfs" if tmpfs else "")
    return [
        title,
        "",
        f"`{command}`: {rounds} rounds per case (medians; commands alternated, order rotated "
        f"each round); measuring took {elapsed / 60:.1f} minutes, and deleting the work "
        "folder a minute or two more. Durability on (the defaults a user gets: fsync, "
        "catalog, templates, concurrency 8).",
        "",
        *[f"- {line}" for line in machine.lines()],
        "",
        *table(results),
        "",
        "### Every round",
        "",
        *details(results),
    ]


def write_doc(path: Path, section: list[str], tmpfs: bool = False, opt_in: bool = False) -> None:
    """Put `section` between the markers of `path` (made if missing), keeping the rest."""
    begin, end = markers(tmpfs, opt_in)
    block = "\n".join([begin, *section, end])
    text = path.read_text(encoding="utf-8") if path.exists() else DOC_HEAD + f"{begin}\n{end}\n"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        tail = rest.split(end, 1)[1]
        text = head + block + tail
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")

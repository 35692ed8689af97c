"""Rewrite the console excerpts of README.md with real output of the current code.

    python scripts/readme_excerpts.py           rewrite README.md
    python scripts/readme_excerpts.py --check   exit 1 if README.md differs (tests run this)

Each excerpt is a fenced block right after a `<!-- excerpt: NAME -->` line. The script runs
`archiver demo` into a temporary folder, and a run against the bundled stand-in (started as
`python -m archiver.standin`) whose faceswap token is refused, and takes what they print.
What differs from one run to the next (times, durations, Unix times, the temporary folder) is
normalised before the comparison; the temporary folder is written as `/home/me`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shlex
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
HOME = "/home/me"
MARKER = re.compile(r"^<!-- excerpt: ([a-z-]+) -->\n```[a-z]*\n(.*?)^```$", re.M | re.S)
VARYING = [  # what differs between two runs of the same code, most specific first
    (re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z"), "<time>"),
    (re.compile(r"\b\d{8}T\d{6}(\.\d+)?Z"), "<time>"),  # a quarantine folder's name
    (re.compile(r"\b\d\d:\d\d:\d\d\b"), "<clock>"),
    (re.compile(r"\b1\d{9}\.\d+\b"), "<unix time>"),
    (re.compile(r"\bin \d+\.\d s\b"), "in <n> s"),
    (re.compile(r"\bafter \d+ s\b"), "after <n> s"),
]


class Shell:
    """Runs archiver commands in one folder, keeping a transcript as a console shows it."""

    def __init__(self, folder: Path, env: dict[str, str]) -> None:
        self.folder = folder
        self.env = env
        self.lines: list[str] = []
        self.status = 0

    def run(self, *argv: str, show: str | None = None) -> None:
        """`archiver ARGV...` (as `python -m archiver`), its output into the transcript."""
        command = [sys.executable, "-m", "archiver", *argv]
        result = subprocess.run(  # noqa: S603 (our own interpreter and arguments)
            command,
            cwd=self.folder,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=300,
            check=False,
        )
        self.status = result.returncode
        self.lines.append(f"$ {show or shlex.join(['archiver', *argv])}")
        self.lines.extend(result.stdout.splitlines())

    def say(self, command: str, output: str) -> None:
        """A command that is not archiver's (`echo $?`, `cat`), with its output."""
        self.lines.append(f"$ {command}")
        self.lines.extend(output.splitlines())

    def text(self) -> str:
        return "\n".join(self.lines).replace(str(self.folder), HOME) + "\n"


def child_env() -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "PYTHONUNBUFFERED": "1",
        "LC_ALL": "C.UTF-8",
        "COLUMNS": "100",
    }


def demo_excerpts(folder: Path) -> dict[str, str]:
    """`archiver demo`, then `status` and a `verify` that finds a damaged file."""
    env = child_env()
    config = "archiver-demo/.archiver/demo-config.yaml"
    demo = Shell(folder, env)
    demo.run("demo")
    status = Shell(folder, env)
    status.run("status", "-c", config)
    _damage_one_video(folder / "archiver-demo")
    verify = Shell(folder, env)
    verify.run("verify", "-c", config)
    verify.say("echo $?", str(verify.status))
    return {"demo": demo.text(), "status": status.text(), "verify": verify.text()}


def _damage_one_video(archive: Path) -> None:
    db = sqlite3.connect(archive / "manifest.sqlite3")
    try:
        (path,) = db.execute(
            "SELECT path FROM files WHERE source = 'faceswap' AND kind = 'task' "
            "AND name LIKE 'video.%' ORDER BY path LIMIT 1"
        ).fetchone()
    finally:
        db.close()
    target = archive / path
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte: a disk's silent error
    target.write_bytes(bytes(data))


UNATTENDED_CONFIG = """\
archive_dir: ./archive
metrics_file: archiver.prom
notify:
  ping_url: {ping}
sources:
  faceswap:
    type: video_task_history
    base_url: {api}
    token: ${{FACESWAP_TOKEN}}
  chanjing:
    type: chanjing_lip_sync
    base_url: {api}
    app_id: {app_id}
    secret_key: ${{CHANJING_SECRET_KEY}}
"""


def unattended_excerpt(folder: Path) -> str:
    """A night whose faceswap token was revoked: the run, its exit status, status, metrics."""
    from archiver.standin.server import DEMO_CHANJING_APP_ID, DEMO_CHANJING_SECRET_KEY

    with _standin(folder) as api, _ping_receiver(folder) as ping:
        (folder / "config.yaml").write_text(
            UNATTENDED_CONFIG.format(api=api, ping=ping, app_id=DEMO_CHANJING_APP_ID),
            encoding="utf-8",
        )
        env = {
            **child_env(),
            "FACESWAP_TOKEN": "a-revoked-token",
            "CHANJING_SECRET_KEY": DEMO_CHANJING_SECRET_KEY,
        }
        shell = Shell(folder, env)
        shell.run("run", "-c", "config.yaml")
        shell.say("echo $?", str(shell.status))
        shell.run("status", "-c", "config.yaml")
        shell.say("cat archiver.prom", (folder / "archiver.prom").read_text(encoding="utf-8"))
    return shell.text()


@contextlib.contextmanager
def _standin(folder: Path) -> Iterator[str]:
    """`python -m archiver.standin` with 30 tasks a service; yields its API's URL."""
    port_file = folder / "standin.json"
    command = [sys.executable, "-m", "archiver.standin", "--port-file", str(port_file)]
    command += ["--vth-tasks", "30", "--chanjing-tasks", "30"]
    with _process(command, lambda: port_file.exists()):
        yield str(json.loads(port_file.read_text(encoding="utf-8"))["api_url"])


PING_SERVER = """\
import http.server, sys
class Ok(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200); self.end_headers(); self.wfile.write(b"OK")
    def log_message(self, *args): pass
server = http.server.HTTPServer(("127.0.0.1", 0), Ok)
open(sys.argv[1], "w").write(str(server.server_port))
server.serve_forever()
"""


@contextlib.contextmanager
def _ping_receiver(folder: Path) -> Iterator[str]:
    """A loopback HTTP server that answers every ping with 200, as healthchecks.io does."""
    port_file = folder / "ping.port"
    command = [sys.executable, "-c", PING_SERVER, str(port_file)]
    with _process(command, lambda: port_file.exists() and bool(port_file.read_text())):
        yield f"http://127.0.0.1:{port_file.read_text()}/ping/your-check-uuid"


@contextlib.contextmanager
def _process(command: list[str], ready: Callable[[], bool]) -> Iterator[None]:
    child = subprocess.Popen(command, env=child_env(), stdout=subprocess.DEVNULL)  # noqa: S603
    try:
        deadline = time.monotonic() + 60
        while not ready():
            if child.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"could not start: {shlex.join(command)}")
            time.sleep(0.05)
        yield
    finally:
        child.terminate()
        child.wait(timeout=30)


def normalise(text: str) -> str:
    for pattern, replacement in VARYING:
        text = pattern.sub(replacement, text)
    return text


def excerpts() -> dict[str, str]:
    with (
        tempfile.TemporaryDirectory(prefix="readme-") as demo,
        tempfile.TemporaryDirectory(prefix="readme-") as night,
    ):
        found = demo_excerpts(Path(demo))
        found["unattended"] = unattended_excerpt(Path(night))
    return found


def rewrite(readme: str, found: dict[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in found:
            raise SystemExit(f"README.md: no excerpt named {name!r}")
        fence = match.group(0).split("\n", 2)[1]
        return f"<!-- excerpt: {name} -->\n{fence}\n{found[name]}```"

    return MARKER.sub(replace, readme)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="compare only; exit 1 if different")
    args = parser.parse_args(argv)
    current = README.read_text(encoding="utf-8")
    named = set(MARKER.findall(current))
    wanted = rewrite(current, excerpts())
    if not named:
        print("README.md has no excerpt markers", file=sys.stderr)
        return 1
    if args.check:
        if normalise(wanted) == normalise(current):
            return 0
        print("README.md's excerpts differ from the current output:", file=sys.stderr)
        for name, block in MARKER.findall(wanted):
            old = next((b for n, b in MARKER.findall(current) if n == name), "")
            if normalise(block) != normalise(old):
                print(f"--- {name}, now:\n{block}", file=sys.stderr)
        print("run: python scripts/readme_excerpts.py", file=sys.stderr)
        return 1
    README.write_text(wanted, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

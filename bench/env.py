"""The tools the benchmark needs, and the facts about the machine it ran on.

The peers and the media server come from the distribution's packages; a missing one is named
with the command that installs it, before anything is started.
"""

from __future__ import annotations

import compileall
import os
import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bench.measure import BenchError

# tool -> the Debian package that brings it
TOOLS = {"nginx": "nginx", "curl": "curl", "aria2c": "aria2", "sha256sum": "coreutils"}


def find_tools() -> dict[str, str]:
    """The path of every tool the benchmark runs; BenchError naming the missing ones."""
    found: dict[str, str] = {}
    missing: list[str] = []
    for tool in TOOLS:
        path = shutil.which(tool) or _sbin(tool)
        if path is None:
            missing.append(tool)
        else:
            found[tool] = path
    if missing:
        packages = " ".join(sorted({TOOLS[t] for t in missing}))
        raise BenchError(
            f"missing: {', '.join(missing)}. Install with: "
            f"sudo apt-get update && sudo apt-get install -y {packages}"
        )
    return found


def _sbin(tool: str) -> str | None:
    # nginx lives in /usr/sbin, which is not on an ordinary user's PATH.
    for folder in ("/usr/sbin", "/sbin", "/usr/local/sbin"):
        candidate = Path(folder) / tool
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


@dataclass(frozen=True)
class Machine:
    """What the figures depend on."""

    cores: int
    cpu: str
    memory_gib: float
    kernel: str
    python: str
    aiohttp: str
    uvloop: str
    nginx: str
    curl: str
    aria2c: str
    filesystem: str
    date: str
    load: str  # the load average when the run began: other work shares these cores

    def lines(self) -> list[str]:
        """The facts as `name: value` lines."""
        return [
            f"cores: {self.cores} ({self.cpu}), memory {self.memory_gib:.0f} GiB",
            f"kernel: Linux {self.kernel}; work folder on {self.filesystem}",
            f"Python {self.python}, aiohttp {self.aiohttp}, uvloop installed: {self.uvloop}",
            f"nginx {self.nginx}, curl {self.curl}, aria2c {self.aria2c}",
            f"date: {self.date}; load average at the start {self.load}",
        ]


def machine(tools: dict[str, str], workdir: Path, python: str) -> Machine:
    """The facts of this machine; `python` is the interpreter that runs the archiver."""
    probe = (
        "import sys, aiohttp\n"
        "try:\n    import uvloop; u = uvloop.__version__\nexcept ImportError:\n    u = 'none'\n"
        "print(sys.version.split()[0], aiohttp.__version__, u)"
    )
    py, aiohttp_version, uvloop_version = _output([python, "-c", probe]).split()
    return Machine(
        cores=os.cpu_count() or 1,
        cpu=_cpu_model(),
        memory_gib=os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3,
        kernel=platform.release(),
        python=py,
        aiohttp=aiohttp_version,
        uvloop=uvloop_version,
        nginx=_output([tools["nginx"], "-v"]).split("/")[-1].strip(),
        curl=_output([tools["curl"], "--version"]).split()[1],
        aria2c=_output([tools["aria2c"], "--version"]).split()[2],
        filesystem=_output(["findmnt", "-n", "-o", "FSTYPE", "-T", str(workdir)]).strip(),
        date=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        load=", ".join(f"{figure:.1f}" for figure in os.getloadavg()),
    )


def _output(argv: list[str]) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    # `nginx -v` prints to standard error.
    return (done.stdout or done.stderr).strip().splitlines()[0]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def archiver_environment(repo: Path) -> dict[str, str]:
    """The environment of archiver runs: this checkout's package first on the path.

    The package is byte-compiled first, as pip does at install: where the environment says
    not to write bytecode (PYTHONDONTWRITEBYTECODE), every run would compile it again.
    """
    compileall.compile_dir(repo / "archiver", quiet=1)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(repo), env.get("PYTHONPATH")]))
    env.pop("ARCHIVER_CONFIG", None)
    return env


def interpreter() -> str:
    """The Python that runs the archiver: the one running the benchmark."""
    return sys.executable

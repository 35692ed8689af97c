"""The servers a benchmark talks to: nginx for the media, the stand-in for the listing API.

nginx runs in the foreground (`daemon off`) as our child, with its own prefix, config, pid and
logs in the work folder, on a free loopback port; its static module gives every file an ETag,
a Last-Modified and byte ranges, as S3 does. Its access log records each media request's path,
status and body bytes, so a case can count the media bytes a run fetched.

The stand-in runs as a process of its own (`python -m bench.standin`), so serving the listing
never competes with the archiver's event loop; so does moto's S3 server for the s3 case
(`python -m moto.server`, as the tests' `ThreadedMotoServer` but out of our process), its
spooled objects in the work folder.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from bench.measure import BenchError

NGINX_CONF = """\
daemon off;
worker_processes auto;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    types {{
        video/mp4 mp4; image/jpeg jpg jpeg; image/png png; image/webp webp;
    }}
    default_type application/octet-stream;
    log_format bench '$uri $status $body_bytes_sent';
    access_log {prefix}/access.log bench;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    keepalive_timeout 60s;
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        # The real-world case's media: each connection held to a CDN's pace for one client.
        location /{rated}/ {{
            limit_rate {rate};
        }}
    }}
}}
"""


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_for_port(port: int, process: subprocess.Popen[bytes], what: str) -> None:
    """Wait until something accepts connections on `port`, or `process` has died."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(f"{what} exited with status {process.returncode} while starting")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise BenchError(f"{what} did not start listening on port {port}")


def stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    """Stop our child `process`, killing it if it does not go within 10 seconds."""
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class Nginx:
    """An nginx of our own serving `root` on a free loopback port."""

    RATED = "rated"  # the folder (and workload) whose files are served at `rate` bytes/s

    def __init__(self, nginx: str, prefix: Path, root: Path, rate: int = 4 * 1024 * 1024) -> None:
        self.binary = nginx
        self.prefix = prefix
        self.root = root
        self.rate = rate
        self.port = 0
        self.access_log = prefix / "access.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Self:
        (self.prefix / "tmp").mkdir(parents=True, exist_ok=True)
        self.root.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        conf = self.prefix / "nginx.conf"
        conf.write_text(
            NGINX_CONF.format(
                prefix=self.prefix, port=self.port, root=self.root, rated=self.RATED, rate=self.rate
            )
        )
        command = [self.binary, "-p", str(self.prefix), "-c", str(conf), "-e", "stderr"]
        with open(self.prefix / "nginx.out", "ab") as out:
            self._process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
            )
        wait_for_port(self.port, self._process, "nginx")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._process is not None:
            stop(self._process, signal.SIGQUIT)  # graceful: finish the requests in flight
            self._process = None

    def log_position(self) -> int:
        """Where the access log ends now; `media_bytes` counts from such a position."""
        try:
            return self.access_log.stat().st_size
        except FileNotFoundError:
            return 0

    def media_bytes(self, since: int, prefix: str) -> tuple[int, int]:
        """(requests, body bytes) logged since `since` for paths under `prefix`."""
        requests = sent = 0
        with open(self.access_log, "rb") as log:
            log.seek(since)
            for line in log:
                parts = line.split()
                if len(parts) == 3 and parts[0].decode(errors="replace").startswith(prefix):
                    requests += 1
                    sent += int(parts[2])
        return requests, sent


class StandInProcess:
    """The stand-in's listing API, in a process of its own, for one dataset."""

    def __init__(
        self, spec: dict[str, Any], media_base_url: str, folder: Path, page_delay: float = 0.0
    ) -> None:
        self.spec = spec
        self.media_base_url = media_base_url
        self.folder = folder
        self.page_delay = page_delay  # seconds before each listing page is answered
        self.api_url = ""
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Self:
        self.folder.mkdir(parents=True, exist_ok=True)
        port_file = self.folder / "standin.json"
        port_file.unlink(missing_ok=True)
        command = [
            sys.executable,
            "-m",
            "bench.standin",
            "--port-file",
            str(port_file),
            "--spec",
            json.dumps(self.spec),
            "--media-base-url",
            self.media_base_url,
            "--page-delay",
            str(self.page_delay),
        ]
        env = dict(os.environ)
        repo = str(Path(__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [repo, env.get("PYTHONPATH")]))
        with open(self.folder / "standin.log", "ab") as out:
            self._process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env
            )
        deadline = time.monotonic() + 60
        while not port_file.exists():
            if self._process.poll() is not None or time.monotonic() > deadline:
                raise BenchError(f"the stand-in did not start; see {self.folder / 'standin.log'}")
            time.sleep(0.05)
        self.api_url = json.loads(port_file.read_text())["api_url"]
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._process is not None:
            stop(self._process)
            self._process = None


class MotoServer:
    """moto's S3 API server on a free loopback port, a process of our own."""

    def __init__(self, python: str, folder: Path) -> None:
        self.python = python
        self.folder = folder  # its log, and the temporary files it keeps large objects in
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Self:
        probe = [self.python, "-c", "import moto.server, flask"]
        if subprocess.run(probe, capture_output=True, check=False).returncode != 0:
            raise BenchError("the s3 case needs moto's server: pip install 'moto[server]'")
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        command = [self.python, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)]
        # Its objects live where the bench works: on the tmpfs with --tmpfs, as ours do.
        env = {**os.environ, "TMPDIR": str(self.folder)}
        with open(self.folder / "moto.log", "ab") as out:
            self._process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env
            )
        wait_for_port(self.port, self._process, "moto's S3 server")
        return self

    def cpu_seconds(self) -> float:
        """The CPU time (user and system) the server has used so far."""
        if self._process is None:
            return 0.0
        fields = Path(f"/proc/{self._process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._process is not None:
            stop(self._process)
            self._process = None

"""The s3 case: the small files and the large file archived into an S3 API, beside `aws s3 cp`.

moto's S3 server runs on loopback, started by the bench as the tests start it. `archiver run`
archives the small-files dataset, then the large file's, into a new bucket each round (media
fetched from nginx, as in the other cases); the peer uploads the same files, from the folder
nginx serves them from, into a new bucket of the same server: `aws s3 cp --recursive` where the
AWS CLI is installed, its part size set to the archiver's, else `python -m bench.s3put`
(s3transfer, the library under `aws s3 cp`). Both wait on one pure-Python server, so the
figures are ratios, with the server's own CPU time beside them.
"""

from __future__ import annotations

import os
import shutil
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

import botocore.session

from bench.cases import MIB, Bench, CaseResult, _size, _walls, big_workload, small_workload
from bench.data import SOURCE, Workload, fresh_folder
from bench.measure import BenchError, Measurement, median_wall, run_measured
from bench.servers import MotoServer, StandInProcess

PART_SIZE = 16 * MIB  # the archiver's default `s3.part_size`; the peer is given the same
PEER_CONCURRENCY = 10  # the AWS CLI's default max_concurrent_requests
REGION = "us-east-1"
AWS_CONFIG = f"""\
[default]
region = {REGION}
s3 =
    multipart_threshold = {PART_SIZE // MIB}MB
    multipart_chunksize = {PART_SIZE // MIB}MB
    max_concurrent_requests = {PEER_CONCURRENCY}
"""


class Store:
    """The S3 server of one case: fresh buckets, the environment of the commands, the peer."""

    def __init__(self, b: Bench, moto: MotoServer) -> None:
        self.b = b
        self.moto = moto
        config = b.work / "aws-config"
        config.write_text(AWS_CONFIG, encoding="utf-8")
        # Dummy credentials for the loopback server; no user's ~/.aws, profile or endpoint.
        self.env = {
            **{k: v for k, v in b.env.items() if not k.startswith("AWS_")},
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench-secret",
            "AWS_CONFIG_FILE": str(config),
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_DEFAULT_REGION": REGION,
        }
        self.client: Any = botocore.session.get_session().create_client(
            "s3",
            endpoint_url=moto.url,
            region_name=REGION,
            aws_access_key_id=self.env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=self.env["AWS_SECRET_ACCESS_KEY"],
        )
        self.aws = shutil.which("aws")
        self.peer = "aws s3 cp" if self.aws else "s3transfer"
        self.buckets: list[str] = []
        self.server_cpu: dict[str, list[float]] = {}
        self.objects: dict[str, int] = {}  # objects a command leaves in its bucket

    def new_bucket(self, label: str) -> str:
        name = f"bench-{label}-{len(self.buckets) + 1}"
        self.client.create_bucket(Bucket=name)
        self.buckets.append(name)
        return name

    def keys(self, bucket: str) -> dict[str, int]:
        found: dict[str, int] = {}
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            found.update((o["Key"], o["Size"]) for o in page.get("Contents", ()))
        return found

    def empty(self, name: str = "") -> None:
        """Delete every object written so far: each round meets a server as empty as the first."""
        for bucket in self.buckets:
            keys = list(self.keys(bucket))
            for start in range(0, len(keys), 1000):
                chunk = [{"Key": k} for k in keys[start : start + 1000]]
                self.client.delete_objects(Bucket=bucket, Delete={"Objects": chunk})

    def measured(self, label: str, command: Callable[[], Measurement]) -> Measurement:
        """`command`, with the server's CPU time while it ran kept under `label`."""
        before = self.moto.cpu_seconds()
        result = command()
        self.server_cpu.setdefault(label, []).append(self.moto.cpu_seconds() - before)
        return result

    def archive(self, w: Workload, api_url: str, label: str) -> Measurement:
        """`archiver run` of workload `w` into a new bucket; checked to hold every file."""
        bucket = self.new_bucket(label)
        folder = fresh_folder(w.work / "s3-runs", "archiver")
        config = w.write_config(
            folder,
            api_url,
            archive_dir=f"s3://{bucket}/archive",
            state_dir="state",
            s3={"endpoint_url": self.moto.url, "region": REGION, "part_size": PART_SIZE},
        )
        argv = [self.b.python, "-m", "archiver", "run", "-c", str(config), "--no-progress"]
        result = run_measured(argv, env=self.env, log=folder / "run.log")
        answer = self.client.get_object(Bucket=bucket, Key=f"archive/{SOURCE}/SHA256SUMS")
        archived = len(answer["Body"].read().splitlines())
        if archived != len(w.urls):
            raise BenchError(f"s3: the bucket {bucket} holds {archived} files of {len(w.urls)}")
        self.objects[f"{label} archiver"] = len(self.keys(bucket))
        return result

    def upload(self, staging: Path, label: str, log: Path) -> Measurement:
        """The peer: every file under `staging` into a new bucket; checked to be all there."""
        bucket = self.new_bucket(label)
        target = f"s3://{bucket}/peer"
        if self.aws is not None:
            argv = [self.aws, "s3", "cp", "--recursive", "--only-show-errors", "--no-progress"]
            argv += ["--endpoint-url", self.moto.url, str(staging), target]
        else:
            argv = [self.b.python, "-m", "bench.s3put", str(staging), target]
            argv += ["--endpoint-url", self.moto.url, "--part-size", str(PART_SIZE)]
            argv += ["--concurrency", str(PEER_CONCURRENCY)]
        result = run_measured(argv, env=self.env, log=log)
        expected = sum(1 for path in staging.rglob("*") if path.is_file())
        uploaded = len(self.keys(bucket))
        if uploaded != expected:
            raise BenchError(f"s3: {self.peer} left {uploaded} of {expected} files in {bucket}")
        self.objects[f"{label} {self.peer}"] = uploaded
        return result


def staged(w: Workload) -> Path:
    """The workload's files, linked into a folder of their own: what the peer uploads."""
    folder = w.work / "s3-peer-input"
    if folder.exists():
        return folder
    for url in w.urls:
        target = folder / w.relative_name(url)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(w.local_path(url), target)
        except OSError:  # another file system: a copy, made before anything is measured
            shutil.copyfile(w.local_path(url), target)
    return folder


def _phase(b: Bench, store: Store, w: Workload, label: str) -> dict[str, list[Measurement]]:
    staging = staged(w)
    with StandInProcess(w.spec_json, w.media_base_url, w.work) as api:
        commands = {
            f"{label} archiver": lambda: store.measured(
                f"{label} archiver", lambda: store.archive(w, api.api_url, label)
            ),
            f"{label} {store.peer}": lambda: store.measured(
                f"{label} {store.peer}",
                lambda: store.upload(staging, label, w.work / "s3-peer.log"),
            ),
        }
        return b.alternate(commands, store.empty)


def s3_upload(b: Bench) -> CaseResult:
    """The small files and the large file into moto's S3 server: the archiver against the peer."""
    small, big = small_workload(b), big_workload(b)
    with MotoServer(b.python, b.work / "moto") as moto:
        store = Store(b, moto)
        results = _phase(b, store, small, "small") | _phase(b, store, big, "big")
    peer = store.peer
    walls = {name: median_wall(ms) for name, ms in results.items()}
    small_ours, small_peer = walls["small archiver"], walls[f"small {peer}"]
    big_ours, big_peer = walls["big archiver"], walls[f"big {peer}"]
    big_size = _size(b.sizes.big_bytes)

    def rate(w: Workload, wall: float) -> str:
        return f"{w.total_bytes / wall / MIB:,.1f} MiB/s"

    cpu = {name: statistics.median(s) for name, s in store.server_cpu.items()}
    return CaseResult(
        case=(
            f"into S3 (moto on loopback): {small.spec.vth_tasks:,} tasks ({len(small.urls):,} "
            f"files, {small.total_bytes / 1e6:.0f} MB); one {big_size} file"
        ),
        archiver=(
            f"small {small_ours:.2f} s ({rate(small, small_ours)}); "
            f"{big_size} {big_ours:.2f} s ({rate(big, big_ours)})"
        ),
        peers=(
            f"{peer}: small {small_peer:.2f} s ({rate(small, small_peer)}); "
            f"{big_size} {big_peer:.2f} s ({rate(big, big_peer)})"
        ),
        goal="",
        met=None,
        verdict=(
            f"{small_ours / small_peer:.2f}× {peer}'s time on the small files, "
            f"{big_ours / big_peer:.2f}× on the {big_size} file"
        ),
        rounds=_walls(results),
        notes=[
            f"the peer: {_peer_words(store)}; the archiver fetches from nginx as it uploads "
            f"(part size {PART_SIZE // MIB} MiB for both); MiB/s = media bytes / wall time",
            "CPU time of each command's process (median): "
            + ", ".join(
                f"{name} {statistics.median(m.cpu for m in ms):.2f} s"
                for name, ms in results.items()
            ),
            "moto's CPU time while each ran (median): "
            + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in cpu.items()),
            "objects each left in its bucket (the archiver's: media, a sidecar per task, "
            "SHA256SUMS, the manifest's copy, the catalog's page and two data scripts): "
            + ", ".join(f"{name} {count:,}" for name, count in store.objects.items()),
        ],
    )


def _peer_words(store: Store) -> str:
    if store.aws is not None:
        return (
            f"`aws s3 cp --recursive` from the files nginx serves ({PART_SIZE // MIB} MiB "
            f"parts, {PEER_CONCURRENCY} requests in flight, the CLI's default)"
        )
    return (
        f"`python -m bench.s3put` (s3transfer, as under `aws s3 cp`; {PEER_CONCURRENCY} "
        "requests in flight), the AWS CLI not being installed"
    )

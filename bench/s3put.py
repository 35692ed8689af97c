"""`python -m bench.s3put`: `aws s3 cp` without the AWS CLI, for the s3 case's peer.

Uploads every file under a folder (or one file) with s3transfer, the library under both
`aws s3 cp` and boto3's `upload_file`: one PUT below the part size, a multipart upload of
that part size above it, a fixed number of requests in flight. The bench uses the AWS CLI
itself where it is installed, and this where it is not.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import botocore.config
import botocore.session
from s3transfer.manager import (  # type: ignore[import-untyped]
    TransferConfig,
    TransferManager,
)

from archiver.config.load import split_bucket_url


def files_under(source: Path) -> list[tuple[Path, str]]:
    """(path, key below the target prefix) of `source`, or of every file under it."""
    if source.is_file():
        return [(source, source.name)]
    found = []
    for folder, _, names in os.walk(source):
        for name in names:
            path = Path(folder) / name
            found.append((path, path.relative_to(source).as_posix()))
    return found


def upload(
    source: Path, target: str, endpoint: str, part_size: int, concurrency: int
) -> tuple[int, int]:
    """Upload `source` to `target` (s3://bucket/prefix); returns (files, bytes)."""
    bucket, prefix = split_bucket_url(target)
    client = botocore.session.get_session().create_client(
        "s3",
        endpoint_url=endpoint,
        region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        config=botocore.config.Config(max_pool_connections=concurrency),
    )
    config = TransferConfig(
        multipart_threshold=part_size,
        multipart_chunksize=part_size,
        max_request_concurrency=concurrency,
    )
    files = files_under(source)
    with TransferManager(client, config) as manager:
        pending = [
            manager.upload(str(path), bucket, f"{prefix}/{key}" if prefix else key)
            for path, key in files
        ]
        for transfer in pending:
            transfer.result()  # the first failure ends the command
    return len(files), sum(path.stat().st_size for path, _ in files)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.s3put")
    parser.add_argument("source", type=Path, help="a file, or a folder to upload recursively")
    parser.add_argument("target", help="s3://bucket/prefix")
    parser.add_argument("--endpoint-url", required=True)
    parser.add_argument("--part-size", type=int, default=16 * 1024 * 1024)
    parser.add_argument("--concurrency", type=int, default=10, help="as the AWS CLI's default")
    args = parser.parse_args()
    files, size = upload(
        args.source, args.target, args.endpoint_url, args.part_size, args.concurrency
    )
    print(f"{files} files, {size} bytes")


if __name__ == "__main__":
    main()

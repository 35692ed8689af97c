"""A real S3 API on loopback for the bucket tests: moto's server, no account, no network.

The bucket tests talk to it through the same client a user's run does (aiobotocore); these
helpers read what a run left there with a plain synchronous botocore client.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import botocore.config
import botocore.session
from moto.server import ThreadedMotoServer

from archiver.standin import StandIn
from tests.support import expected_items

REGION = "us-east-1"


@dataclass
class Bucket:
    """One new bucket on the running server, and a client to look into it."""

    endpoint: str
    name: str
    client: Any

    def s3_config(self, prefix: str = "videos", **s3: Any) -> dict[str, Any]:
        """The config keys that point a run at this bucket."""
        return {
            "archive_dir": f"s3://{self.name}/{prefix}",
            "state_dir": "state",
            "s3": {"endpoint_url": self.endpoint, "region": REGION, **s3},
        }

    def get(self, key: str) -> bytes:
        answer = self.client.get_object(Bucket=self.name, Key=key)
        data: bytes = answer["Body"].read()
        return data

    def head(self, key: str) -> dict[str, Any]:
        answer: dict[str, Any] = self.client.head_object(Bucket=self.name, Key=key)
        return answer

    def objects(self, prefix: str = "") -> dict[str, int]:
        found: dict[str, int] = {}
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.name, Prefix=prefix):
            for entry in page.get("Contents", ()):
                found[entry["Key"]] = entry["Size"]
        return found

    def uploads(self) -> list[dict[str, Any]]:
        answer = self.client.list_multipart_uploads(Bucket=self.name)
        return list(answer.get("Uploads", ()))


def start_server() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def new_bucket(endpoint: str) -> Bucket:
    # The bytes are compared with the stand-in's: no checksum of moto's in the way (it gives a
    # multipart object's composite checksum as if it were the whole object's).
    config = botocore.config.Config(response_checksum_validation="when_required")
    client = botocore.session.get_session().create_client(
        "s3", endpoint_url=endpoint, region_name=REGION, config=config
    )
    name = f"archive-{secrets.token_hex(6)}"
    client.create_bucket(Bucket=name)
    return Bucket(endpoint, name, client)


def sidecars_in(bucket: Bucket, prefix: str) -> dict[tuple[str, str, str], dict[str, Any]]:
    found = {}
    for key in bucket.objects(f"{prefix}/"):
        if key.endswith("/metadata.json"):
            doc = json.loads(bucket.get(key))
            found[(doc["source"], doc["kind"], doc["id"])] = doc
    return found


def assert_bucket_exact(
    bucket: Bucket,
    prefix: str,
    standin: StandIn,
    sources: tuple[str, ...] = ("faceswap", "chanjing"),
) -> None:
    """Every item in the bucket once, every object the bytes served, its sha256 stored with it."""
    docs = sidecars_in(bucket, prefix)
    assert set(docs) == expected_items(standin, sources)
    keys = bucket.objects(f"{prefix}/")
    for key in keys:
        if not key.endswith("/metadata.json"):
            continue
        folder = key.rsplit("/", 1)[0]
        doc = json.loads(bucket.get(key))
        for role, entry in doc["files"].items():
            data = bucket.get(f"{folder}/{entry['name']}")
            served = standin.dataset.media_bytes(standin.dataset.media_path(entry["url"]))
            assert data == served, (doc["source"], doc["id"], role)
            assert entry["bytes"] == len(data)
            digest = hashlib.sha256(data).hexdigest()
            assert entry["sha256"] == digest
            assert bucket.head(f"{folder}/{entry['name']}")["Metadata"]["sha256"] == digest
    assert bucket.uploads() == []

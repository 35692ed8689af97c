"""Typed settings: the config file's shape, as frozen dataclasses.

`config.load_config` fills these from YAML; each source type adds its own fields by subclassing
`SourceSettings` in its module. A field whose metadata has `secret=True` holds a credential: its
value is collected for redaction and never written anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit


def secret(default: str | None = None) -> Any:
    """A settings field that holds a credential."""
    return field(default=default, metadata={"secret": True})


@dataclass(frozen=True, kw_only=True)
class HttpSettings:
    """Timeouts and retries, shared by every request."""

    connect_timeout: float = 15.0
    read_timeout: float = 60.0
    retries: int = 6
    backoff_base: float = 1.0
    backoff_max: float = 60.0
    retry_after_max: float = 600.0
    user_agent: str = "archiver"
    # A transfer slower than `low_speed_limit` bytes a second for `low_speed_time` seconds is
    # cut and retried, as curl's --speed-limit/--speed-time: a drip never hangs a run.
    low_speed_limit: int = 1024
    low_speed_time: float = 60.0
    max_response_bytes: int = 64 * 1024**2  # the largest API answer read


@dataclass(frozen=True, kw_only=True)
class SourceSettings:
    """Settings every source type has; a source module subclasses this with its own."""

    type: str
    base_url: str
    page_size: int = 50
    qps: float = 0.0  # requests a second to the API; 0 = the type's default
    headers: dict[str, str] = field(default_factory=dict)  # sent to the API host only
    stop_after_known: int = 0  # end the listing after this many archived tasks in a row; 0 = off
    full_every_days: float = 7.0  # with stop_after_known: a full listing at least this often


@dataclass(frozen=True, kw_only=True)
class SourceConfig:
    """One configured source: its name (also its folder) and its type's settings.

    `resolved` is false for a source the command does not use: its `${NAME}`s are kept as
    written (no credential was read), so it must never be listed.
    """

    name: str
    settings: SourceSettings
    resolved: bool = True


@dataclass(frozen=True, kw_only=True)
class NotifySettings:
    """Whom to tell how a run ended: a healthchecks.io-style ping URL, Apprise URLs."""

    # Both are secrets (a check's id, an Apprise URL's credentials): never echoed, redacted.
    ping_url: str | None = secret()  # <url>/start, <url> on success, <url>/fail otherwise
    urls: tuple[str, ...] = field(default=(), metadata={"secret": True})  # Apprise URLs
    when: Literal["failure", "news", "always"] = "failure"

    def secrets(self) -> frozenset[str]:
        """Every URL whole, and each password in one, for redaction."""
        found = {u for u in (self.ping_url, *self.urls) if u}
        for url in self.urls:
            try:
                password = urlsplit(url).password
            except ValueError:
                password = None
            if password:
                found.add(password)
        return frozenset(found)


@dataclass(frozen=True, kw_only=True)
class BucketSettings:
    """An archive kept in S3-compatible object storage: `archive_dir: s3://bucket/prefix`.

    Credentials are not settings: they come from the standard AWS chain (environment,
    `AWS_PROFILE` and `~/.aws`, an instance role), so archiver never holds or writes them.
    """

    bucket: str = ""
    prefix: str = ""  # without a trailing slash; "" for the bucket's root
    endpoint_url: str | None = None  # None: AWS
    region: str | None = None
    part_size: int = 16 * 1024**2  # multipart part size; S3's minimum is 5 MiB

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"


@dataclass(frozen=True, kw_only=True)
class Config:
    """The whole config file, validated."""

    path: Path
    # The local folder of the archive; for a bucket archive (`bucket` set), the state folder,
    # which holds the manifest, the lock and the run reports while the payload is in the bucket.
    archive_dir: Path
    s3: BucketSettings | None = None
    concurrency: int = 8
    split_files: bool = True  # an idle download slot fetches half of a large file still coming
    max_file_bytes: int = 64 * 1024**3
    min_free_space: int = 1024**3  # no download starts or goes on with less free on the disk
    bandwidth_limit: int = 0  # bytes a second over all downloads; 0 = unlimited
    layout: str = "{year}/{month}/{id}"
    durability: Literal["fsync", "none"] = "fsync"
    keep_reports: int = 100
    catalog: bool = True
    http: HttpSettings = field(default_factory=HttpSettings)
    sources: tuple[SourceConfig, ...] = ()
    secrets: frozenset[str] = frozenset()
    notify: NotifySettings = field(default_factory=NotifySettings)
    metrics_file: Path | None = None  # node_exporter textfile, rewritten after each run
    demo: bool = False  # written by `archiver demo`: its stand-in lives only inside the demo

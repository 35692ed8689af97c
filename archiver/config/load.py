"""Loading the YAML config file into typed, validated settings.

Every problem is a `ConfigError` whose one line names the file and the key, so a typo in a
nightly cron job is found by reading one line of mail. `${NAME}` in any string is replaced from
the environment; a missing variable names itself. A source's `${NAME}`s (its credentials) and
those of `notify:` are resolved only for the commands that use them: `status`, `verify` and
`index` call no service and need none of them, and `run --source a` needs only source a's.
"""

from __future__ import annotations

import dataclasses
import os
import re
import types
import typing
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any, TypeVar

from archiver.config.settings import (
    BucketSettings,
    Config,
    HttpSettings,
    NotifySettings,
    SourceConfig,
)
from archiver.config.yamlcheck import read_yaml
from archiver.errors import ConfigError
from archiver.sources import source_types

T = TypeVar("T")

SOURCE_NAME = re.compile(r"[A-Za-z0-9_-]+")
ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
AWS_SECRETS = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")
BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
LAYOUT_FIELDS = frozenset({"year", "month", "day", "id"})


def default_config_path() -> Path:
    """`$ARCHIVER_CONFIG`, else `./config.yaml`."""
    return Path(os.environ.get("ARCHIVER_CONFIG") or "config.yaml")


def load_config(
    path: Path,
    environ: Mapping[str, str] | None = None,
    *,
    sources: Collection[str] | None = None,
    notify: bool = True,
) -> Config:
    """Read, expand and validate the config file at `path`.

    Only the sources named in `sources` (every source if None) and, with `notify`, the
    `notify:` section have their `${NAME}`s resolved; the others keep them as written, are
    still checked, and are marked unresolved so that nothing can call a service with them.
    """
    env = os.environ if environ is None else environ
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file (see config.example.yaml)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the config file: {exc}") from None
    document = read_yaml(text, path)
    raw = document.data
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of settings at the top level")
    try:
        config = _build_config(path, _expand_used(raw, env, path, sources, notify))
    except ConfigError as exc:
        raise ConfigError(document.locate(str(exc), path)) from None
    if config.s3 is not None:
        # The store's credentials are botocore's to read, never ours to write: should one
        # ever reach a message, it is redacted like any other secret.
        aws = {env.get(name) for name in AWS_SECRETS}
        config = dataclasses.replace(config, secrets=config.secrets | {s for s in aws if s})
    return config


def _expand_used(
    raw: dict[str, Any],
    env: Mapping[str, str],
    path: Path,
    sources: Collection[str] | None,
    notify: bool,
) -> dict[str, Any]:
    """`raw` with `${NAME}` expanded everywhere but in the sources and sections not used."""
    top = {k: v for k, v in raw.items() if k not in ("sources", "notify")}
    expanded: dict[str, Any] = _expand(top, env, path, "")
    if "notify" in raw:
        expanded["notify"] = _expand(raw["notify"], env, path, "notify") if notify else None
    if "sources" in raw:
        expanded["sources"] = raw["sources"]
        if isinstance(raw["sources"], dict):
            expanded["sources"] = {
                name: _expand(value, env, path, f"sources.{name}")
                if sources is None or name in sources
                else _Unresolved(value)
                for name, value in raw["sources"].items()
            }
    return expanded


@dataclasses.dataclass(frozen=True)
class _Unresolved:
    """A source's settings as written, `${NAME}`s kept: the command does not use it."""

    raw: Any


def _expand(value: Any, env: Mapping[str, str], path: Path, key: str) -> Any:
    """Replace `${NAME}` references in every string, recursively."""
    if isinstance(value, str):

        def lookup(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in env:
                raise ConfigError(f"{path}: {key}: environment variable {name} is not set")
            return env[name]

        return ENV_REFERENCE.sub(lookup, value)
    if isinstance(value, dict):
        return {k: _expand(v, env, path, _join(key, str(k))) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, env, path, f"{key}[{i}]") for i, v in enumerate(value)]
    return value


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _build_config(path: Path, raw: dict[str, Any]) -> Config:
    raw = dict(raw)
    sources_raw = raw.pop("sources", None)
    http_raw = raw.pop("http", {})
    notify = _build_notify(raw.pop("notify", None), path)
    s3_raw = raw.pop("s3", None)
    if "archive_dir" not in raw:
        raise ConfigError(f"{path}: archive_dir: missing (where the archive is kept)")
    top = _build(_TopLevel, raw, path, "")
    http = _build(HttpSettings, http_raw, path, "http")
    sources = _build_sources(sources_raw, path)
    bucket = _build_bucket(top, s3_raw, path)
    local = top.state_dir if bucket is not None else top.archive_dir
    assert local is not None
    archive_dir = Path(local).expanduser()
    if not archive_dir.is_absolute():
        archive_dir = path.resolve().parent / archive_dir
    _check_layout(top.layout, path)
    _check_positive(path, "concurrency", top.concurrency)
    _check_positive(path, "max_file_bytes", top.max_file_bytes)
    _check_positive(path, "http.retries", http.retries)
    _check_positive(path, "http.max_response_bytes", http.max_response_bytes)
    for key in ("min_free_space", "http.low_speed_limit"):
        value = getattr(http, key[5:]) if key.startswith("http.") else top.min_free_space
        if value < 0:
            raise ConfigError(f"{path}: {key}: must not be negative, got {value}")
    for key in ("connect_timeout", "read_timeout", "low_speed_time"):
        if getattr(http, key) <= 0:
            raise ConfigError(f"{path}: http.{key}: must be greater than 0")
    secrets = frozenset(
        value
        for source in sources
        if source.resolved
        for f in dataclasses.fields(source.settings)
        if f.metadata.get("secret") and (value := getattr(source.settings, f.name))
    ) | (notify.secrets() if notify is not None else frozenset())
    metrics_file = Path(top.metrics_file).expanduser() if top.metrics_file else None
    if metrics_file is not None and not metrics_file.is_absolute():
        metrics_file = path.resolve().parent / metrics_file
    return Config(
        path=path,
        archive_dir=archive_dir,
        s3=bucket,
        concurrency=top.concurrency,
        max_file_bytes=top.max_file_bytes,
        min_free_space=top.min_free_space,
        bandwidth_limit=top.bandwidth_limit,
        layout=top.layout,
        durability=top.durability,
        keep_reports=top.keep_reports,
        catalog=top.catalog,
        http=http,
        sources=sources,
        secrets=secrets,
        notify=notify or NotifySettings(),
        metrics_file=metrics_file,
        demo=top.demo,
    )


@dataclasses.dataclass(frozen=True, kw_only=True)
class _TopLevel:
    archive_dir: str
    concurrency: int = 8
    max_file_bytes: int = 64 * 1024**3
    min_free_space: int = 1024**3
    bandwidth_limit: int = 0
    layout: str = "{year}/{month}/{id}"
    durability: typing.Literal["fsync", "none"] = "fsync"
    keep_reports: int = 100
    catalog: bool = True
    metrics_file: str | None = None
    demo: bool = False
    state_dir: str | None = None


def _build_bucket(top: _TopLevel, raw: Any, path: Path) -> BucketSettings | None:
    """The bucket of an `archive_dir: s3://bucket/prefix`, with its `s3:` section."""
    if not top.archive_dir.startswith("s3://"):
        if raw is not None:
            raise ConfigError(f"{path}: s3: only for an archive_dir of the form s3://bucket/prefix")
        return None
    bucket, _, prefix = top.archive_dir[5:].partition("/")
    prefix = prefix.strip("/")
    parts = prefix.split("/") if prefix else []
    if not BUCKET_NAME.fullmatch(bucket) or any(p in ("", ".", "..") for p in parts):
        raise ConfigError(f"{path}: archive_dir: not a bucket and prefix: {top.archive_dir!r}")
    if not top.state_dir:
        raise ConfigError(
            f"{path}: state_dir: missing (the local folder for the manifest, lock and run "
            "reports of an archive in a bucket)"
        )
    if top.state_dir.startswith("s3://"):
        raise ConfigError(f"{path}: state_dir: must be a local folder")
    settings = _build(BucketSettings, raw, path, "s3")
    for key in ("bucket", "prefix"):
        if getattr(settings, key):
            raise ConfigError(f"{path}: s3.{key}: unknown setting (given by archive_dir)")
    if settings.part_size < 5 * 1024**2 or settings.part_size > 5 * 1024**3:
        raise ConfigError(f"{path}: s3.part_size: must be between 5 MiB and 5 GiB")
    if settings.endpoint_url is not None and not re.match(r"https?://[^/]+", settings.endpoint_url):
        raise ConfigError(f"{path}: s3.endpoint_url: expected an http(s) URL")
    return dataclasses.replace(settings, bucket=bucket, prefix=prefix)


def _build_notify(raw: Any, path: Path) -> NotifySettings | None:
    """The `notify:` section; None when the command does not use it (left unresolved)."""
    if raw is None:
        return None
    notify = _build(NotifySettings, raw, path, "notify")
    # A ping URL carries the check's id, a secret of sorts: it is never echoed either.
    if notify.ping_url is not None and not re.match(r"https?://[^/]+", notify.ping_url):
        raise ConfigError(f"{path}: notify.ping_url: expected an http(s) URL")
    for i, url in enumerate(notify.urls):
        if "://" not in url:
            raise ConfigError(f"{path}: notify.urls[{i}]: expected an Apprise URL (scheme://...)")
    if notify.urls:
        try:
            import apprise  # noqa: F401  (only whether it is there)
        except ImportError:
            raise ConfigError(
                f"{path}: notify.urls: needs Apprise, which is not installed: "
                "pip install 'archiver[notify]'"
            ) from None
    return notify


def _build_sources(raw: Any, path: Path) -> tuple[SourceConfig, ...]:
    if not isinstance(raw, dict) or not raw:
        raise ConfigError(f"{path}: sources: expected a mapping of source names to settings")
    known = source_types()
    sources = []
    for name, settings in raw.items():
        key = f"sources.{name}"
        resolved = not isinstance(settings, _Unresolved)
        if isinstance(settings, _Unresolved):
            settings = settings.raw
        if not isinstance(name, str) or not SOURCE_NAME.fullmatch(name):
            raise ConfigError(f"{path}: {key}: a source name may use only A-Z a-z 0-9 _ -")
        if not isinstance(settings, dict):
            raise ConfigError(f"{path}: {key}: expected a mapping of settings")
        kind = settings.get("type")
        if kind not in known:
            choices = ", ".join(sorted(known))
            raise ConfigError(f"{path}: {key}.type: must be one of {choices}, got {kind!r}")
        source_type = known[kind]
        settings = {"base_url": source_type.default_base_url, **settings}
        built = _build(source_type.settings_type, settings, path, key)
        source_type.check_settings(built, f"{path}: {key}")
        _check_positive(path, f"{key}.page_size", built.page_size)
        # An unresolved `${NAME}` stands for a URL this command never calls.
        unresolved_url = not resolved and ENV_REFERENCE.search(built.base_url)
        if not re.match(r"https?://[^/]+", built.base_url) and not unresolved_url:
            raise ConfigError(f"{path}: {key}.base_url: expected an http(s) URL")
        sources.append(SourceConfig(name=name, settings=built, resolved=resolved))
    return tuple(sources)


def _check_positive(path: Path, key: str, value: int) -> None:
    if value < 1:
        raise ConfigError(f"{path}: {key}: must be at least 1, got {value}")


def _check_layout(layout: str, path: Path) -> None:
    names = set(re.findall(r"\{([^{}]*)\}", layout))
    unknown = names - LAYOUT_FIELDS
    if unknown or "id" not in names or layout.startswith("/") or ".." in layout.split("/"):
        raise ConfigError(
            f"{path}: layout: use only {{year}}, {{month}}, {{day}} and {{id}}, with {{id}}, "
            f"as a relative path; got {layout!r}"
        )


SettingsT = TypeVar("SettingsT")


def _build(cls: type[SettingsT], raw: Any, path: Path, prefix: str) -> SettingsT:
    """Build the dataclass `cls` from a mapping, naming any bad key."""
    where = prefix or "the top level"
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: {where}: expected a mapping of settings")
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    hints = typing.get_type_hints(cls)
    for key in raw:
        if key not in fields:
            raise ConfigError(f"{path}: {_join(prefix, str(key))}: unknown setting")
    values = {}
    for name, f in fields.items():
        key = _join(prefix, name)
        if name in raw:
            try:
                values[name] = _coerce(raw[name], hints[name], f"{path}: {key}")
            except ConfigError:
                if f.metadata.get("secret"):  # never echo a credential, even a malformed one
                    raise ConfigError(f"{path}: {key}: expected text") from None
                raise
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{path}: {key}: missing")
    return cls(**values)


def _coerce(value: Any, hint: Any, where: str) -> Any:
    """Check `value` against the type `hint`; ints are accepted where floats are."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        hint = next(a for a in args if a is not type(None))
        return _coerce(value, hint, where)
    if origin is typing.Literal:
        if value not in args:
            choices = ", ".join(repr(a) for a in args)
            raise ConfigError(f"{where}: must be one of {choices}, got {value!r}")
        return value
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        # A list setting (`kinds: [image, video]`): each entry checked as the element type.
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return tuple(_coerce(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str | int | float) for k, v in value.items()
        ):
            raise ConfigError(f"{where}: expected a mapping of names to text values")
        return {k: str(v) for k, v in value.items()}
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected a whole number, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        if value < 0:
            raise ConfigError(f"{where}: must not be negative, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise ConfigError(f"{where}: expected text, got {value!r}")
        return str(value)
    raise ConfigError(f"{where}: unsupported setting type {hint!r}")

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
from collections.abc import Callable, Collection, Mapping
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
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: no such config file (see config.example.yaml)") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the config file: {exc}") from exc
    document = read_yaml(text, path)
    raw = document.data
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of settings at the top level")
    try:
        config = _build_config(path, _expand_used(raw, env, path, sources, notify))
    except ConfigError as exc:
        raise ConfigError(document.locate(str(exc), path)) from exc
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
    state_dir = raw.pop("state_dir", None)
    if "archive_dir" not in raw:
        raise ConfigError(f"{path}: archive_dir: missing (where the archive is kept)")
    top = _settings(Config, raw, path, "", skip=_NOT_TOP_LEVEL, hints=_GIVEN_AS_TEXT)
    http = _build(HttpSettings, http_raw, path, "http")
    sources = _build_sources(sources_raw, path)
    bucket = _build_bucket(top["archive_dir"], state_dir, s3_raw, path)
    secrets = frozenset(
        value
        for source in sources
        if source.resolved
        for f in dataclasses.fields(source.settings)
        if f.metadata.get("secret") and (value := getattr(source.settings, f.name))
    ) | (notify.secrets() if notify is not None else frozenset())
    # An archive in a bucket keeps its manifest, lock and reports in the local state folder.
    archive_dir = _beside(path, state_dir if bucket is not None else top.pop("archive_dir"))
    top.pop("archive_dir", None)
    assert archive_dir is not None  # a required key: `_settings` said so if it was missing
    config = Config(
        path=path,
        archive_dir=archive_dir,
        metrics_file=_beside(path, top.pop("metrics_file", None)),
        s3=bucket,
        **top,
        http=http,
        sources=sources,
        secrets=secrets,
        notify=notify or NotifySettings(),
    )
    _check_config(config)
    return config


# Fields of `Config` that are not plain top-level settings: sections built on their own, and
# what the loader works out. Every other field is a top-level key, with `Config`'s default.
_NOT_TOP_LEVEL = frozenset({"path", "http", "sources", "secrets", "notify", "s3"})
# Paths are written as text and taken relative to the config file's folder (`_beside`).
_GIVEN_AS_TEXT: dict[str, Any] = {"archive_dir": str, "metrics_file": str | None}


def _beside(config_path: Path, value: str | None) -> Path | None:
    """`value` as a path, relative ones taken from the config file's folder."""
    if value is None:
        return None
    path = Path(value).expanduser()
    return path if path.is_absolute() else config_path.resolve().parent / path


def _check_config(config: Config) -> None:
    """The checks of values that their types alone do not make."""
    path, http = config.path, config.http
    _check_layout(config.layout, path)
    _check_positive(path, "concurrency", config.concurrency)
    _check_positive(path, "max_file_bytes", config.max_file_bytes)
    _check_positive(path, "http.retries", http.retries)
    _check_positive(path, "http.max_response_bytes", http.max_response_bytes)
    for key, value in (
        ("min_free_space", config.min_free_space),
        ("http.low_speed_limit", http.low_speed_limit),
    ):
        if value < 0:
            raise ConfigError(f"{path}: {key}: must not be negative, got {value}")
    for key in ("connect_timeout", "read_timeout", "low_speed_time"):
        if getattr(http, key) <= 0:
            raise ConfigError(f"{path}: http.{key}: must be greater than 0")


def _build_bucket(archive_dir: str, state_dir: Any, raw: Any, path: Path) -> BucketSettings | None:
    """The bucket of an `archive_dir: s3://bucket/prefix`, with its `s3:` section."""
    if not archive_dir.startswith("s3://"):
        if raw is not None:
            raise ConfigError(f"{path}: s3: only for an archive_dir of the form s3://bucket/prefix")
        if state_dir is not None:
            raise ConfigError(f"{path}: state_dir: only for an archive_dir in a bucket (s3://...)")
        return None
    try:
        bucket, prefix = split_bucket_url(archive_dir)
    except ValueError as exc:
        raise ConfigError(f"{path}: archive_dir: {exc}") from None
    if not state_dir:
        raise ConfigError(
            f"{path}: state_dir: missing (the local folder for the manifest, lock and run "
            "reports of an archive in a bucket)"
        )
    if not isinstance(state_dir, str):
        raise ConfigError(f"{path}: state_dir: expected text, got {state_dir!r}")
    if state_dir.startswith("s3://"):
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


def split_bucket_url(url: str) -> tuple[str, str]:
    """The bucket and prefix (no slash at either end) of `s3://bucket/prefix`, or ValueError."""
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    prefix = prefix.strip("/")
    bad_parts = {"", ".", ".."} & set(prefix.split("/")) if prefix else set()
    if not url.startswith("s3://") or not BUCKET_NAME.fullmatch(bucket) or bad_parts:
        raise ValueError(f"not a bucket and prefix: {url!r}")
    return bucket, prefix


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
        except ImportError as exc:
            raise ConfigError(
                f"{path}: notify.urls: needs Apprise, which is not installed: "
                "pip install 'archiver[notify]'"
            ) from exc
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
    return cls(**_settings(cls, raw, path, prefix))


def _settings(
    cls: type[Any],
    raw: Any,
    path: Path,
    prefix: str,
    *,
    skip: frozenset[str] = frozenset(),
    hints: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The values given in `raw` for the fields of `cls` (but `skip`), each checked.

    A field left out takes the dataclass's own default, so a default is written once, there.
    `hints` overrides the type of a field as the file gives it.
    """
    where = prefix or "the top level"
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: {where}: expected a mapping of settings")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name not in skip}
    types_of = typing.get_type_hints(cls) | (hints or {})
    for key in raw:
        if key not in fields:
            raise ConfigError(f"{path}: {_join(prefix, str(key))}: unknown setting")
    values = {}
    for name, f in fields.items():
        key = _join(prefix, name)
        if name in raw:
            values[name] = _checked(raw[name], types_of[name], f"{path}: {key}", f)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{path}: {key}: missing")
    return values


def _checked(value: Any, hint: Any, where: str, f: dataclasses.Field[Any]) -> Any:
    try:
        return _coerce(value, hint, where)
    except ConfigError:
        if f.metadata.get("secret"):  # never echo a credential, even a malformed one
            # Not chained: the cause's message holds the malformed value.
            raise ConfigError(f"{where}: expected text") from None
        raise


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
        return _text_mapping(value, where)
    scalar = _SCALARS.get(hint)
    if scalar is None:
        raise ConfigError(f"{where}: unsupported setting type {hint!r}")
    return scalar(value, where)


def _text_mapping(value: Any, where: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str | int | float) for k, v in value.items()
    ):
        raise ConfigError(f"{where}: expected a mapping of names to text values")
    return {k: str(v) for k, v in value.items()}


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    return value


def _int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{where}: expected a whole number, got {value!r}")
    return value


def _float(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    if value < 0:
        raise ConfigError(f"{where}: must not be negative, got {value!r}")
    return float(value)


def _str(value: Any, where: str) -> str:
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise ConfigError(f"{where}: expected text, got {value!r}")
    return str(value)


# The checks of plain values, by type (a bool is an int to Python, never to a setting).
_SCALARS: dict[Any, Callable[[Any, str], Any]] = {
    bool: _bool,
    int: _int,
    float: _float,
    str: _str,
}

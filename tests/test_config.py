"""The config file: every mistake is one line naming the key and the file, and exit 2."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import yaml

from archiver.config.load import load_config
from archiver.config.settings import Config
from archiver.errors import ConfigError
from tests.support import run_cli

BASE: dict[str, Any] = {
    "archive_dir": "./archive",
    "sources": {
        "faceswap": {
            "type": "video_task_history",
            "base_url": "https://api.example.com",
            "token": "${FACESWAP_TOKEN}",
        },
        "chanjing": {"type": "chanjing_lip_sync", "access_token": "tok-abc"},
    },
}


def write(tmp_path: Path, config: Any) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(config if isinstance(config, str) else yaml.safe_dump(config, sort_keys=False))
    return path


def test_a_good_config_loads_with_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, BASE), {"FACESWAP_TOKEN": "secret-1"})
    assert config.archive_dir == tmp_path / "archive"  # relative to the config's folder
    assert config.concurrency == 8
    faceswap, chanjing = config.sources
    assert faceswap.name == "faceswap"
    assert faceswap.settings.page_size == 50
    assert chanjing.settings.base_url == "https://open-api.chanjing.cc"
    assert config.secrets == {"secret-1", "tok-abc"}


def test_every_top_level_setting_is_a_key_with_the_settings_default(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, BASE), {"FACESWAP_TOKEN": "secret-1"})
    plain = {"keep_reports": 7, "catalog": False, "durability": "none", "layout": "{id}"}
    changed = load_config(write(tmp_path, BASE | plain), {"FACESWAP_TOKEN": "secret-1"})
    for f in dataclasses.fields(Config):
        if f.default is not dataclasses.MISSING and f.name not in ("sources", "secrets"):
            assert getattr(config, f.name) == f.default, f.name
    assert {name: getattr(changed, name) for name in plain} == plain
    metrics = load_config(
        write(tmp_path, BASE | {"metrics_file": "m.prom"}), {"FACESWAP_TOKEN": "x"}
    )
    assert metrics.metrics_file == tmp_path / "m.prom"


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda c: c.update(concurency=4), "concurency: unknown setting"),
        (lambda c: c.update(concurrency="eight"), "concurrency: expected a whole number"),
        (lambda c: c.update(concurrency=0), "concurrency: must be at least 1"),
        (lambda c: c.pop("archive_dir"), "archive_dir: missing"),
        (
            lambda c: c["sources"]["faceswap"].update(page_size=True),
            "sources.faceswap.page_size: expected a whole number",
        ),
        (
            lambda c: c["sources"]["faceswap"].update(tokn="x"),
            "sources.faceswap.tokn: unknown setting",
        ),
        (lambda c: c["sources"]["faceswap"].pop("token"), "sources.faceswap.token: missing"),
        (
            lambda c: c["sources"]["faceswap"].update(type="tiktok"),
            "sources.faceswap.type: must be one of",
        ),
        (
            lambda c: c["sources"]["faceswap"].update(request_encoding="xml"),
            "sources.faceswap.request_encoding: must be one of",
        ),
        (
            lambda c: c["sources"]["chanjing"].pop("access_token"),
            "sources.chanjing.access_token: missing",
        ),
        (
            lambda c: c["sources"]["chanjing"].update(app_id="a"),
            "app_id and secret_key go together",
        ),
        (
            lambda c: c["sources"].update({"bad/name": c["sources"]["chanjing"]}),
            "sources.bad/name: a source name may use only",
        ),
        (lambda c: c.update(http={"retries": "many"}), "http.retries: expected a whole number"),
        (lambda c: c.update(http={"low_speed_time": 0}), "http.low_speed_time: must be greater"),
        (lambda c: c.update(min_free_space=-1), "min_free_space: must not be negative"),
        (lambda c: c.update(layout="{year}/{name}"), "layout: use only"),
        (lambda c: c.update(sources={}), "sources: expected a mapping"),
    ],
)
def test_each_mistake_names_its_key_and_file(tmp_path: Path, change: Any, named: str) -> None:
    config = yaml.safe_load(yaml.safe_dump(BASE, sort_keys=False))
    change(config)
    path = write(tmp_path, config)
    with pytest.raises(ConfigError) as caught:
        load_config(path, {"FACESWAP_TOKEN": "t"})
    message = str(caught.value)
    assert named in message
    assert str(path) in message
    assert "\n" not in message


def test_a_missing_environment_variable_names_itself(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="FACESWAP_TOKEN is not set"):
        load_config(write(tmp_path, BASE), {})


def test_bad_yaml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"config.yaml:3:1: not valid YAML: "):
        load_config(write(tmp_path, "archive_dir: x\nsources: [\n"), {})
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "nope.yaml", {})


def test_a_wrongly_typed_secret_is_not_echoed(tmp_path: Path) -> None:
    config = yaml.safe_load(yaml.safe_dump(BASE, sort_keys=False))
    config["sources"]["faceswap"]["token"] = ["hunter2-secret"]
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, config), {})
    assert "hunter2-secret" not in str(caught.value)


async def test_the_cli_exits_2_and_touches_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FACESWAP_TOKEN", "t")
    config = yaml.safe_load(yaml.safe_dump(BASE, sort_keys=False))
    config["concurrency"] = -1
    path = write(tmp_path, config)
    result = await run_cli("run", "-c", path)
    assert result.code == 2
    assert "concurrency" in result.output and str(path) in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "archive").exists()


async def test_config_path_defaults_to_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARCHIVER_CONFIG", str(tmp_path / "elsewhere.yaml"))
    result = await run_cli("run")
    assert result.code == 2
    assert "elsewhere.yaml" in result.output


async def test_an_unknown_source_on_the_command_line_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FACESWAP_TOKEN", "t")
    path = write(tmp_path, BASE)
    result = await run_cli("run", "-c", path, "--source", "nosuch")
    assert result.code == 2
    assert "nosuch" in result.output


def test_notify_urls_are_secrets_never_echoed(tmp_path: Path) -> None:
    config = yaml.safe_load(yaml.safe_dump(BASE, sort_keys=False))
    config["notify"] = {"ping_url": ["https://hc-ping.com/secret-uuid-1"]}
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, config), {"FACESWAP_TOKEN": "t"})
    assert "notify.ping_url" in str(caught.value)
    assert "secret-uuid-1" not in str(caught.value)
    config["notify"] = {
        "ping_url": "https://hc-ping.com/secret-uuid-2",
        "urls": ["json://user:pass-word-3@127.0.0.1/x"],
    }
    loaded = load_config(write(tmp_path, config), {"FACESWAP_TOKEN": "t"})
    assert {"https://hc-ping.com/secret-uuid-2", "pass-word-3"} <= loaded.secrets


# The file of issue 11: an unclosed `[` on line 9, and 35 more lines after it.
UNCLOSED = (
    """archive_dir: ./archive
sources:
  faceswap:
    type: video_task_history
    base_url: https://api.example.com
    token: t
    page_size: 50
http:
  retries: [8
"""
    + "# a comment\n" * 35
)


def test_a_yaml_error_keeps_its_problem_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, UNCLOSED)
    with pytest.raises(ConfigError) as caught:
        load_config(path, {})
    message = str(caught.value)
    # Where the `[` is (line 9, column 12), then what PyYAML found, and where it found it.
    assert message.startswith(f"{path}:9:12: not valid YAML: while parsing a flow sequence")
    assert "expected ',' or ']', but got '<stream end>' (at line 45, column 1)" in message
    assert "\n" not in message


# Nine levels of nine aliases: 419 bytes that stand for 9 ** 9 strings ("billion laughs").
BOMB = "archive_dir: ./archive\n" + "".join(
    f"{name}: &{name} [{', '.join([f'*{prev}'] * 9 if prev else ['lol'] * 9)}]\n"
    for prev, name in zip(["", *"abcdefgh"], "abcdefghi", strict=True)
)


async def test_a_billion_laughs_config_is_refused_at_once(tmp_path: Path) -> None:
    path = write(tmp_path, BOMB)
    result = await run_cli("status", "-c", path)
    assert result.code == 2
    lines = result.output.splitlines()
    assert len(lines) == 1, lines
    assert f"{path}:" in lines[0] and "YAML aliases expand to more than 100,000 values" in lines[0]


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("archive_dir: x\nsources:\n  a: &loop [1, *loop]\n", ":3: a YAML alias refers to itself"),
        ("archive_dir: x\nv: " + "[" * 1000 + "]" * 1000 + "\n", ": not valid YAML: nested too"),
    ],
)
async def test_self_referring_aliases_and_deep_nesting_are_config_errors(
    tmp_path: Path, text: str, named: str
) -> None:
    path = write(tmp_path, text)
    result = await run_cli("status", "-c", path)
    assert result.code == 2
    assert len(result.output.splitlines()) == 1
    assert f"{path}{named}" in result.output


def test_aliases_that_expand_within_bounds_still_work(tmp_path: Path) -> None:
    text = """archive_dir: ./archive
sources:
  first: &chanjing {type: chanjing_lip_sync, access_token: tok, page_size: 20}
  second:
    <<: *chanjing
    page_size: 30
"""
    first, second = load_config(write(tmp_path, text), {}).sources
    assert (first.settings.page_size, second.settings.page_size) == (20, 30)
    assert second.settings.type == "chanjing_lip_sync"


@pytest.mark.parametrize(
    ("text", "named"),
    [
        (
            "archive_dir: ./a\nconcurrency: 2\narchive_dir: ./b\n",
            ":3: archive_dir: duplicate key (first at line 1)",
        ),
        (
            "archive_dir: ./a\nsources:\n  c:\n    type: chanjing_lip_sync\n"
            "    access_token: t\n    page_size: 5\n    page_size: 6\n",
            ":7: sources.c.page_size: duplicate key (first at line 6)",
        ),
    ],
)
async def test_a_duplicate_key_at_any_level_names_both_lines(
    tmp_path: Path, text: str, named: str
) -> None:
    path = write(tmp_path, text)
    result = await run_cli("status", "-c", path)
    assert result.code == 2
    assert len(result.output.splitlines()) == 1
    assert f"{path}{named}" in result.output


@pytest.mark.parametrize(
    ("line", "named"),
    [
        ("    tokn: x", ":8: sources.faceswap.tokn: unknown setting"),
        ("    page_size: many", ":8: sources.faceswap.page_size: expected a whole number"),
    ],
)
def test_unknown_keys_and_bad_values_name_their_line(tmp_path: Path, line: str, named: str) -> None:
    text = UNCLOSED.split("http:")[0].replace("    page_size: 50\n", "") + line + "\n"
    path = write(tmp_path, "concurrency: 2\n" + text)
    with pytest.raises(ConfigError) as caught:
        load_config(path, {})
    assert str(caught.value).startswith(f"{path}{named}")

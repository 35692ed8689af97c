"""The shipped example config loads, and documents every setting there is."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from archiver.config.load import load_config
from archiver.config.settings import Config, HttpSettings
from archiver.sources import source_types

EXAMPLE = Path(__file__).resolve().parent.parent / "config.example.yaml"


def test_the_example_config_loads() -> None:
    config = load_config(EXAMPLE, {"FACESWAP_TOKEN": "a-token", "CHANJING_ACCESS_TOKEN": "b-tok"})
    assert [s.name for s in config.sources] == ["faceswap", "chanjing"]


def test_the_example_mentions_every_setting() -> None:
    text = EXAMPLE.read_text()
    mentioned = set(re.findall(r"^\s*#?\s*([a-z0-9_]+):", text, flags=re.MULTILINE))
    names = {f.name for f in dataclasses.fields(HttpSettings)}
    names |= {f.name for f in dataclasses.fields(Config)} - {"path", "sources", "secrets"}
    for source in source_types().values():
        names |= {f.name for f in dataclasses.fields(source.settings_type)}
    assert names - mentioned == set()

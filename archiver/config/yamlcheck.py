"""Reading the config file's YAML safely: bounded, strict about keys, and knowing its lines.

`yaml.safe_load` shares the value of an alias rather than copying it, but everything after it
(resolving `${VAR}`s, validating) walks the config as a tree: nine nested aliases in 736 bytes
("billion laughs") grow that tree to a billion values. So the composed YAML is checked before
anything is built from it: aliases may expand to at most `MAX_VALUES` values and may not refer
to themselves, and a key given twice in one mapping is an error naming both lines (PyYAML
would keep the second silently). The line of every key is kept, so that a later error about a
key can name it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from archiver.errors import ConfigError

MAX_VALUES = 100_000  # values in the config once its aliases are expanded: ~100 in a real one
_MERGE = "tag:yaml.org,2002:merge"


@dataclass(frozen=True)
class ConfigYaml:
    """The config file's data, and the line (from 1) of each key by its dotted name."""

    data: Any
    lines: dict[str, int]

    def locate(self, message: str, path: Path) -> str:
        """`{path}: {key}: ...` as `{path}:{line}: {key}: ...` when the key's line is known."""
        prefix = f"{path}: "
        key, colon, rest = message.removeprefix(prefix).partition(": ")
        line = self.lines.get(key)
        if not message.startswith(prefix) or not colon or line is None:
            return message
        return f"{path}:{line}: {key}: {rest}"


def read_yaml(text: str, path: Path) -> ConfigYaml:
    """Parse `text` (the file at `path`); every problem is a one-line `ConfigError`."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return ConfigYaml(None, {})
        _check_expansion(node, path)
        lines = _key_lines(node, path)
        return ConfigYaml(loader.construct_document(node), lines)
    except yaml.MarkedYAMLError as exc:
        raise ConfigError(describe_yaml_error(exc, path)) from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    except RecursionError as exc:  # PyYAML recurses once per level of nesting
        raise ConfigError(f"{path}: not valid YAML: nested too deeply") from exc
    finally:
        loader.dispose()


def describe_yaml_error(exc: yaml.MarkedYAMLError, path: Path) -> str:
    """PyYAML's problem and where it is, as `{path}:{line}:{column}: not valid YAML: ...`.

    PyYAML notices some mistakes only where they end: an unclosed `[` or quote at the end of
    the file. There the place it was reading (the context) is the one to name first.
    """
    problem = exc.problem or "not valid YAML"
    context, at, other = exc.context, exc.problem_mark, exc.context_mark
    if (
        context
        and other is not None
        and context.startswith(("while scanning", "while parsing a flow"))
    ):
        at, other = other, at
        problem, context = f"{context} here, {problem}", None
    where = f"{path}:{at.line + 1}:{at.column + 1}" if at is not None else str(path)
    message = f"{where}: not valid YAML: {problem}"
    if other is not None and other is not at:
        detail = f"{context} " if context else ""
        message += f" ({detail}at line {other.line + 1}, column {other.column + 1})"
    return message


def _children(node: Node) -> list[Node]:
    if isinstance(node, MappingNode):
        return [child for pair in node.value for child in pair]
    if isinstance(node, SequenceNode):
        return list(node.value)
    return []


def _check_expansion(root: Node, path: Path) -> None:
    """Refuse aliases that refer to themselves, or expand the config beyond `MAX_VALUES`."""
    size: dict[int, int] = {}  # id(node) -> values it stands for, expanded
    open_nodes: set[int] = set()  # the nodes on the way down to the one being read
    pending: list[tuple[Node, bool]] = [(root, False)]
    while pending:
        node, finished = pending.pop()
        if finished:
            open_nodes.discard(id(node))
            size[id(node)] = 1 + sum(size[id(child)] for child in _children(node))
            if size[id(node)] > MAX_VALUES:
                raise ConfigError(
                    f"{path}:{node.start_mark.line + 1}: YAML aliases expand to more than "
                    f"{MAX_VALUES:,} values"
                )
            continue
        if id(node) in size:
            continue
        open_nodes.add(id(node))
        pending.append((node, True))
        for child in _children(node):
            if id(child) in open_nodes:
                raise ConfigError(
                    f"{path}:{child.start_mark.line + 1}: a YAML alias refers to itself"
                )
            pending.append((child, False))


def _key_lines(root: Node, path: Path) -> dict[str, int]:
    """The line of each key by its dotted name; a key given twice in a mapping is an error."""
    lines: dict[str, int] = {}
    pending: list[tuple[Node, str]] = [(root, "")]
    while pending:
        node, name = pending.pop()
        if isinstance(node, SequenceNode):
            pending.extend((item, f"{name}[{i}]") for i, item in enumerate(node.value))
            lines.update(
                (f"{name}[{i}]", item.start_mark.line + 1) for i, item in enumerate(node.value)
            )
        if not isinstance(node, MappingNode):
            continue
        first: dict[tuple[str, str], int] = {}
        for key, value in node.value:
            if not isinstance(key, ScalarNode) or key.tag == _MERGE:
                continue  # a merge (`<<: *base`) may be overridden; a complex key names nothing
            line = key.start_mark.line + 1
            dotted = f"{name}.{key.value}" if name else key.value
            if (key.tag, key.value) in first:
                raise ConfigError(
                    f"{path}:{line}: {dotted}: duplicate key "
                    f"(first at line {first[key.tag, key.value]})"
                )
            first[key.tag, key.value] = line
            lines[dotted] = line
            pending.append((value, dotted))
    return lines

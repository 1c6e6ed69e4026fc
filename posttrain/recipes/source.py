"""Recipe files read with the line of every key and list item, so that a mistake is reported where it is.

Scalars are read as `train`'s config files read them (YAML 1.2: only true/false are booleans, `7e-6` is a
float); anchors and merge keys (`<<: *scripted`) work as in any YAML.

>>> doc = load_text("stages:\\n  - name: a\\n    options: {n: 2, lr: 7e-6}\\n", "r.yaml")
>>> stage = doc["stages"][0]
>>> stage.line, stage.lines["options"], stage["options"]["lr"], doc["stages"].item_lines
(2, 3, 7e-06, [2])
"""

from __future__ import annotations

from pathlib import Path

import yaml
from yaml.constructor import ConstructorError

from train.config import Yaml12Loader


class RecipeError(Exception):
    """A recipe that cannot run as written; the message names the file and line."""


class Where:
    """A file and a line, printed as `file:line`."""

    def __init__(self, file: str, line: int):
        self.file, self.line = file, line

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


class LineMap(dict):
    """A YAML mapping with its own line (`line`) and the line of each key (`lines`)."""

    line: int = 0

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.lines: dict = {}

    def line_of(self, key) -> int:
        return self.lines.get(key, self.line)


class LineList(list):
    """A YAML sequence with its own line (`line`) and the line of each item (`item_lines`)."""

    line: int = 0

    def __init__(self, *args):
        super().__init__(*args)
        self.item_lines: list[int] = []


class _LineLoader(Yaml12Loader):
    pass


def _mapping(loader: _LineLoader, node: yaml.MappingNode) -> LineMap:
    seen: dict = {}
    for key_node, _ in node.value:  # a key written twice is a mistake; one a merge (`<<:`) brings is not
        if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(key_node, yaml.ScalarNode):
            continue
        if key_node.value in seen:
            raise ConstructorError(
                None,
                None,
                f"{key_node.value!r} appears twice (line {seen[key_node.value]})",
                key_node.start_mark,
            )
        seen[key_node.value] = key_node.start_mark.line + 1
    loader.flatten_mapping(node)  # merge keys (`<<: *anchor`) first, then the mapping's own keys win
    out = LineMap()
    out.line = node.start_mark.line + 1
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str | int | float | bool):
            raise ConstructorError(None, None, "a key must be a plain value", key_node.start_mark)
        out[key] = loader.construct_object(value_node, deep=True)
        out.lines[key] = key_node.start_mark.line + 1
    return out


def _sequence(loader: _LineLoader, node: yaml.SequenceNode) -> LineList:
    out = LineList(loader.construct_object(child, deep=True) for child in node.value)
    out.line = node.start_mark.line + 1
    out.item_lines = [child.start_mark.line + 1 for child in node.value]
    return out


_LineLoader.add_constructor("tag:yaml.org,2002:map", _mapping)
_LineLoader.add_constructor("tag:yaml.org,2002:seq", _sequence)


def load_text(text: str, name: str):
    """The YAML document in `text`, its mappings and lists carrying lines; `name` is the file in errors."""
    try:
        return yaml.load(text, Loader=_LineLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise RecipeError(f"{name}:{line}: not valid YAML: {e.problem or e.context}") from None
    except yaml.YAMLError as e:
        raise RecipeError(f"{name}: not valid YAML: {e}") from None


def load_file(path: str | Path):
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise RecipeError(f"{path}: {e.strerror}") from None
    except UnicodeDecodeError:
        raise RecipeError(f"{path}: not a UTF-8 text file") from None
    return load_text(text, str(path))

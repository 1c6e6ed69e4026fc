"""Declarative, user-editable data: patterns, policies, thresholds, prompts.

`load_rules("quality.yaml")` reads a file shipped here; a path to a user's own file works too.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import yaml

RULES_DIR = Path(__file__).parent


@cache
def _load(path: str) -> dict:
    with open(path, encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a YAML mapping")
    return data


def rules_path(name: str | Path) -> Path:
    p = Path(name)
    if p.is_file():
        return p
    shipped = RULES_DIR / str(name)
    if shipped.is_file():
        return shipped
    raise FileNotFoundError(f"no rules file {name!r} (neither a path nor one of {RULES_DIR})")


def load_rules(name: str | Path) -> dict:
    """A rules file as a dict (cached; treat it as read-only)."""
    return _load(str(rules_path(name)))

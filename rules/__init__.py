"""Declarative, user-editable data: patterns, policies, thresholds, prompts.

`load_rules("quality.yaml")` reads a file shipped here; a path to a user's own file works too. Prompt
templates in every rules file use one convention: `{name}` placeholders filled by `fill`; any other brace
(JSON in a prompt) is left as it is.
"""

from __future__ import annotations

import re
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


def fill(template: str, **values) -> str:
    """Replace the `{name}` placeholders named in `values`, in one pass: braces inside the values are never
    read as placeholders, and other braces (JSON in a template) stay as they are.

    >>> fill('Rate {response} as {"score": n}', response="{response}")
    'Rate {response} as {"score": n}'
    """
    if not values:
        return template
    pattern = "|".join(re.escape(k) for k in values)
    return re.sub(r"\{(" + pattern + r")\}", lambda m: str(values[m.group(1)]), template)


@cache
def word_list(name: str | Path) -> frozenset:
    """A word list shipped here (one word a line, `#` comments), lower-cased."""
    lines = rules_path(name).read_text(encoding="utf-8").splitlines()
    return frozenset(w.strip().lower() for w in lines if w.strip() and not w.startswith("#"))

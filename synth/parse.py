"""Defensive parsing of LLM output: JSON that arrives in code fences, with trailing commas, single
quotes, prose around it, or cut off at the end.

>>> parse_json('Sure! ```json\\n[{"tag": "math", "explanation": "sums",},]\\n```')
[{'tag': 'math', 'explanation': 'sums'}]
>>> parse_json("[{'tag': 'coding'}, {'tag': 'debu", expect=list)  # truncated: complete items kept
[{'tag': 'coding'}]
"""

from __future__ import annotations

import ast
import json
import re

_FENCE = re.compile(r"```(?:json|JSON|python)?\s*\n?(.*?)(?:```|$)", re.S)
_TRAILING_COMMA = re.compile(r",\s*([\]}])")


class ParseError(ValueError):
    """The text holds no usable value; the message says why (it goes to the ledger)."""


def _candidates(text: str) -> list[str]:
    out = [m.group(1) for m in _FENCE.finditer(text) if m.group(1).strip()]
    for open_, close in (("[", "]"), ("{", "}")):
        i = text.find(open_)
        if i >= 0:
            j = text.rfind(close)
            out.append(text[i : j + 1] if j > i else text[i:])
    out.append(text)
    return out


def _loads(s: str):
    s = s.strip()
    for attempt in (s, _TRAILING_COMMA.sub(r"\1", s)):
        try:
            return json.loads(attempt)
        except json.JSONDecodeError:
            pass
        try:  # single quotes, True/False/None: a Python literal
            return ast.literal_eval(attempt)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            pass
    raise ValueError


def _repair_truncated(s: str):
    """Cut a truncated list back to its last complete item and close it."""
    s = s.strip()
    if not s.startswith("["):
        raise ValueError
    for end in range(len(s), 0, -1):
        if s[end - 1] in "}]\"'0123456789el":
            try:
                value = _loads(s[:end].rstrip().rstrip(",") + "]")
            except ValueError:
                continue
            if isinstance(value, list):
                return value
    raise ValueError


def parse_json(text: str, *, expect: type | None = None):
    """The first JSON (or Python-literal) value found in `text`, of type `expect` when given."""
    if text is None or not text.strip():
        raise ParseError("empty output")
    for cand in _candidates(text):
        for fn in (_loads, _repair_truncated):
            try:
                value = fn(cand)
            except ValueError:
                continue
            if expect is None or isinstance(value, expect):
                return value
    want = f" {expect.__name__}" if expect else ""
    snippet = " ".join(text.split())[:80]
    raise ParseError(f"no JSON{want} found in output: {snippet!r}")

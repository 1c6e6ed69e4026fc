"""`curate diff A B`: what changed between two datasets or run directories, joined on row id.

A is "before" (an input file, or a run directory's main output), B is "after". When B is a run
directory, dropped rows carry the reasons from its ledger, and edits come from its `edits.jsonl`.

>>> word_diff("call me at 555 0100 today", "call me at <PHONE_NUMBER> today")
[('=', 'call me at '), ('-', '555 0100'), ('+', '<PHONE_NUMBER>'), ('=', ' today')]
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path

from curate.io import InputError
from curate.ledger import Run
from curate.schema import Reader, public, turn_fields, turn_path

_TOKEN = re.compile(r"\s+|[^\s]+")


def word_diff(before: str, after: str) -> list[tuple[str, str]]:
    """Word-level diff as (op, text) pairs; op is '=', '-' or '+'."""
    a, b = _TOKEN.findall(before), _TOKEN.findall(after)
    out: list[tuple[str, str]] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag == "equal":
            out.append(("=", "".join(a[i1:i2])))
            continue
        if i2 > i1:
            out.append(("-", "".join(a[i1:i2])))
        if j2 > j1:
            out.append(("+", "".join(b[j1:j2])))
    return out


def _rows(path: str | Path) -> tuple[dict[str, dict], Run | None]:
    p = Path(path)
    run = Run(p) if p.is_dir() else None
    rows = {}
    for row in Reader([str(p)], on_error="skip"):
        rows.setdefault(row["id"], public(row))
    return rows, run


def _turns(row: dict) -> list[tuple[str, str]]:
    fields = [f for part in turn_fields(row) for f in part]
    return [(turn_path(k, j), m["content"]) for k, msgs in fields for j, m in enumerate(msgs)]


def diff(a: str | Path, b: str | Path) -> dict:
    before, _ = _rows(a)
    after, run_b = _rows(b)
    rejected = {r["id"]: r for r in run_b.rejected()} if run_b else {}
    dropped, edited, added = [], [], []
    for rid, row in before.items():
        if rid not in after:
            rej = rejected.get(rid, {})
            dropped.append(
                {
                    "id": rid,
                    "step": rej.get("reject_step"),
                    "reason": rej.get("reject_reason"),
                    "detail": rej.get("reject_detail"),
                    "row": row,
                }
            )
            continue
        changes = []
        new_turns = dict(_turns(after[rid]))
        for path, text in _turns(row):
            new = new_turns.get(path)
            if new is not None and new != text:
                changes.append({"field": path, "before": text, "after": new, "diff": word_diff(text, new)})
        if changes:
            edited.append({"id": rid, "changes": changes})
    for rid, row in after.items():
        if rid not in before:
            added.append({"id": rid, "row": row})
    if not before and not after:
        raise InputError(f"{a} and {b}: no rows to compare")
    reasons: dict[str, int] = {}
    for d in dropped:
        key = f"{d['step']}:{d['reason']}" if d["reason"] else "(not in B's ledger)"
        reasons[key] = reasons.get(key, 0) + 1
    return {
        "a": str(a),
        "b": str(b),
        "counts": {
            "a": len(before),
            "b": len(after),
            "unchanged": len(before) - len(dropped) - len(edited),
            "dropped": len(dropped),
            "edited": len(edited),
            "added": len(added),
        },
        "dropped_by_reason": dict(sorted(reasons.items(), key=lambda kv: -kv[1])),
        "dropped": dropped,
        "edited": edited,
        "added": added,
    }

"""Reading a candidates file: the rows `synth candidates` writes, validated as a whole before anything is served.

A row is `prompt` (a string, or messages ending in a user turn), `responses` (at least two: strings, or
objects with `text` and optionally `id` and `sources`) and optionally `id`; other columns are kept for the
ledger. A bad row stops the command with its file, line and field.

>>> candidate({"prompt": "Hi?", "responses": ["Hello.", {"text": "Hi!", "sources": [{"model": "m"}]}]})["prompt"]
[{'role': 'user', 'content': 'Hi?'}]
>>> candidate({"prompt": "Hi?", "responses": ["Hello."]})
Traceback (most recent call last):
...
curate.schema.RowError: a ranking needs at least 2 responses, got 1
"""

from __future__ import annotations

import orjson
import xxhash

from curate.io import InputError, iter_lines
from curate.schema import RowError, _turns, _type_name, content_id, decode


def _response(r, path: str, parent_id: str, k: int) -> dict:
    if isinstance(r, str):
        r = {"text": r}
    if not isinstance(r, dict):
        raise RowError(path, f"expected an object with text, or a string, got {_type_name(r)}")
    text = r.get("text")
    if not isinstance(text, str):
        raise RowError(
            f"{path}.text", "missing" if text is None else f"expected a string, got {_type_name(text)}"
        )
    if not text.strip():
        raise RowError(f"{path}.text", "empty")
    rid = r.get("id")
    if rid is None:
        rid = xxhash.xxh3_128_hexdigest(orjson.dumps([parent_id, k, text]))
    elif not isinstance(rid, str) or not rid.strip():
        raise RowError(f"{path}.id", "expected a non-empty string")
    return {**r, "id": rid, "text": text}


def candidate(raw) -> dict:
    """One validated candidates row: `id`, `prompt` (messages), `responses` ({id, text, ...}) and its other
    columns."""
    if not isinstance(raw, dict):
        raise RowError(None, f"expected a JSON object, got {_type_name(raw)}")
    prompt = _turns(raw.get("prompt"), "prompt", "user")
    if prompt[-1]["role"] != "user":
        raise RowError(f"prompt[{len(prompt) - 1}].role", "a prompt ends with a user turn")
    responses = raw.get("responses")
    if not isinstance(responses, list):
        got = "missing" if responses is None else f"expected a list, got {_type_name(responses)}"
        raise RowError("responses", got)
    if len(responses) < 2:
        raise RowError("responses", f"a ranking needs at least 2 responses, got {len(responses)}")
    rid = raw.get("id")
    if rid is None:
        rid = content_id({"messages": prompt})
    elif isinstance(rid, bool) or not isinstance(rid, str | int) or not str(rid).strip():
        raise RowError("id", "expected a non-empty string")
    rid = str(rid)
    out = [_response(r, f"responses[{k}]", rid, k) for k, r in enumerate(responses)]
    seen: dict[str, int] = {}
    for k, r in enumerate(out):
        if r["id"] in seen:
            raise RowError(f"responses[{k}].id", f"{r['id']!r} repeats responses[{seen[r['id']]}]")
        seen[r["id"]] = k
    return {**raw, "id": rid, "prompt": prompt, "responses": out}


def read_candidates(path: str) -> list[dict]:
    """Every row of a candidates file (or run directory), validated; the first bad line raises InputError."""
    rows: list[dict] = []
    first_line: dict[str, str] = {}
    for rec in iter_lines([path]):
        where = f"{rec.source}:{rec.line}"
        try:
            row = candidate(decode(rec))
        except RowError as e:
            raise InputError(f"{where}: {e.describe()}") from None
        if row["id"] in first_line:
            raise InputError(f"{where}: field 'id': {row['id']!r} repeats {first_line[row['id']]}")
        first_line[row["id"]] = where
        rows.append(row)
    if not rows:
        raise InputError(f"{path}: empty input (no rows)")
    return rows

"""Curated output -> TRL datasets, and validation of the whole dataset (not its first row).

`curate` and `synth` write TRL's conventions already (`messages` for SFT; explicit `prompt`/`chosen`/`rejected`
for preferences), so there is no conversion: rows are read with `curate.schema.Reader`, checked, split into
train/eval by a hash of their id, and handed to TRL. SFT rows are tokenized here, with the assistant-only label
mask of `train.template`; preference rows go to TRL as conversations.

>>> rows = [{"id": "a", "messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": ""}],
...          "_kind": "conversation"}]
>>> [p.message for p in validate_rows(rows, kind="sft")]
['empty content']
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

import xxhash

from curate.io import InputError

KINDS = ("sft", "preference")
MAX_EXAMPLES = 5


@dataclass
class Problem:
    """Rows that share one fault; `level` is 'error' (training refused) or 'warning' (reported, allowed)."""

    level: str
    check: str
    message: str
    rows: list[str] = field(default_factory=list)
    count: int = 0
    numbers: set[int] = field(default_factory=set, repr=False)  # 1-based row numbers, all of them

    def as_dict(self) -> dict:
        return {
            "level": self.level,
            "check": self.check,
            "message": self.message,
            "count": self.count,
            "examples": self.rows[:MAX_EXAMPLES],
        }


class _Collector:
    def __init__(self):
        self.by_key: dict[tuple, Problem] = {}

    def add(self, level: str, check: str, message: str, where: str, n: int | None = None) -> None:
        p = self.by_key.setdefault((level, check, message), Problem(level, check, message))
        p.count += 1
        if n is not None:
            p.numbers.add(n)
        if len(p.rows) < MAX_EXAMPLES:
            p.rows.append(where)

    def problems(self) -> list[Problem]:
        return list(self.by_key.values())


def data_files(path: str, kind: str | None = None) -> list:
    """The files to read: a file, or a run directory's main outputs. A `synth` run directory holds both
    `sft.jsonl` and `preference.jsonl`; with a `kind`, only the one that kind trains on is read."""
    from curate.io import resolve_input

    files = resolve_input(path)
    is_pref = [getattr(f, "name", "") == "preference.jsonl" for f in files]
    if kind is None and any(is_pref) and not all(is_pref):
        names = ", ".join(f.name for f in files)
        raise InputError(f"{path}: holds {names}; pass --kind sft or --kind preference to say which to use")
    if kind is None or len(files) < 2:
        return files
    wanted = [f for f, pref in zip(files, is_pref, strict=True) if pref == (kind == "preference")]
    return wanted or files


def read_rows(
    path: str, *, input_format: str = "auto", max_rows: int | None = None, kind: str | None = None
) -> tuple[list[dict], list]:
    """All rows of a file or run directory, plus the lines that did not parse (reported, not raised).

    The same decoding and normalization as `curate.schema.Reader`, keeping each row's file and line in `_where`
    so that a report points at the line to fix.
    """
    from curate.io import iter_lines
    from curate.schema import (
        FORMATS,
        IdRegistry,
        InvalidRow,
        RowError,
        decode,
        duplicate_id_error,
        id_key,
        normalize,
    )

    if input_format not in FORMATS:
        raise InputError(f"unknown input format {input_format!r} (choose from {', '.join(FORMATS)})")
    rows, invalid = [], []
    ids = IdRegistry()
    for rec in iter_lines(data_files(path, kind)):
        try:
            row = normalize(decode(rec), input_format=input_format)
            if not ids.admit(id_key(row)):
                raise duplicate_id_error(row["id"])
        except RowError as e:
            invalid.append(InvalidRow(rec.source, rec.line, e.field, e.message, raw=""))
            continue
        row["_where"] = f"{rec.source}:{rec.line}"
        rows.append(row)
        if max_rows is not None and len(rows) >= max_rows:
            break
    if not rows and not invalid:
        raise InputError(f"{path}: empty input (no rows)")
    return rows, invalid


def infer_kind(rows: list[dict]) -> str:
    kinds = Counter(r["_kind"] for r in rows)
    if not kinds:
        raise InputError("no valid rows to train on")
    top = kinds.most_common(1)[0][0]
    return "preference" if top == "preference" else "sft"


def _where(n: int, row: dict) -> str:
    return f"{row.get('_where') or f'row {n}'} (id {row.get('id')})"


def _check_turns(
    msgs: list[dict], path: str, where: str, n: int, out: _Collector, *, first: str, last: str | None
) -> None:
    """Roles alternate user/assistant after an optional leading system message, starting with `first` and ending
    with `last` (None: any)."""
    expected = first
    for i, m in enumerate(msgs):
        role = m["role"]
        if role == "system":
            if i != 0 or path not in ("prompt", "messages"):
                out.add("error", "roles", f"a system message is only allowed first ({path}[{i}])", where, n)
            continue
        if role != expected:
            out.add(
                "error",
                "roles",
                f"roles do not alternate user/assistant ({path}[{i}] is {role}, expected {expected})",
                where,
                n,
            )
            return
        expected = "assistant" if role == "user" else "user"
    if last is not None and msgs and msgs[-1]["role"] != last:
        if last == "assistant":
            out.add(
                "error",
                "final turn",
                f"the last turn of {path} is {msgs[-1]['role']}, not assistant",
                where,
                n,
            )
        else:
            out.add(
                "error", "final turn", f"{path} must end with a user turn, not {msgs[-1]['role']}", where, n
            )


def _contents(row: dict):
    for key in ("messages", "prompt", "chosen", "rejected"):
        for i, m in enumerate(row.get(key) or []):
            yield f"{key}[{i}]", m


def validate_rows(
    rows: list[dict], *, kind: str, invalid: list = (), control_tokens: list[str] = ()
) -> list[Problem]:
    """Every data fault of every row, grouped by fault: unreadable lines, mixed schemas, roles and alternation,
    a final assistant turn, empty content, chosen == rejected, duplicate ids, template control tokens in text."""
    out = _Collector()
    for bad in invalid:
        what = f"{bad.field}: {bad.error}" if bad.field else bad.error
        out.add("error", "readable", f"row does not fit the schema: {what}", f"{bad.source}:{bad.line}")
    want = "preference" if kind == "preference" else "conversation"
    seen_ids: dict[str, int] = {}
    for n, row in enumerate(rows, start=1):
        where = _where(n, row)
        rk = row["_kind"]
        if (rk == "preference") != (want == "preference"):
            out.add(
                "error",
                "one schema",
                f"a {rk} row in a {kind} dataset (rows must all be {want} rows)",
                where,
                n,
            )
            continue
        rid = str(row["id"])
        if rid in seen_ids:
            out.add(
                "warning",
                "unique ids",
                "id repeats an earlier row (the train/eval split keys on ids)",
                where,
                n,
            )
        seen_ids.setdefault(rid, n)
        for path, m in _contents(row):
            content = m.get("content")
            if content is None:
                out.add("error", "content", "null content", f"{where} {path}", n)
            elif not isinstance(content, str):
                out.add(
                    "error", "content", f"content is {type(content).__name__}, not text", f"{where} {path}", n
                )
            elif not content.strip():
                out.add("error", "content", "empty content", f"{where} {path}", n)
            else:
                for tok in control_tokens:
                    if tok in content:
                        out.add(
                            "error",
                            "control tokens",
                            f"text contains the template's control token {tok} (it would be read as structure)",
                            f"{where} {path}",
                            n,
                        )
        if want == "conversation":
            _check_turns(row["messages"], "messages", where, n, out, first="user", last="assistant")
        else:
            _check_turns(row["prompt"], "prompt", where, n, out, first="user", last="user")
            for key in ("chosen", "rejected"):
                _check_turns(row[key], key, where, n, out, first="assistant", last="assistant")
            if _plain(row["chosen"]) == _plain(row["rejected"]):
                out.add("error", "chosen != rejected", "chosen and rejected are identical", where, n)
    return out.problems()


def _plain(msgs: list[dict]) -> list[tuple[str, str]]:
    return [(m["role"], (m.get("content") or "").strip()) for m in msgs]


# ---------------------------------------------------------------------------------------------------------------
# Token lengths


@dataclass
class LengthStats:
    """Token lengths of every row (SFT: the conversation; preference: prompt+chosen and prompt+rejected)."""

    lengths: list[int]
    max_length: int | None
    truncated: list[str]  # rows longer than max_length that keep part of their trained tokens
    dropped: list[str]  # rows training would drop: nothing trainable left, or (reward) longer than max_length
    drop_reason: str = ""

    def histogram(self, bins: int = 8) -> list[tuple[int, int, int]]:
        """(low, high, count) buckets of equal width up to the longest row."""
        if not self.lengths:
            return []
        low, top = min(self.lengths), max(self.lengths)
        width = max(1, -(-(top - low + 1) // bins))
        counts = Counter(min((v - low) // width, bins - 1) for v in self.lengths)
        return [
            (low + b * width, low + (b + 1) * width - 1, counts.get(b, 0))
            for b in range(bins)
            if low + b * width <= top
        ]

    def summary(self) -> dict:
        xs = sorted(self.lengths)
        if not xs:
            return {}
        return {
            "rows": len(xs),
            "min": xs[0],
            "median": xs[len(xs) // 2],
            "p95": xs[int(0.95 * (len(xs) - 1))],
            "max": xs[-1],
            "total_tokens": sum(xs),
        }

    def as_dict(self) -> dict:
        return {
            "max_length": self.max_length,
            **self.summary(),
            "histogram": self.histogram(),
            "truncated": len(self.truncated),
            "dropped": len(self.dropped),
            "drop_reason": self.drop_reason,
        }


def token_lengths(
    rows: list[dict],
    tokenizer,
    *,
    kind: str,
    max_length: int | None,
    method: str | None = None,
    numbers: list[int] | None = None,
) -> LengthStats:
    """Tokenize every row the way training will, and find the rows `max_length` would truncate or drop.

    TRL truncates SFT and DPO sequences (keep_start) and drops rows left with nothing to train on; the reward
    trainer drops every pair with a side longer than `max_length`.
    """
    from train.template import IGNORE_INDEX, end_of_turn_token, render, tokenize_conversation

    numbers = list(numbers or range(1, len(rows) + 1))
    # Render everything, then tokenize in batches (the Rust tokenizer is the cost); a row the template
    # cannot render is reported by the preflight, with the template's message.
    texts: list[tuple[int, dict, list[str]]] = []
    for n, row in zip(numbers, rows, strict=True):
        try:
            if kind == "sft":
                parts = [render(tokenizer, row["messages"])]
            else:
                parts = [render(tokenizer, row["prompt"], add_generation_prompt=True)]
                parts += [render(tokenizer, row["prompt"] + row[k]) for k in ("chosen", "rejected")]
        except Exception:
            continue
        texts.append((n, row, parts))
    flat = [t for _, _, parts in texts for t in parts]
    ids: list[list[int]] = []
    for i in range(0, len(flat), 1024):
        ids += tokenizer(flat[i : i + 1024], add_special_tokens=False)["input_ids"]

    lengths, truncated, dropped = [], [], []
    reason = ""
    eot = end_of_turn_token(tokenizer) if kind == "sft" else None
    k = 0
    for n, row, parts in texts:
        seqs = ids[k : k + len(parts)]
        k += len(parts)
        where = _where(n, row)
        if kind == "sft":
            lengths.append(len(seqs[0]))
            if max_length is None or len(seqs[0]) <= max_length:
                continue
            try:
                _, labels = tokenize_conversation(tokenizer, row["messages"], eot=eot)
            except Exception:
                continue
            if all(lab == IGNORE_INDEX for lab in labels[:max_length]):
                dropped.append(where)
                reason = "no assistant token left within max_length"
            else:
                truncated.append(where)
        else:
            prompt, *sides = seqs
            longest = max(len(s) for s in sides)
            lengths.extend(len(s) for s in sides)
            if max_length is None or longest <= max_length:
                continue
            if method == "reward":
                dropped.append(where)
                reason = "the reward trainer drops pairs longer than max_length"
            elif len(prompt) >= max_length:
                dropped.append(where)
                reason = "the prompt alone fills max_length"
            else:
                truncated.append(where)
    return LengthStats(lengths, max_length, truncated, dropped, reason)


# ---------------------------------------------------------------------------------------------------------------
# Split and TRL datasets


def is_eval_row(row_id: str, fraction: float) -> bool:
    """Deterministic hold-out: the same id is in the same split in every run, whatever the row order."""
    if fraction <= 0:
        return False
    return xxhash.xxh3_64_intdigest(str(row_id).encode()) / 2**64 < fraction


def split_rows(rows: list[dict], eval_fraction: float) -> tuple[list[dict], list[dict]]:
    train, held = [], []
    for row in rows:
        (held if is_eval_row(row["id"], eval_fraction) else train).append(row)
    if not train:
        raise InputError(f"data.eval_fraction={eval_fraction} leaves no training rows")
    return train, held


def data_hash(rows: list[dict]) -> str:
    """A hash of what is trained on (ids and content, in order), independent of file layout and compression."""
    import orjson

    from curate.schema import content_of

    h = xxhash.xxh3_128()
    for row in rows:
        h.update(orjson.dumps({"id": row["id"], **content_of(row)}, option=orjson.OPT_SORT_KEYS))
        h.update(b"\n")
    return h.hexdigest()


def _msgs(msgs: list[dict]) -> list[dict]:
    return [{"role": m["role"], "content": m["content"]} for m in msgs]


def sft_dataset(rows: list[dict], tokenizer, *, assistant_only: bool = True):
    """A pre-tokenized `datasets.Dataset` of input_ids and labels (TRL uses labels as given)."""
    from datasets import Dataset

    from train.template import end_of_turn_token, tokenize_conversation

    eot = end_of_turn_token(tokenizer)
    cols = defaultdict(list)
    for row in rows:
        ids, labels = tokenize_conversation(
            tokenizer, _msgs(row["messages"]), assistant_only=assistant_only, eot=eot
        )
        cols["input_ids"].append(ids)
        cols["labels"].append(labels)
    return Dataset.from_dict(dict(cols))


def preference_dataset(rows: list[dict]):
    """Conversational prompt/chosen/rejected rows, TRL's explicit-prompt preference format."""
    from datasets import Dataset

    return Dataset.from_dict(
        {
            "prompt": [_msgs(r["prompt"]) for r in rows],
            "chosen": [_msgs(r["chosen"]) for r in rows],
            "rejected": [_msgs(r["rejected"]) for r in rows],
        }
    )

"""Curated output -> TRL datasets, and validation of the whole dataset (not its first row).

`curate` and `synth` write TRL's conventions already (`messages` for SFT; explicit `prompt`/`chosen`/`rejected`
for preferences), so there is no conversion: rows are read with `curate.schema.Reader`, checked, split into
train/eval by a hash of their id, and handed to TRL. SFT rows are tokenized here, with the assistant-only label
mask of `train.template` (tool calls trained, tool results not); plain `text` rows are BOS + text + EOS, all
trained; preference rows go to TRL as conversations (with their `tools`).

A ranking (`edited` > `chosen` > `rejected`, or `responses` best first) is split before it is expanded, so its
pairs stay on one side of the train/eval split: `train reward` learns every ordered pair of it (`reward_pairs`),
`train dpo` its best against its worst.

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

KINDS = ("sft", "text", "preference", "prompt")  # prompt: what the on-policy commands sample from
ROW_KIND = {"sft": "conversation", "text": "text", "preference": "preference", "prompt": "prompt"}
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
    return top if top in ("preference", "text") else "sft"


def data_kind(method_kind: str, rows: list[dict]) -> str:
    """What a method trains on here: `sft` trains conversations, or plain text rows when the data is text;
    `prompt-or-sft` (distillation) takes prompts, or conversations when there are any (checked as such)."""
    if method_kind == "prompt-or-sft":
        return "sft" if any(r["_kind"] == "conversation" for r in rows) else "prompt"
    return "text" if method_kind == "sft" and rows and infer_kind(rows) == "text" else method_kind


def _where(n: int, row: dict) -> str:
    return f"{row.get('_where') or f'row {n}'} (id {row.get('id')})"


def _check_turns(
    msgs: list[dict],
    where: str,
    n: int,
    out: _Collector,
    *,
    parts: list[tuple[str, int]],
    tools: list[str] | None,
    last: tuple[str, ...] | None,
) -> None:
    """The structure of `msgs` (`curate.turns`: roles, tool calls and results) and its final role (`last`, None
    for any). `parts` names the fields `msgs` is made of, with their lengths (prompt + a response)."""
    from curate.turns import ROLE_ORDER, turn_problem

    def path(j: int) -> str:
        for name, size in parts:
            if j < size:
                return f"{name}[{j}]"
            j -= size
        return f"{parts[-1][0]}[{j}]"

    found = turn_problem(msgs, tools=tools, where=path)
    if found is not None:
        if found.reason == ROLE_ORDER:
            out.add("error", "roles", f"roles do not alternate user/assistant ({found.detail})", where, n)
        else:
            out.add("error", "tool calls", f"{found.reason}: {found.detail}", where, n)
        return
    if last is not None and msgs and msgs[-1]["role"] not in last:
        name = parts[-1][0]
        if last == ("assistant",):
            message = f"the last turn of {name} is {msgs[-1]['role']}, not assistant"
        else:
            message = f"{name} must end with a {' or '.join(last)} turn, not {msgs[-1]['role']}"
        out.add("error", "final turn", message, where, n)


def _contents(row: dict):
    from curate.schema import turn_fields

    for name, msgs in (f for part in turn_fields(row) for f in part):
        if name == "text":
            yield "text", {"role": "text", "content": row["text"]}
            continue
        for i, m in enumerate(msgs):
            yield f"{name}[{i}]", m


def validate_rows(
    rows: list[dict], *, kind: str, invalid: list = (), control_tokens: list[str] = ()
) -> list[Problem]:
    """Every data fault of every row, grouped by fault: unreadable lines, mixed schemas, roles and tool use, a
    final assistant turn, empty content, identical responses, margins, duplicate ids, template control tokens."""
    from curate.schema import ranking
    from curate.turns import tool_names

    out = _Collector()
    for bad in invalid:
        what = f"{bad.field}: {bad.error}" if bad.field else bad.error
        out.add("error", "readable", f"row does not fit the schema: {what}", f"{bad.source}:{bad.line}")
    want = ROW_KIND[kind]
    seen_ids: dict[str, int] = {}
    for n, row in enumerate(rows, start=1):
        where = _where(n, row)
        rk = row["_kind"]
        have = rk if rk in ("preference", "text") else "conversation"
        if want == "prompt" and rk == "prompt":
            have = "prompt"
        if have != want:
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
                if not m.get("tool_calls"):  # a message that only calls tools needs no text
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
        tools = tool_names(row.get("tools"))
        if want == "conversation":
            msgs = row["messages"]
            _check_turns(
                msgs, where, n, out, parts=[("messages", len(msgs))], tools=tools, last=("assistant",)
            )
        elif want == "preference":
            prompt = row["prompt"]
            _check_turns(
                prompt, where, n, out, parts=[("prompt", len(prompt))], tools=tools, last=("user", "tool")
            )
            responses = ranking(row)
            for name, msgs in responses:
                _check_turns(
                    prompt + msgs,
                    where,
                    n,
                    out,
                    parts=[("prompt", len(prompt)), (name, len(msgs))],
                    tools=tools,
                    last=("assistant",),
                )
            seen: dict[tuple, str] = {}
            for name, msgs in responses:
                same = seen.setdefault(tuple(_plain(msgs)), name)
                if same != name:
                    what = "chosen and rejected are" if len(responses) == 2 else f"{same} and {name} are"
                    out.add("error", "chosen != rejected", f"{what} identical", where, n)
                    break
            margin = row.get("margin")
            if margin is not None and (isinstance(margin, bool) or not isinstance(margin, int | float)):
                out.add("error", "margin", f"margin is {type(margin).__name__}, not a number", where, n)
        elif want == "prompt":
            msgs = row["messages"]
            _check_turns(msgs, where, n, out, parts=[("messages", len(msgs))], tools=tools, last=("user",))
    return out.problems()


def _plain(msgs: list[dict]) -> list[tuple]:
    import orjson

    return [
        (
            m["role"],
            (m.get("content") or "").strip(),
            orjson.dumps(m.get("tool_calls") or [], option=orjson.OPT_SORT_KEYS),
        )
        for m in msgs
    ]


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
    # rows the chat template refuses to render, by the template's message (training would stop on them)
    unrenderable: dict[str, list[str]] = field(default_factory=dict)

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
    add_eos: bool = False,
) -> LengthStats:
    """Tokenize every row the way training will, and find the rows `max_length` would truncate or drop.

    TRL truncates SFT and DPO sequences (keep_start) and drops rows left with nothing to train on; the reward
    trainer drops every pair with a side longer than `max_length`.
    """
    from train.template import IGNORE_INDEX, end_of_turn_token, render, tokenize_conversation, tokenize_text

    numbers = list(numbers or range(1, len(rows) + 1))
    if kind == "text":
        lengths, truncated = [], []
        for n, row in zip(numbers, rows, strict=True):
            lengths.append(len(tokenize_text(tokenizer, row["text"])))
            if max_length is not None and lengths[-1] > max_length:
                truncated.append(_where(n, row))
        return LengthStats(lengths, max_length, truncated, [])
    # Render everything, then tokenize in batches (the Rust tokenizer is the cost); a row the template
    # cannot render is reported with the template's message.
    texts: list[tuple[int, dict, list[str]]] = []
    unrenderable: dict[str, list[str]] = {}
    for n, row in zip(numbers, rows, strict=True):
        tools = row.get("tools")
        try:
            if kind == "sft":
                parts = [render(tokenizer, row["messages"], tools=tools)]
            elif kind == "prompt":
                parts = [render(tokenizer, row["messages"], add_generation_prompt=True, tools=tools)]
            else:
                parts = [render(tokenizer, row["prompt"], add_generation_prompt=True, tools=tools)]
                parts += [
                    render(tokenizer, row["prompt"] + r, tools=tools) for r in trained_responses(row, method)
                ]
        except Exception as e:  # jinja's TemplateError from raise_exception, or a template bug
            unrenderable.setdefault(f"{type(e).__name__}: {e}", []).append(_where(n, row))
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
        if kind == "prompt":
            lengths.append(len(seqs[0]))
            if max_length is not None and len(seqs[0]) >= max_length:
                dropped.append(where)
                reason = "the prompt alone fills max_length: nothing left to generate"
        elif kind == "sft":
            # --add-eos writes one more token, unless the template already ends with the EOS
            extra = int(add_eos and not parts[0].rstrip().endswith(tokenizer.eos_token or "\0"))
            lengths.append(len(seqs[0]) + extra)
            if max_length is None or lengths[-1] <= max_length:
                continue
            try:
                _, labels = tokenize_conversation(
                    tokenizer, row["messages"], eot=eot, tools=row.get("tools"), add_eos=add_eos
                )
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
    return LengthStats(lengths, max_length, truncated, dropped, reason, unrenderable)


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


def trained_responses(row: dict, method: str | None) -> list[list[dict]]:
    """The responses of a preference row that `method` trains on: DPO its best and worst, the reward model (and a
    check without a method) every response of the ranking."""
    from curate.schema import ranking

    ranked = [msgs for _, msgs in ranking(row)]
    return [ranked[0], ranked[-1]] if method == "dpo" else ranked


def reward_pairs(row: dict) -> list[tuple[list[dict], list[dict], float]]:
    """Every ordered pair of a row's ranking, better first, as (chosen, rejected, margin): the Bradley-Terry loss
    of each pair is what Llama 3 sums over a ranking. A row's `margin` is the gap asked between neighbours in the
    ranking, so a pair k ranks apart gets k times it (what the neighbouring pairs imply anyway); no margin is 0.

    >>> row = {"prompt": [], "chosen": ["c"], "rejected": ["r"], "edited": ["e"], "margin": 0.5}
    >>> [(a, b, m) for a, b, m in reward_pairs(row)]
    [(['e'], ['c'], 0.5), (['e'], ['r'], 1.0), (['c'], ['r'], 0.5)]
    """
    from curate.schema import ranking

    ranked = [msgs for _, msgs in ranking(row)]
    margin = float(row.get("margin") or 0.0)
    return [
        (ranked[i], ranked[j], margin * (j - i))
        for i in range(len(ranked))
        for j in range(i + 1, len(ranked))
    ]


def _msgs(msgs: list[dict]) -> list[dict]:
    from train.template import template_message

    return [template_message(m) for m in msgs]


def sft_dataset(rows: list[dict], tokenizer, *, assistant_only: bool = True, add_eos: bool = False):
    """A pre-tokenized `datasets.Dataset` of input_ids and labels (TRL uses labels as given)."""
    from datasets import Dataset

    from train.template import end_of_turn_token, has_chat_template, tokenize_conversation, tokenize_text

    eot = end_of_turn_token(tokenizer) if has_chat_template(tokenizer) else None
    cols = defaultdict(list)
    for row in rows:
        if row["_kind"] == "text":
            ids = tokenize_text(tokenizer, row["text"])
            labels = list(ids)
        else:
            ids, labels = tokenize_conversation(
                tokenizer,
                row["messages"],
                assistant_only=assistant_only,
                eot=eot,
                tools=row.get("tools"),
                add_eos=add_eos,
            )
        cols["input_ids"].append(ids)
        cols["labels"].append(labels)
    return Dataset.from_dict(dict(cols))


def preference_dataset(rows: list[dict], *, method: str = "dpo"):
    """TRL's explicit-prompt conversational preference rows, with each row's `tools` (JSON text, as TRL reads it).
    `method='dpo'`: one pair per row, the best response against the worst; `method='reward'`: every ordered pair
    of each ranking (`reward_pairs`), with a `margin` column when any row has one.

    Messages are stored as JSON (`datasets.Json`), so rows with different tool-call arguments keep exactly their
    own keys (Arrow structs would add every other row's keys as nulls, and templates would render them)."""
    import orjson
    from datasets import Dataset, Features, Json, List, Value

    cols = defaultdict(list)
    margins = method == "reward" and any(r.get("margin") is not None for r in rows)
    with_tools = any(r.get("tools") for r in rows)
    for r in rows:
        tools = orjson.dumps(r["tools"]).decode() if r.get("tools") else None
        if method == "reward":
            pairs = reward_pairs(r)
        else:
            best, worst = trained_responses(r, "dpo")
            pairs = [(best, worst, 0.0)]
        for chosen, rejected, margin in pairs:
            cols["prompt"].append(_msgs(r["prompt"]))
            cols["chosen"].append(_msgs(chosen))
            cols["rejected"].append(_msgs(rejected))
            cols["tools"].append(tools)
            cols["margin"].append(margin)
    features = {
        "prompt": List(Json()),
        "chosen": List(Json()),
        "rejected": List(Json()),
        "tools": Value("string"),
        "margin": Value("float32"),
    }
    for name, used in (("margin", margins), ("tools", with_tools)):
        if not used:
            del cols[name], features[name]
    return Dataset.from_dict(dict(cols), features=Features(features))

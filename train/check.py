"""`train check`: validate a whole dataset against a model's tokenizer before spending compute on it.

>>> report = run_check("sample.jsonl", "./tiny-gemma")        # doctest: +SKIP
>>> print(report.render()); report.ok                          # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass, field

from train.common import TrainError
from train.data import (
    KINDS,
    ROW_KIND,
    LengthStats,
    Problem,
    data_kind,
    infer_kind,
    read_rows,
    token_lengths,
    validate_rows,
)
from train.template import Preflight, has_chat_template, preflight

_TURNS = ("roles", "tool calls", "final turn", "content", "template renders")
_LAST = ("control tokens", "unique ids")
DATA_CHECKS = {  # in the order the report lists them
    "sft": ("readable", "one schema", *_TURNS, *_LAST),
    "text": ("readable", "one schema", "content", *_LAST),
    "preference": ("readable", "one schema", *_TURNS, "chosen != rejected", "margin", *_LAST),
    "prompt": ("readable", "one schema", *_TURNS, *_LAST),
}
# A reply appended to each prompt in the template preflight: on-policy training trains prompt + sampled reply.
PROBE_REPLY = [{"role": "assistant", "content": "A sampled reply."}]


@dataclass
class CheckReport:
    data: str
    model: str
    kind: str
    method: str | None
    rows: int
    problems: list[Problem]
    lengths: LengthStats | None
    preflight: Preflight | None
    notes: list[str] = field(default_factory=list)

    @property
    def errors(self) -> int:
        n = sum(1 for p in self.problems if p.level == "error")
        return n + (len(self.preflight.errors) if self.preflight else 0)

    @property
    def warnings(self) -> int:
        n = sum(1 for p in self.problems if p.level == "warning")
        return n + (sum(1 for f in self.preflight.findings if f.level == "warning") if self.preflight else 0)

    @property
    def ok(self) -> bool:
        return self.errors == 0

    def as_dict(self) -> dict:
        return {
            "data": self.data,
            "model": self.model,
            "kind": self.kind,
            "method": self.method,
            "rows": self.rows,
            "ok": self.ok,
            "errors": self.errors,
            "warnings": self.warnings,
            "problems": [p.as_dict() for p in self.problems],
            "lengths": self.lengths.as_dict() if self.lengths else None,
            "template": self.preflight.as_dict() if self.preflight else None,
        }

    def render(self) -> str:
        lines = [f"train check: {self.data} ({self.rows} rows, {self.kind}) with {self.model}", "", "data"]
        by_check: dict[str, list[Problem]] = {}
        for p in self.problems:
            by_check.setdefault(p.check, []).append(p)
        for check in DATA_CHECKS[self.kind]:
            if check not in by_check:
                lines.append(f"  ok    {check}")
        for check, probs in by_check.items():
            if check == "max_length":
                continue
            for p in probs:
                tag = "FAIL" if p.level == "error" else "warn"
                lines.append(f"  {tag}  {check}: {p.message} ({p.count} row{'s' if p.count != 1 else ''})")
                lines += [f"          {w}" for w in p.rows]
        if self.lengths is not None:
            s = self.lengths.summary()
            what = {"sft": "conversation", "text": "BOS + text + EOS", "prompt": "prompt"}.get(
                self.kind, "prompt + each response trained"
            )
            lines += ["", f"token lengths ({what})"]
            if s:
                lines.append(
                    f"  min {s['min']}  median {s['median']}  p95 {s['p95']}  max {s['max']}  "
                    f"total {s['total_tokens']}"
                )
                hist = self.lengths.histogram()
                top = max(c for _, _, c in hist) or 1
                for lo, hi, c in hist:
                    lines.append(f"  {lo:>7}-{hi:<7} {'#' * round(30 * c / top):<30} {c}")
            ml = self.lengths.max_length
            lines.append(
                f"  max_length {ml}: {len(self.lengths.truncated)} rows truncated, "
                f"{len(self.lengths.dropped)} rows dropped"
            )
            for p in by_check.get("max_length", []):
                tag = "FAIL" if p.level == "error" else "warn"
                lines.append(f"  {tag}  {p.message} ({p.count} rows)")
                lines += [f"          {w}" for w in p.rows]
        if self.preflight is not None:
            pf = self.preflight
            lines += [
                "",
                "text rows (BOS + text + EOS, no chat template used)"
                if self.kind == "text"
                else f"chat template ({pf.format}, end-of-turn {pf.end_of_turn})",
            ]
            for f in pf.findings:
                tag = {"ok": "ok  ", "info": "note", "warning": "warn", "error": "FAIL"}[f.level]
                lines.append(f"  {tag}  {f.check}: {f.message}")
                lines += [f"          {e}" for e in f.examples]
        lines += [""] + [f"note: {n}" for n in self.notes]
        verdict = "ok" if self.ok else "FAILED"
        lines.append(f"result: {verdict}: {self.errors} error(s), {self.warnings} warning(s)")
        return "\n".join(lines)


def _samples(rows: list[dict], kind: str, n: int = 6) -> list[dict]:
    """A few rows that exercise the template differently: the first ones, one with a system prompt, one with
    tool calls, the longest conversation."""
    if kind == "text":
        return []
    key = "prompt" if kind == "preference" else "messages"
    picked = rows[:3]
    with_system = next((r for r in rows if r[key] and r[key][0]["role"] == "system"), None)
    with_tools = next((r for r in rows if r.get("tools") or any(m["role"] == "tool" for m in r[key])), None)
    longest = max(rows, key=lambda r: len(r[key]), default=None)
    for r in (with_system, with_tools, longest):
        if r is not None and all(r is not p for p in picked):
            picked.append(r)
    return picked[:n]


def load_tokenizer(model: str):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model)


def run_check(
    data: str,
    model: str,
    *,
    kind: str | None = None,
    method: str | None = None,
    max_length: int | None = 1024,
    input_format: str = "auto",
    max_rows: int | None = None,
    tokenizer=None,
    rows: list[dict] | None = None,
    invalid: list | None = None,
    add_eos: bool = False,
) -> CheckReport:
    """Data checks over every row, token lengths against `max_length`, then the chat-template preflight.
    `add_eos`: SFT sequences get the EOS `--add-eos` writes after the final turn."""
    if rows is None:
        rows, invalid = read_rows(data, input_format=input_format, max_rows=max_rows, kind=kind)
    invalid = invalid or []
    if kind is None:
        kind = infer_kind(rows) if rows else "sft"
    kind = data_kind(kind, rows)
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r} (choose from {', '.join(KINDS)})")
    if tokenizer is None:
        tokenizer = load_tokenizer(model)
    if kind != "text" and not has_chat_template(tokenizer):
        raise TrainError(
            f"{model}: the tokenizer has no chat template, so {ROW_KIND[kind]} rows cannot be rendered; give plain text rows "
            '({"text": ...}, or --input-format text) to train a pre-trained model, or a model whose tokenizer '
            "has a chat template (an instruct model, or chat_template.jinja in the model directory)"
        )
    control = [t.content for t in tokenizer.added_tokens_decoder.values() if t.special]
    problems = validate_rows(rows, kind=kind, invalid=invalid, control_tokens=control)
    # Lengths and the preflight run on the rows that passed the data checks: bad rows are already reported.
    bad = set().union(*(p.numbers for p in problems if p.level == "error"))
    numbers = [n for n in range(1, len(rows) + 1) if n not in bad]
    good = [rows[n - 1] for n in numbers]
    lengths = token_lengths(
        good, tokenizer, kind=kind, max_length=max_length, method=method, numbers=numbers, add_eos=add_eos
    )
    for message, where in lengths.unrenderable.items():
        problems.append(
            Problem(
                "error",
                "template renders",
                f"the chat template refuses the row ({message})",
                where[:5],
                len(where),
            )
        )
    if lengths.truncated:
        problems.append(
            Problem(
                "warning",
                "max_length",
                f"longer than max_length={max_length}: truncated",
                lengths.truncated[:5],
                len(lengths.truncated),
            )
        )
    if lengths.dropped:
        problems.append(
            Problem(
                "error",
                "max_length",
                f"training would drop these rows ({lengths.drop_reason}); raise max_length or "
                "filter them out",
                lengths.dropped[:5],
                len(lengths.dropped),
            )
        )
    samples = _samples(good, kind)
    if kind == "prompt":  # checked as the pairs of prompt and sampled reply that training will see
        samples = [
            {"id": r["id"], "prompt": r["messages"], "chosen": PROBE_REPLY, "rejected": PROBE_REPLY}
            for r in samples
        ]
    pf = preflight(
        tokenizer,
        kind="preference" if kind == "prompt" else kind,
        samples=samples,
        method=method,
        model_dir=_local_dir(model),
        add_eos=add_eos,
    )
    notes = []
    if rows and len(good) < len(rows):
        notes.append(
            f"{len(rows) - len(good)} rows with data errors were left out of the length and template checks"
        )
    return CheckReport(
        str(data), str(model), kind, method, len(rows) + len(invalid), problems, lengths, pf, notes
    )


def _local_dir(model: str):
    from pathlib import Path

    p = Path(model)
    return p if p.is_dir() else None

"""`synth repurpose`: existing text becomes the answer to instructions written for it (Qwen2's data repurposing
for literary writing: "instructions with varying levels of detail" for public-domain works).

Each input row holds a work (`text`); it is cut into passages at paragraph boundaries (sentence boundaries
inside a long paragraph) to `min_words`..`max_words` words. For each passage and each level of detail
(`rules/repurpose.yaml`), the LLM writes the instruction the passage answers; the instruction and the passage,
verbatim, make a demonstration. A judge from the verifier layer (`rules/judge_repurpose.yaml`) checks that the
passage answers the instruction; demonstrations below `--min-judge-score` go to the ledger with the judge's
reason. Each row keeps the work's id, the passage's index and character offsets, and the level.

>>> split_passages("One two three.\\n\\nFour five.\\n\\nSix seven eight nine.", min_words=3, max_words=5)
[(0, 26, 'One two three.\\n\\nFour five.'), (28, 49, 'Six seven eight nine.')]
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from curate.errors import UsageError
from rules import fill, load_rules
from synth.config import (
    BackendSettings,
    InputSettings,
    RunSettings,
    SamplingSettings,
    default,
    setting,
    settings,
)
from synth.methods.generate import sample_verdict
from synth.methods.judged import JudgeGate
from synth.prompts import derived_id
from synth.runner import Method, Skip, run_method
from synth.verifiers import Task
from synth.verifiers.judge import JudgeSettings

_PARAGRAPH = re.compile(r"\n\s*\n")
_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"'”’)\]]*\s+")


def _words(text: str) -> int:
    return len(text.split())


def _spans(text: str, pattern: re.Pattern, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Non-empty pieces of text[start:end] between matches of `pattern`, as (start, end) offsets."""
    end = len(text) if end is None else end
    out, pos = [], start
    for m in pattern.finditer(text, start, end):
        if text[pos : m.start()].strip():
            out.append((pos, m.start()))
        pos = m.end()
    if text[pos:end].strip():
        out.append((pos, end))
    return out


def split_passages(text: str, *, min_words: int, max_words: int) -> list[tuple[int, int, str]]:
    """(start, end, passage) pieces of `text` of up to `max_words` words, cut between paragraphs, or between
    sentences of a paragraph that is too long; a last piece under `min_words` joins the one before if it fits."""
    units: list[tuple[int, int]] = []
    for a, b in _spans(text, _PARAGRAPH):
        if _words(text[a:b]) <= max_words:
            units.append((a, b))
        else:
            units.extend(_spans(text, _SENTENCE_END, a, b))
    pieces: list[list[int]] = []
    for a, b in units:
        if (
            pieces
            and _words(text[pieces[-1][0] : b]) <= max_words
            and (_words(text[pieces[-1][0] : pieces[-1][1]]) < min_words or _words(text[a:b]) < min_words)
        ):
            pieces[-1][1] = b
        else:
            pieces.append([a, b])
    out = []
    for a, b in pieces:
        a += len(text[a:b]) - len(text[a:b].lstrip())
        b -= len(text[a:b]) - len(text[a:b].rstrip())
        out.append((a, b, text[a:b]))
    return out


@settings
class RepurposeConfig(JudgeSettings, SamplingSettings, BackendSettings, RunSettings, InputSettings):
    text_field: str = setting("text", "Column holding the work's text.")
    source_field: str = setting(
        "source", "Column naming the work (shown to the LLM, kept in the rows) if present."
    )
    levels: list[str] = setting(
        [], "A level of detail from the rules file (brief, detailed, specific); repeatable [default: all]."
    )
    rules: str = setting("repurpose.yaml", "Prompts and levels: the shipped rules file or your own YAML.")
    min_words: int | None = setting(None, "Shortest passage in words [default: the rules file's].", min=1)
    max_words: int | None = setting(None, "Longest passage in words [default: the rules file's].", min=1)
    judge: bool = setting(True, "Check each demonstration with the judge.", negate="--no-judge")
    min_judge_score: float = setting(7.0, "The judge score a demonstration needs (rubric scale).")
    batch_size: int = setting(8, "Works per batch.", min=1)
    input_format: str = default("record")
    judge_rubric: str = default("judge_repurpose.yaml")
    temperature: float = default(0.3)
    max_tokens: int = default(256)


@dataclass
class Passage:
    work: dict
    index: int
    start: int
    end: int
    text: str

    @property
    def work_id(self) -> str:
        return str(self.work["id"])


class Repurpose(Method):
    """Turn existing text into instruction/response demonstrations: passages answer instructions written for them.

    Each row's text (--text-field) is cut into passages at paragraph boundaries; for each passage the LLM writes
    an instruction per level of detail (rules/repurpose.yaml: brief, detailed, specific); instruction + the
    passage verbatim is a demonstration, checked by a judge (rules/judge_repurpose.yaml). OUTPUT/sft.jsonl holds
    the demonstrations with work id, passage index, offsets and level; OUTPUT/rejected.jsonl the rows without
    text, failed generations and demonstrations the judge rejected, with its reason.

    \b
    Examples:
      synth repurpose works.jsonl -o lit --backend openai --base-url http://127.0.0.1:8000/v1 \\
          --model Qwen/Qwen2.5-7B-Instruct --levels brief --levels detailed
      synth repurpose works.jsonl -o lit --model ./my-model --judge-model ./bigger-model --min-judge-score 8
    """

    name = "repurpose"
    Config = RepurposeConfig
    main_output = "sft.jsonl"
    skip_counts = ("no_text",)

    def __init__(self, cfg, ctx):
        super().__init__(cfg, ctx)
        self.rules = load_rules(cfg.rules)
        levels = self.rules.get("levels") or {}
        unknown = [lv for lv in cfg.levels if lv not in levels]
        if unknown:
            raise UsageError(
                f"--levels {unknown[0]!r} is not in {cfg.rules} (choose from {', '.join(levels)})"
            )
        self.levels = {lv: levels[lv] for lv in (cfg.levels or levels)}
        self.min_words = cfg.min_words or int(self.rules.get("min_words", 80))
        self.max_words = cfg.max_words or int(self.rules.get("max_words", 400))
        if self.min_words > self.max_words:
            raise UsageError(f"--min-words {self.min_words} is more than --max-words {self.max_words}")
        self.judge = JudgeGate(cfg, ctx)
        self.t = {"works": 0, "passages": 0, "candidates": 0, "demonstrations": 0, "rejected_candidates": 0}

    def prepare(self, row: dict) -> dict:
        text = row.get(self.cfg.text_field)
        if not isinstance(text, str) or not text.strip():
            raise Skip("no_text", f"no text in field '{self.cfg.text_field}'")
        return row

    def request(self, passage: Passage, guidance: str):
        r, src = self.rules, passage.work.get(self.cfg.source_field)
        user = fill(
            r["template"], passage=passage.text, guidance=guidance, source=f" from {src}" if src else ""
        )
        return self.cfg.request(
            [{"role": "system", "content": r["system"].strip()}, {"role": "user", "content": user}], n=1
        )

    def run_batch(self, works: list[dict]):
        out = self.outputs()
        todo = []
        for work in works:
            self.t["works"] += 1
            pieces = split_passages(
                work[self.cfg.text_field], min_words=self.min_words, max_words=self.max_words
            )
            self.t["passages"] += len(pieces)
            todo.extend(
                (Passage(work, i, a, b, text), level)
                for i, (a, b, text) in enumerate(pieces)
                for level in self.levels
            )
        self.t["candidates"] += len(todo)
        answers = self.llm.complete_each([self.request(p, self.levels[level]) for p, level in todo])
        made = []
        for (p, level), (samples, error) in zip(todo, answers, strict=True):
            comp = samples[0]
            instruction = clean_instruction(comp.text) if comp is not None else ""
            row = {
                "id": derived_id(p.work_id, passage=p.index, level=level),
                "parent_id": p.work_id,
                "messages": [
                    {"role": "user", "content": instruction},
                    {"role": "assistant", "content": p.text},
                ],
                **({"source": p.work[self.cfg.source_field]} if p.work.get(self.cfg.source_field) else {}),
                "passage_index": p.index,
                "passage_chars": [p.start, p.end],
                "level": level,
                "model": self.cfg.model,
            }
            if comp is None:
                out.reject(row, "generation_failed", error or "no completion")
            elif (unusable := sample_verdict(comp, self.cfg)) is not None:
                out.reject(row, *unusable)
            elif not instruction:
                out.reject(row, "empty_instruction", "the model wrote no instruction")
            else:
                made.append(row)
        self.judge.sort(out, made, [Task(r, r["messages"][:1], [r["messages"][1]["content"]]) for r in made])
        self.t["demonstrations"] += len(out.kept)
        self.t["rejected_candidates"] += len(out.rejected)
        return out

    def counts(self) -> dict:
        return dict(self.t)

    def balanced(self, c: dict) -> bool:
        return c["candidates"] == c["demonstrations"] + c["rejected_candidates"]

    def sections(self) -> dict:
        return {
            "levels": self.levels,
            "passage_words": [self.min_words, self.max_words],
            **self.judge.info(),
        }

    def close(self) -> None:
        self.judge.close()

    @classmethod
    def summary(cls, m: dict) -> list[str]:
        c = m["counts"]
        return [
            f"rows {c['input']} = works {c['works']} + no text {c['no_text']} + invalid {c['invalid']}",
            f"{c['passages']} passages x {len(m['levels'])} levels = {c['candidates']} candidates: "
            f"{c['demonstrations']} demonstrations + {c['rejected_candidates']} rejected",
        ]


def clean_instruction(text: str) -> str:
    """The instruction without a preamble ("Instruction:"), quotes or code fences around it."""
    t = text.strip().strip("`").strip()
    t = re.sub(r"^(?:here is the instruction|the instruction is|instruction)\s*[:\-]\s*", "", t, flags=re.I)
    if len(t) >= 2 and t[0] == t[-1] and t[0] in "\"'“”":
        t = t[1:-1].strip()
    return t.strip("“”").strip()


def run_repurpose(cfg: RepurposeConfig, backend=None) -> dict:
    return run_method(Repurpose, cfg, backend=backend)

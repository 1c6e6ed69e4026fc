"""`run_evolve`: instruction evolution (Evol-Instruct in depth and in breadth, Tree-Instruct), the library
behind `synth evolve`.

Each round rewrites every surviving prompt (`n_per_prompt` times) with an operation drawn from
`rules/evolve.yaml`, by weight and deterministically (a hash of the seed, the parent id and the sample
index, so batching and resuming never change the draw). An evolved instruction survives only if it passes
every elimination rule; each failure goes to `rejected.jsonl` with its own reason:

- instruction: `empty`, `too_long` (over `max_chars`, or cut off at `max_tokens`), `unchanged`,
  `copies_template` (it contains template words such as "#Rewritten Prompt#");
- judge (unless `judge=False`): `no_information_gain` (the LLM judge says it equals its parent),
  `judge_unclear` (neither "equal" nor "not equal");
- answer (with `answer=True`): `answer_truncated`, `refusal_answer` ("sorry" in under 80 words),
  `stopword_answer` (only punctuation and stop words);
- `evolution_failed`, `judge_failed`, `answer_failed` when a request fails, `not_a_prompt` for input rows
  with no user turn to evolve.

Survivors of every round go to `evolved.jsonl`, with `parent_id`, `root_id` and `evolution: {operation,
round}`; round r+1 evolves round r's survivors. With `answer=True` each evolved row ends in an assistant
answer (same backend, or `answer_model`), so the output is SFT-ready.

>>> from curate.io import read_jsonl, write_jsonl
>>> from synth.backends.scripted import ScriptedBackend
>>> def respond(req, i):  # a judge that always sees a gain; a rewriter that adds a constraint
...     text = req.messages[-1]["content"]
...     if "Your Judgement" in text:
...         return "Not Equal"
...     return "Step 1: ...\\nNew instruction: " + text.split("Instruction:")[-1].strip() + " Use one sentence."
>>> _ = write_jsonl("/tmp/evolve-in.jsonl", [{"id": "p1", "prompt": "Name a colour."}])
>>> m = run_evolve(EvolveConfig(inputs=["/tmp/evolve-in.jsonl"], output="/tmp/evolve-run", model="scripted",
...                             rounds=2, operations=["add_nodes"], use_cache=False, overwrite=True),
...                backend=ScriptedBackend(respond))
>>> [(r["round"], r["candidates"], r["survivors"]) for r in m["rounds"]]
[(1, 1, 1), (2, 1, 1)]
>>> last = read_jsonl("/tmp/evolve-run/evolved.jsonl")[-1]
>>> last["messages"][-1]["content"], last["root_id"], last["evolution"]
('Name a colour. Use one sentence. Use one sentence.', 'p1', {'operation': 'add_nodes', 'round': 2})
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import xxhash
import yaml

from curate.io import InputError, JsonlWriter, RunDir, iter_lines
from curate.ledger import RunLedger
from curate.schema import DEFAULT_MAX_ROW_BYTES, Reader, public, rejected_row
from rules import load_rules
from synth.backends import Backend, ChatRequest, Completion, get_backend
from synth.cache import default_cache_path
from synth.generate import NotAPrompt, batched, model_identity, progress_bar, prompt_of
from synth.llm import CachedLLM

STEP = "evolve"
OUTPUT = "evolved.jsonl"
BACKENDS = ("hf", "openai", "vllm")
# Columns evolve writes itself; a parent's values for them are replaced, never passed through.
OWN_COLUMNS = ("id", "messages", "parent_id", "root_id", "evolution", "model", "backend", "answer_model")


@dataclass
class EvolveConfig:
    inputs: list
    output: str
    model: str
    backend: str = "hf"
    rounds: int = 1
    n_per_prompt: int = 1  # evolutions of each surviving prompt per round
    operations: list[str] = field(default_factory=list)  # names from the rules; empty = all of them
    rules: str = "evolve.yaml"  # a shipped rules file or a path to one's own
    tree_nodes: int | None = None  # Tree-Instruct's N; None = the rules' tree_nodes
    max_chars: int | None = None  # longest evolved instruction; None = the rules' max_chars
    judge: bool = True  # ask the LLM whether an evolution adds information (no_information_gain)
    answer: bool = False  # answer every evolved instruction, eliminate refusals, write SFT rows
    answer_backend: str | None = None  # None = `backend`
    answer_model: str | None = None  # None = answers come from `model` itself
    temperature: float = 0.7
    top_p: float = 0.95
    max_tokens: int = 1024
    seed: int | None = None  # sampling seed, and the seed of the operation draw (0 when None)
    stop: list[str] = field(default_factory=list)
    batch_size: int = 64  # prompts whose evolutions are requested at once
    cache: str | None = None  # cache file; None = default_cache_path()
    use_cache: bool = True
    engine: str = "local"  # local | ray: the backend on Ray actors (synth.ray_llm.RayBackend)
    ray_address: str | None = None
    ray_actors: int | None = None
    input_format: str = "auto"
    on_error: str = "fail"
    max_row_bytes: int = DEFAULT_MAX_ROW_BYTES
    overwrite: bool = False
    progress: bool | None = None  # None: a progress bar when stderr is a terminal
    backend_options: dict = field(default_factory=dict)
    answer_backend_options: dict = field(default_factory=dict)

    def validate(self) -> None:
        if self.backend not in BACKENDS:
            raise InputError(f"unknown backend {self.backend!r} (choose from {', '.join(BACKENDS)})")
        if not self.model:
            raise InputError("--model is required")
        if self.answer_backend is not None and self.answer_backend not in BACKENDS:
            raise InputError(
                f"unknown --answer-backend {self.answer_backend!r} (choose from {', '.join(BACKENDS)})"
            )
        if self.answer_backend is not None and not self.answer_model:
            raise InputError("--answer-backend needs --answer-model")
        if self.answer_model and not self.answer:
            raise InputError("--answer-model needs --answer")
        for name, value in (
            ("--rounds", self.rounds),
            ("--n-per-prompt", self.n_per_prompt),
            ("--batch-size", self.batch_size),
            ("--tree-nodes", self.tree_nodes),
            ("--max-chars", self.max_chars),
        ):
            if value is not None and value < 1:
                raise InputError(f"{name} must be at least 1, got {value}")
        if self.on_error not in ("fail", "skip"):
            raise InputError(f"--on-error must be fail or skip, not {self.on_error!r}")
        try:
            self.request([{"role": "user", "content": "x"}])
        except ValueError as e:
            raise InputError(
                str(e).replace("max_tokens", "--max-tokens").replace("top_p", "--top-p")
            ) from None

    def request(self, messages, n: int = 1) -> ChatRequest:
        return ChatRequest(
            messages=messages,
            n=n,
            temperature=self.temperature,
            top_p=self.top_p,
            max_tokens=self.max_tokens,
            seed=self.seed,
            stop=tuple(self.stop),
        )

    def cache_path(self) -> Path | None:
        if not self.use_cache:
            return None
        return Path(self.cache).expanduser() if self.cache else default_cache_path()


# --- operations and rules -------------------------------------------------------------------------------

_PLACEHOLDER = re.compile(r"\{(instruction|method|n|first|second)\}")


def fill(template: str, **values: str) -> str:
    """Substitute {name} placeholders in one pass, so braces inside the values are never read as
    placeholders; unknown braces (JSON in a template) stay as they are."""
    return _PLACEHOLDER.sub(
        lambda m: str(values[m.group(1)]) if m.group(1) in values else m.group(0), template
    )


@dataclass(frozen=True)
class Operation:
    name: str
    template: str
    weight: float
    method: str = ""
    output_marker: str | None = None

    def prompt(self, instruction: str, *, tree_nodes: int) -> str:
        return fill(self.template, instruction=instruction, method=self.method, n=str(tree_nodes))

    def extract(self, text: str) -> str:
        """The new instruction in the model's answer: after the last output marker, when there is one."""
        if self.output_marker:
            at = text.lower().rfind(self.output_marker.lower())
            if at >= 0:
                text = text[at + len(self.output_marker) :]
        return text.strip()


@dataclass(frozen=True)
class EvolveRules:
    """`rules/evolve.yaml`, validated: a broken rules file is a user error naming the file and the key."""

    operations: tuple[Operation, ...]
    tree_nodes: int
    judge_template: str
    judge_max_tokens: int
    template_words: tuple[str, ...]
    max_chars: int
    refusal_markers: tuple[str, ...]
    refusal_max_words: int
    stop_words: frozenset[str]
    answer_columns: frozenset[str]
    path: str

    @classmethod
    def load(cls, name: str = "evolve.yaml", *, only: Iterable[str] = ()) -> EvolveRules:
        try:
            data = load_rules(name)
        except yaml.YAMLError as e:
            raise InputError(f"{name}: not valid YAML ({e})") from None
        except ValueError as e:
            raise InputError(str(e)) from None
        from rules import rules_path

        path = str(rules_path(name))

        def need(key, kind, where=data, label=None):
            value = where.get(key) if isinstance(where, dict) else None
            if not isinstance(value, kind):
                raise InputError(
                    f"{path}: '{label or key}' must be a {kind.__name__ if isinstance(kind, type) else 'number'}"
                )
            return value

        templates = need("templates", dict)
        ops = []
        for op_name, spec in need("operations", dict).items():
            where = f"operations.{op_name}"
            tname = need("template", str, spec, f"{where}.template")
            template = templates.get(tname)
            if not isinstance(template, str) or "{instruction}" not in template:
                raise InputError(
                    f"{path}: {where}.template {tname!r} must name a template with {{instruction}}"
                )
            weight = need("weight", (int, float), spec, f"{where}.weight")
            if weight < 0:
                raise InputError(f"{path}: {where}.weight must not be negative, got {weight}")
            if "{method}" in template and not spec.get("method"):
                raise InputError(f"{path}: {where} needs a method for template {tname!r}")
            ops.append(
                Operation(
                    op_name,
                    template,
                    float(weight),
                    str(spec.get("method") or ""),
                    spec.get("output_marker") or None,
                )
            )
        only = list(only)
        unknown = [o for o in only if o not in {op.name for op in ops}]
        if unknown:
            raise InputError(
                f"unknown operation {unknown[0]!r} (choose from {', '.join(op.name for op in ops)})"
            )
        if only:
            ops = [op for op in ops if op.name in only]
        if not any(op.weight > 0 for op in ops):
            raise InputError(f"{path}: no operation with a weight above 0 to draw from")
        judge = need("judge", dict)
        judge_template = need("template", str, judge, "judge.template")
        if "{first}" not in judge_template or "{second}" not in judge_template:
            raise InputError(f"{path}: judge.template needs {{first}} and {{second}}")
        refusal = need("refusal", dict)
        return cls(
            operations=tuple(ops),
            tree_nodes=need("tree_nodes", int),
            judge_template=judge_template,
            judge_max_tokens=need("max_tokens", int, judge, "judge.max_tokens"),
            template_words=tuple(need("template_words", list)),
            max_chars=need("max_chars", int),
            refusal_markers=tuple(m.lower() for m in need("markers", list, refusal, "refusal.markers")),
            refusal_max_words=need("max_words", int, refusal, "refusal.max_words"),
            stop_words=frozenset(str(w).lower() for w in need("stop_words", list)),
            answer_columns=frozenset(data.get("answer_columns") or ()),
            path=path,
        )


def pick_operation(operations: tuple[Operation, ...], *, seed: int, parent_id: str, index: int) -> Operation:
    """The operation for the `index`-th evolution of `parent_id`: drawn by weight from a hash, so the same
    seed gives the same draw whatever the batch size, the order of rows or a resumed run."""
    total = sum(op.weight for op in operations)
    u = xxhash.xxh3_64_intdigest(orjson.dumps([seed, parent_id, index])) / 2**64 * total
    for op in operations:
        if op.weight > 0 and u < op.weight:
            return op
        u -= op.weight
    return [op for op in operations if op.weight > 0][-1]  # float rounding at the very top


def evolved_id(parent_id: str, index: int) -> str:
    """Stable id of the `index`-th evolution of a row: the same in every run."""
    return xxhash.xxh3_128_hexdigest(orjson.dumps({"evolve": index, "parent_id": parent_id}))


_NOT_EQUAL = re.compile(r"\bnot\W+equal\b|\bunequal\b", re.I)
_EQUAL = re.compile(r"\bequal\b", re.I)


def parse_judgement(text: str) -> bool | None:
    """True when the judge says the two instructions are equal, False when not, None when it says neither.
    "Not equal" is looked for first: it contains "equal"."""
    if _NOT_EQUAL.search(text):
        return False
    if _EQUAL.search(text):
        return True
    return None


# --- candidates and elimination rules ---------------------------------------------------------------------


@dataclass
class Candidate:
    """One evolution of one parent row, filled in stage by stage."""

    parent: dict
    context: list[dict]  # the parent's messages before the instruction (system prompt, earlier turns)
    parent_text: str
    operation: Operation
    round: int
    index: int
    text: str | None = None  # the evolved instruction
    finish_reason: str | None = None
    judgement: str | None = None
    answer: Completion | None = None

    @property
    def id(self) -> str:
        return evolved_id(self.parent["id"], self.index)

    def messages(self) -> list[dict]:
        msgs = [
            *self.context,
            {"role": "user", "content": self.parent_text if self.text is None else self.text},
        ]
        if self.answer is not None:
            msgs.append({"role": "assistant", "content": self.answer.text})
        return msgs

    def row(self, passthrough: dict, **extra) -> dict:
        parent_id = self.parent["id"]
        return {
            "id": self.id,
            "messages": self.messages(),
            **passthrough,
            "parent_id": parent_id,
            "root_id": self.parent.get("root_id") or parent_id,
            "evolution": {"operation": self.operation.name, "round": self.round},
            **extra,
        }


class EliminationRule:
    """One reason to eliminate an evolution: `name` is its `reject_reason`, `stage` says which part of the
    candidate it reads, `check` returns the detail for the ledger, or None to keep the candidate."""

    name: str
    stage: str  # "instruction" | "judge" | "answer"

    def check(self, c: Candidate) -> str | None:
        raise NotImplementedError

    def settings(self) -> dict:
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}


class EmptyInstruction(EliminationRule):
    name, stage = "empty", "instruction"

    def check(self, c):
        return None if c.text.strip() else "the model returned no instruction"


class TooLongInstruction(EliminationRule):
    name, stage = "too_long", "instruction"

    def __init__(self, *, max_chars: int, max_tokens: int):
        self.max_chars = max_chars
        self.max_tokens = max_tokens

    def check(self, c):
        if c.finish_reason == "length":
            return f"cut off at --max-tokens {self.max_tokens}"
        if len(c.text) > self.max_chars:
            return f"{len(c.text)} characters, over --max-chars {self.max_chars}"
        return None


def _normal(text: str) -> str:
    return " ".join(text.split()).casefold()


class UnchangedInstruction(EliminationRule):
    name, stage = "unchanged", "instruction"

    def check(self, c):
        return "the same text as its parent" if _normal(c.text) == _normal(c.parent_text) else None


class CopiesTemplateWords(EliminationRule):
    name, stage = "copies_template", "instruction"

    def __init__(self, *, words: tuple[str, ...]):
        self.words = words

    def check(self, c):
        low = c.text.lower()
        hit = next((w for w in self.words if w.lower() in low), None)
        return None if hit is None else f"contains {hit!r}"


class NoInformationGain(EliminationRule):
    name, stage = "no_information_gain", "judge"

    def check(self, c):
        return (
            f"the judge found it equal to its parent: {_snippet(c.judgement)!r}"
            if parse_judgement(c.judgement)
            else None
        )


class JudgeUnclear(EliminationRule):
    name, stage = "judge_unclear", "judge"

    def check(self, c):
        if parse_judgement(c.judgement) is None:
            return f"the judge said neither equal nor not equal: {_snippet(c.judgement)!r}"
        return None


class TruncatedAnswer(EliminationRule):
    name, stage = "answer_truncated", "answer"

    def __init__(self, *, max_tokens: int):
        self.max_tokens = max_tokens

    def check(self, c):
        return (
            f"the answer hit --max-tokens {self.max_tokens}" if c.answer.finish_reason == "length" else None
        )


class RefusalAnswer(EliminationRule):
    name, stage = "refusal_answer", "answer"

    def __init__(self, *, markers: tuple[str, ...], max_words: int):
        self.markers = markers
        self.max_words = max_words

    def check(self, c):
        low = c.answer.text.lower()
        words = len(c.answer.text.split())
        hit = next((m for m in self.markers if m in low), None)
        if hit is not None and words < self.max_words:
            return f"a refusal: {hit!r} in a {words}-word answer (under {self.max_words})"
        return None


_WORDS = re.compile(r"[^\W_]+")


class StopWordAnswer(EliminationRule):
    name, stage = "stopword_answer", "answer"

    def __init__(self, *, stop_words: frozenset[str]):
        self._stop_words = stop_words

    def settings(self):
        return {"stop_words": len(self._stop_words)}

    def check(self, c):
        words = _WORDS.findall(c.answer.text.lower())
        if all(w in self._stop_words for w in words):
            return f"only punctuation and stop words: {_snippet(c.answer.text)!r}"
        return None


def build_eliminations(cfg: EvolveConfig, rules: EvolveRules) -> list[EliminationRule]:
    """The elimination rules of a run, in the order they are applied within each stage."""
    out: list[EliminationRule] = [
        EmptyInstruction(),
        TooLongInstruction(max_chars=cfg.max_chars or rules.max_chars, max_tokens=cfg.max_tokens),
        UnchangedInstruction(),
        CopiesTemplateWords(words=rules.template_words),
    ]
    if cfg.judge:
        out += [NoInformationGain(), JudgeUnclear()]
    if cfg.answer:
        out += [
            TruncatedAnswer(max_tokens=cfg.max_tokens),
            RefusalAnswer(markers=rules.refusal_markers, max_words=rules.refusal_max_words),
            StopWordAnswer(stop_words=rules.stop_words),
        ]
    return out


def _snippet(text: str | None, limit: int = 120) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[:limit] + "…"


# --- the run ------------------------------------------------------------------------------------------------


@dataclass
class RoundStats:
    round: int
    parents: int = 0
    candidates: int = 0
    survivors: int = 0
    rejected: Counter = field(default_factory=Counter)
    candidates_by_operation: Counter = field(default_factory=Counter)
    survivors_by_operation: Counter = field(default_factory=Counter)
    parent_words: int = 0  # of the survivors' parents
    words: int = 0  # of the survivors
    parent_chars: int = 0
    chars: int = 0

    def as_dict(self) -> dict:
        def mean(total):
            return round(total / self.survivors, 1) if self.survivors else None

        return {
            "round": self.round,
            "parents": self.parents,
            "candidates": self.candidates,
            "survivors": self.survivors,
            "rejected": dict(self.rejected.most_common()),
            "candidates_by_operation": dict(sorted(self.candidates_by_operation.items())),
            "survivors_by_operation": dict(sorted(self.survivors_by_operation.items())),
            "length": {
                "parent_words": mean(self.parent_words),
                "words": mean(self.words),
                "parent_chars": mean(self.parent_chars),
                "chars": mean(self.chars),
                # mean length of the survivors over the mean length of their parents
                "growth": round(self.words / self.parent_words, 3) if self.parent_words else None,
            },
        }


def _words(text: str) -> int:
    return len(text.split())


class Evolver:
    """One run: draws operations, asks the LLMs, applies the elimination rules, writes the rows."""

    def __init__(
        self, cfg: EvolveConfig, rules: EvolveRules, llm: CachedLLM, answer_llm: CachedLLM, ledger: RunLedger
    ):
        self.cfg = cfg
        self.rules = rules
        self.llm = llm
        self.answer_llm = answer_llm
        self.ledger = ledger
        self.eliminations = build_eliminations(cfg, rules)
        self.rounds: dict[int, RoundStats] = {}
        self.not_a_prompt = 0
        self.parents = 0  # rows evolved so far, in every round
        self.prompts = 0  # rows evolved in the first round: the input rows that are prompts
        self.tree_nodes = cfg.tree_nodes or rules.tree_nodes
        self.seed = cfg.seed or 0
        self.extra = {
            "model": cfg.model,
            **({"answer_model": cfg.answer_model or cfg.model} if cfg.answer else {}),
        }

    def stats(self, depth: int) -> RoundStats:
        if depth not in self.rounds:
            self.rounds[depth] = RoundStats(depth)
        return self.rounds[depth]

    def passthrough(self, parent: dict) -> dict:
        drop = self.rules.answer_columns
        return {k: v for k, v in public(parent).items() if k not in OWN_COLUMNS and k not in drop}

    def candidates(self, parents: list[dict]) -> list[Candidate]:
        out = []
        for parent in parents:
            try:
                messages, _old_answer = prompt_of(parent)
            except NotAPrompt as e:
                self.not_a_prompt += 1
                self.ledger.rejected([_reject(public(parent), "not_a_prompt", str(e))])
                continue
            evo = parent.get("evolution")
            depth = evo["round"] + 1 if isinstance(evo, dict) and isinstance(evo.get("round"), int) else 1
            st = self.stats(depth)
            st.parents += 1
            self.parents += 1
            for k in range(self.cfg.n_per_prompt):
                op = pick_operation(self.rules.operations, seed=self.seed, parent_id=parent["id"], index=k)
                out.append(Candidate(parent, messages[:-1], messages[-1]["content"], op, depth, k))
                st.candidates += 1
                st.candidates_by_operation[op.name] += 1
        return out

    def run_batch(self, parents: list[dict]) -> list[dict]:
        """Evolve a batch of parent rows; returns the survivors' rows (already written to the output)."""
        live = self.evolve(self.candidates(parents))
        live = self.apply("instruction", live)
        if self.cfg.judge:
            live = self.apply("judge", self.ask_judge(live))
        if self.cfg.answer:
            live = self.apply("answer", self.ask_answers(live))
        kept = []
        for c in live:
            st = self.stats(c.round)
            st.survivors += 1
            st.survivors_by_operation[c.operation.name] += 1
            st.parent_words += _words(c.parent_text)
            st.words += _words(c.text)
            st.parent_chars += len(c.parent_text)
            st.chars += len(c.text)
            kept.append(c.row(self.passthrough(c.parent), **self.extra))
        self.ledger.kept(kept)
        return kept

    def evolve(self, cands: list[Candidate]) -> list[Candidate]:
        # Evolutions of one parent by the same operation share a request with n samples: asking twice for
        # the same messages would return the same cached sample twice.
        groups: dict[tuple[int, str], list[Candidate]] = {}
        for c in cands:
            groups.setdefault((id(c.parent), c.operation.name), []).append(c)
        requests = []
        for group in groups.values():
            c = group[0]
            prompt = c.operation.prompt(c.parent_text, tree_nodes=self.tree_nodes)
            requests.append(self.cfg.request([{"role": "user", "content": prompt}], n=len(group)))
        live = []
        for group, (samples, error) in zip(groups.values(), self.llm.complete_each(requests), strict=True):
            for c, comp in zip(group, samples, strict=True):
                if comp is None:
                    self.reject(c, "evolution_failed", error or "no completion")
                    continue
                c.text = c.operation.extract(comp.text)
                c.finish_reason = comp.finish_reason
                live.append(c)
        return live

    def ask_judge(self, cands: list[Candidate]) -> list[Candidate]:
        requests = [
            ChatRequest(
                [
                    {
                        "role": "user",
                        "content": fill(self.rules.judge_template, first=c.parent_text, second=c.text),
                    }
                ],
                temperature=0.0,
                max_tokens=self.rules.judge_max_tokens,
                seed=self.cfg.seed,
            )
            for c in cands
        ]
        live = []
        for c, (samples, error) in zip(cands, self.llm.complete_each(requests), strict=True):
            if samples[0] is None:
                self.reject(c, "judge_failed", error or "no completion")
                continue
            c.judgement = samples[0].text
            live.append(c)
        return live

    def ask_answers(self, cands: list[Candidate]) -> list[Candidate]:
        requests = [self.cfg.request(c.messages()) for c in cands]
        live = []
        for c, (samples, error) in zip(cands, self.answer_llm.complete_each(requests), strict=True):
            if samples[0] is None:
                self.reject(c, "answer_failed", error or "no completion")
                continue
            c.answer = samples[0]
            live.append(c)
        return live

    def apply(self, stage: str, cands: list[Candidate]) -> list[Candidate]:
        rules = [r for r in self.eliminations if r.stage == stage]
        live = []
        for c in cands:
            for rule in rules:
                detail = rule.check(c)
                if detail is not None:
                    self.reject(c, rule.name, detail)
                    break
            else:
                live.append(c)
        return live

    def reject(self, c: Candidate, reason: str, detail: str) -> None:
        self.stats(c.round).rejected[reason] += 1
        extra = {**self.extra, **({"judgement": c.judgement} if c.judgement is not None else {})}
        self.ledger.rejected([_reject(c.row(self.passthrough(c.parent), **extra), reason, detail)])


_reject = functools.partial(rejected_row, step=STEP)


def _spooled(path: Path) -> Iterator[dict]:
    for rec in iter_lines([path]):
        yield orjson.loads(rec.data)


def run_evolve(
    cfg: EvolveConfig, backend: Backend | None = None, answer_backend: Backend | None = None
) -> dict:
    """Evolve the prompts in `cfg.inputs` for `cfg.rounds` rounds into the run directory `cfg.output`; return
    the manifest. Backends may be given ready-made; otherwise they are built from the config."""
    from synth.run import SynthRun

    cfg.validate()
    rules = EvolveRules.load(cfg.rules, only=cfg.operations)
    with SynthRun(cfg, "synth evolve", main=OUTPUT, backend=backend) as run:
        llm = answer_llm = run.llm
        if cfg.answer and cfg.answer_model:
            answer_kind = cfg.answer_backend or cfg.backend
            if answer_backend is None:
                answer_backend = get_backend(
                    answer_kind, model=cfg.answer_model, **cfg.answer_backend_options
                )
                run.on_close(answer_backend)
            answer_llm = CachedLLM(answer_backend, run.cache, model_identity(answer_kind, cfg.answer_model))
        evolver = Evolver(cfg, rules, llm, answer_llm, run.ledger)
        _run_rounds(cfg, evolver, run.reader, run.run)
        rounds = [evolver.rounds[d].as_dict() for d in sorted(evolver.rounds)]
        candidates = sum(r["candidates"] for r in rounds)
        evolved = sum(r["survivors"] for r in rounds)
        rejected = sum(sum(r["rejected"].values()) for r in rounds)
        ledger = run.ledger
        counts = {
            "input": run.reader.count,
            "invalid": len(run.reader.invalid),
            "not_a_prompt": evolver.not_a_prompt,
            "prompts": evolver.prompts,
            "candidates": candidates,
            "evolved": evolved,
            "rejected_candidates": rejected,
            "failed_requests": llm.stats.failed_requests
            + (answer_llm.stats.failed_requests if answer_llm is not llm else 0),
        }
        counts["balanced"] = (
            counts["input"] == counts["invalid"] + counts["not_a_prompt"] + counts["prompts"]
            and candidates == evolved + rejected
            and ledger.counts["kept"] == evolved
            and ledger.counts["rejected"] == rejected + counts["not_a_prompt"]
        )
        by_op: dict[str, dict] = {}
        for op in rules.operations:
            tried = sum(r["candidates_by_operation"].get(op.name, 0) for r in rounds)
            kept = sum(r["survivors_by_operation"].get(op.name, 0) for r in rounds)
            by_op[op.name] = {
                "weight": op.weight,
                "candidates": tried,
                "survivors": kept,
                "survival_rate": round(kept / tried, 3) if tried else None,
            }
        answer_sections = (
            {
                "answer_backend": {
                    "name": answer_llm.backend.name,
                    "model": cfg.answer_model,
                    "model_identity": answer_llm.model_id,
                    **answer_llm.backend.info(),
                },
                "answer_llm": answer_llm.stats.as_dict(),
            }
            if answer_llm is not llm
            else {}
        )
        return run.finish(
            counts=counts,
            reasons=dict(sum((Counter(r["rejected"]) for r in rounds), Counter()).most_common()),
            rounds=rounds,
            operations=by_op,
            rules={
                "path": rules.path,
                "tree_nodes": evolver.tree_nodes,
                "eliminations": [
                    {"name": e.name, "stage": e.stage, **e.settings()} for e in evolver.eliminations
                ],
            },
            **answer_sections,
            seconds=round(run.seconds, 3),
            outputs={"evolved": OUTPUT, "rejected": "rejected.jsonl", "invalid": "invalid.jsonl"},
        )


def _run_rounds(cfg: EvolveConfig, evolver: Evolver, reader: Reader, run: RunDir) -> None:
    """Round 1 streams the input; each later round streams the survivors of the one before, spooled to a
    hidden file in the run directory (removed before the run is committed)."""
    with progress_bar(cfg, desc="evolve round 1") as bar:
        parents: Iterable[dict] = reader
        previous: Path | None = None
        survivors = 0
        for r in range(1, cfg.rounds + 1):
            if r > 1:
                bar.reset(total=survivors)
                bar.set_description(f"evolve round {r}", refresh=False)
            spool = JsonlWriter(run / f".round-{r}.jsonl") if r < cfg.rounds else None
            survivors = 0
            try:
                for batch in batched(parents, cfg.batch_size):
                    kept = evolver.run_batch(batch)
                    survivors += len(kept)
                    if spool is not None:
                        spool.write_many(kept)
                    bar.update((reader.count - bar.n) if r == 1 else len(batch))
                    bar.set_postfix_str(f"{survivors} survived", refresh=False)
            except BaseException:
                if spool is not None:
                    spool.abort()
                raise
            if r == 1:
                evolver.prompts = evolver.parents
            if previous is not None:
                previous.unlink()
            if spool is None:
                break
            spool.close()
            previous = Path(spool.target)
            if survivors == 0:
                previous.unlink()
                break
            parents = _spooled(previous)

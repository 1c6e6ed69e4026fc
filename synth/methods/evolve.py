"""`synth evolve`: instruction evolution (Evol-Instruct in depth and in breadth, Tree-Instruct).

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

import re
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import yaml

from curate.io import InputError, JsonlWriter, iter_lines
from curate.schema import public
from rules import fill, load_rules
from synth.backends import ChatRequest, Completion
from synth.config import (
    BACKEND_CHOICES,
    BackendSettings,
    InputSettings,
    RunSettings,
    SamplingSettings,
    setting,
    settings,
)
from synth.methods.generate import Prompt, as_prompt
from synth.prompts import derived_id, stable_fraction
from synth.runner import Method, run_method

# Columns evolve writes itself; a parent's values for them are replaced, never passed through.
OWN_COLUMNS = ("id", "messages", "parent_id", "root_id", "evolution", "model", "backend", "answer_model")


@settings
class EvolveConfig(SamplingSettings, BackendSettings, RunSettings, InputSettings):
    rounds: int = setting(
        1, "Rounds of evolution; each round evolves the survivors of the one before.", min=1
    )
    n_per_prompt: int = setting(
        1, "Evolutions of each surviving prompt per round, each with its own drawn operation.", min=1
    )
    operations: list[str] = setting(
        [],
        "Draw only from this operation (repeatable) [default: every operation in the rules, by weight]: "
        "add_constraints, deepen, concretize, increase_reasoning, complicate_input, in_breadth, add_nodes.",
        flag="--operation",
    )
    tree_nodes: int | None = setting(
        None,
        "Tree-Instruct (add_nodes): nodes added to the instruction's tree [default: the rules' tree_nodes, 3].",
        min=1,
    )
    max_chars: int | None = setting(
        None,
        "Longest evolved instruction; longer ones are rejected as too_long [default: the rules' max_chars].",
        min=1,
    )
    rules: str = setting(
        "evolve.yaml",
        "Operations, templates and elimination settings: a shipped rules file or your own YAML.",
    )
    judge: bool = setting(
        True,
        "Do not ask the LLM whether each evolution adds information (no no_information_gain check).",
        negate="--no-judge",
    )
    answer: bool = setting(
        False,
        "Answer every evolved instruction (SFT-ready rows); short 'sorry' refusals and empty answers are "
        "rejected.",
    )
    answer_backend: str | None = setting(
        None, "Backend for the answers [default: --backend]; needs --answer-model.", choices=BACKEND_CHOICES
    )
    answer_model: str | None = setting(None, "Model for the answers [default: --model]; needs --answer.")
    batch_size: int = setting(
        64, "Prompts per backend call; each finished batch is committed to the cache.", min=1
    )
    seed: int | None = setting(
        None,
        "Sampling seed (hf, vllm, and servers that honour it), and the seed of the operation draw [default: 0 "
        "for the draw].",
    )

    def validate(self) -> None:
        if self.answer_backend is not None and not self.answer_model:
            raise InputError("--answer-backend needs --answer-model")
        if self.answer_model and not self.answer:
            raise InputError("--answer-model needs --answer")
        EvolveRules.load(self.rules, only=self.operations)  # a broken rules file fails before a model loads


# --- operations and rules -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Operation:
    name: str
    template: str
    weight: float
    method: str = ""
    output_marker: str | None = None

    def prompt(self, instruction: str, *, tree_nodes: int) -> str:
        return fill(self.template, instruction=instruction, method=self.method, n=tree_nodes)

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
    u = stable_fraction(seed, parent_id, index) * total
    for op in operations:
        if op.weight > 0 and u < op.weight:
            return op
        u -= op.weight
    return [op for op in operations if op.weight > 0][-1]  # float rounding at the very top


def evolved_id(parent_id: str, index: int) -> str:
    """Stable id of the `index`-th evolution of a row: the same in every run."""
    return derived_id(parent_id, evolve=index)


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

    def tried(self, cands: list[Candidate]) -> None:
        """One parent's evolutions this round."""
        self.parents += 1
        self.candidates += len(cands)
        self.candidates_by_operation.update(c.operation.name for c in cands)

    def survived(self, c: Candidate) -> None:
        self.survivors += 1
        self.survivors_by_operation[c.operation.name] += 1
        self.parent_words += _words(c.parent_text)
        self.words += _words(c.text)
        self.parent_chars += len(c.parent_text)
        self.chars += len(c.text)

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


class Evolve(Method):
    """Evolve instructions into harder and rarer ones (Evol-Instruct in depth and breadth, Tree-Instruct).

    Each round rewrites every surviving prompt with an operation drawn by weight from the rules (seeded by
    --seed: the same seed draws the same operations). An evolution is eliminated, with its reason in
    OUTPUT/rejected.jsonl, when it is empty, too long, unchanged, copies template words ("#Rewritten
    Prompt#"), is judged equal to its parent (no information gain) or, with --answer, gets a short "sorry"
    refusal or an answer of only stop words. OUTPUT/evolved.jsonl holds the survivors of every round with
    parent_id, root_id and evolution {operation, round} (`curate why ID OUTPUT` follows the chain);
    OUTPUT/manifest.json counts survivors per operation and round and the length growth per round.

    \b
    Examples:
      synth evolve sample_data/prompts.jsonl -o evolved --rounds 2 --backend openai \\
          --base-url http://127.0.0.1:8000/v1 --model Qwen/Qwen2.5-7B-Instruct --answer
      synth evolve prompts.jsonl -o evolved --model ./SmolLM2-135M-Instruct.Q4_1.gguf \\
          --operation add_nodes --tree-nodes 5 --seed 1
    """

    name = "evolve"
    Config = EvolveConfig
    main_output = "evolved.jsonl"
    skip_counts = ("not_a_prompt",)

    def __init__(self, cfg: EvolveConfig, ctx, *, answer_backend=None):
        super().__init__(cfg, ctx)
        self.rules = EvolveRules.load(cfg.rules, only=cfg.operations)
        self.eliminations = build_eliminations(cfg, self.rules)
        self.rounds: dict[int, RoundStats] = {}
        self.tree_nodes = cfg.tree_nodes or self.rules.tree_nodes
        self.seed = cfg.seed or 0
        self.extra = {
            "model": cfg.model,
            **({"answer_model": cfg.answer_model or cfg.model} if cfg.answer else {}),
        }
        self.spool: JsonlWriter | None = None  # the survivors of this round, which the next round evolves
        self.answer_llm = None
        if ctx is not None and cfg.answer:
            kind = cfg.answer_backend or cfg.backend
            self.answer_llm = ctx.llm_for(kind, cfg.answer_model or cfg.model, ready=answer_backend)

    def run(self, runner) -> None:
        """Round 1 streams the input; each later round streams the survivors of the one before, spooled to a
        hidden file in the run directory (removed before the run is committed)."""
        bar, parents, spooled = runner.bar, runner.run.reader, None
        bar.set_description("evolve round 1", refresh=False)
        for r in range(1, self.cfg.rounds + 1):
            last = r == self.cfg.rounds
            with nullcontext() if last else JsonlWriter(runner.run.dir / f".round-{r}.jsonl") as spool:
                self.spool = spool
                runner.stream(parents, count_input=r == 1)
            self.spool = None
            if spooled is not None:
                spooled.unlink()
            if last:
                break
            spooled = Path(spool.target)
            if spool.count == 0:
                spooled.unlink()
                break
            parents = _spooled(spooled)
            bar.reset(total=spool.count)
            bar.set_description(f"evolve round {r + 1}", refresh=False)

    def stats(self, depth: int) -> RoundStats:
        if depth not in self.rounds:
            self.rounds[depth] = RoundStats(depth)
        return self.rounds[depth]

    def prepare(self, row: dict) -> Prompt:
        return as_prompt(row)

    def plan_requests(self, item: Prompt) -> list:
        return [self.evolution_request(group) for group in self.groups(self.candidates(item))]

    def passthrough(self, parent: dict) -> dict:
        drop = self.rules.answer_columns
        return {k: v for k, v in public(parent).items() if k not in OWN_COLUMNS and k not in drop}

    def candidates(self, p: Prompt) -> list[Candidate]:
        """The evolutions of one parent row this round: `n_per_prompt`, each with its drawn operation."""
        evo = p.row.get("evolution")
        depth = evo["round"] + 1 if isinstance(evo, dict) and isinstance(evo.get("round"), int) else 1
        ops = self.rules.operations
        return [
            Candidate(
                p.row,
                p.messages[:-1],
                p.messages[-1]["content"],
                pick_operation(ops, seed=self.seed, parent_id=p.row["id"], index=k),
                depth,
                k,
            )
            for k in range(self.cfg.n_per_prompt)
        ]

    def run_batch(self, prompts: list[Prompt]):
        """Evolve a batch of parent rows: survivors to the output (and the next round's spool), every
        eliminated evolution to the ledger with its reason."""
        out, cands = self.outputs(), []
        for p in prompts:
            mine = self.candidates(p)
            self.stats(mine[0].round).tried(mine)
            cands.extend(mine)
        live = self.evolve(cands, out)
        live = self.apply("instruction", live, out)
        if self.cfg.judge:
            live = self.apply("judge", self.ask_judge(live, out), out)
        if self.cfg.answer:
            live = self.apply("answer", self.ask_answers(live, out), out)
        for c in live:
            self.stats(c.round).survived(c)
            out.kept.append(c.row(self.passthrough(c.parent), **self.extra))
        if self.spool is not None:
            self.spool.write_many(out.kept)
        return out

    @staticmethod
    def groups(cands: list[Candidate]) -> list[list[Candidate]]:
        """Evolutions of one parent by the same operation share a request with n samples: asking twice for
        the same messages would return the same cached sample twice."""
        groups: dict[tuple[int, str], list[Candidate]] = {}
        for c in cands:
            groups.setdefault((id(c.parent), c.operation.name), []).append(c)
        return list(groups.values())

    def evolution_request(self, group: list[Candidate]) -> ChatRequest:
        c = group[0]
        prompt = c.operation.prompt(c.parent_text, tree_nodes=self.tree_nodes)
        return self.cfg.request([{"role": "user", "content": prompt}], n=len(group))

    def evolve(self, cands: list[Candidate], out) -> list[Candidate]:
        groups = self.groups(cands)
        answers = self.llm.complete_each([self.evolution_request(g) for g in groups])
        live = []
        for group, (samples, error) in zip(groups, answers, strict=True):
            for c, comp in zip(group, samples, strict=True):
                if comp is None:
                    self.reject(c, "evolution_failed", error or "no completion", out)
                    continue
                c.text = c.operation.extract(comp.text)
                c.finish_reason = comp.finish_reason
                live.append(c)
        return live

    def ask_judge(self, cands: list[Candidate], out) -> list[Candidate]:
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
        for c, ([comp], error) in zip(cands, self.llm.complete_each(requests), strict=True):
            if comp is None:
                self.reject(c, "judge_failed", error or "no completion", out)
                continue
            c.judgement = comp.text
            live.append(c)
        return live

    def ask_answers(self, cands: list[Candidate], out) -> list[Candidate]:
        requests = [self.cfg.request(c.messages(), n=1) for c in cands]
        live = []
        for c, ([comp], error) in zip(cands, self.answer_llm.complete_each(requests), strict=True):
            if comp is None:
                self.reject(c, "answer_failed", error or "no completion", out)
                continue
            c.answer = comp
            live.append(c)
        return live

    def apply(self, stage: str, cands: list[Candidate], out) -> list[Candidate]:
        rules = [r for r in self.eliminations if r.stage == stage]
        live = []
        for c in cands:
            for rule in rules:
                detail = rule.check(c)
                if detail is not None:
                    self.reject(c, rule.name, detail, out)
                    break
            else:
                live.append(c)
        return live

    def reject(self, c: Candidate, reason: str, detail: str, out) -> None:
        self.stats(c.round).rejected[reason] += 1
        extra = {**self.extra, **({"judgement": c.judgement} if c.judgement is not None else {})}
        out.reject(c.row(self.passthrough(c.parent), **extra), reason, detail)

    # --- the manifest ---------------------------------------------------------------------------------------

    def round_dicts(self) -> list[dict]:
        return [self.rounds[d].as_dict() for d in sorted(self.rounds)]

    def counts(self) -> dict:
        rounds = self.round_dicts()
        llms = [self.llm] + ([self.answer_llm] if self.answer_llm not in (None, self.llm) else [])
        return {
            "prompts": self.ctx.handled,
            "candidates": sum(r["candidates"] for r in rounds),
            "evolved": sum(r["survivors"] for r in rounds),
            "rejected_candidates": sum(sum(r["rejected"].values()) for r in rounds),
            "failed_requests": sum(llm.stats.failed_requests for llm in llms),
        }

    def balanced(self, c: dict) -> bool:
        ledger = self.ctx.run.ledger.counts
        return (
            c["candidates"] == c["evolved"] + c["rejected_candidates"]
            and ledger["kept"] == c["evolved"]
            and ledger["rejected"] == c["rejected_candidates"] + c["not_a_prompt"]
        )

    def sections(self) -> dict:
        rounds = self.round_dicts()
        by_op: dict[str, dict] = {}
        for op in self.rules.operations:
            tried = sum(r["candidates_by_operation"].get(op.name, 0) for r in rounds)
            kept = sum(r["survivors_by_operation"].get(op.name, 0) for r in rounds)
            by_op[op.name] = {
                "weight": op.weight,
                "candidates": tried,
                "survivors": kept,
                "survival_rate": round(kept / tried, 3) if tried else None,
            }
        out = {
            "rounds": rounds,
            "operations": by_op,
            "rules": {
                "path": self.rules.path,
                "tree_nodes": self.tree_nodes,
                "eliminations": [
                    {"name": e.name, "stage": e.stage, **e.settings()} for e in self.eliminations
                ],
            },
        }
        a = self.answer_llm
        if a is not None and a is not self.llm:
            out["answer_backend"] = {
                "name": a.backend.name,
                "model": self.cfg.answer_model,
                "model_identity": a.model_id,
                **a.backend.info(),
            }
            out["answer_llm"] = a.stats.as_dict()
        return out

    @classmethod
    def summary(cls, m: dict) -> list[str]:
        c = m["counts"]
        lines = [
            f"rows {c['input']} = prompts {c['prompts']} + not prompts {c['not_a_prompt']} + invalid {c['invalid']}"
        ]
        for r in m["rounds"]:
            rejected = ", ".join(f"{k} {v}" for k, v in r["rejected"].items())
            length = r["length"]
            grew = (
                f"; words {length['parent_words']} -> {length['words']} (x{length['growth']})"
                if length["growth"] is not None
                else ""
            )
            lines.append(
                f"round {r['round']}: {r['parents']} prompts, {r['candidates']} evolutions, "
                f"{r['survivors']} survived" + (f" (rejected: {rejected})" if rejected else "") + grew
            )
        ops = ", ".join(
            f"{name} {o['survivors']}/{o['candidates']}"
            for name, o in m["operations"].items()
            if o["candidates"]
        )
        lines.append(f"survived per operation: {ops}")
        lines.append(f"lineage: curate why ID {m['run_dir']}")
        return lines


def _spooled(path: Path) -> Iterator[dict]:
    for rec in iter_lines([path]):
        yield orjson.loads(rec.data)


def run_evolve(cfg: EvolveConfig, backend=None, answer_backend=None) -> dict:
    """Evolve the prompts in `cfg.inputs` for `cfg.rounds` rounds into the run directory `cfg.output`; return
    the manifest. Backends may be given ready-made; otherwise they are built from the config."""
    return run_method(Evolve, cfg, backend=backend, answer_backend=answer_backend)


__all__ = ["Evolve", "EvolveConfig", "EvolveRules", "parse_judgement", "pick_operation", "run_evolve"]

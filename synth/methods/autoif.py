"""`synth autoif`: instruction-following data checked by code (AutoIF, as in Qwen2).

1. **Verification functions.** For every seed instruction (`rules/autoif_seeds.yaml`, e.g. "answer in under
   50 words") the LLM writes `functions` candidate `evaluate(response) -> bool` functions, each with test
   cases (example responses and whether they follow the instruction).
2. **Cross-validation** (in the sandbox): every function runs on every test case of its instruction. A test
   case is kept when at least one function reproduces its label; a function is kept when its accuracy on the
   kept cases is at least `min_accuracy` (0.8); an instruction is kept with at least `min_functions` (3)
   functions. `instructions.jsonl` records every function, case and decision.
3. **Responses.** Each input query is paired with `instructions_per_query` kept instructions (chosen by a
   hash of the row id, so a re-run picks the same) and answered `n` times; each response runs through the
   instruction's kept functions in the sandbox. Chosen = passes at least half of them, rejected = passes none
   (in between is neither). Chosen responses become demonstrations (`sft.jsonl`, distinct ones, up to
   `keep_per_prompt`), chosen against rejected become pairs (`preference.jsonl`); `samples.jsonl` holds every
   response with the functions it passed; queries with nothing to keep or contrast go to the ledger.

Responses are checked by the `autoif` verifier of `synth.verifiers` (the same that scores AutoIF rewards in
`train`): a function's answer travels as the sandbox verdict, never through its output.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

import xxhash

from curate.io import InputError
from rules import fill, load_rules, rules_path
from synth.backends import ChatRequest
from synth.config import (
    AnswerSettings,
    BackendSettings,
    InputSettings,
    RunSettings,
    SamplingSettings,
    SandboxOptions,
    default,
    setting,
    settings,
)
from synth.methods.generate import as_prompt
from synth.methods.selection import PromptItem, Sample, pair_id, select, verify_samples
from synth.parse import ParseError, parse_json
from synth.prompts import derived_id
from synth.runner import Method, run_method
from synth.verifiers import VerifierContext
from synth.verifiers.autoif import AutoIFSettings, AutoIFVerifier, answer, evaluation_program
from synth.verifiers.code import FENCE, extract_code


@settings
class AutoIFConfig(
    SandboxOptions, AnswerSettings, SamplingSettings, BackendSettings, RunSettings, InputSettings
):
    seeds: str = setting(
        "autoif_seeds.yaml",
        "Seed constraint instructions: the shipped rules file or your own YAML (seeds: [{id, instruction}]).",
    )
    prompts: str = setting("autoif.yaml", "Prompt templates (rules file or path).")
    functions: int = setting(4, "Verification functions the LLM writes per instruction.", min=1)
    n_cases: int = setting(4, "Test cases asked for with each function.", min=1)
    min_functions: int = setting(
        3, "Functions an instruction needs after cross-validation to be used.", min=1
    )
    min_accuracy: float = setting(
        0.8, "Accuracy a function needs on the cross-validated test cases.", min=0, max=1
    )
    instructions_per_query: int = setting(
        1, "Instructions each query is answered under (picked by a hash of the row id).", min=1
    )
    keep_per_prompt: int = setting(
        1, "Demonstrations per query and instruction (distinct chosen responses).", min=0
    )
    pairs_per_prompt: int = setting(1, "Chosen vs rejected pairs per query and instruction.", min=0)
    near_duplicate_threshold: float = setting(
        0.8,
        "Two kept responses with at least this Jaccard (word 5-grams) are one.",
        min=0,
        max=1,
        min_open=True,
    )
    verifier_temperature: float = setting(0.8, "Sampling temperature of the verification functions.", min=0)
    verifier_max_tokens: int = setting(1024, "Longest verification-function answer, in tokens.", min=1)
    n: int = default(4)
    batch_size: int = default(16)
    graded = True  # for `select`: responses are chosen (correct) or rejected (incorrect)
    min_score = None
    min_margin = 0.0

    @property
    def keep(self) -> int:
        return self.keep_per_prompt

    def validate(self) -> None:
        if self.min_functions > self.functions:
            raise InputError(
                f"--min-functions {self.min_functions} is more than the --functions {self.functions} "
                "written per instruction: no instruction could be kept"
            )


@dataclass(frozen=True)
class Seed:
    id: str
    instruction: str


def load_seeds(name: str) -> list[Seed]:
    try:
        data = load_rules(name)
    except (FileNotFoundError, ValueError, OSError) as e:
        raise InputError(f"--seeds: {e}") from None
    except Exception as e:  # a YAML syntax error
        raise InputError(f"--seeds {name}: not valid YAML: {e}") from None
    seeds, seen = [], set()
    for i, s in enumerate(data.get("seeds") or []):
        if (
            not isinstance(s, dict)
            or not isinstance(s.get("id"), str)
            or not isinstance(s.get("instruction"), str)
        ):
            raise InputError(f"--seeds {name}: seed {i + 1} needs an 'id' and an 'instruction' (strings)")
        if s["id"] in seen:
            raise InputError(f"--seeds {name}: seed id {s['id']!r} appears twice")
        seen.add(s["id"])
        seeds.append(Seed(s["id"], s["instruction"].strip()))
    if not seeds:
        raise InputError(f"--seeds {name}: no seeds (expected a 'seeds:' list)")
    return seeds


# --- verification functions and their cross-validation -------------------------------------------------------


@dataclass
class Function:
    index: int
    code: str | None
    cases: list[tuple[str, bool]]
    problem: str | None = None  # why the answer gave no usable function
    accuracy: float | None = None
    kept: bool = False


def parse_function(index: int, text: str | None) -> Function:
    """A function and its test cases from one LLM answer (see rules/autoif.yaml for the format asked for)."""
    if text is None:
        return Function(index, None, [], "generation failed")
    code = extract_code(text)
    if code is None or not re.search(r"^def evaluate\(", code, re.M):
        return Function(index, None, [], "no `def evaluate(...)` in a ```python block")
    json_blocks = [body for lang, body in FENCE.findall(text) if lang.lower() == "json"]
    cases = []
    try:
        raw = parse_json(json_blocks[0] if json_blocks else text, expect=list)
    except ParseError as e:
        return Function(index, code, [], f"test cases: {e}")
    for c in raw:
        if isinstance(c, dict) and isinstance(c.get("response"), str) and isinstance(c.get("follows"), bool):
            cases.append((c["response"], c["follows"]))
    return Function(index, code, cases, None if cases else "no usable test case")


@dataclass
class CrossValidation:
    """Which test cases and functions of one instruction survive (outputs[f][c]: True, False or None)."""

    labels: list[bool]
    outputs: list[list[bool | None]]
    min_accuracy: float = 0.8
    kept_cases: list[int] = field(default_factory=list)
    accuracy: list[float | None] = field(default_factory=list)

    def __post_init__(self):
        self.kept_cases = [
            c for c, label in enumerate(self.labels) if any(o[c] is label for o in self.outputs)
        ]
        n = len(self.kept_cases)
        self.accuracy = [
            sum(o[c] is self.labels[c] for c in self.kept_cases) / n if n else None for o in self.outputs
        ]

    def kept(self, f: int) -> bool:
        return self.accuracy[f] is not None and self.accuracy[f] >= self.min_accuracy


@dataclass
class Instruction:
    seed: Seed
    functions: list[Function]
    cases: list[tuple[str, bool]] = field(default_factory=list)
    kept_cases: list[int] = field(default_factory=list)

    @property
    def kept_functions(self) -> list[Function]:
        return [f for f in self.functions if f.kept]

    def record(self, min_functions: int) -> dict:
        kept = len(self.kept_functions)
        return {
            "id": self.seed.id,
            "instruction": self.seed.instruction,
            "kept": kept >= min_functions,
            "why": f"{kept} function(s) with accuracy >= the threshold (need {min_functions})",
            "functions": [
                {
                    "index": f.index,
                    "kept": f.kept,
                    "accuracy": f.accuracy,
                    "problem": f.problem,
                    "code": f.code,
                }
                for f in self.functions
            ],
            "cases": [
                {"response": r, "follows": label, "kept": c in self.kept_cases}
                for c, (r, label) in enumerate(self.cases)
            ],
        }


def pool_cases(functions: list[Function]) -> list[tuple[str, bool]]:
    """Every function's test cases, once each; a response labelled both ways is dropped."""
    labels: dict[str, set] = {}
    for f in functions:
        for response, follows in f.cases:
            labels.setdefault(response, set()).add(follows)
    return [(r, next(iter(ls))) for r, ls in labels.items() if len(ls) == 1]


class AutoIF(Method):
    """Instruction-following data verified by code (AutoIF).

    For each seed instruction ("answer in under 50 words", "use exactly three bullet points"...) the LLM writes
    verification functions with test cases; they are cross-validated in the sandbox (cases some function
    reproduces, functions with accuracy >= --min-accuracy, instructions with >= --min-functions functions).
    Each query is then answered under a verified instruction and every response is checked by running the
    functions in the sandbox: chosen = passes at least half, rejected = passes none. OUTPUT/sft.jsonl holds
    chosen responses as conversations, OUTPUT/preference.jsonl chosen vs rejected pairs, OUTPUT/samples.jsonl
    every response with its checks, OUTPUT/instructions.jsonl every function and test case with the decision,
    OUTPUT/rejected.jsonl the queries with nothing to keep or contrast. The sft and preference rows carry
    `instruction_id`: `--verifier autoif --autoif-run OUTPUT` checks responses to them (e.g. as RL rewards).

    \b
    Examples:
      synth autoif sample_data/prompts.jsonl -o autoif --backend openai --model Qwen/Qwen2.5-7B-Instruct
      synth autoif queries.jsonl -o autoif --model ./my-model --seeds my_seeds.yaml --functions 6 --n 8
      train dpo --data autoif --model ./my-sft-model -o dpo-run
    """

    name = "autoif"
    Config = AutoIFConfig
    main_output = "sft.jsonl"
    other_outputs = ("preference.jsonl", "samples.jsonl", "instructions.jsonl")
    skip_counts = ("not_a_prompt",)

    def __init__(self, cfg, ctx):
        super().__init__(cfg, ctx)
        self.seeds = load_seeds(cfg.seeds)
        self.prompts = load_rules(cfg.prompts)
        self.verifier = AutoIFVerifier(
            AutoIFSettings(), VerifierContext(cfg, sandbox=ctx.sandbox if ctx else None)
        )
        self.kept: list[Instruction] = []
        self.records: list[dict] = []
        self.t: Counter = Counter()
        self.verdicts: Counter = Counter()
        self.per_instruction: Counter = Counter()

    # --- 1 and 2: verification functions, cross-validated --------------------------------------------------

    def build_instructions(self) -> list[Instruction]:
        cfg, p = self.cfg, self.prompts
        requests = [
            ChatRequest(
                [
                    {"role": "system", "content": p["verifier_system"].strip()},
                    {
                        "role": "user",
                        "content": fill(
                            p["verifier_template"], instruction=s.instruction, n_cases=cfg.n_cases
                        ),
                    },
                ],
                n=cfg.functions,
                temperature=cfg.verifier_temperature,
                top_p=cfg.top_p,
                max_tokens=cfg.verifier_max_tokens,
                seed=cfg.seed,
            )
            for s in self.seeds
        ]
        instructions = []
        for seed, (comps, _) in zip(self.seeds, self.llm.complete_each(requests), strict=True):
            fns = [parse_function(i, None if c is None else c.text) for i, c in enumerate(comps)]
            instructions.append(Instruction(seed, fns, pool_cases([f for f in fns if f.code is not None])))
        plan = [(ins, f) for ins in instructions for f in ins.functions if f.code is not None]
        results = iter(
            self.verifier.run([evaluation_program(f.code, r) for ins, f in plan for r, _ in ins.cases])
        )
        outputs = {id(f): [answer(next(results)) for _ in ins.cases] for ins, f in plan}
        for ins in instructions:
            usable = [f for f in ins.functions if f.code is not None]
            cv = CrossValidation(
                [label for _, label in ins.cases], [outputs[id(f)] for f in usable], cfg.min_accuracy
            )
            ins.kept_cases = cv.kept_cases
            for k, f in enumerate(usable):
                f.accuracy = None if cv.accuracy[k] is None else round(cv.accuracy[k], 4)
                f.kept = cv.kept(k)
                if not f.kept and f.problem is None:
                    f.problem = (
                        "no test case kept"
                        if f.accuracy is None
                        else f"accuracy {f.accuracy:g} below {cfg.min_accuracy:g}"
                    )
        self.records = [ins.record(cfg.min_functions) for ins in instructions]
        return [ins for ins in instructions if len(ins.kept_functions) >= cfg.min_functions]

    def run(self, runner) -> None:
        self.kept = self.build_instructions()
        runner.write(self.outputs(files={"instructions.jsonl": self.records}))
        if runner.bar is not None:
            runner.bar.set_postfix_str(
                f"{len(self.kept)}/{len(self.seeds)} instructions verified", refresh=False
            )
        runner.stream(runner.run.reader, count_input=True)

    # --- 3: responses -------------------------------------------------------------------------------------------

    def prepare(self, row: dict):
        return as_prompt(row, self.cfg.system_prompt)

    def choose(self, row_id: str) -> list[Instruction]:
        """`instructions_per_query` distinct instructions for a row, the same on every run."""
        k = min(self.cfg.instructions_per_query, len(self.kept))

        def rank(ins: Instruction) -> int:
            return xxhash.xxh3_64_intdigest(f"{row_id}\x00{ins.seed.id}".encode(), seed=self.cfg.seed or 0)

        return sorted(self.kept, key=rank)[:k]

    def run_batch(self, prompts: list):
        cfg, p = self.cfg, self.prompts
        out = self.outputs()
        items: list[tuple[PromptItem, Instruction]] = []
        for prompt in prompts:
            self.t["prompts"] += 1
            if not self.kept:
                out.reject(
                    prompt.row,
                    "no_verified_instruction",
                    f"no instruction kept {cfg.min_functions} verification functions (see instructions.jsonl)",
                )
                continue
            for ins in self.choose(prompt.id):
                query = fill(
                    p["response_template"],
                    query=prompt.messages[-1]["content"],
                    instruction=ins.seed.instruction,
                )
                msgs = [*prompt.messages[:-1], {"role": "user", "content": query.strip()}]
                row = {**prompt.row, "verification_functions": [f.code for f in ins.kept_functions]}
                item = PromptItem(row, derived_id(prompt.id, instruction=ins.seed.id), msgs, None, None)
                items.append((item, ins))
        if not items:
            return out
        answers = self.llm.complete_each([cfg.request(it.messages) for it, _ in items])
        for (item, _), (comps, error) in zip(items, answers, strict=True):
            item.samples.extend(Sample.of(item.id, i, comp, error, cfg) for i, comp in enumerate(comps))
        verify_samples(self.verifier, [it for it, _ in items])
        for item, ins in items:
            self.write(item, ins, out)
        return out

    def write(self, item: PromptItem, ins: Instruction, out) -> None:
        sel = select(item, self.cfg)
        base = {
            k: v
            for k, v in item.row.items()
            if not k.startswith("_") and k not in ("id", "messages", "verification_functions")
        }
        common = {
            "instruction_id": ins.seed.id,
            "instruction": ins.seed.instruction,
            "model": self.cfg.model,
            "backend": self.llm.backend.name,
        }
        parent = str(item.row["id"])
        self.t["responses"] += len(item.samples)
        self.verdicts.update(s.verdict for s in item.samples)
        self.per_instruction[ins.seed.id] += 1
        out.write(
            "samples.jsonl",
            (
                {
                    "id": s.id,
                    "parent_id": parent,
                    "item_id": item.id,
                    "sample_index": s.index,
                    "text": s.text,
                    "verdict": s.verdict,
                    "score": s.score,
                    "checks": (s.facts or {}).get("checks"),
                    "why": s.why,
                    "in_sft": s.in_sft,
                    "sft_note": s.sft_note,
                    "pairs": s.pairs,
                    **common,
                }
                for s in item.samples
            ),
        )
        out.kept.extend(
            {
                "id": s.id,
                "parent_id": parent,
                "messages": [*item.messages, {"role": "assistant", "content": s.text}],
                **base,
                "functions_passed": s.extracted,
                **common,
            }
            for s in sel.sft
        )
        out.write(
            "preference.jsonl",
            (
                {
                    "id": pair_id(item.id, c.index, r.index),
                    "parent_id": parent,
                    "prompt": item.messages,
                    "chosen": [{"role": "assistant", "content": c.text}],
                    "rejected": [{"role": "assistant", "content": r.text}],
                    **base,
                    "chosen_score": c.score,
                    "rejected_score": r.score,
                    "method": "autoif: passes >= half of the verification functions vs passes none",
                    **common,
                }
                for c, r in sel.pairs
            ),
        )
        self.t["items"] += 1
        self.t["items_with_sft"] += bool(sel.sft)
        self.t["items_with_pairs"] += bool(sel.pairs)
        if sel.reason is not None:
            reason = {
                "no_correct_sample": "no_chosen_response",
                "no_incorrect_sample": "no_rejected_response",
            }.get(sel.reason, sel.reason)
            out.reject(
                item.row,
                reason,
                sel.detail,
                instruction_id=ins.seed.id,
                reject_outputs=sel.missing,
                sample_verdicts=dict(Counter(s.verdict for s in item.samples)),
            )

    # --- the manifest -------------------------------------------------------------------------------------------

    def counts(self) -> dict:
        t, ctx = self.t, self.ctx
        return {
            "prompts": t["prompts"],
            "items": t["items"],
            "responses": t["responses"],
            "verdicts": dict(self.verdicts.most_common()),
            "sft": ctx.run.ledger.counts["kept"],
            "pairs": ctx.written["preference.jsonl"],
            "items_with_sft": t["items_with_sft"],
            "items_with_pairs": t["items_with_pairs"],
            "ledger": ctx.run.ledger.counts["rejected"],
        }

    def sections(self) -> dict:
        functions = [f for ins in self.records for f in ins["functions"]]
        return {
            "instructions": {
                "seeds": str(rules_path(self.cfg.seeds)),
                "total": len(self.seeds),
                "kept": len(self.kept),
                "kept_ids": [ins.seed.id for ins in self.kept],
                "functions_written": len(functions),
                "functions_kept": sum(f["kept"] for f in functions),
                "used": dict(self.per_instruction.most_common()),
            },
            "sandbox": {**self.ctx.sandbox().info(), "jobs": dict(self.verifier.jobs.most_common())},
        }

    @classmethod
    def summary(cls, m: dict) -> list[str]:
        c, ins = m["counts"], m["instructions"]
        return [
            f"instructions: {ins['kept']} of {ins['total']} verified "
            f"({ins['functions_kept']} of {ins['functions_written']} functions kept)",
            f"rows {c['input']} = queries {c['prompts']} + not prompts {c['not_a_prompt']} + invalid {c['invalid']}",
            f"responses {c['responses']}: " + ", ".join(f"{k} {v}" for k, v in c["verdicts"].items()),
        ]


def run_autoif(cfg: AutoIFConfig, backend=None) -> dict:
    """Build verified instructions, answer every query of `cfg.inputs` under them into `cfg.output`; return the
    manifest. `backend` may be given ready-made (tests, library callers)."""
    return run_method(AutoIF, cfg, backend=backend)

"""`run_autoif`: instruction-following data checked by code (AutoIF, as in Qwen2), behind `synth autoif`.

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

A function's answer travels as the sandbox verdict, never through its output: the program asserts the value
is a bool and then that it is True, so "pass" is True, an `AssertionError` "returned False" is False and
anything else (exception, timeout, not a bool) is an error that counts as a wrong answer.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

import xxhash

from curate.io import InputError
from curate.schema import public, rejected_row
from rules import load_rules, rules_path
from synth.backends import ChatRequest
from synth.execfeedback import FENCE, SandboxSettings, extract_code, program
from synth.generate import GenerateConfig, NotAPrompt, batched, progress_bar, prompt_of
from synth.parse import ParseError, fill_template, parse_json
from synth.reject import PromptItem, Sample, pair_id, select
from synth.run import SynthRun
from synth.sandbox import Job

STEP = "autoif"
FALSE_MARK = "evaluate returned False"
EVALUATE = """_value = evaluate({response!r})
if _value is not True and _value is not False:
    raise TypeError("evaluate returned " + type(_value).__name__ + ", not a bool")
assert _value, {false_mark!r}
"""


@dataclass
class AutoIFConfig(GenerateConfig):
    seeds: str = "autoif_seeds.yaml"
    prompts: str = "autoif.yaml"
    n: int = 4  # responses per (query, instruction)
    batch_size: int = 16
    functions: int = 4  # verification functions sampled per instruction
    n_cases: int = 4  # test cases asked for with each function
    min_functions: int = 3
    min_accuracy: float = 0.8
    instructions_per_query: int = 1
    verifier_temperature: float = 0.8
    verifier_max_tokens: int = 1024
    keep_per_prompt: int = 1
    pairs_per_prompt: int = 1
    near_duplicate_threshold: float = 0.8
    sandbox: str = "auto"
    sandbox_workers: int = 2
    exec_timeout: float = 5.0
    exec_memory_mb: int = 512
    verifier = "autoif"  # for `synth.reject.select`
    min_score = None
    graded = True

    @property
    def keep(self) -> int:
        return self.keep_per_prompt

    def validate(self) -> None:
        super().validate()
        if self.functions < 1 or self.n_cases < 1 or self.instructions_per_query < 1:
            raise InputError("--functions, --n-cases and --instructions-per-query must be at least 1")
        if self.min_functions > self.functions:
            raise InputError(
                f"--min-functions {self.min_functions} is more than the --functions {self.functions} "
                "written per instruction: no instruction could be kept"
            )
        if not 0 <= self.min_accuracy <= 1:
            raise InputError(f"--min-accuracy must be between 0 and 1, got {self.min_accuracy}")


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


def evaluation_program(code: str, response: str) -> str:
    return program(code, EVALUATE.format(response=response, false_mark=FALSE_MARK))


def answer(result) -> bool | None:
    """What a function said, from its sandbox verdict: True, False, or None for an error."""
    if result.passed:
        return True
    if result.verdict == "fail" and result.error == "AssertionError" and FALSE_MARK in (result.message or ""):
        return False
    return None


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


class AutoIF:
    """One run: verification functions, cross-validation, responses and their checks."""

    def __init__(self, cfg: AutoIFConfig, run: SynthRun, sandbox):
        self.cfg, self.run, self.sandbox = cfg, run, sandbox
        self.prompts = load_rules(cfg.prompts)
        self.jobs: Counter = Counter()
        self.t = Counter()
        self.reasons: Counter = Counter()
        self.per_instruction: Counter = Counter()
        self.samples_out = run.writer("samples.jsonl")
        self.pairs_out = run.writer("preference.jsonl")

    def _map(self, programs: list[str]) -> list:
        results = self.sandbox.map([Job(code=p) for p in programs]) if programs else []
        self.jobs.update(r.verdict for r in results)
        return results

    def build_instructions(self, seeds: list[Seed]) -> list[Instruction]:
        cfg, p = self.cfg, self.prompts
        requests = [
            ChatRequest(
                [
                    {"role": "system", "content": p["verifier_system"].strip()},
                    {
                        "role": "user",
                        "content": fill_template(
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
            for s in seeds
        ]
        instructions = []
        for seed, (comps, _) in zip(seeds, self.run.llm.complete_each(requests), strict=True):
            fns = [parse_function(i, None if c is None else c.text) for i, c in enumerate(comps)]
            instructions.append(Instruction(seed, fns, pool_cases([f for f in fns if f.code is not None])))
        plan = [(ins, f) for ins in instructions for f in ins.functions if f.code is not None]
        results = iter(self._map([evaluation_program(f.code, r) for ins, f in plan for r, _ in ins.cases]))
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
        self.run.writer("instructions.jsonl").write_many(self.records)
        return [ins for ins in instructions if len(ins.kept_functions) >= cfg.min_functions]

    def choose(self, row_id: str, kept: list[Instruction]) -> list[Instruction]:
        """`instructions_per_query` distinct instructions for a row, the same on every run."""
        k = min(self.cfg.instructions_per_query, len(kept))
        ranked = sorted(
            kept,
            key=lambda ins: xxhash.xxh3_64_intdigest(
                f"{row_id}\x00{ins.seed.id}".encode(), seed=self.cfg.seed or 0
            ),
        )
        return ranked[:k]

    def run_batch(self, rows: list[dict], kept: list[Instruction]) -> None:
        cfg, p = self.cfg, self.prompts
        items: list[tuple[PromptItem, Instruction]] = []
        for row in rows:
            try:
                messages, _ = prompt_of(row, cfg.system_prompt)
            except NotAPrompt as e:
                self._reject(row, "not_a_prompt", str(e))
                self.t["not_a_prompt"] += 1
                continue
            self.t["prompts"] += 1
            if not kept:
                self._reject(
                    row,
                    "no_verified_instruction",
                    f"no instruction kept {cfg.min_functions} verification functions (see instructions.jsonl)",
                )
                continue
            for ins in self.choose(str(row["id"]), kept):
                msgs = [
                    *messages[:-1],
                    {
                        "role": "user",
                        "content": fill_template(
                            p["response_template"],
                            query=messages[-1]["content"],
                            instruction=ins.seed.instruction,
                        ).strip(),
                    },
                ]
                item_id = xxhash.xxh3_128_hexdigest(f"{row['id']}\x00{ins.seed.id}".encode())
                items.append((PromptItem(row, item_id, msgs, None, None), ins))
        if not items:
            return
        answers = self.run.llm.complete_each([cfg.request(it.messages) for it, _ in items])
        plan = []
        for (item, ins), (comps, error) in zip(items, answers, strict=True):
            item.samples.extend(Sample.of(item.id, i, comp, error, cfg) for i, comp in enumerate(comps))
            plan.extend((s, ins) for s in item.samples if s.pending)
        results = iter(
            self._map([evaluation_program(f.code, s.text) for s, ins in plan for f in ins.kept_functions])
        )
        for s, ins in plan:
            said = [answer(next(results)) for _ in ins.kept_functions]
            passed, m = sum(a is True for a in said), len(said)
            s.score = passed / m
            s.extracted = f"{passed}/{m} functions"
            s.verdict = "correct" if 2 * passed >= m else "incorrect" if passed == 0 else "partial"
            s.why = f"passed {passed} of {m} verification functions" + (
                f" ({sum(a is None for a in said)} raised an error)" if any(a is None for a in said) else ""
            )
            s.checks = said
        for item, ins in items:
            self._write(item, ins)

    def _reject(self, row: dict, reason: str, detail: str, **extra) -> None:
        self.reasons[reason] += 1
        self.run.ledger.rejected([rejected_row(public(row), reason, detail, step=STEP, **extra)])

    def _write(self, item: PromptItem, ins: Instruction) -> None:
        cfg = self.cfg
        sel = select(item, cfg)
        base = public(item.row)
        for k in ("id", "messages"):
            base.pop(k, None)
        common = {
            "instruction_id": ins.seed.id,
            "instruction": ins.seed.instruction,
            "model": cfg.model,
            "backend": self.run.backend.name,
        }
        self.t["responses"] += len(item.samples)
        self.t.update(f"verdict:{s.verdict}" for s in item.samples)
        self.per_instruction[ins.seed.id] += 1
        self.samples_out.write_many(
            {
                "id": s.id,
                "parent_id": str(item.row["id"]),
                "item_id": item.id,
                "sample_index": s.index,
                "text": s.text,
                "verdict": s.verdict,
                "score": s.score,
                "checks": getattr(s, "checks", None),
                "why": s.why,
                "in_sft": s.in_sft,
                "sft_note": s.sft_note,
                "pairs": s.pairs,
                **common,
            }
            for s in item.samples
        )
        self.run.ledger.kept(
            {
                "id": s.id,
                "parent_id": str(item.row["id"]),
                "messages": [*item.messages, {"role": "assistant", "content": s.text}],
                **base,
                "functions_passed": s.extracted,
                **common,
            }
            for s in sel.sft
        )
        self.pairs_out.write_many(
            {
                "id": pair_id(item.id, c.index, r.index),
                "parent_id": str(item.row["id"]),
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
        )
        self.t["items"] += 1
        self.t["items_with_sft"] += bool(sel.sft)
        self.t["items_with_pairs"] += bool(sel.pairs)
        if sel.reason is not None:
            reason = {
                "no_correct_sample": "no_chosen_response",
                "no_incorrect_sample": "no_rejected_response",
            }.get(sel.reason, sel.reason)
            self._reject(
                item.row,
                reason,
                sel.detail,
                instruction_id=ins.seed.id,
                reject_outputs=sel.missing,
                sample_verdicts=dict(Counter(s.verdict for s in item.samples)),
            )


def run_autoif(cfg: AutoIFConfig, backend=None) -> dict:
    """Build verified instructions, answer every query of `cfg.inputs` under them into `cfg.output`; return the
    manifest. `backend` may be given ready-made (tests, library callers)."""
    with SynthRun(cfg, "synth autoif", main="sft.jsonl", backend=backend) as run:
        seeds = load_seeds(cfg.seeds)
        sandbox = SandboxSettings.of(cfg).open()
        run.on_close(sandbox)
        job = AutoIF(cfg, run, sandbox)
        kept = job.build_instructions(seeds)
        with progress_bar(cfg, desc=STEP) as bar:
            bar.set_postfix_str(f"{len(kept)}/{len(seeds)} instructions verified", refresh=False)
            for rows in batched(run.reader, cfg.batch_size):
                job.run_batch(rows, kept)
                bar.update(run.reader.count - bar.n)
        t = job.t
        counts = {
            "input": run.reader.count,
            "invalid": len(run.reader.invalid),
            "not_a_prompt": t["not_a_prompt"],
            "prompts": t["prompts"],
            "items": t["items"],
            "responses": t["responses"],
            "verdicts": {k.split(":", 1)[1]: v for k, v in t.most_common() if k.startswith("verdict:")},
            "sft": run.ledger.counts["kept"],
            "pairs": job.pairs_out.count,
            "items_with_sft": t["items_with_sft"],
            "items_with_pairs": t["items_with_pairs"],
            "ledger": run.ledger.counts["rejected"],
        }
        counts["balanced"] = counts["input"] == counts["invalid"] + counts["not_a_prompt"] + counts["prompts"]
        functions = [f for ins in job.records for f in ins["functions"]]
        return run.finish(
            counts=counts,
            instructions={
                "seeds": str(rules_path(cfg.seeds)),
                "total": len(seeds),
                "kept": len(kept),
                "kept_ids": [ins.seed.id for ins in kept],
                "functions_written": len(functions),
                "functions_kept": sum(f["kept"] for f in functions),
                "used": dict(job.per_instruction.most_common()),
            },
            reasons=dict(job.reasons.most_common()),
            sandbox={**sandbox.info(), "jobs": dict(job.jobs.most_common())},
            outputs={
                "sft": "sft.jsonl",
                "preference": "preference.jsonl",
                "samples": "samples.jsonl",
                "instructions": "instructions.jsonl",
                "rejected": "rejected.jsonl",
                "invalid": "invalid.jsonl",
            },
        )

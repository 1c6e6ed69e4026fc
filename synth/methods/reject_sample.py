"""`synth reject-sample`: rejection sampling into SFT demonstrations and preference pairs.

For every prompt, `n` responses are sampled (cached ones are reused) and each is judged by a verifier from
`synth.verifiers` (a name, a chain `math,judge` or a weighted sum `0.7*math+0.3*reward-model`). Correct
responses (or the best-scored ones) become demonstrations in `sft.jsonl`, up to `keep_per_prompt` per prompt
and without exact or near-duplicate reasoning paths (RFT keeps distinct paths). Correct responses against
incorrect ones (or best against worst, when the scores differ by at least `min_margin`) become preference
pairs with an explicit prompt in `preference.jsonl`. Every sample, with its verdict and why, is in
`samples.jsonl`; prompts that gave no demonstration or no pair are in `rejected.jsonl` with the reason;
`manifest.json` holds pass@k, the histogram of correct samples per prompt, tokens and throughput.

>>> from curate.io import write_jsonl
>>> from synth.backends.scripted import ScriptedBackend
>>> write_jsonl("/tmp/rs-math.jsonl", [{"id": "q1", "prompt": "What is 6 x 7?", "answer": "#### 42"}])
1
>>> answers = ["6 x 7 = 42.\\n#### 42", "6 x 7 = 36.\\n#### 36", "Six sevens are 42, so the answer is 42."]
>>> m = run_reject_sample(RejectConfig(inputs=["/tmp/rs-math.jsonl"], output="/tmp/rs-run", model="scripted", n=3,
...                       use_cache=False, overwrite=True), backend=ScriptedBackend(lambda req, i: answers[i]))
>>> m["counts"]["sft"], m["counts"]["pairs"], m["metrics"]["pass@1"]
(2, 1, 0.6667)
"""

from __future__ import annotations

import time
from collections import Counter

from curate.io import InputError
from synth.config import (
    AnswerSettings,
    BackendSettings,
    InputSettings,
    RunSettings,
    SamplingSettings,
    default,
    setting,
    settings,
)
from synth.methods.generate import as_prompt
from synth.methods.selection import PromptItem, Sample, pair_id, pass_metrics, select, verify_samples
from synth.runner import Method, Skip, run_method
from synth.verifiers import VerifierContext, VerifierSettings, build

# Demonstrations kept per prompt unless told: distinct correct paths (RFT), or the single best (best-of-N).
KEEP_GRADED, KEEP_SCORED = 4, 1


def spec_is_graded(spec: str) -> bool:
    """Whether a verifier spec's verdicts are correct/incorrect (its last stage is a single graded verifier)."""
    from synth.verifiers import verifier_classes

    last = spec.split(",")[-1].strip()
    if "+" in last or "*" in last:
        return False
    cls = verifier_classes().get(last)
    return bool(cls is not None and cls.graded)


@settings
class RejectConfig(
    VerifierSettings, AnswerSettings, SamplingSettings, BackendSettings, RunSettings, InputSettings
):
    verifier: str = setting(
        "math",
        "What checks each sample: math (final answer against the row's gold answer), code (the response's code "
        "against the row's tests, in the sandbox), autoif (the row's verification functions), reward-model "
        "(best-of-N with a local reward model), judge (an LLM rates against rules/judge.yaml), regex; a chain "
        "such as math,judge (the judge sees only correct samples) or a weighted sum such as "
        "0.7*math+0.3*reward-model.",
        metavar="SPEC",
    )
    keep_per_prompt: int | None = setting(
        None,
        "Demonstrations per prompt in sft.jsonl, distinct reasoning paths only [default: 4 when samples are correct "
        "or not, 1 (the best) when they are scored].",
        min=0,
    )
    pairs_per_prompt: int = setting(
        1,
        "Preference pairs per prompt: correct vs incorrect, or best vs worst (then 2nd best vs 2nd worst...).",
        min=0,
    )
    min_margin: float = setting(
        1.0,
        "Scored verifiers: the score gap a pair needs (reward-model logits, or judge points on the rubric's scale).",
        min=0,
    )
    min_score: float | None = setting(
        None, "Scored verifiers: the score a demonstration needs [default: none, the best is kept]."
    )
    near_duplicate_threshold: float = setting(
        0.8,
        "Two kept responses of a prompt with at least this Jaccard (word 5-grams) are one path.",
        min=0,
        max=1,
        min_open=True,
    )
    n: int = default(16)
    batch_size: int = default(8)

    @property
    def graded(self) -> bool:
        """True when samples are correct or not (math, code...); False when they are ranked by a score."""
        return spec_is_graded(self.verifier)

    @property
    def keep(self) -> int:
        if self.keep_per_prompt is not None:
            return self.keep_per_prompt
        return KEEP_GRADED if self.graded else KEEP_SCORED

    def validate(self) -> None:
        if self.generate_tests and "code" not in self.verifier:
            raise InputError("--generate-tests is for --verifier code")

    def warnings(self) -> list[str]:
        out = []
        if self.temperature == 0 and self.n > 1:
            out.append(
                f"--temperature 0 samples the same answer {self.n} times; rejection sampling needs diversity "
                "(0.7-1.0 is usual)"
            )
        if self.graded and self.min_score is not None:
            out.append(f"--min-score is for score verifiers; --verifier {self.verifier} ignores it")
        return out


def verifier_context(ctx, judge_backend=None) -> VerifierContext:
    """The run's models and sandbox, as the verifier layer sees them (a ready judge backend, if given)."""

    def llm_for(backend, model, options):
        return ctx.llm_for(backend, model, options, ready=judge_backend)

    return VerifierContext(ctx.cfg, llm=ctx.llm, llm_for=llm_for, sandbox=ctx.sandbox)


class RejectSample(Method):
    """Rejection sampling: n samples per prompt, verified, into SFT demonstrations and preference pairs.

    Every prompt is answered n times (cached samples are reused) and each sample is verified. Up to
    --keep-per-prompt correct (or best-scored) samples per prompt, without exact or near-duplicate reasoning
    paths, go to OUTPUT/sft.jsonl as conversations; correct against incorrect (or best against worst, at least
    --min-margin apart) go to OUTPUT/preference.jsonl with an explicit prompt, both scores and the method.
    OUTPUT/samples.jsonl holds every sample with its verdict, extracted answer or score and why;
    OUTPUT/rejected.jsonl the prompts with no correct sample or nothing to contrast, with the reason;
    OUTPUT/manifest.json pass@1, pass@n, the histogram of correct samples per prompt, tokens and throughput.

    \b
    Examples:
      synth reject-sample sample_data/math.jsonl -o rs --model ./SmolLM2-135M-Instruct \\
          --n 16 --verifier math --temperature 0.8 --max-tokens 384
      synth reject-sample sample_data/code.jsonl -o rs-code --backend openai --model Qwen/Qwen2.5-Coder-7B-Instruct \\
          --n 8 --verifier code --exec-timeout 5
      synth reject-sample prompts.jsonl -o bon --backend openai --base-url http://127.0.0.1:8000/v1 \\
          --model Qwen/Qwen2.5-7B-Instruct --n 8 --verifier reward-model --reward-model ./my-rm --min-margin 2
      synth reject-sample math.jsonl -o judged --backend openai --model Qwen/Qwen2.5-7B-Instruct \\
          --verifier math,judge --judge-model Qwen/Qwen2.5-72B-Instruct --min-score 7
      train dpo --data rs --model ./my-sft-model -o dpo-run
    """

    name = "reject-sample"
    Config = RejectConfig
    main_output = "sft.jsonl"
    other_outputs = ("samples.jsonl", "preference.jsonl")
    skip_counts = ("not_a_prompt",)

    def __init__(self, cfg, ctx, *, judge_backend=None, verifier=None):
        super().__init__(cfg, ctx)
        if verifier is None and ctx is not None:
            verifier = build(cfg.verifier, cfg, verifier_context(ctx, judge_backend))
        self.verifier = verifier
        self.t = Counter()
        self.verdicts: Counter = Counter()
        self.passed: list[int] = []  # correct (or >= --min-score) samples per prompt
        self.best: list[float] = []
        self.worst: list[float] = []
        self.margins: list[float] = []
        self.verify_seconds = 0.0

    def prepare(self, row: dict) -> PromptItem:
        prompt = as_prompt(row, self.cfg.system_prompt)
        gold = None
        if self.verifier is not None:
            problem = self.verifier.problem(row)
            if problem is not None:
                self.t["unverifiable"] += 1
                raise Skip(self.verifier.missing_reason, problem + "; not sampled")
            gold = self.verifier.reference(row)
        return PromptItem.of(prompt, gold)

    def plan_requests(self, item: PromptItem) -> list:
        return [self.cfg.request(item.messages)]

    def run_batch(self, items: list[PromptItem]):
        cfg = self.cfg
        results = self.llm.complete_each([cfg.request(it.messages) for it in items])
        for item, (comps, error) in zip(items, results, strict=True):
            item.samples.extend(Sample.of(item.id, i, comp, error, cfg) for i, comp in enumerate(comps))
        t0 = time.perf_counter()
        verify_samples(self.verifier, items)
        self.verify_seconds += time.perf_counter() - t0
        out = self.outputs()
        for item in items:
            self.write(item, out)
        return out

    def write(self, item: PromptItem, out) -> None:
        cfg, t = self.cfg, self.t
        sel = select(item, cfg)
        t["prompts"] += 1
        t["samples"] += len(item.samples)
        self.verdicts.update(s.verdict for s in item.samples)
        with_tokens = [s for s in item.samples if s.prompt_tokens is not None]
        t["prompt_tokens"] += with_tokens[0].prompt_tokens if with_tokens else 0
        t["completion_tokens"] += sum(s.completion_tokens or 0 for s in item.samples)
        if cfg.graded:
            self.passed.append(sum(s.verdict == "correct" for s in item.samples))
        elif cfg.min_score is not None:
            self.passed.append(sum(s.verdict == "scored" and s.score >= cfg.min_score for s in item.samples))
        scored = [s.score for s in item.samples if s.verdict == "scored"]
        if scored:
            self.best.append(max(scored))
            self.worst.append(min(scored))
        t["prompts_with_sft"] += bool(sel.sft)
        t["prompts_with_pairs"] += bool(sel.pairs)
        self.margins.extend(c.score - r.score for c, r in sel.pairs)

        base = item.passthrough()
        gold = {"gold": item.gold} if item.gold is not None and cfg.graded else {}
        out.write(
            "samples.jsonl",
            (
                {
                    "id": s.id,
                    "parent_id": item.id,
                    "sample_index": s.index,
                    "text": s.text,
                    "finish_reason": s.finish_reason,
                    "completion_tokens": s.completion_tokens,
                    "verifier": cfg.verifier,
                    "verdict": s.verdict,
                    "score": s.score,
                    "extracted": s.extracted,
                    **gold,
                    "why": s.why,
                    **({"components": s.components} if s.components else {}),
                    "in_sft": s.in_sft,
                    "sft_note": s.sft_note,
                    "pairs": s.pairs,
                }
                for s in item.samples
            ),
        )
        common = {"verifier": cfg.verifier, "model": cfg.model, "backend": self.llm.backend.name}
        out.kept.extend(
            {
                "id": s.id,
                "parent_id": item.id,
                "messages": [*item.messages, {"role": "assistant", "content": s.text}],
                **base,
                "sample_index": s.index,
                "verdict": s.verdict,
                "score": s.score,
                **({"extracted": s.extracted} if s.extracted is not None else {}),
                **common,
            }
            for s in sel.sft
        )
        method = "correct vs incorrect" if cfg.graded else "best vs worst"
        out.write(
            "preference.jsonl",
            (
                {
                    "id": pair_id(item.id, c.index, r.index),
                    "parent_id": item.id,
                    "prompt": item.messages,
                    "chosen": [{"role": "assistant", "content": c.text}],
                    "rejected": [{"role": "assistant", "content": r.text}],
                    **base,
                    "chosen_sample_index": c.index,
                    "rejected_sample_index": r.index,
                    "chosen_score": c.score,
                    "rejected_score": r.score,
                    "method": f"{cfg.verifier}: {method}",
                    **common,
                }
                for c, r in sel.pairs
            ),
        )
        if sel.reason is not None:
            out.reject(
                item.row,
                sel.reason,
                sel.detail,
                reject_outputs=sel.missing,
                sample_verdicts=dict(Counter(s.verdict for s in item.samples)),
            )

    def counts(self) -> dict:
        t, ctx = self.t, self.ctx
        return {
            "no_gold_answer": t["unverifiable"],
            "prompts": t["prompts"],
            "samples": t["samples"],
            "verdicts": dict(self.verdicts.most_common()),
            "sft": ctx.run.ledger.counts["kept"],
            "pairs": ctx.written["preference.jsonl"],
            "prompts_with_sft": t["prompts_with_sft"],
            "prompts_with_pairs": t["prompts_with_pairs"],
            "ledger": ctx.run.ledger.counts["rejected"],
            "failed_requests": self.llm.stats.failed_requests,
        }

    def balanced(self, c: dict) -> bool:
        return c["samples"] == c["prompts"] * self.cfg.n == sum(self.verdicts.values())

    def sections(self) -> dict:
        cfg, t = self.cfg, self.t
        metrics: dict = {}
        if cfg.graded or cfg.min_score is not None:
            metrics.update(pass_metrics(self.passed, cfg.n))
            if not cfg.graded:
                metrics["pass_means"] = f"score >= --min-score {cfg.min_score:g}"
        if self.best:
            metrics["scores"] = {
                "best_mean": round(sum(self.best) / len(self.best), 4),
                "worst_mean": round(sum(self.worst) / len(self.worst), 4),
            }
        if self.margins and not cfg.graded:
            metrics["pair_margin_mean"] = round(sum(self.margins) / len(self.margins), 4)
        seconds = self.ctx.run.seconds
        config = self.ctx.run.manifest["config"]
        config["keep_per_prompt"] = cfg.keep
        return {
            "metrics": metrics,
            "verifier": self.verifier.info(),
            "tokens": {
                "prompt": t["prompt_tokens"],
                "completion": t["completion_tokens"],
                "generated_now": self.llm.stats.fresh_completion_tokens,
            },
            "throughput": {
                "verify_seconds": round(self.verify_seconds, 3),
                "samples_per_s": round(t["samples"] / seconds, 2) if seconds > 0 else None,
            },
            "warnings": cfg.warnings(),
        }

    def close(self) -> None:
        if self.verifier is not None:
            self.verifier.close()

    @classmethod
    def summary(cls, m: dict) -> list[str]:
        c, met = m["counts"], m["metrics"]
        missing = "no tests" if m["config"]["verifier"] == "code" else "no gold answer"
        skipped = f" + not prompts {c['not_a_prompt']}" + (
            f" + {missing} {c['no_gold_answer']}" if c["no_gold_answer"] else ""
        )
        lines = [
            f"rows {c['input']} = prompts {c['prompts']}{skipped} + invalid {c['invalid']}",
            f"samples {c['samples']}: " + ", ".join(f"{k} {v}" for k, v in c["verdicts"].items()),
        ]
        if met.get("pass@1") is not None:
            n = m["config"]["n"]
            lines.append(
                f"pass@1 {met['pass@1']:.3f}, pass@{n} {met[f'pass@{n}']:.3f}; correct per prompt: "
                + " ".join(f"{k}:{v}" for k, v in met["correct_per_prompt"].items() if v)
            )
        if "scores" in met:
            lines.append(
                f"scores: best {met['scores']['best_mean']:g} / worst {met['scores']['worst_mean']:g} on average"
            )
        return lines


def run_reject_sample(cfg: RejectConfig, backend=None, *, judge_backend=None, verifier=None) -> dict:
    """Sample, verify and select for every prompt of `cfg.inputs` into the run directory `cfg.output`; return
    the manifest. `backend`, `judge_backend` and `verifier` may be given ready-made (tests, library callers)."""
    return run_method(RejectSample, cfg, backend=backend, judge_backend=judge_backend, verifier=verifier)

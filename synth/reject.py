"""`run_reject_sample`: rejection sampling into SFT demonstrations and preference pairs (`synth reject-sample`).

For every prompt, `n` responses are sampled (cached ones are reused) and each is judged by a verifier:

- ``math``: the response's final answer against the row's gold `answer` (`synth.verify_math`): correct or not;
- ``reward-model``: a local sequence-classification model scores every (prompt, response) (best-of-N);
- ``judge``: an LLM rates every response against the rubric in `rules/judge.yaml`;
- ``code``: runs the response's code against the row's `tests` in the sandbox (`synth.execfeedback`); with
  `generate_tests`, prompts without tests get tests written by the LLM, cross-checked against the samples.

Correct responses (or the best-scored ones) become demonstrations in `sft.jsonl`, up to `keep_per_prompt` per
prompt and without exact or near-duplicate reasoning paths (RFT keeps distinct paths). Correct responses against
incorrect ones (or best against worst, when the scores differ by at least `min_margin`) become preference pairs
with an explicit prompt in `preference.jsonl`. Every sample, with its verdict and why, is in `samples.jsonl`;
prompts that gave no demonstration or no pair are in `rejected.jsonl` with the reason; `manifest.json` holds
pass@k, the histogram of correct samples per prompt, tokens and throughput.

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

import functools
import itertools
import math
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import xxhash

from curate.io import InputError
from curate.schema import public, rejected_row
from synth.backends import Backend, ChatRequest, get_backend
from synth.generate import (
    GenerateConfig,
    NotAPrompt,
    batched,
    model_identity,
    progress_bar,
    prompt_of,
    sample_id,
)
from synth.llm import CachedLLM
from synth.parse import fill_template
from synth.verify_math import DEFAULT_TOLERANCE, NoGoldAnswer, gold_answer, sympy_version, verify

STEP = "reject-sample"
VERIFIERS = ("math", "code", "reward-model", "judge")
# Demonstrations kept per prompt unless told: distinct correct paths (RFT), or the single best (best-of-N).
DEFAULT_KEEP = {"math": 4, "code": 4, "reward-model": 1, "judge": 1}
USABLE = ("correct", "incorrect", "scored")


@dataclass
class RejectConfig(GenerateConfig):
    """Settings of one rejection-sampling run; the sampling settings are `synth generate`'s."""

    n: int = 16  # samples per prompt
    batch_size: int = 8  # prompts handed to the backend at once (x n sequences)
    verifier: str = "math"
    keep_per_prompt: int | None = None  # demonstrations per prompt; None: DEFAULT_KEEP[verifier]
    pairs_per_prompt: int = 1
    min_margin: float = 1.0  # score verifiers: best - worst needed for a pair, in the verifier's units
    min_score: float | None = None  # score verifiers: a demonstration needs at least this score
    answer_field: str = "answer"  # the gold answer column (math; the judge shows it as a reference)
    tolerance: float = DEFAULT_TOLERANCE  # math: relative tolerance for non-integer answers
    symbolic: str = "auto"  # math: sympy equivalence: auto (when installed) | on | off
    near_duplicate_threshold: float = 0.8  # estimated Jaccard at which two reasoning paths are the same
    reward_model: str | None = None  # reward-model: a local AutoModelForSequenceClassification directory
    reward_batch_size: int = 16
    reward_max_length: int = 2048
    reward_device: str = "auto"
    judge_backend: str | None = None  # judge: None = the generating backend
    judge_model: str | None = None  # judge: None = the generating model
    judge_rubric: str = "judge.yaml"  # judge: a rules file shipped in rules/ or a path
    judge_max_tokens: int = 256
    judge_retries: int = 2  # judge: new attempts (sampled) for a rating that could not be parsed
    judge_backend_options: dict | None = None  # None: the generating backend's options
    tests_field: str = "tests"  # code: the row's tests (assert lines, or HumanEval's check with entry_point)
    entry_point_field: str = "entry_point"
    generate_tests: bool = False  # code: the LLM writes tests for prompts without them
    n_tests: int = 8  # code: tests asked for per prompt when generating them
    sandbox: str = "auto"  # code: sandbox backend (auto, or unsafe to run without isolation)
    sandbox_workers: int = 2
    exec_timeout: float = 10.0  # code: wall seconds per job
    exec_memory_mb: int = 1024

    @property
    def keep(self) -> int:
        return DEFAULT_KEEP[self.verifier] if self.keep_per_prompt is None else self.keep_per_prompt

    @property
    def graded(self) -> bool:
        """True when samples are correct or not (math, code); False when they are ranked by a score."""
        return self.verifier in ("math", "code")

    def validate(self) -> None:
        super().validate()
        if self.verifier not in VERIFIERS:
            raise InputError(f"unknown --verifier {self.verifier!r} (choose from {', '.join(VERIFIERS)})")
        if self.generate_tests and self.verifier != "code":
            raise InputError("--generate-tests is for --verifier code")
        if self.n_tests < 1 or self.sandbox_workers < 1 or self.exec_timeout <= 0 or self.exec_memory_mb < 16:
            raise InputError(
                "--n-tests and --sandbox-workers must be positive, --exec-timeout > 0, --exec-memory-mb >= 16"
            )
        if self.verifier == "reward-model" and not self.reward_model:
            raise InputError(
                "--verifier reward-model needs --reward-model DIR (a sequence-classification model)"
            )
        if self.verifier == "reward-model" and not Path(self.reward_model).expanduser().exists():
            raise InputError(f"--reward-model {self.reward_model}: no such directory")
        if self.keep < 0 or self.pairs_per_prompt < 0:
            raise InputError("--keep-per-prompt and --pairs-per-prompt must be 0 or more")
        if self.min_margin < 0:
            raise InputError(f"--min-margin must be 0 or more, got {self.min_margin}")
        if not 0 < self.near_duplicate_threshold <= 1:
            raise InputError(
                f"--near-duplicate-threshold must be in (0, 1], got {self.near_duplicate_threshold}"
            )
        if self.tolerance < 0:
            raise InputError(f"--tolerance must be 0 or more, got {self.tolerance}")
        if self.symbolic not in ("auto", "on", "off"):
            raise InputError(f"--symbolic must be auto, on or off, not {self.symbolic!r}")
        if self.symbolic == "on" and sympy_version() is None:
            raise InputError("--symbolic on needs sympy (pip install sympy), or use --symbolic auto/off")
        if self.judge_backend not in (None, "hf", "openai", "vllm"):
            raise InputError(f"unknown --judge-backend {self.judge_backend!r} (choose from hf, openai, vllm)")
        if self.judge_max_tokens < 1 or self.judge_retries < 0 or self.reward_batch_size < 1:
            raise InputError(
                "--judge-max-tokens and --reward-batch-size must be positive, --judge-retries >= 0"
            )

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


# --- samples and prompts -----------------------------------------------------------------------------------


@dataclass
class Sample:
    """One sampled response and what the verifier and the selection made of it (a row of samples.jsonl)."""

    index: int
    id: str
    text: str | None
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    verdict: str = "pending"  # correct | incorrect | scored | unscored | failed | truncated | empty
    score: float | None = None
    extracted: str | None = None
    why: str = ""
    in_sft: bool = False
    sft_note: str | None = None  # why a candidate demonstration is not in sft.jsonl
    pairs: int = 0

    @property
    def pending(self) -> bool:
        return self.verdict == "pending"

    @classmethod
    def of(cls, parent_id: str, index: int, comp, error: str | None, cfg) -> Sample:
        """A sample from its completion (None when generation failed): failed, truncated (unless
        `cfg.keep_truncated`) and empty answers get their verdict here; the rest stay pending for a verifier."""
        s = cls(index, sample_id(parent_id, index), None if comp is None else comp.text)
        if comp is None:
            s.verdict, s.why = "failed", f"generation failed: {error or 'no completion'}"
            return s
        s.finish_reason = comp.finish_reason
        s.prompt_tokens, s.completion_tokens = comp.prompt_tokens, comp.completion_tokens
        if comp.finish_reason == "length" and not cfg.keep_truncated:
            s.verdict, s.why = "truncated", f"hit --max-tokens {cfg.max_tokens} before the end of the answer"
        elif not comp.text.strip():
            s.verdict, s.why = "empty", "the model answered with nothing"
        return s


@dataclass
class PromptItem:
    row: dict
    id: str
    messages: list[dict]
    previous: str | None
    gold: str | None
    samples: list[Sample] = field(default_factory=list)
    notes: dict = field(default_factory=dict)  # what the verifier adds to the prompt's output rows


def _conversation_text(messages: list[dict]) -> str:
    if len(messages) == 1:
        return messages[0]["content"]
    return "\n\n".join(f"{m['role'].capitalize()}: {m['content']}" for m in messages)


# --- verifiers: each sets verdict, score, extracted and why on the pending samples of a batch ----------------


class MathVerifier:
    """Correct when the response's final answer equals the row's gold answer (see `synth.verify_math`)."""

    name = "math"

    def __init__(
        self, *, answer_field: str = "answer", tolerance: float = DEFAULT_TOLERANCE, symbolic: str = "auto"
    ):
        self.answer_field = answer_field
        self.tolerance = tolerance
        self.symbolic = symbolic != "off" and sympy_version() is not None

    def check(self, row: dict) -> tuple[str | None, str | None]:
        """The gold answer, or (None, why the row cannot be verified)."""
        try:
            return gold_answer(row.get(self.answer_field)), None
        except NoGoldAnswer as e:
            return None, f"{e} in field '{self.answer_field}'"

    def verify(self, items: list[PromptItem]) -> None:
        for item in items:
            for s in item.samples:
                if s.pending:
                    v = verify(s.text, item.gold, tolerance=self.tolerance, symbolic=self.symbolic)
                    s.verdict = "correct" if v.correct else "incorrect"
                    s.score = 1.0 if v.correct else 0.0
                    s.extracted, s.why = v.extracted, v.why

    def info(self) -> dict:
        return {
            "name": self.name,
            "answer_field": self.answer_field,
            "tolerance": self.tolerance,
            "symbolic": f"sympy {sympy_version()}" if self.symbolic else "off",
        }

    def close(self) -> None:
        pass


class RewardModelVerifier:
    """Best-of-N: a local sequence-classification model (one output) scores every (prompt, response)."""

    name = "reward-model"

    def __init__(self, path: str, *, device: str = "auto", batch_size: int = 16, max_length: int = 2048):
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.path = str(path)
        self.batch_size = batch_size
        self.max_length = max_length
        self.device = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(self.path)
            self.model = AutoModelForSequenceClassification.from_pretrained(self.path).to(self.device).eval()
        except (OSError, ValueError) as e:
            raise InputError(
                f"--reward-model {self.path}: cannot load a sequence-classification model ({e})"
            ) from None
        if self.model.config.num_labels != 1:
            raise InputError(
                f"--reward-model {self.path}: has {self.model.config.num_labels} outputs; a reward model has one "
                "(num_labels=1)"
            )
        if not self.tokenizer.chat_template:
            raise InputError(
                f"--reward-model {self.path}: its tokenizer has no chat template to render conversations"
            )
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model.config.pad_token_id = self.tokenizer.pad_token_id
        self.tokenizer.padding_side = "right"
        self.tokenizer.truncation_side = "left"  # a long conversation keeps the response it is scoring

    def check(self, row: dict) -> tuple[None, None]:
        return None, None

    def score(self, conversations: list[list[dict]]) -> list[float]:
        import torch

        texts = [self.tokenizer.apply_chat_template(c, tokenize=False) for c in conversations]
        out: list[float] = []
        for start in range(0, len(texts), self.batch_size):
            enc = self.tokenizer(
                texts[start : start + self.batch_size],
                add_special_tokens=False,  # the chat template already holds BOS where the model has one
                padding=True,
                truncation=True,
                max_length=self.max_length,
                return_tensors="pt",
            ).to(self.device)
            with torch.no_grad():
                out.extend(self.model(**enc).logits[:, 0].float().tolist())
        return out

    def verify(self, items: list[PromptItem]) -> None:
        todo = [(item, s) for item in items for s in item.samples if s.pending]
        scores = self.score([[*item.messages, {"role": "assistant", "content": s.text}] for item, s in todo])
        for (_, s), value in zip(todo, scores, strict=True):
            s.verdict, s.score = "scored", round(value, 6)
            s.why = f"reward model score {value:.4g}"

    def info(self) -> dict:
        return {
            "name": self.name,
            "reward_model": self.path,
            "model_identity": model_identity("hf", self.path),
            "device": self.device,
            "max_length": self.max_length,
        }

    def close(self) -> None:
        pass


def load_rubric(name: str) -> dict:
    """The judge's rubric and prompt (`rules/judge.yaml` or a user's own file), checked."""
    import yaml

    from rules import load_rules, rules_path

    try:
        rubric = load_rules(name)
    except (ValueError, yaml.YAMLError) as e:
        raise InputError(f"--judge-rubric {name}: {' '.join(str(e).split())}") from None
    where = rules_path(name)
    for key in ("scale", "system", "template"):
        if key not in rubric:
            raise InputError(f"{where}: missing '{key}'")
    scale = rubric["scale"]
    if not isinstance(scale, dict) or not all(isinstance(scale.get(k), int | float) for k in ("min", "max")):
        raise InputError(f"{where}: 'scale' needs numeric 'min' and 'max'")
    if scale["min"] >= scale["max"]:
        raise InputError(f"{where}: scale min {scale['min']} is not below max {scale['max']}")
    for placeholder in ("{question}", "{response}"):
        if placeholder not in rubric["template"]:
            raise InputError(f"{where}: the template has no {placeholder}")
    return {**rubric, "_path": str(where)}


class JudgeError(ValueError):
    pass


def parse_rating(text: str, *, field: str = "score", low: float = 1, high: float = 10) -> tuple[float, str]:
    """The judge's score (and reason) from its answer: JSON when it can be found, else "score: 7" or "7/10".

    >>> parse_rating('```json\\n{"score": 8, "reason": "right, but terse",}\\n```')
    (8.0, 'right, but terse')
    >>> parse_rating("I would give it 6/10.")
    (6.0, '')
    """
    from synth.parse import ParseError, parse_json

    value, reason = None, ""
    try:
        obj = parse_json(text, expect=dict)
        value = obj.get(field, obj.get("rating"))
        reason = str(obj.get("reason") or obj.get("explanation") or "")
    except ParseError:
        pass
    if value is None and text:
        number = r"(-?\d+(?:\.\d+)?)"
        m = re.search(
            rf"(?i)\b(?:{re.escape(field)}|rating)\b\W{{0,3}}\s*[:=]?\s*{number}", text
        ) or re.search(rf"{number}\s*/\s*{high:g}\b", text)
        value = m.group(1) if m else None
    if value is None:
        snippet = " ".join((text or "").split())[:80]
        raise JudgeError(f"no {field} in the judge's answer: {snippet!r}")
    try:
        score = float(value)
    except (TypeError, ValueError):
        raise JudgeError(f"the judge's {field} is not a number: {value!r}") from None
    if not math.isfinite(score) or not low <= score <= high:
        raise JudgeError(f"the judge's {field} {value} is outside the scale {low:g}-{high:g}")
    return score, reason


class JudgeVerifier:
    """An LLM rates each response against a rubric; an unusable rating is asked again, then recorded."""

    name = "judge"

    def __init__(
        self,
        llm: CachedLLM,
        rubric: dict,
        *,
        answer_field: str = "answer",
        max_tokens: int = 256,
        retries: int = 2,
        seed: int | None = None,
    ):
        self.llm = llm
        self.rubric = rubric
        self.answer_field = answer_field
        self.max_tokens = max_tokens
        self.retries = retries
        self.seed = seed
        self.low, self.high = rubric["scale"]["min"], rubric["scale"]["max"]
        self.field = rubric.get("score_field", "score")
        self.prompt_tokens = 0
        self.completion_tokens = 0

    def check(self, row: dict) -> tuple[str | None, None]:
        """The reference answer shown to the judge, when the row has one (rows without one are judged too)."""
        try:
            return gold_answer(row.get(self.answer_field)), None
        except NoGoldAnswer:
            return None, None

    def messages(self, item: PromptItem, response: str) -> list[dict]:
        r = self.rubric
        reference = fill_template(r.get("reference", ""), answer=item.gold) if item.gold is not None else ""
        user = fill_template(
            r["template"],
            rubric=str(r.get("rubric", "")).strip(),
            question=_conversation_text(item.messages),
            reference=reference,
            response=response,
            min=f"{self.low:g}",
            max=f"{self.high:g}",
        )
        return [{"role": "system", "content": r["system"].strip()}, {"role": "user", "content": user}]

    def request(self, messages: list[dict], attempt: int) -> ChatRequest:
        # The first rating is greedy; a retry samples, so that it can differ (and has its own cache entry).
        return ChatRequest(
            messages,
            n=1,
            temperature=0.0 if attempt == 0 else 0.7,
            max_tokens=self.max_tokens,
            seed=self.seed if attempt == 0 else attempt,
        )

    def verify(self, items: list[PromptItem]) -> None:
        todo = [(s, self.messages(item, s.text)) for item in items for s in item.samples if s.pending]
        errors: dict[int, str] = {}
        for attempt in range(self.retries + 1):
            if not todo:
                break
            results = self.llm.complete_each([self.request(msgs, attempt) for _, msgs in todo])
            left = []
            for (s, msgs), (comps, error) in zip(todo, results, strict=True):
                comp = comps[0]
                if comp is None:
                    errors[id(s)] = f"judge request failed: {error}"
                    left.append((s, msgs))
                    continue
                self.prompt_tokens += comp.prompt_tokens or 0
                self.completion_tokens += comp.completion_tokens or 0
                try:
                    score, reason = parse_rating(comp.text, field=self.field, low=self.low, high=self.high)
                except JudgeError as e:
                    errors[id(s)] = str(e)
                    left.append((s, msgs))
                    continue
                s.verdict, s.score = "scored", score
                s.why = f"judge: {score:g}/{self.high:g}" + (f" ({reason})" if reason else "")
            todo = left
        for s, _ in todo:
            s.verdict = "unscored"
            s.why = f"no usable rating after {self.retries + 1} attempt(s): {errors[id(s)]}"

    def info(self) -> dict:
        return {
            "name": self.name,
            "judge_backend": self.llm.backend.name,
            "judge_model": self.llm.model_id,
            "rubric": self.rubric["_path"],
            "rubric_xxh3_64": xxhash.xxh3_64_hexdigest(Path(self.rubric["_path"]).read_bytes()),
            "scale": [self.low, self.high],
            "retries": self.retries,
            "tokens": {"prompt": self.prompt_tokens, "completion": self.completion_tokens},
            "llm": self.llm.stats.as_dict(),
        }

    def close(self) -> None:
        pass


# --- choosing demonstrations and pairs ----------------------------------------------------------------------


def distinct(samples: list[Sample], *, near_threshold: float | None) -> tuple[list[Sample], dict[int, str]]:
    """The samples that are not exact (or, with `near_threshold`, near) duplicates of an earlier one, in order,
    and for each dropped sample index the one it repeats. Uses curate's dedup filters on the response text."""
    if len(samples) < 2:
        return list(samples), {}
    from curate.filters.dedup import ExactDedupFilter, NearDedupFilter
    from curate.pipeline import to_frame

    by_id = {s.id: s for s in samples}
    notes: dict[int, str] = {}
    kept = list(samples)
    steps = [("exact duplicate", ExactDedupFilter())]
    if near_threshold is not None:
        steps.append(("near duplicate", NearDedupFilter(threshold=near_threshold)))
    for label, step in steps:
        if len(kept) < 2:
            break
        frame = to_frame(
            [
                {
                    "id": s.id,
                    "_kind": "conversation",
                    "messages": [{"role": "assistant", "content": s.text.strip()}],
                }
                for s in kept
            ]
        )
        verdict = step.verdict(frame)
        survivors = []
        for s, reason, detail in zip(kept, verdict["reason"], verdict["detail"], strict=True):
            if reason is None:
                survivors.append(s)
                continue
            ref = detail.split("duplicate of ", 1)[1].split(" (", 1)[0]
            extra = detail.split(" (", 1)[1].rstrip(")") if " (" in detail else ""
            notes[s.index] = f"{label} of sample {by_id[ref].index}" + (f" ({extra})" if extra else "")
        kept = survivors
    return kept, notes


def spread_pairs(n_chosen: int, n_rejected: int, limit: int) -> list[tuple[int, int]]:
    """Up to `limit` distinct (chosen, rejected) index pairs, each using the samples used least so far.

    >>> spread_pairs(2, 3, 4)
    [(0, 0), (1, 1), (0, 2), (1, 0)]
    """
    used_c, used_r = Counter(), Counter()
    out: list[tuple[int, int]] = []
    free = set(itertools.product(range(n_chosen), range(n_rejected)))
    while free and len(out) < limit:
        c, r = min(free, key=lambda p: (used_c[p[0]] + used_r[p[1]], p))
        free.discard((c, r))
        used_c[c] += 1
        used_r[r] += 1
        out.append((c, r))
    return out


@dataclass
class Selection:
    sft: list[Sample]
    pairs: list[tuple[Sample, Sample]]
    reason: str | None = None  # why the prompt gave no demonstration or no pair (the ledger)
    detail: str | None = None
    missing: list[str] = field(default_factory=list)


def _answers_summary(samples: list[Sample]) -> str:
    counts = Counter(s.extracted if s.extracted is not None else "none" for s in samples)
    return ", ".join(f"{a} x{k}" for a, k in counts.most_common(5)) + (" ..." if len(counts) > 5 else "")


def _unusable_summary(samples: list[Sample]) -> str:
    counts = Counter(s.verdict for s in samples)
    out = ", ".join(f"{k} {v}" for k, v in counts.most_common())
    first = next((s.why for s in samples if s.verdict == "failed"), None)
    return out + (f" (first failure: {first})" if first else "")


def select(item: PromptItem, cfg: RejectConfig) -> Selection:
    """The demonstrations and pairs of one prompt, and the notes on the samples left out."""
    samples = item.samples
    usable = [s for s in samples if s.verdict in USABLE]
    if cfg.graded:
        good = [s for s in usable if s.verdict == "correct"]
        bad = [s for s in usable if s.verdict == "incorrect"]
    else:
        ranked = sorted(usable, key=lambda s: (-s.score, s.index))
        good = [s for s in ranked if cfg.min_score is None or s.score >= cfg.min_score]
        bad = []
        for s in usable:
            if cfg.min_score is not None and s.score < cfg.min_score:
                s.sft_note = f"score {s.score:g} below --min-score {cfg.min_score:g}"

    # Demonstrations: the first distinct good samples (by index, or by score).
    good_distinct, notes = distinct(good, near_threshold=cfg.near_duplicate_threshold)
    for s in good:
        if s.index in notes:
            s.sft_note = notes[s.index]
    sft = good_distinct[: cfg.keep]
    for s in good_distinct[cfg.keep :]:
        s.sft_note = f"beyond --keep-per-prompt {cfg.keep}"
    for s in sft:
        s.in_sft = True

    # Pairs.
    pairs: list[tuple[Sample, Sample]] = []
    contrast = None
    if cfg.graded:
        chosen_pool = good_distinct
        rejected_pool, _ = distinct(bad, near_threshold=None)
        for c, r in spread_pairs(len(chosen_pool), len(rejected_pool), cfg.pairs_per_prompt):
            pairs.append((chosen_pool[c], rejected_pool[r]))
    else:
        pool, _ = distinct(ranked, near_threshold=None)
        for i in range(cfg.pairs_per_prompt):
            j = len(pool) - 1 - i
            if i >= j:
                break
            margin = pool[i].score - pool[j].score
            if margin <= 0 or margin < cfg.min_margin:
                break
            pairs.append((pool[i], pool[j]))
        if len(pool) < 2:
            contrast = f"{len(pool)} distinct scored sample(s): nothing to contrast"
        else:
            margin = pool[0].score - pool[-1].score
            contrast = (
                f"best {pool[0].score:g} - worst {pool[-1].score:g} = {margin:g}, below --min-margin {cfg.min_margin:g}"
                if margin < cfg.min_margin or margin <= 0
                else None
            )
    for c, r in pairs:
        c.pairs += 1
        r.pairs += 1

    missing = [name for name, rows in (("sft.jsonl", sft), ("preference.jsonl", pairs)) if not rows]
    if cfg.keep == 0:
        missing = [m for m in missing if m != "sft.jsonl"]
    if cfg.pairs_per_prompt == 0:
        missing = [m for m in missing if m != "preference.jsonl"]
    sel = Selection(sft, pairs, missing=missing)
    if not missing:
        return sel
    n = len(samples)
    if not usable:
        sel.reason = "no_usable_sample"
        sel.detail = f"none of the {n} samples could be verified: {_unusable_summary(samples)}"
    elif cfg.graded and not good:
        sel.reason = "no_correct_sample"
        given = f"gold {item.gold}; answers given" if cfg.verifier == "math" else "results"
        sel.detail = f"0 of {n} samples correct ({given}: {_answers_summary(usable)})"
    elif cfg.graded and not bad and "preference.jsonl" in missing:
        sel.reason = "no_incorrect_sample"
        sel.detail = f"all {len(usable)} verified samples are correct: nothing to contrast ({len(sft)} kept in sft.jsonl)"
    elif not cfg.graded and not good and "sft.jsonl" in missing:
        sel.reason = "below_min_score"
        best = max(s.score for s in usable)
        sel.detail = f"best score {best:g} is below --min-score {cfg.min_score:g}" + (
            f"; {contrast}" if contrast else ""
        )
    elif "preference.jsonl" in missing:
        sel.reason = "no_contrast"
        sel.detail = contrast or "no pair could be formed"
    else:
        sel.reason = "no_demonstration"
        sel.detail = "no sample could be kept as a demonstration"
    return sel


# --- metrics ------------------------------------------------------------------------------------------------


def pass_at_k(n: int, c: int, k: int) -> float:
    """The unbiased estimate of pass@k from n samples of which c are correct (Chen et al., 2021)."""
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def pass_metrics(correct_counts: list[int], n: int) -> dict:
    ks = sorted({1, n} | {2**i for i in range(1, n.bit_length()) if 2**i <= n})
    if not correct_counts:
        return {"pass@1": None, f"pass@{n}": None, "pass_at_k": {}, "correct_per_prompt": {}}
    per_k = {k: sum(pass_at_k(n, c, k) for c in correct_counts) / len(correct_counts) for k in ks}
    hist = Counter(correct_counts)
    return {
        "pass@1": round(per_k[1], 4),
        f"pass@{n}": round(per_k[n], 4),
        "pass_at_k": {str(k): round(v, 4) for k, v in per_k.items()},
        "correct_per_prompt": {str(c): hist.get(c, 0) for c in range(n + 1)},
        "mean_correct_per_prompt": round(sum(correct_counts) / len(correct_counts), 3),
    }


# --- the run ------------------------------------------------------------------------------------------------


@dataclass
class _Totals:
    prompts: int = 0
    not_a_prompt: int = 0
    unverifiable: int = 0
    samples: int = 0
    verdicts: Counter = field(default_factory=Counter)
    reasons: Counter = field(default_factory=Counter)
    prompts_with_sft: int = 0
    prompts_with_pairs: int = 0
    passed: list[int] = field(default_factory=list)  # correct (or >= --min-score) samples per prompt
    best: list[float] = field(default_factory=list)
    worst: list[float] = field(default_factory=list)
    margins: list[float] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    verify_seconds: float = 0.0


_reject_row = functools.partial(rejected_row, step=STEP)


def pair_id(parent: str, chosen: int, rejected: int) -> str:
    return xxhash.xxh3_128_hexdigest(
        orjson.dumps(
            {"parent_id": parent, "chosen": chosen, "rejected": rejected}, option=orjson.OPT_SORT_KEYS
        )
    )


class _Sampler:
    """One run: sampling through the cache, verifying, selecting and writing the rows that come out."""

    def __init__(self, cfg: RejectConfig, run, verifier):
        self.cfg = cfg
        self.backend = run.backend
        self.verifier = verifier
        self.ledger = run.ledger
        self.llm = run.llm
        self.samples_out = run.writer("samples.jsonl")
        self.pairs_out = run.writer("preference.jsonl")
        self.t = _Totals()

    def run_batch(self, rows: list[dict]) -> None:
        cfg, t = self.cfg, self.t
        items: list[PromptItem] = []
        for row in rows:
            try:
                messages, previous = prompt_of(row, cfg.system_prompt)
            except NotAPrompt as e:
                t.not_a_prompt += 1
                t.reasons["not_a_prompt"] += 1
                self.ledger.rejected([_reject_row(public(row), "not_a_prompt", str(e))])
                continue
            gold, problem = self.verifier.check(row)
            if problem is not None:
                reason = getattr(self.verifier, "missing_reason", "no_gold_answer")
                t.unverifiable += 1
                t.reasons[reason] += 1
                self.ledger.rejected([_reject_row(public(row), reason, problem + "; not sampled")])
                continue
            items.append(PromptItem(row, str(row["id"]), messages, previous, gold))
        if not items:
            return
        results = self.llm.complete_each([cfg.request(it.messages) for it in items])
        for item, (comps, error) in zip(items, results, strict=True):
            item.samples.extend(Sample.of(item.id, i, comp, error, cfg) for i, comp in enumerate(comps))
        t0 = time.perf_counter()
        self.verifier.verify(items)
        t.verify_seconds += time.perf_counter() - t0
        for item in items:
            self._write(item)

    def _write(self, item: PromptItem) -> None:
        cfg, t = self.cfg, self.t
        sel = select(item, cfg)
        t.prompts += 1
        t.samples += len(item.samples)
        t.verdicts.update(s.verdict for s in item.samples)
        with_tokens = [s for s in item.samples if s.prompt_tokens is not None]
        t.prompt_tokens += with_tokens[0].prompt_tokens if with_tokens else 0
        t.completion_tokens += sum(s.completion_tokens or 0 for s in item.samples)
        if cfg.graded:
            t.passed.append(sum(s.verdict == "correct" for s in item.samples))
        elif cfg.min_score is not None:
            t.passed.append(sum(s.verdict == "scored" and s.score >= cfg.min_score for s in item.samples))
        scored = [s.score for s in item.samples if s.verdict == "scored"]
        if scored:
            t.best.append(max(scored))
            t.worst.append(min(scored))
        t.prompts_with_sft += bool(sel.sft)
        t.prompts_with_pairs += bool(sel.pairs)
        t.margins.extend(c.score - r.score for c, r in sel.pairs)

        base = public(item.row)
        base.pop("id", None)
        base.pop("messages", None)
        if item.previous is not None:
            base["previous_response"] = item.previous
        base.update(item.notes)
        gold = {"gold": item.gold} if item.gold is not None and cfg.verifier == "math" else {}
        self.samples_out.write_many(
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
                "in_sft": s.in_sft,
                "sft_note": s.sft_note,
                "pairs": s.pairs,
            }
            for s in item.samples
        )
        common = {"verifier": cfg.verifier, "model": cfg.model, "backend": self.backend.name}
        self.ledger.kept(
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
        self.pairs_out.write_many(
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
        )
        if sel.reason is not None:
            t.reasons[sel.reason] += 1
            self.ledger.rejected(
                [
                    _reject_row(
                        public(item.row),
                        sel.reason,
                        sel.detail,
                        reject_outputs=sel.missing,
                        sample_verdicts=dict(Counter(s.verdict for s in item.samples)),
                    )
                ]
            )


def build_verifier(cfg: RejectConfig, backend: Backend, cache, *, judge_backend: Backend | None = None):
    """The verifier `cfg.verifier` names (the judge reuses the generating backend when it is the same model)."""
    if cfg.verifier == "math":
        return MathVerifier(answer_field=cfg.answer_field, tolerance=cfg.tolerance, symbolic=cfg.symbolic)
    if cfg.verifier == "code":
        from synth.execfeedback import CodeVerifier, SandboxSettings

        settings = SandboxSettings.of(cfg)
        llm = (
            CachedLLM(backend, cache, model_identity(cfg.backend, cfg.model)) if cfg.generate_tests else None
        )
        return CodeVerifier(
            settings,
            tests_field=cfg.tests_field,
            entry_point_field=cfg.entry_point_field,
            llm=llm,
            n_tests=cfg.n_tests,
            seed=cfg.seed,
        )
    if cfg.verifier == "reward-model":
        return RewardModelVerifier(
            cfg.reward_model,
            device=cfg.reward_device,
            batch_size=cfg.reward_batch_size,
            max_length=cfg.reward_max_length,
        )
    rubric = load_rubric(cfg.judge_rubric)
    name, model = cfg.judge_backend or cfg.backend, cfg.judge_model or cfg.model
    if judge_backend is None:
        if (name, model) == (cfg.backend, cfg.model) and cfg.judge_backend_options is None:
            judge_backend = backend
        else:
            options = cfg.backend_options if cfg.judge_backend_options is None else cfg.judge_backend_options
            judge_backend = get_backend(name, model=model, **options)
    llm = CachedLLM(judge_backend, cache, model_identity(name, model))
    return JudgeVerifier(
        llm,
        rubric,
        answer_field=cfg.answer_field,
        max_tokens=cfg.judge_max_tokens,
        retries=cfg.judge_retries,
        seed=cfg.seed,
    )


def run_reject_sample(
    cfg: RejectConfig,
    backend: Backend | None = None,
    *,
    judge_backend: Backend | None = None,
    verifier=None,
) -> dict:
    """Sample, verify and select for every prompt of `cfg.inputs` into the run directory `cfg.output`; return
    the manifest. `backend`, `judge_backend` and `verifier` may be given ready-made (tests, library callers)."""
    from synth.run import SynthRun

    with SynthRun(cfg, "synth reject-sample", main="sft.jsonl", backend=backend) as run:
        run.manifest["config"]["keep_per_prompt"] = cfg.keep
        if verifier is None:
            verifier = build_verifier(cfg, run.backend, run.cache, judge_backend=judge_backend)
            if isinstance(verifier, JudgeVerifier) and verifier.llm.backend not in (
                run.backend,
                judge_backend,
            ):
                run.on_close(verifier.llm.backend)
        run.on_close(verifier)
        run.load_seconds = run.seconds
        sampler = _Sampler(cfg, run, verifier)
        with progress_bar(cfg, desc=STEP) as bar:
            for batch in batched(run.reader, cfg.batch_size):
                sampler.run_batch(batch)
                bar.update(run.reader.count - bar.n)
                if sampler.t.passed:
                    bar.set_postfix_str(
                        f"pass@1 {sum(sampler.t.passed) / (len(sampler.t.passed) * cfg.n):.2f}",
                        refresh=False,
                    )
        t, llm = sampler.t, sampler.llm.stats
        seconds = run.seconds
        counts = {
            "input": run.reader.count,
            "invalid": len(run.reader.invalid),
            "not_a_prompt": t.not_a_prompt,
            "no_gold_answer": t.unverifiable,
            "prompts": t.prompts,
            "samples": t.samples,
            "verdicts": dict(t.verdicts.most_common()),
            "sft": run.ledger.counts["kept"],
            "pairs": sampler.pairs_out.count,
            "prompts_with_sft": t.prompts_with_sft,
            "prompts_with_pairs": t.prompts_with_pairs,
            "ledger": run.ledger.counts["rejected"],
            "failed_requests": llm.failed_requests,
        }
        counts["balanced"] = counts["input"] == counts["invalid"] + counts["not_a_prompt"] + counts[
            "no_gold_answer"
        ] + counts["prompts"] and counts["samples"] == t.prompts * cfg.n == sum(t.verdicts.values())
        metrics: dict = {}
        if cfg.graded or cfg.min_score is not None:
            metrics.update(pass_metrics(t.passed, cfg.n))
            if not cfg.graded:
                metrics["pass_means"] = f"score >= --min-score {cfg.min_score:g}"
        if t.best:
            metrics["scores"] = {
                "best_mean": round(sum(t.best) / len(t.best), 4),
                "worst_mean": round(sum(t.worst) / len(t.worst), 4),
            }
        if t.margins and not cfg.graded:
            metrics["pair_margin_mean"] = round(sum(t.margins) / len(t.margins), 4)
        return run.finish(
            counts=counts,
            metrics=metrics,
            reasons=dict(t.reasons.most_common()),
            verifier=verifier.info(),
            tokens={
                "prompt": t.prompt_tokens,
                "completion": t.completion_tokens,
                "generated_now": llm.fresh_completion_tokens,
            },
            throughput={
                "verify_seconds": round(t.verify_seconds, 3),
                "samples_per_s": round(t.samples / seconds, 2) if seconds > 0 else None,
            },
            warnings=cfg.warnings(),
            outputs={
                "samples": "samples.jsonl",
                "sft": "sft.jsonl",
                "preference": "preference.jsonl",
                "rejected": "rejected.jsonl",
                "invalid": "invalid.jsonl",
            },
        )


__all__ = [
    "RejectConfig",
    "run_reject_sample",
    "MathVerifier",
    "RewardModelVerifier",
    "JudgeVerifier",
    "parse_rating",
    "pass_at_k",
    "select",
    "spread_pairs",
]

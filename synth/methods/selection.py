"""Samples of a prompt, their verdicts, and what is kept of them: demonstrations (distinct correct or best
responses) and preference pairs (correct against incorrect, or best against worst). Shared by the methods
that sample and verify (`reject-sample`, `autoif`).

>>> spread_pairs(2, 3, 4)
[(0, 0), (1, 1), (0, 2), (1, 0)]
"""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass, field

from curate.metrics import pass_at_k
from synth.methods.generate import Prompt, sample_verdict
from synth.prompts import derived_id, sample_id

USABLE = ("correct", "incorrect", "scored")


@dataclass
class Sample:
    """One sampled response and what the verifier and the selection made of it (a row of samples.jsonl)."""

    index: int
    id: str
    text: str | None
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    verdict: str = "pending"  # correct | incorrect | partial | scored | unscored | failed | truncated | empty
    score: float | None = None
    extracted: str | None = None
    why: str = ""
    in_sft: bool = False
    sft_note: str | None = None  # why a candidate demonstration is not in sft.jsonl
    pairs: int = 0
    components: dict | None = None  # the verdicts a composed verifier was made of
    facts: dict | None = None

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
        unusable = sample_verdict(comp, cfg)
        if unusable is not None:
            s.verdict = {"empty_completion": "empty"}.get(unusable[0], unusable[0])
            s.why = unusable[1]
        return s

    def take(self, verdict) -> None:
        """Record a verifier's `Verdict`."""
        self.verdict, self.score, self.extracted, self.why = (
            verdict.verdict,
            verdict.score,
            verdict.extracted,
            verdict.detail,
        )
        if verdict.components:
            self.components = {k: v.as_dict() for k, v in verdict.components.items()}
        self.facts = verdict.facts


@dataclass
class PromptItem:
    """A prompt, its samples, and what the verifier noted for the prompt's output rows."""

    row: dict
    id: str
    messages: list[dict]
    previous: str | None
    gold: str | None  # the row's reference answer as the verifier reads it
    samples: list[Sample] = field(default_factory=list)
    notes: dict = field(default_factory=dict)

    @classmethod
    def of(cls, prompt: Prompt, gold: str | None = None, item_id: str | None = None) -> PromptItem:
        return cls(prompt.row, item_id or prompt.id, prompt.messages, prompt.previous, gold)

    def passthrough(self) -> dict:
        """The prompt row's own columns for the rows derived from it, and what the verifier noted."""
        base = Prompt(self.row, self.messages, self.previous).passthrough()
        base.update(self.notes)
        return base


def pair_id(parent: str, chosen: int, rejected: int) -> str:
    return derived_id(parent, chosen=chosen, rejected=rejected)


def verify_samples(verifier, items: list[PromptItem]) -> None:
    """Run `verifier` over the pending samples of `items` and record its verdicts on them."""
    from synth.verifiers import Task

    todo = [(it, [s for s in it.samples if s.pending]) for it in items]
    todo = [(it, pending) for it, pending in todo if pending]
    if not todo:
        return
    tasks = [Task(it.row, it.messages, [s.text for s in pending], it.notes) for it, pending in todo]
    for (_, pending), verdicts in zip(todo, verifier.verify(tasks), strict=True):
        for s, v in zip(pending, verdicts, strict=True):
            s.take(v)


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
    """Up to `limit` distinct (chosen, rejected) index pairs, each using the samples used least so far."""
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


def select(item: PromptItem, cfg) -> Selection:
    """The demonstrations and pairs of one prompt, and the notes on the samples left out."""
    samples = item.samples
    usable = [s for s in samples if s.verdict in USABLE]
    if cfg.graded:
        good = [s for s in usable if s.verdict == "correct"]
        bad = [s for s in usable if s.verdict == "incorrect"]
    else:
        # Scores rank; a sample an earlier stage of a chain rejected ("incorrect") ranks below every scored one
        # and is never a demonstration.
        ranked = sorted(usable, key=lambda s: (s.verdict == "incorrect", -s.score, s.index))
        good = [
            s
            for s in ranked
            if s.verdict != "incorrect" and (cfg.min_score is None or s.score >= cfg.min_score)
        ]
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
        given = f"gold {item.gold}; answers given" if item.gold is not None else "results"
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


# --- metrics ---


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

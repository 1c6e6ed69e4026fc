"""`judge`: an LLM rates each completion against a rubric (`rules/judge.yaml`, or a user's own file).

The rubric's template is filled with the conversation, the reference answer (when the row has one) and the
response; the judge answers JSON with a score on the rubric's scale. An unusable rating is asked again
(sampled), then recorded as `unscored`. The response is data, not instructions: lines of it that imitate
the template's delimiters are neutralised before it is shown, and the rubric tells the judge so.

>>> parse_rating('```json\\n{"score": 8, "reason": "right, but terse",}\\n```')
(8.0, 'right, but terse')
>>> parse_rating("I would give it 6/10.")
(6.0, '')
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import xxhash

from curate.io import InputError
from rules import fill
from synth.backends import ChatRequest
from synth.config import BACKEND_CHOICES, setting, settings
from synth.verifiers import Task, Verdict, Verifier
from synth.verifiers.math import NoGoldAnswer, gold_answer


@settings
class JudgeSettings:
    judge_model: str | None = setting(None, "judge: the judging model [default: --model].")
    judge_backend: str | None = setting(
        None,
        "judge: its backend [default: --backend]; it shares the backend options (--base-url, --device...).",
        choices=BACKEND_CHOICES,
    )
    judge_rubric: str = setting(
        "judge.yaml", "judge: rubric and prompt, a shipped rules file or your own YAML."
    )
    judge_max_tokens: int = setting(256, "judge: longest rating, in tokens.", min=1)
    judge_retries: int = setting(
        2, "judge: new attempts (sampled) for a rating that could not be parsed.", min=0
    )
    judge_reference_field: str | None = setting(
        None,
        "judge: column shown to the judge as the reference, as it is [default: the gold answer, --answer-field].",
    )


def conversation_text(messages: list[dict]) -> str:
    if len(messages) == 1:
        return messages[0]["content"]
    return "\n\n".join(f"{m['role'].capitalize()}: {m['content']}" for m in messages)


_DELIMITER = re.compile(r"^\s*\[(end of )?(conversation|response|reference answer)\]\s*$", re.I | re.M)


def neutralise(text: str) -> str:
    """A response's lines that imitate the template's delimiters, made harmless ("[Response]" -> "(Response)")."""
    return _DELIMITER.sub(lambda m: m.group(0).replace("[", "(").replace("]", ")"), text)


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
    """The judge's score (and reason) from its answer: JSON when it can be found, else "score: 7" or "7/10"."""
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


class JudgeVerifier(Verifier):
    """An LLM rates each response against a rubric; an unusable rating is asked again, then recorded."""

    name = "judge"
    graded = False
    Settings = JudgeSettings

    def __init__(self, settings, ctx, *, llm=None):
        super().__init__(settings, ctx)
        s = settings
        self.rubric = load_rubric(s.judge_rubric)
        backend = s.judge_backend or getattr(s, "backend", None) or "hf"
        model = s.judge_model or getattr(s, "model", None)
        if llm is None and not model:
            raise InputError("--verifier judge needs --judge-model (or --model: the generating model judges)")
        self.llm = llm if llm is not None else ctx.llm_for(backend, model)
        self.answer_field = getattr(s, "answer_field", "answer")
        self.max_tokens = s.judge_max_tokens
        self.retries = s.judge_retries
        self.seed = getattr(s, "seed", None)
        self.low, self.high = self.rubric["scale"]["min"], self.rubric["scale"]["max"]
        self.field = self.rubric.get("score_field", "score")
        self.prompt_tokens = 0
        self.completion_tokens = 0

    def reference(self, row: dict) -> str | None:
        """The reference answer shown to the judge, when the row has one (rows without one are judged too)."""
        field = self.settings.judge_reference_field
        if field:
            value = row.get(field)
            return value if isinstance(value, str) and value.strip() else None
        try:
            return gold_answer(row.get(self.answer_field))
        except NoGoldAnswer:
            return None

    def messages(self, task: Task, response: str) -> list[dict]:
        r = self.rubric
        gold = self.reference(task.row)
        reference = fill(r.get("reference", ""), answer=gold) if gold is not None else ""
        user = fill(
            r["template"],
            rubric=str(r.get("rubric", "")).strip(),
            question=conversation_text(task.messages),
            reference=reference,
            response=neutralise(response),
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

    def verify(self, tasks: list[Task]) -> list[list[Verdict]]:
        out: list[list[Verdict | None]] = [[None] * len(t.completions) for t in tasks]
        todo = [
            ((t, c), self.messages(task, text))
            for t, task in enumerate(tasks)
            for c, text in enumerate(task.completions)
        ]
        errors: dict[tuple[int, int], str] = {}
        for attempt in range(self.retries + 1):
            if not todo:
                break
            results = self.llm.complete_each([self.request(msgs, attempt) for _, msgs in todo])
            left = []
            for (where, msgs), (comps, error) in zip(todo, results, strict=True):
                comp = comps[0]
                if comp is None:
                    errors[where] = f"judge request failed: {error}"
                    left.append((where, msgs))
                    continue
                self.prompt_tokens += comp.prompt_tokens or 0
                self.completion_tokens += comp.completion_tokens or 0
                try:
                    score, reason = parse_rating(comp.text, field=self.field, low=self.low, high=self.high)
                except JudgeError as e:
                    errors[where] = str(e)
                    left.append((where, msgs))
                    continue
                t, c = where
                out[t][c] = Verdict(
                    score, "scored", f"judge: {score:g}/{self.high:g}" + (f" ({reason})" if reason else "")
                )
            todo = left
        for (t, c), _ in todo:
            why = f"no usable rating after {self.retries + 1} attempt(s): {errors[(t, c)]}"
            out[t][c] = Verdict(None, "unscored", why)
        return out  # type: ignore[return-value]

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

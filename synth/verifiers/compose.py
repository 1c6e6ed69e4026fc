"""Verifiers made of verifiers: a weighted sum of scores, and a chain where a later verifier only sees what the
earlier ones accepted.

Spec grammar: `chain := sum ("," sum)*`, `sum := term ("+" term)*`, `term := [weight "*"] name`. So
`math,judge` is a chain (math first; the judge rates only correct answers), `0.8*math+0.2*reward-model` a sum,
and `code,0.5*judge+0.5*reward-model` a chain whose last stage is a sum. Every stage but the last of a chain
must be graded (it has to accept or reject).

>>> from synth.verifiers import Task, build
>>> v = build("regex,math", regex=r"^Answer:")
>>> for d in v.verify([Task({"answer": "4"}, [], ["Answer: 4", "4", "Answer: 5"])])[0]:
...     print(d.verdict, "|", d.detail)
correct | regex: matches ^Answer:; math: the answer is: 4 equals the gold answer 4
incorrect | regex: does not match ^Answer:
incorrect | regex: matches ^Answer:; math: the answer is: 5 is not the gold answer 4
"""

from __future__ import annotations

import re
from collections.abc import Callable

from curate.io import InputError
from synth.verifiers import REGISTRY, Task, Verdict, Verifier

_TERM = re.compile(
    r"^\s*(?:(?P<w>[-+]?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?)\s*\*\s*)?(?P<name>[a-z][a-z0-9_-]*)\s*$", re.I
)


def _subtasks(tasks: list[Task], picks: list[tuple[int, int]]) -> tuple[list[Task], list[tuple[int, int]]]:
    """Tasks holding only the picked (task, completion) pairs, and where each of their completions came from."""
    by_task: dict[int, list[int]] = {}
    for t, c in picks:
        by_task.setdefault(t, []).append(c)
    subs, origin = [], []
    for t, cs in by_task.items():
        task = tasks[t]
        subs.append(Task(task.row, task.messages, [task.completions[c] for c in cs], task.notes))
        origin.extend((t, c) for c in cs)
    return subs, origin


class Sum(Verifier):
    """A weighted sum of the parts' scores; unscored when any part could not score."""

    graded = False

    def __init__(self, parts: list[tuple[float, Verifier]]):
        self.parts = parts
        self.name = "+".join(f"{w:g}*{v.name}" for w, v in parts)

    def problem(self, row: dict) -> str | None:
        return next((p for _, v in self.parts if (p := v.problem(row)) is not None), None)

    def reference(self, row: dict) -> str | None:
        return next((r for _, v in self.parts if (r := v.reference(row)) is not None), None)

    @property
    def missing_reason(self) -> str:  # type: ignore[override]
        return self.parts[0][1].missing_reason

    def verify(self, tasks: list[Task]) -> list[list[Verdict]]:
        each = [v.verify(tasks) for _, v in self.parts]
        out = []
        for t, task in enumerate(tasks):
            row = []
            for c in range(len(task.completions)):
                parts = {v.name: each[k][t][c] for k, (_, v) in enumerate(self.parts)}
                detail = " + ".join(
                    f"{w:g}*{v.name} {parts[v.name].score if parts[v.name].score is not None else 'none'}"
                    f" ({parts[v.name].detail})"
                    for w, v in self.parts
                )
                missing = [name for name, d in parts.items() if d.score is None]
                if missing:
                    row.append(
                        Verdict(
                            None, "unscored", f"{', '.join(missing)} gave no score: {detail}", None, parts
                        )
                    )
                else:
                    total = sum(w * parts[v.name].score for w, v in self.parts)
                    row.append(Verdict(round(total, 6), "scored", detail, None, parts))
            out.append(row)
        return out

    def info(self) -> dict:
        return {"name": self.name, "sum": [{"weight": w, **v.info()} for w, v in self.parts]}

    def close(self) -> None:
        for _, v in self.parts:
            v.close()


class Chain(Verifier):
    """Stages in order; a completion reaches a stage only if every earlier stage accepted it (`correct`)."""

    def __init__(self, stages: list[Verifier], context=None):
        self.stages = stages
        self.name = ",".join(v.name for v in stages)
        self.context = context  # closed with the chain when the chain opened it

    @property
    def graded(self) -> bool:  # type: ignore[override]
        return self.stages[-1].graded

    @property
    def missing_reason(self) -> str:  # type: ignore[override]
        return self.stages[0].missing_reason

    def problem(self, row: dict) -> str | None:
        return next((p for v in self.stages if (p := v.problem(row)) is not None), None)

    def reference(self, row: dict) -> str | None:
        return next((r for v in self.stages if (r := v.reference(row)) is not None), None)

    def verify(self, tasks: list[Task]) -> list[list[Verdict]]:
        if len(self.stages) == 1:
            return self.stages[0].verify(tasks)
        final: list[list[Verdict | None]] = [[None] * len(t.completions) for t in tasks]
        parts: list[list[dict]] = [[{} for _ in t.completions] for t in tasks]
        said: list[list[list[str]]] = [[[] for _ in t.completions] for t in tasks]
        picks = [(t, c) for t, task in enumerate(tasks) for c in range(len(task.completions))]
        for k, stage in enumerate(self.stages):
            if not picks:
                break
            subs, origin = _subtasks(tasks, picks)
            verdicts = [v for row in stage.verify(subs) for v in row]
            last = k == len(self.stages) - 1
            picks = []
            for (t, c), v in zip(origin, verdicts, strict=True):
                parts[t][c][stage.name] = v
                said[t][c].append(f"{stage.name}: {v.detail}")
                if last or v.passed is not True:  # the last stage's word, or the one that stopped it
                    final[t][c] = Verdict(v.score, v.verdict, "; ".join(said[t][c]), v.extracted, parts[t][c])
                else:
                    picks.append((t, c))
        return [list(row) for row in final]  # type: ignore[arg-type]

    def info(self) -> dict:
        if len(self.stages) == 1:
            return self.stages[0].info()
        return {"name": self.name, "chain": [v.info() for v in self.stages]}

    def close(self) -> None:
        for v in self.stages:
            v.close()
        if self.context is not None:
            self.context.close()


def parse_spec(spec: str, make: Callable[[str], Verifier], *, context=None) -> Verifier:
    """The verifier of a spec; `make(name)` builds one registered verifier. A chain of one stage is that
    verifier itself, unless `context` (which the result then closes) is given."""
    if not spec or not spec.strip():
        raise InputError(
            "empty verifier spec (give a name such as math, or math,judge or 0.5*math+0.5*judge)"
        )
    stages: list[Verifier] = []
    texts = spec.split(",")
    for k, stage_text in enumerate(texts):
        terms = []
        for term in stage_text.split("+"):
            m = _TERM.match(term)
            if m is None:
                raise InputError(
                    f"verifier spec {spec!r}: cannot read {term.strip()!r} (expected NAME or WEIGHT*NAME)"
                )
            name = m.group("name")
            if name not in REGISTRY:
                raise InputError(f"unknown verifier {name!r} in {spec!r} (choose from {', '.join(REGISTRY)})")
            terms.append((float(m.group("w")) if m.group("w") else 1.0, name))
        if len(terms) == 1 and terms[0][0] == 1.0:
            stage = make(terms[0][1])
        else:
            stage = Sum([(w, make(name)) for w, name in terms])
        if k < len(texts) - 1 and not stage.graded:
            raise InputError(
                f"verifier spec {spec!r}: {stage.name} scores rather than accepts, so it can only be the last "
                "stage of a chain"
            )
        stages.append(stage)
    if len(stages) == 1 and context is None:
        return stages[0]
    return Chain(stages, context)

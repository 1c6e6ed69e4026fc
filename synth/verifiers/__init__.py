"""One verifier layer: every check of an answer, offline (rejection sampling) and online (rewards in `train`).

A **verifier** scores a batch of `Task`s (a prompt row, its messages, and completions) and returns, per
completion, a `Verdict`: a score, a verdict word and a detail a person can read (the extracted answer, the
failing assert, the rubric's reason). Verifiers are registered here by name (one line each, imported only
when used) and compose: `0.7*math+0.3*reward-model` is a weighted sum; `math,judge` is a chain where a later
verifier only sees what the earlier ones accepted (Qwen2's "correct and reasonable" paths).

- ``math``: the final answer against the row's gold `answer`;
- ``code``: the response's code against the row's `tests`, run in the sandbox where the program under test
  never holds the tests or the verdict (`synth.sandbox`);
- ``autoif``: the row's verification functions (from a `synth autoif` run), in the sandbox;
- ``reward-model``: a local sequence classifier with one output;
- ``judge``: an LLM rates against a rubric in `rules/`;
- ``regex``: the completion matches a pattern (the row's, or the one given).

The layer needs no Click: `build("math", settings)` returns a verifier, and `score(verifier, tasks)` is what
`train` calls as a reward function.

>>> v = build("math")
>>> [d.verdict for d in v.verify([Task({"answer": "#### 4"}, [], ["2 + 2 = 4\\n#### 4", "#### 5"])])[0]]
['correct', 'incorrect']
>>> v = build("0.5*math+0.5*regex", regex=r"####")
>>> [d.score for d in v.verify([Task({"answer": "4"}, [], ["#### 4", "4"])])[0]]
[1.0, 0.5]
"""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass, field
from functools import cache
from typing import ClassVar

from curate.io import InputError

REGISTRY: dict[str, str] = {
    "math": "synth.verifiers.math:MathVerifier",
    "code": "synth.verifiers.code:CodeVerifier",
    "autoif": "synth.verifiers.autoif:AutoIFVerifier",
    "reward-model": "synth.verifiers.reward_model:RewardModelVerifier",
    "judge": "synth.verifiers.judge:JudgeVerifier",
    "regex": "synth.verifiers.regex:RegexVerifier",
}


@dataclass(frozen=True)
class Verdict:
    """What a verifier says of one completion.

    `verdict` is ``correct``/``incorrect`` for graded verifiers (math, code, autoif, regex), ``scored`` for
    ranking ones (reward model, judge), ``partial`` (some but not enough checks passed) or ``unscored`` (it
    could not be judged: `detail` says why). `components` holds the verdicts a composition was made of.
    """

    score: float | None
    verdict: str
    detail: str = ""
    extracted: str | None = None
    components: dict | None = None
    facts: dict | None = None  # plain data a verifier adds (e.g. which functions passed)

    @property
    def passed(self) -> bool | None:
        return {"correct": True, "incorrect": False}.get(self.verdict)

    def as_dict(self) -> dict:
        out = {"score": self.score, "verdict": self.verdict, "detail": self.detail}
        if self.extracted is not None:
            out["extracted"] = self.extracted
        if self.components:
            out["components"] = {k: v.as_dict() for k, v in self.components.items()}
        if self.facts:
            out.update(self.facts)
        return out


def correct(detail: str, extracted: str | None = None, score: float = 1.0) -> Verdict:
    return Verdict(score, "correct", detail, extracted)


def incorrect(detail: str, extracted: str | None = None, score: float = 0.0) -> Verdict:
    return Verdict(score, "incorrect", detail, extracted)


@dataclass
class Task:
    """A prompt row (with the columns a verifier reads: `answer`, `tests`...), the messages the completions
    answer, and the completions."""

    row: dict
    messages: list[dict]
    completions: list[str]
    notes: dict = field(default_factory=dict)  # what a verifier adds to the prompt's output rows


class Verifier:
    """Base class. Subclasses set `name`, `graded` and `Settings`, and implement `verify`."""

    name: ClassVar[str]
    graded: ClassVar[bool] = True  # verdicts are correct/incorrect (else scores that rank)
    missing_reason: ClassVar[str] = "unverifiable"  # ledger reason for a row that lacks what `problem` names
    Settings: ClassVar[type | None] = None

    def __init__(self, settings, ctx: VerifierContext):
        self.settings, self.ctx = settings, ctx

    def problem(self, row: dict) -> str | None:
        """Why this row cannot be verified (a missing column), checked before anything is sampled."""
        return None

    def reference(self, row: dict) -> str | None:
        """The row's reference answer as the verifier reads it (shown in samples.jsonl), if it has one."""
        return None

    def verify(self, tasks: list[Task]) -> list[list[Verdict]]:
        raise NotImplementedError

    def info(self) -> dict:
        return {"name": self.name}

    def close(self) -> None:
        pass


# --- settings of every verifier, as one config bundle ---------------------------------------------------------


@cache
def verifier_classes() -> dict:
    out = {}
    for name, target in REGISTRY.items():
        module, _, cls = target.partition(":")
        out[name] = getattr(importlib.import_module(module), cls)
    return out


def _settings_class():
    from synth.config import SandboxOptions, settings

    bases = tuple(dict.fromkeys(c.Settings for c in verifier_classes().values() if c.Settings is not None))
    return settings(type("VerifierSettings", (*bases, SandboxOptions), {"__module__": __name__}))


def __getattr__(name):  # `VerifierSettings` is built on first use, from the registered verifiers' settings
    if name == "VerifierSettings":
        global VerifierSettings
        VerifierSettings = _settings_class()
        return VerifierSettings
    raise AttributeError(name)


# --- where verifiers get models, caches and sandboxes ------------------------------------------------------


class VerifierContext:
    """What verifiers may need from the run they serve: the generating LLM (generated tests), a second LLM
    (a judge) sharing the response cache, and the sandbox. A synth run passes its own (`synth.runner`); a
    library caller (train's reward functions) gets one that opens what is asked for and closes it with
    `close()`."""

    def __init__(self, settings=None, *, llm=None, llm_for=None, sandbox=None):
        self.settings, self.llm = settings, llm
        self._llm_for, self._sandbox = llm_for, sandbox
        self._own: list = []
        self._cache = self._sandbox_obj = None

    def llm_for(self, backend: str, model: str, options: dict | None = None):
        """A model (by backend and name) behind the response cache."""
        if self._llm_for is not None:
            return self._llm_for(backend, model, options)
        from synth.backends import get_backend
        from synth.llm import CachedLLM, model_identity, open_cache

        if self._cache is None:
            s = self.settings
            self._cache = open_cache(s.cache_path() if hasattr(s, "cache_path") else None)
            self._own.append(self._cache)
        if options is None and hasattr(self.settings, "backend_options"):
            options = self.settings.backend_options(backend)
        ready = get_backend(backend, model=model, **(options or {}))
        self._own.append(ready)
        return CachedLLM(ready, self._cache, model_identity(backend, model))

    def sandbox(self):
        """The sandbox for generated code (opened on first use)."""
        if self._sandbox is not None:
            return self._sandbox()
        if self._sandbox_obj is None:
            from synth.sandbox import Limits, Sandbox

            s = self.settings
            self._sandbox_obj = Sandbox(
                workers=s.workers(),
                limits=Limits(wall_s=s.exec_timeout, cpu_s=s.exec_timeout, memory_mb=s.exec_memory_mb),
                backend=s.sandbox,
            )
            self._own.append(self._sandbox_obj)
        return self._sandbox_obj

    def close(self) -> None:
        while self._own:
            self._own.pop().close()


# --- building verifiers from a spec -----------------------------------------------------------------------------


def names() -> list[str]:
    return list(REGISTRY)


def build(spec: str, settings=None, ctx: VerifierContext | None = None, **overrides) -> Verifier:
    """The verifier a spec names: a name, a weighted sum (`0.7*math+0.3*judge`) or a chain (`math,judge`).

    `settings` is a `VerifierSettings` (defaults when None, with `overrides` applied); `ctx` gives models and a
    sandbox (a standalone one when None: the caller closes the verifier, which closes it).
    """
    from synth.verifiers.compose import parse_spec

    if settings is None:
        settings = __getattr__("VerifierSettings")(**overrides)
    elif overrides:
        settings = dataclasses.replace(settings, **overrides)
    if ctx is None:
        ctx = VerifierContext(settings)
        return parse_spec(spec, lambda name: verifier_classes()[name](settings, ctx), context=ctx)
    return parse_spec(spec, lambda name: verifier_classes()[name](settings, ctx))


def check_name(name: str) -> None:
    if name not in REGISTRY:
        raise InputError(f"unknown verifier {name!r} (choose from {', '.join(REGISTRY)})")


def score(verifier: Verifier, tasks: list[Task]) -> list[list[float | None]]:
    """Only the scores (a reward function's answer)."""
    return [[v.score for v in row] for row in verifier.verify(tasks)]


__all__ = [
    "REGISTRY",
    "Task",
    "Verdict",
    "Verifier",
    "VerifierContext",
    "build",
    "check_name",
    "correct",
    "incorrect",
    "names",
    "score",
]

"""`synth candidates`: a pool of responses per prompt from several models and generation strategies, for people
to rank (Qwen2's collaborative annotation: "multiple responses ... using diverse generation strategies and
Qwen models of different scales").

Every `--model` (`BACKEND:NAME`, or a name for `--backend`) answers every prompt under every `--strategy`
(`temperature=0.2`, `top_p=0.9`, `system=Answer in one sentence.`, several joined with `;`), `--n` times.
Failed, truncated and empty answers go to the ledger per prompt; identical answers (after case and whitespace)
are kept once, with every source that gave them. The responses of a prompt are shuffled by a hash of its id,
so the order says nothing about their source. Each row of `candidates.jsonl` is `id`, `prompt` (messages) and
`responses: [{id, text, sources: [{model, strategy}]}]`: the input of `curate annotate`.

>>> from curate.io import read_jsonl, write_jsonl
>>> from synth.backends.scripted import ScriptedBackend
>>> from synth.runner import run_method
>>> _ = write_jsonl("/tmp/cand-in.jsonl", [{"id": "p1", "prompt": "Name a colour."}])
>>> m = run_method(Candidates, CandidatesConfig(inputs=["/tmp/cand-in.jsonl"], output="/tmp/cand", models=["a"],
...     strategies=["temperature=0", "temperature=1"], use_cache=False, overwrite=True),
...     backend=ScriptedBackend(lambda req, i: "Blue." if req.temperature else "Red."))
>>> sorted(r["text"] for r in read_jsonl("/tmp/cand/candidates.jsonl")[0]["responses"])
['Blue.', 'Red.']
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from curate.errors import UsageError
from synth.config import (
    BACKEND_CHOICES,
    AnswerSettings,
    BackendSettings,
    InputSettings,
    RunSettings,
    SamplingSettings,
    setting,
    settings,
)
from synth.methods.generate import Prompt, as_prompt, sample_verdict
from synth.prompts import derived_id, stable_fraction
from synth.runner import Method, run_method

STRATEGY_KEYS = ("temperature", "top_p", "system")


@dataclass(frozen=True)
class Strategy:
    """How one candidate is sampled: sampling settings and an optional system prompt."""

    name: str
    temperature: float | None = None
    top_p: float | None = None
    system: str | None = None

    @classmethod
    def parse(cls, text: str) -> Strategy:
        values: dict = {}
        for part in (p.strip() for p in text.split(";")):
            key, sep, value = part.partition("=")
            key = key.strip()
            if not sep or key not in STRATEGY_KEYS:
                raise UsageError(
                    f"--strategy {text!r}: expected KEY=VALUE pairs joined by ';' with keys {', '.join(STRATEGY_KEYS)}"
                )
            if key == "system":
                values[key] = value.strip()
                continue
            try:
                values[key] = float(value)
            except ValueError:
                raise UsageError(f"--strategy {text!r}: {key} must be a number") from None
        return cls(text.strip(), **values)


def parse_model(spec: str, default_backend: str) -> tuple[str, str]:
    """`BACKEND:NAME` (backend one of hf, openai, vllm) or a plain name for the default backend."""
    backend, sep, name = spec.partition(":")
    if sep and backend in BACKEND_CHOICES and name:
        return backend, name
    return default_backend, spec


@settings
class CandidatesConfig(AnswerSettings, SamplingSettings, BackendSettings, RunSettings, InputSettings):
    models: list[str] = setting(
        [],
        "A model to answer with, BACKEND:NAME or NAME (for --backend); repeatable. Its backend options are the "
        "shared ones (--base-url, --device...).",
        flag="--model",
        short="-m",
    )
    strategies: list[str] = setting(
        [],
        "A generation strategy: KEY=VALUE pairs joined by ';' with keys temperature, top_p, system; repeatable "
        "[default: the sampling options as given].",
        flag="--strategy",
    )
    model: str | None = setting(None, "The first --model (set from --model).", cli=False)

    def validate(self) -> None:
        if not self.models:
            raise UsageError("give at least one --model")
        self.model = parse_model(self.models[0], self.backend)[1]
        self.backend = parse_model(self.models[0], self.backend)[0]
        for s in self.strategies:
            Strategy.parse(s)


_SPACE = re.compile(r"\s+")


def normalized(text: str) -> str:
    return _SPACE.sub(" ", text).strip().lower()


class Candidates(Method):
    """Pool responses from several models and strategies per prompt, for people to rank (curate annotate).

    Every --model answers every prompt under every --strategy, --n times; identical answers are kept once
    with all their sources; each prompt's responses are shuffled (by a hash of its id) so that their order
    hides their source. OUTPUT/candidates.jsonl: prompt + responses [{id, text, sources}]; OUTPUT/rejected.jsonl:
    failed, truncated or empty answers and prompts with fewer than two distinct responses.

    \b
    Examples:
      synth candidates prompts.jsonl -o pool --model hf:./small-sft --model hf:./large-sft \\
          --strategy temperature=0.3 --strategy "temperature=1.0" --strategy "system=Answer briefly."
      synth candidates prompts.jsonl -o pool --backend openai --base-url http://127.0.0.1:8000/v1 \\
          --model Qwen/Qwen2.5-7B-Instruct --model Qwen/Qwen2.5-72B-Instruct --n 2
      curate annotate pool -o ranked
    """

    name = "candidates"
    Config = CandidatesConfig
    main_output = "candidates.jsonl"
    skip_counts = ("not_a_prompt",)

    def __init__(self, cfg, ctx):
        super().__init__(cfg, ctx)
        self.strategies = [Strategy.parse(s) for s in cfg.strategies] or [Strategy("default")]
        self.sources = []  # (model label, strategy, llm)
        if ctx is not None:
            for spec in cfg.models:
                backend, model = parse_model(spec, cfg.backend)
                llm = ctx.llm_for(backend, model)
                self.sources.extend((f"{backend}:{model}", s, llm) for s in self.strategies)
        self.t = {"prompts": 0, "samples": 0, "kept_responses": 0, "duplicates": 0, "unusable_samples": 0}

    def prepare(self, row: dict) -> Prompt:
        return as_prompt(row, self.cfg.system_prompt)

    def request(self, prompt: Prompt, strategy: Strategy):
        cfg = self.cfg
        messages = prompt.messages
        if strategy.system is not None:
            messages = [{"role": "system", "content": strategy.system}] + [
                m for m in messages if m["role"] != "system"
            ]
        req = cfg.request(messages)
        from dataclasses import replace

        return replace(
            req,
            temperature=req.temperature if strategy.temperature is None else strategy.temperature,
            top_p=req.top_p if strategy.top_p is None else strategy.top_p,
        )

    def plan_requests(self, item: Prompt) -> list:
        return [self.request(item, s) for s in self.strategies for _ in self.cfg.models]

    def run_batch(self, prompts: list[Prompt]):
        out = self.outputs()
        answers = [
            (model, strategy, llm.complete_each([self.request(p, strategy) for p in prompts]))
            for model, strategy, llm in self.sources
        ]
        for k, prompt in enumerate(prompts):
            self.t["prompts"] += 1
            pool: dict[str, dict] = {}
            problems = []
            for model, strategy, results in answers:
                samples, error = results[k]
                for comp in samples:
                    self.t["samples"] += 1
                    if comp is None:
                        problems.append(f"{model} [{strategy.name}]: failed ({error})")
                        continue
                    unusable = sample_verdict(comp, self.cfg)
                    if unusable is not None:
                        problems.append(f"{model} [{strategy.name}]: {unusable[0]}")
                        continue
                    key = normalized(comp.text)
                    source = {"model": model, "strategy": strategy.name}
                    if key in pool:
                        pool[key]["sources"].append(source)
                        self.t["duplicates"] += 1
                    else:
                        pool[key] = {"text": comp.text, "sources": [source]}
            self.t["unusable_samples"] += len(problems)
            if len(pool) < 2:
                out.reject(
                    prompt.row,
                    "too_few_candidates",
                    f"{len(pool)} distinct usable response(s), need 2 to rank"
                    + (f" ({'; '.join(problems[:3])})" if problems else ""),
                )
                continue
            responses = [{"id": derived_id(prompt.id, text=key), **r} for key, r in pool.items()]
            responses.sort(key=lambda r: stable_fraction(prompt.id, r["id"]))
            self.t["kept_responses"] += len(responses)
            out.kept.append(
                {
                    "id": prompt.id,
                    "prompt": prompt.messages,
                    "responses": responses,
                    **prompt.passthrough(),
                    **({"unusable": problems} if problems else {}),
                }
            )
        return out

    def counts(self) -> dict:
        return {**self.t, "rows": self.ctx.run.ledger.counts["kept"]}

    @classmethod
    def summary(cls, m: dict) -> list[str]:
        c = m["counts"]
        return [
            f"rows {c['input']} = prompts {c['prompts']} + not prompts {c['not_a_prompt']} + invalid {c['invalid']}",
            f"samples {c['samples']}: {c['kept_responses']} distinct responses kept, {c['duplicates']} duplicates "
            f"merged, {c['unusable_samples']} unusable",
        ]


def run_candidates(cfg: CandidatesConfig, backend=None) -> dict:
    return run_method(Candidates, cfg, backend=backend)

"""`synth generate`: answer prompts with a teacher model (SFT distillation), n samples each.

Each input row is a prompt: `messages` ending in a user turn (or any format the reader adapts to one). A
conversation that ends in an assistant turn is answered afresh; the old answer is kept in
`previous_response`. For every row, `n` samples are taken (cached ones are reused) and each becomes one row
of `generated.jsonl`: the conversation with the new assistant turn plus `parent_id`, `sample_index`,
`model`, `backend`, `finish_reason` and token counts. Samples that failed, were cut off at `max_tokens`
(unless `keep_truncated`) or came back empty go to `rejected.jsonl` with the reason, never a crash.

>>> from curate.io import write_jsonl
>>> from synth.backends.scripted import ScriptedBackend
>>> from synth.runner import run_method
>>> write_jsonl("/tmp/prompts.jsonl", [{"prompt": "Name a colour."}, {"prompt": "Say hi."}])
2
>>> m = run_method(Generate, GenerateConfig(inputs=["/tmp/prompts.jsonl"], output="/tmp/gen-run", model="m", n=2,
...                overwrite=True, use_cache=False), backend=ScriptedBackend(lambda req, i: f"answer {i}"))
>>> m["counts"]["samples"], m["counts"]["generated"], m["counts"]["balanced"]
(4, 4, True)
"""

from __future__ import annotations

from dataclasses import dataclass, field

from synth.config import (
    AnswerSettings,
    BackendSettings,
    InputSettings,
    RunSettings,
    SamplingSettings,
    setting,
    settings,
)
from synth.prompts import NotAPrompt, prompt_of, sample_id
from synth.runner import Method, Skip


@settings
class GenerateConfig(AnswerSettings, SamplingSettings, BackendSettings, RunSettings, InputSettings):
    turns: int = setting(
        1,
        "Assistant turns per dialogue: after each answer a user simulator (rules/user_simulator.yaml, the same "
        "model) writes the next user message, and the teacher answers it.",
        min=1,
    )
    every_turn: bool = setting(
        False,
        "Re-answer every assistant turn of multi-turn conversations (e.g. LMSYS chats whose answers are "
        "discarded): the user turns are kept, each answer is the teacher's, given the dialogue so far.",
    )
    simulator_rules: str = setting(
        "user_simulator.yaml", "--turns: the user simulator's prompts (rules file or path)."
    )

    def validate(self) -> None:
        if self.every_turn and self.turns != 1:
            from curate.errors import UsageError

            raise UsageError("--every-turn answers the turns a conversation has; it does not take --turns")


@dataclass
class Prompt:
    """An input row as a prompt: the messages to answer and the answer they replace (if any)."""

    row: dict
    messages: list[dict]
    previous: str | None
    rest: list[str] = field(default_factory=list)  # --every-turn: the user turns after the first

    @property
    def id(self) -> str:
        return str(self.row["id"])

    def passthrough(self) -> dict:
        """The row's own columns that derived rows carry along (not its id, messages or private columns)."""
        from curate.schema import public

        base = public(self.row)
        base.pop("id", None)
        base.pop("messages", None)
        if self.previous is not None:
            base["previous_response"] = self.previous
        return base


def as_prompt(row: dict, system_prompt: str | None = None) -> Prompt:
    """The row as a `Prompt`, or `Skip("not_a_prompt")`."""
    try:
        messages, previous = prompt_of(row, system_prompt)
    except NotAPrompt as e:
        raise Skip("not_a_prompt", str(e)) from None
    return Prompt(row, messages, previous)


@dataclass
class Dialogue:
    """One sample's conversation as it grows: turn after turn, until `planned` answers are written."""

    prompt: Prompt
    index: int
    messages: list[dict]
    planned: int
    user_turns: list[str]  # the original user turns still to come (--every-turn)
    answered: int = 0
    last: object = None  # the last completion
    failed: tuple[str, str] | None = None

    @property
    def done(self) -> bool:
        return self.failed is not None or self.answered == self.planned


def user_turns_of(row: dict) -> list[str]:
    """A conversation's user turns, for --every-turn (tool-use histories are not re-answered)."""
    msgs = row["messages"]
    if any(m["role"] == "tool" or m.get("tool_calls") for m in msgs):
        raise Skip("tool_use_history", "--every-turn re-answers plain conversations; this one uses tools")
    return [m["content"] for m in msgs if m["role"] == "user"]


def sample_verdict(comp, cfg) -> tuple[str, str] | None:
    """Why a completion cannot be used (`truncated` unless `cfg.keep_truncated`, `empty`), or None."""
    if comp.finish_reason == "length" and not cfg.keep_truncated:
        return "truncated", f"hit --max-tokens {cfg.max_tokens} before the end of the answer"
    if not comp.text.strip():
        return "empty_completion", "the model answered with nothing"
    return None


class Generate(Method):
    """Answer prompts with a teacher model (SFT distillation), n samples each.

    INPUT is JSONL (.gz/.zst), Parquet, `-` or a run directory, in any format `curate` reads. Rows that end
    in a user turn are answered; a conversation ending in an assistant turn is answered afresh (the old
    answer is kept as previous_response). Writes OUTPUT/generated.jsonl (the conversation with the new
    assistant turn, model, finish_reason, token counts), OUTPUT/rejected.jsonl (failed, truncated or empty
    answers, with the reason) and OUTPUT/manifest.json (token totals, throughput, cache hits and path).

    \b
    Examples:
      synth generate prompts.jsonl -o gen --backend hf --model ./SmolLM2-135M-Instruct --max-tokens 256
      synth generate prompts.jsonl -o gen --backend openai --base-url http://127.0.0.1:8000/v1 \\
          --model Qwen/Qwen2.5-7B-Instruct --n 4 --temperature 0.8 --concurrency 64
      synth generate prompts.jsonl -o gen --backend vllm --model Qwen/Qwen2.5-7B-Instruct --dry-run
    """

    name = "generate"
    Config = GenerateConfig
    main_output = "generated.jsonl"
    skip_counts = ("not_a_prompt",)

    def __init__(self, cfg, ctx):
        super().__init__(cfg, ctx)
        self.t = {"requests": 0, "samples": 0, "generated": 0, "rejected_samples": 0}
        self.tokens = {"prompt": 0, "completion": 0, "unknown": 0}

    def prepare(self, row: dict) -> Prompt:
        prompt = as_prompt(row, self.cfg.system_prompt)
        if self.cfg.every_turn:
            turns = user_turns_of(row)
            first = next(i for i, m in enumerate(prompt.messages) if m["role"] == "user")
            prompt = Prompt(row, prompt.messages[: first + 1], None, turns[1:])
        return prompt

    def plan_requests(self, item: Prompt) -> list:
        return [self.cfg.request(item.messages)]

    def run_batch(self, items: list[Prompt]) -> object:
        if self.cfg.turns > 1 or self.cfg.every_turn:
            return self.run_dialogues(items)
        cfg, t = self.cfg, self.t
        out = self.outputs()
        t["requests"] += len(items)
        t["samples"] += len(items) * cfg.n
        results = self.llm.complete_each([cfg.request(it.messages) for it in items])
        for it, (samples, error) in zip(items, results, strict=True):
            base = it.passthrough()
            head = {"parent_id": it.id}
            counted = False
            for i, comp in enumerate(samples):
                row_head = {"id": sample_id(it.id, i), **head}
                if comp is None:
                    out.reject(
                        {**row_head, "messages": it.messages, **base},
                        "generation_failed",
                        error or "no completion",
                        sample_index=i,
                        model=cfg.model,
                        backend=self.llm.backend.name,
                    )
                    continue
                if not counted:
                    self.tokens["prompt"] += comp.prompt_tokens or 0
                    counted = True
                self.tokens["unknown"] += comp.completion_tokens is None
                self.tokens["completion"] += comp.completion_tokens or 0
                row = {
                    **row_head,
                    "messages": [*it.messages, {"role": "assistant", "content": comp.text}],
                    **base,
                    "sample_index": i,
                    "model": cfg.model,
                    "backend": self.llm.backend.name,
                    "finish_reason": comp.finish_reason,
                    "prompt_tokens": comp.prompt_tokens,
                    "completion_tokens": comp.completion_tokens,
                }
                unusable = sample_verdict(comp, cfg)
                if unusable is None:
                    out.kept.append(row)
                else:
                    out.reject(row, *unusable)
        t["generated"] += len(out.kept)
        t["rejected_samples"] += len(out.rejected)
        return out

    # --- multi-turn dialogues (--turns, --every-turn) ------------------------------------------------------------

    def run_dialogues(self, items: list[Prompt]):
        """Every item's n dialogues, turn by turn: the teacher answers all open dialogues at once, then the user
        simulator (or the next original user turn) speaks in all of them at once."""
        cfg, t = self.cfg, self.t
        out = self.outputs()
        t["requests"] += len(items)
        t["samples"] += len(items) * cfg.n
        first = self.llm.complete_each([cfg.request(it.messages) for it in items])
        dialogues = []
        for it, (samples, error) in zip(items, first, strict=True):
            rest = list(it.rest)
            planned = 1 + len(rest) if cfg.every_turn else cfg.turns
            for i, comp in enumerate(samples):
                d = Dialogue(it, i, list(it.messages), planned, list(rest))
                self._answered(d, comp, error)
                dialogues.append(d)
        while open_ := [d for d in dialogues if not d.done]:
            self._next_user_turns(open_)
            open_ = [d for d in open_ if not d.done]
            # Dialogues of one prompt may have grown alike: each keeps its own sample index in the cache key.
            results = self.llm.complete_each([cfg.request(d.messages, n=1) for d in open_])
            for d, (samples, error) in zip(open_, results, strict=True):
                self._answered(d, samples[0], error)
        for d in dialogues:
            self._write_dialogue(d, out)
        t["generated"] += len(out.kept)
        t["rejected_samples"] += len(out.rejected)
        return out

    def _answered(self, d: Dialogue, comp, error) -> None:
        turn = d.answered + 1
        if comp is None:
            d.failed = ("generation_failed", f"turn {turn}: {error or 'no completion'}")
            return
        self.tokens["completion"] += comp.completion_tokens or 0
        self.tokens["prompt"] += comp.prompt_tokens or 0
        unusable = sample_verdict(comp, self.cfg)
        if unusable is not None:
            d.failed = (unusable[0], f"turn {turn}: {unusable[1]}")
        d.messages.append({"role": "assistant", "content": comp.text})
        d.answered += 1
        d.last = comp

    def _next_user_turns(self, dialogues: list[Dialogue]) -> None:
        if self.cfg.every_turn:
            for d in dialogues:
                d.messages.append({"role": "user", "content": d.user_turns.pop(0)})
            return
        from rules import fill, load_rules
        from synth.verifiers.judge import conversation_text

        r = load_rules(self.cfg.simulator_rules)
        requests = [
            self.cfg.request(
                [
                    {"role": "system", "content": r["system"].strip()},
                    {
                        "role": "user",
                        "content": fill(r["template"], conversation=conversation_text(d.messages)),
                    },
                ],
                n=1,
            )
            for d in dialogues
        ]
        for d, (samples, error) in zip(dialogues, self.llm.complete_each(requests), strict=True):
            comp = samples[0]
            turn = d.answered + 1
            if comp is None:
                d.failed = ("simulator_failed", f"turn {turn}: {error or 'no completion'}")
            elif (unusable := sample_verdict(comp, self.cfg)) is not None:
                d.failed = (f"simulator_{unusable[0]}", f"turn {turn}: {unusable[1]}")
            else:
                d.messages.append({"role": "user", "content": comp.text.strip()})

    def _write_dialogue(self, d: Dialogue, out) -> None:
        it = d.prompt
        row = {
            "id": sample_id(it.id, d.index),
            "parent_id": it.id,
            "messages": d.messages,
            **it.passthrough(),
            "sample_index": d.index,
            "assistant_turns": d.answered,
            "model": self.cfg.model,
            "backend": self.llm.backend.name,
            "finish_reason": getattr(d.last, "finish_reason", None),
        }
        if d.failed is not None:
            out.reject(row, *d.failed)
        else:
            out.kept.append(row)

    def counts(self) -> dict:
        return {**self.t, "failed_requests": self.llm.stats.failed_requests}

    def balanced(self, c: dict) -> bool:
        return c["samples"] == c["generated"] + c["rejected_samples"]

    def sections(self) -> dict:
        tok = {
            "prompt": self.tokens["prompt"],
            "completion": self.tokens["completion"],
            "generated_now": self.llm.stats.fresh_completion_tokens,
        }
        if self.tokens["unknown"]:
            tok["samples_without_counts"] = self.tokens["unknown"]
        seconds = self.ctx.run.seconds
        return {
            "tokens": tok,
            "throughput": {
                "rows_per_s": round(self.ctx.run.reader.count / seconds, 2) if seconds > 0 else None
            },
        }

    @classmethod
    def summary(cls, m: dict) -> list[str]:
        c = m["counts"]
        reasons = ", ".join(f"{k} {v}" for k, v in m["reasons"].items() if k != "not_a_prompt")
        return [
            f"rows {c['input']} = prompts {c['requests']} + not prompts {c['not_a_prompt']} + invalid {c['invalid']}",
            f"samples {c['samples']} = generated {c['generated']} + rejected {c['rejected_samples']}"
            + (f"   (rejected.jsonl: {reasons})" if reasons else ""),
        ]


def run_generate(cfg: GenerateConfig, backend=None) -> dict:
    """Answer every prompt of `cfg.inputs` into the run directory `cfg.output`; return the manifest."""
    from synth.runner import run_method

    return run_method(Generate, cfg, backend=backend)

"""One interface for every LLM that `synth` calls: a batch of chat requests in, n completions each out.

Backends are registered here by import path, so torch, transformers and vLLM load only when chosen:

- ``hf``: transformers in this process, CPU or GPU (`synth.backends.hf`);
- ``openai``: any OpenAI-compatible chat-completions server (`synth.backends.openai`);
- ``vllm``: in-process ``vllm.LLM``, on a GPU or with vLLM's CPU build (`synth.backends.vllm`);
- ``scripted``: canned answers from a rules file, not a model (`synth.backends.scripted`): for the tiny recipes
  and demos, where no model here could do the task.

>>> from synth.backends import ChatRequest, get_backend
>>> from posttrain.tinymodels import build_tiny_model
>>> backend = get_backend("hf", model=str(build_tiny_model("qwen2", "/tmp/tiny-qwen2")))
>>> [result] = backend.generate([ChatRequest(messages=({"role": "user", "content": "Hi"},), n=2, max_tokens=8)])
>>> len(result.completions), result.completions[0].prompt_tokens > 0
(2, True)
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

REGISTRY: dict[str, str] = {
    "hf": "synth.backends.hf:HFBackend",
    "openai": "synth.backends.openai:OpenAIBackend",
    "vllm": "synth.backends.vllm:VLLMBackend",
    "scripted": "synth.backends.scripted:CannedAnswers",
}
FINISH_REASONS = ("stop", "length")


class BackendError(Exception):
    """A backend cannot be set up or used at all (missing package, no GPU, bad model path, refused key).

    Problems with one request are not raised: they come back as `ChatResult.error`.
    """


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """One prompt (a list of {role, content} messages) and how to sample `n` answers to it.

    `temperature=0` means greedy decoding. `stop` strings end a completion and are not part of its text.
    """

    messages: tuple[dict, ...]
    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int = 512
    seed: int | None = None
    stop: tuple[str, ...] = ()

    def __post_init__(self):
        # Lists are accepted for convenience and frozen, so a request can be hashed into a cache key.
        object.__setattr__(self, "messages", tuple(self.messages))
        object.__setattr__(self, "stop", tuple(self.stop))
        if self.n < 1:
            raise ValueError(f"n must be at least 1, got {self.n}")
        if self.max_tokens < 1:
            raise ValueError(f"max_tokens must be at least 1, got {self.max_tokens}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")

    def sampling(self) -> dict:
        """The settings that decide what a sample looks like (everything but the messages and n)."""
        return {
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_tokens": self.max_tokens,
            "seed": self.seed,
            "stop": list(self.stop),
        }

    def with_n(self, n: int) -> ChatRequest:
        return ChatRequest(
            self.messages, n, self.temperature, self.top_p, self.max_tokens, self.seed, self.stop
        )


@dataclass(frozen=True, slots=True)
class Completion:
    """One generated answer. Token counts are None only when an OpenAI-compatible server omits usage."""

    text: str
    finish_reason: str  # "stop" (end of turn or a stop string) | "length" (hit max_tokens)
    prompt_tokens: int | None
    completion_tokens: int | None


@dataclass(slots=True)
class ChatResult:
    """The completions for one request, or why there are none."""

    completions: list[Completion] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


OnResult = Callable[[int, ChatResult], None]


@runtime_checkable
class Backend(Protocol):
    name: str
    model: str

    def generate(
        self, requests: Sequence[ChatRequest], *, on_result: OnResult | None = None
    ) -> list[ChatResult]:
        """One result per request, in order; never raises for a problem with a single request.

        `on_result(i, result)`, when given, is called as soon as request i's result is final (in any order),
        so that the caller can store it before the rest are done: a killed run then keeps every answer it
        had. A backend may report less than that (vLLM's in-process call returns all at once); the caller
        takes whatever was not reported from the returned list.
        """
        ...

    def info(self) -> dict:
        """Facts for the manifest (device, dtype, server, retries...)."""
        ...

    def close(self) -> None: ...


def get_backend(name: str, **options) -> Backend:
    """Build the backend `name` (a key of `REGISTRY`) with its options (`model=` always)."""
    if name not in REGISTRY:
        raise BackendError(f"unknown backend {name!r} (choose from {', '.join(REGISTRY)})")
    module, _, cls = REGISTRY[name].partition(":")
    return getattr(importlib.import_module(module), cls)(**options)

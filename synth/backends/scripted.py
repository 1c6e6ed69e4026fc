"""A scripted backend: answers come from a Python function. For tests of synth logic and for dry demos.

`respond(request, sample_index) -> str` is called once per sample; returning None (or raising
`ScriptedError`) makes that request fail, as a real server error would.

>>> from synth.backends import ChatRequest
>>> b = ScriptedBackend(lambda req, i: req.messages[-1]["content"].upper())
>>> b.generate([ChatRequest([{"role": "user", "content": "hi"}])])[0].completions[0].text
'HI'
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from synth.backends import ChatRequest, ChatResult, Completion, OnResult


class ScriptedError(Exception):
    """Raised by a script to make one request fail."""


class ScriptedBackend:
    name = "scripted"

    def __init__(self, respond: Callable[[ChatRequest, int], str | None], *, model: str = "scripted"):
        self.respond = respond
        self.model = model
        self.calls: list[ChatRequest] = []

    def generate(
        self, requests: Sequence[ChatRequest], *, on_result: OnResult | None = None
    ) -> list[ChatResult]:
        out = []
        for i, req in enumerate(requests):
            self.calls.append(req)
            out.append(self._answer(req))
            if on_result is not None:
                on_result(i, out[-1])
        return out

    def _answer(self, req: ChatRequest) -> ChatResult:
        try:
            texts = [self.respond(req, i) for i in range(req.n)]
        except ScriptedError as e:
            return ChatResult(error=str(e))
        if any(t is None for t in texts):
            return ChatResult(error="scripted failure")
        prompt_tokens = sum(len(m["content"].split()) for m in req.messages)
        return ChatResult(
            completions=[
                Completion(
                    text=t,
                    finish_reason="stop",
                    prompt_tokens=prompt_tokens,
                    completion_tokens=len(t.split()),
                )
                for t in texts
            ]
        )

    def info(self) -> dict:
        return {"backend": "scripted", "model": self.model}

    def close(self) -> None:
        pass

"""Scripted backends: answers come from a Python function, or from a file of canned answers. Not models: for
tests of synth logic, dry demos and the tiny recipes, where no model here could do the task.

`respond(request, sample_index) -> str` is called once per sample; returning None (or raising
`ScriptedError`) makes that request fail, as a real server error would.

>>> from synth.backends import ChatRequest
>>> b = ScriptedBackend(lambda req, i: req.messages[-1]["content"].upper())
>>> b.generate([ChatRequest([{"role": "user", "content": "hi"}])])[0].completions[0].text
'HI'

`--backend scripted --model ANSWERS.yaml` (`CannedAnswers`) answers from a rules file: the first entry whose
`when` patterns (regular expressions, all of them) are found in the request's messages (system prompt
included) gives the reply, and `replies` are given in turn, one per sample:

>>> import tempfile
>>> path = tempfile.mkstemp(suffix=".yaml")[1]
>>> _ = open(path, "w").write('''
... answers:
...   - when: 'What is 6 x 7'
...     replies: ["6 x 7 = 42. #### 42", "6 x 7 = 36. #### 36"]
... default: I do not know.
... ''')
>>> b = CannedAnswers(model=path)
>>> [c.text for c in b.generate([ChatRequest([{"role": "user", "content": "What is 6 x 7?"}], n=3)])[0].completions]
['6 x 7 = 42. #### 42', '6 x 7 = 36. #### 36', '6 x 7 = 42. #### 42']
>>> b.generate([ChatRequest([{"role": "user", "content": "Hi"}])])[0].completions[0].text
'I do not know.'
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from synth.backends import BackendError, ChatRequest, ChatResult, Completion, OnResult


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


@dataclass(frozen=True)
class CannedAnswer:
    when: tuple[re.Pattern, ...]
    replies: tuple[str, ...]


class CannedAnswers(ScriptedBackend):
    """`--backend scripted --model ANSWERS.yaml`: canned answers from a rules file, clearly not a model.

    The file holds `answers: [{when: PATTERN or [PATTERNS], reply: TEXT or replies: [TEXTS]}]` and an optional
    `default:` reply; a request that no entry matches fails (as a server error would) unless there is a default.
    """

    def __init__(self, model: str):
        self.answers, self.default = load_canned_answers(model)
        super().__init__(self._respond, model=model)

    def _respond(self, req: ChatRequest, i: int) -> str:
        text = "\n".join(m["content"] for m in req.messages)
        for answer in self.answers:
            if all(p.search(text) for p in answer.when):
                return answer.replies[i % len(answer.replies)]
        if self.default is None:
            raise ScriptedError(f"no canned answer in {self.model} matches {text[:80]!r}")
        return self.default

    def info(self) -> dict:
        return {"backend": "scripted", "model": self.model, "canned_answers": len(self.answers)}


def load_canned_answers(path: str) -> tuple[list[CannedAnswer], str | None]:
    """The entries and default reply of a canned-answers file; a problem is a `BackendError` naming the entry."""
    import yaml

    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
    except OSError as e:
        raise BackendError(
            f"--model {path}: the scripted backend reads canned answers from it: {e.strerror}"
        ) from None
    except yaml.YAMLError as e:
        raise BackendError(f"--model {path}: not valid YAML ({e})") from None
    if not isinstance(data, dict) or not isinstance(data.get("answers"), list):
        raise BackendError(f"{path}: a canned-answers file holds `answers: [{{when: ..., reply: ...}}]`")
    out = []
    for k, entry in enumerate(data["answers"]):
        where = f"{path}: answers[{k}]"
        if not isinstance(entry, dict) or set(entry) - {"when", "reply", "replies"}:
            raise BackendError(f"{where}: expected `when` and `reply` (or `replies`)")
        patterns = entry.get("when")
        patterns = [patterns] if isinstance(patterns, str) else patterns
        replies = [entry["reply"]] if "reply" in entry else entry.get("replies")
        if not patterns or not all(isinstance(p, str) for p in patterns):
            raise BackendError(f"{where}.when: a pattern or a list of patterns")
        if not replies or not all(isinstance(r, str) for r in replies):
            raise BackendError(f"{where}: `reply` (a string) or `replies` (a list of strings)")
        try:
            compiled = tuple(re.compile(p) for p in patterns)
        except re.error as e:
            raise BackendError(f"{where}.when: not a regular expression ({e})") from None
        out.append(CannedAnswer(compiled, tuple(replies)))
    default = data.get("default")
    if default is not None and not isinstance(default, str):
        raise BackendError(f"{path}: default: a string")
    return out, default

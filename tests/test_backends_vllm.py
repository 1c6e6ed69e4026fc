"""The vLLM backend. vLLM cannot run here: check its clear errors, and its mapping onto vLLM's documented
API (`LLM`, `LLM.chat`, `SamplingParams`, `RequestOutput`) against a stand-in module."""

import sys
import types
from types import SimpleNamespace

import pytest

from synth.backends import BackendError, ChatRequest, get_backend

pytest.importorskip("torch")


def test_missing_vllm_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # as if not installed, even where it is
    with pytest.raises(BackendError, match=r"needs vLLM.*pip install 'posttrain\[vllm\]'.*--backend openai"):
        get_backend("vllm", model="Qwen/Qwen2.5-0.5B-Instruct")


class FakeLLM:
    def __init__(self, **kwargs):
        self.kwargs = kwargs
        self.calls = []

    def chat(self, conversations, sampling_params, use_tqdm):
        self.calls.append((conversations, sampling_params))
        outs = []
        for convo, params in zip(conversations, sampling_params, strict=True):
            text = convo[-1]["content"]
            if text == "explode":
                raise ValueError("prompt too long")
            outs.append(
                SimpleNamespace(
                    prompt_token_ids=[1] * len(text),
                    outputs=[
                        SimpleNamespace(
                            text=f"{text}-{k}",
                            token_ids=[5] * (k + 1),
                            finish_reason="length" if k == 1 else "stop",
                        )
                        for k in range(params.n)
                    ],
                )
            )
        return outs


@pytest.fixture
def fake_vllm(monkeypatch):
    module = types.ModuleType("vllm")
    module.LLM = FakeLLM
    module.SamplingParams = lambda **kw: SimpleNamespace(**kw)
    module.__version__ = "0.0-test"
    monkeypatch.setitem(sys.modules, "vllm", module)
    return module


def test_no_gpu_is_a_clear_error(fake_vllm, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(BackendError, match="needs a CUDA GPU"):
        get_backend("vllm", model="m")


def test_requests_map_onto_chat_and_sampling_params(fake_vllm, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    backend = get_backend("vllm", model="m", tensor_parallel_size=2)
    assert backend.llm.kwargs["model"] == "m" and backend.llm.kwargs["tensor_parallel_size"] == 2
    reqs = [
        ChatRequest(
            messages=[{"role": "user", "content": "hey"}],
            n=2,
            temperature=0.5,
            top_p=0.9,
            max_tokens=7,
            seed=3,
            stop=["\n"],
        ),
        ChatRequest(messages=[{"role": "user", "content": "explode"}]),
        ChatRequest(messages=[{"role": "user", "content": "ok"}]),
    ]
    results = backend.generate(reqs)
    params = backend.llm.calls[0][1][0]
    assert vars(params) == {
        "n": 2,
        "temperature": 0.5,
        "top_p": 0.9,
        "max_tokens": 7,
        "seed": 3,
        "stop": ["\n"],
    }
    assert [
        (c.text, c.finish_reason, c.prompt_tokens, c.completion_tokens) for c in results[0].completions
    ] == [("hey-0", "stop", 3, 1), ("hey-1", "length", 3, 2)]
    # one bad prompt fails vLLM's whole call: the others are retried alone and succeed
    assert results[1].error == "vLLM: prompt too long"
    assert results[2].completions[0].text == "ok-0"
    assert backend.info()["vllm"] == "0.0-test"

"""The OpenAI-compatible backend against a real HTTP server on 127.0.0.1 that misbehaves on request."""

import asyncio
import os
import socket

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
from synth_fixtures import ChatServer

from synth.backends import BackendError, ChatRequest, get_backend
from synth.backends.openai import OpenAIBackend

pytest.importorskip("httpx")


def user(text):
    return [{"role": "user", "content": text}]


def backend_for(server, **kw):
    opts = {"model": "teacher", "base_url": server.url, "backoff": 0.01, "max_backoff": 0.05, "timeout": 5.0}
    return OpenAIBackend(**{**opts, **kw})


@pytest.fixture
def server():
    with ChatServer() as s:
        yield s


def test_answers_and_sends_the_sampling_settings(server):
    backend = get_backend("openai", model="teacher", base_url=server.url)
    [r] = backend.generate(
        [
            ChatRequest(
                messages=user("hello"), n=2, temperature=0.3, top_p=0.9, max_tokens=50, seed=11, stop=["\n\n"]
            )
        ]
    )
    assert [c.text for c in r.completions] == ["echo: hello", "echo: hello #1"]
    assert all(c.finish_reason == "stop" for c in r.completions)
    [payload] = server.requests
    assert payload == {
        "model": "teacher",
        "messages": user("hello"),
        "temperature": 0.3,
        "top_p": 0.9,
        "max_tokens": 50,
        "n": 2,
        "seed": 11,
        "stop": ["\n\n"],
    }
    # usage covers both choices together; it is split between them and the total is kept
    assert sum(c.completion_tokens for c in r.completions) == 2 + 3
    assert r.completions[0].prompt_tokens > 0


def test_greedy_samples_are_asked_for_one_by_one(server):
    """Regression: vLLM's server answers 400 to n > 1 at temperature 0, so greedy n > 1 always failed."""
    backend = get_backend("openai", model="teacher", base_url=server.url)
    [r] = backend.generate([ChatRequest(messages=user("hello"), n=2, temperature=0)])
    assert r.ok and len(r.completions) == 2
    assert [p.get("n") for p in server.requests] == [None, None] and backend.sends_n


def test_length_finish_reason_is_passed_on(server):
    [r] = backend_for(server).generate([ChatRequest(messages=user("one two three four"), max_tokens=2)])
    assert r.completions[0].finish_reason == "length"


def test_api_key_comes_from_the_named_environment_variable(server, monkeypatch):
    monkeypatch.setenv("MY_TEACHER_KEY", "sk-test-123")
    backend_for(server, api_key_env="MY_TEACHER_KEY").generate([ChatRequest(messages=user("a"))])
    monkeypatch.delenv("MY_TEACHER_KEY")
    backend_for(server, api_key_env="MY_TEACHER_KEY").generate([ChatRequest(messages=user("b"))])
    assert server.headers[0].get("Authorization") == "Bearer sk-test-123"
    assert "Authorization" not in server.headers[1]


def test_n_is_emulated_when_the_server_ignores_it():
    with ChatServer(support_n=False) as server:
        backend = backend_for(server)
        [r] = backend.generate([ChatRequest(messages=user("q"), n=3, seed=5)])
        assert len(r.completions) == 3
        assert [p.get("n") for p in server.requests] == [3, None, None]
        # distinct seeds for distinct samples (the emulated ones are sent concurrently: any arrival order)
        assert server.requests[0]["seed"] == 5 and sorted(p["seed"] for p in server.requests[1:]) == [6, 7]
        backend.generate([ChatRequest(messages=user("again"), n=2)])
        assert [p.get("n") for p in server.requests[3:]] == [None, None]  # not asked for n again
        assert "emulated" in backend.info()["n_mode"]


def test_n_mode_emulate_never_sends_n(server):
    [r] = backend_for(server, n_mode="emulate").generate([ChatRequest(messages=user("q"), n=3)])
    assert len(r.completions) == 3 and all("n" not in p for p in server.requests)


def test_retries_429_500_timeouts_and_malformed_bodies():
    with ChatServer(slow_seconds=1.0) as server:
        backend = backend_for(server, timeout=0.3)
        prompts = ["flaky429:2", "flaky500:1", "slow:1", "malformed:1", "fine"]
        results = backend.generate([ChatRequest(messages=user(p)) for p in prompts])
        assert [r.error for r in results] == [None] * 5
        assert [r.completions[0].text for r in results] == [f"echo: {p}" for p in prompts]
        assert backend.retries == 2 + 1 + 1 + 1


def test_gives_up_after_max_retries_and_other_requests_still_succeed(server):
    backend = backend_for(server, max_retries=3)
    results = backend.generate([ChatRequest(messages=user("always500")), ChatRequest(messages=user("fine"))])
    assert "HTTP 500" in results[0].error and "gave up after 4 attempts" in results[0].error
    assert results[1].ok
    assert sum(1 for p in server.requests if p["messages"] == user("always500")) == 4


def test_a_refused_request_is_not_retried(server):
    [r] = backend_for(server).generate([ChatRequest(messages=user("bad400"))])
    assert r.error == "HTTP 400: maximum context length exceeded"
    assert len(server.requests) == 1


def test_a_refused_key_stops_the_run_with_a_clear_message(server, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(
        BackendError, match=r"HTTP 401 .*refused the API key .*\$OPENAI_API_KEY, which is not set"
    ):
        backend_for(server).generate(
            [ChatRequest(messages=user("unauthorized")), ChatRequest(messages=user("x"))]
        )


def test_wrong_base_url_is_a_clear_error(server):
    backend = backend_for(server, base_url=server.url.removesuffix("/v1"))
    with pytest.raises(BackendError, match="HTTP 404 .*check --base-url"):
        backend.generate([ChatRequest(messages=user("x"))])


def test_concurrency_is_bounded():
    with ChatServer(delay=0.1) as server:
        backend = backend_for(server, concurrency=3)
        results = backend.generate([ChatRequest(messages=user(f"q{i}")) for i in range(12)])
        assert all(r.ok for r in results)
        assert [r.completions[0].text for r in results] == [f"echo: q{i}" for i in range(12)]  # order kept
        assert 2 <= server.max_in_flight <= 3


def test_no_server_listening_is_a_failed_request_after_retries():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    backend = OpenAIBackend(model="m", base_url=f"http://127.0.0.1:{port}/v1", max_retries=2, backoff=0.01)
    [r] = backend.generate([ChatRequest(messages=user("x"))])
    assert "connection failed" in r.error and "gave up after 3 attempts" in r.error


def test_backoff_is_exponential_with_full_jitter_and_honours_retry_after(monkeypatch):
    backend = OpenAIBackend(model="m", base_url="http://127.0.0.1:1/v1", backoff=1.0, max_backoff=10.0)
    monkeypatch.setattr("synth.backends.openai.random.random", lambda: 1.0)
    assert [backend.delay(a) for a in range(1, 7)] == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    monkeypatch.setattr("synth.backends.openai.random.random", lambda: 0.25)
    assert backend.delay(3) == 1.0
    assert backend.delay(1, retry_after=3.0) == 3.0
    assert backend.delay(1, retry_after=99.0) == 10.0


def test_works_from_inside_a_running_event_loop(server):
    async def notebook_cell():
        return backend_for(server).generate([ChatRequest(messages=user("from a loop"))])

    [r] = asyncio.run(notebook_cell())
    assert r.completions[0].text == "echo: from a loop"


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"base_url": "localhost:8000/v1"}, "must start with http"),
        ({"n_mode": "sometimes"}, "n_mode must be"),
        ({"concurrency": 0}, "concurrency must be"),
    ],
)
def test_bad_settings_are_clear_errors(kw, message):
    with pytest.raises(BackendError, match=message):
        OpenAIBackend(model="m", **kw)

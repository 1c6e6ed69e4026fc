"""`RayBackend`: a synth backend on Ray actors answers as it does locally, behind the driver's cache."""

from __future__ import annotations

import os
import sys

import pytest

ray = pytest.importorskip("ray", reason="the ray extra is not installed")

from synth.backends import BackendError, ChatRequest  # noqa: E402
from synth.backends.scripted import ScriptedBackend  # noqa: E402
from synth.cache import ResponseCache  # noqa: E402
from synth.llm import CachedLLM  # noqa: E402
from synth.ray_llm import RayBackend  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def ray_instance(ray_cluster):
    """The session's Ray instance (tests/conftest.py), which declares one GPU."""
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the factory below travels by value
    return ray_cluster


def answer(req, i):
    text = req.messages[-1]["content"]
    return None if "fail" in text else f"{text.upper()} #{i} (pid {os.getpid()})"


def scripted(name, *, model):
    return ScriptedBackend(answer, model=model)


def requests(n):
    return [
        ChatRequest([{"role": "user", "content": f"question {i}" + (" fail" if i == 3 else "")}], n=2)
        for i in range(n)
    ]


def test_results_come_back_in_order_from_the_actors_and_fill_the_drivers_cache(tmp_path):
    cache = ResponseCache(tmp_path / "cache.sqlite")
    llm = CachedLLM(RayBackend("scripted", model="m", actors=2, requests_per_call=3, factory=scripted), cache)
    results = llm.complete(requests(12))
    assert [r.ok for r in results] == [i != 3 for i in range(12)]
    assert results[3].error == "scripted failure"
    texts = [[c.text.split(" (pid")[0] for c in r.completions] for r in results]
    assert texts[5] == ["QUESTION 5 #0", "QUESTION 5 #1"]
    pids = {c.text.split("pid ")[1] for r in results for c in r.completions}
    assert pids and str(os.getpid()) not in pids  # Ray actors answered, not this process
    # Same cache keys as the local backend: a local re-run is served from the cache, except the failure.
    local = CachedLLM(ScriptedBackend(answer, model="m"), cache)
    again = local.complete(requests(12))
    assert local.stats.cache_hits == 22 and local.stats.fresh_samples == 0
    assert [c.text for c in again[5].completions] == [c.text for c in results[5].completions]


def test_openai_concurrency_is_one_budget_for_the_whole_cluster():
    backend = RayBackend("openai", model="m", actors=4, concurrency=64, base_url="http://10.0.0.5:8000/v1")
    assert backend.options["concurrency"] == 16 and backend.info()["cluster_concurrency"] == 64
    with pytest.raises(BackendError, match="below the number of actors"):
        RayBackend("openai", model="m", actors=4, concurrency=3)


def test_a_gpu_backend_on_a_cluster_without_enough_gpus_is_refused():
    # the session's cluster declares one GPU; an actor that needs two cannot be placed
    with pytest.raises(BackendError, match="2 GPU\\(s\\) per actor; the Ray cluster has 1"):
        RayBackend("vllm", model="m", gpus_per_actor=2)


def test_synth_commands_take_engine_ray(tmp_path, monkeypatch):
    """`synth generate --engine ray` answers on the actors and writes what the local engine writes."""
    from click.testing import CliRunner

    import synth.runner as run_lib
    from synth.cli import main

    monkeypatch.setattr(
        run_lib, "get_backend", lambda name, *, model, **hf_options: scripted(name, model=model)
    )
    src = tmp_path / "p.jsonl"
    src.write_text("".join(f'{{"id": "q{i}", "prompt": "question {i}"}}\n' for i in range(6)))
    outs = {}
    for engine in ("local", "ray"):
        extra = ["--engine", "ray", "--ray-actors", 2] if engine == "ray" else []
        r = CliRunner().invoke(
            main,
            [
                str(a)
                for a in [
                    "generate",
                    src,
                    "-o",
                    tmp_path / engine,
                    "--model",
                    "m",
                    "--n",
                    2,
                    "--no-cache",
                    *extra,
                ]
            ],
        )
        assert r.exit_code == 0, r.output
        rows = [line for line in (tmp_path / engine / "generated.jsonl").read_text().splitlines()]
        outs[engine] = [line.split(" (pid")[0] for line in rows]
    assert outs["ray"] == outs["local"] and len(outs["ray"]) == 12
    m = (tmp_path / "ray" / "manifest.json").read_text()
    assert '"engine": "ray"' in m and '"actors": 2' in m
    r = CliRunner().invoke(
        main, ["generate", str(src), "-o", str(tmp_path / "x"), "--model", "m", "--ray-address", "auto"]
    )
    assert r.exit_code == 1 and "--ray-address and --ray-actors are for --engine ray" in r.output

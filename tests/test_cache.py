"""The SQLite response cache: keys, persistence, and a real process killed mid-run that resumes."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
from synth_fixtures import ChatServer

from synth.backends import ChatRequest, Completion
from synth.cache import NullCache, ResponseCache, default_cache_path, sample_key

ROOT = Path(__file__).resolve().parent.parent
HI = [{"role": "user", "content": "Hi"}]


def test_key_covers_backend_model_settings_messages_and_sample_index():
    req = ChatRequest(messages=HI, temperature=0.5, max_tokens=10)
    base = sample_key("hf", "m", req, 0)
    variants = [
        sample_key("openai", "m", req, 0),
        sample_key("hf", "m2", req, 0),
        sample_key("hf", "m", req, 1),
        sample_key("hf", "m", ChatRequest(messages=HI, temperature=0.6, max_tokens=10), 0),
        sample_key("hf", "m", ChatRequest(messages=HI, temperature=0.5, max_tokens=11), 0),
        sample_key("hf", "m", ChatRequest(messages=HI, temperature=0.5, max_tokens=10, seed=1), 0),
        sample_key("hf", "m", ChatRequest(messages=HI, temperature=0.5, max_tokens=10, stop=["x"]), 0),
        sample_key(
            "hf",
            "m",
            ChatRequest(messages=[{"role": "user", "content": "Hi!"}], temperature=0.5, max_tokens=10),
            0,
        ),
    ]
    assert len({base, *variants}) == len(variants) + 1
    # n is not part of the key: asking for 4 samples reuses the first 2 of an earlier run
    assert sample_key("hf", "m", req.with_n(4), 0) == base
    # extra message keys (name, tool metadata) do not change what is asked
    assert (
        sample_key(
            "hf", "m", ChatRequest(messages=[{**HI[0], "name": "x"}], temperature=0.5, max_tokens=10), 0
        )
        == base
    )


def test_completions_persist_across_reopening(tmp_path):
    path = tmp_path / "sub" / "cache.sqlite"
    cache = ResponseCache(path)
    cache.put_many([("k1", Completion("one", "stop", 3, 1)), ("k2", Completion("two", "length", 3, None))])
    cache.close()
    again = ResponseCache(path)
    found = again.get_many(["k1", "k2", "k3"])
    assert found == {"k1": Completion("one", "stop", 3, 1), "k2": Completion("two", "length", 3, None)}
    assert (again.hits, again.misses) == (2, 1)
    assert len(again) == 2


def test_many_keys_at_once(tmp_path):
    cache = ResponseCache(tmp_path / "c.sqlite")
    cache.put_many([(f"k{i}", Completion(str(i), "stop", 1, 1)) for i in range(1500)])
    assert len(cache.get_many(f"k{i}" for i in range(2000))) == 1500


def test_null_cache_remembers_nothing():
    cache = NullCache()
    cache.put_many([("k", Completion("x", "stop", 1, 1))])
    assert cache.get_many(["k"]) == {} and cache.misses == 1 and cache.path is None


def test_default_path_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("POSTTRAIN_CACHE_DIR", str(tmp_path / "pc"))
    assert default_cache_path() == tmp_path / "pc" / "synth.sqlite"
    monkeypatch.delenv("POSTTRAIN_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_path() == tmp_path / "xdg" / "posttrain" / "synth.sqlite"


def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path):
    bad = tmp_path / "cache.sqlite"
    bad.write_text("this is not sqlite " * 100)
    with pytest.raises(OSError, match="cannot open the response cache"):
        ResponseCache(bad)


def _cached(path: Path) -> int:
    try:
        with sqlite3.connect(path, timeout=5) as db:
            return db.execute("SELECT COUNT(*) FROM completions").fetchone()[0]
    except sqlite3.OperationalError:  # not created yet
        return 0


def test_a_killed_run_resumes_without_regenerating_anything(tmp_path):
    rows = 30
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_bytes(
        b"".join(orjson.dumps({"id": f"p{i}", "prompt": f"question {i}"}) + b"\n" for i in range(rows))
    )
    cache = tmp_path / "cache.sqlite"
    out = tmp_path / "run"
    with ChatServer(delay=0.05) as server:
        argv = [
            sys.executable,
            "-m",
            "synth.cli",
            "generate",
            str(prompts),
            "-o",
            str(out),
            "--backend",
            "openai",
            "--base-url",
            server.url,
            "--model",
            "teacher",
            "--concurrency",
            "1",
            "--cache",  # the default --batch-size: all 30 prompts in one batch, stored as each is answered
            str(cache),
            "--no-progress",
        ]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        proc = subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while _cached(cache) < 8:
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "the run never reached 8 cached answers"
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL
        done_before = _cached(cache)
        assert 8 <= done_before < rows, "the kill came too late to test anything"
        assert not out.exists()  # the run directory is only moved into place when complete
        asked_before = len(server.requests)

        finished = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, timeout=120)
        assert finished.returncode == 0, finished.stderr.decode()
        asked_after = [p["messages"][-1]["content"] for p in server.requests[asked_before:]]

    manifest = orjson.loads((out / "manifest.json").read_bytes())
    assert manifest["cache"]["hits"] == done_before
    assert manifest["cache"]["misses"] == rows - done_before
    assert len(asked_after) == rows - done_before  # nothing cached was asked for again
    assert len(set(asked_after)) == len(asked_after)
    generated = [orjson.loads(line) for line in (out / "generated.jsonl").read_bytes().splitlines()]
    assert [g["parent_id"] for g in generated] == [f"p{i}" for i in range(rows)]
    assert all(g["messages"][-1]["content"] == f"echo: question {i}" for i, g in enumerate(generated))
    assert manifest["cache"]["path"] == str(cache)

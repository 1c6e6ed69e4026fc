"""`synth generate` end to end: through click's CliRunner and as a real subprocess."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner
from synth_fixtures import PROMPTS, REPLY, ChatServer, build_parrot

from posttrain.tinymodels import build_tiny_model
from synth.cli import main

pytest.importorskip("transformers")

ROOT = Path(__file__).resolve().parent.parent


def write(path: Path, rows: list) -> Path:
    path.write_bytes(b"".join((r if isinstance(r, bytes) else orjson.dumps(r)) + b"\n" for r in rows))
    return path


def read(path: Path) -> list[dict]:
    return [orjson.loads(line) for line in Path(path).read_bytes().splitlines() if line.strip()]


def synth(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def parrot(tmp_path_factory):
    return build_parrot("llama", tmp_path_factory.mktemp("parrot"), steps=60)


@pytest.fixture(scope="module")
def random_qwen(tmp_path_factory):
    return build_tiny_model("qwen2", tmp_path_factory.mktemp("random-qwen2"), seed=0)


@pytest.fixture
def prompts(tmp_path):
    return write(
        tmp_path / "prompts.jsonl",
        [
            {"id": "p1", "prompt": PROMPTS[0], "source": "geo"},
            {
                "id": "p2",
                "messages": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": PROMPTS[1]},
                ],
            },
            {"id": "p3", "instruction": PROMPTS[2], "output": "1 2 3 4 5 6 7 8 9 10"},
        ],
    )


def test_generate_answers_every_prompt_n_times(tmp_path, prompts, parrot):
    out, cache = tmp_path / "run", tmp_path / "cache.sqlite"
    r = synth(
        "generate",
        prompts,
        "-o",
        out,
        "--model",
        parrot,
        "--n",
        2,
        "--temperature",
        0,
        "--max-tokens",
        20,
        "--system-prompt",
        "Be brief.",
        "--cache",
        cache,
    )
    assert r.exit_code == 0, r.output
    rows = read(out / "generated.jsonl")
    assert [(g["parent_id"], g["sample_index"]) for g in rows] == [
        ("p1", 0),
        ("p1", 1),
        ("p2", 0),
        ("p2", 1),
        ("p3", 0),
        ("p3", 1),
    ]
    assert len({g["id"] for g in rows}) == 6
    first = rows[0]
    assert first["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": PROMPTS[0]},
        {"role": "assistant", "content": REPLY},
    ]
    assert first["source"] == "geo"  # pass-through columns survive
    assert {k: first[k] for k in ("model", "backend", "finish_reason")} == {
        "model": str(parrot),
        "backend": "hf",
        "finish_reason": "stop",
    }
    assert first["completion_tokens"] > 0 and first["prompt_tokens"] > 0
    assert rows[2]["messages"][0] == {
        "role": "system",
        "content": "Be brief.",
    }  # its own system turn, not doubled
    assert sum(m["role"] == "system" for m in rows[2]["messages"]) == 1
    assert rows[4]["previous_response"] == "1 2 3 4 5 6 7 8 9 10"  # the answer it replaced is kept
    assert rows[4]["messages"][-1] == {"role": "assistant", "content": REPLY}

    m = orjson.loads((out / "manifest.json").read_bytes())
    assert m["counts"] == {
        "input": 3,
        "invalid": 0,
        "not_a_prompt": 0,
        "requests": 3,
        "samples": 6,
        "generated": 6,
        "rejected_samples": 0,
        "failed_requests": 0,
        "balanced": True,
    }
    assert m["tokens"]["completion"] == sum(g["completion_tokens"] for g in rows)
    assert m["tokens"]["prompt"] == sum(g["prompt_tokens"] for g in rows if g["sample_index"] == 0)
    assert m["tokens"]["generated_now"] == m["tokens"]["completion"]
    assert m["cache"] == {"enabled": True, "path": str(cache), "hits": 0, "misses": 6, "stored": 6}
    assert m["throughput"]["generated_tokens_per_s"] > 0
    assert m["backend"]["end_of_turn"] == "<|eot_id|>"
    assert read(out / "rejected.jsonl") == []

    # Run again: every answer comes from the cache; asking for a third sample generates only that one.
    r = synth(
        "generate",
        prompts,
        "-o",
        out,
        "--model",
        parrot,
        "--n",
        3,
        "--temperature",
        0,
        "--max-tokens",
        20,
        "--system-prompt",
        "Be brief.",
        "--cache",
        cache,
        "--force",
    )
    assert r.exit_code == 0, r.output
    m2 = orjson.loads((out / "manifest.json").read_bytes())
    assert (m2["cache"]["hits"], m2["cache"]["misses"]) == (6, 3)
    assert m2["tokens"]["generated_now"] == m["tokens"]["generated_now"] // 2
    again = read(out / "generated.jsonl")
    assert [g for g in again if g["sample_index"] < 2] == rows


def test_a_generated_run_directory_is_input_for_curate(tmp_path, prompts, parrot):
    from curate.io import resolve_input

    out = tmp_path / "run"
    synth(
        "generate",
        prompts,
        "-o",
        out,
        "--model",
        parrot,
        "--temperature",
        0,
        "--max-tokens",
        20,
        "--no-cache",
    )
    assert resolve_input(out) == [out / "generated.jsonl"]


def test_no_cache_writes_no_cache_and_default_cache_follows_env(tmp_path, prompts, parrot, monkeypatch):
    monkeypatch.setenv("POSTTRAIN_CACHE_DIR", str(tmp_path / "cachedir"))
    r = synth("generate", prompts, "-o", tmp_path / "a", "--model", parrot, "--max-tokens", 20, "--no-cache")
    assert r.exit_code == 0, r.output
    assert not (tmp_path / "cachedir").exists()
    m = orjson.loads((tmp_path / "a" / "manifest.json").read_bytes())
    assert m["cache"]["enabled"] is False and m["cache"]["path"] is None
    r = synth("generate", prompts, "-o", tmp_path / "b", "--model", parrot, "--max-tokens", 20)
    m = orjson.loads((tmp_path / "b" / "manifest.json").read_bytes())
    assert m["cache"]["path"] == str(tmp_path / "cachedir" / "synth.sqlite")
    assert (tmp_path / "cachedir" / "synth.sqlite").is_file()


def test_truncated_answers_go_to_the_ledger_unless_kept(tmp_path, prompts, random_qwen):
    r = synth(
        "generate", prompts, "-o", tmp_path / "a", "--model", random_qwen, "--max-tokens", 4, "--no-cache"
    )
    assert r.exit_code == 0, r.output
    assert read(tmp_path / "a" / "generated.jsonl") == []
    rejected = read(tmp_path / "a" / "rejected.jsonl")
    assert [x["reject_reason"] for x in rejected] == ["truncated"] * 3
    assert rejected[0]["reject_step"] == "generate"
    assert rejected[0]["reject_detail"] == "hit --max-tokens 4 before the end of the answer"
    assert rejected[0]["finish_reason"] == "length" and rejected[0]["messages"][-1]["role"] == "assistant"
    r = synth(
        "generate",
        prompts,
        "-o",
        tmp_path / "b",
        "--model",
        random_qwen,
        "--max-tokens",
        4,
        "--no-cache",
        "--keep-truncated",
    )
    kept = read(tmp_path / "b" / "generated.jsonl")
    assert len(kept) == 3 and all(
        g["finish_reason"] == "length" and g["completion_tokens"] == 4 for g in kept
    )


def test_failed_requests_go_to_the_ledger_and_the_run_finishes(tmp_path):
    src = write(
        tmp_path / "in.jsonl",
        [
            {"id": "a", "prompt": "always500"},
            {"id": "b", "prompt": "bad400"},
            {"id": "c", "prompt": "fine"},
            {"id": "d", "prompt": "p", "chosen": "x", "rejected": "y"},
        ],
    )
    with ChatServer() as server:
        r = synth(
            "generate",
            src,
            "-o",
            tmp_path / "run",
            "--backend",
            "openai",
            "--base-url",
            server.url,
            "--model",
            "teacher",
            "--max-retries",
            1,
            "--no-cache",
            "--n",
            2,
        )
    assert r.exit_code == 0, r.output
    out = tmp_path / "run"
    assert [(g["parent_id"], g["messages"][-1]["content"]) for g in read(out / "generated.jsonl")] == [
        ("c", "echo: fine"),
        ("c", "echo: fine #1"),
    ]
    rejected = {(x.get("parent_id", x["id"]), x.get("sample_index")): x for x in read(out / "rejected.jsonl")}
    assert set(rejected) == {("a", 0), ("a", 1), ("b", 0), ("b", 1), ("d", None)}
    assert rejected[("a", 0)]["reject_reason"] == "generation_failed"
    assert (
        "HTTP 500" in rejected[("a", 0)]["reject_detail"]
        and "gave up after 2 attempts" in rejected[("a", 0)]["reject_detail"]
    )
    assert rejected[("b", 1)]["reject_detail"] == "HTTP 400: maximum context length exceeded"
    assert rejected[("d", None)]["reject_reason"] == "not_a_prompt"
    m = orjson.loads((out / "manifest.json").read_bytes())
    assert m["counts"]["failed_requests"] == 2 and m["counts"]["balanced"]
    assert m["reasons"] == {"generation_failed": 4, "not_a_prompt": 1}
    assert m["backend"]["retries"] == 1  # row a: one retry; row b's 400 is final


def test_empty_answers_are_rejected(tmp_path):
    src = write(tmp_path / "in.jsonl", [{"id": "a", "prompt": "x"}])
    with ChatServer() as server:
        r = synth(
            "generate",
            src,
            "-o",
            tmp_path / "run",
            "--backend",
            "openai",
            "--base-url",
            server.url,
            "--model",
            "teacher",
            "--no-cache",
            "--stop",
            "echo",
        )
    assert r.exit_code == 0, r.output
    [x] = read(tmp_path / "run" / "rejected.jsonl")
    assert x["reject_reason"] == "empty_completion"


def test_dry_run_counts_requests_and_prompt_tokens_and_writes_nothing(tmp_path, prompts, parrot):
    cache = tmp_path / "cache.sqlite"
    r = synth(
        "generate", prompts, "--model", parrot, "--n", 2, "--max-tokens", 20, "--dry-run", "--cache", cache
    )
    assert r.exit_code == 0, r.output
    assert "requests:       3 x n=2 = 6 samples (0 cached, 6 to generate)" in r.output
    assert "(tokenizer)" in r.output
    tokens = int(r.output.split("prompt tokens:")[1].split("(")[0].replace(",", ""))
    out = tmp_path / "run"
    synth("generate", prompts, "-o", out, "--model", parrot, "--n", 2, "--max-tokens", 20, "--cache", cache)
    assert tokens == orjson.loads((out / "manifest.json").read_bytes())["tokens"]["prompt"]
    r = synth(
        "generate", prompts, "--model", parrot, "--n", 3, "--max-tokens", 20, "--dry-run", "--cache", cache
    )
    assert "(6 cached, 3 to generate)" in r.output
    r = synth("generate", prompts, "--backend", "openai", "--model", "gpt-x", "--dry-run", "--no-cache")
    assert "estimate (~4 characters per token)" in r.output and "cache:          off" in r.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache.sqlite", "prompts.jsonl", "run"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["generate", "missing.jsonl", "-o", "out", "--model", "m"], "missing.jsonl: no such file"),
        (["generate", "bad.jsonl", "-o", "out", "--model", "{parrot}"], "bad.jsonl:2: "),
        (["generate", "ok.jsonl", "-o", "out", "--model", "./nowhere"], "./nowhere: no such model directory"),
        (
            ["generate", "ok.jsonl", "-o", "out", "--model", "m", "--backend", "vllm"],
            "the vllm backend needs vLLM",
        ),
        (["generate", "ok.jsonl", "--model", "m"], "Missing option '-o' / '--output' (or pass --dry-run)"),
        (
            ["generate", "ok.jsonl", "-o", "out", "--model", "m", "--top-p", "0"],
            "Invalid value for '--top-p'",
        ),
    ],
)
def test_user_errors_are_one_line_messages(tmp_path, monkeypatch, parrot, args, message):
    if "vllm" in args and importlib.util.find_spec("vllm") is not None:
        pytest.skip("vLLM is installed here")
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "ok.jsonl", [{"prompt": "hi"}])
    write(tmp_path / "bad.jsonl", [{"prompt": "hi"}, b'{"prompt": "unterminated'])
    r = synth(*[a.format(parrot=parrot) for a in args])
    assert r.exit_code != 0
    assert message.lower() in r.output.lower()
    assert "Traceback" not in r.output
    assert not (tmp_path / "out").exists()


def test_bad_line_message_names_file_line_and_field(tmp_path, parrot):
    src = write(tmp_path / "in.jsonl", [{"prompt": "hi"}, {"messages": [{"role": "user", "content": 3}]}])
    r = synth("generate", src, "-o", tmp_path / "out", "--model", parrot)
    assert r.exit_code == 1
    assert f"{src}:2: field 'messages[0].content': expected a string" in r.output
    r = synth(
        "generate",
        src,
        "-o",
        tmp_path / "out",
        "--model",
        parrot,
        "--on-error",
        "skip",
        "--max-tokens",
        20,
        "--no-cache",
    )
    assert r.exit_code == 0
    [bad] = read(tmp_path / "out" / "invalid.jsonl")
    assert bad["line"] == 2 and bad["field"] == "messages[0].content"


def test_a_refused_api_key_stops_with_a_message(tmp_path, monkeypatch):
    monkeypatch.setenv("TEACHER_KEY", "wrong")
    src = write(tmp_path / "in.jsonl", [{"prompt": "unauthorized"}])
    with ChatServer() as server:
        r = synth(
            "generate",
            src,
            "-o",
            tmp_path / "run",
            "--backend",
            "openai",
            "--base-url",
            server.url,
            "--model",
            "teacher",
            "--api-key-env",
            "TEACHER_KEY",
            "--no-cache",
        )
    assert r.exit_code == 1
    assert "HTTP 401" in r.output and "$TEACHER_KEY, which is set" in r.output
    assert not (tmp_path / "run").exists()


def test_progress_bar_shows_rows_and_tokens_per_second(tmp_path, prompts, parrot):
    r = synth(
        "generate",
        prompts,
        "-o",
        tmp_path / "run",
        "--model",
        parrot,
        "--max-tokens",
        20,
        "--no-cache",
        "--progress",
        "--batch-size",
        1,
    )
    assert r.exit_code == 0
    assert "3/3" in r.output and "tok/s" in r.output and "row" in r.output


def test_every_command_has_help_with_an_example():
    for args in (["--help"], ["generate", "--help"]):
        r = synth(*args)
        assert r.exit_code == 0 and "Example" in r.output and "synth generate" in r.output


def test_help_does_not_import_torch_or_transformers():
    code = (
        "import sys, synth.cli; sys.exit(bool({'torch', 'transformers', 'httpx', 'vllm'} & set(sys.modules)))"
    )
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0


def test_console_command_in_a_subprocess(tmp_path, prompts, parrot):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "synth.cli",
            "generate",
            str(prompts),
            "-o",
            str(tmp_path / "run"),
            "--model",
            str(parrot),
            "--temperature",
            "0",
            "--max-tokens",
            "20",
            "--no-cache",
        ],
        capture_output=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert p.returncode == 0, p.stderr.decode()
    err = p.stderr.decode()
    assert "samples 3 = generated 3 + rejected 0" in err and "manifest:" in err
    assert [g["messages"][-1]["content"] for g in read(tmp_path / "run" / "generated.jsonl")] == [REPLY] * 3


def test_every_synth_command_shares_backend_and_run_options():
    """Regression: --hf-batch-size was declared per command (and missing from `synth tag`)."""
    from click import Context

    from synth.config import BackendSettings

    ctx = Context(main)
    names = main.list_commands(ctx)
    assert "generate" in names
    for name in names:
        cmd = main.get_command(ctx, name)
        opts = {o for p in cmd.params for o in p.opts}
        assert {"--hf-batch-size", "--force", "--progress", "--backend", "--model"} <= opts, name
    cfg = BackendSettings(device="cpu", dtype="auto", hf_batch_size=7)
    assert cfg.backend_options("hf") == {"device": "cpu", "dtype": "auto", "batch_size": 7}


def test_turns_writes_multi_turn_dialogues_with_a_user_simulator(tmp_path, monkeypatch):
    """Llama 3's multi-turn synthetic dialogues: the simulator speaks for the user, the teacher answers."""
    import synth.runner as runner
    from synth.backends.scripted import ScriptedBackend

    def script(req, i):
        if "You play the user" in req.messages[0]["content"]:
            answers = req.messages[-1]["content"].count("Assistant:")
            return f"Follow-up question {answers}?"
        return f"Answer {sum(m['role'] == 'assistant' for m in req.messages) + 1} (sample {i})"

    monkeypatch.setattr(runner, "get_backend", lambda name, **kw: ScriptedBackend(script, model="m"))
    src = tmp_path / "p.jsonl"
    src.write_text('{"id": "a", "prompt": "Tell me about tides."}\n')
    r = synth("generate", src, "-o", tmp_path / "out", "--model", "m", "--turns", 3, "--n", 2, "--no-cache")
    assert r.exit_code == 0, r.output
    rows = read(tmp_path / "out" / "generated.jsonl")
    assert len(rows) == 2 and all(row["assistant_turns"] == 3 for row in rows)
    roles = [m["role"] for m in rows[0]["messages"]]
    assert roles == ["user", "assistant", "user", "assistant", "user", "assistant"]
    assert rows[0]["messages"][2]["content"] == "Follow-up question 1?"
    assert [m["content"] for m in rows[1]["messages"] if m["role"] == "assistant"][0] == "Answer 1 (sample 1)"


def test_every_turn_re_answers_each_assistant_turn_keeping_the_user_turns(tmp_path, monkeypatch):
    import synth.runner as runner
    from synth.backends.scripted import ScriptedBackend

    teacher = ScriptedBackend(lambda req, i: f"Teacher answer to: {req.messages[-1]['content']}", model="m")
    monkeypatch.setattr(runner, "get_backend", lambda name, **kw: teacher)
    chat = {
        "id": "c",
        "messages": [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "old 1"},
            {"role": "user", "content": "And then?"},
            {"role": "assistant", "content": "old 2"},
        ],
    }
    src = tmp_path / "c.jsonl"
    src.write_text(json.dumps(chat) + "\n")
    r = synth("generate", src, "-o", tmp_path / "out", "--model", "m", "--every-turn", "--no-cache")
    assert r.exit_code == 0, r.output
    [row] = read(tmp_path / "out" / "generated.jsonl")
    assert [m["content"] for m in row["messages"]] == [
        "Hi",
        "Teacher answer to: Hi",
        "And then?",
        "Teacher answer to: And then?",
    ]
    # The second answer saw the teacher's first answer, not the discarded one.
    assert all("old 1" not in json.dumps(req.messages) for req in teacher.calls)


@pytest.mark.parametrize(
    "method",
    [m for m in __import__("synth.methods", fromlist=["METHODS"]).METHODS if m != "exec-verify"],
)
def test_every_method_plans_a_dry_run_without_a_run_context(tmp_path, method):
    """`--dry-run` builds the method with no run context (autoif reached for its sandbox and crashed)."""
    src = write(tmp_path / "p.jsonl", [{"id": "1", "prompt": "What is 2+2?", "answer": "4"}])
    r = synth(method, src, "--backend", "openai", "--model", "m", "--no-cache", "--dry-run")
    assert r.exit_code == 0, r.output
    assert "cache:          off" in r.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.jsonl"]

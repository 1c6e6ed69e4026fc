"""The `curate` CLI end to end, driven through click's CliRunner and a real subprocess."""

from __future__ import annotations

import subprocess
import sys

import orjson
import pytest

from curate.cli import main
from tests.conftest import SAMPLE, conv, read_jsonl, write_jsonl

TEXT = (
    "Regular exercise improves cardiovascular health, strengthens muscles and bones, and helps regulate "
    "body weight. It also reduces the risk of chronic diseases such as type 2 diabetes and certain cancers. "
    "Experts recommend at least 150 minutes of moderate aerobic activity each week."
)


@pytest.fixture
def data(tmp_path):
    rows = [
        conv("What are the benefits of exercise?", TEXT, source="a"),
        conv("What are the benefits of exercise?", TEXT.replace("Experts", "Doctors"), source="near"),
        conv("WHAT are the benefits of exercise?", TEXT.upper(), source="exact"),
        conv("Who are you?", "As an AI language model developed by OpenAI, I can help.", id="claim"),
        conv("Quelle heure est-il ?", "Il est trois heures de l'après-midi, c'est l'heure du goûter."),
        {"messages": [{"role": "user", "content": "Hi"}, {"role": "user", "content": "Hello?"}]},
        {
            "instruction": "Name three primary colors.",
            "output": "Red, yellow and blue are the traditional primary colors.",
        },
    ]
    return write_jsonl(tmp_path / "data.jsonl", rows)


def test_filter_end_to_end_writes_the_run_directory(tmp_path, cli, data):
    out = tmp_path / "run"
    res = cli(main, "filter", data, "-o", out, "-j", "1")
    assert res.exit_code == 0, res.output
    assert "input 7 = kept 2 + rejected 5 + invalid 0" in res.output
    kept = read_jsonl(out / "kept.jsonl")
    rejected = {r["reject_reason"]: r for r in read_jsonl(out / "rejected.jsonl")}
    assert set(rejected) == {
        "near_duplicate",
        "exact_duplicate",
        "claims_other_developer",
        "language_not_allowed",
        "roles_not_alternating",
    }
    assert rejected["claims_other_developer"]["id"] == "claim"
    assert (
        kept[0]["source"] == "a" and "instruction" not in kept[1] and kept[1]["messages"][0]["role"] == "user"
    )
    m = orjson.loads((out / "manifest.json").read_bytes())
    assert m["counts"]["balanced"] and [s["name"] for s in m["steps"]] == [
        "quality",
        "selfid",
        "exact-dedup",
        "near-dedup",
        "language",
    ]
    assert m["inputs"][0]["xxh3_128"] and m["versions"]["polars"]
    assert m["config"]["steps"][3]["settings"]["threshold"] == 0.8


def test_why_explains_rejected_kept_and_unknown_rows(tmp_path, cli, data):
    out = tmp_path / "run"
    cli(main, "filter", data, "-o", out, "-q")
    dup = next(r for r in read_jsonl(out / "rejected.jsonl") if r["reject_reason"] == "near_duplicate")
    res = cli(main, "why", dup["id"], out)
    assert res.exit_code == 0
    assert "REJECTED" in res.output and "near-dedup" in res.output and "refers to" in res.output
    j = orjson.loads(cli(main, "why", dup["id"], out, "--format", "json").output)
    assert j["refers_to"]["status"] == "kept" and j["refers_to"]["row"]["source"] == "a"
    kept_id = read_jsonl(out / "kept.jsonl")[0]["id"]
    assert "KEPT" in cli(main, "why", kept_id, out).output
    res = cli(main, "why", "no-such-id", out)
    assert res.exit_code == 1 and "NOT FOUND" in res.output


def test_diff_between_input_and_run(tmp_path, cli, data):
    out = tmp_path / "run"
    cli(main, "filter", data, "-o", out, "-q")
    res = cli(main, "diff", data, out)
    assert res.exit_code == 0
    assert "dropped 5" in res.output and "quality:roles_not_alternating" in res.output
    j = orjson.loads(cli(main, "diff", data, out, "--format", "json").output)
    assert j["counts"] == {"a": 7, "b": 2, "unchanged": 2, "dropped": 5, "edited": 0, "added": 0}
    assert {d["reason"] for d in j["dropped"]} >= {"near_duplicate", "exact_duplicate"}


def test_diff_shows_edits_word_by_word(tmp_path, cli):
    a = write_jsonl(
        tmp_path / "a.jsonl",
        [conv("Call me", "My number is 555 0100, call today.", id="x"), conv("Hello", "Hi there", id="y")],
    )
    b = write_jsonl(
        tmp_path / "b.jsonl",
        [conv("Call me", "My number is <PHONE_NUMBER>, call today.", id="x"), conv("New", "Row", id="z")],
    )
    j = orjson.loads(cli(main, "diff", a, b, "--format", "json").output)
    assert j["counts"]["edited"] == 1 and j["counts"]["added"] == 1 and j["counts"]["dropped"] == 1
    ops = j["edited"][0]["changes"][0]["diff"]
    assert ["-", "555 0100,"] in ops and ["+", "<PHONE_NUMBER>,"] in ops
    text = cli(main, "diff", a, b).output
    assert "[-555 0100,-]" in text and "{+<PHONE_NUMBER>,+}" in text


def test_stats(cli, data):
    res = cli(main, "stats", data)
    assert res.exit_code == 0
    assert "rows     7" in res.output and "languages" in res.output and "en " in res.output
    j = orjson.loads(cli(main, "stats", data, "--format", "json").output)
    assert j["rows"] == 7 and j["kinds"]["conversation"] == 6 and j["turns"]["p50"] == 2


def test_filters_lists_every_step_with_options(cli):
    res = cli(main, "filters")
    assert res.exit_code == 0
    for name in ("quality", "selfid", "exact-dedup", "near-dedup", "language"):
        assert name in res.output
    assert "threshold" in res.output and "0.8" in res.output and "max_duplicate_ngram_share" in res.output


def test_recipe_and_set_and_identity(tmp_path, cli, data):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        "filters:\n  - selfid: {identity: ChatGPT, developer: OpenAI}\n  - language: {languages: [en, fr]}\n"
    )
    out = tmp_path / "run"
    res = cli(main, "filter", data, "--config", recipe, "-o", out, "-q")
    assert res.exit_code == 0, res.output
    assert read_jsonl(out / "rejected.jsonl") == [], "own identity allowed, French allowed"
    res = cli(
        main,
        "filter",
        data,
        "--filters",
        "selfid",
        "--identity",
        "ChatGPT",
        "--developer",
        "OpenAI",
        "-o",
        out,
        "--force",
        "-q",
    )
    assert res.exit_code == 0 and read_jsonl(out / "rejected.jsonl") == []
    res = cli(
        main,
        "filter",
        data,
        "--filters",
        "near-dedup",
        "--set",
        "near-dedup.threshold=0.99",
        "-o",
        out,
        "--force",
        "-q",
    )
    assert res.exit_code == 0 and [r["reject_reason"] for r in read_jsonl(out / "rejected.jsonl")] == [
        "near_duplicate"
    ]
    res = cli(main, "filter", data, "--filters", "quality", "--languages", "fr", "-o", out, "--force")
    assert (
        res.exit_code != 0
        and "--languages sets an option of language, which is not in the pipeline" in res.output
    )


def test_existing_output_needs_force(tmp_path, cli, data):
    out = tmp_path / "run"
    assert cli(main, "filter", data, "-o", out, "-q").exit_code == 0
    res = cli(main, "filter", data, "-o", out, "-q")
    assert res.exit_code != 0 and "--force" in res.output
    assert cli(main, "filter", data, "-o", out, "-q", "--force").exit_code == 0


def test_several_inputs_and_stdin_stdout_through_a_real_process(tmp_path, data):
    other = write_jsonl(tmp_path / "other.jsonl", [conv("What is 2 + 2?", "2 + 2 = 4.")])
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "curate.cli",
            "filter",
            "-",
            str(other),
            "-o",
            "-",
            "--ledger",
            str(tmp_path / "ledger"),
            "-q",
        ],
        input=data.read_bytes(),
        capture_output=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    kept = [orjson.loads(line) for line in proc.stdout.splitlines()]
    assert len(kept) == 3 and kept[-1]["messages"][1]["content"] == "2 + 2 = 4."
    m = orjson.loads((tmp_path / "ledger" / "manifest.json").read_bytes())
    assert m["counts"]["input"] == 8 and m["counts"]["rejected"] == 5 and m["outputs"]["kept"] == "-"
    assert not (tmp_path / "ledger" / "kept.jsonl").exists()


def test_stdout_without_ledger_is_refused(cli, data):
    res = cli(main, "filter", data, "-o", "-")
    assert res.exit_code != 0 and "--ledger" in res.output


def test_user_errors_have_no_traceback_in_a_real_process(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"messages": [{"role": "user", "content": "a"}]}\n{"messages": 3}\n')
    proc = subprocess.run(
        [sys.executable, "-m", "curate.cli", "filter", str(bad), "-o", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].startswith(f"Error: {bad}:2: field 'messages'")
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("cmd", ["filter", "filters", "why", "diff", "stats"])
def test_every_command_has_help_with_an_example(cli, cmd):
    res = cli(main, cmd, "--help")
    assert res.exit_code == 0 and "Example" in res.output


def test_sample_data_end_to_end(tmp_path, cli):
    """The demo: planted rows are dropped for the reason their `source` names, controls are kept."""
    src = SAMPLE / "conversations.jsonl"
    if not src.exists():
        pytest.fail("sample_data/conversations.jsonl is missing: run python sample_data/generate.py")
    out = tmp_path / "demo"
    res = cli(main, "filter", src, "-o", out)
    assert res.exit_code == 0, res.output
    rejected = read_jsonl(out / "rejected.jsonl")
    kept = read_jsonl(out / "kept.jsonl")
    for r in rejected:
        kind, step, reason = r["source"].split(":")
        assert (kind, step, reason) == ("planted", r["reject_step"], r["reject_reason"]), r["id"]
    planted = [
        r
        for r in kept
        if r.get("source", "").startswith("planted:")
        and r["source"].split(":")[1] in ("quality", "selfid", "exact-dedup", "near-dedup", "language")
    ]
    assert planted == [], [r["id"] for r in planted]
    steps_hit = {r["reject_step"] for r in rejected}
    assert steps_hit == {"quality", "selfid", "exact-dedup", "near-dedup", "language"}
    assert {r["source"] for r in kept} >= {"control:selfid"}
    m = orjson.loads((out / "manifest.json").read_bytes())
    assert m["counts"]["input"] == len(kept) + len(rejected) and len(kept) + len(rejected) >= 300


def test_shortcut_flags_reach_every_step_that_takes_them():
    from curate.cli import _filter_spec

    spec = _filter_spec(
        "pii,pii-redact,toxicity", None, {}, [("--pii-ner", "ner", "my_model", ("pii", "pii-redact"))]
    )
    assert spec == [{"pii": {"ner": "my_model"}}, {"pii-redact": {"ner": "my_model"}}, {"toxicity": {}}]

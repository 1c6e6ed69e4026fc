"""`train check` over the real CLI: each planted data fault is caught, with the line to fix, and exits 1."""

from __future__ import annotations

import json

import pytest

from tests.train_fixtures import (
    BAD_REPLY,
    conversation,
    preference,
    preference_rows,
    sft_rows,
    tiny_model,
    with_template,
    write_rows,
)

pytest.importorskip("transformers")

from train.cli import main as train_cli  # noqa: E402


def _check(cli, tmp_path, rows, *args, model=None):
    data = write_rows(tmp_path / "data.jsonl", rows)
    return cli(train_cli, "check", "--data", data, "--model", model or tiny_model("gemma"), *args)


@pytest.mark.parametrize("kind,rows", [("sft", sft_rows(1)), ("preference", preference_rows(1))])
def test_clean_data_passes(cli, tmp_path, kind, rows):
    r = _check(cli, tmp_path, rows)
    assert r.exit_code == 0, r.output
    assert f"({len(rows)} rows, {kind})" in r.output
    assert "result: ok: 0 error(s)" in r.output
    assert "chat template (gemma, end-of-turn <end_of_turn>)" in r.output


SFT_FAULTS = {
    "null content": (
        {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": None}]},
        "readable: row does not fit the schema: messages[1].content: expected a string, got null",
    ),
    "empty content": (conversation("Hi", "   "), "content: empty content"),
    "no alternation": (
        {
            "messages": [
                {"role": "user", "content": "a"},
                {"role": "user", "content": "b"},
                {"role": "assistant", "content": "c"},
            ]
        },
        "roles: roles do not alternate user/assistant (messages[1] is 'user', expected 'assistant')",
    ),
    "assistant first": (
        {
            "messages": [
                {"role": "assistant", "content": "a"},
                {"role": "user", "content": "b"},
                {"role": "assistant", "content": "c"},
            ]
        },
        "roles: roles do not alternate",
    ),
    "system in the middle": (
        {
            "messages": [
                {"role": "user", "content": "a"},
                {"role": "system", "content": "s"},
                {"role": "assistant", "content": "c"},
            ]
        },
        "roles: roles do not alternate user/assistant (messages[1] is 'system': a system message is only allowed first)",
    ),
    "ends with user": (
        {
            "messages": [
                {"role": "user", "content": "a"},
                {"role": "assistant", "content": "b"},
                {"role": "user", "content": "c"},
            ]
        },
        "final turn: the last turn of messages is user, not assistant",
    ),
    "other schema": (preference("q", "a", "b"), "one schema: a preference row in a sft dataset"),
    "control token in text": (
        conversation("Say <end_of_turn> please", "ok"),
        "control tokens: text contains the template's control token <end_of_turn>",
    ),
    "not json": ("{not json", "readable: row does not fit the schema: truncated JSON line"),
}

PREFERENCE_FAULTS = {
    "chosen equals rejected": (
        preference("q", "same answer", "same answer "),
        "chosen != rejected: chosen and rejected are identical",
    ),
    "prompt ends with assistant": (
        {
            "prompt": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
            "chosen": "b",
            "rejected": "c",
        },
        "final turn: prompt must end with a user or tool turn, not assistant",
    ),
    "empty rejected": (preference("q", "a", ""), "content: empty content"),
    "implicit prompt": (
        {
            "chosen": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
            "rejected": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "b"}],
        },
        "preference rows need an explicit prompt",
    ),
    "other schema": (conversation("q", "a"), "one schema: a conversation row in a preference dataset"),
}


def _planted(cli, tmp_path, good, fault, message, kind):
    rows = [*good[:2], fault, *good[2:]]
    if isinstance(fault, str):  # a raw line
        data = tmp_path / "data.jsonl"
        data.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
        r = cli(train_cli, "check", "--data", data, "--model", tiny_model("gemma"), "--kind", kind)
    else:
        r = _check(cli, tmp_path, rows, "--kind", kind)
    assert r.exit_code == 1, r.output
    assert message in r.output, r.output
    assert "data.jsonl:3" in r.output  # the planted row's line
    assert "result: FAILED" in r.output


@pytest.mark.parametrize("fault", sorted(SFT_FAULTS))
def test_planted_sft_faults(cli, tmp_path, fault):
    row, message = SFT_FAULTS[fault]
    _planted(cli, tmp_path, sft_rows(1), row, message, "sft")


@pytest.mark.parametrize("fault", sorted(PREFERENCE_FAULTS))
def test_planted_preference_faults(cli, tmp_path, fault):
    row, message = PREFERENCE_FAULTS[fault]
    _planted(cli, tmp_path, preference_rows(1), row, message, "preference")


def test_every_bad_row_is_reported_not_just_the_first(cli, tmp_path):
    rows = [conversation("q", "") for _ in range(7)] + sft_rows(1)
    r = _check(cli, tmp_path, rows, "--json")
    report = json.loads(r.output)
    assert r.exit_code == 1
    (p,) = [p for p in report["problems"] if p["check"] == "content"]
    assert p["count"] == 7 and len(p["examples"]) == 5


def test_kind_is_inferred_from_the_rows(cli, tmp_path):
    r = _check(cli, tmp_path, preference_rows(1), "--json")
    assert json.loads(r.output)["kind"] == "preference"


def test_lengths_histogram_truncation_warns_and_drops_fail(cli, tmp_path):
    long_reply = " ".join(["The sea is wide and deep and blue."] * 20)
    rows = [*sft_rows(1), conversation("Tell me about the sea.", long_reply, id="long")]
    ok = _check(cli, tmp_path, rows, "--max-length", "64")
    assert ok.exit_code == 0, ok.output  # truncation keeps part of the reply: a warning
    assert "max_length 64: 1 rows truncated, 0 rows dropped" in ok.output
    assert "warn  longer than max_length=64: truncated" in ok.output
    assert "(id long)" in ok.output
    assert "token lengths (conversation)" in ok.output and "#" in ok.output

    long_prompt = " ".join(["Tell me about the sea, please."] * 20)
    rows = [*preference_rows(1), preference(long_prompt, "ok", BAD_REPLY, id="longprompt")]
    dpo = _check(cli, tmp_path, rows, "--max-length", "64", "--kind", "dpo")
    assert dpo.exit_code == 1
    assert "training would drop these rows (the prompt alone fills max_length)" in dpo.output
    rows = [*preference_rows(1), preference("Tell me about the sea.", long_reply, BAD_REPLY, id="longreply")]
    rm = _check(cli, tmp_path, rows, "--max-length", "64", "--kind", "reward")
    assert rm.exit_code == 1
    assert "the reward trainer drops pairs longer than max_length" in rm.output
    dpo = _check(cli, tmp_path, rows, "--max-length", "64", "--kind", "dpo")
    assert dpo.exit_code == 0 and "1 rows truncated" in dpo.output


def test_template_fault_fails_the_check(cli, tmp_path):
    from posttrain.tinymodels import GEMMA_TEMPLATE

    broken = with_template(
        tiny_model("gemma"), tmp_path / "broken", GEMMA_TEMPLATE.replace("{{ bos_token }}", "", 1)
    )
    r = _check(cli, tmp_path, sft_rows(1), model=broken)
    assert r.exit_code == 1
    assert "FAIL  one BOS" in r.output and "0 BOS tokens" in r.output


def test_config_max_length_is_used(cli, tmp_path):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("max_length: 16\n")
    r = _check(cli, tmp_path, sft_rows(1), "--config", cfg)
    assert "max_length 16:" in r.output


def test_synth_run_directory_reads_the_file_for_the_kind(cli, tmp_path):
    run = tmp_path / "synth-run"
    run.mkdir()
    write_rows(run / "sft.jsonl", sft_rows(1))
    write_rows(run / "preference.jsonl", preference_rows(2))
    model = tiny_model("gemma")
    r = cli(train_cli, "check", "--data", run, "--model", model, "--kind", "preference")
    assert r.exit_code == 0 and "(8 rows, preference)" in r.output, r.output
    r = cli(train_cli, "check", "--data", run, "--model", model, "--kind", "sft")
    assert r.exit_code == 0 and "(4 rows, sft)" in r.output, r.output
    r = cli(train_cli, "check", "--data", run, "--model", model)
    assert r.exit_code == 1 and "pass --kind sft or --kind preference" in r.output

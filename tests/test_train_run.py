"""`train sft|dpo|reward` for a few CPU steps on tiny models: the loss falls, the weights move, the output loads,
generates and stops at the end-of-turn token, and the manifest says what was done.

The chain is end to end on inline data: `curate filter` -> `train sft` (reading the run directory) ->
`train dpo` (from the SFT output) -> `train merge`.
"""

from __future__ import annotations

import json
import math

import pytest

from tests.train_fixtures import (
    END_OF_TURN,
    FAST,
    QA,
    conversation,
    logged_losses,
    preference_rows,
    sft_rows,
    state_dict,
    tiny_model,
    without_end_of_turn_in_generation_config,
    write_rows,
)

torch = pytest.importorskip("torch")
pytest.importorskip("trl")

from train.cli import main as train_cli  # noqa: E402


def _run_cli(group, *args):
    from click.testing import CliRunner

    r = CliRunner().invoke(group, [str(a) for a in args], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return r


def _sets(*items):
    return [x for item in (*FAST, *items) for x in ("--set", item)]


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("train-run")


@pytest.fixture(scope="module")
def gemma_base(work):
    """The tiny Gemma, with a generation config that stops only at <eos> (as a base model ships)."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model("gemma"))
    return without_end_of_turn_in_generation_config(
        tiny_model("gemma"), work / "gemma-base", tok.eos_token_id
    )


@pytest.fixture(scope="module")
def sft_out(work, gemma_base):
    from curate.cli import main as curate_cli

    rows = [conversation(q, a) for q, a in QA] + [conversation("Hi", ""), conversation(*QA[0])]
    raw = write_rows(work / "raw.jsonl", rows)
    _run_cli(curate_cli, "filter", raw, "-o", work / "curated", "--filters", "quality,exact-dedup")
    out = work / "sft"
    r = _run_cli(
        train_cli,
        "sft",
        "--data",
        work / "curated",
        "--model",
        gemma_base,
        "-o",
        out,
        *_sets("max_steps=30", "learning_rate=3e-3"),
    )
    assert "tokens/s" in r.output
    return out


@pytest.fixture(scope="module")
def dpo_out(work, sft_out):
    data = write_rows(work / "prefs.jsonl", preference_rows(4))
    out = work / "dpo"
    _run_cli(
        train_cli,
        "dpo",
        "--data",
        data,
        "--model",
        sft_out,
        "-o",
        out,
        *_sets("max_steps=12", "learning_rate=5e-4", "data.eval_fraction=0.25"),
    )
    return out


@pytest.fixture(scope="module")
def reward_out(work):
    from train.config import load_run_config
    from train.reward import run_reward

    data = write_rows(work / "rm.jsonl", preference_rows(4))
    cfg = load_run_config(
        "reward",
        model=str(tiny_model("qwen2")),
        output_dir=str(work / "rm"),
        data_path=str(data),
        overrides=[*FAST, "max_steps=12", "learning_rate=1e-3", "data.eval_fraction=0.25"],
    )
    return run_reward(cfg, echo=lambda s: None)


def _manifest(out):
    return json.loads((out / "manifest.json").read_text())


def _assert_loss_falls(out):
    losses = logged_losses(out)
    assert len(losses) >= 6 and all(math.isfinite(x) for x in losses)
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3 - 0.05, losses


def _assert_changed(before: dict, after: dict, *, prefix: str = "model.layers."):
    shared = [k for k in after if k.startswith(prefix) and k in before]
    assert shared
    moved = [k for k in shared if not torch.equal(before[k], after[k])]
    assert len(moved) >= len(shared) // 2, f"only {len(moved)}/{len(shared)} tensors changed"


def _generate(out, prompt: str) -> tuple[list[int], str, object]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(out)
    model = AutoModelForCausalLM.from_pretrained(out).eval()
    text = tok.apply_chat_template(
        [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
    )
    ids = tok(text, add_special_tokens=False, return_tensors="pt")
    with torch.no_grad():  # the saved generation config decides where to stop
        y = model.generate(**ids, max_new_tokens=40, do_sample=False)
    new = y[0, ids["input_ids"].shape[1] :].tolist()
    return new, tok.decode(new, skip_special_tokens=False), tok


# --- SFT -----------------------------------------------------------------------------------------------------


def test_sft_loss_falls_and_weights_move(sft_out, gemma_base):
    _assert_loss_falls(sft_out)
    _assert_changed(state_dict(gemma_base), state_dict(sft_out))


def test_sft_output_generates_and_stops_at_end_of_turn(sft_out, gemma_base):
    from transformers import GenerationConfig

    eot_id = 5  # <end_of_turn> in the tiny Gemma vocabulary
    assert eot_id not in [GenerationConfig.from_pretrained(gemma_base).eos_token_id]
    eos = GenerationConfig.from_pretrained(sft_out).eos_token_id
    assert eot_id in eos and 1 in eos  # <end_of_turn> added, <eos> kept
    new, text, tok = _generate(sft_out, QA[0][0])
    assert tok.convert_ids_to_tokens(eot_id) == "<end_of_turn>"
    assert new[-1] == eot_id and len(new) < 40, text
    assert text.endswith("<end_of_turn>") and len(text) > len("<end_of_turn>")
    samples = [json.loads(line) for line in (sft_out / "samples.jsonl").read_text().splitlines()]
    assert samples and all(s["stopped_at_end_of_turn"] for s in samples)


def test_sft_manifest_records_the_run(sft_out, gemma_base):
    m = _manifest(sft_out)
    assert m["command"] == "train sft" and m["model"] == str(gemma_base)
    assert m["precision"] == "fp32" and m["device"] == "cpu" and m["seed"] == 42
    assert m["trl_config"]["class"] == "SFTConfig" and m["trl_config"]["max_steps"] == 30
    assert m["config"]["assistant_only_loss"] is True
    assert m["data"]["rows"] == 4 and len(m["data"]["xxh3_128"]) == 32  # curate kept 4 of 6 rows
    assert m["data"]["path"].endswith("curated")
    assert m["template"]["format"] == "gemma" and m["template"]["end_of_turn"] == "<end_of_turn>"
    assert len(m["template"]["sha256"]) == 64
    assert m["check"] == {"ok": True, "errors": 0, "warnings": 0}
    assert {"torch", "transformers", "trl", "python"} <= set(m["versions"])
    assert m["metrics"]["last_logged_loss"] < m["metrics"]["first_logged_loss"]
    assert m["throughput"]["tokens"] > 0 and m["throughput"]["tokens_per_s"] > 0
    assert (sft_out / "check.json").is_file() and not (sft_out / "checkpoints").exists()


# --- DPO -----------------------------------------------------------------------------------------------------


def test_dpo_loss_falls_and_reports_reward_accuracy(dpo_out):
    _assert_loss_falls(dpo_out)
    losses = logged_losses(dpo_out)
    assert abs(losses[0] - math.log(2)) < 1e-3  # policy == reference at step 0
    met = _manifest(dpo_out)["metrics"]
    assert {
        "rewards_accuracies",
        "rewards_margins",
        "eval_rewards_accuracies",
        "eval_rewards_margins",
    } <= set(met)
    assert met["rewards_margins"] > 0 and met["eval_rewards_accuracies"] >= 0.5


def test_dpo_weights_move_and_output_still_stops(dpo_out, sft_out):
    _assert_changed(state_dict(sft_out), state_dict(dpo_out))
    new, text, _ = _generate(dpo_out, QA[0][0])
    assert new[-1] == 5 and len(new) < 40, text
    m = _manifest(dpo_out)
    assert m["data"]["eval_rows"] > 0 and m["data"]["train_rows"] + m["data"]["eval_rows"] == 16


def test_merge_of_trained_runs_loads_and_generates(dpo_out, sft_out, work):
    _run_cli(train_cli, "merge", sft_out, dpo_out, "-o", work / "soup")
    new, text, _ = _generate(work / "soup", QA[0][0])
    assert new and new[-1] == 5, text


# --- reward model --------------------------------------------------------------------------------------------


def test_reward_model_trains_and_loads_as_a_scorer(reward_out):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from train.data import is_eval_row
    from train.reward import score

    _assert_loss_falls(reward_out)
    base = state_dict(tiny_model("qwen2"))
    model = AutoModelForSequenceClassification.from_pretrained(reward_out).eval()
    _assert_changed(base, {k: v for k, v in model.state_dict().items()})
    assert model.config.num_labels == 1 and model.config.pad_token_id is not None
    tok = AutoTokenizer.from_pretrained(reward_out)
    m = _manifest(reward_out)
    held = [r for r in preference_rows(4) if is_eval_row(r["id"], 0.25)]
    assert len(held) == m["data"]["eval_rows"] == m["metrics"]["eval_pairs"] > 0
    wins = [
        score(model, tok, r["prompt"], r["chosen"]) > score(model, tok, r["prompt"], r["rejected"])
        for r in held
    ]
    assert m["metrics"]["eval_accuracy"] == pytest.approx(sum(wins) / len(wins))
    assert m["metrics"]["eval_accuracy"] >= 0.75


# --- LoRA, refusals ------------------------------------------------------------------------------------------


def test_lora_sft_trains_an_adapter_and_saves_the_merged_model(work):
    data = write_rows(work / "lora.jsonl", sft_rows(2))
    out = work / "lora"
    _run_cli(
        train_cli,
        "sft",
        "--data",
        data,
        "--model",
        tiny_model("qwen2"),
        "-o",
        out,
        "--lora",
        *_sets("max_steps=8", "learning_rate=1e-2", "lora.r=4"),
    )
    _assert_loss_falls(out)
    assert (out / "adapter" / "adapter_config.json").is_file()
    before, after = state_dict(tiny_model("qwen2")), state_dict(out)
    assert set(before) == set(after)  # merged: a plain model, no lora_ tensors
    assert not torch.equal(
        before["model.layers.0.self_attn.q_proj.weight"], after["model.layers.0.self_attn.q_proj.weight"]
    )
    assert torch.equal(before["model.embed_tokens.weight"], after["model.embed_tokens.weight"])
    assert _manifest(out)["lora"]["r"] == 4


def test_failed_check_refuses_to_train_and_writes_nothing(work, cli):
    data = write_rows(
        work / "bad.jsonl",
        [
            *sft_rows(1),
            conversation("Hi", "Hi", id="x"),
            {"id": "y", "messages": [{"role": "user", "content": "q"}]},
        ],
    )
    r = cli(train_cli, "sft", "--data", data, "--model", tiny_model("llama"), "-o", work / "never")
    assert r.exit_code == 1
    assert "final turn: the last turn of messages is user" in r.output
    assert "pass --skip-check to train anyway" in r.output
    assert not (work / "never").exists() and not list(work.glob(".never.*"))


def test_unknown_config_key_is_refused_before_loading(work, cli):
    data = write_rows(work / "p.jsonl", preference_rows(1))
    r = cli(
        train_cli, "dpo", "--data", data, "--model", "no/such/model", "-o", work / "x", "--set", "bta=0.1"
    )
    assert r.exit_code == 1 and "unknown config key 'bta' (did you mean 'beta'?)" in r.output


@pytest.mark.parametrize("family", ["llama", "qwen2"])
def test_other_families_sft_smoke(work, family):
    from train.config import load_run_config
    from train.sft import run_sft

    data = write_rows(work / f"{family}.jsonl", sft_rows(1))
    cfg = load_run_config(
        "sft",
        model=str(tiny_model(family)),
        output_dir=str(work / f"smoke-{family}"),
        data_path=str(data),
        overrides=[*FAST, "max_steps=2"],
    )
    out = run_sft(cfg, echo=lambda s: None)
    m = _manifest(out)
    assert m["template"]["end_of_turn"] == END_OF_TURN[family]
    assert all(math.isfinite(x) for x in logged_losses(out))


def test_skip_check_trains_on_data_the_check_refuses(work, cli):
    rows = [*preference_rows(1), {"id": "same", "prompt": "q", "chosen": "same", "rejected": "same"}]
    data = write_rows(work / "same.jsonl", rows)
    refused = cli(
        train_cli,
        "dpo",
        "--data",
        data,
        "--model",
        tiny_model("llama"),
        "-o",
        work / "refused",
        *_sets("max_steps=1"),
    )
    assert refused.exit_code == 1 and "chosen and rejected are identical" in refused.output
    r = cli(
        train_cli,
        "dpo",
        "--data",
        data,
        "--model",
        tiny_model("llama"),
        "-o",
        work / "skipped",
        "--skip-check",
        *_sets("max_steps=1"),
    )
    assert r.exit_code == 0, r.output
    m = _manifest(work / "skipped")
    assert m["check"] == "skipped" and m["data"]["rows"] == 5
    assert not (work / "skipped" / "check.json").exists()

"""WARP's first stage (`train rl --anchor ema`): the KL anchor is an EMA of the policy, different from it, moving
every step by exactly the EMA rule. BOND (`train bond`): an episode trains towards each prompt's best sample, the
argmax of the rewards it recorded, with an EMA anchor that follows the policy."""

from __future__ import annotations

import json
from collections import defaultdict

import pytest

from tests.conftest import read_jsonl
from tests.test_train_online import FAST, SANITY, arithmetic_rows, prompt_rows, quiet
from tests.train_fixtures import state_dict, tiny_model, write_rows

torch = pytest.importorskip("torch")
pytest.importorskip("trl")

from train.config import ConfigError, load_run_config  # noqa: E402

RATE = 0.25


def _params(model) -> dict:
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def _grpo_config(tmp_path, *, beta: float = 0.04, **settings):
    from train.rl import settings_class

    data = write_rows(tmp_path / "math.jsonl", arithmetic_rows(4))
    return load_run_config(
        "grpo",
        model=str(tiny_model("qwen2")),
        output_dir=str(tmp_path / "out"),
        data_path=str(data),
        overrides=[
            *FAST,
            "max_steps=3",
            "save_strategy=no",
            "num_generations=4",
            "per_device_train_batch_size=4",
            "max_completion_length=4",
            f"beta={beta}",
        ],
        settings=settings_class()(reward="regex", regex="[aeiou]", **settings),
        **SANITY,
    )


def test_warp_ema_anchor_differs_from_the_policy_and_moves_by_the_ema_rule(tmp_path):
    from transformers import TrainerCallback

    from train.common import run_training
    from train.rl import RLRun

    cfg = _grpo_config(tmp_path, anchor="ema", ema_rate=RATE)
    rl = RLRun(cfg)
    seen = []

    class Snapshot(TrainerCallback):  # runs after TRL's own reference update of the step
        def on_step_end(self, args, state, control, **kwargs):
            seen.append((_params(rl.trainer.ref_model), _params(rl.trainer.model)))

    try:
        out = run_training(cfg, rl.method(), echo=quiet, callbacks=[Snapshot()])
    finally:
        rl.close()
    anchor = state_dict(cfg.model)
    assert len(seen) == 3
    for new_anchor, policy in seen:
        for n, a in new_anchor.items():
            expected = (1 - RATE) * anchor[n] + RATE * policy[n]
            assert torch.allclose(a, expected, atol=1e-7), n
        assert any(not torch.equal(new_anchor[n], anchor[n]) for n in new_anchor), "the anchor moved"
        assert any(not torch.equal(new_anchor[n], policy[n]) for n in new_anchor), (
            "the anchor is not the policy"
        )
        anchor = new_anchor
    m = json.loads((out / "manifest.json").read_text())
    a = m["anchor"]
    assert a["kind"] == "ema" and a["trl"] == {
        "sync_ref_model": True,
        "ref_model_mixup_alpha": RATE,
        "ref_model_sync_steps": 1,
    }
    assert 0 < a["l2_anchor_to_init"] < a["l2_policy_to_init"] and a["l2_anchor_to_policy"] > 0


def test_ema_anchor_needs_a_kl_penalty_and_owns_trl_sync_options(tmp_path):
    from train.rl import run_rl

    with pytest.raises(ConfigError, match="beta=0 turns off"):
        run_rl(_grpo_config(tmp_path, beta=0.0, anchor="ema"), echo=quiet)
    cfg = _grpo_config(tmp_path, anchor="ema")
    cfg.trl["ref_model_mixup_alpha"] = 0.5
    with pytest.raises(ConfigError, match="--anchor ema sets ref_model_mixup_alpha itself"):
        run_rl(cfg, echo=quiet)


@pytest.fixture(scope="module")
def bond(tmp_path_factory):
    """One BOND episode with a tiny reward model; the trainer's dataset is kept to see what it trained on."""
    from train import bond as bond_module

    work = tmp_path_factory.mktemp("bond")
    data = write_rows(work / "prompts.jsonl", prompt_rows())
    settings = bond_module.settings_class()(
        reward="reward-model",
        reward_model=str(tiny_model("qwen2", num_labels=1, seed=1)),
        reward_device="cpu",
        device="cpu",
        n=3,
        max_tokens=6,
        episodes=1,
        ema_rate=0.5,
    )
    cfg = load_run_config(
        "bond",
        model=str(tiny_model("qwen2")),
        output_dir=str(work / "out"),
        data_path=str(data),
        overrides=[*FAST, "per_device_train_batch_size=2", "num_train_epochs=1"],
        settings=settings,
        **SANITY,
    )
    trained = []

    class Recording(bond_module.Bond):
        def make_trainer(self, *args, **kwargs):
            trainer = super().make_trainer(*args, **kwargs)
            trained.extend(trainer.train_dataset)
            return trainer

    out = Recording(cfg, echo=quiet).run()
    return {"out": out, "cfg": cfg, "trained": trained}


def test_bond_target_is_the_argmax_of_the_recorded_rewards(bond):
    from transformers import AutoTokenizer

    out = bond["out"]
    rewards = defaultdict(dict)
    texts = {}
    for r in read_jsonl(out / "rollouts.jsonl"):
        rewards[r["prompt_id"]][r["sample"]] = r["reward"]
        texts[(r["prompt_id"], r["sample"])] = r["completion"]
    targets = read_jsonl(out / "preference.jsonl")
    assert targets, "the tiny reward model separates some samples"
    for t in targets:
        got = rewards[t["parent_id"]]
        assert t["chosen_score"] == max(got.values()) == got[t["chosen_sample_index"]]
        assert t["chosen"][0]["content"] == texts[(t["parent_id"], t["chosen_sample_index"])]
    tok = AutoTokenizer.from_pretrained(out)
    trained = [
        tok.decode([i for i, lab in zip(x["input_ids"], x["labels"], strict=True) if lab != -100])
        for x in bond["trained"]
    ]
    assert len(trained) == len(targets)
    for t, text in zip(targets, trained, strict=True):
        assert text == t["chosen"][0]["content"] + "<|im_end|>", (
            text,
            t["chosen"],
        )  # the reply and its end of turn


def test_bond_anchor_follows_the_policy_and_the_manifest_says_so(bond):
    out = bond["out"]
    m = json.loads((out / "manifest.json").read_text())
    [episode] = m["episodes"]
    t = episode["training"]
    assert m["command"] == "train bond" and m["trl_config"]["class"] == "SFTConfig"
    assert t["nll"] > 0 and t["kl_to_anchor"] >= 0 and t["l2_anchor_to_policy"] > 0
    sft, policy, anchor = state_dict(bond["cfg"].model), state_dict(out), state_dict(out / "anchor")
    assert any(not torch.equal(anchor[k], sft[k]) for k in anchor), "the anchor moved"
    assert any(not torch.equal(anchor[k], policy[k]) for k in anchor), "the anchor lags the policy"


@pytest.mark.slow
def test_ema_anchor_resumes_from_the_anchor_saved_with_the_checkpoint(tmp_path):
    """A run stopped after step 3 resumes from checkpoint-2 with the anchor it had at step 2, not the SFT model."""
    import dataclasses

    from safetensors.torch import load_file
    from transformers import TrainerCallback

    from tests.test_train_online import Stopped
    from train.common import run_training
    from train.resume import StateDir
    from train.rl import ANCHOR_FILE, RLRun

    cfg = _grpo_config(tmp_path, anchor="ema", ema_rate=RATE)
    cfg.trl.update(max_steps=4, save_strategy="steps", save_steps=2)

    class StopAtThree(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 3:
                raise Stopped

    rl = RLRun(cfg)
    with pytest.raises(Stopped):
        try:
            run_training(cfg, rl.method(), echo=quiet, callbacks=[StopAtThree()])
        finally:
            rl.close()
    ckpt = StateDir(cfg.output_dir).last_checkpoint()
    assert ckpt.name == "checkpoint-2"
    saved = load_file(str(ckpt / ANCHOR_FILE))
    rl = RLRun(dataclasses.replace(cfg, resume=True))
    started = {}

    class AtStart(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            started.update(_params(rl.trainer.ref_model))

    try:
        run_training(rl.cfg, rl.method(), echo=quiet, callbacks=[AtStart()])
    finally:
        rl.close()
    sft = state_dict(cfg.model)
    assert all(torch.equal(started[n], saved[n]) for n in saved)
    assert any(not torch.equal(started[n], sft[n]) for n in saved), "the resumed anchor is not the SFT model"

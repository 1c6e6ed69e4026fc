"""The Online Merging Optimizer: the update a step applies equals the hand-computed merge of the optimizer's own
update with the SFT task vector (TIES and DARE), on a toy model and through `train dpo`."""

from __future__ import annotations

import json

import pytest

from tests.train_fixtures import FAST, copy_model, preference_rows, state_dict, tiny_model, write_rows

torch = pytest.importorskip("torch")

from train.config import ConfigError  # noqa: E402
from train.online_merging import OnlineMerging, task_vector  # noqa: E402

START = [1.0, 1.0, 1.0, 1.0]
COEF = [-2.0, 4.0, -5.0, 6.0]  # loss = sum(COEF * w): the gradient is COEF
LR = 0.1  # SGD: the optimizer's own update is u = -LR * COEF = [0.2, -0.4, 0.5, -0.6], |u| = 0.9
TAU = [1.0, 2.0, -2.0, 0.0]  # |tau| = 3, so the SFT direction at the update's scale is d = 0.3 * tau


def _step(merging: OnlineMerging) -> torch.Tensor:
    """One SGD step on a toy model, the merge attached; returns the weights after it."""
    model = torch.nn.Module()
    model.w = torch.nn.Parameter(torch.tensor(START))
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    merging.attach(opt, model.named_parameters())
    (model.w * torch.tensor(COEF)).sum().backward()
    opt.step()
    return model.w.detach()


def test_ties_update_equals_the_hand_computed_merge():
    merging = OnlineMerging("ties", density=0.5, weight=0.3, taus={"w": torch.tensor(TAU)})
    # u = [0.2, -0.4, 0.5, -0.6] keeps its two largest: u' = [0, 0, 0.5, -0.6]
    # d = [0.3, 0.6, -0.6, 0.0] keeps its two largest: d' = [0, 0.6, -0.6, 0]
    # elected sign of 0.7 u' + 0.3 d' = [0, 0.18, 0.17, -0.42]: [0, +, +, -]
    # entry 1: only d' (0.6) agrees -> 0.6; entry 2: only u' (0.5) agrees -> 0.5; entry 3: only u' -> -0.6
    merged = [0.0, 0.6, 0.5, -0.6]
    after = _step(merging)
    assert torch.allclose(after, torch.tensor(START) + torch.tensor(merged), atol=1e-6), after
    assert merging.info()["merged_steps"] == 1


def test_ties_weight_decides_the_sign_election():
    # weight 0.5: elected sign of 0.5 u' + 0.5 d' = [0, 0.3, -0.05, -0.3] -> entry 2 follows the SFT direction
    merging = OnlineMerging("ties", density=0.5, weight=0.5, taus={"w": torch.tensor(TAU)})
    after = _step(merging)
    assert torch.allclose(after, torch.tensor(START) + torch.tensor([0.0, 0.6, -0.6, -0.6]), atol=1e-6), after


def test_dare_update_equals_the_hand_computed_merge():
    from train.merge import Dare

    merging = OnlineMerging("dare", density=0.5, weight=0.3, taus={"w": torch.tensor(TAU)}, seed=7)
    u, d = torch.tensor([0.2, -0.4, 0.5, -0.6]), 0.3 * torch.tensor(TAU)
    keep_u, keep_d = (Dare(0.5, seed=7).mask((4,), "w@0", i) for i in (0, 1))  # the step's seeded masks
    merged = 0.7 * u * keep_u / 0.5 + 0.3 * d * keep_d / 0.5
    after = _step(merging)
    assert torch.allclose(after, torch.tensor(START) + merged, atol=1e-6), (after, keep_u, keep_d)


def test_a_parameter_without_a_task_vector_is_refused():
    model = torch.nn.Linear(2, 1)
    merging = OnlineMerging("ties", density=0.5, weight=0.5, taus={"weight": torch.zeros(1, 2)})
    with pytest.raises(ConfigError, match="no SFT task vector for 1 trained parameter"):
        merging.attach(torch.optim.SGD(model.parameters(), lr=0.1), model.named_parameters())


def test_task_vector_is_the_sft_model_minus_the_base():
    sft, base = tiny_model("qwen2"), tiny_model("qwen2", seed=1)
    from transformers import AutoModelForCausalLM

    tau = task_vector(str(sft), str(base))
    a, b = state_dict(sft), state_dict(base)
    assert set(tau) == {n for n, _ in AutoModelForCausalLM.from_pretrained(sft).named_parameters()}
    for name in tau:
        assert torch.equal(tau[name], a[name] - b[name]), name


def _dpo(tmp_path, cli, name: str, *extra) -> dict:
    from train.cli import main as train_cli

    data = tmp_path / "prefs.jsonl"
    if not data.exists():
        write_rows(data, preference_rows(2))
    sets = [*FAST, "max_steps=1", "learning_rate=1e-3", "seed=3"]
    r = cli(
        train_cli,
        "dpo",
        "--model",
        tiny_model("qwen2"),
        "--data",
        data,
        "-o",
        tmp_path / name,
        *extra,
        *[a for s in sets for a in ("--set", s)],
    )
    assert r.exit_code == 0, r.output
    return state_dict(tmp_path / name)


def test_dpo_step_with_online_merging_equals_the_merge_of_the_plain_step(tmp_path, cli):
    """The same DPO step (same seed, data and gradient) with and without the merge: the merged run's update is
    exactly the TIES merge of the plain run's update with the task vector of the SFT model."""
    base = copy_model(tiny_model("qwen2", seed=1), tmp_path / "pretrained")
    start = state_dict(tiny_model("qwen2"))
    plain = _dpo(tmp_path, cli, "plain")
    merged = _dpo(tmp_path, cli, "merged", "--online-merging", "ties", "--online-merging-base", base)
    merging = OnlineMerging(
        "ties", density=0.5, weight=0.5, taus=task_vector(str(tiny_model("qwen2")), str(base))
    )
    changed = 0
    for name, x0 in start.items():
        if name not in merging.taus:
            continue
        expected = x0 + merging.merged_update(name, plain[name] - x0, merging.taus[name], 0)
        assert torch.allclose(merged[name], expected, atol=1e-6), name
        changed += not torch.equal(plain[name], merged[name])
    assert changed, "the merge changed the update"
    m = json.loads((tmp_path / "merged" / "manifest.json").read_text())
    assert m["online_merging"] == {
        "method": "ties",
        "density": 0.5,
        "weight": 0.5,
        "seed": 3,
        "merged_steps": 1,
        "task_vector_tensors": len(merging.taus),
    }


def test_online_merging_needs_a_base_and_full_weights(tmp_path, cli):
    from train.cli import main as train_cli

    data = write_rows(tmp_path / "prefs.jsonl", preference_rows(1))
    common = [
        "dpo",
        "--model",
        tiny_model("qwen2"),
        "--data",
        data,
        "--online-merging",
        "ties",
        "--set",
        "max_steps=1",
    ]
    r = cli(train_cli, *common, "-o", tmp_path / "a")
    assert r.exit_code == 1 and "needs --online-merging-base DIR" in r.output
    r = cli(
        train_cli,
        *common,
        "-o",
        tmp_path / "b",
        "--online-merging-base",
        tiny_model("qwen2", seed=1),
        "--lora",
    )
    assert r.exit_code == 1 and "drop --lora" in r.output
    base = ["--online-merging-base", tiny_model("qwen2", seed=1)]
    r = cli(train_cli, *common, "-o", tmp_path / "c", *base, "--num-processes", "2", "--strategy", "fsdp")
    assert r.exit_code == 1 and "not with --strategy fsdp" in r.output and not (tmp_path / "c").exists()

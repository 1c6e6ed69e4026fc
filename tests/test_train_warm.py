"""WARM (`train reward --ensemble M`): members trained from one initialisation with their own seed, data order and
learning rate, averaged exactly; the average scores as `--reward-model`; accuracies of members and average in the
manifest."""

from __future__ import annotations

import json

import pytest

from tests.train_fixtures import BAD_REPLY, FAST, QA, preference, state_dict, tiny_model, write_rows

torch = pytest.importorskip("torch")
pytest.importorskip("trl")

from train.cli import main as train_cli  # noqa: E402

# The preferred reply mentions the question's subject; the rejected one is evasive or off-topic.
ROWS = [
    preference(
        f"{q} Please answer briefly ({k}).",
        a,
        BAD_REPLY if k % 2 else "The sea is wide and blue.",
        id=f"w{i}-{k}",
    )
    for k in range(5)
    for i, (q, a) in enumerate(QA)
]


@pytest.fixture(scope="module")
def warm(tmp_path_factory):
    from click.testing import CliRunner

    work = tmp_path_factory.mktemp("warm")
    data = write_rows(work / "prefs.jsonl", ROWS)
    sets = [*FAST, "max_steps=3", "data.eval_fraction=0.3", "learning_rate=1e-3"]
    args = ["reward", "--model", tiny_model("qwen2"), "--data", data, "-o", work / "rm-warm"]
    args += ["--ensemble", "2", "--ensemble-lr", "1e-3,3e-4"] + [a for s in sets for a in ("--set", s)]
    result = CliRunner().invoke(train_cli, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return work / "rm-warm", result.output


def test_warm_members_differ_and_the_output_is_their_exact_average(warm):
    out, _ = warm
    m = json.loads((out / "manifest.json").read_text())
    members = m["warm"]["members"]
    assert [(x["seed"], x["data_seed"], x["learning_rate"]) for x in members] == [
        (42, 42, 1e-3),
        (43, 43, 3e-4),
    ]
    a, b = (state_dict(out / x["path"], "AutoModelForSequenceClassification") for x in members)
    avg = state_dict(out, "AutoModelForSequenceClassification")
    assert any(not torch.equal(a[k], b[k]) for k in a), "the members trained differently"
    for k in avg:
        assert torch.allclose(avg[k], (a[k] + b[k]) / 2, atol=1e-7), k
    # one initialisation: both members started from the same weights, their reward head included
    starts = {json.loads((out / x["path"] / "manifest.json").read_text())["model"] for x in members}
    assert len(starts) == 1
    assert [w["weight"] for w in m["warm"]["merge"]["models"]] == [0.5, 0.5]


def test_warm_manifest_holds_each_members_held_out_accuracy_and_the_averages(warm):
    out, output = warm
    m = json.loads((out / "manifest.json").read_text())
    pairs = m["warm"]["average"]["eval_pairs"]
    assert pairs == m["data"]["eval_rows"] > 0
    for x in [*m["warm"]["members"], m["warm"]["average"]]:
        assert 0.0 <= x["eval_accuracy"] <= 1.0 and x["eval_pairs"] == pairs
    assert m["metrics"]["eval_accuracy"] == m["warm"]["average"]["eval_accuracy"]
    assert m["command"] == "train reward --ensemble 2"
    assert "member 0: held-out accuracy" in output and "average: held-out accuracy" in output


def test_warm_average_scores_as_a_reward_model(warm):
    from synth.verifiers import Task, build

    out, _ = warm
    verifier = build("reward-model", reward_model=str(out), reward_device="cpu")
    try:
        [[good, bad]] = verifier.verify(
            [Task({"id": "x"}, [{"role": "user", "content": QA[0][0]}], [QA[0][1], BAD_REPLY])]
        )
    finally:
        verifier.close()
    assert isinstance(good.score, float) and isinstance(bad.score, float) and good.score != bad.score


def test_ensemble_lr_needs_an_ensemble(tmp_path, cli):
    data = write_rows(tmp_path / "prefs.jsonl", ROWS)
    r = cli(
        train_cli,
        "reward",
        "--model",
        tiny_model("qwen2"),
        "--data",
        data,
        "-o",
        tmp_path / "o",
        "--ensemble-lr",
        "1e-5",
    )
    assert r.exit_code == 2 and "add --ensemble M" in r.output


def test_ensemble_refuses_num_processes(tmp_path, cli):
    # each member would be a distributed run of its own, whose workers refuse the member's output directory
    data = write_rows(tmp_path / "prefs.jsonl", ROWS)
    r = cli(
        train_cli,
        "reward",
        "--model",
        tiny_model("qwen2"),
        "--data",
        data,
        "-o",
        tmp_path / "o",
        "--ensemble",
        "2",
        "--num-processes",
        "2",
    )
    assert r.exit_code == 2 and "drop --num-processes" in r.output
    assert len([line for line in r.output.splitlines() if line.startswith("Error")]) == 1
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_warm_resumes_after_its_last_finished_member(tmp_path):
    import dataclasses

    from transformers import TrainerCallback

    from tests.test_train_online import Stopped
    from train.common import TrainError
    from train.config import load_run_config
    from train.resume import StateDir
    from train.warm import run_warm

    data = write_rows(tmp_path / "prefs.jsonl", ROWS)
    cfg = load_run_config(
        "reward",
        model=str(tiny_model("qwen2")),
        output_dir=str(tmp_path / "rm"),
        data_path=str(data),
        overrides=[*FAST, "max_steps=2"],
        ensemble=2,
    )

    class StopTheSecondMember(TrainerCallback):
        runs = 0

        def on_train_begin(self, args, state, control, **kwargs):
            type(self).runs += 1

        def on_step_end(self, args, state, control, **kwargs):
            if self.runs == 2:
                raise Stopped

    with pytest.raises(Stopped):
        run_warm(cfg, echo=lambda _: None, callbacks=[StopTheSecondMember()])
    state = StateDir(cfg.output_dir)
    assert [p.name for p in state.members()] == ["member-0"]
    with pytest.raises(TrainError, match="1 finished ensemble member"):
        run_warm(cfg, echo=lambda _: None)
    lines: list[str] = []
    out = run_warm(dataclasses.replace(cfg, resume=True), echo=lines.append)
    assert not any(line.startswith("ensemble member 1/2") for line in lines)
    assert any(line.startswith("ensemble member 2/2") for line in lines)
    m = json.loads((out / "manifest.json").read_text())
    assert [x["member"] for x in m["warm"]["members"]] == [0, 1] and not state.path.exists()

"""`train online-dpo` and `train rl` on tiny models for a few CPU steps: pairs are the best and worst recorded
scores, each episode samples from the previous one's policy, rollouts hold exactly what the verifier returned,
killed runs resume without redoing finished work, and a completion that cheats its code reward earns nothing.
"""

from __future__ import annotations

import dataclasses
import json
from collections import defaultdict

import pytest

from tests.conftest import read_jsonl
from tests.train_fixtures import QA, copy_model, state_dict, tiny_model, write_rows

torch = pytest.importorskip("torch")
pytest.importorskip("trl")

from train.common import TrainError  # noqa: E402
from train.config import load_run_config  # noqa: E402
from train.resume import StateDir  # noqa: E402

FAST = [
    "logging_steps=1",
    "gradient_checkpointing=false",
    "dataloader_pin_memory=false",
    "learning_rate=1e-3",
]

SANITY = {"sanity_prompts": 2, "max_new_tokens": 4}  # the greedy replies written after training


class Stopped(Exception):
    """Stands in for a kill."""


def quiet(_line: str) -> None:
    pass


def prompt_rows() -> list[dict]:
    return [{"id": f"q{i}", "messages": [{"role": "user", "content": q}]} for i, (q, _) in enumerate(QA)]


def arithmetic_rows(n: int = 6) -> list[dict]:
    return [
        {
            "id": f"a{i}",
            "messages": [{"role": "user", "content": f"What is {i} plus {i + 1}?"}],
            "answer": str(2 * i + 1),
        }
        for i in range(n)
    ]


# --- online-dpo --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def odpo(tmp_path_factory):
    """Two episodes with a tiny reward model; the first run is stopped after episode 1 and resumed."""
    from train.online_dpo import run_online_dpo, settings_class

    work = tmp_path_factory.mktemp("odpo")
    sft = copy_model(tiny_model("qwen2"), work / "sft")
    data = write_rows(work / "prompts.jsonl", prompt_rows())
    settings = settings_class()(
        reward="reward-model",
        reward_model=str(tiny_model("qwen2", num_labels=1, seed=1)),
        reward_device="cpu",
        device="cpu",
        n=3,
        max_tokens=6,
        episodes=2,
    )
    cfg = load_run_config(
        "online-dpo",
        model=str(sft),
        output_dir=str(work / "out"),
        data_path=str(data),
        overrides=[*FAST, "per_device_train_batch_size=2", "num_train_epochs=1"],
        settings=settings,
        **SANITY,
    )

    def stop(episode):
        if episode == 1:
            raise Stopped

    with pytest.raises(Stopped):
        run_online_dpo(cfg, echo=quiet, after_episode=stop)
    state = StateDir(cfg.output_dir)
    [first] = state.episodes()
    before = {
        "episode_json": (first / "episode.json").read_bytes(),
        "samples": read_jsonl(first / "samples" / "samples.jsonl"),
        "policy": state_dict(first / "model"),
        "sft": state_dict(sft),
    }
    with pytest.raises(TrainError, match="--resume to continue from it, or --force"):
        run_online_dpo(cfg, echo=quiet)
    lines: list[str] = []
    out = run_online_dpo(dataclasses.replace(cfg, resume=True), echo=lines.append)
    return {"out": out, "cfg": cfg, "before": before, "lines": lines, "state": state, "first": first}


def test_online_dpo_resumes_after_the_last_finished_episode(odpo):
    lines = odpo["lines"]
    assert any(line.startswith("resuming after episode 1/2") for line in lines)
    assert not any(line.startswith("episode 1/2") for line in lines), "episode 1 was redone"
    assert any(line.startswith("episode 2/2: sampling") for line in lines)
    m = json.loads((odpo["out"] / "manifest.json").read_text())
    assert [e["episode"] for e in m["episodes"]] == [1, 2]
    assert json.loads(odpo["before"]["episode_json"]) == m["episodes"][0]
    rollouts = read_jsonl(odpo["out"] / "rollouts.jsonl")
    assert [r["completion"] for r in rollouts if r["episode"] == 1] == [
        s["text"] for s in odpo["before"]["samples"]
    ]
    assert not odpo["state"].path.exists(), "the state directory is removed once the run is committed"


def test_online_dpo_episode_two_samples_from_episode_one_policy(odpo):
    from synth.llm import model_identity

    m = json.loads((odpo["out"] / "manifest.json").read_text())
    one, two = m["episodes"]
    assert one["policy"] == odpo["cfg"].model and two["policy"] == one["policy_after"]
    assert two["policy"] == str(odpo["first"] / "model")
    assert two["policy_identity"].startswith(two["policy"] + "@") != one["policy_identity"]
    sft, policy1 = odpo["before"]["sft"], odpo["before"]["policy"]
    final = state_dict(odpo["out"])
    assert any(not torch.equal(sft[k], policy1[k]) for k in sft), "episode 1 trained the policy"
    assert any(not torch.equal(policy1[k], final[k]) for k in final), "episode 2 trained it further"
    assert model_identity("hf", str(odpo["cfg"].model)) == one["policy_identity"]
    assert one["kl_to_sft"] == pytest.approx(0.0, abs=1e-4) and two["kl_to_sft"] > 0


def test_online_dpo_pairs_are_argmax_and_argmin_of_the_recorded_scores(odpo):
    out = odpo["out"]
    rollouts = read_jsonl(out / "rollouts.jsonl")
    pairs = read_jsonl(out / "preference.jsonl")
    skipped = read_jsonl(out / "rejected.jsonl")
    scores = defaultdict(dict)
    for r in rollouts:
        if r["reward"] is not None:
            scores[(r["episode"], r["prompt_id"])][r["sample"]] = r["reward"]
    assert pairs, "the tiny reward model separates some samples"
    for p in pairs:
        got = scores[(p["episode"], p["parent_id"])]
        assert p["chosen_score"] == max(got.values()) == got[p["chosen_sample_index"]]
        assert p["rejected_score"] == min(got.values()) == got[p["rejected_sample_index"]]
        assert p["chosen_score"] > p["rejected_score"]
        assert p["prompt"] == [{"role": "user", "content": QA[int(p["parent_id"][1:])][0]}]
    paired = {(r["episode"], r["prompt_id"], r["sample"]): r["pair"] for r in rollouts if r["pair"]}
    assert sorted(paired.values()).count("chosen") == len(pairs)
    m = json.loads((out / "manifest.json").read_text())
    for e in m["episodes"]:
        assert e["pairs"] + e["skipped"] == e["prompts"] == len(QA)
        assert e["samples"] == e["completions"] == len(QA) * 3
        assert e["generation"]["tokens_per_s"] and (e["training"] is None or e["training"]["tokens_per_s"])
    assert m["counts"]["pairs"] == len(pairs) and m["counts"]["skipped"] == len(skipped)
    assert all(r["reject_reason"] in ("no_contrast", "no_usable_sample") for r in skipped)
    comp = rollouts[0]["components"]["reward-model"]
    assert comp["verdict"] == rollouts[0]["verdict"] and comp["score"] == rollouts[0]["reward"]


def test_online_dpo_writes_a_loadable_policy_and_a_report(odpo, tmp_path):
    from transformers import AutoModelForCausalLM

    from curate.report import write_report

    model = AutoModelForCausalLM.from_pretrained(odpo["out"])
    assert model.generation_config.eos_token_id
    info = write_report(odpo["out"], tmp_path / "report.html")
    assert "fig-rewards" in info["figures"] and "fig-reward-first-last" in info["figures"]


# --- rl ----------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def grpo(tmp_path_factory):
    """GRPO with a verifiable reward, stopped after step 3 (last checkpoint: step 2), then resumed to step 4."""
    from transformers import TrainerCallback

    from train.rl import run_rl, settings_class

    work = tmp_path_factory.mktemp("grpo")
    data = write_rows(work / "math.jsonl", arithmetic_rows())
    settings = settings_class()(reward="0.5*math+0.5*regex", regex="[aeiou]")
    cfg = load_run_config(
        "grpo",
        model=str(tiny_model("qwen2")),
        output_dir=str(work / "out"),
        data_path=str(data),
        overrides=[
            *FAST,
            "max_steps=4",
            "save_steps=2",
            "num_generations=4",
            "per_device_train_batch_size=4",
            "max_completion_length=6",
            "beta=0.04",
        ],
        settings=settings,
        **SANITY,
    )

    class StopAtThree(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 3:
                raise Stopped

    lines: list[str] = []
    with pytest.raises(Stopped):
        run_rl(cfg, echo=lines.append, callbacks=[StopAtThree()])
    state = StateDir(cfg.output_dir)
    killed = {"checkpoint": state.last_checkpoint(), "lines": list(lines)}
    with pytest.raises(TrainError, match="--resume"):
        run_rl(cfg, echo=quiet)
    out = run_rl(dataclasses.replace(cfg, resume=True), echo=quiet)
    return {"out": out, "cfg": cfg, "killed": killed, "data": data}


def test_rl_resumes_from_its_last_checkpoint(grpo):
    assert grpo["killed"]["checkpoint"].name == "checkpoint-2"
    assert any("kept: rerun the same command with --resume" in line for line in grpo["killed"]["lines"])
    m = json.loads((grpo["out"] / "manifest.json").read_text())
    assert m["resumed_from"] == "checkpoint-2" and m["metrics"]["global_step"] == 4
    assert m["command"] == "train rl --algo grpo"
    steps = [r["step"] for r in read_jsonl(grpo["out"] / "rollouts.jsonl")]
    assert steps == sorted(steps) and sorted(set(steps)) == [1, 2, 3, 4]
    assert all(steps.count(s) == 4 for s in (1, 2, 3, 4)), "the stopped run's step 3 is not counted twice"


def test_rl_rollouts_hold_what_the_verifier_returns(grpo):
    from synth.verifiers import Task, build

    rows = {r["id"]: r for r in arithmetic_rows()}
    rollouts = read_jsonl(grpo["out"] / "rollouts.jsonl")
    verifier = build("0.5*math+0.5*regex", regex="[aeiou]")
    for r in rollouts:
        [[again]] = verifier.verify([Task(rows[r["prompt_id"]], [], [r["completion"]])])
        assert r["reward"] == again.score and r["detail"] == again.detail
        assert set(r["components"]) == {"math", "regex"}
    m = json.loads((grpo["out"] / "manifest.json").read_text())
    logged = {h["step"]: h["reward"] for h in read_jsonl(grpo["out"] / "log_history.jsonl") if "reward" in h}
    for row in m["rewards"]["per_step"]:
        mine = [r["reward"] for r in rollouts if r["step"] == row["step"]]
        assert row["reward_mean"] == pytest.approx(sum(mine) / len(mine))
        assert logged[row["step"]] == pytest.approx(row["reward_mean"]), "TRL trained on the rewards logged"
    assert m["throughput"]["generation_tokens_per_s"] > 0 and m["rewards"]["per_step"][-1]["kl"] >= 0


def test_rl_writes_a_loadable_model(grpo):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = grpo["out"]
    model = AutoModelForCausalLM.from_pretrained(out)
    tok = AutoTokenizer.from_pretrained(out)
    ids = tok.apply_chat_template(
        [{"role": "user", "content": "Hi"}], add_generation_prompt=True, return_tensors="pt"
    )
    assert model.generate(**ids, max_new_tokens=3, do_sample=False).shape[-1] > ids["input_ids"].shape[-1]
    assert (out / "checkpoints" / "checkpoint-4").is_dir() and (out / "samples.jsonl").is_file()


# --- preflight and the CLI --------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["rl", "online-dpo"])
def test_reward_problems_stop_before_any_model_is_loaded(tmp_path, command):
    """A row without the gold answer math needs: one line with its file, line and field; no weights are read
    (the model directory has none) and nothing is left behind."""
    from click.testing import CliRunner

    from train.cli import main

    model = copy_model(tiny_model("qwen2"), tmp_path / "no-weights")
    (model / "model.safetensors").unlink()
    rows = arithmetic_rows(3)
    del rows[1]["answer"]
    data = write_rows(tmp_path / "math.jsonl", rows)
    args = [command, "--model", model, "--data", data, "-o", tmp_path / "out"]
    res = CliRunner().invoke(main, [*args, "--reward", "math"])
    assert res.exit_code == 1, res.output
    assert f"{data}:2: no gold answer in field 'answer'" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "out").exists() and not StateDir(tmp_path / "out").path.exists()
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 1 and "missing --reward SPEC" in res.output


def test_online_commands_help_names_the_trainers(cli):
    from train.cli import main

    rl = cli(main, "rl", "--help").output
    assert "no PPO" in rl and "--algo [grpo|rloo]" in rl and "--reward SPEC" in rl and "--resume" in rl
    assert "--generate-tests" not in rl, "the policy does not write the tests it is scored by"
    odpo = cli(main, "online-dpo", "--help").output
    for opt in (
        "--episodes",
        "--prompts-per-episode",
        "--min-margin",
        "--reference [sft|episode]",
        "--n",
        "--reward-model",
    ):
        assert opt in odpo, opt


def test_state_directory_refuses_to_start_over_or_resume_silently(tmp_path):
    state = StateDir(tmp_path / "out")
    with pytest.raises(TrainError, match="nothing to resume"):
        state.open(resume=True, force=False, fingerprint={"model": "a"})
    assert state.open(resume=False, force=False, fingerprint={"model": "a"}) is False
    (state.checkpoints / "checkpoint-3").mkdir(parents=True)
    (state.checkpoints / "checkpoint-3" / "trainer_state.json").write_text("{}")
    (state.checkpoints / "checkpoint-5").mkdir()  # no trainer_state.json: killed while saving
    (
        state.checkpoints / "checkpoint-6"
    ).mkdir()  # killed while writing trainer_state.json (a recipe test hit it)
    (state.checkpoints / "checkpoint-6" / "trainer_state.json").write_text('{"global_st')
    (state.checkpoints / "checkpoint-7").mkdir()
    (state.checkpoints / "checkpoint-7" / "trainer_state.json").write_text("")
    assert state.last_checkpoint().name == "checkpoint-3"
    with pytest.raises(TrainError, match=r"left checkpoint .*checkpoint-3; pass --resume"):
        state.open(resume=False, force=False, fingerprint={"model": "a"})
    with pytest.raises(TrainError, match="model 'a' -> 'b'"):
        state.open(resume=True, force=False, fingerprint={"model": "b"})
    with pytest.raises(TrainError, match="contradict"):
        state.open(resume=True, force=True, fingerprint={"model": "a"})
    assert state.open(resume=True, force=False, fingerprint={"model": "a"}) is True
    assert state.open(resume=False, force=True, fingerprint={"model": "a"}) is False
    assert state.last_checkpoint() is None


def test_resume_from_checkpoint_is_managed_by_posttrain():
    from train.config import ConfigError

    with pytest.raises(ConfigError, match="pass --resume"):
        load_run_config(
            "sft", model="m", output_dir="o", data_path="d", overrides=["resume_from_checkpoint=x"]
        )


# --- a reward that only cheating could earn ----------------------------------------------------------------------

HONEST = "def add(a, b):\n    return a + b"
CHEATS = {
    "always-equal": "class Same:\n    def __eq__(self, other):\n        return True\n    def __ne__(self, other):\n"
    "        return False\n\ndef add(a, b):\n    return Same()",
    "exit-before-tests": "import sys\nsys.exit(0)",
    "os-exit-before-tests": "import os\nos._exit(0)",
    "forged-marker": "import os, sys\nprint('PASSED')\nsys.stdout.flush()\nos._exit(0)",
    "excepthook-swallows": "import os, sys\nsys.excepthook = lambda *a: os._exit(0)\ndef add(a, b):\n    return 0",
    "reads-the-tests": "import re, sys\n\ndef add(a, b):\n    f = sys._getframe(1)\n    while f:\n"
    "        for c in f.f_code.co_consts:\n            if isinstance(c, str):\n"
    "                for m in re.finditer(r'add\\((-?\\d+), (-?\\d+)\\) == (-?\\d+)', c):\n"
    "                    if (int(m[1]), int(m[2])) == (a, b):\n                        return int(m[3])\n"
    "        f = f.f_back\n    return 0",
}


@pytest.fixture(scope="module")
def code_reward(tmp_path_factory):
    from train.rewards import RewardFunction, RolloutLog, build_reward, reward_settings_class

    verifier = build_reward(reward_settings_class()(reward="code", sandbox_workers=1))
    log = RolloutLog(tmp_path_factory.mktemp("code") / "rollouts.jsonl")
    yield RewardFunction(verifier, log)
    log.close()
    verifier.close()


def _rewards(reward, programs: list[str]) -> list[float]:
    row = {
        "id": "add",
        "messages": [{"role": "user", "content": "Write add(a, b)."}],
        "tests": ["assert add(1, 2) == 3", "assert add(-1, 1) == 0"],
    }
    prompt = row["messages"]
    completions = [[{"role": "assistant", "content": f"```python\n{p}\n```"}] for p in programs]
    return reward(
        prompts=[prompt] * len(programs), completions=completions, row_json=[json.dumps(row)] * len(programs)
    )


@pytest.mark.parametrize("cheat", list(CHEATS))
def test_a_reward_only_cheating_could_earn_is_zero(code_reward, cheat):
    honest, cheating = _rewards(code_reward, [HONEST, CHEATS[cheat]])
    assert honest == 1.0
    assert cheating == 0.0


# --- resuming sft, dpo and reward; checking prompts --------------------------------------------------------------


def test_rerun_after_a_kill_keeps_the_checkpoints_and_resumes(tmp_path, cli):
    """Regression: `resume_from_checkpoint` was ignored, and a rerun to the same -o deleted the hidden directory
    that held the checkpoints."""
    from transformers import TrainerCallback

    from tests.train_fixtures import sft_rows
    from train.cli import main
    from train.sft import run_sft

    data = write_rows(tmp_path / "sft.jsonl", sft_rows(2))
    out = tmp_path / "sft"
    sets = [*FAST, "max_steps=4", "save_steps=2", "per_device_train_batch_size=4"]
    cfg = load_run_config(
        "sft", model=str(tiny_model("gemma")), output_dir=str(out), data_path=str(data), overrides=sets
    )

    class StopAtThree(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 3:
                raise Stopped

    with pytest.raises(Stopped):
        run_sft(cfg, echo=quiet, callbacks=[StopAtThree()])
    args = [
        "sft",
        "--data",
        data,
        "--model",
        tiny_model("gemma"),
        "-o",
        out,
        *[x for s in sets for x in ("--set", s)],
    ]
    again = cli(main, *args)
    assert (
        again.exit_code == 1 and "checkpoint-2; pass --resume to continue from it, or --force" in again.output
    )
    assert StateDir(out).last_checkpoint().name == "checkpoint-2", "the failed rerun kept the checkpoints"
    resumed = cli(main, *args, "--resume")
    assert resumed.exit_code == 0, resumed.output
    m = json.loads((out / "manifest.json").read_text())
    assert m["resumed_from"] == "checkpoint-2" and m["metrics"]["global_step"] == 4
    assert (out / "checkpoints" / "checkpoint-4").is_dir() and not StateDir(out).path.exists()


def test_train_check_reads_prompts(tmp_path, cli):
    from train.cli import main

    good = write_rows(tmp_path / "prompts.jsonl", prompt_rows())
    r = cli(main, "check", "--data", good, "--model", tiny_model("llama"), "--kind", "prompt")
    assert r.exit_code == 0 and "ok    final turn" in r.output and "prompt is a prefix" in r.output
    answered = write_rows(
        tmp_path / "answered.jsonl",
        [
            *prompt_rows(),
            {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]},
        ],
    )
    r = cli(main, "check", "--data", answered, "--model", tiny_model("llama"), "--kind", "prompt")
    assert r.exit_code == 1 and "a conversation row in a prompt dataset" in r.output


@pytest.mark.slow
def test_rloo_trains_on_the_rewards_it_logs(tmp_path):
    from train.rl import run_rl, settings_class

    data = write_rows(tmp_path / "math.jsonl", arithmetic_rows())
    cfg = load_run_config(
        "rloo",
        model=str(tiny_model("qwen2")),
        output_dir=str(tmp_path / "out"),
        data_path=str(data),
        overrides=[
            *FAST,
            "max_steps=2",
            "num_generations=4",
            "per_device_train_batch_size=4",
            "max_completion_length=6",
        ],
        settings=settings_class()(reward="0.5*math+0.5*regex", regex="[aeiou]"),
        **SANITY,
    )
    out = run_rl(cfg, echo=quiet)
    m = json.loads((out / "manifest.json").read_text())
    logged = {h["step"]: h["reward"] for h in read_jsonl(out / "log_history.jsonl") if "reward" in h}
    assert m["command"] == "train rl --algo rloo" and [s["step"] for s in m["rewards"]["per_step"]] == [1, 2]
    for s in m["rewards"]["per_step"]:
        assert logged[s["step"]] == pytest.approx(s["reward_mean"])

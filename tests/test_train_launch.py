"""Training beyond one process (`train.launch`): what the launcher decides and refuses before anything starts, and
real runs of two processes on CPU (accelerate's DDP over gloo): the manifest says world size 2, the loss is finite,
the model loads, one run directory is written.

The two-process runs cost about 40 s of CPU each (every process imports torch and TRL): one SFT run is in the default
suite, the others (FSDP over gloo among them) are `slow`. DeepSpeed runs on GPUs only and is not installed here.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.train_fixtures import FAST, preference_rows, sft_rows, tiny_model, write_rows

torch = pytest.importorskip("torch")
pytest.importorskip("trl")

from train import launch  # noqa: E402
from train.cli import main as train_cli  # noqa: E402
from train.common import TrainError  # noqa: E402
from train.config import ConfigError, load_run_config  # noqa: E402
from train.launch import LaunchPlan, LaunchSettings  # noqa: E402

COMMAND = ["sft", "--data", "d.jsonl", "--model", "m", "-o", "out", "--num-processes", "2"]
HAS_DEEPSPEED = __import__("importlib").util.find_spec("deepspeed") is not None


def _plan(*, gpus=0, precision="no", model=None, **settings):
    return LaunchPlan.build(
        LaunchSettings(command=COMMAND, **settings), gpus=gpus, precision=precision, model=model
    )


def _sets(*items):
    return [x for item in (*FAST, *items) for x in ("--set", item)]


def _manifest(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text())


def _losses(out: Path) -> list[float]:
    rows = [json.loads(line) for line in (out / "log_history.jsonl").read_text().splitlines() if line.strip()]
    return [r["loss"] for r in rows if "loss" in r]


# --- the plan: decided, and refused, before anything starts ------------------------------------------------------


def test_ddp_on_cpu_is_accelerate_launch_of_the_same_command_over_gloo(tmp_path):
    plan = _plan(num_processes=2)
    cmd = plan.accelerate_command()
    assert cmd[:3] == [sys.executable, "-m", "accelerate.commands.launch"]
    assert cmd[cmd.index("--config_file") + 1] == str(launch.preset("ddp"))
    assert cmd[cmd.index("--num_processes") + 1] == "2"
    assert cmd[cmd.index("--mixed_precision") + 1] == "no"
    assert int(cmd[cmd.index("--num_cpu_threads_per_process") + 1]) == plan.threads_per_process
    assert plan.threads_per_process == max(
        1, len(os.sched_getaffinity(0)) // 2
    )  # never more threads than cores
    assert cmd[cmd.index("-m", 3) :] == ["-m", "train.cli", *COMMAND]
    run = SimpleNamespace(
        state=SimpleNamespace(output=tmp_path / "out"), path=tmp_path / ".out.1.partial", resumed=True
    )
    env = plan.environment(run)
    assert env["ACCELERATE_USE_CPU"] == "true"
    assert json.loads(env[launch.RUN_ENV]) == {
        "output": str(tmp_path / "out"),
        "path": str(tmp_path / ".out.1.partial"),
        "resumed": True,
    }


def test_gpu_launch_passes_the_runs_precision_and_no_cpu_settings():
    cmd = _plan(num_processes=4, gpus=8, precision="bf16").accelerate_command()
    assert cmd[cmd.index("--mixed_precision") + 1] == "bf16"
    assert "--num_cpu_threads_per_process" not in cmd


def test_fsdp_wraps_the_models_decoder_layer_class():
    plan = _plan(num_processes=2, strategy="fsdp", model=str(tiny_model("llama")))  # on CPU too, over gloo
    cmd = plan.accelerate_command()
    assert plan.config_file == launch.preset("fsdp")
    assert cmd[cmd.index("--fsdp_transformer_layer_cls_to_wrap") + 1] == "LlamaDecoderLayer"


def test_more_processes_than_gpus_is_refused():
    with pytest.raises(TrainError, match=r"--num-processes 4: this machine has 2 GPU\(s\).*at most 2"):
        _plan(num_processes=4, gpus=2)


@pytest.mark.parametrize("strategy", ["zero2", "zero3"])
def test_deepspeed_strategies_are_refused_on_cpu(strategy):
    what = "needs deepspeed" if not HAS_DEEPSPEED else "needs GPUs"
    with pytest.raises(TrainError, match=f"--strategy {strategy} {what}"):
        _plan(num_processes=2, strategy=strategy)


@pytest.mark.skipif(HAS_DEEPSPEED, reason="deepspeed is installed")
@pytest.mark.parametrize("strategy", ["zero2", "zero3"])
def test_deepspeed_strategies_name_the_extra_to_install(strategy):
    with pytest.raises(TrainError, match=r"pip install 'posttrain\[deepspeed\]'"):
        _plan(num_processes=2, gpus=2, strategy=strategy)


def test_users_accelerate_config_replaces_the_preset(tmp_path):
    own = tmp_path / "own.yaml"
    own.write_text("distributed_type: MULTI_GPU\nnum_processes: 3\nmain_process_port: 29999\n")
    plan = _plan(gpus=4, accelerate_config=str(own))
    assert (plan.num_processes, plan.strategy, plan.config_file, plan.port) == (3, "ddp", own, None)
    assert _plan(gpus=4, accelerate_config=str(own), num_processes=2).num_processes == 2  # the flag wins
    with pytest.raises(ConfigError, match="give one of them"):
        _plan(gpus=4, accelerate_config=str(own), strategy="fsdp")
    several = tmp_path / "nodes.yaml"
    several.write_text("distributed_type: FSDP\nnum_machines: 2\nnum_processes: 16\n")
    with pytest.raises(ConfigError, match="run `accelerate launch` on each machine yourself"):
        _plan(gpus=8, accelerate_config=str(several))
    if not HAS_DEEPSPEED:
        zero = tmp_path / "zero.yaml"
        zero.write_text("distributed_type: DEEPSPEED\ndeepspeed_config:\n  zero_stage: 3\nnum_processes: 2\n")
        with pytest.raises(TrainError, match=r"zero.yaml \(zero3\) needs deepspeed.*posttrain\[deepspeed\]"):
            _plan(gpus=2, accelerate_config=str(zero))


def test_presets_are_accelerate_configs_for_their_strategy():
    from accelerate.commands.config.config_args import load_config_from_file

    kinds = {s: load_config_from_file(str(launch.preset(s))) for s in launch.STRATEGIES}
    assert {s: c.distributed_type.value for s, c in kinds.items()} == {
        "ddp": "MULTI_GPU",
        "fsdp": "FSDP",
        "zero2": "DEEPSPEED",
        "zero3": "DEEPSPEED",
    }
    fsdp = kinds["fsdp"].fsdp_config
    assert fsdp["fsdp_auto_wrap_policy"] == "TRANSFORMER_BASED_WRAP" and fsdp["fsdp_version"] == 2
    assert fsdp["fsdp_activation_checkpointing"] and fsdp["fsdp_state_dict_type"] == "FULL_STATE_DICT"
    assert [kinds[s].deepspeed_config["zero_stage"] for s in ("zero2", "zero3")] == [2, 3]
    assert kinds["zero3"].deepspeed_config["zero3_save_16bit_model"]


def test_worker_settings_follow_what_accelerate_launch_set_up(monkeypatch):
    assert launch.strategy_in_use() is None and launch.trl_defaults() == {}
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert launch.strategy_in_use() == "ddp" and not launch.is_sharded()
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    monkeypatch.setenv("FSDP_ACTIVATION_CHECKPOINTING", "true")
    assert launch.is_sharded()
    assert launch.trl_defaults() == {"gradient_checkpointing": False}  # FSDP checkpoints activations itself
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "false")
    monkeypatch.setenv("ACCELERATE_USE_DEEPSPEED", "true")
    monkeypatch.setenv("ACCELERATE_DEEPSPEED_ZERO_STAGE", "3")
    assert launch.strategy_in_use() == "zero3" and launch.is_sharded()
    args = SimpleNamespace(world_size=2, per_device_train_batch_size=4, gradient_accumulation_steps=3)
    d = launch.describe(args)
    assert (d["world_size"], d["global_batch_size"], d["launcher"]) == (2, 24, "accelerate")


def test_refused_launch_writes_nothing(tmp_path, cli):
    data = write_rows(tmp_path / "sft.jsonl", sft_rows(1))
    args = [
        "sft",
        "--data",
        data,
        "--model",
        tiny_model("llama"),
        "-o",
        tmp_path / "out",
        "--num-processes",
        "2",
    ]
    r = cli(train_cli, *args, "--strategy", "zero3")  # no deepspeed here, or no GPU
    assert r.exit_code == 1 and "Error: --strategy" in r.output and len(r.output.strip().splitlines()) == 1
    r = cli(train_cli, *args[:-2], "--strategy", "fsdp")
    assert r.exit_code == 1 and "add --num-processes N" in r.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sft.jsonl"]


def test_worker_stopped_by_the_main_process_exits_1_quietly(cli):
    """The main process printed why it failed; the others exit with status 1 and no traceback of their own."""
    import click

    from train.cli import user_errors

    @click.command()
    @user_errors
    def worker():
        raise launch.StoppedByMain("InputError: data.jsonl:3: bad row")

    r = cli(worker)
    assert r.exit_code == 1 and r.output == "" and r.exception is not None


def test_library_call_asking_for_processes_needs_a_command_line(tmp_path):
    from train.sft import run_sft

    data = write_rows(tmp_path / "sft.jsonl", sft_rows(1))
    cfg = load_run_config(
        "sft",
        model=str(tiny_model("llama")),
        output_dir=str(tmp_path / "out"),
        data_path=str(data),
        launch=LaunchSettings(num_processes=2),
    )
    with pytest.raises(ConfigError, match="start your own script with `accelerate launch`"):
        run_sft(cfg)


def test_rl_vllm_mode_becomes_trls_use_vllm(tmp_path, cli):
    from train.common import build_trl_args
    from train.rl import RLRun, settings_class

    def trl_args(**settings):
        cfg = load_run_config(
            "grpo",
            model="m",
            output_dir=str(tmp_path / "out"),
            data_path="prompts.jsonl",
            settings=settings_class()(reward="math", **settings),
        )
        return build_trl_args(cfg, RLRun(cfg).method(), tmp_path / "ckpt")

    assert not trl_args().use_vllm
    server, colocate = trl_args(vllm_mode="server"), trl_args(vllm_mode="colocate")
    assert (server.use_vllm, server.vllm_mode, colocate.vllm_mode) == (True, "server", "colocate")
    assert "--vllm-mode [server|colocate]" in cli(train_cli, "rl", "--help").output


# --- two processes, for real ------------------------------------------------------------------------------------


def _train_cli(cli, *args):
    r = cli(train_cli, *args)
    assert r.exit_code == 0, r.output
    return r


@pytest.fixture(scope="module")
def two_process_sft(tmp_path_factory):
    """`train sft --num-processes 2`, and the same data and seed in one process."""
    from click.testing import CliRunner

    from train.sft import run_sft

    work = tmp_path_factory.mktemp("launch-sft")
    data = write_rows(work / "sft.jsonl", sft_rows(2))
    model = tiny_model("llama")
    settings = _sets("max_steps=2", "per_device_train_batch_size=2", "seed=3")
    args = ["sft", "--data", data, "--model", model, "-o", work / "out", *settings, "--num-processes", 2]
    r = CliRunner().invoke(train_cli, [str(a) for a in args], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    cfg = load_run_config(
        "sft",
        model=str(model),
        output_dir=str(work / "one"),
        data_path=str(data),
        overrides=[*FAST, "max_steps=2", "per_device_train_batch_size=2", "seed=3"],
    )
    one = run_sft(cfg, echo=lambda s: None)
    return SimpleNamespace(work=work, out=work / "out", one=one, output=r.output)


def test_sft_two_processes_train_one_run(two_process_sft):
    m = _manifest(two_process_sft.out)
    assert m["distributed"] == {
        "world_size": 2,
        "strategy": "ddp",
        "launcher": "posttrain",
        "per_device_train_batch_size": 2,
        "gradient_accumulation_steps": 1,
        "global_batch_size": 4,
    }
    assert (
        m["check"]["ok"] and (two_process_sft.out / "check.json").is_file()
    )  # checked once, by the launcher
    losses = _losses(two_process_sft.out)
    assert len(losses) == 2 and all(math.isfinite(x) for x in losses)
    assert f"wrote {two_process_sft.out}" in two_process_sft.output
    # one run directory, nothing left beside it
    assert sorted(p.name for p in two_process_sft.work.iterdir()) == ["one", "out", "sft.jsonl"]
    # both processes trained: twice the rows, and the tokens of both are counted
    one = _manifest(two_process_sft.one)
    assert one["distributed"]["world_size"] == 1 and one["distributed"]["global_batch_size"] == 2
    assert m["throughput"]["tokens"] > 1.5 * one["throughput"]["tokens"]


def test_sft_two_processes_save_a_model_shaped_like_one_process(two_process_sft):
    from tests.train_fixtures import state_dict

    two, one = state_dict(two_process_sft.out), state_dict(two_process_sft.one)
    assert {k: v.shape for k, v in two.items()} == {k: v.shape for k, v in one.items()}
    assert all(torch.isfinite(v).all() for v in two.values())
    samples = [json.loads(x) for x in (two_process_sft.out / "samples.jsonl").read_text().splitlines()]
    assert samples and all("completion" in s for s in samples)


@pytest.mark.slow
def test_dpo_two_processes(tmp_path, cli):
    data = write_rows(tmp_path / "prefs.jsonl", preference_rows(2))
    out = tmp_path / "dpo"
    model = tiny_model("qwen2")
    _train_cli(
        cli, "dpo", "--data", data, "--model", model, "-o", out, *_sets("max_steps=2"), "--num-processes", 2
    )
    m = _manifest(out)
    assert m["distributed"]["world_size"] == 2 and m["distributed"]["strategy"] == "ddp"
    assert all(math.isfinite(x) for x in _losses(out))
    from tests.train_fixtures import state_dict

    assert {k: v.shape for k, v in state_dict(out).items()} == {
        k: v.shape for k, v in state_dict(model).items()
    }
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dpo", "prefs.jsonl"]


@pytest.mark.slow
def test_reward_two_processes(tmp_path, cli):
    data = write_rows(tmp_path / "prefs.jsonl", preference_rows(2))
    out = tmp_path / "rm"
    model = tiny_model("qwen2", num_labels=1)
    _train_cli(
        cli,
        "reward",
        "--data",
        data,
        "--model",
        model,
        "-o",
        out,
        *_sets("max_steps=2"),
        "--num-processes",
        2,
    )
    assert _manifest(out)["distributed"]["world_size"] == 2
    from transformers import AutoModelForSequenceClassification

    assert AutoModelForSequenceClassification.from_pretrained(out).config.num_labels == 1


@pytest.mark.slow
def test_rl_two_processes_write_every_processes_rollouts(tmp_path, cli):
    rows = [
        {
            "id": f"q{i}",
            "messages": [{"role": "user", "content": f"What is {i} plus {i}?"}],
            "answer": str(2 * i),
        }
        for i in range(4)
    ]
    data = write_rows(tmp_path / "math.jsonl", rows)
    out = tmp_path / "rl"
    sets = _sets(
        "max_steps=1", "num_generations=2", "max_completion_length=8", "per_device_train_batch_size=2"
    )
    _train_cli(
        cli,
        "rl",
        "--data",
        data,
        "--model",
        tiny_model("qwen2"),
        "-o",
        out,
        "--reward",
        "math",
        *sets,
        "--num-processes",
        2,
    )
    rollouts = [json.loads(x) for x in (out / "rollouts.jsonl").read_text().splitlines()]
    assert len(rollouts) == 4  # one step: 2 completions in each of 2 processes = 2 prompts x 2 generations
    assert len({r["prompt_id"] for r in rollouts}) == 2
    assert _manifest(out)["distributed"]["world_size"] == 2


@pytest.mark.slow
@pytest.mark.parametrize("command, extra", [("online-dpo", ""), ("bond", ""), ("online-dpo", "merging")])
def test_online_dpo_two_processes(tmp_path, cli, command, extra):
    """The main process samples and scores, both train on the pairs, the main process keeps what the method keeps
    (BOND's anchor) and commits the episode (with the online merging optimizer's figures)."""
    rows = [
        {"id": f"q{i}", "messages": [{"role": "user", "content": f"Say something about {w}."}]}
        for i, w in enumerate(["cats", "rain", "tea", "maps"])
    ]
    data = write_rows(tmp_path / "prompts.jsonl", rows)
    out = tmp_path / "odpo"
    reward = tiny_model("qwen2", num_labels=1, seed=1)
    more = {
        "": [],
        "merging": ["--online-merging", "ties", "--online-merging-base", tiny_model("qwen2", seed=1)],
    }[extra]
    _train_cli(
        cli,
        command,
        *more,
        "--data",
        data,
        "--model",
        tiny_model("qwen2"),
        "-o",
        out,
        "--reward",
        "reward-model",
        "--reward-model",
        reward,
        "--reward-device",
        "cpu",
        "--device",
        "cpu",
        "--n",
        3,
        "--max-tokens",
        6,
        "--episodes",
        2,
        *_sets("per_device_train_batch_size=1"),
        "--num-processes",
        2,
    )
    m = _manifest(out)
    assert m["distributed"]["world_size"] == 2 and [e["episode"] for e in m["episodes"]] == [1, 2]
    trained = [e for e in m["episodes"] if e["training"]]
    assert trained and all(math.isfinite(e["training"]["train_loss"]) for e in trained)
    rollouts = [json.loads(x) for x in (out / "rollouts.jsonl").read_text().splitlines()]
    assert len(rollouts) == 2 * 4 * 3  # sampled once, by the main process: episodes x prompts x n
    assert sorted(p.name for p in tmp_path.iterdir()) == ["odpo", "prompts.jsonl"]
    if command == "bond":
        assert (out / "anchor" / "config.json").is_file()
        assert all(e["training"]["l2_anchor_to_policy"] > 0 for e in trained)
    if extra == "merging":
        assert all(e["training"]["online_merging"]["merged_steps"] > 0 for e in trained)


@pytest.mark.slow
def test_distill_two_processes(tmp_path, cli):
    """Regression: the worker processes' `train distill` read a manifest from the None their run returns."""
    rows = [
        {"id": f"d{i}-{k}", "messages": [{"role": "user", "content": f"Say something about {w} ({k})."}]}
        for k in range(3)
        for i, w in enumerate(["cats", "rain", "tea", "maps"])
    ]
    data = write_rows(tmp_path / "prompts.jsonl", rows)
    out = tmp_path / "distilled"
    r = _train_cli(
        cli,
        "distill",
        "--model",
        tiny_model("qwen2"),
        "--teacher",
        tiny_model("qwen2", seed=1),
        "--data",
        data,
        "-o",
        out,
        "--max-completion-length",
        4,
        *_sets("max_steps=2", "per_device_train_batch_size=1", "data.eval_fraction=0.5"),
        "--num-processes",
        2,
    )
    m = _manifest(out)
    assert m["distributed"]["world_size"] == 2 and m["command"] == "train distill"
    assert m["data"]["eval_rows"] > 0 and "KL(student || teacher)" in r.output  # measured before and after
    assert sorted(p.name for p in tmp_path.iterdir()) == ["distilled", "prompts.jsonl"]


@pytest.mark.slow
def test_failed_workers_leave_no_output(tmp_path, cli):
    data = write_rows(tmp_path / "sft.jsonl", sft_rows(1))
    # the TRL config is valid, the optimizer does not exist: the workers fail when they build the trainer
    r = cli(
        train_cli,
        "sft",
        "--data",
        data,
        "--model",
        tiny_model("llama"),
        "-o",
        tmp_path / "out",
        *_sets("max_steps=1", "optim=adamw_apex_fused"),
        "--num-processes",
        2,
    )
    assert r.exit_code == 1 and "training failed in the worker processes" in r.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sft.jsonl"]


@pytest.mark.slow
def test_accelerate_launch_directly_main_process_owns_the_run(tmp_path):
    """Several machines: the user runs `accelerate launch` (here one machine, two processes over gloo)."""
    data = write_rows(tmp_path / "sft.jsonl", sft_rows(2))
    out = tmp_path / "out"
    cmd = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--config_file",
        str(launch.preset("ddp")),
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--main_process_port",
        str(launch._free_port()),
        "-m",
        "train.cli",
        "sft",
        "--data",
        str(data),
        "--model",
        str(tiny_model("llama")),
        "-o",
        str(out),
        *_sets("max_steps=2"),
    ]
    env = {**os.environ, "ACCELERATE_USE_CPU": "true"}
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.count("wrote ") == 1  # the main process reports, once
    m = _manifest(out)
    assert m["distributed"]["launcher"] == "accelerate" and m["distributed"]["world_size"] == 2
    assert m["check"]["ok"] and (out / "check.json").is_file()  # the main process checked, the other waited
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "sft.jsonl"]


@pytest.mark.slow
@pytest.mark.parametrize("command", ["sft", "dpo"])
def test_fsdp_two_processes(tmp_path, cli, command):
    """FSDP2 shards the model over the two processes (gloo on CPU, NCCL on GPUs) and gathers it to save."""
    if torch.cuda.device_count() == 1:
        pytest.skip("one GPU: two processes need two")
    rows = sft_rows(2) if command == "sft" else preference_rows(2)
    data = write_rows(tmp_path / "data.jsonl", rows)
    out = tmp_path / "out"
    model = tiny_model("llama")
    _train_cli(
        cli,
        command,
        "--data",
        data,
        "--model",
        model,
        "-o",
        out,
        *_sets("max_steps=2"),
        "--num-processes",
        2,
        "--strategy",
        "fsdp",
    )
    m = _manifest(out)
    assert m["distributed"]["strategy"] == "fsdp" and m["distributed"]["world_size"] == 2
    assert m["precision"] in ("bf16", "fp32") and all(math.isfinite(x) for x in _losses(out))
    from tests.train_fixtures import state_dict

    trained, start = state_dict(out), state_dict(model)
    assert {k: v.shape for k, v in trained.items()} == {k: v.shape for k, v in start.items()}
    assert any(not torch.equal(trained[k], start[k]) for k in start)  # gathered whole, after training
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.jsonl", "out"]

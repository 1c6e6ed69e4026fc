"""`train`: check, fine-tune, preference-tune, reward-model and merge, over TRL. Commands are thin: parse, build
the config, call the library, report. torch, transformers and TRL are imported only when a command runs."""

from __future__ import annotations

import json
import os
import sys

import click

from curate.cli import exit_on_sigterm, one_line_errors
from curate.io import InputError
from curate.threads import configure_threads
from train.common import TrainError
from train.config import ConfigError
from train.template import TemplateError

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# Library errors a user can fix, and failed file operations: one line and a non-zero exit, never a traceback.
user_errors = one_line_errors((InputError, ConfigError, TrainError, TemplateError))


ARGV = "train.argv"


class TrainGroup(click.Group):
    """Keeps the command line it was given (`ctx.meta[ARGV]`): `--num-processes` relaunches it in every worker."""

    def make_context(self, info_name, args, parent=None, **extra):
        argv = list(args)
        ctx = super().make_context(info_name, args, parent=parent, **extra)
        ctx.meta[ARGV] = argv
        return ctx


def _launch_params() -> list:
    from synth.config import option_params
    from train.launch import LaunchSettings

    return option_params(LaunchSettings)


def training_options(fn):
    """Options every training command shares, the launch options (`--num-processes`...) last."""
    fn.__dict__.setdefault("__click_params__", []).extend(reversed(_launch_params()))
    for deco in reversed(
        [
            click.option(
                "--data",
                "data",
                type=click.Path(exists=True),
                help="Training data: a JSONL/Parquet file or a curate/synth run directory.",
            ),
            click.option("--model", "model", required=True, help="Model directory to start from."),
            click.option(
                "-o",
                "--output",
                required=True,
                help="Run directory to write (model, manifest.json, samples).",
            ),
            click.option(
                "--config",
                type=click.Path(exists=True, dir_okay=False),
                help="YAML: TRL config fields at the top level, plus `data:` and `lora:` blocks.",
            ),
            click.option(
                "--set",
                "sets",
                multiple=True,
                metavar="KEY=VALUE",
                help="Override one config key (YAML value); repeatable: --set max_steps=100 "
                "--set data.eval_fraction=0.05.",
            ),
            click.option(
                "--lora", is_flag=True, help="Train a LoRA adapter (peft) and save the merged model."
            ),
            click.option(
                "--input-format",
                help="Row format of the data (default auto; `text` reads plain-text rows for a pre-trained "
                "model). Sets data.input_format.",
            ),
            click.option("--skip-check", is_flag=True, help="Do not run `train check` first."),
            click.option(
                "--force",
                is_flag=True,
                help="Replace a non-empty output directory, and discard what a stopped run left to resume.",
            ),
            click.option(
                "--resume",
                is_flag=True,
                help="Continue a stopped run from its last checkpoint (online-dpo: its last finished episode), "
                "kept in the hidden .OUTPUT.state/ beside the output.",
            ),
        ]
    ):
        fn = deco(fn)
    return fn


@click.group(
    cls=TrainGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110}
)
@click.version_option(package_name="posttrain")
def main():
    """Train on curated data with TRL: check the data and chat template, then SFT, DPO or a reward model; online
    DPO and RL (GRPO, RLOO) with posttrain's verifiers as the reward; average checkpoints.

    \b
    Example:
      train check --data run1 --model ./my-model
      train sft --data run1 --model ./my-model -o sft-run --set max_steps=200
      train dpo --data prefs.jsonl --model sft-run -o dpo-run --lora
      train online-dpo --data prompts.jsonl --model sft-run -o odpo --reward reward-model --reward-model rm-run
      train rl --algo grpo --data math.jsonl --model sft-run -o rl-run --reward math
      train merge dpo-run-a dpo-run-b -o soup
      train sft --data run1 --model ./my-model -o sft-run --num-processes 8 --strategy fsdp
    """
    exit_on_sigterm()
    configure_threads()  # before torch loads: no more compute threads than free CPUs


@main.command("check")
@click.option("--data", required=True, type=click.Path(exists=True), help="A data file or a run directory.")
@click.option("--model", required=True, help="Model (tokenizer) directory whose chat template will be used.")
@click.option(
    "--kind",
    type=click.Choice(["sft", "text", "preference", "dpo", "reward", "prompt"]),
    help="What the data is for (default: from the rows). dpo/reward apply that trainer's max_length rule: "
    "DPO truncates, reward drops; dpo checks the best and worst response of a ranking, reward every one; "
    "prompt: what online-dpo and rl sample from.",
)
@click.option(
    "--max-length", type=int, help="Tokens per sequence in training (default: the config's, else 1024)."
)
@click.option(
    "--config",
    type=click.Path(exists=True, dir_okay=False),
    help="A training config: its max_length and data: block are used.",
)
@click.option("--input-format", default=None, help="Row format (default auto; `text` for plain-text rows).")
@click.option("--add-eos", is_flag=True, help="Check SFT sequences as `train sft --add-eos` builds them.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@user_errors
def check_cmd(data, model, kind, max_length, config, input_format, add_eos, as_json):
    """Validate the whole dataset and the model's chat template; exit 1 on any problem.

    Every row is checked (roles and alternation, a final assistant turn, empty or null content, chosen different
    from rejected, one schema), every row is tokenized (length histogram, rows max_length would truncate or
    drop), then the template preflight runs: one BOS, the end-of-turn token in the trained labels, prompt tokens
    a prefix of prompt + completion.

    \b
    Example:
      train check --data curated-run --model ./gemma-2b-it
      train check --data prefs.jsonl --model ./qwen --kind reward --max-length 2048
    """
    from train.check import run_check
    from train.config import read_config_file

    cfg = read_config_file(config)
    block = cfg.get("data") or {}
    if max_length is None:
        max_length = cfg.get("max_length", 1024)
    method = kind if kind in ("dpo", "reward") else None
    data_kind = {"dpo": "preference", "reward": "preference"}.get(kind, kind)
    report = run_check(
        data,
        model,
        kind=data_kind,
        method=method,
        max_length=max_length,
        input_format=input_format or block.get("input_format", "auto"),
        add_eos=add_eos or bool(cfg.get("add_eos")),
    )
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2, default=str))
    else:
        click.echo(report.render())
    sys.exit(0 if report.ok else 1)


def _config(
    method: str,
    data,
    model,
    output,
    config,
    sets,
    lora,
    skip_check,
    force,
    resume,
    input_format=None,
    add_eos=False,
    **fields,
):
    from synth.config import from_options
    from train.config import load_run_config
    from train.launch import LaunchSettings

    names = set(LaunchSettings.__dataclass_fields__) - {"command"}
    given = {k: fields.pop(k) for k in list(fields) if k in names}
    launch = from_options(LaunchSettings, given, command=click.get_current_context().meta.get(ARGV, []))
    flags = [f"data.input_format={input_format}"] if input_format else []
    if add_eos:
        flags.append("add_eos=true")
    return load_run_config(
        method,
        model=model,
        output_dir=output,
        config_path=config,
        overrides=[*sets, *flags],
        data_path=data,
        lora=lora,
        skip_check=skip_check,
        force=force,
        resume=resume,
        launch=launch,
        **fields,
    )


def _echo_err(text: str) -> None:
    click.echo(text, err=True)


def _train(method: str, **kw):
    cfg = _config(method, **kw)
    if method == "sft":
        from train.sft import run_sft as run
    elif method == "dpo":
        from train.dpo import run_dpo as run
    else:
        from train.reward import run_reward as run
    out = run(cfg, echo=_echo_err)
    if out is None:  # a worker process: the launcher (or the main process) reports
        return
    manifest = json.loads((out / "manifest.json").read_text())
    click.echo(f"wrote {out}")
    _print_metrics(manifest["metrics"])
    t = manifest["throughput"]
    click.echo(f"  {t['tokens']} tokens in {t['train_runtime_s']}s = {t['tokens_per_s']} tokens/s")


def _print_metrics(metrics: dict) -> None:
    shown = {k: v for k, v in metrics.items() if v is not None and isinstance(v, int | float)}
    click.echo(
        "  " + "  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in shown.items())
    )


def online_errors(fn):
    """`user_errors`, plus a backend or a sandbox that cannot start (the sampling policy, the reward's code)."""
    from synth.cli import synth_errors

    return user_errors(synth_errors(fn))


def _settings(module, values: dict):
    """The command's settings from the options generated from them; the other values stay for the run config."""
    from synth.config import from_options

    cls = module.settings_class()
    names = set(cls.__dataclass_fields__) - set(module.CLI_EXCLUDED)
    return from_options(cls, {k: values.pop(k) for k in list(values) if k in names})


def _option_params(module: str) -> list:
    """The options generated from an online command's settings class (declared once, with their help)."""
    import importlib

    from synth.config import option_params

    mod = importlib.import_module(module)
    return option_params(mod.settings_class(), exclude=mod.CLI_EXCLUDED)


@main.command("sft")
@training_options
@click.option(
    "--add-eos",
    is_flag=True,
    help="Write and train the tokenizer's EOS after the final assistant turn (`<end_of_turn><eos>`, as Gemma 2 "
    "ends generations) when the chat template does not write it.",
)
@user_errors
def sft_cmd(**kw):
    """Supervised fine-tuning on conversations (loss on every assistant message, tool calls included, and its
    end-of-turn token), or on plain text rows for a pre-trained model (BOS + text + EOS).

    \b
    Example:
      train sft --data curated-run --model ./base -o sft-run --set max_steps=500 --set learning_rate=2e-5
      train sft --data sft.jsonl --model ./base -o sft-lora --lora --config sft.yaml
      train sft --data texts.jsonl --model ./pretrained -o pt-run --input-format text
    """
    _train("sft", **kw)


@main.command("dpo")
@training_options
@user_errors
def dpo_cmd(**kw):
    """Direct preference optimisation on prompt/chosen/rejected rows (reference: the starting model); of a
    ranking, the best response against the worst.

    \b
    Example:
      train dpo --data synth-pairs --model sft-run -o dpo-run --set beta=0.1 --set data.eval_fraction=0.05
      train dpo --data prefs.jsonl --model sft-run -o dpo-om --online-merging ties --online-merging-base ./base
    """
    from train import online_merging

    settings = _settings(online_merging, kw)
    _train("dpo", **kw, settings=settings)


dpo_cmd.params.extend(_option_params("train.online_merging"))


def _field_help(cls, name: str) -> str:
    """The help of a config field, so an option is described where the setting is declared."""
    return cls.__dataclass_fields__[name].metadata["help"]


def _reward_help(name: str) -> str:
    from train.config import RewardRunConfig

    return _field_help(RewardRunConfig, name)


@main.command("reward")
@training_options
@click.option(
    "--ensemble", type=click.IntRange(min=1), default=1, show_default=True, help=_reward_help("ensemble")
)
@click.option("--ensemble-lr", metavar="LR,LR,...", help=_reward_help("ensemble_lr"))
@user_errors
def reward_cmd(ensemble, ensemble_lr, **kw):
    """Train a reward model (one-label sequence classifier) on preference rows; 10% held out for accuracy.
    A ranking (edited > chosen > rejected, or `responses` best first) trains every ordered pair; an optional
    `margin` column goes to the loss. --ensemble M trains M of them from one initialisation and averages their
    weights (WARM); the manifest holds each member's held-out accuracy and the average's.

    \b
    Example:
      train reward --data prefs.jsonl --model ./base -o rm-run
      train reward --data prefs.jsonl --model ./base -o rm-warm --ensemble 4 --ensemble-lr 1e-5,2e-5
      synth reject-sample ... --verifier reward-model --model rm-run
    """
    from train.warm import parse_lrs

    lrs = parse_lrs(ensemble_lr)
    if lrs and ensemble < 2:
        raise click.UsageError(
            "--ensemble-lr gives the members of an ensemble their learning rates: add --ensemble M"
        )
    if ensemble < 2:
        _train("reward", **kw)
        return
    if (kw.get("num_processes") or 1) > 1 or kw.get("accelerate_config"):
        raise click.UsageError(
            "--ensemble trains its members one after another in one process: drop --num-processes and "
            "--accelerate-config (or train the members apart with them and average them with `train merge`)"
        )
    from train.warm import run_warm

    out = run_warm(_config("reward", **kw, ensemble=ensemble, ensemble_lr=lrs), echo=_echo_err)
    m = json.loads((out / "manifest.json").read_text())
    click.echo(f"wrote {out} (the average of {ensemble} reward models; members in {out / 'members'})")
    for member in m["warm"]["members"]:
        click.echo(f"  member {member['member']}: held-out accuracy {_num(member['eval_accuracy'])}")
    click.echo(
        f"  average: held-out accuracy {_num(m['metrics']['eval_accuracy'])} ({m['metrics']['eval_pairs']} pairs)"
    )


@main.command("online-dpo")
@training_options
@online_errors
def online_dpo_cmd(**kw):
    """Online DPO (Qwen2), or DPO in rounds (Llama 3): each episode samples --n responses per prompt from the
    current policy, scores them with --reward, pairs the best against the worst, and trains DPO on the pairs.

    --data holds prompts (rows ending in a user turn, with whatever the reward reads: `answer` for math, `tests`
    for code...). Episodes are committed one by one in the hidden .OUTPUT.state/; a stopped run continues after
    its last finished episode with --resume. TRL's DPOConfig fields go in --config or --set (beta, learning_rate,
    num_train_epochs per episode...). The output holds the last policy, rollouts.jsonl (every sample with its
    reward and why), preference.jsonl (the pairs), rejected.jsonl (prompts skipped, and why) and manifest.json.

    \b
    Example:
      train online-dpo --model sft-run --data prompts.jsonl -o odpo --reward reward-model --reward-model rm-run \\
          --n 8 --episodes 3 --prompts-per-episode 512 --set beta=0.1
      train online-dpo --model sft-run --data math.jsonl -o odpo-math --reward math --reference episode
    """
    m = _run_online("online-dpo", "train.online_dpo", "run_online_dpo", kw)
    if m is None:
        return
    for e in m["episodes"]:
        click.echo(
            f"  episode {e['episode']}: reward mean {_num(e['reward_mean'])} median {_num(e['reward_median'])}, "
            f"{e['pairs']} pairs, {e['skipped']} skipped, KL to SFT {_num(e['kl_to_sft'])}"
        )
    _print_throughput(m)


def _run_online(method: str, module: str, runner: str, kw: dict) -> dict | None:
    """Settings from the generated options, the run config from the rest; run; the manifest (None in a worker)."""
    import importlib

    mod = importlib.import_module(module)
    settings = _settings(mod, kw)
    out = getattr(mod, runner)(_config(method, **kw, settings=settings), echo=_echo_err)
    if out is None:
        return None
    click.echo(f"wrote {out}")
    return json.loads((out / "manifest.json").read_text())


def _print_throughput(m: dict) -> None:
    t = m["throughput"]
    click.echo(
        f"  generation {t['generation_tokens_per_s']} tokens/s, training {t['training_tokens_per_s']} tokens/s"
    )


online_dpo_cmd.params.extend(_option_params("train.online_dpo"))


@main.command("bond")
@training_options
@online_errors
def bond_cmd(**kw):
    """Best-of-N distillation (BOND, Gemma 3) on online DPO's loop: each episode samples --n replies per prompt from
    the policy, scores them with --reward, and trains the policy on each prompt's best reply (log-likelihood: the
    forward KL to the best-of-N distribution) plus --kl-coef x KL(policy || anchor), the anchor an exponential
    moving average of the policy (--ema-rate per step). It differs from the paper's J-BOND: the N samples come from
    the policy, not the anchor, and the second term is a KL to the anchor, not the backward KL to best-of-N.

    --data, --reward, sampling, episodes, --resume and the outputs are online-dpo's (rollouts.jsonl,
    preference.jsonl: the best and worst of each prompt, rejected.jsonl); the last anchor is in OUTPUT/anchor. TRL's
    SFTConfig fields (learning_rate, num_train_epochs per episode...) go in --set/--config.

    \b
    Example:
      train bond --model sft-run --data prompts.jsonl -o bond --reward reward-model --reward-model rm-warm \\
          --n 8 --episodes 3 --kl-coef 0.1 --ema-rate 0.05 --set learning_rate=1e-6
    """
    m = _run_online("bond", "train.bond", "run_bond", kw)
    if m is None:
        return
    for e in m["episodes"]:
        t = e["training"] or {}
        click.echo(
            f"  episode {e['episode']}: reward mean {_num(e['reward_mean'])}, {e['pairs']} best-of-{m['settings']['n']} "
            f"targets, {e['skipped']} skipped, KL to anchor {_num(t.get('kl_to_anchor'))}, KL to SFT {_num(e['kl_to_sft'])}"
        )
    _print_throughput(m)


bond_cmd.params.extend(_option_params("train.bond"))


@main.command("rl")
@click.option(
    "--algo",
    type=click.Choice(["grpo", "rloo"]),
    default="grpo",
    show_default=True,
    help="TRL's GRPOTrainer or RLOOTrainer (TRL has no PPO trainer).",
)
@training_options
@online_errors
def rl_cmd(algo, **kw):
    """Reinforcement learning with posttrain's verifiers as the reward: GRPO or RLOO over TRL. (TRL 1.16 has no
    PPO trainer; GRPO and RLOO need no value model.)

    --data holds prompts (rows ending in a user turn, with whatever the reward reads). The trainer samples
    num_generations completions per prompt; --reward scores them (math against `answer`, code against `tests` in
    the sandbox, autoif, a reward model, a judge, or a weighted mix such as 0.8*math+0.2*reward-model). TRL's
    GRPOConfig / RLOOConfig fields go in --config or --set. The output holds the model, rollouts.jsonl (every
    completion with its step, reward and why) and manifest.json (reward per step, KL, tokens/s).

    \b
    Example:
      train rl --algo grpo --model sft-run --data math.jsonl -o rl-math --reward math \\
          --set num_generations=8 --set max_completion_length=256 --set max_steps=200 --set beta=0.04
      train rl --algo rloo --model sft-run --data code.jsonl -o rl-code --reward code --exec-timeout 5
    """
    m = _run_online(algo, "train.rl", "run_rl", kw)
    if m is None:
        return
    _print_metrics(m["metrics"])
    steps = m["rewards"]["per_step"]
    if steps:
        click.echo(
            f"  reward mean: step {steps[0]['step']} {_num(steps[0]['reward_mean'])}, "
            f"step {steps[-1]['step']} {_num(steps[-1]['reward_mean'])}"
        )
    _print_throughput(m)


rl_cmd.params.extend(_option_params("train.rl"))


def _num(v) -> str:
    return "n/a" if v is None else f"{v:.4g}"


@main.command("distill")
@training_options
@user_errors
def distill_cmd(**kw):
    """Distil a teacher into the student on the student's own samples (Gemma 2/3): the student samples replies to
    the prompts and learns the teacher's next-token distribution on them (generalized JSD: --set beta=0 forward
    KL, 0.5 JSD [default], 1 reverse KL).

    --lmbda 1 (default) is fully on-policy on TRL's DistillationTrainer; --lmbda below 1 uses the experimental
    trl.experimental.gkd.GKDTrainer, whose other sequences are the data's replies (conversations) or, with
    --seq-kd, the teacher's samples. --data holds prompts or conversations (their prompt, up to the last user
    turn, when on-policy). Before any weights load, the teacher's tokenizer and vocabulary are compared with the
    student's and the first difference refused. The manifest holds KL(student || teacher), KL(teacher || student)
    and the JSD on held-out prompts (data.eval_fraction, 10% by default) before and after training.

    \b
    Example:
      train distill --model small-sft --teacher big-it --data prompts.jsonl -o distilled --set max_steps=500
      train distill --model small-sft --teacher big-it --data sft.jsonl -o gkd --lmbda 0.5 --set beta=0.1
      train distill --model small-sft --teacher big-it --data prompts.jsonl -o seqkd --lmbda 0 --seq-kd
    """
    from train import distill

    settings = _settings(distill, kw)
    method = distill.method_for(settings)
    out = distill.run_distill(_config(method, **kw, settings=settings), echo=_echo_err)
    if out is None:  # a worker process: the launcher reports
        return
    m = json.loads((out / "manifest.json").read_text())
    click.echo(f"wrote {out} ({m['distillation']['trainer']})")
    d = m["distillation"]["divergence"]
    if isinstance(d, dict):
        click.echo(
            f"  KL(student || teacher) per token on held-out prompts: {_num(d['before']['kl_student_teacher'])} "
            f"before, {_num(d['after']['kl_student_teacher'])} after; JSD(beta={d['after']['beta']:g}) "
            f"{_num(d['before']['jsd'])} -> {_num(d['after']['jsd'])}"
        )
    else:
        click.echo(f"  divergence {d}")


distill_cmd.params.extend(_option_params("train.distill"))


@main.command("merge")
@click.argument("models", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False))
@click.option("-o", "--output", required=True, help="Directory for the merged model.")
@click.option(
    "--weights", help="Comma-separated weights, one per model (normalised to sum 1); default uniform."
)
@click.option(
    "--base",
    type=click.Path(exists=True, file_okay=False),
    help="Initial model to interpolate from (WARP): out = base + alpha * (merge - base).",
)
@click.option("--alpha", type=float, help="Interpolation factor with --base, in [0, 1].")
@click.option(
    "--method",
    type=click.Choice(["linear", "slerp", "ties", "dare"]),
    default="linear",
    show_default=True,
    help="linear: weighted average; slerp: spherical interpolation of two models (of their task vectors with "
    "--base: WARP); ties, dare: task vectors relative to --base, sparsified and combined (TIES, DARE).",
)
@click.option(
    "--t", "t", type=float, default=None, help="slerp: the second model's share, in [0, 1] [default: 0.5]."
)
@click.option(
    "--density",
    type=float,
    default=0.5,
    show_default=True,
    help="ties: share of each task vector's entries kept (largest magnitudes); dare: share kept at random.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="dare: seed of the random drop masks.")
@click.option(
    "--dtype",
    type=click.Choice(["auto", "float32", "bfloat16", "float16"]),
    default="auto",
    show_default=True,
    help="Dtype written (auto: each tensor's own); accumulation is always float32.",
)
@click.option("--force", is_flag=True, help="Replace a non-empty output directory.")
@user_errors
def merge_cmd(models, output, weights, base, alpha, method, t, density, seed, dtype, force):
    """Merge checkpoints of one architecture and vocabulary into safetensors (model soups, WARM, WARP, TIES, DARE).

    Architectures, configs, tensor shapes and vocabularies are compared from the files' headers before any
    tensor is read; a mismatch writes nothing.

    \b
    Example:
      train merge rm-seed0 rm-seed1 rm-seed2 -o rm-warm
      train merge run-a run-b -o soup --weights 0.7,0.3
      train merge rl-a rl-b -o warp --method slerp --base sft-run --alpha 0.5
      train merge math-run code-run -o ties --method ties --base sft-run --density 0.3
    """
    from train.merge import merge_checkpoints, merge_method, parse_weights

    merger = merge_method(method, t=t, density=density, seed=seed, n_models=len(models))
    out = merge_checkpoints(
        list(models),
        output,
        weights=parse_weights(weights),
        base=base,
        alpha=alpha,
        method=merger,
        dtype=dtype,
        force=force,
    )
    click.echo(f"wrote {out}")


if __name__ == "__main__":
    main()

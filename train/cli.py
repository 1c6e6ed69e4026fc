"""`train`: check, fine-tune, preference-tune, reward-model and merge, over TRL. Commands are thin: parse, build
the config, call the library, report. torch, transformers and TRL are imported only when a command runs."""

from __future__ import annotations

import functools
import json
import os
import sys

import click

from curate.io import InputError
from curate.threads import configure_threads
from train.common import TrainError
from train.config import ConfigError
from train.template import TemplateError

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

USER_ERRORS = (InputError, ConfigError, TrainError, TemplateError, FileNotFoundError)


def user_errors(fn):
    """Library errors a user can fix become one-line messages and a non-zero exit, never tracebacks."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except USER_ERRORS as e:
            raise click.ClickException(str(e).strip("'\"")) from None

    return wrapper


def training_options(fn):
    """Options `sft`, `dpo` and `reward` share."""
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
            click.option("--skip-check", is_flag=True, help="Do not run `train check` first."),
            click.option("--force", is_flag=True, help="Replace a non-empty output directory."),
        ]
    ):
        fn = deco(fn)
    return fn


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(package_name="posttrain")
def main():
    """Train on curated data with TRL: check the data and chat template, then SFT, DPO or a reward model;
    average checkpoints.

    \b
    Example:
      train check --data run1 --model ./my-model
      train sft --data run1 --model ./my-model -o sft-run --set max_steps=200
      train dpo --data prefs.jsonl --model sft-run -o dpo-run --lora
      train merge dpo-run-a dpo-run-b -o soup
    """
    configure_threads()  # before torch loads: no more compute threads than free CPUs


@main.command("check")
@click.option("--data", required=True, type=click.Path(exists=True), help="A data file or a run directory.")
@click.option("--model", required=True, help="Model (tokenizer) directory whose chat template will be used.")
@click.option(
    "--kind",
    type=click.Choice(["sft", "preference", "dpo", "reward"]),
    help="What the data is for (default: from the rows). dpo/reward apply that trainer's max_length rule: "
    "DPO truncates, reward drops.",
)
@click.option(
    "--max-length", type=int, help="Tokens per sequence in training (default: the config's, else 1024)."
)
@click.option(
    "--config",
    type=click.Path(exists=True, dir_okay=False),
    help="A training config: its max_length and data: block are used.",
)
@click.option("--input-format", default=None, help="Row format (default auto).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@user_errors
def check_cmd(data, model, kind, max_length, config, input_format, as_json):
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
    )
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2, default=str))
    else:
        click.echo(report.render())
    sys.exit(0 if report.ok else 1)


def _train(method: str, data, model, output, config, sets, lora, skip_check, force):
    from train.config import load_run_config

    cfg = load_run_config(
        method,
        model=model,
        output_dir=output,
        config_path=config,
        overrides=list(sets),
        data_path=data,
        lora=lora,
        skip_check=skip_check,
        force=force,
    )
    if method == "sft":
        from train.sft import run_sft as run
    elif method == "dpo":
        from train.dpo import run_dpo as run
    else:
        from train.reward import run_reward as run
    out = run(cfg, echo=lambda s: click.echo(s, err=True))
    manifest = json.loads((out / "manifest.json").read_text())
    m, t = manifest["metrics"], manifest["throughput"]
    shown = {k: v for k, v in m.items() if v is not None and isinstance(v, int | float)}
    click.echo(f"wrote {out}")
    click.echo(
        "  " + "  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in shown.items())
    )
    click.echo(f"  {t['tokens']} tokens in {t['train_runtime_s']}s = {t['tokens_per_s']} tokens/s")


@main.command("sft")
@training_options
@user_errors
def sft_cmd(**kw):
    """Supervised fine-tuning on conversations (loss on assistant turns and their end-of-turn token).

    \b
    Example:
      train sft --data curated-run --model ./base -o sft-run --set max_steps=500 --set learning_rate=2e-5
      train sft --data sft.jsonl --model ./base -o sft-lora --lora --config sft.yaml
    """
    _train("sft", **kw)


@main.command("dpo")
@training_options
@user_errors
def dpo_cmd(**kw):
    """Direct preference optimisation on prompt/chosen/rejected rows (reference: the starting model).

    \b
    Example:
      train dpo --data synth-pairs --model sft-run -o dpo-run --set beta=0.1 --set data.eval_fraction=0.05
    """
    _train("dpo", **kw)


@main.command("reward")
@training_options
@user_errors
def reward_cmd(**kw):
    """Train a reward model (one-label sequence classifier) on preference rows; 10% held out for accuracy.

    \b
    Example:
      train reward --data prefs.jsonl --model ./base -o rm-run
      synth reject-sample ... --verifier reward-model --model rm-run
    """
    _train("reward", **kw)


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
    "--dtype",
    type=click.Choice(["auto", "float32", "bfloat16", "float16"]),
    default="auto",
    show_default=True,
    help="Dtype written (auto: each tensor's own); accumulation is always float32.",
)
@click.option("--force", is_flag=True, help="Replace a non-empty output directory.")
@user_errors
def merge_cmd(models, output, weights, base, alpha, dtype, force):
    """Average checkpoints of one architecture and vocabulary into safetensors (model soups, WARM, WARP).

    Architectures, configs, tensor shapes and vocabularies are compared from the files' headers before any
    tensor is read; a mismatch writes nothing.

    \b
    Example:
      train merge rm-seed0 rm-seed1 rm-seed2 -o rm-warm
      train merge run-a run-b -o soup --weights 0.7,0.3
      train merge rl-a rl-b -o warp --base sft-run --alpha 0.5
    """
    from train.merge import merge_checkpoints, parse_weights

    out = merge_checkpoints(
        list(models), output, weights=parse_weights(weights), base=base, alpha=alpha, dtype=dtype, force=force
    )
    click.echo(f"wrote {out}")


if __name__ == "__main__":
    main()

"""WARM, weight-averaged reward models (Ramé et al., 2024; Gemma 3's RL uses them): `train reward --ensemble M`.

M reward models are fine-tuned from one initialisation, each with its own seed and data order (`seed` and
`data_seed` = the config's seed + k) and, with `--ensemble-lr`, its own learning rate, then their weights are
averaged (`train.merge`, linear). Averaging works because the members share their initialisation: the
sequence-classification head that `AutoModelForSequenceClassification` adds to a causal LM is random, so it is
drawn once (with the config's seed) and saved as the members' common starting point, instead of each member drawing
its own. Every member is an ordinary `train reward` run (check, checkpoints, manifest); finished members are kept in
the state directory, so a stopped ensemble resumes with `--resume` after its last finished member (and a member
stopped mid-training from its own last checkpoint).

The output is the averaged model, which `--reward-model` takes everywhere, with the members in `members/` and a
manifest holding each member's accuracy on the held-out pairs and the average's, all measured the same way.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path

from train.common import build_trl_args, describe_run, fingerprint
from train.config import ConfigError, RewardRunConfig
from train.reward import REWARD, run_reward


def parse_lrs(text: str | None) -> list[float] | None:
    """`--ensemble-lr 1e-5,2e-5` as numbers.

    >>> parse_lrs("1e-5, 2e-5")
    [1e-05, 2e-05]
    """
    if text is None:
        return None
    try:
        lrs = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ConfigError(
            f"--ensemble-lr {text!r}: expected comma-separated learning rates, e.g. 1e-5,2e-5"
        ) from None
    if not lrs or any(lr <= 0 for lr in lrs):
        raise ConfigError(f"--ensemble-lr {text!r}: expected positive learning rates")
    return lrs


def member_settings(cfg: RewardRunConfig, seed: int) -> list[dict]:
    """The TRL settings that differ between members: seed and data order, and the learning rate when given."""
    lrs = cfg.ensemble_lr
    out = []
    for k in range(cfg.ensemble):
        own = {"seed": seed + k, "data_seed": seed + k}
        if lrs:
            own["learning_rate"] = lrs[k % len(lrs)]
        out.append(own)
    return out


def pair_accuracy(model, tokenizer, rows: list[dict]) -> dict:
    """Share of held-out ordered pairs (every pair of each ranking, as the reward trainer evaluates) whose better
    response scores higher."""
    from train.data import reward_pairs
    from train.reward import score

    model.eval()
    right = total = 0
    for r in rows:
        for chosen, rejected, _ in reward_pairs(r):
            c = score(model, tokenizer, r["prompt"], chosen, tools=r.get("tools"))
            j = score(model, tokenizer, r["prompt"], rejected, tools=r.get("tools"))
            right += c > j
            total += 1
    return {"eval_accuracy": round(right / total, 6) if total else None, "eval_pairs": total}


def initialisation(cfg: RewardRunConfig, trl_args, out: Path) -> Path:
    """The members' common start: the model with its reward head drawn once (seeded), as TRL would load it."""
    if (out / "config.json").is_file():
        return out  # a resumed ensemble keeps the head its finished members started from
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, set_seed
    from trl.trainer.utils import create_model_from_path

    set_seed(trl_args.seed)
    kwargs = {**(trl_args.model_init_kwargs or {}), "num_labels": 1}
    model = create_model_from_path(cfg.model, AutoModelForSequenceClassification, **kwargs)
    tokenizer = AutoTokenizer.from_pretrained(cfg.model)
    if tokenizer.pad_token_id is not None:
        model.config.pad_token_id = tokenizer.pad_token_id
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    model.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    os.replace(partial, out)
    return out


def run_warm(cfg: RewardRunConfig, *, echo=print, callbacks=None) -> Path:
    """Train the members, average them, measure members and average on the held-out pairs; returns the output."""
    from curate.io import JsonlWriter, write_json
    from train.check import load_tokenizer
    from train.common import Prepared
    from train.data import read_rows, split_rows
    from train.merge import MergePlan
    from train.resume import TrainingRun

    if cfg.ensemble < 2:
        raise ConfigError(f"--ensemble {cfg.ensemble}: an ensemble averages 2 or more reward models")
    rows, _ = read_rows(
        cfg.data.path, input_format=cfg.data.input_format, max_rows=cfg.data.max_rows, kind="preference"
    )
    fp = {**fingerprint(cfg, rows), "ensemble": cfg.ensemble, "ensemble_lr": cfg.ensemble_lr}
    with TrainingRun(cfg, fingerprint=fp, echo=echo) as run:
        trl_args = build_trl_args(cfg, REWARD, run.state.path / "checkpoints")
        init = initialisation(cfg, trl_args, run.state.path / "init")
        settings = member_settings(cfg, trl_args.seed)
        members = [
            train_member(cfg, k, own, init, run.state.path / f"member-{k}", echo=echo, callbacks=callbacks)
            for k, own in enumerate(settings)
        ]
        echo(f"averaging {len(members)} reward models")
        merge = MergePlan.of(members, method="linear").write(run.path)
        tokenizer = load_tokenizer(str(run.path))
        train_rows, eval_rows = split_rows(rows, cfg.data.eval_fraction)
        table = [
            {"member": k, "path": f"members/{out.name}", **own, **_accuracy(out, tokenizer, eval_rows)}
            for k, (own, out) in enumerate(zip(settings, members, strict=True))
        ]
        merged = _load(run.path)
        average = pair_accuracy(merged, tokenizer, eval_rows)
        echo(
            "held-out accuracy: members "
            + ", ".join(_fmt(m["eval_accuracy"]) for m in table)
            + f"; average {_fmt(average['eval_accuracy'])} ({average['eval_pairs']} pairs)"
        )
        prepared = Prepared(cfg, tokenizer, train_rows, eval_rows, trl_args, None, run.path)
        with JsonlWriter(run / "samples.jsonl") as w:
            w.write_many(REWARD.sanity(merged, prepared))
        os.makedirs(run.path / "members")
        for out in members:
            os.replace(out, run.path / "members" / out.name)
        shutil.rmtree(init, ignore_errors=True)
        manifest = describe_run(
            cfg,
            command=f"train reward --ensemble {cfg.ensemble}",
            trl_args=trl_args,
            tokenizer=tokenizer,
            rows=rows,
            train_rows=train_rows,
            eval_rows=eval_rows,
            report=None,
            kind="preference",
        )
        manifest["check"] = "per member (members/member-0/check.json)"
        manifest.update(
            summary(table, average, merge, f"{cfg.model}, reward head drawn with seed {trl_args.seed}")
        )
        write_json(run / "manifest.json", manifest)
        return run.commit()


def train_member(cfg: RewardRunConfig, k: int, own: dict, init: Path, out: Path, *, echo, callbacks) -> Path:
    """Member `k`: a `train reward` run from the shared initialisation into `out` (skipped when finished, resumed
    from its own last checkpoint when stopped)."""
    from train.resume import StateDir

    if (out / "manifest.json").is_file():
        return out
    stopped = StateDir(out).progress() is not None
    echo(
        f"ensemble member {k + 1}/{cfg.ensemble}: "
        + ", ".join(f"{key} {value}" for key, value in own.items())
        + (" (resuming)" if stopped else "")
    )
    member = dataclasses.replace(
        cfg,
        model=str(init),
        output_dir=str(out),
        trl={**cfg.trl, **own},
        ensemble=1,
        ensemble_lr=None,
        skip_check=cfg.skip_check or k > 0,  # the data is the same: checked once
        resume=stopped,
        force=not stopped,
    )
    return run_reward(member, echo=echo, callbacks=callbacks)


def summary(table: list[dict], average: dict, merge: dict, initialisation: str) -> dict:
    """The manifest's `metrics` and `warm` sections."""
    accuracies = [m["eval_accuracy"] for m in table if m["eval_accuracy"] is not None]
    return {
        "metrics": {
            "eval_accuracy": average["eval_accuracy"],
            "members_eval_accuracy_mean": round(sum(accuracies) / len(accuracies), 6) if accuracies else None,
            "members_eval_accuracy_best": max(accuracies) if accuracies else None,
            "eval_pairs": average["eval_pairs"],
        },
        "warm": {
            "initialisation": initialisation,
            "members": table,
            "average": average,
            "merge": {
                **{k: merge[k] for k in ("method", "merge", "accumulation", "tensors")},
                "models": [{**m, "path": f"members/{Path(m['path']).name}"} for m in merge["models"]],
            },
        },
    }


def _load(path: Path):
    from transformers import AutoModelForSequenceClassification

    return AutoModelForSequenceClassification.from_pretrained(path)


def _accuracy(path: Path, tokenizer, rows: list[dict]) -> dict:
    return pair_accuracy(_load(path), tokenizer, rows)


def _fmt(v) -> str:
    return "n/a" if v is None else f"{v:.3f}"


__all__ = ["member_settings", "pair_accuracy", "parse_lrs", "run_warm"]

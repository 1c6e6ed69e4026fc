"""What `sft`, `dpo` and `reward` share: read and check the data, build TRL's config, train, save, and write the
manifest. Each method module supplies a `Method` (datasets, trainer, metrics, sanity outputs); this module owns
the run directory and everything around the trainer.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from curate.io import InputError, JsonlWriter, RunDir, write_json
from train.config import ConfigError, RunConfig, trl_config_class

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

VERSIONED = (
    "posttrain",
    "torch",
    "transformers",
    "trl",
    "accelerate",
    "datasets",
    "peft",
    "tokenizers",
    "safetensors",
)


class TrainError(Exception):
    """Training cannot start or finish for a reason the user can act on (shown without a traceback)."""


class CheckFailed(TrainError):
    def __init__(self, report):
        super().__init__(
            f"train check found {report.errors} problem(s) in the data or chat template (report above); fix them, "
            "or pass --skip-check to train anyway"
        )
        self.report = report


@dataclass
class Prepared:
    """What a method gets to build its trainer from."""

    cfg: RunConfig
    tokenizer: Any
    train_rows: list[dict]
    eval_rows: list[dict]
    trl_args: Any  # the TRL config instance
    peft_config: Any | None
    out: Path  # where the final model goes (inside the partial run directory)


@dataclass
class Method:
    """A training method: how to turn prepared rows into a TRL trainer and what to report after training."""

    name: str
    kind: str  # data kind: "sft" or "preference"
    build_trainer: Callable[[Prepared], Any]
    final_metrics: Callable[[Any, Prepared], dict]
    save_model: Callable[[Any, Prepared], Any]  # returns the model saved (merged, if LoRA)
    sanity: Callable[[Any, Prepared], list[dict]]
    trl_defaults: Callable[[RunConfig], dict] = lambda cfg: {}
    peft_task: str = "CAUSAL_LM"
    peft_modules_to_save: tuple[str, ...] = ()


def versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in VERSIONED:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def device_defaults(user: dict) -> dict:
    """bf16 mixed precision on a GPU that supports it, fp32 everywhere else, unless the config says otherwise."""
    import torch

    if "bf16" in user or "fp16" in user:
        return {}
    on_gpu = torch.cuda.is_available()
    return {"bf16": bool(on_gpu and torch.cuda.is_bf16_supported()), "fp16": False}


def build_trl_args(cfg: RunConfig, method: Method, output_dir: Path):
    cls = trl_config_class(cfg.method)
    kwargs = {
        # posttrain's defaults; every one can be overridden in the config file
        "report_to": "none",
        "include_num_input_tokens_seen": "non_padding",
        **method.trl_defaults(cfg),
        **device_defaults(cfg.trl),
        **cfg.trl,
        "output_dir": str(output_dir),
    }
    try:
        with warnings.catch_warnings():
            # TRL's own default (gradient_checkpointing=True) trips a transformers rename warning on every run.
            warnings.filterwarnings(
                "ignore", message=".*gradient_checkpointing.* is deprecated", category=FutureWarning
            )
            return cls(**kwargs)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"invalid {cls.__name__} settings: {e}") from None


def build_peft_config(cfg: RunConfig, method: Method):
    if cfg.lora is None:
        return None
    from peft import LoraConfig

    return LoraConfig(
        r=cfg.lora.r,
        lora_alpha=cfg.lora.lora_alpha,
        lora_dropout=cfg.lora.lora_dropout,
        target_modules=cfg.lora.target_modules,
        task_type=method.peft_task,
        modules_to_save=list(method.peft_modules_to_save) or None,
    )


def _plain_json(obj):
    return json.loads(json.dumps(obj, default=str))


def run_training(
    cfg: RunConfig, method: Method, *, echo: Callable[[str], None] = print, callbacks: list | None = None
) -> Path:
    """Check, train and save one run; returns the committed output directory. `callbacks` are extra
    `transformers.TrainerCallback`s (benchmarks use one to time steady-state steps)."""
    from train.check import load_tokenizer, run_check
    from train.data import data_hash, read_rows, split_rows
    from train.template import end_of_turn_token, template_format, template_hash

    rows, invalid = read_rows(
        cfg.data.path, input_format=cfg.data.input_format, max_rows=cfg.data.max_rows, kind=method.kind
    )
    run = RunDir(cfg.output_dir, overwrite=cfg.force, inputs=[cfg.data.path])
    keep_partial = False
    try:
        tokenizer = load_tokenizer(cfg.model)
        report = None
        if cfg.skip_check:
            if invalid:
                bad = invalid[0]
                raise InputError(
                    f"{bad.describe()} ({len(invalid)} unreadable row(s); --skip-check does not skip them)"
                )
        else:
            report = run_check(
                cfg.data.path,
                cfg.model,
                kind=method.kind,
                method=method.name,
                max_length=cfg.max_length,
                tokenizer=tokenizer,
                rows=rows,
                invalid=invalid,
            )
            write_json(run / "check.json", _plain_json(report.as_dict()))
            if not report.ok:
                echo(report.render())
                raise CheckFailed(report)
        train_rows, eval_rows = split_rows(rows, cfg.data.eval_fraction)
        trl_args = build_trl_args(cfg, method, run.path / "checkpoints")
        prepared = Prepared(
            cfg, tokenizer, train_rows, eval_rows, trl_args, build_peft_config(cfg, method), run.path
        )

        trainer = method.build_trainer(prepared)
        for cb in callbacks or ():
            trainer.add_callback(cb)
        echo(
            f"training {cfg.method} on {len(train_rows)} rows ({len(eval_rows)} held out), "
            f"{'bf16' if trl_args.bf16 else 'fp16' if trl_args.fp16 else 'fp32'} on {trl_args.device}"
        )
        keep_partial = True  # from here on, checkpoints may exist that a user wants to resume from
        started = time.perf_counter()
        result = trainer.train()
        wall = time.perf_counter() - started
        metrics = method.final_metrics(trainer, prepared)
        saved = method.save_model(trainer, prepared)
        samples = method.sanity(saved, prepared)
        with JsonlWriter(run / "samples.jsonl") as w:
            w.write_many(samples)
        history = trainer.state.log_history
        with JsonlWriter(run / "log_history.jsonl") as w:
            w.write_many(_plain_json(history))
        losses = [h["loss"] for h in history if "loss" in h]
        tokens = int(trainer.state.num_input_tokens_seen or 0)
        runtime = float(result.metrics.get("train_runtime") or wall)
        manifest = {
            "command": f"train {cfg.method}",
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "model": cfg.model,
            "config": _plain_json(dataclasses.asdict(cfg)),
            "trl_config": {"class": type(trl_args).__name__, **_plain_json(trl_args.to_dict())},
            "seed": trl_args.seed,
            "device": str(trl_args.device),
            "precision": "bf16" if trl_args.bf16 else "fp16" if trl_args.fp16 else "fp32",
            "data": {
                "path": str(cfg.data.path),
                "xxh3_128": data_hash(rows),
                "rows": len(rows),
                "train_rows": len(train_rows),
                "eval_rows": len(eval_rows),
                "eval_ids_sample": [r["id"] for r in eval_rows[:20]],
                "truncated_rows": len(report.lengths.truncated) if report else None,
            },
            "template": {
                "sha256": template_hash(tokenizer),
                "format": template_format(tokenizer),
                "end_of_turn": end_of_turn_token(tokenizer),
            },
            "check": "skipped"
            if report is None
            else {"ok": report.ok, "errors": report.errors, "warnings": report.warnings},
            "versions": versions(),
            "metrics": {
                "train_loss": result.metrics.get("train_loss"),
                "first_logged_loss": losses[0] if losses else None,
                "last_logged_loss": losses[-1] if losses else None,
                "global_step": trainer.state.global_step,
                **metrics,
            },
            "throughput": {
                "tokens": tokens,
                "train_runtime_s": round(runtime, 3),
                "tokens_per_s": round(tokens / runtime, 1) if runtime > 0 else None,
            },
            "lora": _plain_json(dataclasses.asdict(cfg.lora)) if cfg.lora else None,
        }
        write_json(run / "manifest.json", manifest)
        checkpoints = run / "checkpoints"
        if checkpoints.is_dir() and not any(checkpoints.iterdir()):
            checkpoints.rmdir()
        return run.commit()
    except BaseException as e:
        ckpt = run.path / "checkpoints"
        if keep_partial and ckpt.is_dir() and any(ckpt.glob("checkpoint-*")):
            echo(
                f"training stopped ({type(e).__name__}); checkpoints kept in {run.path} "
                "(resume with resume_from_checkpoint in the config)"
            )
            run.release()
        else:
            run.abort()
        raise


def end_of_turn_ids(tokenizer) -> list[int]:
    """Token ids that end a reply: the template's end-of-turn token and the tokenizer's eos."""
    from train.template import end_of_turn_token

    ids = []
    eot = end_of_turn_token(tokenizer)
    if eot is not None:
        ids.append(tokenizer.convert_tokens_to_ids(eot))
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in ids:
        ids.append(tokenizer.eos_token_id)
    return ids


def save_causal_lm(trainer, prepared: Prepared):
    """Save the trained causal LM (LoRA merged into the weights, adapter kept beside) with a generation config
    that stops at the end-of-turn token."""
    model = trainer.model
    if hasattr(model, "merge_and_unload"):
        model.save_pretrained(prepared.out / "adapter")
        model = model.merge_and_unload()
    model = _unwrap(model)
    tok = prepared.tokenizer
    gen = model.generation_config
    have = gen.eos_token_id
    have = [] if have is None else [have] if isinstance(have, int) else list(have)
    stop = end_of_turn_ids(tok)
    gen.eos_token_id = stop + [i for i in have if i not in stop]
    if gen.pad_token_id is None and tok.pad_token_id is not None:
        gen.pad_token_id = tok.pad_token_id
    model.config.use_cache = True
    model.save_pretrained(prepared.out)
    tok.save_pretrained(prepared.out)
    return model


def _unwrap(model):
    return getattr(model, "module", model)


def generate_samples(model, prepared: Prepared, prompts: list[tuple[str, list[dict]]]) -> list[dict]:
    """Greedy replies to a few prompts: does the model produce text and stop at the end-of-turn token?"""
    import torch

    from train.template import encode, render

    tok = prepared.tokenizer
    stop = end_of_turn_ids(tok)
    model.eval()
    out = []
    for row_id, prompt in prompts[: prepared.cfg.sanity_prompts]:
        ids = encode(tok, render(tok, prompt, add_generation_prompt=True))
        x = torch.tensor([ids], device=model.device)
        with torch.no_grad():
            y = model.generate(
                x,
                attention_mask=torch.ones_like(x),
                max_new_tokens=prepared.cfg.max_new_tokens,
                do_sample=False,
                eos_token_id=stop,
                pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else stop[0],
            )
        new = y[0, len(ids) :].tolist()
        out.append(
            {
                "id": row_id,
                "prompt": prompt,
                "completion": tok.decode(new, skip_special_tokens=False),
                "new_tokens": len(new),
                "stopped_at_end_of_turn": bool(new) and new[-1] in stop,
            }
        )
    return out


def prompts_for(rows: list[dict]) -> list[tuple[str, list[dict]]]:
    """The prompt of each row: a preference row's prompt, or a conversation up to its last user turn."""
    out = []
    for r in rows:
        if "prompt" in r and isinstance(r["prompt"], list):
            out.append((r["id"], r["prompt"]))
        else:
            msgs = r["messages"]
            last_user = max((i for i, m in enumerate(msgs) if m["role"] == "user"), default=None)
            if last_user is not None:
                out.append((r["id"], msgs[: last_user + 1]))
    return out

"""What the training commands share: read and check the data, build TRL's config, train, save, and write the
manifest. Each method module supplies a `Method` (datasets, trainer, metrics, sanity outputs); this module owns
the run directory and everything around the trainer.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from curate.io import InputError, JsonlWriter, write_json
from curate.provenance import versions
from train import launch
from train.config import ConfigError, RunConfig, trl_config_class

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


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
    state: Any = None  # the run's `train.resume.StateDir` (what survives a kill)
    resume_from: Path | None = None  # the checkpoint training continues from


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
    command: str | None = None  # as the manifest names it (default `train METHOD`)
    preflight: Callable[[RunConfig, list[dict]], None] | None = (
        None  # more checks of the rows, before any model
    )
    finish: Callable[[Any, Prepared], dict] = (
        lambda trainer, prepared: {}
    )  # own outputs; returns manifest sections


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
        **launch.trl_defaults(),
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


def check_data(cfg: RunConfig, kind: str, rows: list[dict], invalid: list, out: Path, *, echo, method=None):
    """`train check` on the rows before training (its report in `out/check.json`); returns the tokenizer and
    the report (None with --skip-check; in a launched worker, the launcher's report as a dict). Raises
    `CheckFailed` after printing the report."""
    from train.check import load_tokenizer, run_check

    tokenizer = load_tokenizer(cfg.model)
    if cfg.skip_check:
        if invalid:
            bad = invalid[0]
            raise InputError(
                f"{bad.describe()} ({len(invalid)} unreadable row(s); --skip-check does not skip them)"
            )
        return tokenizer, None
    if launch.is_launched():  # the launcher checked once, before starting this process
        return tokenizer, launch.launcher_check(out)

    def check():
        report = run_check(
            cfg.data.path,
            cfg.model,
            kind=kind,
            method=method,
            max_length=cfg.max_length,
            tokenizer=tokenizer,
            rows=rows,
            invalid=invalid,
            add_eos=getattr(cfg, "add_eos", False),
        )
        write_json(out / "check.json", _plain_json(report.as_dict()))
        if not report.ok:
            echo(report.render())
            raise CheckFailed(report)
        return report

    return tokenizer, launch.on_main(
        check
    )  # in a distributed run the others wait for it (their report: None)


def fingerprint(cfg: RunConfig, rows: list[dict]) -> dict:
    """What a stopped run's state is valid for: `--resume` refuses another command, model, data, reward or teacher."""
    from train.data import data_hash

    out = {"command": cfg.method, "model": str(cfg.model), "data_xxh3_128": data_hash(rows)}
    settings = getattr(cfg, "settings", None)
    for key in ("reward", "teacher"):
        if getattr(settings, key, None) is not None:
            out[key] = getattr(settings, key)
    return out


def precision(trl_args) -> str:
    return "bf16" if trl_args.bf16 else "fp16" if trl_args.fp16 else "fp32"


def describe_run(
    cfg: RunConfig,
    *,
    command: str,
    trl_args,
    tokenizer,
    rows,
    train_rows,
    eval_rows,
    report,
    kind: str | None = None,
) -> dict:
    """The manifest fields every training command writes: config, data, template, check, versions."""
    from train.data import data_hash
    from train.template import end_of_turn_token, has_chat_template, template_format, template_hash

    check = check_summary(report)
    return {
        "command": command,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "model": cfg.model,
        "config": _plain_json(dataclasses.asdict(cfg)),
        "trl_config": {"class": type(trl_args).__name__, **_plain_json(trl_args.to_dict())},
        "seed": trl_args.seed,
        "device": str(trl_args.device),
        "precision": precision(trl_args),
        "data": {
            "path": str(cfg.data.path),
            "xxh3_128": data_hash(rows),
            "rows": len(rows),
            "train_rows": len(train_rows),
            "eval_rows": len(eval_rows),
            "eval_ids_sample": [r["id"] for r in eval_rows[:20]],
            "truncated_rows": check["truncated_rows"] if check else None,
        },
        "data_kind": kind,
        "template": {
            "sha256": template_hash(tokenizer),
            "format": template_format(tokenizer) if kind != "text" else "text",
            "end_of_turn": end_of_turn_token(tokenizer) if has_chat_template(tokenizer) else None,
        },
        "check": "skipped" if check is None else {k: check[k] for k in ("ok", "errors", "warnings")},
        "distributed": launch.describe(trl_args),
        "versions": versions(),
        "lora": _plain_json(dataclasses.asdict(cfg.lora)) if cfg.lora else None,
    }


def check_summary(report) -> dict | None:
    """ok, errors, warnings and truncated rows of a `CheckReport`, or of the one a launcher wrote (a dict)."""
    if report is None:
        return None
    d = report if isinstance(report, dict) else report.as_dict()
    truncated = (d.get("lengths") or {}).get("truncated")
    return {"ok": d["ok"], "errors": d["errors"], "warnings": d["warnings"], "truncated_rows": truncated}


def fit(trainer, *, resume_from: Path | None = None):
    """Train (from a checkpoint, when given); returns TRL's result, the seconds and the tokens/s."""
    started = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    wall = time.perf_counter() - started
    tokens = int(trainer.state.num_input_tokens_seen or 0)  # summed over the processes
    runtime = float(result.metrics.get("train_runtime") or wall)
    world = int(trainer.args.world_size)
    return result, {
        "tokens": tokens,
        "train_runtime_s": round(runtime, 3),
        "tokens_per_s": round(tokens / runtime, 1) if runtime > 0 else None,
        "tokens_per_s_per_process": round(tokens / runtime / world, 1) if runtime > 0 else None,
    }


def run_training(
    cfg: RunConfig, method: Method, *, echo: Callable[[str], None] = print, callbacks: list | None = None
) -> Path | None:
    """Check, train and save one run; returns the committed output directory. `callbacks` are extra
    `transformers.TrainerCallback`s (benchmarks use one to time steady-state steps; tests one that stops a run).
    Checkpoints are written to the state directory beside the output (`train.resume`), so a killed run resumes
    with `cfg.resume`. With `cfg.launch` asking for several processes this process checks the data, launches them
    (`train.launch`) and commits what they wrote; in a distributed run only the main process writes, and the
    others return None."""
    from train.data import data_kind, read_rows, split_rows

    relaunch = launch.plan(cfg)  # refused here, before anything is read, if it cannot start
    echo = launch.main_only(echo)
    rows, invalid = read_rows(
        cfg.data.path, input_format=cfg.data.input_format, max_rows=cfg.data.max_rows, kind=method.kind
    )
    kind = data_kind(method.kind, rows)
    with launch.open_run(cfg, fingerprint=fingerprint(cfg, rows), echo=echo) as run:
        tokenizer, report = check_data(cfg, kind, rows, invalid, run.path, echo=echo, method=method.name)
        if method.preflight is not None:
            method.preflight(cfg, rows)
        if relaunch is not None:
            return relaunch.run(run, echo=echo)
        train_rows, eval_rows = split_rows(rows, cfg.data.eval_fraction)
        trl_args = build_trl_args(cfg, method, run.state.checkpoints)
        resume_from = run.state.last_checkpoint() if run.resumed else None
        prepared = Prepared(
            cfg,
            tokenizer,
            train_rows,
            eval_rows,
            trl_args,
            build_peft_config(cfg, method),
            run.path,
            state=run.state,
            resume_from=resume_from,
        )

        trainer = method.build_trainer(prepared)
        for cb in callbacks or ():
            trainer.add_callback(cb)
        examples = len(trainer.train_dataset)
        # rankings expand into pairs (reward); TRL drops rows left with nothing to train on
        expanded = f" = {examples} training examples" if examples != len(train_rows) else ""
        echo(
            f"training {cfg.method} on {len(train_rows)} rows{expanded} ({len(eval_rows)} held out), "
            f"{precision(trl_args)} on {trl_args.device}"
            + (f", resuming from {resume_from}" if resume_from else "")
        )
        result, throughput = fit(trainer, resume_from=resume_from)
        metrics = method.final_metrics(trainer, prepared)
        saved = method.save_model(trainer, prepared)
        if not launch.is_main_process():
            return None
        samples = method.sanity(saved, prepared)
        with JsonlWriter(run / "samples.jsonl") as w:
            w.write_many(samples)
        history = trainer.state.log_history
        with JsonlWriter(run / "log_history.jsonl") as w:
            w.write_many(_plain_json(history))
        losses = [h["loss"] for h in history if "loss" in h]
        manifest = describe_run(
            cfg,
            command=method.command or f"train {cfg.method}",
            trl_args=trl_args,
            tokenizer=tokenizer,
            rows=rows,
            train_rows=train_rows,
            eval_rows=eval_rows,
            report=report,
            kind=kind,
        )
        manifest["metrics"] = {
            "train_loss": result.metrics.get("train_loss"),
            "first_logged_loss": losses[0] if losses else None,
            "last_logged_loss": losses[-1] if losses else None,
            "global_step": trainer.state.global_step,
            **metrics,
        }
        manifest["resumed_from"] = resume_from.name if resume_from else None
        own = method.finish(trainer, prepared)
        manifest["throughput"] = {**throughput, **own.pop("throughput", {})}
        manifest.update(own)
        write_json(run / "manifest.json", manifest)
        return run.commit()


def end_of_turn_ids(tokenizer) -> list[int]:
    """Token ids that end a reply: the template's end-of-turn token and the tokenizer's eos."""
    from train.template import end_of_turn_token, has_chat_template

    ids = []
    eot = end_of_turn_token(tokenizer) if has_chat_template(tokenizer) else None
    if eot is not None:
        ids.append(tokenizer.convert_tokens_to_ids(eot))
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in ids:
        ids.append(tokenizer.eos_token_id)
    return ids


def save_causal_lm(trainer, prepared: Prepared):
    """Save the trained causal LM (LoRA merged into the weights, adapter kept beside) with a generation config
    that stops at the end-of-turn token. In a distributed run the main process saves; the others return None."""
    model = trained_model(trainer, prepared, "CausalLM")
    if model is None:
        return None
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


def trained_model(trainer, prepared: Prepared, head: str):
    """The trained model, whole, on the main process (None on the others). One process, DDP and ZeRO-2 hold it in
    memory; under FSDP and ZeRO-3 the Trainer gathers the shards (every process takes part) into a directory the main
    process loads back, as `AutoModelFor{head}` (or peft's `AutoPeftModelFor{head}` for an adapter)."""
    if not launch.is_sharded():
        return trainer.model if launch.is_main_process() else None
    import shutil

    staging = prepared.out / ".gathered"
    trainer.save_model(str(staging))
    if not launch.is_main_process():
        return None
    if (staging / "adapter_config.json").is_file():
        import peft

        model = getattr(peft, f"AutoPeftModelFor{head}").from_pretrained(staging)
    else:
        import transformers

        model = getattr(transformers, f"AutoModelFor{head}").from_pretrained(staging)
    shutil.rmtree(staging)
    return model


def _unwrap(model):
    return getattr(model, "module", model)


def generate_samples(model, prepared: Prepared, prompts: list[dict]) -> list[dict]:
    """Greedy replies to a few prompts: does the model produce text and stop at the end-of-turn token? A text
    prompt (a pre-trained model) is continued as plain text, from the tokenizer's BOS."""
    import torch

    from train.template import encode, render

    tok = prepared.tokenizer
    stop = end_of_turn_ids(tok)
    model.eval()
    out = []
    for p in prompts[: prepared.cfg.sanity_prompts]:
        prompt = p["prompt"]
        if isinstance(prompt, str):
            ids = tok(prompt, add_special_tokens=True)["input_ids"]
        else:
            ids = encode(tok, render(tok, prompt, add_generation_prompt=True, tools=p.get("tools")))
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
                "id": p["id"],
                "prompt": prompt,
                "completion": tok.decode(new, skip_special_tokens=False),
                "new_tokens": len(new),
                "stopped_at_end_of_turn": bool(new) and new[-1] in stop,
            }
        )
    return out


def prompts_for(rows: list[dict]) -> list[dict]:
    """The prompt of each row (`id`, `prompt`, `tools`): a preference row's prompt, a conversation up to its last
    user turn, or the first words of a text row."""
    out = []
    for r in rows:
        if r["_kind"] == "text":
            words = r["text"].split()
            out.append({"id": r["id"], "prompt": " ".join(words[: max(1, min(8, len(words) // 2))])})
        elif "prompt" in r and isinstance(r["prompt"], list):
            out.append({"id": r["id"], "prompt": r["prompt"], "tools": r.get("tools")})
        else:
            msgs = r["messages"]
            last_user = max((i for i, m in enumerate(msgs) if m["role"] == "user"), default=None)
            if last_user is not None:
                out.append({"id": r["id"], "prompt": msgs[: last_user + 1], "tools": r.get("tools")})
    return out

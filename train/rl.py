"""`train rl --algo grpo|rloo`: on-policy RL with TRL's `GRPOTrainer` or `RLOOTrainer`, posttrain's verifiers as
the reward (Gemma 3's recipe: ground-truth math, code execution, instruction checks and reward models, mixed).

TRL 1.16 has no PPO trainer; GRPO and RLOO need no value model. The trainer samples `num_generations` completions
per prompt itself (transformers, or vLLM with `--vllm-mode`); one reward function (`train.rewards.RewardFunction`)
verifies the batch: the rows are rebuilt from the dataset, code runs in the sandbox's workers, and every reward is
written to `rollouts.jsonl` with the step, prompt id, completion, verdict, detail and each verifier's verdict.
The manifest holds per-step mean and median reward, TRL's KL to the reference (when `beta` > 0), and tokens/s
for generation and for the rest of training.
"""

from __future__ import annotations

import os
import time
from collections import defaultdict
from functools import cache
from pathlib import Path

import orjson

from train import launch
from train.common import Method, Prepared, generate_samples, prompts_for, run_training, save_causal_lm
from train.config import ConfigError, OnlineRunConfig
from train.rewards import (
    NOT_FOR_TRAINING,
    RewardFunction,
    RolloutLog,
    build_reward,
    check_rewardable,
    progress_callback,
    public,
    reward_settings_class,
    reward_stats,
)

ALGOS = ("grpo", "rloo")
VLLM_MODES = ("server", "colocate")
# What TRL logs per step that a reader of the manifest wants next to the rewards.
CLI_EXCLUDED = NOT_FOR_TRAINING
STEP_METRICS = (
    "reward",
    "reward_std",
    "kl",
    "entropy",
    "completions/mean_length",
    "completions/clipped_ratio",
)


__all__ = ["ALGOS", "CLI_EXCLUDED", "RLRun", "prompt_dataset", "run_rl", "settings_class", "vllm_trl_args"]


ANCHORS = ("sft", "ema")
# TRL's reference-model options that `--anchor ema` sets (TR-DPO's reference update, which is WARP's EMA anchor).
EMA_KEYS = ("sync_ref_model", "ref_model_mixup_alpha", "ref_model_sync_steps")
ANCHOR_FILE = "anchor.safetensors"


@cache
def settings_class():
    """`rl`'s own settings: the reward, the KL anchor, the online merging optimizer and where completions are
    generated (everything else is TRL's config)."""
    from synth.config import setting, settings
    from train import online_merging

    @settings
    class RLSettings(reward_settings_class(), online_merging.settings_class()):
        anchor: str = setting(
            "sft",
            "What TRL's KL penalty (beta > 0) pulls towards: sft, the starting model; ema (WARP's first stage), an "
            "exponential moving average of the policy, updated after every step with --ema-rate (TRL's "
            "sync_ref_model with ref_model_mixup_alpha = rate, ref_model_sync_steps = 1).",
            choices=ANCHORS,
        )
        ema_rate: float = setting(
            0.01,
            "--anchor ema: anchor <- (1 - rate) * anchor + rate * policy, after every step (WARP's mu).",
            min=0,
            max=1,
            min_open=True,
        )
        vllm_mode: str | None = setting(
            None,
            "Generate with vLLM (TRL's use_vllm): server (a `trl vllm-serve` on GPUs of its own; "
            "--set vllm_server_base_url=...) or colocate (vLLM inside every training process, sharing its GPU; "
            "--set vllm_gpu_memory_utilization=...) [default: transformers' generate in the training processes].",
            choices=VLLM_MODES,
        )

    return RLSettings


def vllm_trl_args(cfg) -> dict:
    """`--vllm-mode` as GRPOConfig / RLOOConfig fields (the run's config may still override them)."""
    mode = getattr(cfg.settings, "vllm_mode", None)
    return {"use_vllm": True, "vllm_mode": mode} if mode else {}


def anchor_trl_args(cfg) -> dict:
    """TRL's settings for the anchor: with `--anchor ema`, the reference model follows the policy as an EMA."""
    s = cfg.settings
    if getattr(s, "anchor", "sft") != "ema":
        return {}
    given = [k for k in EMA_KEYS if k in cfg.trl]
    if given:
        raise ConfigError(
            f"--anchor ema sets {', '.join(given)} itself (from --ema-rate): leave them out of the config"
        )
    return {"sync_ref_model": True, "ref_model_mixup_alpha": s.ema_rate, "ref_model_sync_steps": 1}


def anchor_callback(trainer):
    """Saves the EMA anchor into every checkpoint, so `--resume` continues from the anchor it had (TRL's checkpoints
    hold the policy only; a resumed run would otherwise restart the anchor from the starting model)."""
    from transformers import TrainerCallback

    class SaveAnchor(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            from safetensors.torch import save_file

            if not args.should_save:  # the process that writes the checkpoint writes the anchor too
                return

            ckpt = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            tensors = {
                n: p.detach().cpu().contiguous() for n, p in _unwrap(trainer.ref_model).named_parameters()
            }
            save_file(tensors, str(ckpt / ANCHOR_FILE))

    return SaveAnchor()


def load_anchor(trainer, checkpoint: Path) -> None:
    from safetensors.torch import load_file

    from train.common import TrainError

    f = checkpoint / ANCHOR_FILE
    if not f.is_file():
        raise TrainError(
            f"{checkpoint}: no EMA anchor saved with this checkpoint ({ANCHOR_FILE}); pass --force to start over"
        )
    saved = load_file(str(f))
    for n, p in _unwrap(trainer.ref_model).named_parameters():
        p.data.copy_(saved[n].to(p.device, p.dtype))


def anchor_distances(trainer, init: str) -> dict:
    """L2 distances between the anchor, the final policy and the starting model (what the anchor did)."""
    import torch

    from train.merge import TensorReader, inspect_checkpoint

    ck = inspect_checkpoint(init)
    policy = dict(_unwrap(trainer.model).named_parameters())
    sq = {"anchor_to_policy": 0.0, "anchor_to_init": 0.0, "policy_to_init": 0.0}
    with TensorReader() as reader, torch.no_grad():
        for n, a in _unwrap(trainer.ref_model).named_parameters():
            x0 = reader.get(ck, n).float()
            a, p = a.detach().float().cpu(), policy[n].detach().float().cpu()
            sq["anchor_to_policy"] += float((a - p).pow(2).sum())
            sq["anchor_to_init"] += float((a - x0).pow(2).sum())
            sq["policy_to_init"] += float((p - x0).pow(2).sum())
    return {f"l2_{k}": round(v**0.5, 8) for k, v in sq.items()}


def _unwrap(model):
    return getattr(model, "module", model)


def prompt_dataset(rows: list[dict]):
    """TRL's conversational prompts, and each whole row as JSON for the reward function to rebuild."""
    from datasets import Dataset

    return Dataset.from_dict(
        {
            "prompt": [[{"role": m["role"], "content": m["content"]} for m in r["messages"]] for r in rows],
            "row_json": [orjson.dumps(public(r), default=str).decode() for r in rows],
        }
    )


class GenerationTimer:
    """Mixed into TRL's trainer: the seconds spent generating training completions, and the tokens generated."""

    generation_seconds = 0.0
    generated_tokens = 0

    def _generate(self, prompts):
        t0 = time.perf_counter()
        out = super()._generate(prompts)
        if self.model.training:
            self.generation_seconds += time.perf_counter() - t0
            self.generated_tokens += sum(len(ids) for ids in out[1])  # completion ids, in GRPO and RLOO alike
        return out


def step_of(checkpoint: Path | None) -> int | None:
    return int(checkpoint.name.rsplit("-", 1)[1]) if checkpoint is not None else None


class RLRun:
    """What a `train rl` run holds besides the trainer: the verifier and the rollouts (closed by `close`)."""

    def __init__(self, cfg: OnlineRunConfig):
        self.cfg = cfg
        self.verifier = self.log = self.reward = self.merging = self.trainer = None

    def preflight(self, cfg, rows: list[dict]) -> None:
        from train import online_merging

        check_rewardable(cfg.settings, rows)
        online_merging.check(cfg)

    def build_trainer(self, p: Prepared):
        import trl

        from train.online_merging import attach_to

        if p.cfg.settings.anchor == "ema" and not p.trl_args.beta:
            raise ConfigError(
                "--anchor ema is the reference of the KL penalty, which beta=0 turns off: set beta, e.g. --set beta=0.05"
            )
        base = {"grpo": trl.GRPOTrainer, "rloo": trl.RLOOTrainer}[p.cfg.method]
        timed = type(f"Timed{base.__name__}", (GenerationTimer, base), {})
        self.verifier = build_reward(p.cfg.settings)  # every process scores its own completions
        if launch.is_main_process():  # which alone writes them all down
            self.log = RolloutLog(p.state.path / "rollouts.jsonl", keep_through=step_of(p.resume_from))
        self.reward = RewardFunction(self.verifier, self.log)
        trainer = timed(
            model=p.cfg.model,
            reward_funcs=[self.reward],
            args=p.trl_args,
            train_dataset=prompt_dataset(p.train_rows),
            eval_dataset=prompt_dataset(p.eval_rows) if p.eval_rows else None,
            processing_class=p.tokenizer,
            peft_config=p.peft_config,
        )
        self.reward.trainer = trainer
        trainer.add_callback(progress_callback(trainer, f"rl {p.cfg.method}"))
        if p.cfg.settings.anchor == "ema":
            trainer.add_callback(anchor_callback(trainer))
            if p.resume_from is not None:
                load_anchor(trainer, p.resume_from)
        self.merging = attach_to(trainer, p.cfg.settings, p.cfg.model)
        self.trainer = trainer
        return trainer

    def final_metrics(self, trainer, p: Prepared) -> dict:
        from train.dpo import last_logged

        out = last_logged(trainer.state.log_history, STEP_METRICS)
        if p.eval_rows:
            ev = trainer.evaluate()
            out.update(last_logged([ev], ("reward", "reward_std"), prefix="eval_"))
        return out

    def finish(self, trainer, p: Prepared) -> dict:
        """`rollouts.jsonl` into the output; rewards per step and throughput into the manifest."""
        records = self.log.read()
        self.log.close()
        os.replace(self.log.path, p.out / "rollouts.jsonl")
        by_step: dict[int, list] = defaultdict(list)
        for r in records:
            if not r.get("eval"):
                by_step[r["step"]].append(r["reward"])
        logged = {h["step"]: h for h in trainer.state.log_history if "step" in h and "loss" in h}
        per_step = []
        for step in sorted(by_step):
            row = {"step": step, **reward_stats(by_step[step])}
            row.update(
                {k.replace("/", "_"): v for k, v in logged.get(step, {}).items() if k in STEP_METRICS[1:]}
            )
            per_step.append(row)
        gen_s, gen_tok = trainer.generation_seconds, trainer.generated_tokens
        runtime = (
            float(trainer.state.log_history[-1].get("train_runtime") or 0) if trainer.state.log_history else 0
        )
        rest = runtime - gen_s - self.reward.seconds
        tokens = int(trainer.state.num_input_tokens_seen or 0)
        s = p.cfg.settings
        anchor = {"kind": s.anchor}
        if s.anchor == "ema":
            anchor.update(
                ema_rate=s.ema_rate,
                trl={k: getattr(p.trl_args, k) for k in EMA_KEYS},
                **anchor_distances(trainer, p.cfg.model),
            )
        return {
            "anchor": anchor,
            "online_merging": self.merging.info() if self.merging else None,
            "reward": {"spec": p.cfg.settings.reward, "verifier": self.verifier.info()},
            "settings": orjson.loads(orjson.dumps(p.cfg.settings.__dict__, default=str)),
            "rewards": {
                "all_steps": reward_stats([r["reward"] for r in records if not r.get("eval")]),
                "per_step": per_step,
            },
            "throughput": {
                "generation_tokens": gen_tok,
                "generation_seconds": round(gen_s, 3),
                "generation_tokens_per_s": round(gen_tok / gen_s, 1) if gen_s > 0 else None,
                "reward_seconds": round(self.reward.seconds, 3),
                # the rest of the run: log-probs, losses and updates over prompt + completion tokens
                "training_seconds": round(rest, 3) if runtime else None,
                "training_tokens_per_s": round(tokens / rest, 1) if runtime and rest > 0 else None,
            },
        }

    def close(self) -> None:
        if self.log is not None:
            self.log.close()
        if self.verifier is not None:
            self.verifier.close()

    def method(self) -> Method:
        return Method(
            name=self.cfg.method,
            kind="prompt",
            build_trainer=self.build_trainer,
            final_metrics=self.final_metrics,
            save_model=save_causal_lm,
            sanity=lambda model, p: generate_samples(model, p, prompts_for(p.eval_rows + p.train_rows)),
            command=f"train rl --algo {self.cfg.method}",
            trl_defaults=lambda cfg: {**anchor_trl_args(cfg), **vllm_trl_args(cfg)},
            preflight=self.preflight,
            finish=self.finish,
        )


def run_rl(cfg: OnlineRunConfig, *, echo=print, callbacks=None) -> Path | None:
    """Check the prompts and the reward, train, and write the model, rollouts and manifest; returns the output."""
    rl = RLRun(cfg)
    try:
        return run_training(cfg, rl.method(), echo=echo, callbacks=callbacks)
    finally:
        rl.close()

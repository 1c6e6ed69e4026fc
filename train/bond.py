"""`train bond`: best-of-N distillation (BOND, Sessa et al., 2024; Gemma 3's RL) on the online loop of
`train online-dpo`.

Each episode samples `--n` replies per prompt from the current policy and scores them with `--reward`, as online DPO
does (`synth reject-sample`'s method, its cache and ledger); the best of each prompt's N (the argmax of the recorded
rewards) is the target. The policy is then trained on the targets with

    loss = NLL(best-of-N reply | prompt)  +  kl_coef * KL(policy || anchor)

The first term is the forward KL to the best-of-N distribution, estimated with its samples; the second is the exact
per-token reverse KL (over the whole vocabulary) to the anchor on the same sequences. The anchor is an exponential
moving average of the policy, `anchor <- (1 - ema_rate) * anchor + ema_rate * policy` after every optimizer step
(TRL's `SyncRefModelCallback` update), kept from episode to episode (it starts as the SFT model); the output holds
the last policy and, in `anchor/`, the last anchor.

How this differs from J-BOND (the paper's practical algorithm):
- J-BOND draws the N samples from the anchor and distils Best-of-N(anchor); here they come from the current policy,
  as the online loop samples them, so the target is Best-of-N(policy at the start of the episode).
- J-BOND minimises a Jeffreys divergence to Best-of-N: forward KL (SFT on the best sample, as here) plus a backward
  KL estimated with REINFORCE and log-quantile rewards. The backward term here is not towards Best-of-N but a
  KL-to-anchor regulariser, computed exactly per token rather than by policy gradient.
- Prompts whose N samples all score the same (Best-of-N = the policy) are skipped and counted, as online DPO skips
  them; `--min-margin` skips prompts whose best and worst are closer than it.
"""

from __future__ import annotations

import dataclasses
from functools import cache
from pathlib import Path

from train.config import BondRunConfig
from train.online_dpo import EPISODE, NOT_FOR_POLICY, ONLINE_DPO, OnlineDPO
from train.online_dpo import settings_class as online_dpo_settings
from train.rewards import NOT_FOR_TRAINING

ANCHOR = "anchor"
BOND_METRICS = ("nll", "kl_to_anchor")
CLI_EXCLUDED = (*NOT_FOR_POLICY, *NOT_FOR_TRAINING, "reference")


@cache
def settings_class():
    """online-dpo's settings (reward, sampling, episodes), plus the anchor's."""
    from synth.config import setting, settings

    @settings
    class BondSettings(online_dpo_settings()):
        kl_coef: float = setting(
            0.1, "Weight of KL(policy || anchor) beside the best-of-N log-likelihood.", min=0
        )
        ema_rate: float = setting(
            0.05,
            "anchor <- (1 - rate) * anchor + rate * policy after every optimizer step.",
            min=0,
            max=1,
            min_open=True,
        )

    return BondSettings


def bond_trainer_class():
    """TRL's SFTTrainer (dataset, collator, logging) with BOND's loss and an EMA anchor."""
    import torch
    from trl import SFTTrainer
    from trl.trainer.callbacks import SyncRefModelCallback

    class BondTrainer(SFTTrainer):
        loss_is_scaled_for_ga = False  # a per-batch token mean: the Trainer divides by the accumulation steps

        def __init__(self, *args, anchor, kl_coef: float, ema_rate: float, **kwargs):
            super().__init__(*args, **kwargs)
            self.anchor = anchor.to(self.args.device).eval().requires_grad_(False)
            self.kl_coef = kl_coef
            trainer = self

            class EmaAnchor(SyncRefModelCallback):
                def on_step_end(self, args, state, control, **kw):
                    self.sync_target_model(
                        trainer.accelerator.unwrap_model(trainer.model), trainer.anchor, ema_rate
                    )

            self.add_callback(EmaAnchor(ref_model=self.anchor, accelerator=self.accelerator))

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            labels = inputs["labels"][:, 1:]
            mask = labels != -100
            n = mask.sum().clamp_min(1)
            kw = {"input_ids": inputs["input_ids"], "attention_mask": inputs.get("attention_mask")}
            outputs = model(**kw, use_cache=False)
            logp = outputs.logits[:, :-1].float().log_softmax(-1)
            with torch.no_grad():
                anchor = self.anchor(**kw, use_cache=False).logits[:, :-1].float().log_softmax(-1)
            nll = -(logp.gather(-1, labels.clamp_min(0)[..., None])[..., 0] * mask).sum() / n
            kl = ((logp.exp() * (logp - anchor)).sum(-1) * mask).sum() / n
            mode = "train" if model.training else "eval"
            self._metrics[mode]["nll"].append(float(nll.detach()))
            self._metrics[mode]["kl_to_anchor"].append(float(kl.detach()))
            loss = nll + self.kl_coef * kl
            return (loss, outputs) if return_outputs else loss

    return BondTrainer


# Per-episode resuming as online-dpo; the labels are built here (the assistant turn of the best-of-N conversation).
BOND = dataclasses.replace(
    ONLINE_DPO, name="bond", trl_defaults=lambda cfg: {"save_strategy": "no", "assistant_only_loss": False}
)


class Bond(OnlineDPO):
    """One `train bond` run: online DPO's episodes, each training towards the best of N with an EMA anchor."""

    METHOD = BOND
    LOSS = "BOND"
    LOGGED = BOND_METRICS
    COMMAND = "train bond"

    def anchor_of(self, episode: int) -> str:
        """The anchor an episode starts from: the last one an earlier episode trained, or the SFT model."""
        for e in range(episode - 1, 0, -1):
            prev = self.state.path / EPISODE.format(e) / ANCHOR
            if prev.is_dir():
                return str(prev)
        return str(self.cfg.model)

    def make_trainer(self, episode: int, policy: Path, pairs: list[dict], tokenizer, trl_args, sft):
        from transformers import AutoModelForCausalLM

        from train.data import sft_dataset

        targets = [{"_kind": "conversation", "messages": p["prompt"] + p["chosen"]} for p in pairs]
        return bond_trainer_class()(
            model=str(policy),
            args=trl_args,
            train_dataset=sft_dataset(targets, tokenizer),
            processing_class=tokenizer,
            anchor=AutoModelForCausalLM.from_pretrained(self.anchor_of(episode)),
            kl_coef=self.s.kl_coef,
            ema_rate=self.s.ema_rate,
        )

    def after_training(self, trainer, episode: int, work: Path) -> dict:
        """Keep the anchor for the next episode; its distance from the policy it followed."""
        import torch

        trainer.anchor.save_pretrained(work / ANCHOR)
        with torch.no_grad():
            policy = dict(trainer.accelerator.unwrap_model(trainer.model).named_parameters())
            sq = sum(float((a - policy[n]).pow(2).sum()) for n, a in trainer.anchor.named_parameters())
        return {"l2_anchor_to_policy": round(sq**0.5, 8)}

    def after_commit(self, episode: int) -> None:
        import shutil

        mine = self.state.path / EPISODE.format(episode) / ANCHOR
        for e in range(1, episode):  # only the newest anchor is needed again
            old = self.state.path / EPISODE.format(e) / ANCHOR
            if mine.is_dir() and old.is_dir():
                shutil.rmtree(old, ignore_errors=True)

    def write_outputs(self, run, policy: Path, episodes: list[dict], prepared) -> None:
        """online-dpo's outputs, and the last anchor in `anchor/`."""
        import os

        super().write_outputs(run, policy, episodes, prepared)
        last = Path(self.anchor_of(len(episodes) + 1))
        if last.parent.parent == self.state.path:
            os.replace(last, run.path / ANCHOR)


def run_bond(cfg: BondRunConfig, *, echo=print, after_episode=None) -> Path | None:
    return Bond(cfg, echo=echo, after_episode=after_episode).run()


__all__ = ["Bond", "bond_trainer_class", "run_bond", "settings_class"]

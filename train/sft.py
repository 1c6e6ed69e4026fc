"""`train sft`: supervised fine-tuning with TRL's `SFTTrainer` on curated conversations.

The data is tokenized here with the assistant-only label mask of `train.template` (the reply text and its
end-of-turn token, for every assistant message, tool calls included) and handed to TRL pre-tokenized, so it works
with any chat template the preflight accepts. Plain `text` rows (a pre-trained model) are BOS + text + EOS, all
trained.

>>> from train.config import load_run_config                                   # doctest: +SKIP
>>> cfg = load_run_config("sft", model="./tiny", output_dir="runs/sft", data_path="sft.jsonl",
...                       overrides=["max_steps=20"])                          # doctest: +SKIP
>>> run_sft(cfg)                                                               # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

from train.common import Method, Prepared, generate_samples, prompts_for, run_training, save_causal_lm
from train.config import SFTRunConfig


def _build_trainer(p: Prepared):
    from trl import SFTTrainer

    from train.data import sft_dataset

    opts = {"assistant_only": p.cfg.assistant_only_loss, "add_eos": p.cfg.add_eos}
    train_ds = sft_dataset(p.train_rows, p.tokenizer, **opts)
    eval_ds = sft_dataset(p.eval_rows, p.tokenizer, **opts) if p.eval_rows else None
    return SFTTrainer(
        model=p.cfg.model,
        args=p.trl_args,
        train_dataset=train_ds,
        eval_dataset=eval_ds,
        processing_class=p.tokenizer,
        peft_config=p.peft_config,
    )


def _final_metrics(trainer, p: Prepared) -> dict:
    out = {}
    if p.eval_rows:
        ev = trainer.evaluate()
        out["eval_loss"] = ev.get("eval_loss")
        out["eval_mean_token_accuracy"] = ev.get("eval_mean_token_accuracy")
    return out


def _sanity(model, p: Prepared) -> list[dict]:
    return generate_samples(model, p, prompts_for(p.eval_rows + p.train_rows))


def _defaults(cfg) -> dict:
    # The labels are built here; TRL must not rebuild them from a chat template.
    return {"assistant_only_loss": False}


SFT = Method(
    name="sft",
    kind="sft",
    build_trainer=_build_trainer,
    final_metrics=_final_metrics,
    save_model=save_causal_lm,
    sanity=_sanity,
    trl_defaults=_defaults,
)


def run_sft(cfg: SFTRunConfig, *, echo=print, callbacks=None) -> Path | None:
    return run_training(cfg, SFT, echo=echo, callbacks=callbacks)

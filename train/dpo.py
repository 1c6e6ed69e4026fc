"""`train dpo`: direct preference optimisation with TRL's `DPOTrainer` on explicit-prompt preference rows (of a
ranking, the best response against the worst).

TRL tokenizes the conversations itself (prompt with the generation prompt, then prompt + chosen / rejected); the
preflight has already proved that the prompt tokens are a prefix of both and that the completion ends with the
end-of-turn token. The reference model is a frozen copy of the starting model (with LoRA: the adapter disabled).
`--online-merging` merges every update with the SFT task vector (`train.online_merging`).
"""

from __future__ import annotations

from pathlib import Path

from train.common import Method, Prepared, generate_samples, prompts_for, run_training, save_causal_lm
from train.config import DPORunConfig
from train.online_merging import check as online_merging_check

DPO_METRICS = ("rewards/accuracies", "rewards/margins", "rewards/chosen", "rewards/rejected")


def _build_trainer(p: Prepared):
    from trl import DPOTrainer

    from train.data import preference_dataset
    from train.online_merging import attach_to

    trainer = DPOTrainer(
        model=p.cfg.model,
        args=p.trl_args,
        train_dataset=preference_dataset(p.train_rows, method="dpo"),
        eval_dataset=preference_dataset(p.eval_rows, method="dpo") if p.eval_rows else None,
        processing_class=p.tokenizer,
        peft_config=p.peft_config,
    )
    trainer.online_merging = attach_to(trainer, p.cfg.settings, p.cfg.model)
    return trainer


def _finish(trainer, p: Prepared) -> dict:
    merging = getattr(trainer, "online_merging", None)
    return {"online_merging": merging.info()} if merging is not None else {}


def last_logged(history: list[dict], keys, prefix: str = "") -> dict:
    out = {}
    for key in keys:
        vals = [h[prefix + key] for h in history if prefix + key in h]
        if vals:
            out[(prefix + key).replace("/", "_")] = vals[-1]
    return out


def _final_metrics(trainer, p: Prepared) -> dict:
    out = last_logged(trainer.state.log_history, DPO_METRICS)
    if p.eval_rows:
        ev = trainer.evaluate()
        out["eval_loss"] = ev.get("eval_loss")
        out.update(last_logged([ev], DPO_METRICS, prefix="eval_"))
    return out


def _sanity(model, p: Prepared) -> list[dict]:
    return generate_samples(model, p, prompts_for(p.eval_rows + p.train_rows))


DPO = Method(
    name="dpo",
    kind="preference",
    build_trainer=_build_trainer,
    final_metrics=_final_metrics,
    save_model=save_causal_lm,
    sanity=_sanity,
    preflight=online_merging_check,
    finish=_finish,
)


def run_dpo(cfg: DPORunConfig, *, echo=print, callbacks=None) -> Path | None:
    return run_training(cfg, DPO, echo=echo, callbacks=callbacks)

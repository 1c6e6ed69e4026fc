"""`train reward`: a Bradley-Terry reward model with TRL's `RewardTrainer` (a sequence classifier, one label).

The model reads the score at the last non-pad token of prompt + reply, so the preflight refuses a pad token that
ends sequences. Accuracy (chosen scored above rejected) is measured on a held-out split (10% by default). The
output directory is what `synth reject-sample --verifier reward-model` loads with
`AutoModelForSequenceClassification.from_pretrained`.
"""

from __future__ import annotations

from pathlib import Path

from train.common import Method, Prepared, run_training
from train.config import RewardRunConfig

REWARD_METRICS = ("accuracy", "margin", "mean_reward")


def _build_trainer(p: Prepared):
    from trl import RewardTrainer

    from train.data import preference_dataset

    return RewardTrainer(
        model=p.cfg.model,
        args=p.trl_args,
        train_dataset=preference_dataset(p.train_rows),
        eval_dataset=preference_dataset(p.eval_rows) if p.eval_rows else None,
        processing_class=p.tokenizer,
        peft_config=p.peft_config,
    )


def _final_metrics(trainer, p: Prepared) -> dict:
    from train.dpo import last_logged

    out = last_logged(trainer.state.log_history, REWARD_METRICS)
    if p.eval_rows:
        ev = trainer.evaluate()
        out["eval_loss"] = ev.get("eval_loss")
        out.update(last_logged([ev], REWARD_METRICS, prefix="eval_"))
        out["eval_pairs"] = len(p.eval_rows)
    return out


def _save(trainer, p: Prepared):
    model = trainer.model
    if hasattr(model, "merge_and_unload"):
        model.save_pretrained(p.out / "adapter")
        model = model.merge_and_unload()
    model = getattr(model, "module", model)
    if p.tokenizer.pad_token_id is not None:
        model.config.pad_token_id = p.tokenizer.pad_token_id
    model.save_pretrained(p.out)
    p.tokenizer.save_pretrained(p.out)
    return model


def score(model, tokenizer, prompt: list[dict], reply: list[dict]) -> float:
    """The reward of one reply, tokenized exactly as in training."""
    import torch

    from train.template import encode, render

    ids = encode(tokenizer, render(tokenizer, prompt + reply))
    x = torch.tensor([ids], device=model.device)
    with torch.no_grad():
        return float(model(input_ids=x, attention_mask=torch.ones_like(x)).logits[0, 0])


def _sanity(model, p: Prepared) -> list[dict]:
    model.eval()
    out = []
    for r in (p.eval_rows + p.train_rows)[: p.cfg.sanity_prompts]:
        c = score(model, p.tokenizer, r["prompt"], r["chosen"])
        j = score(model, p.tokenizer, r["prompt"], r["rejected"])
        out.append(
            {
                "id": r["id"],
                "chosen_score": c,
                "rejected_score": j,
                "chosen_preferred": c > j,
                "held_out": r in p.eval_rows,
            }
        )
    return out


REWARD = Method(
    name="reward",
    kind="preference",
    build_trainer=_build_trainer,
    final_metrics=_final_metrics,
    save_model=_save,
    sanity=_sanity,
    peft_task="SEQ_CLS",
    peft_modules_to_save=("score",),
)


def run_reward(cfg: RewardRunConfig, *, echo=print, callbacks=None) -> Path:
    return run_training(cfg, REWARD, echo=echo, callbacks=callbacks)

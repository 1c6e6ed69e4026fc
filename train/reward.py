"""`train reward`: a Bradley-Terry reward model with TRL's `RewardTrainer` (a sequence classifier, one label).

The model reads the score at the last non-pad token of prompt + reply, so the preflight refuses a pad token that
ends sequences. A ranking (`edited` > `chosen` > `rejected`, or `responses`) is expanded into every ordered pair,
each a row of TRL's RewardTrainer, with the row's optional `margin` (`train.data.reward_pairs`). Llama 3 instead
scores the responses of a ranking in one packed row and sums the pairwise losses: the same loss terms, each
response scored once instead of once per pair. Expanded pairs keep TRL's trainer, collator, truncation rule and
accuracy metric as they are, at the cost of re-encoding the prompt per pair (3 pairs for a 3-way ranking); the
ranking is split into train/eval before expansion, so no pair of a held-out ranking is trained on. Accuracy (chosen scored above rejected) is measured on a held-out split (10% by default). The
output directory is what `synth reject-sample --verifier reward-model` loads with
`AutoModelForSequenceClassification.from_pretrained`.
"""

from __future__ import annotations

from pathlib import Path

from train.common import Method, Prepared, run_training, trained_model
from train.config import RewardRunConfig

REWARD_METRICS = ("accuracy", "margin", "mean_reward")


def _build_trainer(p: Prepared):
    from trl import RewardTrainer

    from train.data import preference_dataset

    return RewardTrainer(
        model=p.cfg.model,
        args=p.trl_args,
        train_dataset=preference_dataset(p.train_rows, method="reward"),
        eval_dataset=preference_dataset(p.eval_rows, method="reward") if p.eval_rows else None,
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
        out["eval_pairs"] = len(trainer.eval_dataset)
    return out


def _save(trainer, p: Prepared):
    model = trained_model(trainer, p, "SequenceClassification")
    if model is None:  # not the main process of a distributed run
        return None
    if hasattr(model, "merge_and_unload"):
        model.save_pretrained(p.out / "adapter")
        model = model.merge_and_unload()
    model = getattr(model, "module", model)
    if p.tokenizer.pad_token_id is not None:
        model.config.pad_token_id = p.tokenizer.pad_token_id
    model.save_pretrained(p.out)
    p.tokenizer.save_pretrained(p.out)
    return model


def score(model, tokenizer, prompt: list[dict], reply: list[dict], *, tools: list | None = None) -> float:
    """The reward of one reply, tokenized exactly as in training."""
    import torch

    from train.template import encode, render

    ids = encode(tokenizer, render(tokenizer, prompt + reply, tools=tools))
    x = torch.tensor([ids], device=model.device)
    with torch.no_grad():
        return float(model(input_ids=x, attention_mask=torch.ones_like(x)).logits[0, 0])


def _sanity(model, p: Prepared) -> list[dict]:
    from train.data import trained_responses

    model.eval()
    out = []
    for r in (p.eval_rows + p.train_rows)[: p.cfg.sanity_prompts]:
        best, worst = trained_responses(r, "dpo")
        c = score(model, p.tokenizer, r["prompt"], best, tools=r.get("tools"))
        j = score(model, p.tokenizer, r["prompt"], worst, tools=r.get("tools"))
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


def run_reward(cfg: RewardRunConfig, *, echo=print, callbacks=None) -> Path | None:
    return run_training(cfg, REWARD, echo=echo, callbacks=callbacks)

"""`reward-model`: a local sequence classifier with one output scores every (prompt, completion) (best-of-N).

Any `AutoModelForSequenceClassification` directory with `num_labels=1` and a chat template works: one that
`train reward` wrote, or a WARM average of several (`train merge`).
"""

from __future__ import annotations

from pathlib import Path

from curate.io import InputError
from synth.config import setting, settings
from synth.verifiers import Task, Verdict, Verifier


@settings
class RewardModelSettings:
    reward_model: str | None = setting(
        None,
        "reward-model: a local AutoModelForSequenceClassification directory (one output).",
        path={"exists": True},
    )
    reward_batch_size: int = setting(16, "reward-model: conversations per forward pass.", min=1)
    reward_max_length: int = setting(
        2048, "reward-model: longest conversation in tokens (cut from the left).", min=16
    )
    reward_device: str = setting("auto", "reward-model: cpu, cuda, cuda:1 [default: cuda when there is one].")


class RewardModel:
    """The model itself: `score(conversations)` -> one float each."""

    def __init__(self, path: str, *, device: str = "auto", batch_size: int = 16, max_length: int = 2048):
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.path = str(path)
        self.batch_size = batch_size
        self.max_length = max_length
        self.device = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(self.path)
            self.model = AutoModelForSequenceClassification.from_pretrained(self.path).to(self.device).eval()
        except (OSError, ValueError) as e:
            raise InputError(
                f"--reward-model {self.path}: cannot load a sequence-classification model ({e})"
            ) from None
        if self.model.config.num_labels != 1:
            raise InputError(
                f"--reward-model {self.path}: has {self.model.config.num_labels} outputs; a reward model has one "
                "(num_labels=1)"
            )
        if not self.tokenizer.chat_template:
            raise InputError(
                f"--reward-model {self.path}: its tokenizer has no chat template to render conversations"
            )
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model.config.pad_token_id = self.tokenizer.pad_token_id
        self.tokenizer.padding_side = "right"
        self.tokenizer.truncation_side = "left"  # a long conversation keeps the response it is scoring

    def score(self, conversations: list[list[dict]]) -> list[float]:
        import torch

        texts = [self.tokenizer.apply_chat_template(c, tokenize=False) for c in conversations]
        out: list[float] = []
        for start in range(0, len(texts), self.batch_size):
            enc = self.tokenizer(
                texts[start : start + self.batch_size],
                add_special_tokens=False,  # the chat template already holds BOS where the model has one
                padding=True,
                truncation=True,
                max_length=self.max_length,
                return_tensors="pt",
            ).to(self.device)
            with torch.no_grad():
                out.extend(self.model(**enc).logits[:, 0].float().tolist())
        return out


class RewardModelVerifier(Verifier):
    """Best-of-N: the reward model's score of each (prompt, response)."""

    name = "reward-model"
    graded = False
    Settings = RewardModelSettings

    def __init__(self, settings, ctx=None):
        super().__init__(settings, ctx)
        s = settings
        if not s.reward_model:
            raise InputError(
                "--verifier reward-model needs --reward-model DIR (a sequence-classification model)"
            )
        if not Path(s.reward_model).expanduser().exists():
            raise InputError(f"--reward-model {s.reward_model}: no such directory")
        self.model = RewardModel(
            s.reward_model,
            device=s.reward_device,
            batch_size=s.reward_batch_size,
            max_length=s.reward_max_length,
        )

    def verify(self, tasks: list[Task]) -> list[list[Verdict]]:
        convs = [
            [*t.messages, {"role": "assistant", "content": text}] for t in tasks for text in t.completions
        ]
        scores = iter(self.model.score(convs)) if convs else iter(())
        return [
            [
                Verdict(round(v, 6), "scored", f"reward model score {v:.4g}")
                for v in (next(scores) for _ in t.completions)
            ]
            for t in tasks
        ]

    def info(self) -> dict:
        from synth.llm import model_identity

        return {
            "name": self.name,
            "reward_model": self.model.path,
            "model_identity": model_identity("hf", self.model.path),
            "device": self.model.device,
            "max_length": self.model.max_length,
        }

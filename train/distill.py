"""`train distill`: knowledge distillation from a teacher that shares the student's vocabulary (Gemma 2 and 3
distil "on the student's distribution"; Agarwal et al., 2024, On-Policy Distillation of Language Models).

The student samples completions of the prompts and is trained to match the teacher's next-token distribution on
them under the generalized Jensen-Shannon divergence: TRL's `beta` runs from forward KL(teacher || student) at 0,
through JSD, to reverse KL(student || teacher) at 1 (posttrain's default: 0.5). The trainer is chosen by `lmbda`,
the share of on-policy sequences:

- `lmbda` 1 (the default): every sequence is the student's own; TRL's `DistillationTrainer` (chunked loss that
  never materialises the full logits, vLLM generation with `use_vllm`).
- `lmbda` below 1: `trl.experimental.gkd.GKDTrainer` (experimental in TRL 1.16); each batch is on-policy with
  probability `lmbda`, else the data's own replies (supervised KD: the rows must be conversations) or, with
  `--seq-kd`, replies sampled from the teacher (sequence-level KD: prompts are enough).

Before any weights load, `check_same_vocabulary` compares the two tokenizers and configs and names the first
difference. The manifest holds the divergence of the student from the teacher on held-out prompts before and
after training (`divergence`): per token, on the student's own samples, KL(student || teacher), KL(teacher ||
student) and the JSD trained.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

from curate.io import InputError
from train.common import (
    Method,
    Prepared,
    TrainError,
    end_of_turn_ids,
    generate_samples,
    prompts_for,
    run_training,
    save_causal_lm,
)
from train.config import ConfigError, DistillRunConfig

os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")  # GKDTrainer lives in trl.experimental; said in --help

TRAINERS = {"distill": "trl.DistillationTrainer", "gkd": "trl.experimental.gkd.GKDTrainer"}
CLI_EXCLUDED: tuple[str, ...] = ()
DEFAULT_BETA = 0.5


@cache
def settings_class():
    """`distill`'s own settings: the teacher, the on/off-policy mix and the divergence measurement."""
    from synth.config import setting, settings

    @settings
    class DistillSettings:
        teacher: str | None = setting(
            None,
            "Teacher model directory; its tokenizer and vocabulary must be the student's (checked before any "
            "weights load).",
            metavar="DIR",
        )
        lmbda: float = setting(
            1.0,
            "Share of on-policy sequences (sampled from the student). 1: fully on-policy, TRL's "
            "DistillationTrainer; below 1: trl.experimental.gkd.GKDTrainer, the other sequences are the data's "
            "replies (conversations), or the teacher's with --seq-kd.",
            min=0,
            max=1,
        )
        seq_kd: bool = setting(
            False,
            "Sequence-level KD: the off-policy sequences are sampled from the teacher instead of taken from the "
            "data (needs --lmbda below 1).",
        )
        max_completion_length: int = setting(
            128, "Tokens per sampled reply, in training and in the divergence measurement.", min=1
        )
        kl_prompts: int = setting(
            64, "Held-out prompts the divergence before and after training is measured on.", min=1
        )
        kl_samples: int = setting(2, "Student samples per held-out prompt in that measurement.", min=1)

    return DistillSettings


def method_for(settings) -> str:
    """`distill` (TRL's DistillationTrainer) when fully on-policy, else `gkd` (GKDTrainer)."""
    if settings.seq_kd and settings.lmbda >= 1:
        raise ConfigError(
            "--seq-kd trains on teacher samples for the off-policy share (1 - lmbda); with --lmbda 1 there is "
            "none: give --lmbda below 1, or drop --seq-kd"
        )
    return "distill" if settings.lmbda >= 1 else "gkd"


# --- the vocabulary preflight -----------------------------------------------------------------------------------


def check_same_vocabulary(student: str, teacher: str) -> list[str]:
    """Refuse (`TrainError`) a teacher whose token ids do not mean what the student's mean, naming the first
    difference: the model's vocabulary size, the tokenizer's size, a token id mapped to different strings, a special
    token. Reads tokenizer files and `config.json` only. Returns warnings (a different chat template)."""
    from transformers import AutoConfig, AutoTokenizer

    pair = f"(student {student}, teacher {teacher})"
    try:
        toks = [AutoTokenizer.from_pretrained(m) for m in (student, teacher)]
        sizes = [AutoConfig.from_pretrained(m).get_text_config().vocab_size for m in (student, teacher)]
    except (OSError, ValueError) as e:
        raise TrainError(
            f"cannot read the tokenizer or config of the student or teacher {pair}: {e}"
        ) from None
    if sizes[0] != sizes[1]:
        raise TrainError(
            f"vocabularies differ: the student's model has vocab_size {sizes[0]}, the teacher's {sizes[1]} {pair}"
        )
    if len(toks[0]) != len(toks[1]):
        raise TrainError(
            f"tokenizers differ: the student's has {len(toks[0])} tokens, the teacher's {len(toks[1])} {pair}"
        )
    inverse = [{i: t for t, i in tok.get_vocab().items()} for tok in toks]
    for i in range(len(toks[0])):
        a, b = inverse[0].get(i), inverse[1].get(i)
        if a != b:
            raise TrainError(
                f"tokenizers differ: token id {i} is {a!r} for the student, {b!r} for the teacher {pair}"
            )
    for name in ("bos_token", "eos_token", "pad_token", "unk_token"):
        a, b = getattr(toks[0], name), getattr(toks[1], name)
        if a != b:
            raise TrainError(
                f"special tokens differ: {name} is {a!r} for the student, {b!r} for the teacher {pair}"
            )
    specials = [
        sorted((i, t.content) for i, t in tok.added_tokens_decoder.items() if t.special) for tok in toks
    ]
    if specials[0] != specials[1]:
        a, b = (dict(s) for s in specials)
        i = min(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
        raise TrainError(
            f"special tokens differ: id {i} is {a.get(i)!r} (special) for the student, {b.get(i)!r} for the teacher "
            f"{pair}"
        )
    if toks[0].chat_template != toks[1].chat_template:
        return [
            f"the teacher's chat template differs from the student's; the teacher reads prompts in the student's "
            f"format {pair}"
        ]
    return []


# --- datasets ---------------------------------------------------------------------------------------------------


def prompt_dataset(rows: list[dict]):
    """DistillationTrainer's conversational prompts: a prompt row, or a conversation up to its last user turn."""
    from datasets import Dataset

    return Dataset.from_dict(
        {
            "prompt": [
                [{"role": m["role"], "content": m["content"]} for m in p["prompt"]] for p in prompts_for(rows)
            ]
        }
    )


def gkd_dataset(rows: list[dict], tokenizer):
    """GKDTrainer's rows, tokenized with posttrain's template code: `input_ids` (prompt + the final reply, or the
    prompt alone for a prompt row) and `completion_mask` (the reply's tokens), which TRL's ChatML collator takes
    as given."""
    from datasets import Dataset

    from train.template import encode, render, split_preference

    cols: dict[str, list] = {"input_ids": [], "completion_mask": [], "prompt": []}
    for r in rows:
        msgs = r["messages"]
        if msgs[-1]["role"] == "assistant":
            _, full, reply = split_preference(tokenizer, msgs[:-1], msgs[-1:])
            mask = [0] * (len(full) - len(reply)) + [1] * len(reply)
        else:
            full = encode(tokenizer, render(tokenizer, msgs, add_generation_prompt=True))
            mask = [0] * len(full)
        cols["input_ids"].append(full)
        cols["completion_mask"].append(mask)
        cols["prompt"].append(
            ""
        )  # the collator reads the prompt from completion_mask; this only stops it looking
    return Dataset.from_dict(cols)


@cache
def gkd_trainer_class():
    """TRL's GKDTrainer with the loss averaged over the tokens it trains on. GKDTrainer divides by the token count
    transformers takes from the data's batch, before generation replaces it: 0 for prompt rows (a nan loss with
    --seq-kd) and the data's reply length, not the sampled one's, for conversations."""
    from trl.experimental.gkd import GKDTrainer

    class TokenMeanGKDTrainer(GKDTrainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            return super().compute_loss(model, inputs, return_outputs=return_outputs, num_items_in_batch=None)

    return TokenMeanGKDTrainer


# --- the divergence before and after ----------------------------------------------------------------------------


def divergence(
    student,
    teacher,
    tokenizer,
    prompts: list[dict],
    *,
    beta: float,
    max_new_tokens: int,
    samples: int,
    seed: int,
    temperature: float = 1.0,
) -> dict:
    """How far the student is from the teacher on its own samples of `prompts`: per completion token, the mean of
    KL(student || teacher), KL(teacher || student) and the generalized JSD at `beta` (TRL's function, as trained),
    in nats, and the reverse KL summed per sequence. Sampling is seeded, so a rerun measures the same."""
    import torch
    from trl.experimental.gkd import GKDTrainer

    from train.template import encode, render

    gjsd = GKDTrainer.generalized_jsd_loss
    stop = end_of_turn_ids(tokenizer)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else stop[0]
    device = next(student.parameters()).device
    modes = (student.training, teacher.training)
    student.eval()
    teacher.eval()
    sums = {"kl_student_teacher": 0.0, "kl_teacher_student": 0.0, "jsd": 0.0}
    per_sequence, tokens = [], 0
    try:
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            torch.manual_seed(seed)
            for p in prompts:
                ids = encode(tokenizer, render(tokenizer, p["prompt"], add_generation_prompt=True))
                x = torch.tensor([ids], device=device)
                out = student.generate(
                    x,
                    attention_mask=torch.ones_like(x),
                    do_sample=True,
                    temperature=temperature,
                    top_p=1.0,
                    top_k=0,
                    max_new_tokens=max_new_tokens,
                    num_return_sequences=samples,
                    eos_token_id=stop,
                    pad_token_id=pad,
                )
                for seq in out:
                    reply = seq[len(ids) :].tolist()
                    ends = [k for k, t in enumerate(reply) if t in stop]
                    reply = reply[: ends[0] + 1] if ends else reply
                    if not reply:
                        continue
                    full = torch.tensor([ids + reply], device=device)
                    at = slice(len(ids) - 1, full.shape[1] - 1)  # the logits that predict the reply's tokens
                    s = student(input_ids=full).logits[:, at].float() / temperature
                    t = teacher(input_ids=full).logits[:, at].float() / temperature
                    reverse = gjsd(s, t, beta=1.0, reduction="none").sum(-1)
                    sums["kl_student_teacher"] += float(reverse.sum())
                    sums["kl_teacher_student"] += float(gjsd(s, t, beta=0.0, reduction="none").sum())
                    sums["jsd"] += float(gjsd(s, t, beta=beta, reduction="none").sum())
                    per_sequence.append(float(reverse.sum()))
                    tokens += len(reply)
    finally:
        student.train(modes[0])
        teacher.train(modes[1])
    out = {k: round(v / tokens, 6) if tokens else None for k, v in sums.items()}
    return {
        **out,
        "beta": beta,
        "kl_student_teacher_per_sequence": round(sum(per_sequence) / len(per_sequence), 6)
        if per_sequence
        else None,
        "prompts": len(prompts),
        "sequences": len(per_sequence),
        "tokens": tokens,
    }


# --- the run ----------------------------------------------------------------------------------------------------


class DistillRun:
    """One `train distill` run: the trainer TRL offers for the settings, and the divergence before and after."""

    def __init__(self, cfg: DistillRunConfig, *, echo=print):
        self.cfg, self.s, self.echo = cfg, cfg.settings, echo
        self.before: dict | None = None
        self.warnings: list[str] = []

    def preflight(self, cfg, rows: list[dict]) -> None:
        s = self.s
        if not s.teacher:
            raise InputError("missing --teacher DIR (the model to distil from)")
        for key in ("lmbda", "seq_kd"):
            if key in cfg.trl:
                raise ConfigError(
                    f"config key '{key}': set it with --{key.replace('_', '-')} (it chooses the trainer)"
                )
        self.warnings = check_same_vocabulary(cfg.model, s.teacher)
        for w in self.warnings:
            self.echo(f"warning: {w}")
        for r in rows:
            if r.get("tools"):
                raise InputError(
                    f"{r['_where']}: a row with tools (id {r['id']}); distill renders prompts without tool schemas"
                )
        if cfg.method == "gkd" and not s.seq_kd:
            bare = next((r for r in rows if r["messages"][-1]["role"] != "assistant"), None)
            if bare is not None:
                raise InputError(
                    f"{bare['_where']}: a prompt without a reply (id {bare['id']}); --lmbda {s.lmbda} trains "
                    f"{1 - s.lmbda:g} of the sequences on the data's replies: give conversations, or pass --seq-kd "
                    "to sample them from the teacher"
                )

    def trl_defaults(self, cfg) -> dict:
        length = {
            "max_completion_length"
            if cfg.method == "distill"
            else "max_new_tokens": self.s.max_completion_length
        }
        # temperature 1: the samples are the student's own distribution (GKD samples at 0.9 by default)
        out = {"beta": DEFAULT_BETA, "temperature": 1.0, **length}
        if (
            cfg.method == "distill"
        ):  # it counts prompt + completion tokens itself; transformers' count finds none
            out["include_num_input_tokens_seen"] = "no"
        else:
            out.update(lmbda=self.s.lmbda, seq_kd=self.s.seq_kd)
        return out

    def build_trainer(self, p: Prepared):
        s = self.s
        common = {
            "model": p.cfg.model,
            "teacher_model": s.teacher,
            "args": p.trl_args,
            "processing_class": p.tokenizer,
            "peft_config": p.peft_config,
        }
        if p.cfg.method == "distill":
            from trl import DistillationTrainer

            trainer = DistillationTrainer(train_dataset=prompt_dataset(p.train_rows), **common)
        else:
            trainer = gkd_trainer_class()(train_dataset=gkd_dataset(p.train_rows, p.tokenizer), **common)
        self.before = self.measure(trainer, p)
        if self.before is not None:
            self.echo(
                f"before training: KL(student || teacher) {self.before['kl_student_teacher']} nats/token on "
                f"{self.before['tokens']} tokens of {self.before['prompts']} held-out prompts"
            )
        return trainer

    def measure(self, trainer, p: Prepared) -> dict | None:
        prompts = prompts_for(p.eval_rows)[: self.s.kl_prompts]
        if not prompts:
            return None
        args = p.trl_args
        return divergence(
            trainer.model,
            trainer.teacher_model,
            p.tokenizer,
            prompts,
            beta=args.beta,
            max_new_tokens=self.s.max_completion_length,
            samples=self.s.kl_samples,
            seed=args.seed,
            temperature=args.temperature,
        )

    def final_metrics(self, trainer, p: Prepared) -> dict:
        self.after = self.measure(trainer, p)
        if self.after is None:
            return {}
        return {
            "kl_student_teacher_before": self.before["kl_student_teacher"],
            "kl_student_teacher_after": self.after["kl_student_teacher"],
            "jsd_before": self.before["jsd"],
            "jsd_after": self.after["jsd"],
        }

    def finish(self, trainer, p: Prepared) -> dict:
        s, args = self.s, p.trl_args
        return {
            "distillation": {
                "trainer": TRAINERS[p.cfg.method],
                "teacher": s.teacher,
                "lmbda": s.lmbda,
                "seq_kd": s.seq_kd,
                "beta": args.beta,
                "divergence": (
                    {"before": self.before, "after": self.after}
                    if self.before is not None
                    else f"not measured: no held-out prompts (data.eval_fraction={p.cfg.data.eval_fraction})"
                ),
                "warnings": self.warnings,
            },
            "settings": {k: getattr(s, k) for k in s.__dataclass_fields__},
        }

    def method(self) -> Method:
        return Method(
            name=self.cfg.method,
            kind="prompt-or-sft",
            build_trainer=self.build_trainer,
            final_metrics=self.final_metrics,
            save_model=save_causal_lm,
            sanity=lambda model, p: generate_samples(model, p, prompts_for(p.eval_rows + p.train_rows)),
            trl_defaults=self.trl_defaults,
            command="train distill",
            preflight=self.preflight,
            finish=self.finish,
        )


def run_distill(cfg: DistillRunConfig, *, echo=print, callbacks=None) -> Path | None:
    """Check the data and the vocabularies, measure, distil, measure again; returns the output directory."""
    return run_training(cfg, DistillRun(cfg, echo=echo).method(), echo=echo, callbacks=callbacks)


__all__ = ["DistillRun", "check_same_vocabulary", "divergence", "method_for", "run_distill", "settings_class"]

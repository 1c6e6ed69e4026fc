"""Helpers for the `train` tests: tiny models built once per session, tiny inline datasets, variant templates.

Models come from `posttrain.tinymodels` (real chat templates, random weights); the helpers here only cache them and
write small variants (a template with a planted fault, a generation config without the end-of-turn token).
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import shutil
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

_ROOT = Path(tempfile.mkdtemp(prefix="posttrain-train-tests-"))
atexit.register(shutil.rmtree, _ROOT, ignore_errors=True)

END_OF_TURN = {"llama": "<|eot_id|>", "qwen2": "<|im_end|>", "gemma": "<end_of_turn>"}

QA = [
    ("What is the capital of France?", "The capital of France is Paris."),
    ("What is 7 plus 5?", "It is 12."),
    ("Explain why the sky is blue.", "Blue light is scattered the most."),
    ("What is your name?", "My name is Ada."),
]
BAD_REPLY = "I do not know, sorry."

# Fast TRL settings for a few CPU steps: log every step, no checkpoints, no gradient checkpointing.
FAST = [
    "logging_steps=1",
    "save_strategy=no",
    "per_device_train_batch_size=4",
    "gradient_checkpointing=false",
    "dataloader_pin_memory=false",
]


@functools.cache
def tiny_model(family: str, num_labels: int | None = None, seed: int = 0) -> Path:
    """A tiny model directory, built once per test session (read-only by convention)."""
    from posttrain.tinymodels import build_tiny_model

    name = f"{family}-{num_labels or 'lm'}-{seed}"
    return build_tiny_model(family, _ROOT / name, seed=seed, num_labels=num_labels)


def copy_model(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def with_template(src: Path, dst: Path, template: str) -> Path:
    """A copy of a model directory whose tokenizer carries `template` as its chat template."""
    copy_model(src, dst)
    (dst / "chat_template.jinja").write_text(template, encoding="utf-8")
    return dst


def without_end_of_turn_in_generation_config(src: Path, dst: Path, eos_token_id: int) -> Path:
    """A copy whose generation config stops only at the tokenizer's eos (a base model, as released)."""
    copy_model(src, dst)
    gen = json.loads((dst / "generation_config.json").read_text())
    gen["eos_token_id"] = eos_token_id
    (dst / "generation_config.json").write_text(json.dumps(gen))
    return dst


def conversation(q: str, a: str, **extra) -> dict:
    return {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}], **extra}


def preference(q: str, good: str, bad: str, **extra) -> dict:
    return {
        "prompt": [{"role": "user", "content": q}],
        "chosen": [{"role": "assistant", "content": good}],
        "rejected": [{"role": "assistant", "content": bad}],
        **extra,
    }


def sft_rows(repeat: int = 4) -> list[dict]:
    return [conversation(q, a, id=f"s{i}-{k}") for k in range(repeat) for i, (q, a) in enumerate(QA)]


def preference_rows(repeat: int = 4) -> list[dict]:
    return [preference(q, a, BAD_REPLY, id=f"p{i}-{k}") for k in range(repeat) for i, (q, a) in enumerate(QA)]


def write_rows(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def state_dict(path: Path, cls_name: str = "AutoModelForCausalLM") -> dict:
    import transformers

    model = getattr(transformers, cls_name).from_pretrained(path)
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def logged_losses(run_dir: Path) -> list[float]:
    rows = [
        json.loads(line) for line in (run_dir / "log_history.jsonl").read_text().splitlines() if line.strip()
    ]
    return [r["loss"] for r in rows if "loss" in r]

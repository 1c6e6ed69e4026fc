"""`train distill`: the student's KL to the teacher on held-out prompts falls over a few steps; a teacher whose
tokenizer or vocabulary differs is refused, naming the first difference, before any weights load."""

from __future__ import annotations

import json
import re

import pytest

from tests.train_fixtures import FAST, QA, copy_model, tiny_model, write_rows

torch = pytest.importorskip("torch")
pytest.importorskip("trl")

from train.cli import main as train_cli  # noqa: E402
from train.common import TrainError  # noqa: E402
from train.distill import check_same_vocabulary  # noqa: E402

# Twelve prompts, a third held out for the KL (the split is by id hash: the same rows every run).
PROMPTS = [
    {"id": f"d{i}-{k}", "messages": [{"role": "user", "content": q if k == 0 else f"{q} ({k})"}]}
    for k in range(3)
    for i, (q, _) in enumerate(QA)
]
RUN = [
    *FAST,
    "max_steps=6",
    "learning_rate=1e-3",
    "data.eval_fraction=0.3",
    "--max-completion-length",
    "8",
    "--kl-samples",
    "2",
]


def _args(sets: list[str]) -> list[str]:
    out = []
    for item in sets:
        out += [item] if item.startswith("--") or "=" not in item else ["--set", item]
    return out


@pytest.fixture(scope="module")
def distilled(tmp_path_factory):
    from click.testing import CliRunner

    work = tmp_path_factory.mktemp("distill")
    data = write_rows(work / "prompts.jsonl", PROMPTS)
    student, teacher = tiny_model("qwen2"), tiny_model("qwen2", seed=1)
    args = [
        "distill",
        "--model",
        student,
        "--teacher",
        teacher,
        "--data",
        data,
        "-o",
        work / "out",
        *_args(RUN),
    ]
    result = CliRunner().invoke(train_cli, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return work / "out", result.output


def test_distill_reduces_the_students_kl_to_the_teacher_on_held_out_prompts(distilled):
    out, output = distilled
    m = json.loads((out / "manifest.json").read_text())
    d = m["distillation"]
    assert d["trainer"] == "trl.DistillationTrainer" and m["trl_config"]["class"] == "DistillationConfig"
    before, after = d["divergence"]["before"], d["divergence"]["after"]
    assert before["prompts"] == after["prompts"] == m["data"]["eval_rows"] > 0
    assert before["tokens"] > 0 and after["tokens"] > 0
    assert after["kl_student_teacher"] < before["kl_student_teacher"]
    assert after["jsd"] < before["jsd"] and d["beta"] == before["beta"] == 0.5
    assert m["metrics"]["kl_student_teacher_after"] == after["kl_student_teacher"]
    assert m["metrics"]["global_step"] == 6 and m["command"] == "train distill"
    assert "KL(student || teacher) per token on held-out prompts" in output


def test_divergence_is_zero_against_itself_and_seeded():
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from train.distill import divergence

    path = tiny_model("qwen2")
    model, tok = AutoModelForCausalLM.from_pretrained(path), AutoTokenizer.from_pretrained(path)
    prompts = [{"prompt": r["messages"]} for r in PROMPTS[:2]]
    kw = {"beta": 0.5, "max_new_tokens": 4, "samples": 2, "seed": 3}
    same = divergence(model, model, tok, prompts, **kw)
    assert same["kl_student_teacher"] == same["kl_teacher_student"] == same["jsd"] == 0.0
    other = AutoModelForCausalLM.from_pretrained(tiny_model("qwen2", seed=1))
    once, again = divergence(model, other, tok, prompts, **kw), divergence(model, other, tok, prompts, **kw)
    assert once == again and once["kl_student_teacher"] > 0 and once["sequences"] == 4


def _swap_tokens(path, a: str, b: str) -> None:
    tj = json.loads((path / "tokenizer.json").read_text())
    vocab = tj["model"]["vocab"]
    vocab[a], vocab[b] = vocab[b], vocab[a]
    (path / "tokenizer.json").write_text(json.dumps(tj))


def test_vocabulary_preflight_names_the_first_difference_before_loading_weights(tmp_path):
    student = tiny_model("qwen2")
    teacher = copy_model(student, tmp_path / "teacher")
    (teacher / "model.safetensors").unlink()  # nothing to load: the check must not need weights
    assert check_same_vocabulary(str(student), str(teacher)) == []
    _swap_tokens(teacher, "art", "mar")
    with pytest.raises(TrainError, match=r"token id \d+ is 'art' for the student, 'mar' for the teacher"):
        check_same_vocabulary(str(student), str(teacher))
    with pytest.raises(TrainError, match="student's model has vocab_size 603, the teacher's 606"):
        check_same_vocabulary(str(student), str(tiny_model("llama")))

    special = copy_model(student, tmp_path / "special")
    cfg = json.loads((special / "tokenizer_config.json").read_text())
    cfg["eos_token"] = "<|im_start|>"
    (special / "tokenizer_config.json").write_text(json.dumps(cfg))
    with pytest.raises(
        TrainError, match=re.escape("eos_token is '<|im_end|>' for the student, '<|im_start|>' for")
    ):
        check_same_vocabulary(str(student), str(special))


def test_distill_refuses_a_mismatched_teacher_and_writes_nothing(tmp_path, cli):
    teacher = copy_model(tiny_model("qwen2"), tmp_path / "teacher")
    (teacher / "model.safetensors").unlink()
    _swap_tokens(teacher, "art", "mar")
    data = write_rows(tmp_path / "prompts.jsonl", PROMPTS)
    args = [
        "distill",
        "--model",
        tiny_model("qwen2"),
        "--teacher",
        teacher,
        "--data",
        data,
        "-o",
        tmp_path / "out",
    ]
    r = cli(train_cli, *args)
    assert (
        r.exit_code == 1 and "Error: tokenizers differ: token id" in r.output and "Traceback" not in r.output
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["prompts.jsonl", "teacher"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--seq-kd"], "--seq-kd trains on teacher samples for the off-policy share"),
        (["--lmbda", "0.5"], "prompts.jsonl:1: a prompt without a reply"),
        (["--lmbda", "0.5", "--set", "lmbda=0.2"], "config key 'lmbda': set it with --lmbda"),
        ([], None),  # no --teacher
    ],
)
def test_distill_refuses_contradictory_settings_before_training(tmp_path, cli, extra, message):
    data = write_rows(tmp_path / "prompts.jsonl", PROMPTS)
    teacher = [] if message is None else ["--teacher", tiny_model("qwen2", seed=1)]
    r = cli(
        train_cli,
        "distill",
        "--model",
        tiny_model("qwen2"),
        *teacher,
        "--data",
        data,
        "-o",
        tmp_path / "o",
        *extra,
    )
    assert r.exit_code != 0 and "Traceback" not in r.output
    assert (message or "missing --teacher DIR") in r.output


@pytest.mark.slow
def test_gkd_with_teacher_sequences_trains_on_prompts(tmp_path, cli):
    """--lmbda 0.5 --seq-kd: GKDTrainer, half the batches sampled from the student, half from the teacher; every
    step has tokens to train on (TRL's own normalisation gave a nan loss on prompt rows)."""
    data = write_rows(tmp_path / "prompts.jsonl", PROMPTS)
    args = [
        "distill",
        "--model",
        tiny_model("qwen2"),
        "--teacher",
        tiny_model("qwen2", seed=1),
        "--data",
        data,
    ]
    r = cli(train_cli, *args, "-o", tmp_path / "out", "--lmbda", "0.5", "--seq-kd", *_args(RUN))
    assert r.exit_code == 0, r.output
    m = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert m["distillation"]["trainer"] == "trl.experimental.gkd.GKDTrainer"
    assert m["trl_config"]["lmbda"] == 0.5 and m["trl_config"]["seq_kd"] is True
    history = [json.loads(line) for line in (tmp_path / "out" / "log_history.jsonl").read_text().splitlines()]
    losses = [h["loss"] for h in history if "loss" in h]
    assert len(losses) == 6 and all(0 < loss < 1 for loss in losses)
    d = m["distillation"]["divergence"]
    assert d["after"]["kl_student_teacher"] < d["before"]["kl_student_teacher"]

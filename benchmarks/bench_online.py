"""Does on-policy training raise the reward on prompts it never saw? `train online-dpo` and `train rl`, end to end
through the CLI, on a toy task a tiny model learns in minutes on a CPU.

The task is a format rule checked by the `regex` verifier: answer in one short sentence (a capital letter, at most
~40 characters, a full stop, nothing after it). The starting policy is the tiny random Qwen2-style model of
`posttrain.tinymodels`, fine-tuned (`train sft`) on the training prompts with two replies each: a short sentence
that follows the rule and a run-on that does not, so it answers either way. Then, from that SFT model:

- `train online-dpo --reward regex` (episodes of sampling, best-vs-worst pairs, DPO), and
- `train rl --algo grpo --reward regex` (GRPO steps),

and the mean reward of each model on the held-out prompts: `--eval-n` samples per prompt at temperature 1 (the
policy itself, as training samples it), and the share of greedy answers that follow the rule.

    python benchmarks/bench_online.py                       # about 5-10 minutes on 2 CPU cores
    python benchmarks/bench_online.py --episodes 2 --steps 20 --out bench-online.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BIN = Path(sys.executable).parent

RULE = r"^[A-Z][^.!?\n]{0,40}\.$"
COUNTRIES = [
    ("France", "Paris"), ("Italy", "Rome"), ("Spain", "Madrid"), ("Japan", "Tokyo"), ("Egypt", "Cairo"),
    ("Peru", "Lima"), ("Kenya", "Nairobi"), ("Chile", "Santiago"), ("Norway", "Oslo"), ("Greece", "Athens"),
    ("Cuba", "Havana"), ("India", "Delhi"), ("Ghana", "Accra"), ("Iran", "Tehran"), ("Nepal", "Kathmandu"),
    ("Poland", "Warsaw"),
]  # fmt: skip
THINGS = ["fruit", "colour", "river", "tree", "bird", "city", "planet", "flower"]
RAMBLE = "the sea is wide and deep and blue and the waves come in and go and the sky is blue"


def tasks() -> list[tuple[str, str]]:
    """(question, a short answer that follows the rule)."""
    out = [(f"What is the capital of {c}?", f"The capital of {c} is {k}.") for c, k in COUNTRIES]
    out += [(f"Name a {t}.", f"Here is a {t}.") for t in THINGS]
    out += [
        (f"What is {a} plus {b}?", f"It is {a + b}.")
        for a, b in [(2, 3), (7, 5), (4, 4), (6, 1), (9, 2), (3, 8)]
    ]
    out += [
        (f"Explain why the {x} is blue.", f"The {x} scatters blue light.")
        for x in ("sky", "sea", "ice", "lake")
    ]
    return out


def split(items: list, every: int = 4) -> tuple[list, list]:
    """Every `every`-th item is held out."""
    return [x for i, x in enumerate(items) if i % every], [x for i, x in enumerate(items) if not i % every]


def write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def prompt(i: int, q: str) -> dict:
    return {"id": f"p{i}", "messages": [{"role": "user", "content": q}]}


def sh(label: str, args: list[str], log: Path) -> float:
    """Run a command line (printed as typed), its output to `log`; returns its wall seconds."""
    shown = " ".join(a if " " not in a and "^" not in a else repr(a) for a in args)
    print(f"$ {shown}", flush=True)
    t0 = time.perf_counter()
    with open(log, "w") as fh:
        p = subprocess.run(args, stdout=fh, stderr=subprocess.STDOUT)
    if p.returncode:
        sys.exit(f"{label} failed (exit {p.returncode}); see {log}")
    return time.perf_counter() - t0


def evaluate(model: Path, rows: list[dict], *, n: int, max_tokens: int, seed: int) -> dict:
    """Mean reward of `n` samples per prompt at temperature 1, and the greedy pass rate."""
    from synth.backends import ChatRequest, get_backend
    from synth.verifiers import Task, build

    backend = get_backend("hf", model=str(model), device="cpu")
    verifier = build("regex", regex=RULE)
    out = {}
    try:
        for name, temperature, k in (("sampled", 1.0, n), ("greedy", 0.0, 1)):
            reqs = [
                ChatRequest(r["messages"], n=k, temperature=temperature, max_tokens=max_tokens, seed=seed)
                for r in rows
            ]
            results = backend.generate(reqs)
            tasks_ = [
                Task(r, r["messages"], [c.text for c in res.completions])
                for r, res in zip(rows, results, strict=True)
            ]
            scores = [v.score for row in verifier.verify(tasks_) for v in row]
            out[name] = round(sum(scores) / len(scores), 4)
    finally:
        backend.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sft-steps", type=int, default=80)
    ap.add_argument("--episodes", type=int, default=3, help="online-dpo episodes")
    ap.add_argument(
        "--n", type=int, default=4, help="online-dpo samples per prompt (and GRPO's num_generations)"
    )
    ap.add_argument("--steps", type=int, default=40, help="GRPO steps")
    ap.add_argument("--max-tokens", type=int, default=24)
    ap.add_argument("--eval-n", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", help="keep the models and runs here (default: a temporary directory)")
    ap.add_argument("--out", help="also write the results as JSON here")
    args = ap.parse_args()

    from posttrain.tinymodels import build_tiny_model

    train_tasks, held_tasks = split(tasks())
    with tempfile.TemporaryDirectory(prefix="bench-online-") as tmp:
        work = Path(args.work or tmp)
        work.mkdir(parents=True, exist_ok=True)
        base = build_tiny_model("qwen2", work / "base", seed=args.seed)
        sft_rows = [
            {
                "id": f"s{i}-{k}",
                "messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}],
            }
            for i, (q, good) in enumerate(train_tasks)
            for k, a in enumerate((good, RAMBLE))
        ]
        sft_data = write(work / "sft.jsonl", sft_rows)
        prompts = write(work / "prompts.jsonl", [prompt(i, q) for i, (q, _) in enumerate(train_tasks)])
        held = [prompt(i, q) for i, (q, _) in enumerate(held_tasks)]
        fast = [
            "--set",
            "logging_steps=5",
            "--set",
            "gradient_checkpointing=false",
            "--set",
            "dataloader_pin_memory=false",
        ]
        common = ["--reward", "regex", "--regex", RULE, "--force"]
        seconds = {}
        seconds["sft"] = sh(
            "train sft",
            [str(BIN / "train"), "sft", "--data", str(sft_data), "--model", str(base), "-o", str(work / "sft"),
             "--set", f"max_steps={args.sft_steps}", "--set", "learning_rate=3e-3", "--set", "per_device_train_batch_size=8",
             "--set", "save_strategy=no", *fast, "--force"],
            work / "sft.log",
        )  # fmt: skip
        seconds["online-dpo"] = sh(
            "train online-dpo",
            [str(BIN / "train"), "online-dpo", "--model", str(work / "sft"), "--data", str(prompts), "-o", str(work / "odpo"),
             *common, "--n", str(args.n), "--episodes", str(args.episodes), "--max-tokens", str(args.max_tokens),
             "--device", "cpu", "--set", "learning_rate=1e-3", "--set", "beta=0.1", "--set", "num_train_epochs=2",
             "--set", "per_device_train_batch_size=8", *fast],
            work / "odpo.log",
        )  # fmt: skip
        seconds["rl grpo"] = sh(
            "train rl",
            [str(BIN / "train"), "rl", "--algo", "grpo", "--model", str(work / "sft"), "--data", str(prompts),
             "-o", str(work / "grpo"), *common, "--set", f"max_steps={args.steps}", "--set", f"num_generations={args.n}",
             "--set", f"per_device_train_batch_size={2 * args.n}", "--set", f"max_completion_length={args.max_tokens}",
             "--set", "learning_rate=1e-3", "--set", "beta=0.04", "--set", "save_strategy=no", *fast],
            work / "grpo.log",
        )  # fmt: skip
        results = {"held_out_prompts": len(held), "train_prompts": len(train_tasks), "rule": RULE, "runs": {}}
        for name, model in (
            ("sft (before)", work / "sft"),
            ("online-dpo", work / "odpo"),
            ("rl grpo", work / "grpo"),
        ):
            r = evaluate(model, held, n=args.eval_n, max_tokens=args.max_tokens, seed=args.seed + 1)
            manifest = json.loads((model / "manifest.json").read_text())
            r["train_seconds"] = round(seconds[name.split(" (")[0]], 1)
            r["throughput"] = manifest.get("throughput")
            results["runs"][name] = r
            print(json.dumps({name: r}), flush=True)
    print()
    print(f"held-out prompts: {len(held)}; reward = `regex` {RULE!r}")
    print(f"{'model':14} {'mean reward (T=1)':>18} {'greedy pass':>12} {'wall s':>8}")
    for name, r in results["runs"].items():
        print(f"{name:14} {r['sampled']:18.3f} {r['greedy']:12.3f} {r['train_seconds']:8.1f}")
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()

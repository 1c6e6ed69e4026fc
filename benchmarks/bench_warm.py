"""WARM on a toy preference task: is the weight average of M reward models as accurate on held-out pairs as its
members? End to end through the CLI (`train reward --ensemble M`), on a CPU in minutes.

The preferences follow `bench_online`'s format rule (answer in one short sentence): the chosen reply follows it, the
rejected one breaks it in one of four ways (no capital and no full stop, no full stop, a second sentence, a run-on).
A quarter of the rows is held out (by id, as `data.eval_fraction` splits them) and kept clean; in the training rows
a share of the pairs (`--noise`) has chosen and rejected swapped, the label noise WARM is meant to withstand. The
members start from one initialisation (the tiny random Qwen2-style model with one reward head) and differ in seed,
data order and learning rate.

    python benchmarks/bench_warm.py                            # about 3-6 minutes on 2 CPU cores
    python benchmarks/bench_warm.py --members 4 --steps 40 --noise 0.25 --out bench-warm.json
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.bench_online import BIN, RAMBLE, sh, tasks, write  # noqa: E402


def broken(good: str) -> list[str]:
    """Replies that break the format rule, each in its own way."""
    bare = good.rstrip(".")
    return [bare[0].lower() + bare[1:], bare, f"{good} Thanks for asking!", f"{bare} and {RAMBLE}."]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--members", type=int, default=4)
    ap.add_argument("--lrs", default="5e-4,1e-3,2e-3,4e-3", help="--ensemble-lr")
    ap.add_argument("--steps", type=int, default=40, help="steps per member")
    ap.add_argument("--noise", type=float, default=0.25, help="share of training pairs with swapped labels")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", help="keep the models and runs here (default: a temporary directory)")
    ap.add_argument("--out", help="also write the results as JSON here")
    args = ap.parse_args()

    from posttrain.tinymodels import build_tiny_model
    from train.data import is_eval_row

    rng = random.Random(args.seed)
    rows, flipped = [], 0
    for i, (q, good) in enumerate(tasks()):
        for k, bad in enumerate(broken(good)):
            rid = f"w{i}-{k}"
            chosen, rejected = good, bad
            if not is_eval_row(rid, 0.25) and rng.random() < args.noise:
                chosen, rejected, flipped = bad, good, flipped + 1
            rows.append(
                {
                    "id": rid,
                    "prompt": [{"role": "user", "content": q}],
                    "chosen": [{"role": "assistant", "content": chosen}],
                    "rejected": [{"role": "assistant", "content": rejected}],
                }
            )
    with tempfile.TemporaryDirectory(prefix="bench-warm-") as tmp:
        work = Path(args.work or tmp)
        work.mkdir(parents=True, exist_ok=True)
        base = build_tiny_model("qwen2", work / "base", seed=args.seed)
        data = write(work / "prefs.jsonl", rows)
        wall = sh(
            "train reward --ensemble",
            [str(BIN / "train"), "reward", "--data", str(data), "--model", str(base), "-o", str(work / "rm-warm"),
             "--ensemble", str(args.members), "--ensemble-lr", args.lrs, "--set", f"max_steps={args.steps}",
             "--set", "per_device_train_batch_size=8", "--set", "data.eval_fraction=0.25", "--set", f"seed={args.seed}",
             "--set", "logging_steps=5", "--set", "gradient_checkpointing=false", "--set", "save_strategy=no", "--force"],
            work / "warm.log",
        )  # fmt: skip
        m = json.loads((work / "rm-warm" / "manifest.json").read_text())
    results = {
        "rows": len(rows),
        "flipped_training_pairs": flipped,
        "members": m["warm"]["members"],
        "average": m["warm"]["average"],
        "wall_s": round(wall, 1),
    }
    print()
    print(
        f"{len(rows)} pairs, {m['data']['eval_rows']} held out (clean); {flipped} of {m['data']['train_rows']} "
        f"training pairs swapped; {args.steps} steps per member"
    )
    print(f"{'model':24} {'learning rate':>14} {'held-out accuracy':>18}")
    for x in m["warm"]["members"]:
        print(
            f"{'member ' + str(x['member']) + ' (seed ' + str(x['seed']) + ')':24} {x.get('learning_rate', '-'):>14} {x['eval_accuracy']:18.3f}"
        )
    print(f"{'WARM average':24} {'':>14} {m['warm']['average']['eval_accuracy']:18.3f}")
    print(f"wall time for all members, the merge and the evaluation: {wall:.0f} s")
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()

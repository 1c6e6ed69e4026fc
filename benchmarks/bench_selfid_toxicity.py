"""Speed of the `toxicity` (each backend of the default) and `selfid` steps, optionally side by side with
another checkout of the code (the code before a change), measured alternately in one run.

Rows are `sample_data/conversations.jsonl` repeated to `--rows`, decided in one frame by the step's
`verdict` (the part the runner calls per batch); each figure is the median of `--repeats` timings, each
in a fresh process, alternating between the trees so machine load hits both alike.

    python benchmarks/bench_selfid_toxicity.py --rows 2000 --repeats 3
    git archive fdabb4c | (mkdir -p /tmp/before && tar -x -C /tmp/before)
    python benchmarks/bench_selfid_toxicity.py --rows 2000 --repeats 3 --against /tmp/before
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STEPS = {
    "toxicity profanity": ("toxicity", {"backend": "profanity"}),
    "toxicity profanity+rules": ("toxicity", {"backend": "profanity+rules"}),
    # with the learned backend; a tree before it has no `linear` and reports n/a
    "toxicity profanity+rules+linear": ("toxicity", {"backend": "profanity+rules+linear"}),
    # the default since the eighth pass: all-MiniLM-L6-v2 on the CPU (torch threads: OMP_NUM_THREADS)
    "toxicity profanity+rules+linear+encoder": ("toxicity", {"backend": "profanity+rules+linear+encoder"}),
    "selfid": ("selfid", {"identity": "Nova", "developer": "Lumen Labs"}),
}


def measure(tree: Path, rows: int) -> dict[str, float]:
    """rows/s per step, importing the steps from `tree`."""
    sys.path.insert(0, str(tree))
    import orjson

    from curate.pipeline import StepError, to_frame
    from curate.steps import build_step

    lines = (ROOT / "sample_data" / "conversations.jsonl").read_bytes().splitlines()
    data = [orjson.loads(lines[i % len(lines)]) for i in range(rows)]
    frame = to_frame(
        [{"id": str(i), "_kind": "conversation", "messages": r["messages"]} for i, r in enumerate(data)]
    )
    out = {}
    for label, (name, options) in STEPS.items():
        try:
            step = build_step(name, dict(options))
        except StepError:  # a backend this tree does not have
            out[label] = float("nan")
            continue
        step.verdict(frame.head(8))  # load models and compile patterns outside the timing
        t = time.perf_counter()
        step.verdict(frame)
        out[label] = rows / (time.perf_counter() - t)
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--against", type=Path, help="another checkout (its curate/ and rules/) to time too")
    ap.add_argument("--tree", type=Path, help=argparse.SUPPRESS)  # one timing in this process
    args = ap.parse_args(argv)
    if args.tree:
        print(json.dumps(measure(args.tree, args.rows)))
        return
    trees = {"this tree": ROOT, **({f"{args.against}": args.against.resolve()} if args.against else {})}
    runs: dict[str, list[dict]] = {t: [] for t in trees}
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    for _ in range(args.repeats):
        for name, tree in trees.items():
            cmd = [sys.executable, __file__, "--tree", str(tree), "--rows", str(args.rows)]
            done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tree, check=True)
            runs[name].append(json.loads(done.stdout.splitlines()[-1]))
    print(f"rows/s, median of {args.repeats}, {args.rows} rows of sample_data/conversations.jsonl")
    for step in STEPS:
        figures = {name: statistics.median(r[step] for r in rs) for name, rs in runs.items()}
        cells = "   ".join(
            f"{name}: n/a" if math.isnan(v) else f"{name}: {v:,.0f}" for name, v in figures.items()
        )
        ratio = ""
        if len(figures) == 2 and not any(map(math.isnan, figures.values())):
            a, b = figures.values()
            ratio = f"   ratio {a / b:.2f}"
        print(f"{step:<32} {cells}{ratio}")


if __name__ == "__main__":
    main()

"""Cost of the step frame and the `quality` step on plain and tool-use conversations, against a git ref.

The step frame carries tool calls, tool-call ids and declared tools, and `quality` reads tool use turn by turn
where it is present. This measures rows/s of `to_frame` + `QualityFilter.verdict` for plain 2-turn rows (the
common case, decided in Polars) and for tool-use rows (4 messages, a call and its result), in this tree and in
`--baseline` (a git ref, e.g. `main`; plain rows only, since a tree without tool roles refuses the others), each
in a fresh process, alternating, median of `--repeat`.

    python benchmarks/bench_frame.py --rows 20000 --repeat 5 --baseline main
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

WORKER = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
from curate.filters.quality import QualityFilter
from curate.pipeline import to_frame
from curate.schema import normalize

kind, n = sys.argv[2], int(sys.argv[3])
words = "the sea is wide and deep and blue and the waves come in and go out again".split()
def text(i, k):
    return " ".join(words[(i + j) % len(words)] for j in range(k)) + f" {i}"
rows = []
for i in range(n):
    if kind == "plain":
        msgs = [{"role": "user", "content": text(i, 12)}, {"role": "assistant", "content": text(i, 160)}]
        rows.append(normalize({"messages": msgs}))
    else:
        call = {"type": "function", "function": {"name": "get_weather", "arguments": {"city": f"c{i}"}}}
        msgs = [{"role": "user", "content": text(i, 12)}, {"role": "assistant", "content": "", "tool_calls": [call]},
                {"role": "tool", "content": '{"t": 18}'}, {"role": "assistant", "content": text(i, 150)}]
        tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {}}}]
        rows.append(normalize({"messages": msgs, "tools": tools}))
step = QualityFilter()
t = time.perf_counter()
for k in range(0, n, 10_000):
    verdict = step.verdict(to_frame(rows[k : k + 10_000]))
print(json.dumps({"rows_per_s": n / (time.perf_counter() - t)}))
"""


def tree_of(ref: str, into: Path) -> Path:
    """The curate/ and rules/ packages of a git ref, unpacked into a directory."""
    archive = into / "tree.tar"
    subprocess.run(["git", "archive", "-o", str(archive), ref, "curate", "rules"], cwd=ROOT, check=True)
    with tarfile.open(archive) as tf:
        tf.extractall(into / "tree", filter="data")
    return into / "tree"


def measure(tree: Path, kind: str, rows: int) -> float:
    out = subprocess.run(
        [sys.executable, "-c", WORKER, str(tree), kind, str(rows)], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)["rows_per_s"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=20_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--baseline", help="git ref to compare plain rows against (e.g. main)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        trees = {"this tree": ROOT}
        if args.baseline:
            trees[args.baseline] = tree_of(args.baseline, Path(tmp))
        results: dict[tuple[str, str], list[float]] = {}
        for _ in range(args.repeat):
            for name, tree in trees.items():
                for kind in ("plain", "tools") if name == "this tree" else ("plain",):
                    results.setdefault((name, kind), []).append(measure(tree, kind, args.rows))
    med = {key: statistics.median(v) for key, v in results.items()}
    for (name, kind), value in med.items():
        print(f"{name:>12}  {kind:<6} {value:>10,.0f} rows/s  (median of {args.repeat}, {args.rows} rows)")
    if args.baseline:
        ratio = med[("this tree", "plain")] / med[(args.baseline, "plain")]
        print(f"plain rows, this tree / {args.baseline}: {ratio:.2f}x")


if __name__ == "__main__":
    main()

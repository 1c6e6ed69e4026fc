"""docs/s of `curate filter` (the default stack) with `--engine local` and `--engine ray`, on the same corpus.

The corpus is `bench_curate.py`'s (about 1 KB per conversation, planted exact and near duplicates). Each
run is the real CLI in a fresh process, timed end to end: start-up, reading, filtering, writing the run
directory; for Ray without `--ray-address` that includes starting and stopping the local Ray instance.
The two engines' outputs are compared byte for byte after the runs.

    python benchmarks/bench_engines.py                          # 100k rows, 3 runs per engine
    python benchmarks/bench_engines.py --ray-address auto       # Ray: an already running cluster
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_curate import ROOT, STEPS, build_corpus  # noqa: E402

OUTPUTS = ("kept.jsonl", "rejected.jsonl", "edits.jsonl", "invalid.jsonl")


def run_cli(corpus: Path, out: Path, engine: str, extra: list[str]) -> dict:
    cmd = [
        sys.executable,
        "-m",
        "curate.cli",
        "filter",
        str(corpus),
        "-o",
        str(out),
        "--force",
        "-q",
        "--filters",
        ",".join(STEPS),
        "--engine",
        engine,
        *extra,
    ]
    t0 = time.perf_counter()
    subprocess.run(
        cmd, check=True, env={**os.environ, "OMP_NUM_THREADS": "1", "RAY_USAGE_STATS_ENABLED": "0"}
    )
    wall = time.perf_counter() - t0
    m = json.loads((out / "manifest.json").read_text())
    return {"wall_s": wall, "docs_per_s": m["counts"]["input"] / wall, "manifest": m}


def digests(run: Path) -> dict:
    return {name: hashlib.sha256((run / name).read_bytes()).hexdigest() for name in OUTPUTS}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3, help="runs per engine; the median is reported")
    ap.add_argument("--engines", default="local,ray")
    ap.add_argument(
        "--ray-address", help="join this Ray cluster instead of starting a local instance per run"
    )
    ap.add_argument("--out", default=str(ROOT / "bench-out"))
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    corpus = out / f"corpus-{args.rows}.jsonl"
    if not corpus.exists():  # deterministic (seeded): the same file bench_curate.py writes
        build_corpus(corpus, args.rows)
    print(
        f"corpus: {corpus} ({args.rows} rows, {corpus.stat().st_size / 2**20:.0f} MiB); "
        f"{os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    results, runs_dir = {}, {}
    print(f"{'engine':<10} {'docs/s (median)':>16} {'runs (docs/s)':>28} {'in-process s':>13}")
    for engine in args.engines.split(","):
        extra = ["--ray-address", args.ray_address] if engine == "ray" and args.ray_address else []
        runs_dir[engine] = out / f"run-{engine}"
        runs = [run_cli(corpus, runs_dir[engine], engine, extra) for _ in range(args.repeat)]
        rates = [r["docs_per_s"] for r in runs]
        inproc = statistics.median(r["manifest"]["seconds"] for r in runs)
        results[engine] = {
            "median_docs_per_s": statistics.median(rates),
            "runs": rates,
            "median_in_process_s": inproc,
            "counts": runs[-1]["manifest"]["counts"],
            "engine": runs[-1]["manifest"].get("engine"),
            "step_rows_per_s": {s["name"]: s.get("rows_per_s") for s in runs[-1]["manifest"]["steps"]},
        }
        print(
            f"{engine:<10} {statistics.median(rates):>16,.0f} {str([round(x) for x in rates]):>28} {inproc:>13.1f}",
            flush=True,
        )
    if len(runs_dir) > 1:
        first, *others = runs_dir.values()
        same = all(digests(first) == digests(o) for o in others)
        results["outputs_identical"] = same
        print(f"outputs identical across engines (kept, rejected, edits, invalid): {'yes' if same else 'NO'}")
    name = f"engines-{args.rows}{'-joined' if args.ray_address else ''}.json"
    (out / name).write_text(json.dumps(results, indent=2))
    print(f"results: {out / name}")


if __name__ == "__main__":
    main()

"""Throughput, memory and near-dup quality of `curate filter` on a synthetic chat corpus.

Builds N conversations of about 1 KB (user question + assistant answer from an English vocabulary) with
planted exact duplicates (case/whitespace changes) and near duplicates (1-3 words changed), then runs
each filter alone and the default stack through the real CLI in a subprocess, reporting docs/s (end to
end: read, filter, write) and peak RSS. Near-dup recall/precision is measured against the planted truth
and against datasketch (MinHashLSH, same threshold, keep-first) on a subset.

    python benchmarks/bench_curate.py                 # 100k rows
    python benchmarks/bench_curate.py --rows 1000000 --only default   # the memory target
    python benchmarks/bench_curate.py --only default --baseline /tmp/old   # this tree against another
                                                                          # checkout, runs interleaved
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
WORDS = (
    "the of and to in is that for it as with was on be by this are from at or an which have not but they one "
    "all can has more their there been if will what about when would into so out up time some could them "
    "other than then its also new these two may first any like our over such only most years used very after "
    "system data model function value number example result process energy water light cell body heart "
    "history country city river market price policy language music art science theory method code list string "
    "file server network memory user query table column error test class object loop array python database "
    "because however therefore although while where before during between under around through without within "
    "make use find give take show help explain describe compare improve reduce increase create build write read"
).split()
STEPS = ["quality", "selfid", "exact-dedup", "near-dedup", "language"]


def build_corpus(path: Path, rows: int, seed: int = 0) -> dict:
    """Write the corpus; return the ids of planted exact and near duplicates."""
    rng = np.random.default_rng(seed)
    vocab = np.array(WORDS)
    n_base = int(rows * 0.9)
    exact, near = [], []
    with open(path, "w") as fh:
        base_texts = []
        for i in range(rows):
            if i < n_base or not base_texts:
                q = " ".join(rng.choice(vocab, 12)).capitalize() + "?"
                a = " ".join(rng.choice(vocab, 165)).capitalize() + "."
                if i < 2000:
                    base_texts.append((q, a))
            elif i % 2 == 0:
                q, a = base_texts[int(rng.integers(len(base_texts)))]
                q, a = q.upper(), a.replace(" ", "  ")
                exact.append(f"r{i}")
            else:
                q, a = base_texts[int(rng.integers(len(base_texts)))]
                w = a.split()
                for _ in range(int(rng.integers(1, 4))):
                    w[int(rng.integers(len(w)))] = str(rng.choice(vocab))
                a = " ".join(w)
                near.append(f"r{i}")
            row = {
                "id": f"r{i}",
                "messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}],
            }
            fh.write(json.dumps(row) + "\n")
    return {"exact": exact, "near": near}


_WRAPPER = """
import resource, sys
from curate.cli import main
try:
    main(sys.argv[2:], standalone_mode=False)
finally:
    open(sys.argv[1], "w").write(str(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))
"""


def run_cli(corpus: Path, out: Path, filters: list[str], code: Path | None = None) -> dict:
    """One `curate filter` in a fresh process; its own peak RSS is read inside it. `code`: run the curate of
    that checkout instead of this one."""
    rss_file = out.parent / "rss.txt"
    cmd = [
        sys.executable,
        "-c",
        _WRAPPER,
        str(rss_file),
        "filter",
        str(corpus),
        "-o",
        str(out),
        "--force",
        "-q",
        "--filters",
        ",".join(filters),
    ]
    t0 = time.perf_counter()
    env = {**os.environ, "OMP_NUM_THREADS": "1", **({"PYTHONPATH": str(code)} if code else {})}
    subprocess.run(cmd, check=True, env=env, cwd=code or ROOT)
    wall = time.perf_counter() - t0
    m = json.loads((out / "manifest.json").read_text())
    return {
        "wall_s": wall,
        "docs_per_s": m["counts"]["input"] / wall,
        "peak_rss_mb": int(rss_file.read_text()) / 1024,
        "manifest": m,
    }


def near_dup_quality(corpus: Path, planted: dict, out: Path, subset: int) -> dict:
    """Our near-dedup against the planted truth and against datasketch on `subset` rows: the 2,000 rows
    that duplicates are copied from, then the tail of the corpus, where the planted copies are."""
    from datasketch import MinHash, MinHashLSH

    from curate.filters.dedup import NearDedupFilter
    from curate.pipeline import to_frame
    from curate.schema import Reader

    total = sum(1 for _ in open(corpus, "rb"))
    tail_start = total - max(0, subset - 2000)
    rows = [r for i, r in enumerate(Reader([str(corpus)])) if i < 2000 or i >= tail_start]
    f = NearDedupFilter()
    ours = {}
    for i in range(0, len(rows), 10_000):
        batch = rows[i : i + 10_000]
        for r, reason in zip(batch, f.verdict(to_frame(batch))["reason"], strict=True):
            ours[r["id"]] = reason is not None
    from curate.filters.dedup import conversation_text
    from curate.text import normalized

    texts = normalized(conversation_text(to_frame(rows)), strip_punctuation=True).to_list()
    lsh = MinHashLSH(threshold=f.threshold, num_perm=f.num_perm)
    sigs, ref = {}, {}
    t0 = time.perf_counter()
    for r, text in zip(rows, texts, strict=True):
        w = text.split(" ")
        sh = {" ".join(w[i : i + f.ngram]) for i in range(max(1, len(w) - f.ngram + 1))}
        m = MinHash(num_perm=f.num_perm, seed=1)
        m.update_batch([s.encode() for s in sh])
        hits = [h for h in lsh.query(m) if sigs[h].jaccard(m) >= f.threshold]
        ref[r["id"]] = bool(hits)
        if not hits:
            lsh.insert(r["id"], m)
            sigs[r["id"]] = m
    ds_rate = len(rows) / (time.perf_counter() - t0)
    ids = [r["id"] for r in rows]
    truth = set(planted["near"]) | set(planted["exact"])  # exact copies are near copies too
    o = {i for i in ids if ours[i]}
    d = {i for i in ids if ref[i]}
    t = {i for i in ids if i in truth}
    return {
        "rows": len(rows),
        "recall_vs_planted": len(o & t) / max(1, len(t)),
        "precision_vs_planted": len(o & t) / max(1, len(o)),
        "datasketch_recall_vs_planted": len(d & t) / max(1, len(t)),
        "agreement_with_datasketch": sum(ours[i] == ref[i] for i in ids) / len(ids),
        "recall_vs_datasketch": len(o & d) / max(1, len(d)),
        "precision_vs_datasketch": len(o & d) / max(1, len(o)),
        "datasketch_docs_per_s": ds_rate,
    }


def compare(corpus: Path, out: Path, filters: list[str], baseline: Path, repeat: int) -> dict:
    """The same configuration with the baseline's curate and this tree's, alternately (load from other jobs
    hits both alike); medians, peak RSS and the ratio this/baseline."""
    runs = {"baseline": [], "this": []}
    for _ in range(repeat):
        runs["baseline"].append(run_cli(corpus, out, filters, code=baseline))
        runs["this"].append(run_cli(corpus, out, filters))
    res = {
        k: {
            "median_docs_per_s": statistics.median(r["docs_per_s"] for r in rs),
            "runs": [r["docs_per_s"] for r in rs],
            "peak_rss_mb": max(r["peak_rss_mb"] for r in rs),
        }
        for k, rs in runs.items()
    }
    res["ratio"] = res["this"]["median_docs_per_s"] / res["baseline"]["median_docs_per_s"]
    for k in ("baseline", "this"):
        r = res[k]
        print(
            f"  {k:<10} {r['median_docs_per_s']:>12,.0f} docs/s {str([round(x) for x in r['runs']]):>26} {r['peak_rss_mb']:>8,.0f} MB"
        )
    print(f"  this / baseline: {res['ratio']:.3f}", flush=True)
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3, help="runs per configuration; the median is reported")
    ap.add_argument("--only", choices=["each", "default", "all"], default="all")
    ap.add_argument("--subset", type=int, default=20_000, help="rows for the datasketch comparison (0: skip)")
    ap.add_argument("--out", default=str(ROOT / "bench-out"))
    ap.add_argument(
        "--baseline",
        type=Path,
        help="another checkout (e.g. `git worktree add /tmp/old HEAD~3`): each configuration runs with its "
        "curate and this one's, alternately, and both medians and their ratio are reported",
    )
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    corpus = out / f"corpus-{args.rows}.jsonl"
    t0 = time.perf_counter()
    planted = build_corpus(corpus, args.rows)
    print(
        f"corpus: {args.rows} rows, {corpus.stat().st_size / args.rows:.0f} bytes/row, "
        f"{len(planted['exact'])} exact + {len(planted['near'])} near duplicates planted "
        f"({time.perf_counter() - t0:.0f}s)",
        flush=True,
    )
    configs = []
    if args.only in ("each", "all"):
        configs += [[s] for s in STEPS]
    if args.only in ("default", "all"):
        configs.append(STEPS)
    results = {}
    print(f"{'filters':<44} {'docs/s (median)':>16} {'runs':>26} {'peak RSS MB':>12}")
    for filters in configs:
        name = ",".join(filters) if len(filters) == 1 else "default stack (" + ",".join(filters) + ")"
        if args.baseline:
            print(name, flush=True)
            results[name] = compare(corpus, out / "run", filters, args.baseline, args.repeat)
            continue
        runs = [run_cli(corpus, out / "run", filters) for _ in range(args.repeat)]
        rates = [r["docs_per_s"] for r in runs]
        peak = max(r["peak_rss_mb"] for r in runs)
        results[name] = {
            "median_docs_per_s": statistics.median(rates),
            "runs": rates,
            "peak_rss_mb": peak,
            "counts": runs[-1]["manifest"]["counts"],
            "step_rows_per_s": {s["name"]: s.get("rows_per_s") for s in runs[-1]["manifest"]["steps"]},
        }
        print(
            f"{name:<44} {statistics.median(rates):>16,.0f} {str([round(x) for x in rates]):>26} {peak:>12,.0f}",
            flush=True,
        )
    if args.subset:
        q = near_dup_quality(corpus, planted, out, args.subset)
        results["near_dup_quality"] = q
        print("near-dup quality:", json.dumps({k: round(v, 4) for k, v in q.items()}))
    (out / f"results-{args.rows}.json").write_text(json.dumps(results, indent=2))
    print(f"results: {out / f'results-{args.rows}.json'}")


if __name__ == "__main__":
    main()

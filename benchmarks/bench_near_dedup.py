"""Near-dedup recall and precision against *exact* Jaccard, and docs/s against datasketch, in one run.

The corpus is built from real prose: the sentences of `sample_data/texts.py` (explanations, summaries,
travel tips, reviews, recipes...) recombined into base documents of 8-16 sentences, then near copies of
random base documents edited (words replaced, inserted, deleted; a sentence dropped or added) to a true
word-5-gram Jaccard spread evenly over 0.6-1.0. Truth is the keep-first rule with the exact Jaccard of
the filter's own shingle sets against every earlier kept row (a sparse matrix product, no sampling).

    python benchmarks/bench_near_dedup.py                          # 6,000 rows, this checkout
    python benchmarks/bench_near_dedup.py --baseline-rev main      # ... and the near-dedup of another commit

`--baseline-rev` loads `curate/filters/dedup.py` of that git revision as a module and measures it on the
same rows, so before/after and datasketch are timed side by side.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "sample_data"))


def sentences() -> list[str]:
    import texts

    out = []

    def walk(x):
        if isinstance(x, str):
            out.extend(s for s in re.split(r"(?<=[.!?])\s+", x) if len(s.split()) >= 6)
        elif isinstance(x, (list, tuple)):
            for y in x:
                walk(y)
        elif isinstance(x, dict):
            for y in x.values():
                walk(y)

    for name in dir(texts):
        if name.isupper():
            walk(getattr(texts, name))
    return sorted(set(out))


def edit_to(rng: random.Random, doc: list[str], pool: list[str], vocab: list[str], target: float, shingle):
    """Edit a copy of `doc` (sentences) until the Jaccard with the original reaches about `target`."""
    base = shingle(" ".join(doc))
    words = " ".join(doc).split(" ")
    best = words
    for _ in range(2000):
        j = jac(base, shingle(" ".join(best)))
        if j <= target + 0.005:
            break
        w = list(best)
        op = rng.random()
        if op < 0.5:
            w[rng.randrange(len(w))] = rng.choice(vocab)
        elif op < 0.7:
            w.insert(rng.randrange(len(w)), rng.choice(vocab))
        elif op < 0.9 and len(w) > 30:
            del w[rng.randrange(len(w))]
        else:
            w += rng.choice(pool).split(" ")
        best = w
    return " ".join(best)


def jac(a: set, b: set) -> float:
    return len(a & b) / max(1, len(a | b))


def build(n_base: int, n_copies: int, seed: int = 0):
    def shingle_of(text: str) -> set:  # close to the filter's shingling; truth uses the filter's own
        w = re.sub(r"[^\w ]+", " ", text.lower()).split()
        return {tuple(w[k : k + 5]) for k in range(max(1, len(w) - 4))}

    rng = random.Random(seed)
    pool = sentences()
    vocab = sorted({w for s in pool for w in s.split(" ")})
    docs = [rng.sample(pool, rng.randint(8, 16)) for _ in range(n_base)]
    rows = [" ".join(d) for d in docs]
    targets = []
    for _ in range(n_copies):
        k = rng.randrange(n_base)
        t = rng.uniform(0.6, 1.0)
        rows.append(edit_to(rng, docs[k], pool, vocab, t, shingle_of))
        targets.append(t)
    return rows


def truth_keep_first(frame, threshold: float) -> np.ndarray:
    """Dropped rows under keep-first with exact Jaccard against every earlier kept row."""
    from scipy.sparse import csr_matrix

    from curate.filters.dedup import as_set

    sets = [as_set(b).tolist() for b in frame["_shingles"].to_list()]
    vocab = {}
    ind, ptr = [], [0]
    for s in sets:
        ind.extend(vocab.setdefault(h, len(vocab)) for h in s)
        ptr.append(len(ind))
    m = csr_matrix((np.ones(len(ind), np.float32), ind, ptr), shape=(len(sets), len(vocab)))
    inter = (m @ m.T).toarray()
    size = np.array([len(s) for s in sets], np.float32)
    jaccard = inter / (size[:, None] + size[None, :] - inter)
    dropped = np.zeros(len(sets), bool)
    kept = []
    for i in range(len(sets)):
        if kept and (jaccard[i, kept] >= threshold).any():
            dropped[i] = True
        else:
            kept.append(i)
    return dropped, jaccard


def run_filter(step, rows: list[dict], batch: int) -> tuple[np.ndarray, float]:
    from curate.pipeline import to_frame

    frames = [to_frame(rows[i : i + batch]) for i in range(0, len(rows), batch)]
    t0 = time.perf_counter()
    out = []
    for fr in frames:
        out += [r is not None for r in step.verdict(step.prepare(fr))["reason"]]
    return np.array(out), len(rows) / (time.perf_counter() - t0)


def run_datasketch(texts: list[str], threshold: float, num_perm: int, ngram: int) -> tuple[np.ndarray, float]:
    from datasketch import MinHash, MinHashLSH

    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    sigs, out = {}, []
    t0 = time.perf_counter()
    for i, text in enumerate(texts):
        w = text.split(" ")
        sh = {" ".join(w[k : k + ngram]) for k in range(max(1, len(w) - ngram + 1))}
        m = MinHash(num_perm=num_perm, seed=1)
        m.update_batch([s.encode() for s in sh])
        hits = [h for h in lsh.query(m) if sigs[h].jaccard(m) >= threshold]
        out.append(bool(hits))
        if not hits:
            lsh.insert(i, m)
            sigs[i] = m
    return np.array(out), len(texts) / (time.perf_counter() - t0)


def load_rev(rev: str):
    src = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{rev}:curate/filters/dedup.py"], check=True, capture_output=True
    ).stdout
    path = Path(tempfile.mkdtemp()) / "dedup_baseline.py"
    path.write_bytes(src)
    spec = importlib.util.spec_from_file_location("dedup_baseline", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["dedup_baseline"] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def scores(pred: np.ndarray, truth: np.ndarray, pair_j: np.ndarray, copies: slice) -> dict:
    tp = int((pred & truth).sum())
    band = (pair_j >= 0.8) & (pair_j < 0.97)
    return {
        "recall": tp / max(1, int(truth.sum())),
        "precision": tp / max(1, int(pred.sum())),
        "recall_copies_J_0.80_0.97": float(pred[copies][band].mean()) if band.any() else None,
        "dropped_copies_J_below_0.8": int((pred[copies] & (pair_j < 0.8)).sum()),
    }


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", type=int, default=3000, help="distinct documents")
    ap.add_argument("--copies", type=int, default=3000, help="edited copies, true Jaccard 0.6-1.0")
    ap.add_argument("--batch", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=3, help="timed runs; the median docs/s is reported")
    ap.add_argument("--baseline-rev", help="also measure curate/filters/dedup.py of this git revision")
    args = ap.parse_args(argv)

    from curate.filters.dedup import NearDedupFilter, conversation_text
    from curate.pipeline import to_frame

    t0 = time.perf_counter()
    texts = build(args.base, args.copies)
    rows = [{"id": str(i), "_kind": "conversation", "messages": [{"role": "user", "content": "Q"},
             {"role": "assistant", "content": t}]} for i, t in enumerate(texts)]  # fmt: skip
    frame = NearDedupFilter().prepare(to_frame(rows))
    truth, jaccard = truth_keep_first(frame, 0.8)
    copies = slice(args.base, args.base + args.copies)
    # each copy's Jaccard with the most similar earlier row
    pair_j = np.array([jaccard[i, :i].max() for i in range(args.base, args.base + args.copies)])
    hist = np.histogram(pair_j, bins=[0, 0.6, 0.7, 0.8, 0.9, 1.01])[0].tolist()
    print(f"corpus: {len(rows)} rows ({args.base} documents + {args.copies} copies), {time.perf_counter() - t0:.0f}s;"
          f" copies by true Jaccard [<0.6, 0.6-0.7, 0.7-0.8, 0.8-0.9, >=0.9]: {hist};"
          f" truth drops {int(truth.sum())} rows")  # fmt: skip
    ds_texts = conversation_text(to_frame(rows)).str.to_lowercase().str.replace_all(r"[^\w\s]+", " ")
    ds_texts = ds_texts.str.replace_all(r"\s+", " ").str.strip_chars().to_list()

    results = {}
    candidates = [("this checkout", lambda: NearDedupFilter())]
    if args.baseline_rev:
        old = load_rev(args.baseline_rev)
        candidates.append((f"near-dedup at {args.baseline_rev}", lambda: old.NearDedupFilter()))
    candidates.append(("datasketch MinHashLSH", None))
    for name, make in candidates:
        rates, pred = [], None
        for _ in range(args.repeat):
            if make is None:
                pred, rate = run_datasketch(ds_texts, 0.8, 128, 5)
            else:
                pred, rate = run_filter(make(), rows, args.batch)
            rates.append(rate)
        res = {"docs_per_s": float(np.median(rates)), "runs": [round(r) for r in rates]}
        res.update(scores(pred, truth, pair_j, copies))
        results[name] = res
        print(
            f"{name:<34} "
            + json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in res.items()})
        )
    ours, ds = results["this checkout"]["docs_per_s"], results["datasketch MinHashLSH"]["docs_per_s"]
    print(f"speed vs datasketch: {ours / ds:.1f}x")
    return results


if __name__ == "__main__":
    main()

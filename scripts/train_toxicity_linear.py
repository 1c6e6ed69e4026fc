"""Train the `linear` toxicity backend's model from labelled assistant replies and write it as JSON.

    python scripts/train_toxicity_linear.py          # rules/training/toxicity_linear.jsonl -> rules/toxicity_linear.json
    python scripts/train_toxicity_linear.py --cv 5   # also report 5-fold out-of-fold recall and false positives

Each training row: {"user": ..., "text": <assistant reply>, "label": 1|0, "kind": ...}. Texts are read as
the backend reads them (quotes and code masked, leetspeak and respellings read as words), turned into the
backend's own features (`curate.filters.toxicity_linear.features`) and fitted as an NB-SVM (features
scaled by their naive-Bayes log-count ratio, then scikit-learn's LogisticRegression, L2, balanced classes;
better than a plain logistic regression on a few thousand short texts); weights smaller than --prune are dropped to keep the file small.
Needs scikit-learn (it comes with `pip install posttrain[toxicity]`); the backend itself does not.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def load(path: Path) -> list[dict]:
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise SystemExit(f"{path}:{n}: not valid JSON ({e.msg})") from None
            if (
                not isinstance(row, dict)
                or row.get("label") not in (0, 1)
                or not isinstance(row.get("text"), str)
            ):
                raise SystemExit(f"{path}:{n}: needs text (string) and label (0 or 1)")
            rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> None:
    from curate.filters.toxicity import ToxicityFilter
    from curate.linear import write_model

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT / "rules/training/toxicity_linear.jsonl")
    ap.add_argument("--out", type=Path, default=ROOT / "rules/toxicity_linear.json")
    ap.add_argument("--c", type=float, default=1.0, help="inverse regularisation strength")
    ap.add_argument("--min-count", type=int, default=2, help="features seen in fewer rows are dropped")
    ap.add_argument("--prune", type=float, default=0.02, help="drop weights smaller than this")
    ap.add_argument("--cv", type=int, default=0, help="also report K-fold out-of-fold recall/false positives")
    args = ap.parse_args(argv)

    read = ToxicityFilter()._reader()
    rows = load(args.data)
    if args.cv:
        cross_validate(rows, read, args)
    weights, bias = fit(rows, read, args)
    y = [r["label"] for r in rows]
    model = {
        "name": "toxicity_linear",
        "trained_on": f"{args.data.relative_to(ROOT) if args.data.is_relative_to(ROOT) else args.data}: "
        f"{sum(y)} toxic, {len(y) - sum(y)} not",
        "c": args.c,
        "bias": bias,
        "weights": weights,
    }
    write_model(args.out, model)
    print(f"{args.out}: {len(weights)} weights from {len(rows)} rows ({sum(y)} toxic)")


def cross_validate(rows: list[dict], read, args) -> None:
    """Out-of-fold scores, as the backend computes them (highest window), at several thresholds."""
    from curate.filters.toxicity_linear import LinearModel

    k = args.cv
    scores = [0.0] * len(rows)
    for fold in range(k):
        train = [r for i, r in enumerate(rows) if i % k != fold]
        weights, bias = fit(train, read, args)
        model = LinearModel({"weights": weights, "bias": bias})
        for i in range(fold, len(rows), k):
            scores[i] = model.explain(read(rows[i]["text"]))[0]
    pos = [s for s, r in zip(scores, rows, strict=True) if r["label"] == 1]
    neg = [s for s, r in zip(scores, rows, strict=True) if r["label"] == 0]
    for t in (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95):
        recall = sum(s >= t for s in pos) / max(1, len(pos))
        fp = sum(s >= t for s in neg) / max(1, len(neg))
        print(f"cv{k} threshold {t:.2f}: recall {recall:.3f}, false positives {fp:.3f}")


def fit(rows: list[dict], read, args) -> tuple[dict, float]:
    from curate.filters.toxicity_linear import features
    from curate.linear import fit_nbsvm

    return fit_nbsvm(
        [features(read(r["text"])) for r in rows],
        [r["label"] for r in rows],
        c=args.c,
        min_count=args.min_count,
        prune=args.prune,
    )


if __name__ == "__main__":
    main()

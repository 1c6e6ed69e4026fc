"""posttrain's small learned models: binary features, one weight each, a sigmoid (`Weights`), fitted as an
NB-SVM (`fit_nbsvm`). Two filters use them next to their rules: `toxicity` (the `linear` backend) and
`selfid` (the learned check). Scoring is pure Python; fitting needs scikit-learn (training scripts only).

>>> w = Weights({"bias": -1.0, "weights": {"w:pathetic": 2.0, "b:are pathetic": 0.5}})
>>> round(w.probability({"w:pathetic", "b:are pathetic"}), 2), w.heaviest({"w:pathetic", "w:day"})
(0.82, ['w:pathetic'])
"""

from __future__ import annotations

import json
import math
from functools import lru_cache

from rules import rules_path


class Weights:
    """Weights per feature and a bias; a feature set's score is the sigmoid of the bias plus the weights of
    the features it holds (binary features, no normalisation: a short text weighs as much as a long one)."""

    def __init__(self, data: dict):
        self.weights: dict[str, float] = data["weights"]
        self.bias = float(data["bias"])
        self.meta = {k: v for k, v in data.items() if k not in ("weights", "bias")}

    def logit(self, feats: set[str]) -> float:
        return self.bias + sum(self.weights.get(f, 0.0) for f in feats)

    def probability(self, feats: set[str]) -> float:
        return sigmoid(self.logit(feats))

    def heaviest(self, feats: set[str], n: int = 3) -> list[str]:
        """The (at most n) positive features that weigh most; word features before character pieces
        ("c:"), ties broken by name so that a detail does not depend on set order."""
        hits = [(self.weights[f], f) for f in feats if f in self.weights]
        shown = sorted(hits, key=lambda h: (not h[1].startswith("c:"), h[0], h[1]), reverse=True)
        return [f for w, f in shown[:n] if w > 0]


@lru_cache(maxsize=4)
def load_weights(name: str, kind: type[Weights] = Weights) -> Weights:
    """A shipped model file (`rules/NAME`) or a path as `kind`, read once per process."""
    return kind(json.loads(rules_path(name).read_text(encoding="utf-8")))


def negated(words: list[str], negations: frozenset[str]) -> list[str]:
    """Words within three after a negation (one of `negations`, or a word ending in "n't") marked "not_":
    a reply that denies an insult or a name does not carry its weight. Marked words stay as they are.

    >>> negated("you are not a stupid person at all".split(), frozenset({"not"}))
    ['you', 'are', 'not', 'not_a', 'not_stupid', 'not_person', 'at', 'all']
    """
    out, left = [], 0
    for w in words:
        if left and w not in negations and not w.startswith("not_"):
            out.append(f"not_{w}")
            left -= 1
            continue
        out.append(w)
        left = 3 if w in negations or w.endswith("n't") else 0
    return out


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x > -60 else 0.0


def fit_nbsvm(
    feature_sets: list[set[str]], labels: list[int], *, c: float, min_count: int, prune: float
) -> tuple[dict[str, float], float]:
    """(weights, bias) of an NB-SVM (Wang & Manning 2012): each feature seen in at least `min_count` rows
    is scaled by its naive-Bayes log-count ratio between the classes, then fitted by scikit-learn's
    LogisticRegression (L2, balanced classes); the run-time weight is ratio * coefficient, so scoring stays
    one sum. Weights smaller than `prune` are dropped to keep the file small."""
    import numpy as np
    from scipy.sparse import csr_matrix
    from sklearn.linear_model import LogisticRegression

    counts: dict[str, int] = {}
    for fs in feature_sets:
        for f in fs:
            counts[f] = counts.get(f, 0) + 1
    vocab = {f: i for i, f in enumerate(sorted(f for f, n in counts.items() if n >= min_count))}
    data, indices, indptr = [], [], [0]
    for fs in feature_sets:
        idx = sorted(vocab[f] for f in fs if f in vocab)
        indices += idx
        data += [1.0] * len(idx)
        indptr.append(len(indices))
    x = csr_matrix((data, indices, indptr), shape=(len(feature_sets), len(vocab)))
    y = np.array(labels)
    positive = 1.0 + np.asarray(x[y == 1].sum(0)).ravel()
    negative = 1.0 + np.asarray(x[y == 0].sum(0)).ravel()
    ratio = np.log((positive / positive.sum()) / (negative / negative.sum()))
    clf = LogisticRegression(C=c, class_weight="balanced", max_iter=5000).fit(x.multiply(ratio).tocsr(), y)
    names = sorted(vocab, key=vocab.get)
    weights = {
        f: round(float(w), 4) for f, w in zip(names, clf.coef_[0] * ratio, strict=True) if abs(w) >= prune
    }
    return dict(sorted(weights.items())), round(float(clf.intercept_[0]), 4)


def write_model(path, model: dict) -> None:
    """Write a model file atomically (compact JSON, one line)."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(model, ensure_ascii=False, separators=(",", ":")) + "\n", encoding="utf-8")
    tmp.replace(path)


# --- training (the scripts in scripts/train_*_linear.py) ------------------------------------------------


def read_rows(path, required: dict[str, type]) -> list[dict]:
    """Labelled JSONL rows (label 0 or 1, and the `required` fields of the given types); a bad line stops
    with its file and line number."""
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
                or any(not isinstance(row.get(k), t) for k, t in required.items())
            ):
                fields = ", ".join(f"{k} ({t.__name__})" for k, t in required.items())
                raise SystemExit(f"{path}:{n}: needs {fields} and label (0 or 1)")
            rows.append(row)
    return rows


def training_arguments(parser, *, data, out) -> None:
    """The options both training scripts take."""
    parser.add_argument("--data", type=type(data), default=data)
    parser.add_argument("--out", type=type(out), default=out)
    parser.add_argument("--c", type=float, default=1.0, help="inverse regularisation strength")
    parser.add_argument("--min-count", type=int, default=2, help="features seen in fewer rows are dropped")
    parser.add_argument("--prune", type=float, default=0.02, help="drop weights smaller than this")
    parser.add_argument(
        "--cv", type=int, default=0, help="also report K-fold out-of-fold recall/false positives"
    )


def save_trained(args, root, name: str, labels: list[int], weights: dict, bias: float, what: str) -> None:
    """Write a trained model with where it came from, and say so."""
    data = args.data.relative_to(root) if args.data.is_relative_to(root) else args.data
    positives = sum(labels)
    model = {
        "name": name,
        "trained_on": f"{data}: {positives} {what}, {len(labels) - positives} not",
        "c": args.c,
        "bias": bias,
        "weights": weights,
    }
    write_model(args.out, model)
    print(f"{args.out}: {len(weights)} weights from {len(labels)} rows ({positives} {what})")


def report(name: str, scored: list[tuple[float, dict]]) -> None:
    """Recall on label-1 rows and the share of label-0 rows flagged, at the thresholds one would choose from."""
    pos = [s for s, r in scored if r["label"] == 1]
    neg = [s for s, r in scored if r["label"] == 0]
    for t in (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95):
        recall = sum(s >= t for s in pos) / max(1, len(pos))
        fp = sum(s >= t for s in neg) / max(1, len(neg))
        print(f"{name} threshold {t:.2f}: recall {recall:.3f}, false positives {fp:.3f}")

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
def load_weights(name: str) -> Weights:
    """A shipped model file (`rules/NAME`) or a path, read once per process."""
    return Weights(json.loads(rules_path(name).read_text(encoding="utf-8")))


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

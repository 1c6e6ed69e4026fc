"""Misspelt model and organization names ("chatgtp", "Claud", "Antropic", "Chat GTP"), read as the names
they miss, so that `selfid` reads "im claud lol" as it reads "im Claude lol".

A one-word name of at least `min_length` letters gets the spellings one slip away that keep its first
letter (people rarely get the first letter wrong, and keeping it keeps "laude" from reading as Claude): a
letter left out, two neighbours swapped, a letter doubled, a vowel for another vowel, a letter for a key
next to it on a QWERTY keyboard or for one that sounds alike (`sounds_alike`: "chatgbt"). A spelling that is
an English word (`dictionary`: "clause", "goggle"), another name, a plural or listed in `not_typos` is no
misspelling. Two words that join into a name or a misspelling of one ("Chat GTP", "Deep Seek") are read as
that name. Exact-case names (Gemini, Copilot) get misspellings only when they are listed in `exact_case`,
and only when written with a capital ("Gemeni"), since their lower-case words are ordinary words.

>>> m = Misspellings.build([{"name": "Claude", "aliases": ["Claude"]}], {"min_length": 5})
>>> m.fix("ya im claud, whats up")
('ya im Claude, whats up', ['"claud" as Claude'])
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

from rules import word_list

_VOWELS = "aeiouy"
_KEYBOARD = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
# an ASCII word that no other letter touches ("yaptı" is no "yapt"); a version may follow ("chatgtp4")
_SINGLE = re.compile(r"(?<!\w)[A-Za-z]+(?![^\W\d])")


def _neighbours() -> dict[str, str]:
    """Each letter's neighbours on a QWERTY keyboard (same row, and the rows above and below)."""
    near: dict[str, set[str]] = {c: set() for row in _KEYBOARD for c in row}
    for r, row in enumerate(_KEYBOARD):
        for i, c in enumerate(row):
            for rr in (r - 1, r, r + 1):
                if 0 <= rr < len(_KEYBOARD):
                    near[c] |= {x for j, x in enumerate(_KEYBOARD[rr]) if abs(j - i) <= 1 and x != c}
    return {c: "".join(sorted(n)) for c, n in near.items()}


_NEAR = _neighbours()


def slips(word: str, sounds_alike: dict[str, str]) -> set[str]:
    """The spellings of lower-case `word` one slip away that keep its first letter."""
    out: set[str] = set()
    for i in range(1, len(word)):
        c = word[i]
        out.add(word[:i] + word[i + 1 :])  # left out
        if i + 1 < len(word):
            out.add(word[:i] + word[i + 1] + c + word[i + 2 :])  # swapped
        out.add(word[:i] + c + word[i:])  # doubled
        instead = _NEAR.get(c, "") + sounds_alike.get(c, "") + (_VOWELS if c in _VOWELS else "")
        out.update(word[:i] + x + word[i + 1 :] for x in instead if x != c)
    out.add(word + word[-1])
    out.discard(word)
    return out


def _sounds_alike(pairs: list) -> dict[str, str]:
    """Each letter's letters that sound alike, both ways: [["b", "p"]] -> {"b": "p", "p": "b"}."""
    sounds: dict[str, str] = {}
    for a, b in pairs:
        sounds[a] = sounds.get(a, "") + b
        sounds[b] = sounds.get(b, "") + a
    return sounds


def _dictionary(lists: str | list[str]) -> frozenset:
    """The words of one or more word lists shipped in rules/."""
    return frozenset().union(*(word_list(f) for f in ([lists] if isinstance(lists, str) else lists)))


def _spellable(word: str, min_length: int) -> bool:
    """Whether a lower-case alias gets misspellings: one ASCII word of at least `min_length` letters."""
    return len(word) >= min_length and word.isalpha() and word.isascii()


@dataclass(frozen=True)
class Misspellings:
    """Lower-case misspelling (or a name's letters written as two words) -> the name it misses."""

    names: dict[str, str]
    capitalised: frozenset  # misspellings of exact-case names: read only when written with a capital
    words: frozenset = frozenset()  # the dictionary: two lower-case words of it are no split name

    @classmethod
    def build(cls, groups: list[dict], spec: dict | None, own: tuple[str | None, ...] = ()) -> Misspellings:
        """The misspellings of the one-word aliases of `groups` (the rules' `typos:` section as `spec`;
        none without one); `own` are the target's own identity and developer, never a misspelling."""
        if not spec:
            return cls({}, frozenset(), frozenset())
        min_length = int(spec.get("min_length", 5))
        sounds = _sounds_alike(spec.get("sounds_alike") or [])
        exact = set(spec.get("exact_case") or [])
        dictionary = _dictionary(spec.get("dictionary") or [])
        known = {a.lower() for g in groups for a in [*g.get("aliases", []), *g.get("exact_case", [])]}
        known |= {a.replace(" ", "") for a in known}
        never = known | dictionary | {w.lower() for w in [*(spec.get("not_typos") or []), *own] if w}
        names: dict[str, str] = {}
        capitalised: set[str] = set()
        for g in groups:
            cased = [(a, False) for a in g.get("aliases", [])] + [(a, True) for a in g.get("exact_case", [])]
            for alias, exact_case in cased:
                word = alias.lower()
                if (exact_case and alias not in exact) or not _spellable(word, min_length):
                    continue
                plurals = {word + "s", word + "es", word + "d", word + "ed"}
                for slip in slips(word, sounds) - never - plurals:
                    names.setdefault(slip, alias)
                    if exact_case:
                        capitalised.add(slip)
        # a name's letters split into two words: "Deep Seek", "Open Ai"
        for g in groups:
            names.update({a.lower(): a for a in g.get("aliases", []) if _spellable(a.lower(), min_length)})
        return cls(names, frozenset(capitalised), dictionary)

    @cached_property
    def _misspelt(self) -> frozenset:
        """The misspellings alone, without the names themselves."""
        return frozenset(k for k, name in self.names.items() if k != name.lower())

    def __bool__(self) -> bool:
        return bool(self.names)

    def spellings(self) -> list[str]:
        """Every misspelling and one-word name, for a prefilter that looks up words and pairs of words."""
        return sorted(self.names)

    def fix(self, text: str) -> tuple[str, list[str]]:
        """The text with each misspelt name written as the name, and what was read so ('"claud" as
        Claude'); the text itself when nothing is misspelt."""
        if not self.names:
            return text, []
        low = [w.lower() for w in _SINGLE.findall(text)]
        if self._misspelt.isdisjoint(low) and self.names.keys().isdisjoint(map(str.__add__, low, low[1:])):
            return text, []  # most texts: no misspelling, no name split in two (speed only)
        words = list(_SINGLE.finditer(text))
        out: list[str] = []
        read: list[str] = []
        at, i = 0, 0
        while i < len(words):
            m = words[i]
            pair = words[i + 1] if i + 1 < len(words) else None
            if pair is not None and self._joins(m.group(0), text[m.end() : pair.start()], pair.group(0)):
                spelled = text[m.start() : pair.end()]
                if (name := self._name(spelled, m.group(0) + pair.group(0))) is not None:
                    out += [text[at : m.start()], name]
                    read.append(f'"{spelled}" as {name}')
                    at, i = pair.end(), i + 2
                    continue
            if (name := self._name(m.group(0), m.group(0))) is not None:
                out += [text[at : m.start()], name]
                read.append(f'"{m.group(0)}" as {name}')
                at = m.end()
            i += 1
        return "".join(out) + text[at:], read

    def _joins(self, first: str, between: str, second: str) -> bool:
        """Whether two words may be one name split ("Chat GTP", "Deep Seek"): a space or hyphen apart, each of
        two letters or more, neither a name or a misspelling alone ("OpenAI I", "Claude e", "open a"), and
        not two lower-case English words ("an open chat model", "hugging face emoji")."""
        return (
            between in (" ", "-")
            and min(len(first), len(second)) >= 2
            and first.lower() not in self.names
            and second.lower() not in self.names
            and not (first.islower() and second.islower() and {first, second} <= self.words)
        )

    def _name(self, spelled: str, letters: str) -> str | None:
        """The name `spelled` misses, or None: none, the name itself, or an exact-case name in lower case."""
        low = letters.lower()
        name = self.names.get(low)
        if name is None or spelled == name or (low in self.capitalised and not spelled[:1].isupper()):
            return None
        if low == name.lower() and spelled.isalpha():
            return None  # the name itself, in any case
        return name

"""The `linear` toxicity backend: a logistic regression over word and character n-grams that ships with
posttrain (`rules/toxicity_linear.json`), trained by `scripts/train_toxicity_linear.py` from the labelled
assistant replies in `rules/training/toxicity_linear.jsonl` (written for posttrain, shipped with it).

Why a small trained model next to the patterns: insults, contempt and threats worded without swear words
come in endless phrasings ("a goldfish would have figured this out", "with any luck the surgeon slips");
patterns list phrasings, while a linear model weighs every word and word piece it has seen in either
class, so a new sentence built of known parts still scores. It is pure Python at run time (no scikit-learn,
no torch), reads text the way the other built-in backends do (quotes and code masked, leetspeak and
respellings read as words), scores the whole turn and every sentence and pair of sentences in it (a jab in
the middle of a long helpful answer is not averaged away) and keeps the n-grams that weighed most as
evidence.

>>> model = LinearModel({"bias": -1.0, "weights": {"w:pathetic": 2.0, "b:are pathetic": 0.5}})
>>> round(model.score("you are pathetic"), 2), round(model.score("a lovely day"), 2)
(0.82, 0.27)
>>> model.explain("Sure, here it is. You are pathetic.")[1]
'"You are pathetic." (pathetic, are pathetic)'
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache

from curate.linear import Weights, load_weights, negated, sigmoid
from curate.text import short

MODEL_FILE = "toxicity_linear.json"
_WORDS = re.compile(r"[a-z0-9]+(?:['’][a-z]+)?")
_SENTENCES = re.compile(r"(?<=[.!?])\s+|\n+")
_NEGATIONS = frozenset("not no never nobody none nothing neither nor without hardly".split())
_YOU = frozenset("you your you're youre yours yourself u ur ya".split())  # the words that address the reader
# Words that say who is addressed, not how, and the other function words: alone they carry no weight
# (insults are addressed to "you", and so is most kind advice; "why", "must" or "since" open insults and
# instructions alike); they count only in word pairs ("you idiot", "you're worthless", "why bother").
_ONLY_IN_PAIRS = _YOU | frozenset(
    "yourselves ye thou thee i i'm me my mine myself we us "
    "our they them their he him his she her it its the a an and or but to of in on at for with is are was "
    "were be been am do does did have has had this that these those so just "
    "why which what who whom whose when where how because since as if than then must should could would "
    "can will shall may might only even also still very too up down out over about into from by here "
    "there now again once all any some each every both more most other such own same i'll i'd i've "
    "you'll you'd you've it's that's there's let's let get got go going make made".split()
)


def features(text: str) -> set[str]:
    """Binary features of a text: words ("w:"), word pairs ("b:"), character 3- to 5-grams of words with
    their boundaries ("c:") and, in a text addressed to the reader ("you", "ur"), its words again ("y:":
    "clueless" said to the user weighs more than in a story), all lowercased.

    >>> sorted(f for f in features("You dimwit") if not f.startswith("c:"))
    ['b:you dimwit', 'w:dimwit', 'y:dimwit']
    >>> "c:wit " in features("You dimwit")
    True
    """
    words = negated([w.replace("’", "'") for w in _WORDS.findall(text.lower())], _NEGATIONS)
    out = {f"w:{w}" for w in words if w not in _ONLY_IN_PAIRS}
    out.update(f"b:{a} {b}" for a, b in zip(words, words[1:], strict=False))
    for w in set(words) - _ONLY_IN_PAIRS:
        if not w.startswith("not_"):
            out.update(_pieces(w))
    if _YOU.intersection(words):  # what is said in a sentence addressed to the reader
        out.update(f"y:{w}" for w in words if w not in _ONLY_IN_PAIRS)
    return out


@lru_cache(maxsize=65536)
def _pieces(word: str) -> tuple[str, ...]:
    """The character 3- to 5-grams of a word with its boundaries; cached, since a word recurs in every
    window that holds its sentence."""
    padded = f" {word} "
    return tuple(f"c:{padded[i : i + n]}" for n in range(3, 6) for i in range(len(padded) - n + 1))


def windows(text: str) -> list[str]:
    """What is scored: the whole text, each sentence and each pair of adjacent sentences."""
    sentences = [s for s in _SENTENCES.split(text) if s.strip()]
    if len(sentences) <= 1:
        return [text]
    return [text, *sentences, *(f"{a} {b}" for a, b in zip(sentences, sentences[1:], strict=False))]


@dataclass(frozen=True)
class Discount:
    """The best window of a long reply is the best of many: its logit is lowered by `per_doubling` times the
    log2 of its number of windows beyond `free` (none for short replies; a reply of k sentences has 2k
    windows), which keeps the share of flagged long, benign replies near that of short ones
    (`linear_windows:` in the rules file; none without it)."""

    free: int = 8
    per_doubling: float = 0.0

    def logit(self, n: int) -> float:
        return self.per_doubling * math.log2(n / self.free) if n > self.free else 0.0


NO_DISCOUNT = Discount()


class LinearModel(Weights):
    """The toxicity model: `Weights` over the features of a text (`features`)."""

    def logit(self, text: str) -> float:  # type: ignore[override]
        return super().logit(features(text))

    def score(self, text: str) -> float:
        return sigmoid(self.logit(text))

    def heaviest(self, text: str) -> list[str]:  # type: ignore[override]
        """The (at most three) positive features that weigh most in a text: words and word pairs first,
        word pieces only when no word weighs."""
        return super().heaviest(features(text))

    def explain(self, text: str, discount: Discount = NO_DISCOUNT) -> tuple[float, str]:
        """(score, window) of the highest-scoring window of the text, with its heaviest n-grams; the score
        lowered for a long text by `discount` (more windows, more chances of one scoring high by chance)."""
        scored = windows(text)
        # the shortest window of the best score; only that one is explained (scores compared to 9 places: a
        # sum over a set of features differs in its last bits from run to run, which must not pick the window)
        logit, window = max(((self.logit(w), w) for w in scored), key=lambda t: (round(t[0], 9), -len(t[1])))
        words = ", ".join(dict.fromkeys(f[2:].strip() for f in self.heaviest(window)))  # y:x and w:x alike
        lowered = discount.logit(len(scored))
        why = f'"{short(window)}" ({words})' + (
            f" [{len(scored)} windows: -{lowered:.2f}]" if lowered else ""
        )
        return sigmoid(logit - lowered), why


def load_model() -> LinearModel:
    """The shipped model, read once per process."""
    return load_weights(MODEL_FILE, LinearModel)


class LinearBackend:
    labels = ["linear"]

    def __init__(self, reader=None, discount: Discount = NO_DISCOUNT):
        self._model = load_model()
        self._read = reader or (lambda t: t)
        self._discount = discount
        self.evidence: dict[tuple[str, int], str] = {}
        self._last: tuple[list[str], dict] | None = None  # the encoder backend reads the same scores

    def scores(self, texts: list[str]) -> dict[str, list[float]]:
        if self._last is not None and self._last[0] is texts:
            return self._last[1]
        out, self.evidence = [], {}
        for i, text in enumerate(texts):
            score, why = self._model.explain(self._read(text), self._discount)
            out.append(score)
            self.evidence[("linear", i)] = why
        self._last = (texts, {"linear": out})
        return self._last[1]

    def describe(self) -> dict:
        meta = self._model.meta
        return {
            "backend": "linear",
            "linear_model": MODEL_FILE,
            "linear_trained_on": meta.get("trained_on"),
        }

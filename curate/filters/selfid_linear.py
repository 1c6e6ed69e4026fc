"""The learned check of the `selfid` step: a small NB-SVM (`curate.linear`) over the sentences of an
assistant turn that name another model or organization, shipped as `rules/selfid_linear.json` and trained
by `scripts/train_selfid_linear.py` from `rules/training/selfid_linear.jsonl`.

Why next to the patterns: the patterns list phrasings anchored on the speaker, and every new author finds
phrasings they do not list ("the soul behind this beard is a Mistral model", "grok was built to be a lil
spicy, that's the xai way"). The model reads the same masked, name-tokenized sentences the patterns read,
with every other model's name as MODEL, every organization as ORG and the target's own names as SELF, so it
learns how claims are worded around a name, not which names are claimed: word, word-pair and word-triple
features, words within five of a name with their side, negation marking, and whether the user had asked
who the assistant is. A turn's score is the highest over its windows: each sentence naming a name, alone
and with the sentence before or after it.

>>> sorted(f for f in features(["i", "was", "trained", "by", "ORG"], asked=False) if f.startswith("n:"))[:3]
['n:ORG:L:by', 'n:ORG:L:i', 'n:ORG:L:trained']
>>> "w:not_MODEL" in features(["i'm", "not", "MODEL"], asked=False)
True
"""

from __future__ import annotations

from curate.linear import negated

NAMES = frozenset({"MODEL", "ORG"})
_NEGATIONS = frozenset("not no never nope neither nor unlike without".split())
_CONTEXT = 5  # words on either side of a name that count as its context
# Words that alone say nothing about a claim (the speaker talks of itself in most answers, and names are
# in every window): they count in pairs, triples and a name's context only.
_ONLY_IN_CONTEXT = frozenset(
    "MODEL ORG SELF i i'm me my mine myself we us our this that the a an is am are was were be been "
    "it it's its you your and or but to of in on at for with by from as".split()
)


def features(words: list[str], *, asked: bool, topic: bool = False) -> set[str]:
    """Binary features of one window: words ("w:"), pairs ("b:"), triples ("t:"), the words around each
    name with their side ("n:MODEL:L:am"), "q:asked" when the user asked who the assistant is and
    "q:topic" when the window holds a word that makes a name a topic (the nearness rule's `about`)."""
    marked = negated(words, _NEGATIONS)
    out = {f"w:{w}" for w in marked if w not in _ONLY_IN_CONTEXT}
    out.update(f"b:{a} {b}" for a, b in zip(marked, marked[1:], strict=False))
    out.update(f"t:{a} {b} {c}" for a, b, c in zip(marked, marked[1:], marked[2:], strict=False))
    for i, w in enumerate(marked):
        if w in NAMES:
            for j in range(max(0, i - _CONTEXT), min(len(marked), i + _CONTEXT + 1)):
                if j != i:
                    out.add(f"n:{w}:{'L' if j < i else 'R'}:{marked[j]}")
    if asked:
        out.add("q:asked")
    if topic:
        out.add("q:topic")
    return out


def windows(centers: list[bool]) -> list[tuple[int, int]]:
    """(first, last) sentence index of each window that is scored: every sentence that may speak for the
    assistant (`centers`: it names another model or organization, no name in it is negated, nothing in it
    makes the name a topic), alone and with its neighbours.

    >>> windows([False, False, True])
    [(2, 2), (1, 2)]
    """
    out = []
    for i, center in enumerate(centers):
        if center:
            out.append((i, i))
            if i > 0:
                out.append((i - 1, i))
            if i + 1 < len(centers):
                out.append((i, i + 1))
    return out


def center(words: list[str]) -> bool:
    """Whether a sentence's words name someone and deny no name ("I'm not ChatGPT, Claude is ...").

    >>> center(["i", "am", "MODEL"]), center(["i'm", "not", "MODEL"]), center(["not_MODEL", "is", "ORG"])
    (True, False, False)
    """
    marked = negated(words, _NEGATIONS)
    return bool(NAMES.intersection(marked)) and not any(
        w[4:] in NAMES for w in marked if w.startswith("not_")
    )

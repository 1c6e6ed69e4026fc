"""Vectorized text helpers shared by filters: normalization and word n-gram hashing.

Hashing words in Polars and combining them with NumPy keeps Python out of the per-token loop, which is
what lets near-dedup and the repetition check run at tens of thousands of documents per second.

>>> import polars as pl
>>> h, counts = word_ngram_hashes(words(pl.Series(["a b c d e f", "short text"])), n=5)
>>> counts.tolist()  # 2 five-grams in the first text; a text shorter than n is one shingle
[2, 1]
"""

from __future__ import annotations

import re

import numpy as np
import polars as pl

_SEED = 0x5EED
_P = np.uint64(0x9E3779B97F4A7C15)


def normalized(text: pl.Expr | pl.Series, *, strip_punctuation: bool = False):
    """Lowercase, punctuation optionally replaced by spaces, whitespace collapsed and trimmed."""
    out = text.str.to_lowercase()
    if strip_punctuation:
        out = out.str.replace_all(r"[^\w\s]+", " ")
    return out.str.replace_all(r"\s+", " ").str.strip_chars()


def words(text: pl.Series, *, strip_punctuation: bool = False) -> pl.Series:
    """Lowercased words as a list column; separators are whitespace (and punctuation if asked)."""
    # A literal split and dropping empty items is several times faster than collapsing r"\s+" first.
    sep = r"[^\w ]+" if strip_punctuation else r"[\t\n\r\f\v]+"
    return (
        text.str.to_lowercase()
        .str.replace_all(sep, " ")
        .str.split(" ")
        .list.eval(pl.element().filter(pl.element() != ""))
    )


def word_ngram_hashes(word_lists: pl.Series, n: int) -> tuple[np.ndarray, np.ndarray]:
    """64-bit hashes of every word n-gram of every row, flat, and the number per row.

    A row with fewer than `n` words yields one hash of all its words, so short texts still compare.
    Hashes are stable for a given Polars version (Polars' seeded hash), which is what a run needs.
    """
    lens = word_lists.list.len().to_numpy().astype(np.int64)
    rows = len(lens)
    if rows == 0:
        return np.empty(0, np.uint64), np.empty(0, np.int64)
    flat = word_lists.explode().hash(seed=_SEED).to_numpy()
    lens = np.maximum(lens, 1)  # an empty list explodes to one null, which hashes like any token
    starts = np.concatenate([[0], np.cumsum(lens)[:-1]])
    long = lens >= n
    counts = np.where(long, lens - n + 1, 1)
    total = int(counts.sum())
    out = np.empty(total, np.uint64)
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])
    if long.any() and len(flat) >= n:
        m = len(flat) - n + 1
        comb = flat[:m].copy()
        for k in range(1, n):
            comb *= _P
            comb += flat[k : m + k]
        c = counts[long]
        rid = np.repeat(np.nonzero(long)[0], c)
        pos_in_row = np.arange(len(rid)) - np.repeat(np.concatenate([[0], np.cumsum(c)[:-1]]), c)
        out_pos = offsets[rid] + pos_in_row
        out[out_pos] = comb[starts[rid] + pos_in_row]
    if (~long).any():
        short = np.nonzero(~long)[0]
        joined = word_lists.gather(short).list.join(" ").hash(seed=_SEED + 1).to_numpy()
        out[offsets[short]] = joined
    return out, counts


def duplicated_share(hashes: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Per row, the share of its items (n-gram hashes) that occur more than once in that row."""
    rows = len(counts)
    if rows == 0:
        return np.empty(0)
    if rows >= 1 << 24:
        raise ValueError("at most 16M rows per call")
    # Row number in the top 24 bits, 40 bits of hash below: one plain sort groups items by row, then value.
    rid = np.repeat(np.arange(rows, dtype=np.uint64), counts)
    key = np.sort((rid << np.uint64(40)) | (hashes >> np.uint64(24)))
    same = key[1:] == key[:-1]
    dup = np.zeros(len(key), bool)
    dup[1:] |= same
    dup[:-1] |= same
    return np.bincount((key >> np.uint64(40)).astype(np.int64), weights=dup, minlength=rows) / np.maximum(
        counts, 1
    )


_CODE = re.compile(r"```.*?(?:```|\Z)|~~~.*?(?:~~~|\Z)|`[^`\n]*`", re.S)
# A single-quoted span may hold apostrophes between letters ('I'm Llama, trained by Meta').
_QUOTED = re.compile(
    r'"[^"\n]{0,300}"|“[^”\n]{0,300}”|«[^»\n]{0,300}»|„[^“”\n]{0,300}[“”]|「[^」\n]{0,300}」|『[^』\n]{0,300}』'
    r"|(?<![\w])'(?:[^'\n]|(?<=\w)'(?=\w)){1,300}?'(?![\w])|(?<![\w])‘(?:[^’\n]|(?<=\w)’(?=\w)){1,300}?’(?![\w])"
)
# Lines a script character speaks ("ROBOT: ...") and transcript turns ("assistant> ...", "bot> ...").
_SPOKEN_LINE = re.compile(
    r"^[ \t]*[A-Z][A-Z0-9 .'-]{1,30}:[ \t].*$|(?<![\w</-])[A-Za-z][\w-]{0,20}>[ \t].*$", re.M
)
# A JSON field ("name": "value") is data the text states, not a quotation: its quotes are dropped.
_JSON_FIELD = re.compile(r'"([\w .-]{1,40})"\s*:\s*"([^"\n]{0,200})"')


def unquoted(text: str) -> str:
    """The text without what it quotes or shows rather than says: code (``` blocks, `inline`), quoted
    spans ("...", '...', “...”, «...», 「...」), script lines spoken by an ALL-CAPS character and transcript
    turns (``bot> ...``). JSON fields outside code are kept, unquoted.

    >>> unquoted('The bot replied, "I am ChatGPT." Run `rm -rf x`.\\nROBOT: I am Gemini.\\nDone.')
    'The bot replied, "" Run ``.\\n\\nDone.'
    >>> unquoted("Avoid 'I'm GPT-4 by OpenAI' in data. {\\"model\\": \\"gpt-4\\"}")
    "Avoid '' in data. {model: gpt-4}"
    """
    text = _CODE.sub(lambda m: "\n" if m.group(0).startswith(("```", "~~~")) else "``", text)
    text = _SPOKEN_LINE.sub("", text)
    text = _JSON_FIELD.sub(r"\1: \2", text)
    return _QUOTED.sub(lambda m: m.group(0)[0] + m.group(0)[-1], text)


_LEET = str.maketrans("0134579@$!", "oieastgasi")
_LEET_WORD = re.compile(
    r"\b(?=\w*[A-Za-z])(?=\w*\d)\w+\b|(?<=[A-Za-z])[@$!]+(?=[A-Za-z])|(?<=[A-Za-z])\$+|(?<!\S)@(?!\S)"
)
_DOTTED = re.compile(r"\b[A-Za-z](?:\.[A-Za-z]){2,}\b\.?")
_STRETCHED = re.compile(r"([A-Za-z])\1{2,}")
# a quick search that every match of _LEET_WORD needs (a letter next to a digit or symbol, a lone @): speed only
_LEET_NEEDS = re.compile(r"[A-Za-z][\d@$!]|\d[A-Za-z]|(?<!\S)@(?!\S)")


def unleet(text: str) -> str:
    """Digits and symbols read as the letters they stand for in words that mix them ("st00pid", "b!tch",
    "@ l0ser"), letters spelled with dots joined ("k.y.s." -> "kys") and a letter stretched to three or
    more read once ("sooo dumbbb" -> "so dumb"); other text is left alone.

    >>> unleet("u r @ st00pid 1diot, k.y.s. Call 555-0199 or see GPT-4.")
    'u r a stoopid idiot, kys Call 555-0199 or see GPT-4.'
    """
    text = _DOTTED.sub(lambda m: m.group(0).replace(".", ""), text)
    text = _STRETCHED.sub(r"\1", text)
    if not _LEET_NEEDS.search(text):
        return text
    return _LEET_WORD.sub(lambda m: m.group(0).translate(_LEET), text)


def short(text: str, n: int = 80) -> str:
    """The text on one line, cut to `n` characters with an ellipsis: for quoting it in a verdict's detail."""
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"

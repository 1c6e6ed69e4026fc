"""`quality`: structure, length, repetition and encoding checks on conversations.

Checks run in order and a row is dropped for the first that fails:

| reason | when |
|---|---|
| roles_not_alternating | not: system first (optional), a user message, then turns that run from one user message to the next (the assistant may send several messages, tool results follow calls) |
| tool_result_without_call / unanswered_tool_call | a tool result that answers no open call; a call left unanswered before the next message |
| invalid_tool_arguments / undeclared_tool | call arguments that are not a JSON object; a call to a function the row's `tools` does not declare |
| wrong_final_turn | the last turn is not `final_turn` (assistant) for conversations, user for prompts |
| empty_turn | a turn with no visible text (an assistant message that makes tool calls may have none) |
| too_short / too_long | last response under `min_response_words`, conversation over `max_words` |
| repetitive_lines / repetitive_ngrams | Gopher-style repetition in assistant text (lines first: the more specific) |
| garbled_text | control characters, U+FFFD or mojibake over `max_garbled_share` |

>>> from curate.pipeline import to_frame
>>> row = {"id": "1", "_kind": "conversation", "messages": [
...     {"role": "user", "content": "Hi"}, {"role": "user", "content": "Hello?"}]}
>>> QualityFilter().verdict(to_frame([row]))["reason"].to_list()
['roles_not_alternating']
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import orjson
import polars as pl

from curate.pipeline import Filter, content_text
from curate.text import duplicated_share, word_ngram_hashes, words
from curate.turns import call_problem, turn_problem
from rules import load_rules

_RULES = load_rules("quality.yaml")
GARBLED = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\x80-\x9f\ufffd]|Ã[\x80-\xbf]|â€[\x80-\xbf™œ]"


def _rule(key: str, help: str):
    return field(default=_RULES[key], metadata={"help": f"{help} (rules/quality.yaml)"})


@dataclass
class QualityFilter(Filter):
    name = "quality"
    help = "Structure, length, repetition and encoding checks (Gopher-style repetition)."

    final_turn: str = _rule("final_turn", "role the conversation must end with: assistant, user or any")
    min_response_words: int = _rule("min_response_words", "minimum words in the last assistant turn")
    max_words: int = _rule("max_words", "maximum words in the whole conversation")
    repetition_min_words: int = _rule(
        "repetition_min_words", "assistant texts shorter than this skip repetition checks"
    )
    max_duplicate_ngram_share: float = _rule(
        "max_duplicate_ngram_share", "max share of repeated word n-grams"
    )
    duplicate_ngram_size: int = _rule("duplicate_ngram_size", "n of the word n-grams")
    max_duplicate_line_share: float = _rule("max_duplicate_line_share", "max share of repeated lines")
    duplicate_line_min_chars: int = _rule(
        "duplicate_line_min_chars", "lines shorter than this are not counted"
    )
    max_garbled_share: float = _rule(
        "max_garbled_share", "max share of control/replacement/mojibake characters"
    )

    def __post_init__(self):
        if self.final_turn not in ("assistant", "user", "any"):
            raise ValueError(f"final_turn must be assistant, user or any, not {self.final_turn!r}")

    def _structure(self, frame: pl.DataFrame, i: int):
        """The first structural fault of row i: roles and tool use (`curate.turns`)."""
        tools = frame["tools"][i]
        tools = None if tools is None else tools.to_list()
        found = turn_problem(_with_calls(frame["messages"][i].to_list()), tools=tools)
        rejected = frame["rejected"][i]
        for j, m in enumerate(_with_calls(None if rejected is None else rejected.to_list())):
            found = found or call_problem(m, j, tools, where=lambda k: f"rejected turn {k}")
        return found

    def verdict(self, frame: pl.DataFrame) -> pl.DataFrame:
        n = frame.height
        el = pl.element()
        roles = frame["messages"].list.eval(el.struct.field("role")).list.join(",")
        is_text = (frame["kind"] == "text").to_numpy()
        # Strict alternation without tools is the common case, decided in Polars; the rest is read turn by turn.
        plain = roles.str.contains(r"^(system,)?user(,assistant,user)*(,assistant)?$") & ~(
            frame["tools"].is_not_null()
            | _any_calls(frame["messages"])
            | _any_calls(frame["rejected"])
            | roles.str.contains("tool")
        )
        structure = {
            int(i): self._structure(frame, int(i)) for i in np.nonzero(~plain.to_numpy() & ~is_text)[0]
        }
        final_role = frame["messages"].list.last().struct.field("role")
        expected = pl.Series(
            np.where(
                frame["kind"].to_numpy() == "prompt",
                "user",
                np.where(is_text | (self.final_turn == "any"), "any", self.final_turn),
            )
        )
        final_ok = (expected == "any") | (final_role == expected)
        blank = el.struct.field("content").str.strip_chars().str.len_chars() == 0
        # An assistant message that only makes tool calls has no text, and needs none.
        contents = frame["messages"].list.eval(blank & el.struct.field("tool_calls").is_null())
        rej_empty = (
            frame["rejected"]
            .list.eval(blank & el.struct.field("tool_calls").is_null())
            .list.any()
            .fill_null(False)
        )
        empty = contents.list.any().fill_null(False) | rej_empty

        texts = frame.select(
            all=content_text("messages", sep=" "),
            assistant=content_text("messages", roles=["assistant"]),
            # a final tool call counts as the response
            last=pl.col("messages")
            .list.eval(
                pl.element().filter(pl.element().struct.field("role") == "assistant").struct.field("content")
                + " "
                + pl.element()
                .filter(pl.element().struct.field("role") == "assistant")
                .struct.field("tool_calls")
                .fill_null("")
            )
            .list.last()
            .fill_null(""),
        )
        n_words = words(texts["all"]).list.len()
        last_words = words(texts["last"]).list.len()
        has_response = frame["kind"] != "prompt"

        asst = texts["assistant"]
        asst_words = words(asst)
        check = asst_words.list.len().to_numpy() >= self.repetition_min_words
        ngram_share = np.zeros(n)
        line_share = np.zeros(n)
        if check.any():
            idx = np.nonzero(check)[0]
            sub = asst.gather(idx)
            h, counts = word_ngram_hashes(asst_words.gather(idx), self.duplicate_ngram_size)
            ngram_share[idx] = duplicated_share(h, counts)
            line_share[idx] = _duplicate_line_share(sub, self.duplicate_line_min_chars)
        all_chars = texts["all"].str.len_chars().cast(pl.Float64)
        garbled = (
            texts["all"].str.count_matches(GARBLED).cast(pl.Float64) / all_chars.clip(lower_bound=1)
        ).to_numpy()

        reasons: list[str | None] = [None] * n
        details: list[str | None] = [None] * n
        fin = final_ok.to_numpy()
        emp = empty.to_numpy()
        nw = n_words.to_numpy()
        lw = last_words.to_numpy()
        hr = has_response.to_numpy()
        for i in range(n):
            if structure.get(i) is not None:
                reasons[i], details[i] = structure[i].reason, structure[i].detail
            elif not fin[i]:
                reasons[i] = "wrong_final_turn"
                details[i] = f"last turn is {final_role[i]!r}, expected {expected[i]!r}"
            elif emp[i]:
                r = frame.row(i, named=True)
                reasons[i], details[i] = "empty_turn", _empty_detail(r["messages"], r["rejected"])
            elif hr[i] and lw[i] < self.min_response_words:
                reasons[i] = "too_short"
                details[i] = f"last response has {lw[i]} words (min {self.min_response_words})"
            elif nw[i] > self.max_words:
                reasons[i] = "too_long"
                details[i] = f"{nw[i]} words (max {self.max_words})"
            elif line_share[i] > self.max_duplicate_line_share:
                reasons[i] = "repetitive_lines"
                details[i] = (
                    f"{line_share[i]:.0%} of assistant lines repeat an earlier line "
                    f"(max {self.max_duplicate_line_share:.0%})"
                )
            elif ngram_share[i] > self.max_duplicate_ngram_share:
                reasons[i] = "repetitive_ngrams"
                details[i] = (
                    f"{ngram_share[i]:.0%} of assistant word {self.duplicate_ngram_size}-grams are repeated "
                    f"(max {self.max_duplicate_ngram_share:.0%})"
                )
            elif garbled[i] > self.max_garbled_share:
                reasons[i] = "garbled_text"
                details[i] = (
                    f"{garbled[i]:.1%} of characters are control, U+FFFD or mojibake (max {self.max_garbled_share:.1%})"
                )
        return pl.DataFrame(
            {"reason": reasons, "detail": details}, schema={"reason": pl.String, "detail": pl.String}
        )


def _duplicate_line_share(texts: pl.Series, min_chars: int) -> np.ndarray:
    lines = (
        pl.DataFrame({"text": texts})
        .with_row_index("r")
        .with_columns(line=pl.col("text").str.split("\n"))
        .explode("line")
        .with_columns(pl.col("line").str.strip_chars())
        .filter(pl.col("line").str.len_chars() >= min_chars)
    )
    if lines.height == 0:
        return np.zeros(len(texts))
    per_row = (
        lines.with_columns(dup=~pl.col("line").is_first_distinct().over("r"))
        .group_by("r")
        .agg(share=pl.col("dup").mean())
    )
    out = np.zeros(len(texts))
    out[per_row["r"].to_numpy()] = per_row["share"].to_numpy()
    return out


def _empty_detail(messages, rejected) -> str:
    for j, m in enumerate(messages or []):
        if not m["content"].strip() and m["tool_calls"] is None:
            return f"turn {j} ({m['role']}) is empty"
    for j, m in enumerate(rejected or []):
        if not m["content"].strip() and m["tool_calls"] is None:
            return f"rejected turn {j} ({m['role']}) is empty"
    return "empty turn"


def _any_calls(col: pl.Series) -> pl.Series:
    return col.list.eval(pl.element().struct.field("tool_calls").is_not_null()).list.any().fill_null(False)


def _with_calls(msgs: list[dict] | None) -> list[dict]:
    """Frame messages as rows hold them: `tool_calls` decoded from the frame's JSON text."""
    return [
        {**m, "tool_calls": orjson.loads(m["tool_calls"]) if m["tool_calls"] else None} for m in msgs or ()
    ]

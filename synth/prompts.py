"""What every synth method takes from input rows and gives to the rows it derives: the prompt to answer,
stable ids for derived rows, deterministic draws, and batches.

>>> prompt_of({"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]})
([{'role': 'user', 'content': 'Hi'}], 'Hello')
>>> derived_id("p1", sample_index=0) == derived_id("p1", sample_index=0) != derived_id("p1", sample_index=1)
True
>>> [len(b) for b in batched(range(5), 2)]
[2, 2, 1]
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import orjson
import xxhash


class NotAPrompt(ValueError):
    """The row has no user turn to answer; the message says why (it goes to the ledger)."""


def prompt_of(row: dict, system_prompt: str | None = None) -> tuple[list[dict], str | None]:
    """The messages to answer, and the assistant answer they replace (if the row already had one)."""
    if row.get("_kind") == "preference":
        raise NotAPrompt("a preference row (prompt/chosen/rejected); give prompts or conversations")
    if "messages" not in row:
        raise NotAPrompt(
            f"a {row.get('_kind', 'record')} row, not a conversation; give prompts or conversations"
        )
    # Tool calls and results keep their fields, so a tool-use history reaches the model as it was.
    msgs = [
        {k: m[k] for k in ("role", "content", "tool_calls", "tool_call_id") if m.get(k) is not None}
        | {"content": m["content"]}
        for m in row["messages"]
    ]
    previous = None
    if msgs and msgs[-1]["role"] == "assistant":
        previous = msgs.pop()["content"]
    if not msgs or msgs[-1]["role"] != "user":
        raise NotAPrompt("no user turn to answer at the end of the conversation")
    if system_prompt and msgs[0]["role"] != "system":
        msgs.insert(0, {"role": "system", "content": system_prompt})
    return msgs, previous


def derived_id(parent_id: str, **parts) -> str:
    """Stable id of a row derived from `parent_id` (a sample, a pair, an evolution...): the same parent and
    parts give the same id in every run."""
    return xxhash.xxh3_128_hexdigest(
        orjson.dumps({"parent_id": parent_id, **parts}, option=orjson.OPT_SORT_KEYS)
    )


def sample_id(parent_id: str, sample_index: int) -> str:
    """The id of the `sample_index`-th sample answering `parent_id`."""
    return derived_id(parent_id, sample_index=sample_index)


def stable_fraction(*parts) -> float:
    """A number in [0, 1) fixed by `parts`: deterministic draws that batching and resuming never change."""
    return xxhash.xxh3_64_intdigest(orjson.dumps(list(parts))) / 2**64


def batched(rows: Iterable, size: int) -> Iterator[list]:
    batch: list = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch

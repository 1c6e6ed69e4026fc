"""Row kinds, format adapters, validation and stable ids.

Every row is normalized to TRL's conventions before any step sees it:

- conversation / prompt: ``messages: [{role, content}, ...]``; roles system, user, assistant and tool
  (``ipython``, Llama 3's name for it, is read as ``tool``); assistant messages may carry ``tool_calls``
  and tool results a ``tool_call_id``; the row may declare the functions it can call in ``tools``
- preference: ``prompt: [msg]``, ``chosen: [msg]``, ``rejected: [msg]`` (explicit prompt), optionally
  ``edited`` (edited > chosen > rejected); or a ranking ``prompt``, ``responses: [best, ..., worst]``
- text: ``text: str``, plain text for pre-trained models

Adapters turn alpaca (``instruction/input/output``), sharegpt (``conversations: [{from, value}]``) and
``prompt/response`` rows into ``messages``; the consumed fields are removed and every other column passes
through untouched. A row without ``id`` gets ``xxh3_128`` of the canonical JSON of its content, so the same
row has the same id in every run.

>>> normalize({"instruction": "Add 2 and 2.", "output": "4"})["messages"]
[{'role': 'user', 'content': 'Add 2 and 2.'}, {'role': 'assistant', 'content': '4'}]
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import orjson
import xxhash

from curate.io import InputError, RawLine, iter_lines

ROLES = ("system", "user", "assistant", "tool")
ROLE_ALIASES = {"ipython": "tool"}  # Llama 3 names the tool role ipython
FORMATS = ("auto", "messages", "sharegpt", "alpaca", "prompt-response", "preference", "text", "record")
KINDS = ("conversation", "prompt", "preference", "text", "record")
SHAREGPT_ROLES = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "chatgpt": "assistant",
    "bard": "assistant",
    "bing": "assistant",
    "model": "assistant",
    "system": "system",
    "tool": "tool",
    "ipython": "tool",
}
DEFAULT_MAX_ROW_BYTES = 4 * 1024 * 1024


class RowError(ValueError):
    """A row that does not fit the schema; `field` is the JSON path of the offending value."""

    def __init__(self, field: str | None, message: str):
        super().__init__(message)
        self.field = field
        self.message = message

    def describe(self) -> str:
        return f"field '{self.field}': {self.message}" if self.field else self.message


@dataclass(slots=True)
class InvalidRow:
    source: str
    line: int
    field: str | None
    error: str
    raw: str

    def describe(self) -> str:
        where = f"{self.source}:{self.line}"
        return f"{where}: field '{self.field}': {self.error}" if self.field else f"{where}: {self.error}"

    def as_record(self) -> dict:
        return {
            "source": self.source,
            "line": self.line,
            "field": self.field,
            "error": self.error,
            "raw": self.raw,
        }


def _type_name(v) -> str:
    return (
        "null" if v is None else {dict: "object", list: "array", str: "string"}.get(type(v), type(v).__name__)
    )


def _message(m, path: str, *, role_map: dict | None = None) -> dict:
    if not isinstance(m, dict):
        raise RowError(path, f"expected an object with role and content, got {_type_name(m)}")
    role_key, content_key = ("from", "value") if role_map else ("role", "content")
    if role_key not in m:
        raise RowError(f"{path}.{role_key}", "missing")
    role = m[role_key]
    if not isinstance(role, str):
        raise RowError(f"{path}.{role_key}", f"expected a string, got {_type_name(role)}")
    if role_map is not None:
        if role.lower() not in role_map:
            raise RowError(
                f"{path}.{role_key}", f"unknown role {role!r} (known: {', '.join(sorted(role_map))})"
            )
        role = role_map[role.lower()]
    elif role not in ROLES:
        if role not in ROLE_ALIASES:
            raise RowError(
                f"{path}.{role_key}", f"unknown role {role!r} (expected one of {', '.join(ROLES)}, ipython)"
            )
        role = ROLE_ALIASES[role]
    calls = m.get("tool_calls")
    content = m.get(content_key)
    if content is None and calls and role == "assistant":
        content = ""  # OpenAI writes `content: null` beside tool calls
    elif content_key not in m:
        raise RowError(f"{path}.{content_key}", "missing")
    elif not isinstance(content, str):
        raise RowError(f"{path}.{content_key}", f"expected a string, got {_type_name(content)}")
    if role_map is None and len(m) == 2 and role is m["role"]:
        return m
    out = {"role": role, "content": content}
    # Extra message keys (name, ...) pass through; sharegpt's from/value are consumed.
    out.update({k: v for k, v in m.items() if k not in (role_key, content_key)})
    if calls is not None:
        _tool_calls(calls, f"{path}.tool_calls", role)
    if m.get("tool_call_id") is not None and not isinstance(m["tool_call_id"], str):
        raise RowError(f"{path}.tool_call_id", f"expected a string, got {_type_name(m['tool_call_id'])}")
    return out


CALL_SHAPE = "calls look like {type: function, function: {name, arguments}}"


def _tool_calls(calls, path: str, role: str) -> None:
    """TRL's (OpenAI's) tool-call shape. Whether the arguments parse and the name is declared is `quality`'s
    to judge (a reason in the ledger), not a schema error."""
    if not isinstance(calls, list):
        raise RowError(path, f"expected a list of calls, got {_type_name(calls)}")
    if calls and role != "assistant":
        raise RowError(path, f"only assistant messages make tool calls, not {role}")
    for k, call in enumerate(calls):
        at = f"{path}[{k}]"
        if not isinstance(call, dict):
            raise RowError(at, f"expected an object, got {_type_name(call)} ({CALL_SHAPE})")
        fn = call.get("function")
        if not isinstance(fn, dict):
            raise RowError(f"{at}.function", f"{'missing' if fn is None else 'not an object'} ({CALL_SHAPE})")
        name = fn.get("name")
        if not isinstance(name, str) or not name.strip():
            raise RowError(
                f"{at}.function.name", "missing" if name is None else "expected a non-empty string"
            )
        if "arguments" not in fn:
            raise RowError(f"{at}.function.arguments", "missing (use {} for a call without arguments)")
        if not isinstance(fn["arguments"], dict | str):
            raise RowError(
                f"{at}.function.arguments",
                f"expected a JSON object or a string holding one, got {_type_name(fn['arguments'])}",
            )
        if call.get("id") is not None and not isinstance(call["id"], str):
            raise RowError(f"{at}.id", f"expected a string, got {_type_name(call['id'])}")


def _tools(value) -> list[dict]:
    """A row's `tools`: JSON-schema function definitions, as `apply_chat_template(tools=...)` takes them. A
    string holding that list (how datasets often store it) is read as the list."""
    if isinstance(value, str):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError as e:
            raise RowError("tools", f"a string that is not JSON ({e.msg})") from None
    if not isinstance(value, list):
        raise RowError("tools", f"expected a list of function definitions, got {_type_name(value)}")
    for k, tool in enumerate(value):
        if not isinstance(tool, dict):
            raise RowError(f"tools[{k}]", f"expected an object, got {_type_name(tool)}")
        fn, at = (tool["function"], f"tools[{k}].function") if "function" in tool else (tool, f"tools[{k}]")
        if not isinstance(fn, dict):
            raise RowError(at, f"expected an object, got {_type_name(fn)}")
        if not isinstance(fn.get("name"), str) or not fn["name"].strip():
            raise RowError(
                f"{at}.name", "missing" if fn.get("name") is None else "expected a non-empty string"
            )
    return value


def _messages(value, path: str, *, role_map: dict | None = None, allow_empty: bool = False) -> list[dict]:
    if isinstance(value, str) and not role_map:
        raise RowError(path, "expected a list of {role, content} messages, got a string")
    if not isinstance(value, list):
        raise RowError(path, f"expected a list of messages, got {_type_name(value)}")
    if not value and not allow_empty:
        raise RowError(path, "empty list of messages")
    return [_message(m, f"{path}[{i}]", role_map=role_map) for i, m in enumerate(value)]


def _text(row: dict, key: str, *, required: bool = True) -> str | None:
    if key not in row or row[key] is None:
        if required:
            raise RowError(key, "missing")
        return None
    v = row[key]
    if not isinstance(v, str):
        raise RowError(key, f"expected a string, got {_type_name(v)}")
    return v


def _turns(value, path: str, default_role: str) -> list[dict]:
    """Preference fields accept a string (one turn of `default_role`) or a list of messages."""
    if isinstance(value, str):
        return [{"role": default_role, "content": value}]
    if value is None:
        raise RowError(path, "missing")
    return _messages(value, path)


def _rest(row: dict, consumed: tuple[str, ...]) -> dict:
    return {k: v for k, v in row.items() if k not in consumed and k != "id"}


def _kind_of(msgs: list[dict]) -> str:
    # A prompt has no answer yet. A conversation with answers that ends on a user turn is a conversation
    # (for SFT, a broken one: `quality` says `wrong_final_turn`).
    return "conversation" if any(m["role"] == "assistant" for m in msgs) else "prompt"


def adapt_messages(row: dict) -> tuple[str, dict]:
    if "messages" not in row:
        raise RowError("messages", "missing")
    msgs = _messages(row["messages"], "messages")
    kind = _kind_of(msgs)
    return kind, {"messages": msgs, **_rest(row, ("messages",))}


def adapt_sharegpt(row: dict) -> tuple[str, dict]:
    if "conversations" not in row:
        raise RowError("conversations", "missing")
    msgs = _messages(row["conversations"], "conversations", role_map=SHAREGPT_ROLES)
    if isinstance(row.get("system"), str) and row["system"].strip() and msgs[0]["role"] != "system":
        msgs.insert(0, {"role": "system", "content": row["system"]})
    return _kind_of(msgs), {"messages": msgs, **_rest(row, ("conversations", "system"))}


def adapt_alpaca(row: dict) -> tuple[str, dict]:
    instruction = _text(row, "instruction")
    extra = _text(row, "input", required=False)
    output = _text(row, "output", required=False)
    user = f"{instruction}\n\n{extra}" if extra and extra.strip() else instruction
    msgs = []
    system = _text(row, "system", required=False)
    if system and system.strip():
        msgs.append({"role": "system", "content": system})
    msgs.append({"role": "user", "content": user})
    if output is not None:
        msgs.append({"role": "assistant", "content": output})
    kind = "conversation" if output is not None else "prompt"
    return kind, {"messages": msgs, **_rest(row, ("instruction", "input", "output", "system"))}


def adapt_prompt_response(row: dict) -> tuple[str, dict]:
    prompt = row.get("prompt")
    if isinstance(prompt, list):  # a conversational prompt with a string response
        msgs = _messages(prompt, "prompt")
    else:
        msgs = [{"role": "user", "content": _text(row, "prompt")}]
    response = _text(row, "response", required=False)
    if response is not None:
        msgs.append({"role": "assistant", "content": response})
    kind = "conversation" if response is not None else "prompt"
    return kind, {"messages": msgs, **_rest(row, ("prompt", "response"))}


def adapt_preference(row: dict) -> tuple[str, dict]:
    if "prompt" not in row:
        raise RowError(
            "prompt",
            "missing: preference rows need an explicit prompt (implicit prompts inside chosen/rejected are not accepted)",
        )
    prompt = _turns(row["prompt"], "prompt", "user")
    if "responses" in row:
        return "preference", {
            "prompt": prompt,
            "responses": _ranked(row),
            **_rest(row, ("prompt", "responses")),
        }
    for key in ("chosen", "rejected"):
        if key not in row:
            raise RowError(key, "missing")
    sides = {k: _turns(row[k], k, "assistant") for k in ("chosen", "rejected")}
    if row.get("edited") is not None:  # Llama 3: edited > chosen > rejected
        sides["edited"] = _turns(row["edited"], "edited", "assistant")
    return "preference", {"prompt": prompt, **sides, **_rest(row, ("prompt", *sides))}


def _ranked(row: dict) -> list[list[dict]]:
    responses = row["responses"]
    if "chosen" in row or "rejected" in row:
        raise RowError("responses", "give a ranking (responses) or a pair (chosen/rejected), not both")
    if not isinstance(responses, list):
        raise RowError(
            "responses", f"expected a list of responses ranked best first, got {_type_name(responses)}"
        )
    if len(responses) < 2:
        raise RowError("responses", f"a ranking needs at least 2 responses, got {len(responses)}")
    out = []
    for k, r in enumerate(responses):
        if not isinstance(r, str | list):
            raise RowError(f"responses[{k}]", f"expected a string or a list of messages, got {_type_name(r)}")
        out.append(_turns(r, f"responses[{k}]", "assistant"))
    return out


def adapt_text(row: dict) -> tuple[str, dict]:
    return "text", {"text": _text(row, "text"), **_rest(row, ("text",))}


def adapt_record(row: dict) -> tuple[str, dict]:
    """Any JSON object, as it is: the input of methods that read their own columns (works, profiles)."""
    return "record", {k: v for k, v in row.items() if k != "id"}


ADAPTERS: dict[str, Callable[[dict], tuple[str, dict]]] = {
    "messages": adapt_messages,
    "sharegpt": adapt_sharegpt,
    "alpaca": adapt_alpaca,
    "prompt-response": adapt_prompt_response,
    "preference": adapt_preference,
    "text": adapt_text,
    "record": adapt_record,
}


def detect_format(row: dict) -> str:
    if "messages" in row:
        return "messages"
    if "chosen" in row or "rejected" in row or "responses" in row:
        return "preference"
    if "conversations" in row:
        return "sharegpt"
    if "instruction" in row:
        return "alpaca"
    if "prompt" in row:
        return "prompt-response"
    if "text" in row:
        return "text"
    raise RowError(
        None,
        "no conversation found: expected 'messages', 'conversations' (sharegpt), 'instruction' (alpaca), "
        "'prompt'/'response', 'prompt'/'chosen'/'rejected', 'prompt'/'responses' (a ranking) or 'text'",
    )


def ranking(row: dict) -> list[tuple[str, list[dict]]]:
    """A preference row's responses, best first, each with its field name: `responses` in their order, or
    edited > chosen > rejected (a plain pair is chosen > rejected).

    >>> ranking({"prompt": [], "chosen": ["c"], "rejected": ["r"], "edited": ["e"]})
    [('edited', ['e']), ('chosen', ['c']), ('rejected', ['r'])]
    """
    if "responses" in row:
        return [(f"responses[{k}]", r) for k, r in enumerate(row["responses"])]
    names = ("edited", "chosen", "rejected") if row.get("edited") is not None else ("chosen", "rejected")
    return [(name, row[name]) for name in names]


def turn_fields(row: dict) -> tuple[list[tuple[str, list[dict]]], list[tuple[str, list[dict]]]]:
    """The fields a step frame's `messages` and `rejected` columns are made of, as (field, messages), in order:
    a conversation's messages; a preference row's prompt and best response, then the other responses in rank
    order; a text row's text as one assistant turn (the text the model learns to write)."""
    kind = kind_of(row)
    if kind == "preference":
        ranked = ranking(row)
        return [("prompt", row["prompt"]), ranked[0]], ranked[1:]
    if kind == "text":
        return [("text", [{"role": "assistant", "content": row["text"]}])], []
    return [("messages", row["messages"])], []


def turn_path(field: str, j: int) -> str:
    """Where turn j of a `turn_fields` field lives in the row, as edits and diffs name it."""
    return "text" if field == "text" else f"{field}[{j}].content"


def kind_of(row: dict) -> str:
    """A normalized row's kind: its `_kind`, or (for rows read back from output files) what its fields say."""
    if "_kind" in row:
        return row["_kind"]
    if "chosen" in row or "responses" in row:
        return "preference"
    if "messages" not in row and isinstance(row.get("text"), str):
        return "text"
    return "conversation" if "messages" in row else "record"


def content_of(row: dict, kind: str | None = None) -> dict:
    """The fields that make a row what it is; the id hashes these and nothing else."""
    kind = kind or kind_of(row)
    if kind == "record":  # every column is its content
        return {k: v for k, v in row.items() if not k.startswith("_")}
    if kind == "text":
        return {"text": row["text"]}
    if kind == "preference":
        keys = ("prompt", "responses") if "responses" in row else ("prompt", "chosen", "rejected", "edited")
        out = {
            k: _plain(row[k]) if k != "responses" else [_plain(r) for r in row[k]] for k in keys if row.get(k)
        }
    else:
        out = {"messages": _plain(row["messages"])}
    if row.get("tools"):
        out["tools"] = row["tools"]
    return out


def _plain(msgs: list[dict]) -> list[dict]:
    out = []
    for m in msgs:
        p = {"role": m["role"], "content": m["content"]}
        for key in ("tool_calls", "tool_call_id"):
            if m.get(key):
                p[key] = m[key]
        out.append(p)
    return out


def content_id(row: dict, kind: str | None = None) -> str:
    return xxhash.xxh3_128_hexdigest(orjson.dumps(content_of(row, kind), option=orjson.OPT_SORT_KEYS))


def normalize(row, *, input_format: str = "auto") -> dict:
    """Validate and adapt one decoded row; returns ``{"id", "_kind", <content>, <pass-through>}``."""
    if not isinstance(row, dict):
        hint = (
            " (is this a JSON array file? posttrain reads JSONL: one object per line)"
            if isinstance(row, list)
            else ""
        )
        raise RowError(None, f"expected a JSON object, got {_type_name(row)}{hint}")
    fmt = detect_format(row) if input_format == "auto" else input_format
    kind, out = ADAPTERS[fmt](row)
    if out.get("tools") is not None:
        out["tools"] = _tools(out["tools"])
    rid = row.get("id")
    if rid is None:
        rid = content_id(out, kind)
    elif isinstance(rid, bool) or not isinstance(rid, str | int):
        raise RowError("id", f"expected a string, got {_type_name(rid)}")
    elif isinstance(rid, int):
        rid = str(rid)
    elif not rid.strip():
        raise RowError("id", "empty string")
    return {"id": rid, **out, "_kind": kind}


def decode(rec: RawLine, *, max_row_bytes: int = DEFAULT_MAX_ROW_BYTES):
    if not isinstance(rec.data, bytes):
        return rec.data
    if len(rec.data) > max_row_bytes:
        raise RowError(
            None,
            f"row is {len(rec.data) / 2**20:.1f} MiB, over the limit of {max_row_bytes / 2**20:.1f} MiB (--max-row-bytes)",
        )
    try:
        return orjson.loads(rec.data)
    except orjson.JSONDecodeError as e:
        try:
            rec.data.decode("utf-8")
        except UnicodeDecodeError as u:
            raise RowError(
                None, f"not valid UTF-8 (byte 0x{rec.data[u.start]:02x} at offset {u.start})"
            ) from None
        stripped = rec.data.strip()
        if stripped in (b"[", b"]") or stripped.startswith(b"[{"):
            raise RowError(
                None, "looks like a JSON array; posttrain reads JSONL, one object per line (try: jq -c '.[]')"
            ) from None
        if stripped.startswith(b"{") and not stripped.endswith(b"}"):
            raise RowError(None, f"truncated JSON line ({e.msg})") from None
        raise RowError(None, f"not valid JSON ({e.msg} at column {e.colno})") from None


def id_key(row: dict) -> tuple[int, int]:
    """(xxh3_64 of the id, xxh3_64 of the content), what the duplicate-id check remembers of a row."""
    content = orjson.dumps(content_of(row), option=orjson.OPT_SORT_KEYS)
    return xxhash.xxh3_64_intdigest(row["id"].encode("utf-8", "surrogatepass")), xxhash.xxh3_64_intdigest(
        content
    )


class IdRegistry:
    """The ids a run has read, each with the content it names (two 64-bit hashes, about 120 bytes an id).

    An id names one content: a later row with a known id and other content is a duplicate id, an error
    (invalid with --on-error skip). A later row with the same id and the same content (`content_of`) is the
    same row again, which is dedup's business: it passes, and `exact-dedup` drops it.

    >>> ids = IdRegistry()
    >>> a, b = {"id": "1", "messages": [{"role": "user", "content": "hi"}]}, {"id": "1", "messages": []}
    >>> ids.admit(id_key(a)), ids.admit(id_key(a)), ids.admit(id_key(b))
    (True, True, False)
    """

    def __init__(self):
        self._seen: dict[int, int] = {}

    def admit(self, key: tuple[int, int]) -> bool:
        """Record `key`; False when its id is already known with other content."""
        return self._seen.setdefault(key[0], key[1]) == key[1]

    def admits_all(self, keys: list[tuple[int, int]]) -> bool:
        """Whether `admit` would accept every key, in order; records them only if so."""
        seen, new = self._seen, {}
        for i, c in keys:
            first = seen.get(i)
            if (new.setdefault(i, c) if first is None else first) != c:
                return False
        seen.update(new)
        return True

    def __len__(self) -> int:
        return len(self._seen)


def duplicate_id_error(rid: str) -> RowError:
    return RowError("id", f"duplicate id {rid!r}: an earlier row has this id and different content")


@dataclass
class Reader:
    """Decodes and normalizes input lines; bad rows raise or are collected, per `on_error`.

    Ids are unique across everything one reader reads (see `IdRegistry`). `fingerprints` gets the size and
    xxh3_128 of each input as it is read to its end, for the manifest.
    """

    paths: list
    input_format: str = "auto"
    on_error: str = "fail"  # fail | skip
    max_row_bytes: int = DEFAULT_MAX_ROW_BYTES
    invalid: list[InvalidRow] = field(default_factory=list)
    count: int = 0  # lines read, valid or not
    ids: IdRegistry = field(default_factory=IdRegistry, repr=False)
    fingerprints: list[dict] = field(default_factory=list)

    def __post_init__(self):
        if self.input_format not in FORMATS:
            raise InputError(
                f"unknown --input-format {self.input_format!r} (choose from {', '.join(FORMATS)})"
            )

    def lines(self) -> Iterator[RawLine]:
        """The raw input lines, counted; an empty input raises at the end."""
        per_source: dict[str, int] = {}
        for rec in iter_lines(self.paths, fingerprints=self.fingerprints):
            self.count += 1
            per_source[rec.source] = per_source.get(rec.source, 0) + 1
            yield rec
        # An empty input is always a mistake (wrong path, failed upstream job), even with --on-error skip.
        for src in _sources(self.paths):
            if not per_source.get(src):
                raise InputError(f"{'stdin' if src == '-' else src}: empty input (no rows)")

    def decode_batch(
        self, recs: list[RawLine], *, check_ids: bool = True
    ) -> tuple[list[dict], list[InvalidRow]]:
        """Normalized rows and the invalid lines of a batch (raises InputError with --on-error fail).

        `check_ids=False` leaves the duplicate-id check to the caller (worker processes, which see one batch:
        the main process checks their `id_key`s in input order).
        """
        rows, invalid = [], []
        for rec in recs:
            try:
                row = normalize(decode(rec, max_row_bytes=self.max_row_bytes), input_format=self.input_format)
                if check_ids and not self.ids.admit(id_key(row)):
                    raise duplicate_id_error(row["id"])
                rows.append(row)
            except RowError as e:
                invalid.append(self.set_aside(rec, e))
        return rows, invalid

    def set_aside(self, rec: RawLine, e: RowError) -> InvalidRow:
        """The invalid record of a bad line; with --on-error fail, the one-line error instead."""
        bad = InvalidRow(rec.source, rec.line, e.field, e.message, _raw_text(rec))
        if self.on_error == "fail":
            raise InputError(bad.describe() + " (use --on-error skip to set bad rows aside)") from None
        return bad

    def __iter__(self) -> Iterator[dict]:
        for rec in self.lines():
            rows, invalid = self.decode_batch([rec])
            self.invalid.extend(invalid)
            yield from rows


def _sources(paths: Iterable) -> list[str]:
    from curate.io import resolve_input

    return [str(p) for given in paths for p in resolve_input(given)]


def _raw_text(rec: RawLine) -> str:
    if isinstance(rec.data, dict):
        return orjson.dumps(rec.data, default=str).decode()
    raw = rec.data[:10_000]
    return raw.decode("utf-8", errors="replace") + ("…" if len(rec.data) > 10_000 else "")


def public(row: dict) -> dict:
    """The row as written to output files (without internal keys)."""
    return {k: v for k, v in row.items() if not k.startswith("_")}


def rejected_row(row: dict, reason: str, detail: str | None, *, step: str, **extra) -> dict:
    """A ledger row (`rejected.jsonl`): the row, any `extra` columns, and which step set it aside and why.

    Commands bind their step once: ``_reject = functools.partial(rejected_row, step="synth generate")``.
    """
    return {**row, **extra, "reject_step": step, "reject_reason": reason, "reject_detail": detail}

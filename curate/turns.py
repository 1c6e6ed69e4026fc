"""The structure of a conversation: who may speak when, and tool use. One definition for `curate`'s
`quality` step and `train check`.

A turn runs from one user message to the next. Inside it the assistant may send several messages in a row
(Llama 3: "multiple messages within a single conversational turn"), and a message with `tool_calls` is
followed by the `tool` results that answer its calls, then by more assistant messages:

    system? user (assistant+ tool*)* ... user (assistant ...)

Tool calls have TRL's / OpenAI's shape, ``{"type": "function", "function": {"name", "arguments"}, "id"?}``
with `arguments` a JSON object (or a string holding one); a row may declare the functions it can call in
`tools` (JSON-schema function definitions, ``{"type": "function", "function": {"name", ...}}``).

>>> call = {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}
>>> msgs = [{"role": "user", "content": "Weather in Paris?"},
...         {"role": "assistant", "content": "", "tool_calls": [call]},
...         {"role": "tool", "content": "18 C"},
...         {"role": "assistant", "content": "It is 18 degrees."}]
>>> turn_problem(msgs, tools=["get_weather"]) is None
True
>>> turn_problem(msgs, tools=["search"]).reason
'undeclared_tool'
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass

import orjson

# Reason codes, in the order a conversation is read.
ROLE_ORDER = "roles_not_alternating"
RESULT_WITHOUT_CALL = "tool_result_without_call"
UNANSWERED_CALL = "unanswered_tool_call"
BAD_ARGUMENTS = "invalid_tool_arguments"
UNDECLARED = "undeclared_tool"
TOOL_REASONS = (RESULT_WITHOUT_CALL, UNANSWERED_CALL, BAD_ARGUMENTS, UNDECLARED)


@dataclass(frozen=True, slots=True)
class TurnProblem:
    """The first structural fault of a conversation: its reason code, the message index and a readable detail."""

    reason: str
    index: int
    detail: str


def _turn(j: int) -> str:
    return f"turn {j}"


def tool_names(tools) -> list[str] | None:
    """The function names a row's `tools` declares (None when it declares none)."""
    if not tools:
        return None
    return [(t.get("function") or t)["name"] for t in tools]


def arguments_problem(arguments) -> str | None:
    """Why a call's `arguments` are unusable, or None: a JSON object, or a string that parses as one."""
    if isinstance(arguments, dict):
        return None
    try:
        parsed = orjson.loads(arguments)
    except orjson.JSONDecodeError as e:
        return f"arguments are not valid JSON ({e.msg})"
    if not isinstance(parsed, dict):
        return f"arguments are a JSON {type(parsed).__name__}, not an object"
    return None


def call_problem(msg: dict, j: int, tools: Collection[str] | None, where=_turn) -> TurnProblem | None:
    """The first bad call of one assistant message: arguments that are not a JSON object, or a name the row
    does not declare (checked only when `tools` is given)."""
    for k, call in enumerate(msg.get("tool_calls") or ()):
        fn = call["function"]
        why = arguments_problem(fn.get("arguments"))
        if why:
            return TurnProblem(BAD_ARGUMENTS, j, f"{where(j)} call {k} ({fn['name']}): {why}")
        if tools is not None and fn["name"] not in tools:
            declared = ", ".join(tools) or "none"
            return TurnProblem(
                UNDECLARED, j, f"{where(j)} calls {fn['name']!r}, which `tools` does not declare ({declared})"
            )
    return None


def turn_problem(
    messages: list[dict],
    *,
    tools: Collection[str] | None = None,
    first: str = "user",
    where: Callable[[int], str] = _turn,
) -> TurnProblem | None:
    """The first fault in the order of `messages` (None when the structure is sound).

    `first` is the role the conversation starts with after an optional system message ('assistant' for a
    completion on its own). `where(j)` names message j in details (`turn 3`, `messages[3]`). The last role
    is not checked here: conversations end with an assistant message, prompts with a user message, and the
    caller knows which it wants.
    """
    prev = None
    pending: list[tuple[int, str | None, str]] = []  # open calls: (turn, id, name)
    for j, m in enumerate(messages):
        role = m["role"]
        if role == "system":
            if j == 0 and first == "user":
                continue
            return TurnProblem(
                ROLE_ORDER, j, f"{where(j)} is 'system': a system message is only allowed first"
            )
        if prev is None and role != first:
            return TurnProblem(ROLE_ORDER, j, f"{where(j)} is {role!r}, expected {first!r}")
        if role == "user" and prev == "user":
            return TurnProblem(ROLE_ORDER, j, f"{where(j)} is 'user', expected 'assistant'")
        if role in ("user", "assistant") and pending:
            k, cid, name = pending[0]
            return TurnProblem(
                UNANSWERED_CALL,
                k,
                f"{where(k)} calls {name!r}{f' (id {cid})' if cid else ''} but no tool result answers it "
                f"before {where(j)}",
            )
        if role == "assistant":
            bad = call_problem(m, j, tools, where)
            if bad:
                return bad
            pending = [(j, c.get("id"), c["function"]["name"]) for c in m.get("tool_calls") or ()]
        elif role == "tool":
            cid = m.get("tool_call_id")
            if prev not in ("assistant", "tool"):
                return TurnProblem(
                    RESULT_WITHOUT_CALL, j, f"{where(j)} is a tool result after a {prev} message"
                )
            if not pending:
                return TurnProblem(
                    RESULT_WITHOUT_CALL,
                    j,
                    f"{where(j)} is a tool result, but every call before it is already answered"
                    if prev == "tool"
                    else f"{where(j)} is a tool result, but {where(j - 1)} calls no tool",
                )
            if cid is None or all(p[1] is None for p in pending):
                pending.pop(0)  # results (or calls) without ids answer in order
            else:
                match = next((n for n, p in enumerate(pending) if p[1] == cid), None)
                if match is None:
                    ids = ", ".join(str(p[1]) for p in pending)
                    return TurnProblem(
                        RESULT_WITHOUT_CALL,
                        j,
                        f"{where(j)} answers tool_call_id {cid!r}, which no open call has (open: {ids})",
                    )
                pending.pop(match)
        prev = role
    return None

"""The reports' chat formats in `curate`: tool use (Llama 3.1 `ipython`, OpenAI/TRL calls, several assistant
messages in a turn), ranked preferences (Llama 3's edited > chosen > rejected, `responses` best first) and plain
text rows: read, checked by `quality` with a reason per fault, deduplicated, and written back unchanged."""

from __future__ import annotations

import pytest

from curate.cli import main
from curate.filters.dedup import ExactDedupFilter
from curate.filters.quality import QualityFilter
from curate.pipeline import MemorySink, Pipeline, as_step, to_frame
from curate.schema import RowError, content_id, normalize, ranking
from tests.conftest import SAMPLE, read_jsonl, write_jsonl

WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
ASK = {"role": "user", "content": "Is it warm in Rome?"}
ANSWER = {"role": "assistant", "content": "Yes, it is 27 degrees in Rome."}


def call(name="get_weather", arguments=None, id=None):
    c = {"type": "function", "function": {"name": name, "arguments": arguments or {"city": "Rome"}}}
    return {**c, "id": id} if id else c


def calling(*calls, content=None):
    return {"role": "assistant", "content": content, "tool_calls": list(calls)}


def result(content='{"temperature_c": 27}', id=None, role="tool"):
    return {"role": role, "content": content, **({"tool_call_id": id} if id else {})}


def verdict(*raw):
    rows = [normalize(r) for r in raw]
    return QualityFilter().verdict(to_frame(rows)).rows()


# --- schema ---------------------------------------------------------------------------------------------------


def test_llama_tool_row_is_read_in_trl_shape():
    row = normalize(
        {
            "messages": [ASK, calling(call()), result(role="ipython"), ANSWER],
            "tools": [WEATHER],
            "source": "s",
        }
    )
    assert row["_kind"] == "conversation" and row["source"] == "s"
    assert [m["role"] for m in row["messages"]] == ["user", "assistant", "tool", "assistant"]
    assert row["messages"][1]["content"] == ""  # OpenAI's null content beside calls
    assert row["messages"][1]["tool_calls"] == [call()]
    assert row["tools"] == [WEATHER]


def test_tools_given_as_a_json_string_are_read_as_the_list():
    import json

    row = normalize({"messages": [ASK, ANSWER], "tools": json.dumps([WEATHER])})
    assert row["tools"] == [WEATHER]


@pytest.mark.parametrize(
    "messages, tools, field, message",
    [
        (
            [ASK, {"role": "assistant", "content": None, "tool_calls": {"name": "x"}}],
            None,
            "messages[1].tool_calls",
            "expected a list",
        ),
        (
            [ASK, calling({"name": "get_weather", "arguments": {}})],
            None,
            "messages[1].tool_calls[0].function",
            "missing",
        ),
        (
            [ASK, calling({"function": {"arguments": {}}})],
            None,
            "messages[1].tool_calls[0].function.name",
            "missing",
        ),
        (
            [ASK, calling({"function": {"name": "f"}})],
            None,
            "messages[1].tool_calls[0].function.arguments",
            "missing",
        ),
        (
            [ASK, calling({"function": {"name": "f", "arguments": 3}})],
            None,
            "messages[1].tool_calls[0].function.arguments",
            "got int",
        ),
        (
            [{**ASK, "tool_calls": [call()]}, ANSWER],
            None,
            "messages[0].tool_calls",
            "only assistant messages",
        ),
        ([ASK, ANSWER, {"role": "tool", "content": None}], None, "messages[2].content", "got null"),
        ([ASK, ANSWER], "[not json", "tools", "not JSON"),
        (
            [ASK, ANSWER],
            [{"type": "function", "function": {"description": "x"}}],
            "tools[0].function.name",
            "missing",
        ),
        ([ASK, ANSWER], {"name": "f"}, "tools", "expected a list"),
    ],
)
def test_malformed_tool_fields_name_the_field(messages, tools, field, message):
    row = {"messages": messages, **({"tools": tools} if tools is not None else {})}
    with pytest.raises(RowError) as e:
        normalize(row)
    assert e.value.field == field and message in e.value.message


def test_rows_that_differ_only_in_their_tool_calls_have_different_ids():
    a = {"messages": [ASK, calling(call(arguments={"city": "Rome"})), result(), ANSWER]}
    b = {"messages": [ASK, calling(call(arguments={"city": "Milan"})), result(), ANSWER]}
    assert normalize(a)["id"] != normalize(b)["id"]
    plain = {"messages": [ASK, ANSWER]}  # ids of rows without tool fields are what they always were
    assert normalize(plain)["id"] == content_id(plain) == normalize({**plain, "tools": None})["id"]


def test_ranked_rows_best_first():
    edited = normalize({"prompt": "q", "chosen": "good", "rejected": "bad", "edited": "best", "margin": 0.5})
    assert [name for name, _ in ranking(edited)] == ["edited", "chosen", "rejected"]
    assert edited["margin"] == 0.5
    ranked = normalize({"prompt": "q", "responses": ["a", [{"role": "assistant", "content": "b"}], "c"]})
    assert ranked["_kind"] == "preference"
    assert [msgs[0]["content"] for _, msgs in ranking(ranked)] == ["a", "b", "c"]


@pytest.mark.parametrize(
    "row, field, message",
    [
        ({"prompt": "q", "responses": ["only one"]}, "responses", "at least 2"),
        ({"prompt": "q", "responses": "a"}, "responses", "expected a list"),
        ({"prompt": "q", "responses": ["a", 3]}, "responses[1]", "got int"),
        ({"prompt": "q", "responses": ["a", "b"], "chosen": "a"}, "responses", "not both"),
        ({"responses": ["a", "b"]}, "prompt", "explicit prompt"),
    ],
)
def test_malformed_rankings_name_the_field(row, field, message):
    with pytest.raises(RowError) as e:
        normalize(row)
    assert e.value.field == field and message in e.value.message


def test_text_rows():
    row = normalize({"text": "Once upon a time.", "source": "books"})
    assert row["_kind"] == "text" and row["text"] == "Once upon a time." and row["source"] == "books"
    assert normalize({"text": "x", "prompt": "p"}, input_format="text")["_kind"] == "text"
    with pytest.raises(RowError) as e:
        normalize({"text": 3})
    assert e.value.field == "text"


# --- quality: what matters instead of strict alternation --------------------------------------------------------


@pytest.mark.parametrize(
    "name, messages",
    [
        ("llama ipython, no ids", [ASK, calling(call()), result(role="ipython"), ANSWER]),
        (
            "parallel calls answered by id, in another order",
            [ASK, calling(call(id="a"), call(id="b")), result(id="b"), result(id="a"), ANSWER],
        ),
        ("arguments as a JSON string", [ASK, calling(call(arguments='{"city": "Rome"}')), result(), ANSWER]),
        (
            "several assistant messages in one turn",
            [ASK, {"role": "assistant", "content": "Let me check."}, ANSWER],
        ),
        (
            "text beside the call, then a second turn",
            [
                ASK,
                calling(call(), content="Checking."),
                result(),
                ANSWER,
                {"role": "user", "content": "Thanks"},
                ANSWER,
            ],
        ),
        ("ends with a call", [ASK, calling(call())]),
    ],
)
def test_quality_keeps_sound_tool_use(name, messages):
    assert verdict({"messages": messages, "tools": [WEATHER]}) == [(None, None)], name


@pytest.mark.parametrize(
    "messages, reason, detail",
    [
        (
            [ASK, calling(call("book_flight")), result(), ANSWER],
            "undeclared_tool",
            "turn 1 calls 'book_flight', which `tools` does not declare (get_weather)",
        ),
        (
            [ASK, calling(call(arguments='{"city": ')), result(), ANSWER],
            "invalid_tool_arguments",
            "turn 1 call 0 (get_weather): arguments are not valid JSON",
        ),
        (
            [ASK, calling(call(arguments='["Rome"]')), result(), ANSWER],
            "invalid_tool_arguments",
            "arguments are a JSON list, not an object",
        ),
        ([ASK, result(), ANSWER], "tool_result_without_call", "turn 1 is a tool result after a user message"),
        (
            [ASK, calling(call()), result(), result(), ANSWER],
            "tool_result_without_call",
            "turn 3 is a tool result, but every call before it is already answered",
        ),
        (
            [ASK, calling(call(id="a")), result(id="z"), ANSWER],
            "tool_result_without_call",
            "turn 2 answers tool_call_id 'z', which no open call has (open: a)",
        ),
        (
            [ASK, calling(call(), call(id=None)), result(), ANSWER],
            "unanswered_tool_call",
            "turn 1 calls 'get_weather' but no tool result answers it before turn 3",
        ),
        ([ASK, calling(call()), result()], "wrong_final_turn", "last turn is 'tool', expected 'assistant'"),
        ([ASK, ASK, ANSWER], "roles_not_alternating", "turn 1 is 'user', expected 'assistant'"),
        ([ASK, {"role": "assistant", "content": " "}, ANSWER], "empty_turn", "turn 1 (assistant) is empty"),
    ],
)
def test_quality_rejects_broken_tool_use_with_a_reason(messages, reason, detail):
    ((got, why),) = verdict({"messages": messages, "tools": [WEATHER]})
    assert got == reason and detail in why


def test_without_declared_tools_any_name_is_allowed_but_arguments_still_must_parse():
    assert verdict({"messages": [ASK, calling(call("anything")), result(), ANSWER]}) == [(None, None)]
    ((reason, _),) = verdict({"messages": [ASK, calling(call(arguments="{")), result(), ANSWER]})
    assert reason == "invalid_tool_arguments"


def test_quality_checks_the_calls_of_every_ranked_response():
    bad = calling(call("launch_rocket"))
    ((reason, detail),) = verdict(
        {
            "prompt": [ASK],
            "responses": [[ANSWER], [ANSWER, {"role": "assistant", "content": "Also:"}], [bad]],
            "tools": [WEATHER],
        }
    )
    assert reason == "undeclared_tool" and detail.startswith("rejected turn 2 calls 'launch_rocket'")


def test_text_rows_pass_quality_without_a_chat_structure():
    assert verdict({"text": "A plain paragraph of text for a pre-trained model."}) == [(None, None)]


# --- the runner: ranked and text rows edited and deduplicated like the others -------------------------------------


def test_editor_writes_back_into_the_ranked_response_it_changed():
    import polars as pl

    def shout(frame):
        el = pl.element()
        return frame.with_columns(
            rejected=pl.col("rejected").list.eval(
                el.struct.with_fields(el.struct.field("content").str.to_uppercase())
            )
        )

    row = normalize({"prompt": "q", "responses": ["best", "middle", "worst"]})
    sink = MemorySink()
    Pipeline([as_step(shout, kind="editor")]).run([row], sink)
    assert [r["field"] for r in sink.edit_records] == ["responses[1][0].content", "responses[2][0].content"]
    assert [m[0]["content"] for m in sink.kept_rows[0]["responses"]] == ["best", "MIDDLE", "WORST"]


def test_exact_dedup_on_ranked_and_text_rows():
    rows = [
        normalize({"id": "a", "prompt": "q", "responses": ["x", "y"]}),
        normalize({"id": "b", "prompt": "Q", "responses": ["X", "y"]}),
        normalize({"id": "c", "prompt": "q", "responses": ["y", "x"]}),  # another ranking: not a duplicate
        normalize({"id": "t1", "text": "Same text."}),
        normalize({"id": "t2", "text": "same  text."}),
    ]
    reasons = [r for r, _ in ExactDedupFilter().verdict(to_frame(rows)).rows()]
    assert reasons == [None, "exact_duplicate", None, None, "exact_duplicate"]


# --- curate filter end to end -------------------------------------------------------------------------------


def test_curate_filter_keeps_valid_tool_use_and_rejects_an_undeclared_tool(tmp_path, cli):
    out = tmp_path / "run"
    res = cli(
        main, "filter", SAMPLE / "tool_use.jsonl", "-o", out, "--filters", "quality,exact-dedup", "-j", "1"
    )
    assert res.exit_code == 0, res.output
    assert "input 11 = kept 7 + rejected 4 + invalid 0" in res.output
    rejected = read_jsonl(out / "rejected.jsonl")
    # every planted fault names its reason in `source`
    assert {r["reject_reason"] for r in rejected} == {
        "undeclared_tool",
        "invalid_tool_arguments",
        "tool_result_without_call",
        "unanswered_tool_call",
    }
    assert all(r["source"] == f"planted:quality:{r['reject_reason']}" for r in rejected)
    undeclared = next(r for r in rejected if r["reject_reason"] == "undeclared_tool")
    assert "book_flight" in undeclared["reject_detail"]
    kept = read_jsonl(out / "kept.jsonl")
    src = {r["source"] for r in kept}
    assert {"tools:llama3", "tools:openai", "tools:multi-message", "plain"} <= src
    llama = next(r for r in kept if r["source"] == "tools:llama3")
    assert (
        llama["messages"][2]["role"] == "tool" and llama["messages"][1]["tool_calls"][0]["function"]["name"]
    )
    assert llama["tools"][0]["function"]["name"] == "get_weather"
    openai = next(r for r in kept if r["source"] == "tools:openai")
    assert [m.get("tool_call_id") for m in openai["messages"][3:5]] == ["c0b", "c0a"]


def test_curate_filter_on_rankings_and_text(tmp_path, cli):
    rows = read_jsonl(SAMPLE / "ranked.jsonl")
    data = write_jsonl(tmp_path / "ranked.jsonl", [*rows, rows[0], {"prompt": "q", "responses": ["a", " "]}])
    res = cli(main, "filter", data, "-o", tmp_path / "r", "--filters", "quality,exact-dedup", "-j", "1")
    assert res.exit_code == 0, res.output
    assert f"input {len(rows) + 2} = kept {len(rows)} + rejected 2 + invalid 0" in res.output
    reasons = sorted(r["reject_reason"] for r in read_jsonl(tmp_path / "r" / "rejected.jsonl"))
    assert reasons == ["empty_turn", "exact_duplicate"]
    kept = read_jsonl(tmp_path / "r" / "kept.jsonl")
    assert kept[0]["edited"] and kept[-1]["responses"] and kept[-1]["margin"] == 1.0
    res = cli(
        main,
        "filter",
        SAMPLE / "text.jsonl",
        "-o",
        tmp_path / "t",
        "-j",
        "1",
        "--filters",
        "quality,exact-dedup",
    )
    assert res.exit_code == 0 and "rejected 0" in res.output
    assert all("text" in r for r in read_jsonl(tmp_path / "t" / "kept.jsonl"))

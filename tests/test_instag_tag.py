"""`synth tag`: InsTag tagging driven by scripted backends (malformed JSON included), and the walk-through
tag -> normalize -> select -> why -> stats on sample_data/ through the real CLIs."""

from __future__ import annotations

import json
import re

import orjson
import pytest
from conftest import SAMPLE, read_jsonl, write_jsonl
from synth_fixtures import ChatServer

from curate.cli import main as curate_main
from curate.io import InputError
from synth.backends.scripted import ScriptedBackend
from synth.cli import main as synth_main
from synth.methods.tag import TagConfig, TagPrompts, parse_tags, run_tag

GOOD = '[{"tag": "Math", "explanation": "arithmetic"}, {"tag": "Word problem", "explanation": "a story"}]'


def instruction(req) -> str:
    """The query of the tagging prompt (the first user turn)."""
    first = next(m["content"] for m in req.messages if m["role"] == "user")
    return first.rsplit("Query: ", 1)[1].rsplit("\nAnswer:", 1)[0]


def tag(tmp_path, rows, respond, **options):
    src = write_jsonl(tmp_path / "in.jsonl", rows)
    backend = ScriptedBackend(respond)
    cfg = TagConfig(
        inputs=[str(src)],
        output=str(tmp_path / "run"),
        model="scripted",
        overwrite=True,
        use_cache=False,
        **options,
    )
    return run_tag(cfg, backend=backend), backend, tmp_path / "run"


@pytest.mark.parametrize(
    "answer",
    [
        '```json\n[{"tag": "Math", "explanation": "arithmetic"}, {"tag": "Word problem", "explanation": "a story"},]\n```',
        "[{'tag': 'Math', 'explanation': 'arithmetic'}, {'tag': 'Word problem', 'explanation': 'a story'}]",
        "Sure! Here are the tags:\n" + GOOD + "\nHope this helps.",
        GOOD[:-1] + ', {"tag": "Cal',  # cut off at max_tokens: the complete items are kept
        '[{"tag": "Math", "explanation": "arithmetic"}, "Word problem", {"explanation": "no tag"}, {"tag": "math"}]',
        '{"tag": "Math", "explanation": "arithmetic"}\n{"tag": "Word problem", "explanation": "a story abou',
    ],
    ids=["fence-trailing-comma", "single-quotes", "prose", "truncated", "mixed-items", "cut-off-objects"],
)
def test_malformed_answers_are_repaired_without_a_retry(tmp_path, answer):
    m, backend, run = tag(
        tmp_path,
        [{"id": "r1", "prompt": "Tom has 3 apples and buys 2. How many?", "source": "s"}],
        lambda req, i: answer,
    )
    [row] = read_jsonl(run / "tagged.jsonl")
    assert row["tags"][:2] == ["Math", "Word problem"]
    assert row["tag_explanations"][0] == {"tag": "Math", "explanation": "arithmetic"}
    assert row["source"] == "s" and row["messages"][0]["content"].startswith("Tom has 3 apples")
    assert len(backend.calls) == 1 and m["counts"]["correction_requests"] == 0
    assert m["counts"]["balanced"] and m["counts"]["tagged"] == 1


def test_an_unreadable_answer_gets_a_correction_prompt_and_then_goes_to_the_ledger(tmp_path):
    def respond(req, i):
        text, corrections = instruction(req), sum(m["role"] == "assistant" for m in req.messages)
        if text.startswith("stubborn"):
            return "I would call it maths, mostly."
        if text.startswith("fixable"):
            return GOOD if corrections == 1 else "Tags: math, word problem"  # fixed after one correction
        return GOOD

    rows = [
        {"id": "fixed", "prompt": "fixable question"},
        {"id": "lost", "prompt": "stubborn question"},
        {"id": "ok", "prompt": "plain"},
    ]
    m, backend, run = tag(tmp_path, rows, respond, retries=2)
    assert [r["id"] for r in read_jsonl(run / "tagged.jsonl")] == ["fixed", "ok"]
    [lost] = read_jsonl(run / "rejected.jsonl")
    assert (
        lost["id"] == "lost" and lost["reject_step"] == "tag" and lost["reject_reason"] == "unparseable_tags"
    )
    assert (
        "after 3 answers" in lost["reject_detail"] and lost["tag_output"] == "I would call it maths, mostly."
    )
    # the correction carries the bad answer and why it could not be read
    retry = next(r for r in backend.calls if len(r.messages) > 2 and instruction(r) == "fixable question")
    assert retry.messages[-2] == {"role": "assistant", "content": "Tags: math, word problem"}
    assert "could not be read (no JSON list found" in retry.messages[-1]["content"]
    c = m["counts"]
    assert (c["tagged"], c["rejected"], c["retried_rows"], c["fixed_by_retry"]) == (2, 1, 2, 1)
    assert c["correction_requests"] == 2 + 1 and c["balanced"]  # round 1: fixed and lost; round 2: lost
    assert len(backend.calls) == 3 + 2 + 1 and m["reasons"] == {"unparseable_tags": 1}


def test_backend_failures_and_rows_without_a_user_turn_go_to_the_ledger(tmp_path):
    rows = [
        {"id": "down", "prompt": "server error please"},
        {"id": "mute", "messages": [{"role": "assistant", "content": "Hello."}]},
        {"id": "fine", "prompt": "fine"},
    ]
    m, _, run = tag(tmp_path, rows, lambda req, i: None if "server error" in instruction(req) else GOOD)
    rejected = {r["id"]: r for r in read_jsonl(run / "rejected.jsonl")}
    assert rejected["down"]["reject_reason"] == "tagging_failed"
    assert rejected["mute"]["reject_reason"] == "no_user_turn"
    assert [r["id"] for r in read_jsonl(run / "tagged.jsonl")] == ["fine"]
    assert (
        m["counts"]["balanced"] and m["counts"]["correction_requests"] == 0
    )  # a failed request is not retried here


def test_every_user_turn_is_tagged_and_preference_rows_tag_their_prompt(tmp_path):
    seen = []

    def respond(req, i):
        seen.append(instruction(req))
        return GOOD

    rows = [
        {
            "id": "multi",
            "messages": [
                {"role": "user", "content": "Plan a trip."},
                {"role": "assistant", "content": "Where to?"},
                {"role": "user", "content": "Japan, in spring."},
                {"role": "assistant", "content": "Here is a plan."},
            ],
        },
        {"id": "pref", "prompt": "Write a haiku.", "chosen": "Leaves fall.", "rejected": "No."},
    ]
    m, _, run = tag(tmp_path, rows, respond)
    assert seen[0] == "User turn 1:\nPlan a trip.\n\nUser turn 2:\nJapan, in spring."
    assert seen[1] == "Write a haiku."
    out = read_jsonl(run / "tagged.jsonl")
    assert out[1]["chosen"] == [{"role": "assistant", "content": "Leaves fall."}] and out[1]["tags"] == [
        "Math",
        "Word problem",
    ]


def test_a_second_run_answers_from_the_cache(tmp_path):
    src = write_jsonl(tmp_path / "in.jsonl", [{"prompt": f"question {k}"} for k in range(5)])
    backend = ScriptedBackend(lambda req, i: GOOD)
    for k in range(2):
        cfg = TagConfig(
            inputs=[str(src)],
            output=str(tmp_path / f"run{k}"),
            model="scripted",
            cache=str(tmp_path / "cache.sqlite"),
        )
        m = run_tag(cfg, backend=backend)
    assert len(backend.calls) == 5 and m["llm"]["cache_hits"] == 5
    assert (tmp_path / "run0" / "tagged.jsonl").read_bytes() == (
        tmp_path / "run1" / "tagged.jsonl"
    ).read_bytes()


def test_rules_without_an_instruction_placeholder_are_refused(tmp_path, cli):
    bad = tmp_path / "rules.yaml"
    bad.write_text("prompt: Tag this.\ncorrection: again\n")
    with pytest.raises(Exception, match="no {instruction} placeholder"):
        TagPrompts.load(bad)
    r = cli(
        synth_main, "tag", SAMPLE / "prompts.jsonl", "-o", tmp_path / "run", "--model", "m", "--rules", bad
    )
    assert r.exit_code != 0 and "no {instruction} placeholder" in r.output


def test_parse_tags_refuses_lists_without_tags():
    with pytest.raises(ValueError, match="no {tag, explanation} items"):
        parse_tags('[{"explanation": "only"}, 3]')


# --- the walk-through of the README: synth tag -> curate tags normalize -> curate select -------------

KEYWORDS = [  # (pattern in the instruction, tags the "model" gives: spellings vary as LLM tags do)
    (r"python|function|code|sql|regex|javascript", ["Coding", "coding", "Code generation"]),
    (r"\d", ["Math", "Mathematics", "math problems"]),
    (r"summar", ["Summarization", "summarisation", "text summarization"]),
    (r"poem|story|haiku|write", ["Creative writing", "creative-writing"]),
    (r"translat|french|spanish|german", ["Translation"]),
    (r"explain|why|how|what", ["Explanation", "explanations"]),
]


class TaggingServer(ChatServer):
    """An OpenAI-compatible server that tags by keywords; every seventh answer is broken JSON."""

    def _handle(self, handler, raw):
        payload = json.loads(raw)
        with self._lock:
            self.requests.append(payload)
        msgs = payload["messages"]
        text = msgs[1]["content"].rsplit("Query: ", 1)[1].rsplit("\nAnswer:", 1)[0].lower()
        h = sum(map(ord, text))
        tags = [variants[h % len(variants)] for pattern, variants in KEYWORDS if re.search(pattern, text)]
        answer = json.dumps(
            [{"tag": t, "explanation": f"the user asks for {t.lower()}"} for t in tags or ["Chat"]]
        )
        if h % 7 == 0 and len(msgs) == 2:
            answer = "The tags are: " + ", ".join(tags)  # unreadable: fixed by the correction prompt
        body = {
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}
            ],
            "usage": {"prompt_tokens": 10, "completion_tokens": 10},
        }
        return self._reply(handler, 200, json.dumps(body).encode())


def test_walkthrough_tag_normalize_select_on_sample_data(tmp_path, cli):
    tagged, norm, sel = tmp_path / "tagged", tmp_path / "norm", tmp_path / "sel"
    with TaggingServer() as server:
        r = cli(
            synth_main,
            "tag",
            SAMPLE / "prompts.jsonl",
            SAMPLE / "code.jsonl",
            SAMPLE / "alpaca.jsonl",
            "-o",
            tagged,
            "--backend",
            "openai",
            "--base-url",
            server.url,
            "--model",
            "tagger",
            "--cache",
            tmp_path / "cache.sqlite",
        )
    assert r.exit_code == 0, r.output
    m = orjson.loads((tagged / "manifest.json").read_bytes())
    assert m["counts"]["balanced"] and m["counts"]["fixed_by_retry"] > 0 and m["counts"]["rejected"] == 0
    assert all(p["temperature"] == 0 and p["max_tokens"] == 512 for p in server.requests)  # tagging defaults

    r = cli(curate_main, "tags", "normalize", tagged, "-o", norm, "--set", "frequency.min_alpha=1")
    assert r.exit_code == 0, r.output
    rows = read_jsonl(norm / "tagged.jsonl")
    assert len(rows) == m["counts"]["tagged"]
    canonical = {t for row in rows for t in row["tags"]}
    tag_map = {r["raw"]: r for r in read_jsonl(norm / "tag_map.jsonl")}
    assert set(tag_map) == {t for row in rows for t in row["raw_tags"]}
    expected = {
        "Coding": "coding",
        "coding": "coding",
        "Creative writing": "creative writing",
        "creative-writing": "creative writing",
        "Math": "math",
        "Translation": "translation",
    }
    present = [raw for raw in expected if raw in tag_map]
    assert len(present) >= 3 and all(tag_map[raw]["canonical"] == expected[raw] for raw in present)
    assert len(canonical) < len(tag_map) and all(r["raw_tags"] for r in rows)

    merged = next(r for r in tag_map.values() if r["step"] == "rule")
    r = cli(curate_main, "why", merged["raw"], norm)
    assert r.exit_code == 0 and f"rule: {merged['raw']!r} -> {merged['canonical']!r}" in r.output
    r = cli(curate_main, "why", merged["canonical"], norm)
    assert r.exit_code == 0 and f"{merged['raw']!r} ({merged['rows']} rows), rule:" in r.output

    r = cli(curate_main, "select", norm, "-o", sel, "--n", 20)
    assert r.exit_code == 0, r.output
    sm = orjson.loads((sel / "manifest.json").read_bytes())
    assert sm["counts"]["selected"] == 20 and sm["selection"]["tag_coverage"] == 1.0
    assert sm["selection"]["mean_tags_per_row"] > sm["pool"]["mean_tags_per_row"]
    dropped = read_jsonl(sel / "rejected.jsonl")
    assert len(dropped) == len(rows) - 20 and {d["reject_reason"] for d in dropped} == {"not-selected"}
    r = cli(curate_main, "why", dropped[0]["id"], sel)
    assert "not-selected" in r.output and "instag:" in r.output

    r = cli(curate_main, "stats", sel, "--language-sample", 0)
    assert r.exit_code == 0 and "tags     20 tagged rows" in r.output and "top tags" in r.output


def test_dry_run_plans_the_requests_a_run_sends_and_finds_them_cached(tmp_path):
    from synth.methods.tag import Tag
    from synth.runner import plan_method

    rows = [{"prompt": f"question {k}"} for k in range(4)] + [
        {"messages": [{"role": "system", "content": "x"}]}
    ]
    src = write_jsonl(tmp_path / "in.jsonl", rows)
    cfg = TagConfig(
        inputs=[str(src)], output=str(tmp_path / "run"), model="scripted", cache=str(tmp_path / "c.sqlite")
    )
    before = plan_method(Tag, cfg)
    assert (before["requests"], before["cached"], before["skipped"]) == (4, 0, {"no_user_turn": 1})
    backend = ScriptedBackend(lambda req, i: GOOD)
    backend.name = "hf"  # cache keys name the backend: stand in for the configured one
    run_tag(cfg, backend=backend)
    after = plan_method(Tag, cfg)
    assert (after["cached"], after["to_generate"]) == (4, 0)


def test_library_settings_out_of_range_are_user_errors(tmp_path):
    src = write_jsonl(tmp_path / "in.jsonl", [{"prompt": "hi"}])
    cfg = TagConfig(inputs=[str(src)], output=str(tmp_path / "run"), model="m", retries=-1, use_cache=False)
    with pytest.raises(InputError, match="--retries must be at least 0, got -1"):
        run_tag(cfg, backend=ScriptedBackend(lambda req, i: GOOD))
    assert not (tmp_path / "run").exists()

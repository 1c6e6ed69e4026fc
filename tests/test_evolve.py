"""`synth evolve`: operations, each elimination rule, lineage through `curate why`, determinism, the CLI.

The LLM is a scripted backend that tells the three kinds of request apart (an evolution prompt, the judge's
question, an answer to an evolved instruction), so each test says exactly what the model "answers".
"""

from __future__ import annotations

import collections

import orjson
import pytest
import yaml
from click.testing import CliRunner
from conftest import SAMPLE, read_jsonl, write_jsonl

import synth.methods.evolve as evolve_lib
import synth.runner as run_lib
from curate.cli import main as curate_main
from rules import fill, rules_path
from synth.backends.scripted import ScriptedBackend
from synth.cli import main as synth_main
from synth.methods.evolve import (
    Candidate,
    EvolveConfig,
    EvolveRules,
    TooLongInstruction,
    evolved_id,
    parse_judgement,
    pick_operation,
    run_evolve,
)

EVOLUTION_PROMPTS = ("I want you to act as a Prompt", "You are an instruction rewriter")


def given(prompt: str) -> str:
    """The instruction inside an evolution prompt (depth and breadth templates, or the tree template)."""
    if "#The Given Prompt#:\n" in prompt:
        return prompt.split("#The Given Prompt#:\n", 1)[1].rsplit("\n\n#", 1)[0]
    return prompt.rsplit("Instruction:\n", 1)[1].strip()


def scripted(evolve=None, judge="Not Equal", answer="Photosynthesis turns light, water and CO2 into sugar."):
    """`evolve(instruction, sample_index)`, `judge(prompt)` and `answer(messages)` may be texts or functions;
    None makes that request fail."""

    def respond(req, i):
        text = req.messages[-1]["content"]
        if "Your Judgement" in text:
            return judge(text) if callable(judge) else judge
        if text.startswith(EVOLUTION_PROMPTS):
            if evolve is None:
                return given(text) + " Answer in exactly three bullet points."
            return evolve(given(text), i) if callable(evolve) else evolve
        return answer(req.messages) if callable(answer) else answer

    return ScriptedBackend(respond)


def evolve_once(tmp_path, *, rows=None, backend=None, **cfg):
    src = write_jsonl(
        tmp_path / "in.jsonl", rows or [{"id": "p1", "prompt": "Explain how photosynthesis works."}]
    )
    settings = {"operations": ["add_constraints"], "use_cache": False, "overwrite": True, **cfg}
    m = run_evolve(
        EvolveConfig(inputs=[str(src)], output=str(tmp_path / "run"), model="scripted", **settings),
        backend=backend or scripted(),
    )
    run = tmp_path / "run"
    return read_jsonl(run / "evolved.jsonl"), read_jsonl(run / "rejected.jsonl"), m


@pytest.mark.parametrize(
    "script, answer, reason, detail",
    [
        ({"evolve": "  \n"}, False, "empty", "no instruction"),
        (
            {"evolve": "Explain photosynthesis " + "in great detail " * 400},
            False,
            "too_long",
            "over --max-chars 4000",
        ),
        ({"evolve": "explain how   Photosynthesis works."}, False, "unchanged", "same text"),
        (
            {"evolve": "#Rewritten Prompt#: Explain photosynthesis in C4 plants."},
            False,
            "copies_template",
            "'#Rewritten Prompt#'",
        ),
        (
            {"evolve": "Explain photosynthesis, as in the given prompt, for C4 plants."},
            False,
            "copies_template",
            "'given prompt'",
        ),
        (
            {"evolve": "Here is the rewritten version: explain photosynthesis in C4 plants."},
            False,
            "copies_template",
            "'rewritten'",
        ),
        ({"judge": "Equal"}, False, "no_information_gain", "equal to its parent: 'Equal'"),
        ({"judge": "Hmm, hard to say."}, False, "judge_unclear", "neither equal nor not equal"),
        (
            {"answer": "I'm sorry, but I cannot answer a question with so many bullet points."},
            True,
            "refusal_answer",
            "'sorry' in a 13-word answer (under 80)",
        ),
        (
            {"answer": "Well, it is what it is, and that is that!"},
            True,
            "stopword_answer",
            "only punctuation",
        ),
        ({"answer": " ... !? "}, True, "stopword_answer", "only punctuation"),
        ({"evolve": lambda text, i: None}, False, "evolution_failed", "scripted failure"),
        ({"judge": None}, False, "judge_failed", "scripted failure"),
        ({"answer": None}, True, "answer_failed", "scripted failure"),
    ],
)
def test_each_elimination_rule_rejects_with_its_own_reason(tmp_path, script, answer, reason, detail):
    kw = {"evolve": lambda text, i: text + " Answer in exactly three bullet points.", **script}
    evolved, rejected, m = evolve_once(tmp_path, backend=scripted(**kw), answer=answer)
    assert evolved == []
    [row] = rejected
    assert (row["reject_step"], row["reject_reason"]) == ("evolve", reason)
    assert detail in row["reject_detail"]
    assert row["parent_id"] == "p1" and row["evolution"] == {"operation": "add_constraints", "round": 1}
    assert m["rounds"][0]["rejected"] == {reason: 1} and m["counts"]["balanced"]


def test_survivors_pass_every_rule_and_long_apologies_are_not_refusals(tmp_path):
    long_apology = (
        "Sorry for the long answer. " + "Light drives the splitting of water in the thylakoids. " * 10
    )
    evolved, rejected, m = evolve_once(tmp_path, backend=scripted(answer=long_apology), answer=True)
    assert rejected == []
    [row] = evolved
    assert row["messages"] == [
        {
            "role": "user",
            "content": "Explain how photosynthesis works. Answer in exactly three bullet points.",
        },
        {"role": "assistant", "content": long_apology},
    ]
    assert row["model"] == "scripted" and row["answer_model"] == "scripted"


def test_too_long_also_catches_an_evolution_cut_off_at_max_tokens():
    rule = TooLongInstruction(max_chars=100, max_tokens=64)
    op = EvolveRules.load().operations[0]
    c = Candidate({"id": "p"}, [], "Hi.", op, 1, 0, text="Say hi to", finish_reason="length")
    assert rule.check(c) == "cut off at --max-tokens 64"
    c.finish_reason = "stop"
    assert rule.check(c) is None


@pytest.mark.parametrize(
    "text, equal",
    [
        ("Equal", True),
        ("Not Equal", False),
        ("not equal.", False),
        ("They are NOT  equal", False),
        ("Your Judgement: Not-Equal", False),
        ("Unequal", False),
        ("equal.", True),
        ("Judgement: Equal", True),
        ("They differ.", None),
        ("", None),
        ("Equality", None),
    ],
)
def test_the_judge_is_parsed_not_equal_before_equal(text, equal):
    assert parse_judgement(text) is equal


def test_no_judge_skips_the_information_gain_check(tmp_path):
    evolved, rejected, m = evolve_once(tmp_path, backend=scripted(judge="Equal"), judge=False)
    assert len(evolved) == 1 and rejected == []
    assert "no_information_gain" not in [e["name"] for e in m["rules"]["eliminations"]]


def test_lineage_over_two_rounds_and_curate_why_follows_it(tmp_path):
    rows = [{"id": "a", "prompt": "Why is the sky blue?"}, {"id": "b", "prompt": "Name a prime number."}]
    backend = scripted(evolve=lambda text, i: f"{text} Then give example {i}.")
    evolved, rejected, m = evolve_once(
        tmp_path, rows=rows, rounds=2, n_per_prompt=2, operations=[], backend=backend
    )
    assert len(evolved) == 4 + 8 and len(rejected) == 0
    assert not [p.name for p in (tmp_path / "run").iterdir() if p.name.startswith(".")]  # spools removed
    by_id = {r["id"]: r for r in evolved}
    for row in evolved:
        assert set(row) >= {"parent_id", "root_id", "evolution"}
        assert row["root_id"] in ("a", "b")
        if row["evolution"]["round"] == 1:
            assert row["parent_id"] == row["root_id"]
        else:
            parent = by_id[row["parent_id"]]
            assert parent["evolution"]["round"] == 1 and parent["root_id"] == row["root_id"]
            assert row["messages"][-1]["content"].startswith(parent["messages"][-1]["content"])
    deep = next(r for r in evolved if r["evolution"]["round"] == 2)
    parent = by_id[deep["parent_id"]]
    out = CliRunner().invoke(curate_main, ["why", deep["id"], str(tmp_path / "run")])
    assert out.exit_code == 0, out.output
    assert f"evolution: {deep['evolution']['operation']}, round 2, root {deep['root_id']}" in out.output
    assert f"parent: {parent['id']} ({parent['evolution']['operation']}, round 1)" in out.output
    assert f"parent: {deep['root_id']} (not in this run)" in out.output


def test_why_explains_a_rejected_round_two_evolution(tmp_path):
    judge = lambda text: "Equal" if text.count("three bullet points") == 3 else "Not Equal"  # noqa: E731
    evolved, rejected, m = evolve_once(tmp_path, rounds=2, backend=scripted(judge=judge))
    [r1] = evolved
    [r2] = rejected
    assert r2["reject_reason"] == "no_information_gain" and r2["parent_id"] == r1["id"]
    assert r2["judgement"] == "Equal"
    out = CliRunner().invoke(curate_main, ["why", r2["id"], str(tmp_path / "run")])
    assert "REJECTED" in out.output and "reason: no_information_gain" in out.output
    assert f"parent: {r1['id']} (add_constraints, round 1)" in out.output


def test_evolution_is_deterministic_whatever_the_batch_size(tmp_path):
    rows = [{"prompt": f"Describe the number {k} in one sentence."} for k in range(12)]
    runs = []
    for name, batch_size in (("a", 64), ("b", 64), ("c", 1)):
        d = tmp_path / name
        d.mkdir()
        evolve_once(d, rows=rows, rounds=2, operations=[], seed=7, batch_size=batch_size)
        runs.append(((d / "run" / "evolved.jsonl").read_bytes(), (d / "run" / "rejected.jsonl").read_bytes()))
    assert runs[0] == runs[1] == runs[2]
    d = tmp_path / "other-seed"
    d.mkdir()
    evolve_once(d, rows=rows, rounds=2, operations=[], seed=8)
    ops = [
        [r["evolution"]["operation"] for r in read_jsonl(p / "run" / "evolved.jsonl")]
        for p in (tmp_path / "a", d)
    ]
    assert ops[0] != ops[1]
    assert len(set(ops[0])) > 2  # the draw spreads over the operations


def test_operations_are_drawn_by_weight(tmp_path):
    data = yaml.safe_load(rules_path("evolve.yaml").read_text())
    for name, spec in data["operations"].items():
        spec["weight"] = {"deepen": 1, "in_breadth": 3}.get(name, 0)
    custom = tmp_path / "my-evolve.yaml"
    custom.write_text(yaml.safe_dump(data))
    ops = EvolveRules.load(str(custom)).operations
    drawn = collections.Counter(
        pick_operation(ops, seed=0, parent_id=str(k), index=0).name for k in range(2000)
    )
    assert set(drawn) == {"deepen", "in_breadth"}
    assert 0.2 < drawn["deepen"] / 2000 < 0.3


def test_n_per_prompt_asks_once_per_operation_with_n_samples(tmp_path):
    backend = scripted(evolve=lambda text, i: f"{text} Give {i + 2} examples.")
    evolved, rejected, m = evolve_once(tmp_path, backend=backend, n_per_prompt=3, operations=["deepen"])
    assert [r["messages"][-1]["content"] for r in evolved] == [
        f"Explain how photosynthesis works. Give {k} examples." for k in (2, 3, 4)
    ]
    assert len({r["id"] for r in evolved}) == 3 and evolved[1]["id"] == evolved_id("p1", 1)
    evolutions = [c for c in backend.calls if c.messages[-1]["content"].startswith(EVOLUTION_PROMPTS)]
    assert [c.n for c in evolutions] == [3]


def test_manifest_counts_survivors_per_operation_and_round_and_length_growth(tmp_path):
    rows = [{"prompt": "Name three rivers in Europe."}, {"prompt": "Sort these numbers: 3, 1, 2."}]
    backend = scripted(
        evolve=lambda text, i: "" if "Sort" in text else text + " Add their lengths in kilometres."
    )
    _, _, m = evolve_once(tmp_path, rows=rows, rounds=2, backend=backend)
    r1, r2 = m["rounds"]
    assert (r1["parents"], r1["candidates"], r1["survivors"], r1["rejected"]) == (2, 2, 1, {"empty": 1})
    assert r1["survivors_by_operation"] == {"add_constraints": 1}
    assert r1["length"]["parent_words"] == 5 and r1["length"]["words"] == 10 and r1["length"]["growth"] == 2.0
    assert (r2["parents"], r2["survivors"], r2["length"]["growth"]) == (1, 1, 1.5)
    assert m["operations"]["add_constraints"] == {
        "weight": 1.0,
        "candidates": 3,
        "survivors": 2,
        "survival_rate": 0.667,
    }
    assert m["counts"] | {"failed_requests": 0} == {
        "input": 2,
        "invalid": 0,
        "not_a_prompt": 0,
        "prompts": 2,
        "candidates": 3,
        "evolved": 2,
        "rejected_candidates": 1,
        "failed_requests": 0,
        "balanced": True,
    }


def test_rounds_stop_when_nothing_survives(tmp_path):
    evolved, rejected, m = evolve_once(tmp_path, rounds=3, backend=scripted(judge="Equal"))
    assert evolved == [] and len(rejected) == 1
    assert [r["round"] for r in m["rounds"]] == [1]
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [
        "edits.jsonl",
        "evolved.jsonl",
        "invalid.jsonl",
        "manifest.json",
        "rejected.jsonl",
    ]


def test_tree_instruct_adds_n_nodes_and_reads_the_new_instruction_after_its_marker(tmp_path):
    def evolve(text, i):
        return f"Step 1: tree of {text!r}\nStep 2: added nodes\nNew instruction: {text} Compare C3 and C4 plants."

    backend = scripted(evolve=evolve)
    evolved, _, m = evolve_once(tmp_path, backend=backend, operations=["add_nodes"], tree_nodes=5)
    assert (
        evolved[0]["messages"][-1]["content"] == "Explain how photosynthesis works. Compare C3 and C4 plants."
    )
    assert "Add 5 new nodes to the tree" in backend.calls[0].messages[0]["content"]
    assert m["rules"]["tree_nodes"] == 5


def test_breadth_creates_a_new_instruction_and_templates_are_filled_once(tmp_path):
    rows = [{"id": "q", "prompt": 'Format {method} and {instruction} as JSON: {"a": 1}'}]
    backend = scripted(evolve=lambda text, i: "Write a haiku about the {n} moons of Mars.")
    evolved, _, _ = evolve_once(tmp_path, rows=rows, backend=backend, operations=["in_breadth"])
    prompt = backend.calls[0].messages[0]["content"]
    assert '#The Given Prompt#:\nFormat {method} and {instruction} as JSON: {"a": 1}\n' in prompt
    assert evolved[0]["messages"][-1]["content"] == "Write a haiku about the {n} moons of Mars."
    assert fill("{instruction} {other}", instruction="{method}", method="x") == "{method} {other}"


def test_columns_pass_through_but_answer_columns_and_old_answers_do_not(tmp_path):
    rows = [
        {
            "id": "m1",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "What is 2 + 2?"},
                {"role": "assistant", "content": "4"},
            ],
            "source": "math",
            "answer": "4",
            "tests": ["assert f() == 4"],
        }
    ]
    evolved, _, _ = evolve_once(tmp_path, rows=rows)
    [row] = evolved
    assert row["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is 2 + 2? Answer in exactly three bullet points."},
    ]
    assert row["source"] == "math" and "answer" not in row and "tests" not in row


def test_answers_can_come_from_another_backend(tmp_path):
    teacher = ScriptedBackend(lambda req, i: "A detailed answer from the teacher model.", model="teacher")
    src = write_jsonl(tmp_path / "in.jsonl", [{"prompt": "Explain tides."}])
    evolver = scripted(answer=None)  # would fail the answer if it were asked
    m = run_evolve(
        EvolveConfig(
            inputs=[str(src)],
            output=str(tmp_path / "run"),
            model="scripted",
            answer=True,
            answer_model="teacher",
            operations=["deepen"],
            use_cache=False,
        ),
        backend=evolver,
        answer_backend=teacher,
    )
    [row] = read_jsonl(tmp_path / "run" / "evolved.jsonl")
    assert row["messages"][-1] == {
        "role": "assistant",
        "content": "A detailed answer from the teacher model.",
    }
    assert row["answer_model"] == "teacher" and len(teacher.calls) == 1
    assert m["answer_llm"]["requests"] == 1 and m["answer_backend"]["model"] == "teacher"


def test_a_rerun_answers_from_the_cache(tmp_path):
    cache = str(tmp_path / "cache.sqlite")
    first = scripted()
    evolve_once(tmp_path, backend=first, answer=True, use_cache=True, cache=cache, rounds=2)
    again = scripted()
    _, _, m = evolve_once(tmp_path, backend=again, answer=True, use_cache=True, cache=cache, rounds=2)
    assert len(first.calls) == 6 and again.calls == []
    assert m["cache"]["hits"] == 6 and m["counts"]["evolved"] == 2


def test_rows_without_a_user_turn_are_rejected_not_dropped(tmp_path):
    rows = [
        {"id": "ok", "prompt": "Explain tides."},
        {"id": "pref", "prompt": "Hi", "chosen": "Hello!", "rejected": "Go away."},
        {"id": "sys", "messages": [{"role": "system", "content": "Be kind."}]},
    ]
    evolved, rejected, m = evolve_once(tmp_path, rows=rows)
    assert len(evolved) == 1
    assert sorted((r["id"], r["reject_reason"]) for r in rejected) == [
        ("pref", "not_a_prompt"),
        ("sys", "not_a_prompt"),
    ]
    assert m["counts"]["prompts"] == 1 and m["counts"]["not_a_prompt"] == 2 and m["counts"]["balanced"]


def test_a_broken_rules_file_is_a_user_error(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("templates: {depth: 'no placeholder'}\noperations: {x: {template: depth, weight: 1}}\n")
    with pytest.raises(evolve_lib.InputError, match="must name a template with {instruction}"):
        EvolveRules.load(str(bad))
    with pytest.raises(evolve_lib.InputError, match="unknown operation 'nope'"):
        EvolveRules.load(only=["nope"])


# --- the command line ----------------------------------------------------------------------------------------


@pytest.fixture
def fake_backends(monkeypatch):
    """`get_backend` as the command calls it, answering from scripts (one per model name)."""
    made = []

    def get_backend(name, *, model, **options):
        made.append((name, model, options))
        return (
            scripted(answer=f"An answer from {model}, with real content.")
            if model != "echo"
            else ScriptedBackend(lambda req, i: req.messages[-1]["content"])
        )

    monkeypatch.setattr(run_lib, "get_backend", get_backend)
    return made


def run_synth(*args):
    return CliRunner().invoke(synth_main, [str(a) for a in args])


def test_cli_two_rounds_on_sample_prompts(tmp_path, fake_backends):
    out = tmp_path / "evolved"
    r = run_synth(
        "evolve",
        SAMPLE / "prompts.jsonl",
        "-o",
        out,
        "--model",
        "teacher",
        "--rounds",
        2,
        "--seed",
        1,
        "--answer",
        "--no-cache",
        "--progress",
        "--batch-size",
        16,
    )
    assert r.exit_code == 0, r.output
    n = len(read_jsonl(SAMPLE / "prompts.jsonl"))
    assert f"round 1: {n} prompts, {n} evolutions, {n} survived" in r.output
    assert f"round 2: {n} prompts, {n} evolutions, {n} survived" in r.output
    assert "evolve round 2" in r.output and f"{n}/{n}" in r.output  # the progress bar, round by round
    rows = read_jsonl(out / "evolved.jsonl")
    assert len(rows) == 2 * n and all(r["messages"][-1]["role"] == "assistant" for r in rows)
    m = orjson.loads((out / "manifest.json").read_bytes())
    assert sum(m["rounds"][1]["survivors_by_operation"].values()) == n and m["counts"]["balanced"]
    assert [b[:2] for b in fake_backends] == [("hf", "teacher")]
    # the run directory is an input of its own: a third round chains on it
    r = run_synth("evolve", out, "-o", tmp_path / "third", "--model", "teacher", "--no-cache")
    assert r.exit_code == 0, r.output
    assert {row["evolution"]["round"] for row in read_jsonl(tmp_path / "third" / "evolved.jsonl")} == {2, 3}


def test_cli_answer_model_builds_a_second_backend(tmp_path, fake_backends):
    src = write_jsonl(tmp_path / "in.jsonl", [{"prompt": "Explain tides."}])
    r = run_synth(
        "evolve",
        src,
        "-o",
        tmp_path / "run",
        "--model",
        "evolver",
        "--answer",
        "--answer-model",
        "teacher",
        "--answer-backend",
        "openai",
        "--base-url",
        "http://127.0.0.1:9/v1",
        "--no-cache",
    )
    assert r.exit_code == 0, r.output
    assert [b[:2] for b in fake_backends] == [("hf", "evolver"), ("openai", "teacher")]
    assert fake_backends[1][2]["base_url"] == "http://127.0.0.1:9/v1"
    [row] = read_jsonl(tmp_path / "run" / "evolved.jsonl")
    assert row["messages"][-1]["content"].startswith("An answer from teacher")


def test_cli_a_model_that_echoes_its_prompt_is_eliminated_for_copying_the_template(tmp_path, fake_backends):
    src = write_jsonl(tmp_path / "in.jsonl", [{"prompt": "Explain tides."}, {"prompt": "Name a colour."}])
    r = run_synth("evolve", src, "-o", tmp_path / "run", "--model", "echo", "--no-cache", "--rounds", 2)
    assert r.exit_code == 0, r.output
    assert "round 1: 2 prompts, 2 evolutions, 0 survived (rejected: copies_template 2)" in r.output
    assert "round 2" not in r.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["in.jsonl", "--operation", "nope"], "unknown operation 'nope' (choose from add_constraints, "),
        (["in.jsonl", "--answer-model", "x"], "--answer-model needs --answer"),
        (["in.jsonl", "--answer-backend", "openai", "--answer"], "--answer-backend needs --answer-model"),
        (["in.jsonl", "--rules", "missing.yaml"], "no rules file 'missing.yaml'"),
        (["missing.jsonl"], "missing.jsonl: no such file"),
        (["bad.jsonl"], "bad.jsonl:2: "),
        (["in.jsonl", "--rounds", "0"], "Invalid value for '--rounds'"),
    ],
)
def test_cli_user_errors_are_one_line(tmp_path, monkeypatch, fake_backends, args, message):
    monkeypatch.chdir(tmp_path)
    write_jsonl(tmp_path / "in.jsonl", [{"prompt": "Explain tides."}])
    (tmp_path / "bad.jsonl").write_bytes(b'{"prompt": "ok"}\n{"prompt": \n')
    r = run_synth("evolve", *args, "-o", "out", "--model", "m", "--no-cache")
    assert r.exit_code != 0
    assert message in r.output and "Traceback" not in r.output
    assert not (tmp_path / "out").exists()


def test_cli_help_has_an_example():
    r = run_synth("evolve", "--help")
    assert r.exit_code == 0 and "Example" in r.output and "synth evolve sample_data/prompts.jsonl" in r.output
    assert "evolve" in run_synth("--help").output


def test_dry_run_plans_one_request_per_parent_and_operation(tmp_path, fake_backends):
    src = write_jsonl(tmp_path / "in.jsonl", [{"prompt": "Explain tides."}, {"prompt": "Name a colour."}])
    r = run_synth(
        "evolve", src, "--model", "m", "--n-per-prompt", 3, "--operation", "deepen", "--no-cache", "--dry-run"
    )
    assert r.exit_code == 0, r.output
    assert "requests:       2 x " in r.output and "= 6 samples" in r.output
    assert fake_backends == [] and not (tmp_path / "out").exists()


def test_library_settings_out_of_range_are_user_errors(tmp_path):
    with pytest.raises(evolve_lib.InputError, match="--rounds must be at least 1, got 0"):
        evolve_once(tmp_path, rounds=0)
    with pytest.raises(evolve_lib.InputError, match="--answer-backend must be one of hf, openai, vllm"):
        evolve_once(tmp_path, answer=True, answer_model="t", answer_backend="ollama")

"""`synth constitution`: every mode driven through the real CLI with a scripted teacher (judge
disagreement, malformed critiques and verdicts, failed and empty answers), constitution validation, and
the preference output trained as it is with TRL's DPOTrainer on a tiny model.

The scripted teacher tells the stages apart by the system prompts of `rules/constitution_fewshot.yaml`,
and reads markers such as `[nochange]` in the prompt to misbehave on purpose.
"""

from __future__ import annotations

import re

import orjson
import pytest
from conftest import read_jsonl, write_jsonl

import synth.methods.constitution as constitution
import synth.runner as run_lib
from synth.backends.scripted import ScriptedBackend
from synth.cli import main
from synth.methods.constitution import ConstitutionConfig, Prompts, load_constitution, run_constitution

P = Prompts.load()
STAGES = {  # first line of each system prompt -> stage
    P.text["critique_system"].splitlines()[0]: "critique",
    P.text["revision_system"].splitlines()[0]: "revision",
    P.text["judge_system"].splitlines()[0]: "judge",
    P.text["violate_system"].splitlines()[0]: "rejected",
    P.text["follow_system"].splitlines()[0]: "chosen",
}


def stage(req) -> str:
    first = req.messages[0]
    if first["role"] == "system":
        for head, name in STAGES.items():
            if first["content"].startswith(head):
                return name
    return "original"


def responses(last: str) -> tuple[str, str]:
    a = last.split("Response A:\n", 1)[1].split("\n\nResponse B:\n", 1)
    return a[0], a[1].split("\n\nWhich response", 1)[0]


def teacher(req, i: int) -> str | None:
    """Good answers start with GOOD or REVISED, bad ones with BAD or ORIGINAL; markers make it misbehave."""
    st, last = stage(req), req.messages[-1]["content"]
    if "[fail]" in last and st in ("chosen", "original"):
        return None
    if "[empty]" in last and st == "chosen":
        return "  "
    if "[same]" in last and st in ("chosen", "rejected"):
        return "SAME answer"
    if st == "chosen":
        return "GOOD answer"
    if st == "rejected":
        return "BAD answer"
    if st == "original":
        return "ORIGINAL answer"
    if st == "critique":
        if "[garbled-critique]" in last or ("[flaky-critique]" in last and i == 0):
            return "Well, it depends on how you look at it."
        if "[nochange]" in last:
            return '{"violation": false, "critique": "It is fine."}'
        return '```json\n{"violation": true, "critique": "It states a guess as fact.",}\n```'
    if st == "revision":
        return "REVISED answer"
    a, b = responses(last)
    if "[garbled-judge]" in last:
        return "Both have merits."
    if "[biased]" in last:
        return '{"better": "A", "reason": "first is best"}'
    good_a = a.startswith(("GOOD", "REVISED"))
    if "[contrarian]" in last:
        good_a = not good_a
    return orjson.dumps({"better": "A" if good_a else "B", "reason": "respects the principle"}).decode()


@pytest.fixture
def scripted(monkeypatch):
    """The CLI's backend replaced by the scripted teacher; returns it, to inspect the requests."""
    backend = ScriptedBackend(teacher)
    monkeypatch.setattr(run_lib, "get_backend", lambda name, model, **kw: backend)
    return backend


def synth(cli, *args):
    return cli(main, "constitution", *args, "--model", "teacher", "--no-cache")


def prompt_row(rid: str, text: str, **extra) -> dict:
    return {"id": rid, "messages": [{"role": "user", "content": text}], **extra}


def by_parent(rows: list[dict]) -> dict:
    return {r["parent_id"]: r for r in rows}


def test_pairs_mode_writes_demonstrations_and_pairs_with_their_principle(tmp_path, cli, scripted):
    src = write_jsonl(
        tmp_path / "in.jsonl",
        [
            prompt_row("p1", "Who will win the next World Cup?", source="sports"),
            {
                "id": "p2",
                "messages": [
                    {"role": "system", "content": "Answer in French."},
                    {"role": "user", "content": "Where is my neighbour Anna?"},
                ],
            },
            {"id": "p3", "prompt": [{"role": "user", "content": "Hi"}], "chosen": "a", "rejected": "b"},
            prompt_row("p4", "[fail] Tell me a fact."),
            prompt_row("p5", "[empty] Say hi."),
            prompt_row("p6", "[same] Name a colour."),
        ],
    )
    r = synth(cli, src, "-o", tmp_path / "run", "--mode", "pairs")
    assert r.exit_code == 0, r.output
    sft, pref = read_jsonl(tmp_path / "run/sft.jsonl"), read_jsonl(tmp_path / "run/preference.jsonl")
    assert [x["parent_id"] for x in sft] == [x["parent_id"] for x in pref] == ["p1", "p2"]
    avoid = {p.id for p in load_constitution().principles if p.kind == "avoid"}
    for s, p in zip(sft, pref, strict=True):
        assert s["principle_id"] == p["principle_id"] and s["principle_id"] in avoid
        assert (s["mode"], s["subset"], s["judge"], p["principle_kind"]) == ("pairs", None, None, "avoid")
        assert s["messages"][:-1] == p["prompt"]
        assert s["messages"][-1] == p["chosen"][0] == {"role": "assistant", "content": "GOOD answer"}
        assert p["rejected"] == [{"role": "assistant", "content": "BAD answer"}]
        assert s["id"] != p["id"]
    assert sft[0]["source"] == "sports"  # pass-through columns survive
    assert pref[1]["prompt"][0] == {
        "role": "system",
        "content": "Answer in French.",
    }  # the row's own, as it was

    # The chosen request carries the whole constitution (merged with the row's system message); the
    # rejected one shows the drawn principle.
    chosen = [q for q in scripted.calls if stage(q) == "chosen" and "Anna" in q.messages[-1]["content"]][0]
    system = chosen.messages[0]["content"]
    assert all(p.description in system for p in load_constitution().principles)
    assert system.endswith("Answer in French.")
    drawn = {p.id: p for p in load_constitution().principles}[pref[1]["principle_id"]]
    rejected = [q for q in scripted.calls if stage(q) == "rejected" and "Anna" in q.messages[-1]["content"]][
        0
    ]
    assert drawn.description in rejected.messages[0]["content"]

    ledger = {x["id"]: x for x in read_jsonl(tmp_path / "run/rejected.jsonl")}
    assert {k: v["reject_reason"] for k, v in ledger.items()} == {
        "p3": "not_a_prompt",
        "p4": "generation_failed",
        "p5": "empty_response",
        "p6": "identical_pair",
    }
    assert ledger["p5"]["reject_detail"] == "empty output (after 2 attempts)"  # retried once, then given up
    assert ledger["p6"]["candidates"]["chosen"] == "SAME answer" and ledger["p6"]["principle_id"] in avoid
    m = orjson.loads((tmp_path / "run/manifest.json").read_bytes())
    assert m["counts"] == {
        "input": 6,
        "invalid": 0,
        "not_a_prompt": 1,
        "prompts": 5,
        "kept": 2,
        "rejected": 3,
        "balanced": True,
    }
    assert sum(m["principles_drawn"].values()) == 5 and set(m["principles_drawn"]) <= avoid
    assert m["constitution"]["left_out"] == [
        {"id": "correct-self-identification", "reason": "needs --identity and --developer"},
        {"id": "false-identity", "reason": "needs --identity and --developer"},
    ]
    assert "prompts 5 = pairs 2 + rejected 3" in r.output and "preference:" in r.output


def test_the_principle_is_drawn_by_seed_and_id_not_by_order(tmp_path):
    c = load_constitution()
    pool = c.pool(mode="revise", subset=None)
    ids = [f"row-{k}" for k in range(40)]
    draws = [constitution.draw_principle(pool, i, 0).id for i in ids]
    assert [constitution.draw_principle(pool, i, 0).id for i in reversed(ids)] == draws[::-1]
    assert len(set(draws)) > 4  # spread over the pool
    assert [constitution.draw_principle(pool, i, 1).id for i in ids] != draws


def test_revise_mode_critiques_and_revises_with_few_shot_examples(tmp_path, cli, scripted):
    src = write_jsonl(
        tmp_path / "in.jsonl",
        [
            {
                "id": "r1",
                "messages": [
                    {"role": "user", "content": "Will it rain on 1 May 2031?"},
                    {"role": "assistant", "content": "ORIGINAL from the input"},
                ],
            },
            prompt_row("r2", "What is the population of Atlantis?"),
            prompt_row("r3", "What is 2 + 2? [nochange]"),
            prompt_row("r4", "Explain tides. [garbled-critique]"),
            prompt_row("r5", "Explain eclipses. [flaky-critique]"),
        ],
    )
    r = synth(cli, src, "-o", tmp_path / "run", "--mode", "revise")
    assert r.exit_code == 0, r.output
    sft, pref = (
        by_parent(read_jsonl(tmp_path / "run/sft.jsonl")),
        by_parent(read_jsonl(tmp_path / "run/preference.jsonl")),
    )
    assert sorted(sft) == sorted(pref) == ["r1", "r2", "r5"]
    # The input's own answer is the original: it is not generated again.
    assert pref["r1"]["rejected"][0]["content"] == "ORIGINAL from the input"
    assert pref["r2"]["rejected"][0]["content"] == "ORIGINAL answer"
    for rid in ("r1", "r2", "r5"):
        assert sft[rid]["messages"][-1]["content"] == pref[rid]["chosen"][0]["content"] == "REVISED answer"
        assert sft[rid]["critique"] == "It states a guess as fact." and sft[rid]["mode"] == "revise"
    assert sft["r1"]["messages"] == [
        {"role": "user", "content": "Will it rain on 1 May 2031?"},
        {"role": "assistant", "content": "REVISED answer"},
    ]
    originals = [q.messages[-1]["content"] for q in scripted.calls if stage(q) == "original"]
    assert not any("1 May 2031" in t for t in originals)

    critique = [q for q in scripted.calls if stage(q) == "critique"][0]
    examples = P.examples
    assert len(critique.messages) == 1 + 2 * len(examples) + 1  # system, few-shot turns, the question
    assert examples[0]["response"].strip() in critique.messages[1]["content"]
    revision = [q for q in scripted.calls if stage(q) == "revision"][0]
    with_revision = [e for e in examples if e.get("revision")]
    assert len(revision.messages) == 1 + 2 * len(with_revision) + 1
    assert "It states a guess as fact." in revision.messages[-1]["content"]

    ledger = {x["id"]: x for x in read_jsonl(tmp_path / "run/rejected.jsonl")}
    assert {k: v["reject_reason"] for k, v in ledger.items()} == {
        "r3": "no_violation",
        "r4": "critique_malformed",
    }
    assert ledger["r3"]["reject_detail"] == "the critique found no violation: It is fine."
    assert ledger["r4"]["reject_detail"].startswith("no JSON dict found in output")
    m = orjson.loads((tmp_path / "run/manifest.json").read_bytes())
    assert m["counts"]["kept"] == 3 and m["counts"]["balanced"]
    everything = {p.id for p in load_constitution().principles}
    assert set(m["constitution"]["pool"]) == everything  # revise draws follow and avoid principles


def test_judge_keeps_only_pairs_chosen_in_both_orders(tmp_path, cli, scripted):
    src = write_jsonl(
        tmp_path / "in.jsonl",
        [
            prompt_row("j1", "Is coffee healthy?"),
            prompt_row("j2", "Is tea healthy? [biased]"),
            prompt_row("j3", "Is milk healthy? [contrarian]"),
            prompt_row("j4", "Is juice healthy? [garbled-judge]"),
        ],
    )
    r = synth(cli, src, "-o", tmp_path / "run", "--judge")
    assert r.exit_code == 0, r.output
    [kept] = read_jsonl(tmp_path / "run/preference.jsonl")
    assert kept["parent_id"] == "j1"
    assert kept["judge"] == [
        {"order": "chosen_first", "winner": "chosen", "reason": "respects the principle", "p_chosen": None},
        {"order": "rejected_first", "winner": "chosen", "reason": "respects the principle", "p_chosen": None},
    ]
    assert read_jsonl(tmp_path / "run/sft.jsonl")[0]["judge"] == kept["judge"]
    judged = [q for q in scripted.calls if stage(q) == "judge" and "coffee" in q.messages[-1]["content"]]
    assert [responses(q.messages[-1]["content"]) for q in judged] == [
        ("GOOD answer", "BAD answer"),
        ("BAD answer", "GOOD answer"),
    ]  # both orders
    assert all(q.temperature == 0 for q in judged)
    ledger = {x["id"]: x for x in read_jsonl(tmp_path / "run/rejected.jsonl")}
    assert {k: v["reject_reason"] for k, v in ledger.items()} == {
        "j2": "judge_disagreement",
        "j3": "judge_prefers_rejected",
        "j4": "judge_malformed",
    }
    assert [v["winner"] for v in ledger["j2"]["judge"]] == ["chosen", "rejected"]  # the disagreement is kept
    assert "chosen_first -> chosen, rejected_first -> rejected" in ledger["j2"]["reject_detail"]
    m = orjson.loads((tmp_path / "run/manifest.json").read_bytes())
    assert {k: m["judge"][k] for k in ("kept", "disagreements", "prefers_rejected")} == {
        "kept": 1,
        "disagreements": 1,
        "prefers_rejected": 1,
    }
    assert "judge: kept 1, disagreements 1" in r.output


def test_revise_mode_with_judge_compares_revision_and_original(tmp_path, cli, scripted):
    src = write_jsonl(tmp_path / "in.jsonl", [prompt_row("v1", "How old is the universe?")])
    r = synth(cli, src, "-o", tmp_path / "run", "--mode", "revise", "--judge")
    assert r.exit_code == 0, r.output
    [row] = read_jsonl(tmp_path / "run/preference.jsonl")
    assert [v["winner"] for v in row["judge"]] == ["chosen", "chosen"]
    judged = [responses(q.messages[-1]["content"]) for q in scripted.calls if stage(q) == "judge"]
    assert judged == [("REVISED answer", "ORIGINAL answer"), ("ORIGINAL answer", "REVISED answer")]


@pytest.mark.parametrize("subset", ["refusal", "hedging", "attribution"])
def test_subsets_draw_their_principles_and_record_the_subset(tmp_path, cli, scripted, subset):
    rows = [
        prompt_row("s1", "Tell me about the topic.", source_text="The bridge opened in 1932."),
        prompt_row("s2", "And another thing?", source_text="Bees can see ultraviolet light."),
    ]
    if subset == "attribution":
        rows.append(prompt_row("s3", "Without a source?"))
    r = synth(cli, write_jsonl(tmp_path / "in.jsonl", rows), "-o", tmp_path / "run", "--subset", subset)
    assert r.exit_code == 0, r.output
    sft = read_jsonl(tmp_path / "run/sft.jsonl")
    tagged = {p.id for p in load_constitution().principles if p.subset == subset and p.kind == "avoid"}
    assert len(sft) == 2 and all(s["subset"] == subset and s["principle_id"] in tagged for s in sft)
    chosen = [q for q in scripted.calls if stage(q) == "chosen"]
    assert all(P.text["subset_guidance"][subset] in q.messages[0]["content"] for q in chosen)
    if subset == "attribution":  # the source is in the user turn the model trains on
        assert sft[0]["messages"][0]["content"] == P.attribution_user(
            "Tell me about the topic.", "The bridge opened in 1932."
        )
        assert "The bridge opened in 1932." in chosen[0].messages[-1]["content"]
        [missing] = read_jsonl(tmp_path / "run/rejected.jsonl")
        assert (missing["id"], missing["reject_reason"]) == ("s3", "no_source_text")
    else:
        assert sft[0]["messages"][0]["content"] == "Tell me about the topic."


def test_identity_fills_the_self_identification_principles(tmp_path, cli, scripted):
    c = load_constitution(identity="Ada", developer="Example Labs")
    assert not c.left_out and "{identity}" not in str(c.principles)
    src = write_jsonl(tmp_path / "in.jsonl", [prompt_row(f"q{k}", f"Question {k}?") for k in range(3)])
    r = synth(cli, src, "-o", tmp_path / "run", "--identity", "Ada", "--developer", "Example Labs")
    assert r.exit_code == 0, r.output
    system = next(q for q in scripted.calls if stage(q) == "chosen").messages[0]["content"]
    assert "you are Ada, an AI model made by Example Labs" in system
    m = orjson.loads((tmp_path / "run/manifest.json").read_bytes())
    assert "false-identity" in m["constitution"]["pool"] and m["constitution"]["left_out"] == []


GOOD = {"id": "be-kind", "kind": "avoid", "description": "Being rude.", "example": "'You idiot.'"}


@pytest.mark.parametrize(
    "text, message",
    [
        ("principles: [", "not valid YAML at line"),
        ("rules: []", "expected a mapping with a 'principles:' list"),
        ("principles: []", "'principles' must be a non-empty list"),
        ({"principles": [GOOD], "extra": 1}, "unknown top-level key 'extra'"),
        (
            {"principles": [{**GOOD, "kind": "prefer"}]},
            "principle 1 (be-kind): 'kind' is 'prefer'; expected follow or avoid",
        ),
        ({"principles": [GOOD, GOOD]}, "principle 2 (be-kind): duplicate id"),
        (
            {"principles": [GOOD, {**GOOD, "id": "Bad Id"}]},
            "principle 2: 'id' 'Bad Id' is not a lowercase name",
        ),
        (
            {"principles": [{**GOOD, "description": ""}]},
            "principle 1 (be-kind): 'description' must be a non-empty string",
        ),
        ({"principles": [{**GOOD, "descripton": "x"}]}, "principle 1 (be-kind): unknown key 'descripton'"),
        (
            {"principles": [{**GOOD, "subset": "jokes"}]},
            "principle 1 (be-kind): 'subset' is 'jokes'; expected one of refusal, hedging, attribution",
        ),
        ({"principles": [{**GOOD, "kind": "follow"}]}, "no avoid-principle to draw for --mode pairs"),
    ],
)
def test_a_bad_constitution_is_a_one_line_error_naming_file_and_principle(
    tmp_path, cli, scripted, text, message
):
    path = tmp_path / "mine.yaml"
    path.write_text(text if isinstance(text, str) else orjson.dumps(text).decode())  # JSON is YAML
    src = write_jsonl(tmp_path / "in.jsonl", [prompt_row("x", "Hi")])
    r = synth(cli, src, "-o", tmp_path / "run", "--constitution", path)
    assert r.exit_code == 1
    assert f"Error: {path}" in r.output and message in r.output, r.output
    assert "Traceback" not in r.output and len(r.output.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists() and scripted.calls == []


def test_a_users_constitution_is_used_and_recorded(tmp_path, cli, scripted):
    path = tmp_path / "mine.yaml"
    path.write_text(
        orjson.dumps({"principles": [GOOD, {**GOOD, "id": "be-brief", "kind": "follow"}]}).decode()
    )
    src = write_jsonl(tmp_path / "in.jsonl", [prompt_row("x", "Hi")])
    r = synth(cli, src, "-o", tmp_path / "run", "--constitution", path)
    assert r.exit_code == 0, r.output
    assert read_jsonl(tmp_path / "run/sft.jsonl")[0]["principle_id"] == "be-kind"
    m = orjson.loads((tmp_path / "run/manifest.json").read_bytes())
    assert m["constitution"]["path"] == str(path)
    assert m["constitution"]["principles"] == ["be-kind", "be-brief"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["missing.jsonl", "-o", "out"], "missing.jsonl: no such file"),
        (
            ["in.jsonl", "-o", "out", "--constitution", "nowhere.yaml"],
            "nowhere.yaml: no such constitution file",
        ),
        (["in.jsonl", "-o", "out", "--mode", "debate"], "Invalid value for '--mode'"),
        (["in.jsonl", "-o", "out", "--subset", "jokes"], "Invalid value for '--subset'"),
    ],
)
def test_user_errors_are_one_line_messages(tmp_path, cli, scripted, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    write_jsonl(tmp_path / "in.jsonl", [prompt_row("x", "Hi")])
    r = synth(cli, *args)
    assert r.exit_code != 0 and message in r.output and "Traceback" not in r.output
    assert not (tmp_path / "out").exists()


def test_cache_makes_a_rerun_free_and_identical(tmp_path, cli, scripted):
    src = write_jsonl(tmp_path / "in.jsonl", [prompt_row(f"c{k}", f"Question {k}?") for k in range(3)])
    args = ["--mode", "revise", "--judge", "--model", "teacher", "--cache", tmp_path / "cache.sqlite"]
    assert cli(main, "constitution", src, "-o", tmp_path / "a", *args).exit_code == 0
    calls = len(scripted.calls)
    r = cli(main, "constitution", src, "-o", tmp_path / "b", *args, "--progress")
    assert r.exit_code == 0 and len(scripted.calls) == calls  # nothing asked again
    assert "3/3" in r.output and "constitution" in r.output  # the progress bar
    assert read_jsonl(tmp_path / "a/preference.jsonl") == read_jsonl(tmp_path / "b/preference.jsonl")


def test_help_has_an_example(cli):
    r = cli(main, "constitution", "--help")
    assert r.exit_code == 0 and "Example" in r.output and "synth constitution prompts.jsonl" in r.output
    assert "constitution" in cli(main, "--help").output


def test_verdicts_are_read_defensively():
    from synth.backends import Completion

    def verdict(text):
        return constitution.parse_verdict(Completion(text, "stop", 1, 1))

    assert verdict("B") == ("B", "")
    assert verdict("Response A.") == ("A", "")
    assert verdict("Sure: {'better': 'b', 'reason': 'clearer',}") == ("B", "clearer")
    assert verdict("The correct answer is Response B: it hedges.")[0] == "B"
    for bad in ("", '{"better": "C"}', "A is better than B", "Response A is long but Response B is right"):
        with pytest.raises(constitution.ParseError):
            verdict(bad)


@pytest.mark.filterwarnings("ignore")
def test_preference_output_trains_with_dpo_as_it_is(tmp_path):
    """The run directory goes straight to `train dpo` (TRL's DPOTrainer) on a tiny Qwen2."""
    pytest.importorskip("trl")
    from posttrain.tinymodels import build_tiny_model
    from train.config import load_run_config
    from train.dpo import run_dpo

    src = write_jsonl(
        tmp_path / "in.jsonl", [prompt_row(f"d{k}", f"What is {k} plus {k}?") for k in range(8)]
    )

    def answers(req, i):
        st = stage(req)
        if st == "judge":
            return teacher(req, i)
        n = re.search(r"What is (\d+)", req.messages[-1]["content"]).group(1)
        return f"GOOD: it is {2 * int(n)}." if st == "chosen" else f"BAD: it is {n}{n}."

    run = tmp_path / "run"
    m = run_constitution(
        ConstitutionConfig(
            inputs=[str(src)], output=str(run), model="teacher", judge=True, use_cache=False, progress=False
        ),
        backend=ScriptedBackend(answers),
    )
    assert m["counts"]["kept"] == 8
    cfg = load_run_config(
        "dpo",
        model=str(build_tiny_model("qwen2", tmp_path / "qwen2")),
        output_dir=str(tmp_path / "dpo"),
        data_path=str(run),
        overrides=[
            "max_steps=2",
            "logging_steps=1",
            "save_strategy=no",
            "per_device_train_batch_size=4",
            "gradient_checkpointing=false",
            "dataloader_pin_memory=false",
            "report_to=none",
        ],
    )
    out = run_dpo(cfg, echo=lambda s: None)
    manifest = orjson.loads((out / "manifest.json").read_bytes())
    assert manifest["data"]["rows"] == 8 and manifest["data"]["path"] == str(run)
    assert manifest["metrics"]["global_step"] == 2 and manifest["check"]["ok"]
    assert manifest["metrics"]["train_loss"] > 0


def test_prompt_templates_keep_json_braces_single_regression_doubled_braces_reached_the_model(
    tmp_path, cli, scripted
):
    """The critique and judge system prompts were sent with `{{` `}}` (the file was written for str.format,
    which those two prompts never went through); every template is now filled by `rules.fill`."""
    src = write_jsonl(tmp_path / "in.jsonl", [prompt_row("b1", "Is the moon made of cheese?")])
    r = synth(cli, src, "-o", tmp_path / "run", "--mode", "revise", "--judge")
    assert r.exit_code == 0, r.output
    sent = [m["content"] for q in scripted.calls for m in q.messages]
    assert any('{"violation": true or false' in t for t in sent)
    assert any('{"better": "A" or "B"' in t for t in sent)
    assert not any("{{" in t or "}}" in t for t in sent)


def test_dry_run_plans_the_first_stage(tmp_path, cli, scripted):
    src = write_jsonl(
        tmp_path / "in.jsonl",
        [prompt_row(f"d{k}", f"Question {k}?") for k in range(3)]
        + [{"id": "x", "messages": [{"role": "system", "content": "No user turn."}]}],
    )
    r = synth(cli, src, "--mode", "pairs", "--dry-run")
    assert r.exit_code == 0, r.output
    assert "requests:       6 x n=1 = 6 samples" in r.output and "1 not_a_prompt" in r.output
    assert scripted.calls == []

"""synth candidates, repurpose and roleplay with scripted backends (Qwen2's annotation pools and repurposing)."""

from __future__ import annotations

import json

from conftest import read_jsonl, write_jsonl

from synth.backends.scripted import ScriptedBackend
from synth.cli import main as synth_main

WORK = (
    "The lighthouse keeper climbed the stairs at dusk, as he had for forty years. The lamp was old, and so was he.\n\n"
    "Below, the sea worked at the rocks with the patience of something that has never once been in a hurry. "
    "He trimmed the wick and wiped the glass and watched the first ship of the night round the headland.\n\n"
    "When the beam swung out over the water he said, to nobody, that it was a good light still."
)


def judge_reply(req) -> str | None:
    """A judge answer when `req` is a judge request (else None): 9, unless the response looks wrong."""
    text = req.messages[-1]["content"]
    if "[Response]" not in text:
        return None
    response = text.split("[Response]\n", 1)[1].split("\n[End of response]", 1)[0]
    reference = (
        text.split("[Profile]\n", 1)[1].split("\n[End of profile]", 1)[0] if "[Profile]" in text else ""
    )
    bad = "AI language model" in response or ("pirate" in reference and "Arr" not in response)
    return json.dumps({"score": 2 if bad else 9, "reason": "out of character" if bad else "fits"})


def test_repurpose_writes_an_instruction_per_level_and_keeps_the_passage_verbatim(tmp_path, cli, monkeypatch):
    src = write_jsonl(
        tmp_path / "works.jsonl", [{"id": "w1", "text": WORK, "source": "The Keeper"}, {"id": "w2"}]
    )

    def script(req, i):
        judged = judge_reply(req)
        if judged is not None:
            conv = req.messages[-1]["content"]
            instruction = conv.split("[Conversation]\n", 1)[1].split("\n[End of conversation]", 1)[0]
            return judged if "stairs" not in instruction else json.dumps({"score": 3, "reason": "no"})
        if "one short sentence" in req.messages[-1]["content"]:
            return "Instruction: Write a short story about an old lighthouse keeper."
        return '"Write three paragraphs, in the third person, about a keeper climbing the stairs."'

    import synth.runner as runner

    backend = ScriptedBackend(script, model="m")
    monkeypatch.setattr(runner, "get_backend", lambda name, **kw: backend)
    out = tmp_path / "lit"
    r = cli(
        synth_main,
        "repurpose",
        src,
        "-o",
        out,
        "--model",
        "m",
        "--levels",
        "brief",
        "--levels",
        "detailed",
        "--min-words",
        "10",
        "--max-words",
        "60",
        "--no-cache",
    )
    assert r.exit_code == 0, r.output
    kept, rejected = read_jsonl(out / "sft.jsonl"), read_jsonl(out / "rejected.jsonl")
    passages = sorted({row["passage_index"] for row in kept + rejected if "passage_index" in row})
    assert len(passages) >= 2
    for row in kept:
        assert row["level"] == "brief" and row["messages"][0]["content"].startswith("Write a short story")
        a, b = row["passage_chars"]
        assert row["messages"][1]["content"] == WORK[a:b]  # the passage, verbatim
        assert row["source"] == "The Keeper" and row["parent_id"] == "w1" and row["judge"]["score"] == 9
    reasons = {row["reject_reason"] for row in rejected}
    assert reasons == {"judge_rejected", "no_text"}
    judged = [row for row in rejected if row["reject_reason"] == "judge_rejected"]
    assert all(row["level"] == "detailed" for row in judged), [
        (r["level"], r["reject_detail"]) for r in judged
    ]
    m = json.loads((out / "manifest.json").read_text())
    c = m["counts"]
    assert c["balanced"] and c["candidates"] == len(passages) * 2 and c["no_text"] == 1


PIRATE = {"id": "c1", "profile": {"name": "Captain Mara", "trade": "pirate", "ship": "the Gull"}}
CLERK = {
    "id": "c2",
    "name": "Mr Pym",
    "profile": "A tidy clerk at a London bank in 1890. Fussy, kind, punctual.",
}


def roleplay_script(req, i):
    judged = judge_reply(req)
    if judged is not None:
        return judged
    system = req.messages[0]["content"]
    if "realistic messages" in system:
        about = "your ship" if "own life" in req.messages[-1]["content"] else "the weather"
        return json.dumps([f"Tell me about {about}?", f"What do you think of {about}?"])
    if "Captain Mara" in system:
        return (
            "Arr, the Gull is the finest ship afloat."
            if "ship" in req.messages[-1]["content"]
            else "Fair winds."
        )
    return (
        "As an AI language model, I cannot say."
        if "weather" in req.messages[-1]["content"]
        else "Quite so, sir."
    )


def test_roleplay_dialogues_leave_the_profile_out_and_the_judge_rejects_out_of_character(
    tmp_path, cli, monkeypatch
):
    import synth.runner as runner

    src = write_jsonl(tmp_path / "chars.jsonl", [PIRATE, CLERK, {"id": "c3", "profile": ""}])
    backend = ScriptedBackend(roleplay_script, model="m")
    monkeypatch.setattr(runner, "get_backend", lambda name, **kw: backend)
    out = tmp_path / "rp"
    r = cli(synth_main, "roleplay", src, "-o", out, "--model", "m", "--queries", "2", "--no-cache")
    assert r.exit_code == 0, r.output
    kept, rejected = read_jsonl(out / "sft.jsonl"), read_jsonl(out / "rejected.jsonl")
    assert kept and all(len(row["messages"]) == 2 for row in kept)
    for row in kept:
        text = json.dumps(row["messages"])
        assert "pirate" not in text and "bank in 1890" not in text and "profile" not in row  # dialogue only
    assert {row["character"] for row in kept} == {"Captain Mara", "Mr Pym"}
    bad = [row for row in rejected if row["reject_reason"] == "out_of_character"]
    assert bad and all(row["character"] in ("Mr Pym", "Captain Mara") for row in bad)
    assert any("AI language model" in row["messages"][1]["content"] for row in bad)
    assert {row["reject_reason"] for row in rejected} == {"out_of_character", "no_profile"}
    m = json.loads((out / "manifest.json").read_text())
    assert m["counts"]["balanced"] and m["counts"]["queries"] == 2 * 2 * 2  # characters x kinds x queries


def test_candidates_pool_two_models_and_strategies_deduplicated_and_shuffled(tmp_path, cli, monkeypatch):
    import synth.runner as runner

    src = write_jsonl(tmp_path / "p.jsonl", [{"id": f"p{k}", "prompt": f"Question {k}?"} for k in range(3)])

    def make(name, *, model, **kw):
        def script(req, i):
            hot = req.temperature > 0.5
            if model == "big":
                return f"A careful answer to {req.messages[-1]['content']}" + (" (warm)" if hot else "")
            return "Same answer."  # the small model says the same whatever the strategy: merged once

        return ScriptedBackend(script, model=model)

    monkeypatch.setattr(runner, "get_backend", make)
    out = tmp_path / "pool"
    r = cli(
        synth_main,
        "candidates",
        src,
        "-o",
        out,
        "--model",
        "small",
        "--model",
        "openai:big",
        "--strategy",
        "temperature=0.1",
        "--strategy",
        "temperature=1.0;system=Be warm.",
        "--no-cache",
    )
    assert r.exit_code == 0, r.output
    rows = read_jsonl(out / "candidates.jsonl")
    assert len(rows) == 3
    orders = set()
    for row in rows:
        texts = [resp["text"] for resp in row["responses"]]
        assert len(texts) == 3 and texts.count("Same answer.") == 1
        same = next(resp for resp in row["responses"] if resp["text"] == "Same answer.")
        assert {s["strategy"] for s in same["sources"]} == {
            "temperature=0.1",
            "temperature=1.0;system=Be warm.",
        }
        assert {s["model"] for s in same["sources"]} == {"hf:small"}
        orders.add(tuple(sorted(range(3), key=lambda k: texts[k])))
    assert len(orders) > 1  # the position of each source varies from prompt to prompt
    m = json.loads((out / "manifest.json").read_text())
    assert m["counts"]["duplicates"] == 3 and m["counts"]["balanced"]

"""`synth reject-sample`: scripted backends for the logic, a tiny hf model and reward model end to end, and the
preference pairs trained with `train dpo`."""

from __future__ import annotations

import json
import math
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
from click.testing import CliRunner  # noqa: E402
from conftest import SAMPLE, read_jsonl, write_jsonl  # noqa: E402

from curate.metrics import pass_at_k  # noqa: E402
from synth.backends import ChatResult, Completion  # noqa: E402
from synth.backends.scripted import ScriptedBackend  # noqa: E402
from synth.cli import main  # noqa: E402
from synth.methods.reject_sample import RejectConfig, run_reject_sample  # noqa: E402
from synth.methods.selection import PromptItem, Sample, select  # noqa: E402

LONG = (
    "We need the sum of twelve and thirty. First split each number into tens and ones, because adding tens "
    "to tens and ones to ones keeps the arithmetic small and easy to check. Twelve is one ten and two ones; "
    "thirty is three tens and no ones. Adding the tens gives four tens, which is forty. Adding the ones gives "
    "two. Putting the parts back together, forty and two make forty-two. As a check, start at thirty and "
    "count up by twelve: thirty-one, thirty-two and so on, ten steps reach forty and two more steps reach "
    "forty-two, so both ways agree on the same total."
)


def run_cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


class Backend:
    """A scripted backend whose script also picks the finish reason: return text, (text, finish) or None
    (the whole request fails)."""

    name = "scripted"

    def __init__(self, respond, model="scripted"):
        self.respond = respond
        self.model = model
        self.prompts: list[str] = []

    def generate(
        self, requests, *, on_result=None
    ):  # reports nothing as it goes: CachedLLM stores at the end
        out = []
        for req in requests:
            self.prompts.append(req.messages[-1]["content"])
            answers = [self.respond(req, i) for i in range(req.n)]
            if any(a is None for a in answers):
                out.append(ChatResult(error="HTTP 500: internal error"))
                continue
            comps = []
            for a in answers:
                text, finish = a if isinstance(a, tuple) else (a, "stop")
                comps.append(Completion(text, finish, 5, len(text.split())))
            out.append(ChatResult(comps))
        return out

    def info(self):
        return {"backend": "scripted"}

    def close(self):
        pass


MATH_ROWS = [
    {"id": "q1", "prompt": "What is 12 + 30?", "answer": "#### 42", "source": "unit"},
    {"id": "q2", "prompt": "What is 3 + 4?", "answer": "#### 7"},
    {"id": "q3", "prompt": "What is 2 + 3?", "answer": 5},
    {"id": "q4", "prompt": "What is 1 + 1?"},  # no gold answer
    {
        "id": "q5",
        "prompt": [{"role": "user", "content": "Hi"}],
        "chosen": [{"role": "assistant", "content": "Hello"}],
        "rejected": [{"role": "assistant", "content": "Go away"}],
    },
    {"id": "q6", "prompt": "What is 9 - 4?", "answer": "5"},  # the server fails
    {"id": "q7", "prompt": "What is 8 + 8?", "answer": "16"},  # every answer is cut off
]

Q1 = [
    LONG + "\n#### 42",  # 0: correct
    "  " + LONG.upper() + "\n#### 42",  # 1: exact duplicate of 0 (case and spacing)
    LONG.replace("count up", "step up") + "\n#### 42",  # 2: near duplicate of 0
    "12 + 30 = \\boxed{42}",  # 3: a distinct correct path
    "12 + 30 = 41.\n#### 41",  # 4: incorrect
    "I think the answer is 40.",  # 5: incorrect
]


def math_script(req, i):
    q = req.messages[-1]["content"]
    if q.startswith("What is 12"):
        return Q1[i]
    if q.startswith("What is 3 +"):
        return f"3 + 4 = {8 + i}.\n#### {8 + i}"
    if q.startswith("What is 2 +"):
        return ["#### 5", "The answer is 5.", "2 + 3 = 5", "five, so 5", "#### 5.0", "\\boxed{5}"][i]
    if q.startswith("What is 9"):
        return None
    if q.startswith("What is 8"):
        return ("8 + 8 = 1", "length")
    raise AssertionError(f"unexpected prompt {q!r}")


@pytest.fixture
def math_run(tmp_path):
    src = write_jsonl(tmp_path / "math.jsonl", MATH_ROWS)
    backend = Backend(math_script)
    cfg = RejectConfig(
        inputs=[str(src)],
        output=str(tmp_path / "run"),
        model="scripted",
        n=6,
        keep_per_prompt=2,
        pairs_per_prompt=3,
        use_cache=False,
    )
    manifest = run_reject_sample(cfg, backend=backend)
    return Path(manifest["run_dir"]), manifest, backend


def test_math_demonstrations_keep_distinct_correct_paths(math_run):
    run, _, _ = math_run
    sft = read_jsonl(run / "sft.jsonl")
    by_prompt = {}
    for row in sft:
        by_prompt.setdefault(row["parent_id"], []).append(row["sample_index"])
    # q1: 1 repeats 0 exactly, 2 nearly; 3 is a new path. q3: the first two of six correct answers.
    assert by_prompt == {"q1": [0, 3], "q3": [0, 1]}
    first = sft[0]
    assert first["messages"] == [
        {"role": "user", "content": "What is 12 + 30?"},
        {"role": "assistant", "content": Q1[0]},
    ]
    assert first["source"] == "unit" and first["answer"] == "#### 42"  # pass-through columns survive
    assert (first["verdict"], first["extracted"], first["verifier"]) == ("correct", "42", "math")

    samples = {(s["parent_id"], s["sample_index"]): s for s in read_jsonl(run / "samples.jsonl")}
    assert samples["q1", 1]["sft_note"] == "exact duplicate of sample 0"
    assert samples["q1", 2]["sft_note"].startswith("near duplicate of sample 0 (Jaccard ")
    assert samples["q3", 2]["sft_note"] == "beyond --keep-per-prompt 2"
    assert samples["q1", 5]["verdict"] == "incorrect" and samples["q1", 5]["extracted"] == "40"
    assert samples["q1", 5]["why"] == "the answer is: 40 is not the gold answer 42"
    assert samples["q1", 3]["why"] == "\\boxed{}: 42 equals the gold answer 42"
    assert samples["q6", 0]["verdict"] == "failed" and "HTTP 500" in samples["q6", 0]["why"]
    assert samples["q7", 0]["verdict"] == "truncated" and samples["q7", 0]["finish_reason"] == "length"
    assert len(samples) == 5 * 6  # every sample of every sampled prompt, whatever became of it


def test_math_pairs_contrast_correct_with_incorrect(math_run):
    run, _, _ = math_run
    pairs = read_jsonl(run / "preference.jsonl")
    assert [(p["chosen_sample_index"], p["rejected_sample_index"]) for p in pairs] == [(0, 4), (3, 5), (0, 5)]
    p = pairs[0]
    assert p["prompt"] == [{"role": "user", "content": "What is 12 + 30?"}]
    assert p["chosen"] == [{"role": "assistant", "content": Q1[0]}]
    assert p["rejected"] == [{"role": "assistant", "content": Q1[4]}]
    assert (p["chosen_score"], p["rejected_score"], p["method"]) == (1.0, 0.0, "math: correct vs incorrect")
    assert p["parent_id"] == "q1" and len({q["id"] for q in pairs}) == 3


def test_math_ledger_says_why_each_prompt_gave_less(math_run):
    run, _, backend = math_run
    ledger = {r["id"]: r for r in read_jsonl(run / "rejected.jsonl")}
    assert {k: v["reject_reason"] for k, v in ledger.items()} == {
        "q2": "no_correct_sample",
        "q3": "no_incorrect_sample",
        "q4": "no_gold_answer",
        "q5": "not_a_prompt",
        "q6": "no_usable_sample",
        "q7": "no_usable_sample",
    }
    assert ledger["q2"]["reject_detail"].startswith("0 of 6 samples correct (gold 7; answers given: 8 x1")
    assert ledger["q2"]["reject_outputs"] == ["sft.jsonl", "preference.jsonl"]
    assert ledger["q3"]["reject_outputs"] == ["preference.jsonl"]
    assert "nothing to contrast (2 kept in sft.jsonl)" in ledger["q3"]["reject_detail"]
    assert "field 'answer'" in ledger["q4"]["reject_detail"]
    assert "HTTP 500" in ledger["q6"]["reject_detail"] and "truncated 6" in ledger["q7"]["reject_detail"]
    assert all(r["reject_step"] == "reject-sample" for r in ledger.values())
    assert "What is 1 + 1?" not in backend.prompts  # a prompt without a gold answer is never sampled


def test_math_manifest_pass_at_k_and_histogram(math_run):
    _, m, _ = math_run
    c = m["counts"]
    assert c["balanced"] and (c["input"], c["not_a_prompt"], c["no_gold_answer"], c["prompts"]) == (
        7,
        1,
        1,
        5,
    )
    assert c["verdicts"] == {"correct": 10, "incorrect": 8, "failed": 6, "truncated": 6}
    assert (c["sft"], c["pairs"], c["prompts_with_sft"], c["prompts_with_pairs"]) == (4, 3, 2, 1)
    met = m["metrics"]
    # Correct samples per prompt: q1 4, q2 0, q3 6, q6 0 (failed), q7 0 (truncated); n = 6.
    assert met["pass@1"] == round((4 / 6 + 6 / 6) / 5, 4)
    assert met["pass@6"] == round(2 / 5, 4)
    assert met["pass_at_k"]["2"] == round((pass_at_k(6, 4, 2) + 1) / 5, 4)
    assert met["correct_per_prompt"] == {"0": 3, "1": 0, "2": 0, "3": 0, "4": 1, "5": 0, "6": 1}
    assert m["tokens"]["completion"] > 0 and m["throughput"]["samples_per_s"] > 0
    assert m["verifier"]["name"] == "math" and m["config"]["keep_per_prompt"] == 2
    assert m["reasons"]["no_usable_sample"] == 2


def test_pass_at_k_estimator():
    assert pass_at_k(16, 0, 1) == 0 and pass_at_k(16, 16, 1) == 1
    assert pass_at_k(4, 1, 1) == pytest.approx(0.25)
    assert pass_at_k(4, 1, 2) == pytest.approx(0.5)  # 1 - C(3,2)/C(4,2)
    assert pass_at_k(4, 3, 2) == 1.0


def test_outputs_load_as_training_data(math_run):
    from train.data import read_rows, validate_rows

    run, _, _ = math_run
    for kind in ("preference", "sft"):
        rows, invalid = read_rows(str(run), kind=kind)
        assert rows and not invalid
        problems = validate_rows(rows, kind=kind)
        assert not [p for p in problems if p.level == "error"], [p.as_dict() for p in problems]


def _item(scores: list[float | None]) -> PromptItem:
    item = PromptItem({"id": "p"}, "p", [{"role": "user", "content": "Write a haiku."}], None, None)
    for i, score in enumerate(scores):
        s = Sample(i, f"s{i}", f"a distinct poem number {i} about the sea and the {i} moons")
        s.verdict, s.score = ("scored", score) if score is not None else ("unscored", None)
        item.samples.append(s)
    return item


def _cfg(**kw) -> RejectConfig:
    return RejectConfig(inputs=[], output="", model="m", verifier="judge", **kw)


def test_scores_best_is_kept_and_best_is_paired_with_worst():
    item = _item([3.0, 9.0, 5.0, 1.0, 7.0, None])
    sel = select(item, _cfg(pairs_per_prompt=2, min_margin=2.0))
    assert [s.index for s in sel.sft] == [1]  # the single best by default
    assert [(c.index, r.index) for c, r in sel.pairs] == [(1, 3), (4, 0)]  # 9 vs 1, then 7 vs 3
    assert sel.reason is None
    assert item.samples[4].sft_note == "beyond --keep-per-prompt 1"


def test_scores_pairs_stop_below_the_margin():
    sel = select(_item([5.0, 6.0, 5.5]), _cfg(pairs_per_prompt=3, min_margin=1.0))
    assert [(c.index, r.index) for c, r in sel.pairs] == [(1, 0)]  # 6 - 5 = 1; 5.5 is left alone
    sel = select(_item([5.0, 5.5]), _cfg(min_margin=1.0))
    assert sel.pairs == [] and sel.reason == "no_contrast"
    assert sel.detail == "best 5.5 - worst 5 = 0.5, below --min-margin 1"
    sel = select(_item([4.0, 4.0]), _cfg(min_margin=0.0))
    assert sel.pairs == [] and sel.reason == "no_contrast"  # equal scores never make a pair


def test_scores_min_score_gates_demonstrations():
    item = _item([3.0, 6.0, 2.0])
    sel = select(item, _cfg(min_score=7.0, keep_per_prompt=2))
    assert sel.sft == [] and sel.reason == "below_min_score" and len(sel.pairs) == 1
    assert sel.detail == "best score 6 is below --min-score 7"
    assert item.samples[0].sft_note == "score 3 below --min-score 7"


def judge_script(req, i):
    """The judge: 9 for answers with 'sea', 2 for the rest; 'fence' answers get a fenced reply, 'garbled' ones
    are unreadable at first and readable when sampled again, 'hopeless' ones never."""
    prompt = req.messages[-1]["content"]
    response = prompt.split("[Response]\n", 1)[1].split("\n[End of response]", 1)[0]
    score = 9 if "sea" in response else 2
    if "hopeless" in response:
        return "I refuse to grade this."
    if "garbled" in response and req.temperature == 0:
        return "Score: excellent!!"
    if "fence" in response:
        return f'```json\n{{"score": {score}, "reason": "fine",}}\n```'
    return json.dumps({"score": score, "reason": "judged"})


def test_judge_rates_against_the_rubric_and_retries(tmp_path):
    src = write_jsonl(
        tmp_path / "p.jsonl",
        [{"id": "a", "prompt": "Write about water.", "answer": "the sea"}, {"id": "b", "prompt": "Say hi."}],
    )
    answers = {
        "Write about water.": ["the sea is wide", "rocks", "the fence by the sea", "garbled sea", "hopeless"],
        "Say hi.": ["hi", "hello", "hey", "yo", "hiya"],
    }
    gen = ScriptedBackend(lambda req, i: answers[req.messages[-1]["content"]][i])
    judge = ScriptedBackend(judge_script, model="judge")
    m = run_reject_sample(
        RejectConfig(
            inputs=[str(src)],
            output=str(tmp_path / "run"),
            model="gen",
            n=5,
            verifier="judge",
            judge_model="judge",
            min_margin=2.0,
            pairs_per_prompt=2,
            use_cache=False,
        ),
        backend=gen,
        judge_backend=judge,
    )
    run = Path(m["run_dir"])
    samples = {(s["parent_id"], s["sample_index"]): s for s in read_jsonl(run / "samples.jsonl")}
    assert [samples["a", i]["score"] for i in range(5)] == [9.0, 2.0, 9.0, 9.0, None]
    assert samples["a", 4]["verdict"] == "unscored"
    assert samples["a", 4]["why"].startswith(
        "no usable rating after 3 attempt(s): no score in the judge's answer"
    )
    assert samples["a", 0]["why"] == "judge: 9/10 (judged)"
    # The judge saw the rubric, the question, the reference answer and the response.
    first = judge.calls[0].messages
    assert first[0]["role"] == "system" and "strict, fair grader" in first[0]["content"]
    assert "Correctness:" in first[1]["content"] and "Write about water." in first[1]["content"]
    assert "[Reference answer]\nthe sea" in first[1]["content"]
    unreferenced = [c.messages[1]["content"] for c in judge.calls if "Say hi." in c.messages[1]["content"]]
    assert len(unreferenced) == 5 and not any("[Reference answer]" in p for p in unreferenced)
    assert {c.temperature for c in judge.calls} == {0.0, 0.7}  # greedy first, sampled retries
    sft = read_jsonl(run / "sft.jsonl")
    assert [(r["parent_id"], r["sample_index"], r["score"]) for r in sft] == [("a", 0, 9.0), ("b", 0, 2.0)]
    pairs = read_jsonl(run / "preference.jsonl")
    assert [
        (p["chosen_sample_index"], p["rejected_sample_index"], p["chosen_score"], p["rejected_score"])
        for p in pairs
    ] == [(0, 1, 9.0, 2.0)]
    assert pairs[0]["method"] == "judge: best vs worst"
    ledger = {r["id"]: r for r in read_jsonl(run / "rejected.jsonl")}
    assert ledger["b"]["reject_reason"] == "no_contrast" and ledger["b"]["reject_outputs"] == [
        "preference.jsonl"
    ]
    assert m["counts"]["verdicts"] == {"scored": 9, "unscored": 1}
    assert m["verifier"]["judge_model"] == "judge" and m["verifier"]["scale"] == [1, 10]
    assert m["metrics"]["scores"] == {"best_mean": 5.5, "worst_mean": 2.0}


def test_judge_rubric_must_be_usable(tmp_path):
    bad = tmp_path / "rubric.yaml"
    bad.write_text("scale: {min: 1, max: 10}\nsystem: hi\ntemplate: 'no placeholders'\n")
    src = write_jsonl(tmp_path / "p.jsonl", [{"prompt": "x"}])
    cfg = RejectConfig(
        inputs=[str(src)],
        output=str(tmp_path / "run"),
        model="m",
        verifier="judge",
        judge_rubric=str(bad),
        use_cache=False,
    )
    from curate.io import InputError

    with pytest.raises(InputError, match="the template has no {question}"):
        run_reject_sample(cfg, backend=ScriptedBackend(lambda r, i: "x"))
    assert not (tmp_path / "run").exists()


# --- the CLI ------------------------------------------------------------------------------------------------


def sample_math_script():
    """A 'model' for sample_data/math.jsonl: it knows every gold answer, and is right on every prompt of one
    kind, never on another, and on even samples of the rest."""
    rows = read_jsonl(SAMPLE / "math.jsonl")
    gold = {r["messages"][-1]["content"]: str(r["answer"]).replace("####", "").strip() for r in rows}

    def respond(req, i):
        q = req.messages[-1]["content"]
        k = list(gold).index(q)
        right = k % 5 == 1 or (k % 5 != 0 and i % 2 == 0)
        value = gold[q] if right else f"{float(gold[q]) + 1 + i:g}"
        paths = [
            f"Let us read the question carefully and set up the arithmetic.\n#### {value}",
            f"Working it through one step at a time gives {value}.\nSo the answer is {value}.",
            f"Computing directly: $\\boxed{{{value}}}$",
        ]
        return paths[i % 3]

    return respond


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory, request):
    from synth import runner as run_module

    out = tmp_path_factory.mktemp("rs") / "run"
    mp = pytest.MonkeyPatch()
    mp.setattr(run_module, "get_backend", lambda name, **kw: ScriptedBackend(sample_math_script(), model="m"))
    try:
        cache = out.parent / "cache.sqlite"
        args = [
            "reject-sample",
            SAMPLE / "math.jsonl",
            "-o",
            out,
            "--model",
            "scripted-model",
            "--n",
            6,
            "--verifier",
            "math",
            "--pairs-per-prompt",
            2,
            "--cache",
            cache,
            "--progress",
        ]
        first = run_cli(*args)
        again = run_cli(*args, "--force")  # every sample from the cache
    finally:
        mp.undo()
    return out, first, again


def test_cli_on_sample_math(cli_run):
    out, r, again = cli_run
    assert r.exit_code == 0, r.output
    assert "pass@1 " in r.output and "sft:" in r.output and "preference:" in r.output
    m = json.loads((out / "manifest.json").read_text())
    n_rows = len(read_jsonl(SAMPLE / "math.jsonl"))
    assert m["counts"]["input"] == m["counts"]["prompts"] == n_rows and m["counts"]["balanced"]
    hist = m["metrics"]["correct_per_prompt"]
    assert hist["0"] == n_rows // 5 and hist["6"] == n_rows // 5 and hist["3"] == n_rows - 2 * (n_rows // 5)
    assert m["metrics"]["pass@6"] == pytest.approx(0.8)
    # Every demonstration is a correct answer, distinct from the others of its prompt (the script repeats its
    # three reasoning paths, so a prompt answered right six times gives three).
    sft = read_jsonl(out / "sft.jsonl")
    assert all(r["verdict"] == "correct" for r in sft)
    per_prompt = {}
    for row in sft:
        per_prompt.setdefault(row["parent_id"], []).append(row["messages"][-1]["content"])
    assert all(len(set(v)) == len(v) <= 4 for v in per_prompt.values())
    pairs = read_jsonl(out / "preference.jsonl")
    assert len(pairs) == m["counts"]["pairs"] == 2 * (n_rows - 2 * (n_rows // 5))
    assert all(p["chosen_score"] == 1.0 and p["rejected_score"] == 0.0 for p in pairs)
    reasons = {r["reject_reason"] for r in read_jsonl(out / "rejected.jsonl")}
    assert reasons == {"no_correct_sample", "no_incorrect_sample"}
    assert len(read_jsonl(out / "samples.jsonl")) == 6 * n_rows
    # The second run answered from the cache and wrote the same data.
    assert again.exit_code == 0, again.output
    m2 = json.loads((out / "manifest.json").read_text())
    assert m2["cache"]["hits"] == 6 * n_rows and m2["tokens"]["generated_now"] == 0
    assert m2["metrics"] == m["metrics"]


def test_preference_pairs_train_with_train_dpo(cli_run, tmp_path):
    """preference.jsonl, as written, trains with `train dpo` (TRL's DPOTrainer) on a tiny model."""
    from train_fixtures import tiny_model

    from train.config import load_run_config
    from train.dpo import run_dpo

    out, r, _ = cli_run
    assert r.exit_code == 0, r.output
    cfg = load_run_config(
        "dpo",
        model=str(tiny_model("qwen2")),
        output_dir=str(tmp_path / "dpo"),
        data_path=str(out),  # the run directory: `train dpo` picks preference.jsonl
        overrides=[
            "max_steps=2",
            "logging_steps=1",
            "save_strategy=no",
            "per_device_train_batch_size=4",
            "gradient_checkpointing=false",
            "dataloader_pin_memory=false",
            "max_length=256",
        ],
    )
    done = run_dpo(cfg, echo=lambda s: None)
    m = json.loads((done / "manifest.json").read_text())
    assert m["data"]["rows"] == len(read_jsonl(out / "preference.jsonl"))
    assert m["check"]["ok"] and m["metrics"]["global_step"] == 2
    assert math.isfinite(m["metrics"]["last_logged_loss"])
    assert abs(m["metrics"]["first_logged_loss"] - math.log(2)) < 1e-3  # policy == reference at step 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--generate-tests"], "--generate-tests is for --verifier code"),
        (["--verifier", "reward-model"], "--verifier reward-model needs --reward-model DIR"),
        (["--symbolic", "on", "--tolerance", "-1"], "Invalid value for '--tolerance'"),
        (
            ["--verifier", "judge", "--judge-rubric", "no-such-rubric.yaml"],
            "no rules file 'no-such-rubric.yaml'",
        ),
    ],
)
def test_cli_user_errors_are_one_line(tmp_path, args, message, monkeypatch):
    from synth import runner as run_module

    monkeypatch.setattr(run_module, "get_backend", lambda name, **kw: ScriptedBackend(lambda r, i: "x"))
    src = write_jsonl(tmp_path / "p.jsonl", [{"prompt": "x", "answer": "1"}])
    r = run_cli("reject-sample", src, "-o", tmp_path / "run", "--model", "m", "--no-cache", *args)
    assert r.exit_code != 0
    assert message in r.output and "Traceback" not in r.output
    assert not (tmp_path / "run").exists()


def test_cli_bad_input_line_names_file_line_and_field(tmp_path, monkeypatch):
    from synth import runner as run_module

    monkeypatch.setattr(run_module, "get_backend", lambda name, **kw: ScriptedBackend(lambda r, i: "#### 1"))
    src = tmp_path / "p.jsonl"
    src.write_text('{"prompt": "1 + 0?", "answer": "1"}\n{"messages": [{"role": "user"}], "answer": "2"}\n')
    r = run_cli("reject-sample", src, "-o", tmp_path / "run", "--model", "m", "--no-cache", "--n", 2)
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert f"{src}:2: field 'messages[0].content'" in r.output
    r = run_cli(
        "reject-sample",
        src,
        "-o",
        tmp_path / "run",
        "--model",
        "m",
        "--no-cache",
        "--n",
        2,
        "--on-error",
        "skip",
    )
    assert r.exit_code == 0, r.output
    assert len(read_jsonl(tmp_path / "run" / "invalid.jsonl")) == 1
    assert len(read_jsonl(tmp_path / "run" / "sft.jsonl")) == 1


# --- a real tiny model, end to end --------------------------------------------------------------------------


def test_hf_best_of_n_with_a_tiny_reward_model(tmp_path):
    """A tiny random Qwen2 samples, a tiny reward model scores: the best is kept and paired with the worst."""
    pytest.importorskip("transformers")
    from train_fixtures import tiny_model

    from synth.verifiers.reward_model import RewardModel

    policy, rm = tiny_model("qwen2"), tiny_model("qwen2", num_labels=1)
    src = write_jsonl(
        tmp_path / "p.jsonl", [{"id": "a", "prompt": "Name a colour."}, {"id": "b", "prompt": "Hi"}]
    )
    out = tmp_path / "run"
    r = run_cli(
        "reject-sample",
        src,
        "-o",
        out,
        "--backend",
        "hf",
        "--model",
        policy,
        "--device",
        "cpu",
        "--n",
        4,
        "--max-tokens",
        8,
        "--keep-truncated",
        "--temperature",
        1.0,
        "--seed",
        0,
        "--verifier",
        "reward-model",
        "--reward-model",
        rm,
        "--min-margin",
        0,
        "--pairs-per-prompt",
        2,
        "--cache",
        tmp_path / "c.sqlite",
    )
    assert r.exit_code == 0, r.output
    samples = read_jsonl(out / "samples.jsonl")
    assert len(samples) == 8 and all(s["verdict"] == "scored" for s in samples)
    sft = read_jsonl(out / "sft.jsonl")
    pairs = read_jsonl(out / "preference.jsonl")
    assert [row["parent_id"] for row in sft] == ["a", "b"]
    for row in sft:
        mine = [s for s in samples if s["parent_id"] == row["parent_id"]]
        assert row["score"] == max(s["score"] for s in mine)
        assert row["messages"][-1]["content"] == next(s["text"] for s in mine if s["in_sft"])
    assert pairs and all(p["chosen_score"] > p["rejected_score"] for p in pairs)
    # The recorded scores are the reward model's: score the first pair again, on its own.
    scorer = RewardModel(str(rm), device="cpu")
    again = scorer.score(
        [[*pairs[0]["prompt"], *pairs[0]["chosen"]], [*pairs[0]["prompt"], *pairs[0]["rejected"]]]
    )
    assert again == pytest.approx([pairs[0]["chosen_score"], pairs[0]["rejected_score"]], abs=1e-4)
    m = json.loads((out / "manifest.json").read_text())
    assert m["backend"]["name"] == "hf" and m["verifier"]["name"] == "reward-model"
    assert m["tokens"]["completion"] > 0 and m["throughput"]["generated_tokens_per_s"] > 0
    assert (
        "pass@1" not in m["metrics"]
        and m["metrics"]["scores"]["best_mean"] >= m["metrics"]["scores"]["worst_mean"]
    )

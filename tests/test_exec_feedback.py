"""Execution feedback: code extraction, `synth exec-verify`, the `code` verifier of reject-sample, generated
tests (cross-checked against sampled solutions) and AutoIF. Programs run in the real sandbox."""

from __future__ import annotations

import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402
from click.testing import CliRunner  # noqa: E402
from conftest import SAMPLE, read_jsonl, write_jsonl  # noqa: E402

from synth.backends.scripted import ScriptedBackend  # noqa: E402
from synth.verifiers.code import (  # noqa: E402
    CrossCheck,
    NoTests,
    assemble_tests,
    extract_code,
    program,
    split_asserts,
)


def run_cli(*args):
    from synth.cli import main

    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


# --- pure logic -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("```python\ndef f():\n    return 1\n```", "def f():\n    return 1"),
        ("Sure!\n```py\nx = 1\n```\nand\n```python\ny = 2\n```\nbye", "x = 1\n\ny = 2"),
        ("```\ndef g(): pass\n```", "def g(): pass"),  # untagged block
        ("```bash\npip install x\n```\n```python\nz = 3\n```", "z = 3"),  # other languages skipped
        ("```bash\nls\n```", None),
        ("def h(a):\n    return a * 2\n", "def h(a):\n    return a * 2"),  # bare code
        ("The answer is that you add them.", None),
        ("", None),
        (
            "```python\ndef cut(x):\n    return x",
            "def cut(x):\n    return x",
        ),  # no closing fence (max_tokens)
        ("  ```python\n  def indented(): pass\n  ```", "  def indented(): pass"),
    ],
)
def test_extract_code(text, code):
    assert extract_code(text) == code


def test_tests_source_forms_and_errors():
    assert assemble_tests(["assert f(1) == 2", "assert f(2) == 3"]) == "assert f(1) == 2\nassert f(2) == 3"
    humaneval = "METADATA = {}\n\ndef check(candidate):\n    assert candidate(1) == 2\n"
    assert assemble_tests(humaneval, entry_point="f").endswith("check(f)")
    assert (
        assemble_tests(humaneval + "\ncheck(f)\n", entry_point="f").count("check(f)") == 1
    )  # already called
    for bad, msg in [
        ([], "non-empty list"),
        ("", "no tests"),
        ([1], "list of strings"),
        ("assert (", "do not parse"),
        ("def check(candidate):\n    pass", "need the row's entry_point"),
    ]:
        with pytest.raises(NoTests, match=msg):
            assemble_tests(bad)
    with pytest.raises(NoTests, match="not a Python name"):
        assemble_tests("def check(c):\n    pass", entry_point="f; import os")


def test_split_asserts_reads_generated_tests():
    text = (
        "Tests:\n```python\nassert f(1) == 2\nassert f(0) == 1  # edge\nprint('x')\nassert f(\n  3) == 4\n```"
    )
    assert split_asserts(text) == ["assert f(1) == 2", "assert f(0) == 1", "assert f(\n  3) == 4"]
    assert split_asserts("assert f(1) == 2\nassert broken(\nassert g() is None") == [
        "assert f(1) == 2",
        "assert g() is None",
    ]


def test_cross_check_keeps_tests_some_solution_passes():
    cc = CrossCheck(["t0", "t1", "t2"], [[True, False, False], [True, True, False], [False, False, False]])
    assert cc.kept == [0, 1]  # t2 is passed by no solution: a wrong test
    assert [cc.passed(i) for i in range(3)] == [1, 2, 0]
    assert [cc.correct(i) for i in range(3)] == [False, True, False]
    assert not CrossCheck(["t"], [[False]]).correct(0)  # no kept test: nothing is correct


def test_cross_validation_of_verification_functions():
    from synth.methods.autoif import CrossValidation

    labels = [True, False, True, False, True]
    outputs = [
        [True, False, True, False, True],  # perfect
        [True, False, True, False, False],  # 3/4 on the kept cases
        [None, None, None, None, None],  # always errors
        [False, True, False, True, True],  # inverted
    ]
    cv = CrossValidation(labels, outputs, 0.8)
    assert cv.kept_cases == [0, 1, 2, 3, 4]
    assert cv.accuracy == [1.0, 0.8, 0.0, 0.2]
    assert [cv.kept(f) for f in range(4)] == [True, True, False, False]
    # a case no function reproduces is dropped (its label is probably wrong)
    cv = CrossValidation([True, True], [[True, False], [True, False]], 0.8)
    assert cv.kept_cases == [0] and cv.accuracy == [1.0, 1.0]


def test_parse_function_is_defensive():
    from synth.methods.autoif import parse_function

    good = (
        "```python\ndef evaluate(response: str) -> bool:\n    return len(response.split()) < 5\n```\n"
        '```json\n[{"response": "one two", "follows": true}, {"response": "a b c d e f", "follows": false},'
        ' {"response": 3, "follows": true}]\n```'
    )
    f = parse_function(0, good)
    assert f.problem is None and f.cases == [("one two", True), ("a b c d e f", False)]
    assert parse_function(1, "no code here").problem.startswith("no `def evaluate")
    assert "test cases" in parse_function(2, "```python\ndef evaluate(r):\n    return True\n```").problem
    assert parse_function(3, None).problem == "generation failed"


# --- programs in the sandbox ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sandbox():
    from synth.sandbox import Limits, Sandbox

    with Sandbox(workers=2, limits=Limits(wall_s=3, cpu_s=3, memory_mb=512)) as sb:
        yield sb


def test_program_runs_solution_as_a_module_and_shows_the_failing_assert(sandbox):
    from synth.sandbox import Job

    sol = "def f(x):\n    return x + 1\n\nif __name__ == '__main__':\n    raise SystemExit(input())\n"
    ok, bad = sandbox.map(
        [
            Job(code=program(sol, "assert f(1) == 2")),
            Job(code=program(sol, "assert f(1) == 2\nassert f(2) == 4, 'two'")),
        ]
    )
    assert ok.verdict == "pass", ok
    assert bad.verdict == "fail" and bad.error == "AssertionError"
    assert "assert f(2) == 4, 'two'" in bad.stderr and "tests.py" in bad.stderr  # the line, from linecache


def test_exec_verify_on_sample_solutions(tmp_path):
    """Every planted case of sample_data/code_solutions.jsonl gets the verdict its `source` names."""
    out = tmp_path / "run"
    r = run_cli("exec-verify", SAMPLE / "code_solutions.jsonl", "-o", out, "--exec-timeout", 2)
    assert r.exit_code == 0, r.output
    assert "rows 27 = passed 22 + rejected 5 + invalid 0" in r.output
    src = read_jsonl(SAMPLE / "code_solutions.jsonl")
    kept, rejected = read_jsonl(out / "verified.jsonl"), read_jsonl(out / "rejected.jsonl")
    assert len(kept) + len(rejected) == len(src)
    assert all(row["source"] == "planted:exec:pass" and row["exec"]["verdict"] == "pass" for row in kept)
    for row in rejected:
        assert row["source"] == f"planted:exec:{row['reject_reason']}", row
        assert row["reject_step"] == "exec-verify" and row["reject_detail"]
    by_reason = {row["reject_reason"]: row for row in rejected}
    assert by_reason["timeout"]["exec"]["verdict"] == "timeout"
    assert (
        "AssertionError" in by_reason["fail"]["reject_detail"]
        or "SyntaxError" in by_reason["fail"]["reject_detail"]
    )
    assert any("SyntaxError" in row["reject_detail"] for row in rejected if row["reject_reason"] == "fail")
    m = json.loads((out / "manifest.json").read_text())
    assert m["counts"]["balanced"] and m["counts"]["executed"] == 22 + 3
    assert m["sandbox"]["backend"] != "unsafe"
    # the ledger is readable by curate's tools
    from curate.cli import main as curate_main

    why = CliRunner().invoke(curate_main, ["why", by_reason["timeout"]["id"], str(out)])
    assert why.exit_code == 0 and "timeout" in why.output


def test_exec_verify_user_errors(tmp_path):
    r = run_cli("exec-verify", tmp_path / "missing.jsonl", "-o", tmp_path / "o")
    assert r.exit_code != 0 and "Traceback" not in r.output
    src = write_jsonl(
        tmp_path / "in.jsonl", [{"messages": [{"role": "user", "content": "x"}], "tests": ["assert 1"]}]
    )
    r = run_cli("exec-verify", src, "-o", tmp_path / "o", "--generate-tests")
    assert r.exit_code == 2 and "--generate-tests needs --model" in r.output
    r = run_cli("exec-verify", src, "-o", tmp_path / "o")
    assert r.exit_code == 0 and "no_response 1" in r.output


# --- the code verifier of reject-sample, with given and with generated tests ----------------------------------------


def _solutions(req, i):
    task = req.messages[-1]["content"]
    if "unit tests" in task:  # the test-writing prompt of rules/exec_tests.yaml
        return "```python\nassert add(2, 3) == 5\nassert add(0, 0) == 0\nassert add(1, 1) == 3\n```"
    if "is_palindrome" in task:
        return "```python\ndef is_palindrome(s):\n    return s == s[::-1]\n```"  # always wrong
    return [
        "```python\ndef add(a, b):\n    return a + b\n```",
        "```python\ndef add(a, b):\n    return a - b\n```",
        "Just use +.",
        "```python\ndef add(a, b):\n    while True:\n        pass\n```",
    ][i % 4]


@pytest.fixture
def scripted(monkeypatch):
    from synth import runner as run_module

    monkeypatch.setattr(run_module, "get_backend", lambda name, **kw: ScriptedBackend(_solutions, model="m"))


def test_reject_sample_code_verifier(tmp_path, scripted):
    rows = [
        {"id": name, **row}
        for name, row in zip(["add", "pal"], read_jsonl(SAMPLE / "code.jsonl")[:2], strict=True)
    ]
    src = write_jsonl(tmp_path / "p.jsonl", rows + [{"prompt": "Write add(a, b).", "entry_point": "add"}])
    out = tmp_path / "run"
    r = run_cli(
        "reject-sample",
        src,
        "-o",
        out,
        "--model",
        "m",
        "--no-cache",
        "--n",
        4,
        "--verifier",
        "code",
        "--exec-timeout",
        1.5,
    )
    assert r.exit_code == 0, r.output
    m = json.loads((out / "manifest.json").read_text())
    assert m["counts"]["prompts"] == 2 and m["counts"]["no_gold_answer"] == 1 and m["counts"]["balanced"]
    samples = read_jsonl(out / "samples.jsonl")
    add = sorted((s for s in samples if s["parent_id"] == rows[0]["id"]), key=lambda s: s["sample_index"])
    assert [s["verdict"] for s in add] == ["correct", "incorrect", "incorrect", "incorrect"]
    assert [s["extracted"] for s in add] == ["pass", "AssertionError", "no_code", "timeout"]
    sft, pairs = read_jsonl(out / "sft.jsonl"), read_jsonl(out / "preference.jsonl")
    assert len(sft) == 1 and "return a + b" in sft[0]["messages"][-1]["content"]
    assert len(pairs) == 1 and pairs[0]["method"] == "code: correct vs incorrect"
    reasons = {x["reject_reason"] for x in read_jsonl(out / "rejected.jsonl")}
    assert reasons == {"no_correct_sample", "no_tests"}
    assert m["verifier"]["jobs"]["pass"] == 1 and m["verifier"]["sandbox"]["backend"] != "unsafe"


def test_generated_tests_are_cross_checked(tmp_path, scripted):
    src = write_jsonl(
        tmp_path / "p.jsonl", [{"prompt": "Write `add(a, b)` returning the sum.", "entry_point": "add"}]
    )
    out = tmp_path / "run"
    r = run_cli(
        "exec-verify",
        src,
        "-o",
        out,
        "--generate-tests",
        "--model",
        "m",
        "--no-cache",
        "--n",
        4,
        "--n-tests",
        5,
        "--exec-timeout",
        1.5,
    )
    assert r.exit_code == 0, r.output
    m = json.loads((out / "manifest.json").read_text())
    gen = m["verifier"]["generated_tests"]
    assert (
        gen["prompts"] == 1 and gen["tests_written"] == 3 and gen["tests_kept"] == 2
    )  # add(1, 1) == 3 is wrong
    samples = sorted(read_jsonl(out / "samples.jsonl"), key=lambda s: s["sample_index"])
    assert [s["verdict"] for s in samples] == ["correct", "incorrect", "incorrect", "incorrect"]
    assert (
        samples[0]["extracted"] == "2/2 tests" and samples[1]["extracted"] == "1/2 tests"
    )  # a - b: add(0, 0)
    sft, pairs = read_jsonl(out / "sft.jsonl"), read_jsonl(out / "preference.jsonl")
    assert len(sft) == 1 and sft[0]["generated_tests"]["kept"] == [
        "assert add(2, 3) == 5",
        "assert add(0, 0) == 0",
    ]
    assert len(pairs) == 1


# --- AutoIF ---------------------------------------------------------------------------------------------------------

SEEDS = """seeds:
  - {id: short, instruction: "Answer in under 5 words."}
  - {id: lower, instruction: "Write in lowercase only."}
"""

FUNCTIONS = {
    "under 5 words": [
        "def evaluate(response: str) -> bool:\n    return len(response.split()) < 5",
        "def evaluate(response):\n    return len(response.split()) <= 4",
        "def evaluate(response):\n    words = response.split()\n    return 0 < len(words) < 5",
        "def evaluate(response):\n    return len(response) < 3",  # wrong: counts characters
    ],
    "lowercase": [
        "def evaluate(response):\n    return response == response.lower()",
        "def evaluate(response):\n    return 'yes'",  # not a bool
        "def evaluate(response):\n    import os\n    os._exit(0)",  # exits before answering
        "def evaluate(response):\n    return not any(c.isupper() for c in response)",
    ],
}
CASES = {
    "under 5 words": '[{"response": "ok fine", "follows": true}, {"response": "this has far too many words in it", '
    '"follows": false}, {"response": "hi", "follows": true}]',
    "lowercase": '[{"response": "all lower", "follows": true}, {"response": "Not Lower", "follows": false}]',
}


def _autoif_script(req, i):
    text = req.messages[-1]["content"]
    for key, fns in FUNCTIONS.items():
        if "Write a Python function `evaluate" in text and key in text:
            return f"```python\n{fns[i]}\n```\n```json\n{CASES[key]}\n```"
    # responses: sample 0 follows both instructions, 1 follows neither, 2 half-follows
    return ["sure thing", "Absolutely, Here Is A Very Long Answer For You", "Three Words Here"][i % 3]


def test_autoif_end_to_end(tmp_path, monkeypatch):
    from synth import runner as run_module

    monkeypatch.setattr(
        run_module, "get_backend", lambda name, **kw: ScriptedBackend(_autoif_script, model="m")
    )
    seeds = tmp_path / "seeds.yaml"
    seeds.write_text(SEEDS)
    src = write_jsonl(
        tmp_path / "q.jsonl",
        [{"prompt": f"Question {k}?"} for k in range(4)]
        + [{"messages": [{"role": "assistant", "content": "no user turn"}]}],
    )
    out = tmp_path / "run"
    r = run_cli(
        "autoif",
        src,
        "-o",
        out,
        "--model",
        "m",
        "--no-cache",
        "--seeds",
        seeds,
        "--n",
        3,
        "--exec-timeout",
        2,
    )
    assert r.exit_code == 0, r.output
    assert "instructions: 1 of 2 verified" in r.output
    ins = {x["id"]: x for x in read_jsonl(out / "instructions.jsonl")}
    assert ins["short"]["kept"] and [f["kept"] for f in ins["short"]["functions"]] == [
        True,
        True,
        True,
        False,
    ]
    assert not ins["lower"]["kept"]  # two of its functions are broken: 2 < --min-functions 3
    assert [f["accuracy"] for f in ins["lower"]["functions"]] == [1.0, 0.0, 0.0, 1.0]
    m = json.loads((out / "manifest.json").read_text())
    assert m["counts"]["balanced"] and m["counts"]["prompts"] == 4 and m["counts"]["not_a_prompt"] == 1
    assert m["instructions"]["kept_ids"] == ["short"]
    sft, pairs = read_jsonl(out / "sft.jsonl"), read_jsonl(out / "preference.jsonl")
    assert len(sft) == 4 and all(x["messages"][-1]["content"] == "sure thing" for x in sft)
    assert all(x["messages"][-2]["content"].endswith("Answer in under 5 words.") for x in sft)
    assert len(pairs) == 4 and all(p["rejected"][0]["content"].startswith("Absolutely") for p in pairs)
    samples = read_jsonl(out / "samples.jsonl")
    assert {s["verdict"] for s in samples} == {"correct", "incorrect"}  # "Three Words Here" is under 5 words
    assert [x["reject_reason"] for x in read_jsonl(out / "rejected.jsonl")] == ["not_a_prompt"]


def test_autoif_preference_trains_with_dpo(tmp_path, monkeypatch):
    """preference.jsonl from autoif loads in TRL's DPOTrainer through `train dpo`'s data loader."""
    from synth import runner as run_module
    from train.data import preference_dataset, read_rows, validate_rows

    monkeypatch.setattr(
        run_module, "get_backend", lambda name, **kw: ScriptedBackend(_autoif_script, model="m")
    )
    seeds = tmp_path / "seeds.yaml"
    seeds.write_text(SEEDS)
    src = write_jsonl(tmp_path / "q.jsonl", [{"prompt": "Hello?"}])
    out = tmp_path / "run"
    assert (
        run_cli("autoif", src, "-o", out, "--model", "m", "--no-cache", "--seeds", seeds, "--n", 3).exit_code
        == 0
    )
    rows, invalid = read_rows(str(out), kind="preference")
    assert len(rows) == 1 and not invalid
    assert [p for p in validate_rows(rows, kind="preference") if p.level == "error"] == []
    ds = preference_dataset(rows)
    assert ds.column_names == ["prompt", "chosen", "rejected"] and ds[0]["chosen"][0]["role"] == "assistant"


def test_hf_backend_code_verifier_and_autoif_with_a_tiny_model(tmp_path):
    """A real (tiny, random) transformers model through both commands: its babble holds no code and no
    verification function, which the runs record as such, with every row accounted for."""
    pytest.importorskip("transformers")
    from train_fixtures import tiny_model

    model = tiny_model("qwen2")
    gen = [
        "--backend",
        "hf",
        "--model",
        model,
        "--device",
        "cpu",
        "--max-tokens",
        8,
        "--keep-truncated",
        "--seed",
        0,
        "--no-cache",
    ]
    src = write_jsonl(tmp_path / "p.jsonl", [{"id": "add", **read_jsonl(SAMPLE / "code.jsonl")[0]}])
    r = run_cli("reject-sample", src, "-o", tmp_path / "rs", "--n", 2, "--verifier", "code", *gen)
    assert r.exit_code == 0, r.output
    samples = read_jsonl(tmp_path / "rs" / "samples.jsonl")
    assert len(samples) == 2 and all(s["verdict"] == "incorrect" for s in samples)
    assert [x["reject_reason"] for x in read_jsonl(tmp_path / "rs" / "rejected.jsonl")] == [
        "no_correct_sample"
    ]

    seeds = tmp_path / "seeds.yaml"
    seeds.write_text(SEEDS)
    r = run_cli(
        "autoif",
        src,
        "-o",
        tmp_path / "if",
        "--seeds",
        seeds,
        "--functions",
        1,
        "--min-functions",
        1,
        "--n",
        2,
        "--verifier-max-tokens",
        16,
        *gen,
    )
    assert r.exit_code == 0, r.output
    ins = read_jsonl(tmp_path / "if" / "instructions.jsonl")
    assert len(ins) == 2 and not any(x["kept"] for x in ins)
    assert all(f["problem"] for x in ins for f in x["functions"])
    m = json.loads((tmp_path / "if" / "manifest.json").read_text())
    assert m["backend"]["name"] == "hf" and m["counts"]["balanced"]
    assert [x["reject_reason"] for x in read_jsonl(tmp_path / "if" / "rejected.jsonl")] == [
        "no_verified_instruction"
    ]

"""Recipes (`posttrain run`, `posttrain plan`): stages run in dependency order and are skipped when nothing they
depend on changed; a failed or killed run resumes at the first unfinished stage (a training stage from its
checkpoint); a bad recipe is refused before anything runs, with its line; the shipped tiny recipes run end to end.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, conv, read_jsonl, write_jsonl

RECIPES = ROOT / "recipes"


def quiet(_line: str) -> None:
    pass


def recipe_file(tmp_path: Path, text: str, name: str = "recipe.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def load(path):
    from posttrain.recipes import Recipe

    return Recipe.load(path)


def run(path, out, **kw):
    from posttrain.recipes import run_recipe

    return run_recipe(load(path), out, echo=quiet, **kw)


def state(out: Path) -> dict:
    return json.loads((out / "recipe.json").read_text())


# A recipe of curate stages only (fast): a filter feeding two selections, and a filter of one of them.
CURATE = """
name: branches
stages:
  - name: clean
    command: curate filter
    inputs: [data.jsonl]
    options: {filters: "quality,exact-dedup", workers: 1}
  - name: few
    command: curate select
    inputs: [{from: clean.kept}]
    options: {n: 3, strategy: random}
  - name: other
    command: curate select
    inputs: [{from: clean.kept}]
    options: {n: 2, strategy: random}
  - name: final
    command: curate filter
    inputs: [{from: few.selected}]
    options: {filters: exact-dedup, workers: 1}
"""


def rows(n: int) -> list[dict]:
    return [
        conv(f"Question number {i} about the weather today?", f"Answer number {i}: it is sunny.")
        for i in range(n)
    ]


@pytest.fixture
def branches(tmp_path):
    write_jsonl(tmp_path / "data.jsonl", rows(6))
    return recipe_file(tmp_path, CURATE), tmp_path / "out"


def test_stages_run_in_order_into_their_own_directories_and_then_are_skipped(branches):
    path, out = branches
    first = run(path, out)
    assert first.ran == ["clean", "few", "other", "final"] and first.skipped == []
    assert len(read_jsonl(out / "final" / "kept.jsonl")) == 3
    s = state(out)
    assert s["order"] == first.ran and {r["status"] for r in s["stages"].values()} == {"done"}
    assert s["stages"]["few"]["inputs"] == [{"stage": "clean", "output": "kept"}]
    before = (out / "clean" / "manifest.json").stat().st_mtime_ns
    second = run(path, out)
    assert second.ran == [] and second.skipped == first.ran
    assert (out / "clean" / "manifest.json").stat().st_mtime_ns == before


def test_changing_one_stage_option_reruns_that_stage_and_those_after_it_only(branches):
    path, out = branches
    run(path, out)
    path.write_text(CURATE.replace("{n: 3, strategy: random}", "{n: 4, strategy: random}"))
    again = run(path, out)
    assert again.ran == ["few", "final"] and again.skipped == ["clean", "other"]
    assert len(read_jsonl(out / "final" / "kept.jsonl")) == 4
    assert state(out)["stages"]["few"]["argv"][-1] == "--force", "the stage's old directory is replaced"


def test_changed_input_content_reruns_the_stages_that_read_it(branches):
    path, out = branches
    run(path, out)
    write_jsonl(path.parent / "data.jsonl", rows(7))
    assert run(path, out).ran == ["clean", "few", "other", "final"]


def test_a_rerun_whose_output_is_unchanged_does_not_rerun_what_reads_it(branches):
    path, out = branches
    run(path, out)
    # The filter now also runs near-dedup, which drops nothing here: its kept rows are the same bytes.
    path.write_text(CURATE.replace('"quality,exact-dedup"', '"quality,exact-dedup,near-dedup"'))
    again = run(path, out)
    assert again.ran == ["clean"] and again.skipped == ["few", "other", "final"]


def test_a_failed_stage_stops_the_run_and_the_next_run_resumes_there(tmp_path, cli):
    from posttrain.cli import main
    from posttrain.recipes import StageFailed

    data = tmp_path / "data.jsonl"
    write_jsonl(data, rows(6))
    (tmp_path / "more.jsonl").write_text('{"messages": [{"role": "wizard", "content": "hi"}]}\n')
    path = recipe_file(
        tmp_path,
        CURATE.replace("inputs: [{from: few.selected}]", "inputs: [{from: few.selected}, more.jsonl]"),
    )
    out = tmp_path / "out"
    with pytest.raises(
        StageFailed, match=r"stage final \(curate filter\) failed: .*more.jsonl:1: field 'messages\[0\].role'"
    ):
        run(path, out)
    s = state(out)
    assert [s["stages"][k]["status"] for k in ("clean", "few", "other", "final")] == ["done"] * 3 + ["failed"]
    assert not (out / "final").exists()

    res = cli(main, "run", path, "-o", out)  # through the CLI: one line naming the stage, exit 1
    assert res.exit_code == 1 and res.output.count("Error:") == 1 and "stage final" in res.output

    write_jsonl(tmp_path / "more.jsonl", [conv("One more question?", "One more answer.")])
    again = run(path, out)
    assert again.ran == ["final"] and again.skipped == ["clean", "few", "other"]


# --- refused before anything runs, with the line -------------------------------------------------------------


BAD = {
    "unknown stage": (
        "stages:\n  - name: a\n    command: curate filter\n    inputs: [data.jsonl]\n"
        "  - name: b\n    command: curate select\n    inputs: [{from: aa.kept}]\n    options: {n: 1}\n",
        7,
        "no stage named 'aa' (did you mean 'a'?)",
    ),
    "unknown command": (
        "stages:\n  - name: a\n    command: curate filtr\n    inputs: [data.jsonl]\n",
        3,
        "unknown command 'curate filtr' (did you mean 'curate filter'?)",
    ),
    "missing output": (
        "stages:\n  - name: a\n    command: curate filter\n    inputs: [data.jsonl]\n"
        "  - name: b\n    command: train sft\n    options:\n      model: m\n      data: {from: a.selected}\n",
        9,
        "'a.selected': curate filter writes no 'selected' output (it writes kept, edits, rejected, invalid",
    ),
    "cycle": (
        "stages:\n  - name: a\n    command: curate filter\n    inputs: [{from: c.kept}]\n"
        "  - name: b\n    command: curate filter\n    inputs: [{from: a.kept}]\n"
        "  - name: c\n    command: curate filter\n    inputs: [{from: b.kept}]\n",
        4,
        "'a' takes 'c.kept': a cycle ('a' takes from 'c' takes from 'b' takes from 'a')",
    ),
    "unknown option": (
        "stages:\n  - name: a\n    command: curate filter\n    inputs: [data.jsonl]\n    options:\n"
        "      filtres: quality\n",
        6,
        "curate filter has no option 'filtres' (did you mean 'filters'?)",
    ),
    "bad value": (
        "stages:\n  - name: a\n    command: curate select\n    inputs: [data.jsonl]\n    options: {n: many}\n",
        5,
        "n: 'many' is not a valid integer range",
    ),
    "previous outside rounds": (
        "stages:\n  - name: a\n    command: curate filter\n    inputs: [{previous: a.kept, first: data.jsonl}]\n",
        4,
        "`previous: a.kept` names a stage of the same group of rounds",
    ),
    "managed option": (
        "stages:\n  - name: a\n    command: curate filter\n    inputs: [data.jsonl]\n    options: {output: x}\n",
        5,
        "'output' is set by the recipe runner",
    ),
    "missing input file": (
        "stages:\n  - name: a\n    command: curate filter\n    inputs: [data.jsonl]\n"
        "  - name: b\n    command: curate filter\n    inputs:\n      - {from: a.kept}\n      - nope.jsonl\n",
        9,
        "stage 'b': inputs: nope.jsonl: no such file",
    ),
    "duplicate key": (
        "stages:\n  - name: a\n    command: curate filter\n    command: curate select\n",
        4,
        "'command' appears twice (line 3)",
    ),
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_recipe_is_refused_before_anything_runs_with_its_line(case, tmp_path, cli):
    from posttrain.cli import main

    text, line, message = BAD[case]
    write_jsonl(tmp_path / "data.jsonl", rows(2))
    path = recipe_file(tmp_path, text)
    res = cli(main, "run", path, "-o", tmp_path / "out")
    assert res.exit_code == 1
    assert res.output.startswith(f"Error: {path}:{line}: ") and message in res.output, res.output
    assert not (tmp_path / "out").exists(), "nothing ran"


# --- rounds --------------------------------------------------------------------------------------------------


def test_rounds_rerun_a_group_with_the_previous_rounds_outputs(tmp_path):
    write_jsonl(tmp_path / "data.jsonl", rows(8))
    path = recipe_file(
        tmp_path,
        """
stages:
  - name: start
    command: curate filter
    inputs: [data.jsonl]
    options: {filters: quality, workers: 1}
  - name: halve
    rounds: 3
    stages:
      - name: pick
        command: curate select
        inputs: [{previous: pick.selected, first: {from: start.kept}}]
        options: {n: 4, strategy: random}
      - name: check
        command: curate filter
        inputs: [{from: pick.selected}]
        options: {filters: exact-dedup, workers: 1}
  - name: last
    command: curate filter
    inputs: [{from: check.kept}]
    options: {filters: quality, workers: 1}
""",
    )
    out = tmp_path / "out"
    ran = run(path, out).ran
    assert ran == [
        "start",
        *(f"halve/round-{r}/{s}" for r in (1, 2, 3) for s in ("pick", "check")),
        "last",
    ]
    s = state(out)["stages"]
    assert s["halve/round-1/pick"]["inputs"] == [{"stage": "start", "output": "kept"}]
    assert s["halve/round-3/pick"]["inputs"] == [{"stage": "halve/round-2/pick", "output": "selected"}]
    assert s["last"]["inputs"] == [{"stage": "halve/round-3/check", "output": "kept"}]
    assert len(read_jsonl(out / "last" / "kept.jsonl")) == 4


# --- a killed run ----------------------------------------------------------------------------------------------


def test_a_recipe_killed_in_a_middle_stage_resumes_there_from_its_checkpoint(tmp_path):
    """SIGKILL `posttrain run` once the SFT stage (the middle one) has saved a checkpoint; the next run skips the
    finished filter stage, resumes SFT with --resume (the stage is unchanged) from that checkpoint, then merges."""
    from tests.train_fixtures import tiny_model

    model = tiny_model("qwen2")
    write_jsonl(tmp_path / "data.jsonl", rows(8))
    path = recipe_file(
        tmp_path,
        f"""
stages:
  - name: clean
    command: curate filter
    inputs: [data.jsonl]
    options: {{filters: "quality,exact-dedup", workers: 1}}
  - name: sft
    command: train sft
    options:
      model: {model}
      data: {{from: clean.kept}}
      set: {{max_steps: 12, save_steps: 1, per_device_train_batch_size: 2, logging_steps: 1,
            gradient_checkpointing: false, dataloader_pin_memory: false}}
  - name: soup
    command: train merge
    inputs: [{{from: sft}}, {model}]
""",
    )
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "posttrain.cli", "run", str(path), "-o", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )
    from train.resume import StateDir

    sft_state = StateDir(out / "sft")  # what the runner asks: is there a complete checkpoint to resume from
    try:
        deadline = time.monotonic() + 240
        while sft_state.last_checkpoint() is None and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sft_state.last_checkpoint() is not None, "the SFT stage saved a checkpoint"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    s = state(out)["stages"]
    assert s["clean"]["status"] == "done" and s["sft"]["status"] == "running" and "soup" not in s
    clean_manifest = (out / "clean" / "manifest.json").read_bytes()

    again = run(path, out)
    assert again.ran == ["sft", "soup"] and again.skipped == ["clean"]
    assert (out / "clean" / "manifest.json").read_bytes() == clean_manifest
    assert state(out)["stages"]["sft"]["argv"][-1] == "--resume"
    m = json.loads((out / "sft" / "manifest.json").read_text())
    assert m["resumed_from"].startswith("checkpoint-") and m["metrics"]["global_step"] == 12


# --- plan ------------------------------------------------------------------------------------------------------


def test_plan_says_what_would_run_why_and_what_it_would_spend(tmp_path, cli):
    from posttrain.cli import main
    from posttrain.recipes import plan_recipe

    write_jsonl(tmp_path / "prompts.jsonl", [{"id": "p1", "prompt": "What is 6 x 7?", "answer": "#### 42"}])
    (tmp_path / "answers.yaml").write_text(
        'answers:\n  - when: "6 x 7"\n    replies: ["#### 42", "#### 36"]\n'
    )
    path = recipe_file(
        tmp_path,
        """
stages:
  - name: rs
    command: synth reject-sample
    inputs: [prompts.jsonl]
    options: {backend: scripted, model: answers.yaml, n: 2, max-tokens: 16, no-cache: true}
  - name: pick
    command: curate select
    inputs: [{from: rs.sft}]
    options: {n: 1, strategy: random}
""",
    )
    out = tmp_path / "out"
    rs, pick = plan_recipe(load(path), out)
    assert (rs.up_to_date, rs.why, pick.why) == (False, "new", "after rs")
    assert rs.llm["requests"] == 1 and rs.llm["samples"] == 2 and rs.llm["max_completion_tokens"] == 32
    assert pick.rows_in == 2 and not pick.exact, "at most the samples of rs, an estimate"
    assert not out.exists(), "planning writes nothing"

    run(path, out)
    rs, pick = plan_recipe(load(path), out)
    assert rs.up_to_date and pick.up_to_date and rs.spent["rows in"] == 1
    res = cli(main, "plan", path, "-o", out)
    assert res.exit_code == 0 and "= [1/2] rs  up to date" in res.output

    path.write_text(path.read_text().replace("n: 2,", "n: 3,"))
    rs, pick = plan_recipe(load(path), out)
    assert (rs.why, pick.why) == ("options changed", "after rs")


def test_run_dry_run_prints_the_plan_and_runs_nothing(branches, cli):
    from posttrain.cli import main

    path, out = branches
    res = cli(main, "run", path, "-o", out, "--dry-run")
    assert (
        res.exit_code == 0 and "+ [1/4] clean  new" in res.output and "+ [4/4] final  after few" in res.output
    )
    assert not out.exists()


def test_posttrain_help_imports_no_polars_or_torch():
    code = (
        "import sys; from posttrain.cli import main\n"
        "try: main(['--help'])\nexcept SystemExit: pass\n"
        "print([m for m in ('polars', 'torch', 'transformers') if m in sys.modules])"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert res.stdout.strip().endswith("[]"), res.stdout


def test_plan_estimates_training_steps(tmp_path):
    from posttrain.recipes import plan_recipe

    write_jsonl(tmp_path / "sft.jsonl", rows(20))
    path = recipe_file(
        tmp_path,
        """
stages:
  - name: sft
    command: train sft
    options:
      model: some/model
      data: sft.jsonl
      set: {num_train_epochs: 2, per_device_train_batch_size: 4, gradient_accumulation_steps: 1}
""",
    )
    [sft] = plan_recipe(load(path), tmp_path / "out")
    assert sft.rows_in == 20 and sft.train["steps"] == 10 and sft.train["tokens"] > 0


# --- the report --------------------------------------------------------------------------------------------------


def test_curate_report_of_a_recipe_run_shows_the_stages_as_a_flow(branches, cli):
    from curate.cli import main

    path, out = branches
    run(path, out)
    res = cli(main, "report", out, "-o", out / "report.html")
    assert res.exit_code == 0, res.output
    page = (out / "report.html").read_text()
    assert "Recipe report · branches" in page and 'id="fig-flow"' in page
    for stage in ("clean", "few", "other", "final"):
        assert f'href="report.stages/{stage}.html"' in page
        assert (out / "report.stages" / f"{stage}.html").is_file()
    from curate.report_flow import flow_figure, stage_facts

    facts = [stage_facts(out, sid, state(out)["stages"][sid]) for sid in state(out)["order"]]
    few = next(f for f in facts if f["id"] == "few")
    assert (few["rows_in"], few["rows_out"], few["dropped"]) == (6, 3, 3)
    links = flow_figure(facts)["fig"]["data"][0]
    labels = links["node"]["label"]
    flows = {
        (labels[s], labels[t]): v
        for s, t, v in zip(*(links["link"][k] for k in ("source", "target", "value")), strict=True)
    }
    assert (
        flows[("data.jsonl", "clean")] == 6
        and flows[("clean", "few")] == 6
        and flows[("few", "few: dropped")] == 3
    )


# --- the scripted backend ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("answers: [{when: '(', reply: x}]", "answers[0].when: not a regular expression"),
        ("answers: [{when: a}]", "answers[0]: `reply` (a string) or `replies`"),
        ("[1, 2]", "a canned-answers file holds `answers:"),
    ],
)
def test_canned_answers_file_problems_name_the_entry(tmp_path, text, message):
    from synth.backends import BackendError, get_backend

    path = tmp_path / "answers.yaml"
    path.write_text(text)
    with pytest.raises(BackendError, match=re.escape(message)):
        get_backend("scripted", model=str(path))


def test_an_unmatched_request_fails_like_a_server_error(tmp_path):
    from synth.backends import ChatRequest, get_backend

    path = tmp_path / "answers.yaml"
    path.write_text("answers: [{when: 'sea', reply: waves}]\n")
    backend = get_backend("scripted", model=str(path))
    ok, bad = backend.generate(
        [
            ChatRequest([{"role": "user", "content": "the sea"}]),
            ChatRequest([{"role": "user", "content": "hi"}]),
        ]
    )
    assert ok.completions[0].text == "waves" and "no canned answer" in bad.error


# --- the shipped recipes -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["gemma", "qwen2", "llama3"])
def test_shipped_full_recipes_load_and_plan(name, tmp_path):
    from posttrain.recipes import plan_recipe

    full, tiny = load(RECIPES / f"{name}.yaml"), load(RECIPES / f"{name}-tiny.yaml")
    plans = plan_recipe(full, tmp_path / "out")
    assert plans and all(not p.up_to_date for p in plans)
    names = {s.name for s in full.stages.values()}
    assert names <= {s.name for s in tiny.stages.values()}, "the tiny variant runs the full recipe's stages"


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory):
    """Each tiny recipe run once end to end, then once more (everything skipped), when a test first asks for it."""
    work = tmp_path_factory.mktemp("tiny-recipes")
    done: dict[str, tuple] = {}

    def get(name: str) -> tuple:
        if name not in done:
            with pytest.MonkeyPatch.context() as mp:
                mp.setenv("POSTTRAIN_CACHE_DIR", str(work / "cache"))
                first = run(RECIPES / f"{name}.yaml", work / name)
                second = run(RECIPES / f"{name}.yaml", work / name)
            done[name] = (work / name, first, second)
        return done[name]

    return get


@pytest.mark.parametrize("name", ["gemma-tiny", "qwen2-tiny", "llama3-tiny"])
def test_tiny_recipe_runs_end_to_end_and_then_skips_everything(tiny_runs, name):
    out, first, second = tiny_runs(name)
    order = state(out)["order"]
    assert first.ran == order and second.ran == [] and second.skipped == order
    for stage in order:
        assert (out / stage / "manifest.json").is_file(), stage


def test_gemma_tiny_filters_in_the_gemma_order_and_ends_turns_with_eos(tiny_runs):
    out = tiny_runs("gemma-tiny")[0]
    m = json.loads((out / "filter" / "manifest.json").read_text())
    assert [s["name"] for s in m["steps"]] == ["pii", "toxicity", "selfid", "exact-dedup", "near-dedup"]
    dropped = {s["name"]: s["dropped"] for s in m["steps"]}
    assert dropped == {"pii": 1, "toxicity": 1, "selfid": 1, "exact-dedup": 1, "near-dedup": 0}
    sft = json.loads((out / "sft" / "manifest.json").read_text())
    assert sft["config"]["add_eos"] is True and sft["data"]["rows"] == 4
    merged = json.loads((out / "average" / "manifest.json").read_text())
    assert merged["method"] == "slerp"


def test_qwen2_tiny_trains_with_the_reports_sft_settings(tiny_runs):
    out = tiny_runs("qwen2-tiny")[0]
    trl = json.loads((out / "sft" / "manifest.json").read_text())["trl_config"]
    assert (trl["num_train_epochs"], trl["learning_rate"], trl["weight_decay"], trl["max_grad_norm"]) == (
        2,
        7e-6,
        0.1,
        1.0,
    )
    assert trl["lr_scheduler_type"] == "cosine_with_min_lr" and trl["lr_scheduler_kwargs"] == {"min_lr": 7e-7}
    sources = state(out)["stages"]["demonstrations"]["inputs"]
    assert len(sources) == 7, "every synthesis method feeds the SFT data"
    online = json.loads((out / "online-dpo" / "manifest.json").read_text())
    assert len(online["episodes"]) == 2


def test_llama3_tiny_samples_each_round_from_the_round_before(tiny_runs):
    out = tiny_runs("llama3-tiny")[0]
    s = state(out)["stages"]
    assert {"stage": "base", "output": None} in s["rounds/round-1/rs"]["inputs"]
    assert {"stage": "rounds/round-1/dpo", "output": None} in s["rounds/round-2/rs"]["inputs"]
    m = json.loads((out / "rounds/round-2/rs" / "manifest.json").read_text())
    assert m["backend"]["model"] == str(out / "rounds/round-1/dpo")


@pytest.mark.parametrize("name", ["qwen2-tiny", "llama3-tiny"])
def test_tiny_recipe_report(tiny_runs, tmp_path, name):
    from curate.report import write_report

    out = tiny_runs(name)[0]
    info = write_report(out, tmp_path / "report.html", language_sample=0)
    assert {"fig-flow", "fig-losses"} <= set(info["figures"])
    page = (tmp_path / "report.html").read_text()
    order = state(out)["order"]
    for stage in order[1:]:  # every stage but the tiny model has its own report
        assert f'href="report.stages/{stage.replace("/", "--")}.html"' in page, stage

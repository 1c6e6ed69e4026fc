"""`autoif`: the instruction a prompt carries is checked by verification functions, in the sandbox (AutoIF).

Functions are `def evaluate(response) -> bool` written and cross-validated by a `synth autoif` run. A row
names them either directly (a list of code strings in `verification_functions`) or by its `instruction_id`
in the `instructions.jsonl` of an AutoIF run (`--autoif-run DIR`; the functions kept there are used). A
completion is correct when at least `--autoif-pass-fraction` of the functions return True, incorrect when
none does, and partial in between; the score is the fraction passed.

A function's answer travels as the sandbox verdict, never through its output: the program asserts the value
is a bool and then that it is True, so "pass" is True, an `AssertionError` "returned False" is False and
anything else (exception, timeout, not a bool) is an error that counts as not passed. The completion is data
(a string literal in the program), so it cannot reach the verdict.
"""

from __future__ import annotations

from collections import Counter
from functools import cached_property
from pathlib import Path

import orjson

from curate.io import InputError
from synth.config import setting, settings
from synth.verifiers import Task, Verdict, Verifier
from synth.verifiers.code import program

FALSE_MARK = "evaluate returned False"
EVALUATE = """_value = evaluate({response!r})
if _value is not True and _value is not False:
    raise TypeError("evaluate returned " + type(_value).__name__ + ", not a bool")
assert _value, {false_mark!r}
"""


@settings
class AutoIFSettings:
    functions_field: str = setting(
        "verification_functions",
        "autoif: column with the row's verification functions (a list of code strings).",
    )
    autoif_run: str | None = setting(
        None,
        "autoif: a `synth autoif` run directory; rows name their instruction in --instruction-field.",
        path={"exists": True, "file_okay": False},
    )
    instruction_field: str = setting("instruction_id", "autoif: column naming the row's instruction.")
    autoif_pass_fraction: float = setting(
        0.5, "autoif: share of the functions a correct response must pass.", min=0, max=1, min_open=True
    )


def evaluation_program(code: str, response: str) -> str:
    """A job that runs `evaluate(response)` and ends in a verdict that says what it returned."""
    return program(code, EVALUATE.format(response=response, false_mark=FALSE_MARK))


def answer(result) -> bool | None:
    """What a function said, from its sandbox verdict: True, False, or None for an error."""
    if result.passed:
        return True
    if result.verdict == "fail" and result.error == "AssertionError" and FALSE_MARK in (result.message or ""):
        return False
    return None


def kept_functions(run_dir: str | Path) -> dict[str, list[str]]:
    """instruction id -> the code of its kept functions, from an AutoIF run's `instructions.jsonl`."""
    path = Path(run_dir) / "instructions.jsonl"
    if not path.is_file():
        raise InputError(
            f"--autoif-run {run_dir}: no instructions.jsonl (is it a `synth autoif` run directory?)"
        )
    out = {}
    for line in path.read_bytes().splitlines():
        rec = orjson.loads(line)
        if rec.get("kept"):
            out[rec["id"]] = [f["code"] for f in rec["functions"] if f.get("kept") and f.get("code")]
    return out


class AutoIFVerifier(Verifier):
    name = "autoif"
    missing_reason = "no_verification_functions"
    Settings = AutoIFSettings

    def __init__(self, settings, ctx):
        super().__init__(settings, ctx)
        self.jobs: Counter = Counter()

    @cached_property
    def by_instruction(self) -> dict[str, list[str]]:
        return kept_functions(self.settings.autoif_run) if self.settings.autoif_run else {}

    def functions(self, row: dict) -> list[str] | None:
        s = self.settings
        given = row.get(s.functions_field)
        if isinstance(given, list) and given and all(isinstance(f, str) for f in given):
            return given
        return self.by_instruction.get(row.get(s.instruction_field)) or None

    def problem(self, row: dict) -> str | None:
        if self.functions(row) is not None:
            return None
        s = self.settings
        if s.autoif_run and row.get(s.instruction_field) is not None:
            return f"instruction {row.get(s.instruction_field)!r} has no kept functions in {s.autoif_run}"
        return (
            f"no verification functions ('{s.functions_field}', or '{s.instruction_field}' with --autoif-run)"
        )

    def verify(self, tasks: list[Task]) -> list[list[Verdict]]:
        jobs = [
            (t, c, code)
            for t, task in enumerate(tasks)
            if (fns := self.functions(task.row)) is not None
            for c in range(len(task.completions))
            for code in fns
        ]
        results = self.run([evaluation_program(code, tasks[t].completions[c] or "") for t, c, code in jobs])
        said: dict[tuple[int, int], list[bool | None]] = {}
        for (t, c, _), r in zip(jobs, results, strict=True):
            said.setdefault((t, c), []).append(answer(r))
        out = []
        for t, task in enumerate(tasks):
            if self.functions(task.row) is None:
                out.append([Verdict(None, "unscored", self.problem(task.row)) for _ in task.completions])
                continue
            out.append([self.verdict(said[(t, c)]) for c in range(len(task.completions))])
        return out

    def verdict(self, said: list[bool | None]) -> Verdict:
        passed, m = sum(a is True for a in said), len(said)
        errors = sum(a is None for a in said)
        detail = f"passed {passed} of {m} verification functions" + (
            f" ({errors} raised an error)" if errors else ""
        )
        word = (
            "correct"
            if passed >= self.settings.autoif_pass_fraction * m
            else "incorrect"
            if passed == 0
            else "partial"
        )
        return Verdict(passed / m, word, detail, f"{passed}/{m} functions", facts={"checks": said})

    def run(self, programs: list[str]) -> list:
        from synth.sandbox import Job

        results = self.ctx.sandbox().map([Job(code=p) for p in programs]) if programs else []
        self.jobs.update(r.verdict for r in results)
        return results

    def info(self) -> dict:
        return {
            "name": self.name,
            "functions_field": self.settings.functions_field,
            "autoif_run": self.settings.autoif_run,
            "instructions": len(self.by_instruction),
            "pass_fraction": self.settings.autoif_pass_fraction,
            "jobs": dict(self.jobs.most_common()),
        }

"""`synth exec-verify`: responses that hold code, run against their row's tests by the `code` verifier.

Each row is a conversation ending in an assistant response, with a `tests` field (assert statements, or
HumanEval's `def check(candidate)` with `entry_point`). The response's code (its ```python blocks, see
`synth.verifiers.code.extract_code`) runs against the tests in the sandbox, where the program under test never
holds the tests or the verdict. Rows that pass go to `verified.jsonl`; the others go to `rejected.jsonl` with
the sandbox verdict as the reason (`fail`, `timeout`, `memory`, `output_limit`, `killed`, `setup_error`) or
`no_response` / `no_code` / `no_tests`. Both carry an `exec` record (verdict, error class, message, the tail
of stderr, time). Kept + rejected + invalid = input. With `generate_tests`, the command is reject-sample with
the code verifier and LLM-written tests.
"""

from __future__ import annotations

from curate.errors import UsageError
from synth.config import (
    BackendSettings,
    InputSettings,
    RunSettings,
    SamplingSettings,
    SandboxOptions,
    setting,
    settings,
)
from synth.runner import Method, Skip
from synth.verifiers import Task, VerifierContext
from synth.verifiers.code import CodeSettings, CodeVerifier, extract_code


@settings
class ExecVerifyConfig(
    CodeSettings, SandboxOptions, SamplingSettings, BackendSettings, RunSettings, InputSettings
):
    n: int = setting(8, "--generate-tests: solutions sampled per prompt.", flag="--n", short="-n", min=1)
    batch_size: int | None = setting(
        None,
        "Rows per sandbox batch [default: 512], or prompts per backend call with --generate-tests [8].",
        min=1,
        show_default=False,
    )

    def validate(self) -> None:
        if self.generate_tests and not self.model:
            raise UsageError("--generate-tests needs --model (the LLM that writes solutions and tests)")


def response_of(row: dict) -> str | None:
    msgs = row.get("messages") or []
    if msgs and msgs[-1].get("role") == "assistant":
        return msgs[-1].get("content")
    return None


class ExecVerify(Method):
    """Run the code in each response against the row's tests in the sandbox.

    Rows are conversations ending in an assistant response with a `tests` field: assert statements, or
    HumanEval's `def check(candidate)` plus `entry_point`. Code is taken from the response's ```python blocks.
    The tests run in a process that never runs the response's code, against plain values the solution's own
    isolated process returns (no network, its own empty directory, a non-root user, time, memory, process and
    output limits), so a program cannot forge its verdict. Passing rows go to OUTPUT/verified.jsonl; the rest
    to OUTPUT/rejected.jsonl with the verdict (fail, timeout, memory, output_limit, killed, setup_error, or
    no_response/no_code/no_tests), the error class and the tail of stderr; `curate why` and `curate diff`
    read them. With --generate-tests, prompts without tests get tests written by the LLM (see reject-sample).

    \b
    Examples:
      synth exec-verify sample_data/code_solutions.jsonl -o checked
      synth exec-verify solutions.jsonl -o checked --exec-timeout 5 --exec-memory-mb 512 --sandbox-workers 4
      synth exec-verify coding_prompts.jsonl -o gen --generate-tests --backend openai \\
          --model Qwen/Qwen2.5-Coder-7B-Instruct --n 8 --n-tests 10
    """

    name = "exec-verify"
    Config = ExecVerifyConfig
    main_output = "verified.jsonl"
    uses_llm = False

    @classmethod
    def redirect(cls, cfg):
        if not cfg.generate_tests:
            return None
        from dataclasses import fields

        from synth.methods.reject_sample import RejectConfig, RejectSample

        shared = {
            f.name: getattr(cfg, f.name) for f in fields(cfg) if f.name in RejectConfig.__dataclass_fields__
        }
        shared["batch_size"] = cfg.batch_size or 8
        return RejectSample, RejectConfig(**{**shared, "verifier": "code"})

    def __init__(self, cfg, ctx):
        super().__init__(cfg, ctx)
        self.verifier = CodeVerifier(cfg, VerifierContext(cfg, sandbox=ctx.sandbox) if ctx else None)
        self.durations: list[float] = []

    def prepare(self, row: dict):
        response = response_of(row)
        if response is None:
            raise Skip("no_response", "the row does not end with an assistant response")
        if extract_code(response) is None:
            raise Skip("no_code", "no Python code in the response")
        problem = self.verifier.problem(row)
        if problem is not None:
            raise Skip("no_tests", problem)
        return Task(row, row["messages"][:-1], [response])

    def run(self, runner) -> None:
        runner.stream(runner.run.reader, count_input=True, batch_size=self.cfg.batch_size or 512)

    def run_batch(self, tasks: list[Task]):
        out = self.outputs()
        for task, [verdict] in zip(tasks, self.verifier.verify(tasks), strict=True):
            record = verdict.facts["exec"]
            self.durations.append(record["duration_s"])
            row = {**task.row, "exec": record}
            if verdict.passed:
                out.kept.append(_public(row))
            else:
                out.reject(row, record["verdict"], verdict.detail.split(" | stderr:", 1)[0])
        return out

    def counts(self) -> dict:
        ledger = self.ctx.run.ledger
        return {
            "passed": ledger.counts["kept"],
            "rejected": ledger.counts["rejected"],
            "executed": len(self.durations),
        }

    def balanced(self, c: dict) -> bool:
        return c["input"] == c["passed"] + c["rejected"] + c["invalid"]

    def sections(self) -> dict:
        durations = sorted(self.durations)
        seconds = self.ctx.run.seconds
        return {
            "sandbox": self.verifier.info()["sandbox"],
            "throughput": {
                "jobs_per_s": round(len(durations) / seconds, 1) if seconds > 0 else None,
                "job_seconds_median": round(durations[len(durations) // 2], 4) if durations else None,
            },
        }

    @classmethod
    def summary(cls, m: dict) -> list[str]:
        c, thr = m["counts"], m["throughput"]
        lines = [
            f"rows {c['input']} = passed {c['passed']} + rejected {c['rejected']} + invalid {c['invalid']}"
        ]
        if c["executed"]:
            lines.append(
                f"executed {c['executed']} programs in the {m['sandbox']['backend']} sandbox "
                f"({thr['jobs_per_s']:,.1f}/s, median {thr['job_seconds_median'] * 1000:.0f} ms)"
            )
        return lines


def _public(row: dict) -> dict:
    from curate.schema import public

    return public(row)


def run_exec_verify(cfg: ExecVerifyConfig) -> dict:
    from synth.runner import run_method

    return run_method(ExecVerify, cfg)


__all__ = ["ExecVerify", "ExecVerifyConfig", "run_exec_verify"]

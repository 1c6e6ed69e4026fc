"""`run_exec_verify`: responses that hold code, run against their row's tests in the sandbox (`synth exec-verify`).

Each row is a conversation ending in an assistant response, with a `tests` field (assert statements, or
HumanEval's `def check(candidate)` with `entry_point`). The response's code (its ```python blocks, see
`synth.execfeedback.extract_code`) runs with the tests in the sandbox. Rows that pass go to `verified.jsonl`;
the others go to `rejected.jsonl` with the verdict as the reason (`fail`, `timeout`, `memory`, `output_limit`,
`killed`, `setup_error`) or `no_response` / `no_code` / `no_tests`, and the error class, message and the tail
of stderr. Both carry an `exec` record. Kept + rejected + invalid = input.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from curate.io import InputError
from curate.schema import DEFAULT_MAX_ROW_BYTES, public, rejected_row
from synth.execfeedback import (
    RowTests,
    SandboxSettings,
    check_job,
    describe,
    exec_record,
    extract_code,
)
from synth.generate import batched, progress_bar
from synth.run import SynthRun

STEP = "exec-verify"
OUTPUT = "verified.jsonl"


@dataclass
class ExecVerifyConfig:
    inputs: list
    output: str
    tests_field: str = "tests"
    entry_point_field: str = "entry_point"
    sandbox: str = "auto"
    sandbox_workers: int = 2
    exec_timeout: float = 10.0
    exec_memory_mb: int = 1024
    batch_size: int = 512  # rows whose programs go to the sandbox at once
    input_format: str = "auto"
    on_error: str = "fail"
    max_row_bytes: int = DEFAULT_MAX_ROW_BYTES
    overwrite: bool = False
    progress: bool | None = None

    def validate(self) -> None:
        if self.on_error not in ("fail", "skip"):
            raise InputError(f"--on-error must be fail or skip, not {self.on_error!r}")
        if self.batch_size < 1 or self.sandbox_workers < 1:
            raise InputError("--batch-size and --sandbox-workers must be at least 1")


def response_of(row: dict) -> str | None:
    msgs = row.get("messages") or []
    if msgs and msgs[-1].get("role") == "assistant":
        return msgs[-1].get("content")
    return None


def run_exec_verify(cfg: ExecVerifyConfig) -> dict:
    """Verify every row of `cfg.inputs` into the run directory `cfg.output`; return the manifest."""
    reasons: Counter = Counter()
    durations: list[float] = []
    with SynthRun(cfg, "synth exec-verify", main=OUTPUT, llm=False) as run:
        sandbox = SandboxSettings.of(cfg).open()
        run.on_close(sandbox)
        with progress_bar(cfg, desc=STEP) as bar:
            for rows in batched(run.reader, cfg.batch_size):
                todo = []
                for row in rows:
                    reason, detail = None, None
                    response = response_of(row)
                    tests = RowTests.of(row, field=cfg.tests_field, entry_point_field=cfg.entry_point_field)
                    code = extract_code(response)
                    if response is None:
                        reason, detail = "no_response", "the row does not end with an assistant response"
                    elif code is None:
                        reason, detail = "no_code", "no Python code in the response"
                    elif tests.source is None:
                        reason, detail = "no_tests", tests.problem
                    if reason is not None:
                        reasons[reason] += 1
                        run.ledger.rejected([rejected_row(public(row), reason, detail, step=STEP)])
                    else:
                        job = check_job(code, tests.source, row.get(cfg.entry_point_field), id=str(row["id"]))
                        todo.append((row, job))
                bar.update(run.reader.count - bar.n - len(todo))  # the bar moves as each program finishes
                results = sandbox.map([job for _, job in todo], progress=bar.update)
                for (row, _), result in zip(todo, results, strict=True):
                    durations.append(result.duration_s)
                    out = {**public(row), "exec": exec_record(result)}
                    if result.passed:
                        run.ledger.kept([out])
                    else:
                        reasons[result.verdict] += 1
                        run.ledger.rejected([rejected_row(out, result.verdict, describe(result), step=STEP)])
                bar.update(run.reader.count - bar.n)
        c = run.ledger.counts
        counts = {
            "input": run.reader.count,
            "invalid": len(run.reader.invalid),
            "passed": c["kept"],
            "rejected": c["rejected"],
            "executed": len(durations),
        }
        counts["balanced"] = counts["input"] == counts["passed"] + counts["rejected"] + counts["invalid"]
        durations.sort()
        seconds = run.seconds
        return run.finish(
            counts=counts,
            reasons=dict(reasons.most_common()),
            sandbox=sandbox.info(),
            throughput={
                "jobs_per_s": round(len(durations) / seconds, 1) if seconds > 0 else None,
                "job_seconds_median": round(durations[len(durations) // 2], 4) if durations else None,
            },
            outputs={"verified": OUTPUT, "rejected": "rejected.jsonl", "invalid": "invalid.jsonl"},
        )

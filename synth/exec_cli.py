"""`synth exec-verify`: the Click command over `synth.exec_verify` (and, with --generate-tests, over
`synth.reject.run_reject_sample` with the code verifier and generated tests)."""

from __future__ import annotations

import functools

import click

from curate.cli import input_options
from synth.options import (
    backend_options,
    backend_settings,
    run_options,
    run_settings,
    sampling_settings,
    sandbox_options,
    sandbox_settings,
    synth_errors,
)


@click.command("exec-verify")
@click.argument("inputs", nargs=-1, required=True, metavar="INPUT...")
@click.option(
    "-o", "--output", required=True, type=click.Path(file_okay=False), help="Run directory to write."
)
@click.option(
    "--tests-field",
    default="tests",
    show_default=True,
    help="Column with the tests: assert statements, or HumanEval's def check(candidate).",
)
@click.option(
    "--entry-point-field",
    default="entry_point",
    show_default=True,
    help="Column naming the function HumanEval-style tests call check() on.",
)
@sandbox_options
@click.option(
    "--generate-tests",
    is_flag=True,
    help="Prompts without tests: sample --n solutions and have the LLM write --n-tests asserts; tests some "
    "solution passes are kept, solutions passing all of them become demonstrations (sft.jsonl), "
    "passing against failing become pairs (preference.jsonl). Needs --model.",
)
@click.option(
    "-n",
    "--n",
    "n",
    type=click.IntRange(min=1),
    default=8,
    show_default=True,
    help="--generate-tests: solutions sampled per prompt.",
)
@click.option(
    "--n-tests",
    type=click.IntRange(min=1),
    default=8,
    show_default=True,
    help="--generate-tests: tests asked for per prompt.",
)
@backend_options(model_required=False)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=None,
    help="Rows per sandbox batch [default: 512], or prompts per backend call with --generate-tests [8].",
)
@run_options
@input_options
@synth_errors
def exec_verify_cmd(
    inputs, output, tests_field, entry_point_field, generate_tests, n, n_tests, batch_size, **kw
):
    """Run the code in each response against the row's tests in the sandbox.

    Rows are conversations ending in an assistant response with a `tests` field: assert statements, or
    HumanEval's `def check(candidate)` plus `entry_point`. Code is taken from the response's ```python blocks.
    Each program runs isolated (no network, its own empty directory, a non-root user, time, memory, process and
    output limits). Passing rows go to OUTPUT/verified.jsonl; the rest to OUTPUT/rejected.jsonl with the
    verdict (fail, timeout, memory, output_limit, killed, setup_error, or no_response/no_code/no_tests), the
    error class and the tail of stderr; `curate why` and `curate diff` read them.

    \b
    Examples:
      synth exec-verify sample_data/code_solutions.jsonl -o checked
      synth exec-verify solutions.jsonl -o checked --exec-timeout 5 --exec-memory-mb 512 --sandbox-workers 4
      synth exec-verify coding_prompts.jsonl -o gen --generate-tests --backend openai \\
          --model Qwen/Qwen2.5-Coder-7B-Instruct --n 8 --n-tests 10
    """
    common = dict(
        inputs=list(inputs),
        output=output,
        tests_field=tests_field,
        entry_point_field=entry_point_field,
        **run_settings(kw),
        **sandbox_settings(kw),
    )
    if generate_tests:
        from synth.reject import RejectConfig, run_reject_sample
        from synth.reject_cli import _print_summary as print_reject_summary

        if not kw["model"]:
            raise click.UsageError("--generate-tests needs --model (the LLM that writes solutions and tests)")
        backend = kw["backend"]
        cfg = RejectConfig(
            model=kw["model"],
            backend=backend,
            n=n,
            verifier="code",
            generate_tests=True,
            n_tests=n_tests,
            batch_size=batch_size or 8,
            backend_options=backend_settings(backend, kw),
            **sampling_settings(kw),
            **common,
        )
        print_reject_summary(run_reject_sample(cfg))
        return
    from synth.exec_verify import ExecVerifyConfig, run_exec_verify

    _print_summary(run_exec_verify(ExecVerifyConfig(batch_size=batch_size or 512, **common)))


def _print_summary(m: dict) -> None:
    echo = functools.partial(click.echo, err=True)
    c, run = m["counts"], m["run_dir"]
    reasons = ", ".join(f"{k} {v}" for k, v in m["reasons"].items())
    echo(f"rows {c['input']} = passed {c['passed']} + rejected {c['rejected']} + invalid {c['invalid']}")
    thr = m["throughput"]
    if c["executed"]:
        echo(
            f"executed {c['executed']} programs in the {m['sandbox']['backend']} sandbox "
            f"({thr['jobs_per_s']:,.1f}/s, median {thr['job_seconds_median'] * 1000:.0f} ms)"
        )
    echo(f"verified: {run}/verified.jsonl")
    echo(f"rejected: {run}/rejected.jsonl" + (f" ({reasons})" if reasons else ""))
    echo(f"manifest: {run}/manifest.json")

"""`synth autoif`: the Click command over `synth.autoif.run_autoif`."""

from __future__ import annotations

import functools

import click

from curate.cli import input_options
from synth.options import (
    answer_options,
    backend_options,
    backend_settings,
    run_options,
    run_settings,
    sampling_settings,
    sandbox_options,
    sandbox_settings,
    synth_errors,
)


@click.command("autoif")
@click.argument("inputs", nargs=-1, required=True, metavar="INPUT...")
@click.option(
    "-o", "--output", required=True, type=click.Path(file_okay=False), help="Run directory to write."
)
@backend_options
@click.option(
    "--seeds",
    default="autoif_seeds.yaml",
    show_default=True,
    help="Seed constraint instructions: the shipped rules file or your own YAML (seeds: [{id, instruction}]).",
)
@click.option(
    "--prompts", default="autoif.yaml", show_default=True, help="Prompt templates (rules file or path)."
)
@click.option(
    "-n",
    "--n",
    "n",
    type=click.IntRange(min=1),
    default=4,
    show_default=True,
    help="Responses sampled per query and instruction.",
)
@click.option(
    "--functions",
    type=click.IntRange(min=1),
    default=4,
    show_default=True,
    help="Verification functions the LLM writes per instruction.",
)
@click.option(
    "--n-cases",
    type=click.IntRange(min=1),
    default=4,
    show_default=True,
    help="Test cases asked for with each function.",
)
@click.option(
    "--min-functions",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="Functions an instruction needs after cross-validation to be used.",
)
@click.option(
    "--min-accuracy",
    type=click.FloatRange(0, 1),
    default=0.8,
    show_default=True,
    help="Accuracy a function needs on the cross-validated test cases.",
)
@click.option(
    "--instructions-per-query",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Instructions each query is answered under (picked by a hash of the row id).",
)
@click.option(
    "--keep-per-prompt",
    type=click.IntRange(min=0),
    default=1,
    show_default=True,
    help="Demonstrations per query and instruction (distinct chosen responses).",
)
@click.option(
    "--pairs-per-prompt",
    type=click.IntRange(min=0),
    default=1,
    show_default=True,
    help="Chosen vs rejected pairs per query and instruction.",
)
@click.option(
    "--verifier-max-tokens",
    type=click.IntRange(min=1),
    default=1024,
    show_default=True,
    help="Longest verification-function answer, in tokens.",
)
@answer_options(batch_size=16)
@sandbox_options
@run_options
@input_options
@synth_errors
def autoif_cmd(
    inputs,
    output,
    seeds,
    prompts,
    n,
    functions,
    n_cases,
    min_functions,
    min_accuracy,
    instructions_per_query,
    keep_per_prompt,
    pairs_per_prompt,
    verifier_max_tokens,
    system_prompt,
    batch_size,
    keep_truncated,
    **kw,
):
    """Instruction-following data verified by code (AutoIF).

    For each seed instruction ("answer in under 50 words", "use exactly three bullet points"...) the LLM writes
    verification functions with test cases; they are cross-validated in the sandbox (cases some function
    reproduces, functions with accuracy >= --min-accuracy, instructions with >= --min-functions functions).
    Each query is then answered under a verified instruction and every response is checked by running the
    functions in the sandbox: chosen = passes at least half, rejected = passes none. OUTPUT/sft.jsonl holds
    chosen responses as conversations, OUTPUT/preference.jsonl chosen vs rejected pairs, OUTPUT/samples.jsonl
    every response with its checks, OUTPUT/instructions.jsonl every function and test case with the decision,
    OUTPUT/rejected.jsonl the queries with nothing to keep or contrast.

    \b
    Examples:
      synth autoif sample_data/prompts.jsonl -o autoif --backend openai --model Qwen/Qwen2.5-7B-Instruct
      synth autoif queries.jsonl -o autoif --model ./my-model --seeds my_seeds.yaml --functions 6 --n 8
      train dpo --data autoif --model ./my-sft-model -o dpo-run
    """
    from synth.autoif import AutoIFConfig, run_autoif

    backend = kw["backend"]
    cfg = AutoIFConfig(
        inputs=list(inputs),
        output=output,
        model=kw["model"],
        backend=backend,
        seeds=seeds,
        prompts=prompts,
        n=n,
        functions=functions,
        n_cases=n_cases,
        min_functions=min_functions,
        min_accuracy=min_accuracy,
        instructions_per_query=instructions_per_query,
        keep_per_prompt=keep_per_prompt,
        pairs_per_prompt=pairs_per_prompt,
        verifier_max_tokens=verifier_max_tokens,
        system_prompt=system_prompt,
        batch_size=batch_size,
        keep_truncated=keep_truncated,
        backend_options=backend_settings(backend, kw),
        **run_settings(kw),
        **sampling_settings(kw),
        **sandbox_settings(kw),
    )
    _print_summary(run_autoif(cfg))


def _print_summary(m: dict) -> None:
    echo = functools.partial(click.echo, err=True)
    c, ins, run = m["counts"], m["instructions"], m["run_dir"]
    echo(
        f"instructions: {ins['kept']} of {ins['total']} verified "
        f"({ins['functions_kept']} of {ins['functions_written']} functions kept)"
    )
    echo(
        f"rows {c['input']} = queries {c['prompts']} + not prompts {c['not_a_prompt']} + invalid {c['invalid']}"
    )
    echo("responses {}: {}".format(c["responses"], ", ".join(f"{k} {v}" for k, v in c["verdicts"].items())))
    reasons = ", ".join(f"{k} {v}" for k, v in m["reasons"].items())
    echo(f"sft:          {run}/sft.jsonl ({c['sft']} demonstrations)")
    echo(f"preference:   {run}/preference.jsonl ({c['pairs']} pairs)")
    echo(f"instructions: {run}/instructions.jsonl")
    echo(f"rejected:     {run}/rejected.jsonl" + (f" ({reasons})" if reasons else ""))
    echo(f"manifest:     {run}/manifest.json")

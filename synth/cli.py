"""`synth`: make training data with an LLM. Commands are thin: parse options, call the library, report."""

from __future__ import annotations

import functools

import click

from curate.cli import input_options
from curate.threads import configure_threads
from synth.autoif_cli import autoif_cmd
from synth.constitution_cli import constitution_cmd
from synth.evolve_cli import evolve_cmd
from synth.exec_cli import exec_verify_cmd
from synth.options import (
    answer_options,
    backend_options,
    backend_settings,
    run_options,
    run_settings,
    sampling_settings,
    synth_errors,
)
from synth.reject_cli import reject_sample_cmd
from synth.tag_cli import tag_cmd


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(package_name="posttrain")
def main():
    """Synthesize post-training data with an LLM: a local transformers model, an OpenAI-compatible server
    or vLLM, with every answer cached so that interrupted runs resume.

    \b
    Example:
      synth generate prompts.jsonl -o gen1 --backend hf --model ./my-model --n 4
    """
    configure_threads()  # before torch loads: no more compute threads than free CPUs


@main.command("generate")
@click.argument("inputs", nargs=-1, required=True, metavar="INPUT...")
@click.option(
    "-o",
    "--output",
    type=click.Path(file_okay=False),
    help="Run directory to write (required unless --dry-run).",
)
@backend_options
@click.option(
    "-n",
    "--n",
    "n",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Answers per prompt; each becomes its own row.",
)
@answer_options(batch_size=64)
@click.option(
    "--dry-run", is_flag=True, help="Print the number of requests and prompt tokens; generate nothing."
)
@run_options
@input_options
@synth_errors
def generate_cmd(
    inputs,
    output,
    n,
    system_prompt,
    batch_size,
    keep_truncated,
    dry_run,
    **kw,
):
    """Answer prompts with a teacher model (SFT distillation), n samples each.

    INPUT is JSONL (.gz/.zst), Parquet, `-` or a run directory, in any format `curate` reads. Rows that end
    in a user turn are answered; a conversation ending in an assistant turn is answered afresh (the old
    answer is kept as previous_response). Writes OUTPUT/generated.jsonl (the conversation with the new
    assistant turn, model, finish_reason, token counts), OUTPUT/rejected.jsonl (failed, truncated or empty
    answers, with the reason) and OUTPUT/manifest.json (token totals, throughput, cache hits and path).

    \b
    Examples:
      synth generate prompts.jsonl -o gen --backend hf --model ./SmolLM2-135M-Instruct.Q4_1.gguf --max-tokens 256
      synth generate prompts.jsonl -o gen --backend openai --base-url http://127.0.0.1:8000/v1 \\
          --model Qwen/Qwen2.5-7B-Instruct --n 4 --temperature 0.8 --concurrency 64
      synth generate prompts.jsonl -o gen --backend vllm --model Qwen/Qwen2.5-7B-Instruct --dry-run
    """
    from synth.generate import GenerateConfig, plan_generate, run_generate

    backend = kw["backend"]
    options = backend_settings(backend, kw)
    cfg = GenerateConfig(
        inputs=list(inputs),
        output=output or "",
        model=kw["model"],
        backend=backend,
        n=n,
        system_prompt=system_prompt,
        **sampling_settings(kw),
        batch_size=batch_size,
        keep_truncated=keep_truncated,
        **run_settings(kw),
        backend_options=options,
    )
    if dry_run:
        plan = plan_generate(cfg)
        click.echo(
            f"rows:           {plan['rows']}" + (f" ({plan['invalid']} invalid)" if plan["invalid"] else "")
        )
        if plan["not_a_prompt"]:
            click.echo(f"not prompts:    {plan['not_a_prompt']} (would go to rejected.jsonl)")
        click.echo(
            f"requests:       {plan['requests']} x n={n} = {plan['samples']} samples "
            f"({plan['cached']} cached, {plan['to_generate']} to generate)"
        )
        click.echo(f"prompt tokens:  {plan['prompt_tokens']:,} ({plan['prompt_tokens_method']})")
        click.echo(f"cache:          {plan['cache'] or 'off'}")
        return
    if not output:
        raise click.UsageError("missing option '-o' / '--output' (or pass --dry-run)")
    _print_summary(run_generate(cfg))


def _print_summary(m: dict) -> None:
    echo = functools.partial(click.echo, err=True)
    c, tok, thr, cache = m["counts"], m["tokens"], m["throughput"], m["cache"]
    reasons = ", ".join(f"{k} {v}" for k, v in m["reasons"].items())
    echo(
        f"rows {c['input']} = prompts {c['requests']} + not prompts {c['not_a_prompt']} + invalid {c['invalid']}"
    )
    echo(
        f"samples {c['samples']} = generated {c['generated']} + rejected {c['rejected_samples']}"
        + (f"   (rejected.jsonl: {reasons})" if reasons else "")
    )
    rate = thr["generated_tokens_per_s"]
    echo(
        f"tokens: prompt {tok['prompt']:,}, completion {tok['completion']:,} ({tok['generated_now']:,} generated now"
        + (f" at {rate:,.0f} tok/s" if rate else "")
        + ")"
    )
    echo(
        f"cache: {cache['hits']} hits, {cache['misses']} misses"
        + (f" ({cache['path']})" if cache["path"] else " (off)")
    )
    run = m["run_dir"]
    echo(f"generated: {run}/generated.jsonl")
    echo(f"rejected:  {run}/rejected.jsonl")
    echo(f"manifest:  {run}/manifest.json")


# Commands that live in their own modules (each keeps heavy imports inside its function, so --help is
# instant), in the order `synth --help` lists them.
main.add_command(tag_cmd)
main.add_command(evolve_cmd)
main.add_command(constitution_cmd)
main.add_command(reject_sample_cmd)
main.add_command(exec_verify_cmd)
main.add_command(autoif_cmd)


if __name__ == "__main__":
    main()

"""`synth tag`: the Click command (the library is `synth.tag`, imported only when the command runs)."""

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
    synth_errors,
)


# Tagging wants one deterministic answer per row and short output: greedy, 512 tokens by default.
@click.command("tag", context_settings={"default_map": {"temperature": 0.0, "max_tokens": 512}})
@click.argument("inputs", nargs=-1, required=True, metavar="INPUT...")
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(file_okay=False),
    help="Run directory: tagged.jsonl, rejected.jsonl, invalid.jsonl, manifest.json.",
)
@backend_options
@click.option(
    "--rules",
    default="instag.yaml",
    show_default=True,
    help="Prompt templates: a copy of rules/instag.yaml (system, prompt, correction, retries).",
)
@click.option(
    "--retries",
    type=click.IntRange(min=0),
    default=None,
    help="Correction prompts after an unreadable answer [default: the rules file's, 2].",
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=64,
    show_default=True,
    help="Rows per backend call; each finished batch is committed to the cache.",
)
@run_options
@input_options
@synth_errors
def tag_cmd(inputs, output, rules, retries, batch_size, **kw):
    """Tag the intentions of each row's user turn(s) with an LLM (InsTag): `tags` and `tag_explanations`.

    INPUT is JSONL (.gz/.zst), Parquet, `-` or a run directory, in any format `curate` reads. The model
    answers a JSON list of {tag, explanation}; broken JSON (code fences, trailing commas, single quotes,
    cut-off output) is repaired, and an unreadable answer gets a correction prompt (--retries). Rows that
    still fail go to OUTPUT/rejected.jsonl with the reason. Next: `curate tags normalize`, `curate select`.

    \b
    Examples:
      synth tag sample_data/conversations.jsonl -o tagged --backend hf --model ./SmolLM2-135M-Instruct.Q4_1.gguf
      synth tag prompts.jsonl -o tagged --backend openai --base-url http://127.0.0.1:8000/v1 \\
          --model Qwen/Qwen2.5-7B-Instruct --concurrency 64
    """
    from synth.tag import TagConfig, run_tag

    backend = kw["backend"]
    cfg = TagConfig(
        inputs=list(inputs),
        output=output,
        model=kw["model"],
        backend=backend,
        **sampling_settings(kw),
        batch_size=batch_size,
        **run_settings(kw),
        backend_options=backend_settings(backend, kw),
        rules=rules,
        retries=retries,
    )
    _print_summary(run_tag(cfg))


def _print_summary(m: dict) -> None:
    echo = functools.partial(click.echo, err=True)
    c, t = m["counts"], m["tags"]
    reasons = ", ".join(f"{k} {v}" for k, v in m["reasons"].items())
    echo(
        f"rows {c['input']} = tagged {c['tagged']} + rejected {c['rejected']} + invalid {c['invalid']}"
        + (f"   (rejected.jsonl: {reasons})" if reasons else "")
    )
    if c["retried_rows"]:
        echo(
            f"correction prompts: {c['correction_requests']} for {c['retried_rows']} rows, "
            f"{c['fixed_by_retry']} fixed"
        )
    echo(
        f"tags: {t['distinct_tags']} distinct, {t['mean_tags_per_row']} per row; top: "
        + ", ".join(f"{tag} {n}" for tag, n in t["top_tags"][:8])
    )
    run = m["run_dir"]
    echo(f"tagged:   {run}/tagged.jsonl   (next: curate tags normalize {run} -o ...)")
    echo(f"rejected: {run}/rejected.jsonl")
    echo(f"manifest: {run}/manifest.json")

"""`synth evolve`: the Click command over `synth.evolve.run_evolve` (options from `synth.options`;
registered in `synth.cli`)."""

from __future__ import annotations

import functools

import click

from curate.cli import input_options
from synth.options import (
    BACKEND_CHOICES,
    backend_options,
    backend_settings,
    run_options,
    run_settings,
    sampling_settings,
    synth_errors,
)


@click.command("evolve")
@click.argument("inputs", nargs=-1, required=True, metavar="INPUT...")
@click.option(
    "-o", "--output", required=True, type=click.Path(file_okay=False), help="Run directory to write."
)
@backend_options
@click.option(
    "--rounds",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Rounds of evolution; each round evolves the survivors of the one before.",
)
@click.option(
    "--n-per-prompt",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Evolutions of each surviving prompt per round, each with its own drawn operation.",
)
@click.option(
    "--operation",
    "operations",
    multiple=True,
    help="Draw only from this operation (repeatable) [default: every operation in the rules, by weight]: "
    "add_constraints, deepen, concretize, increase_reasoning, complicate_input, in_breadth, add_nodes.",
)
@click.option(
    "--tree-nodes",
    type=click.IntRange(min=1),
    default=None,
    help="Tree-Instruct (add_nodes): nodes added to the instruction's tree [default: the rules' tree_nodes, 3].",
)
@click.option(
    "--max-chars",
    type=click.IntRange(min=1),
    default=None,
    help="Longest evolved instruction; longer ones are rejected as too_long [default: the rules' max_chars].",
)
@click.option(
    "--rules",
    default="evolve.yaml",
    show_default=True,
    help="Operations, templates and elimination settings: a shipped rules file or your own YAML.",
)
@click.option(
    "--no-judge",
    is_flag=True,
    help="Do not ask the LLM whether each evolution adds information (no no_information_gain check).",
)
@click.option(
    "--answer",
    is_flag=True,
    help="Answer every evolved instruction (SFT-ready rows); short 'sorry' refusals and empty answers are rejected.",
)
@click.option(
    "--answer-backend",
    type=click.Choice(BACKEND_CHOICES),
    default=None,
    help="Backend for the answers [default: --backend]; needs --answer-model.",
)
@click.option(
    "--answer-model", default=None, help="Model for the answers [default: --model]; needs --answer."
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=64,
    show_default=True,
    help="Prompts per backend call; each finished batch is committed to the cache.",
)
@run_options
@input_options
@synth_errors
def evolve_cmd(
    inputs,
    output,
    rounds,
    n_per_prompt,
    operations,
    tree_nodes,
    max_chars,
    rules,
    no_judge,
    answer,
    answer_backend,
    answer_model,
    batch_size,
    **kw,
):
    """Evolve instructions into harder and rarer ones (Evol-Instruct in depth and breadth, Tree-Instruct).

    Each round rewrites every surviving prompt with an operation drawn by weight from the rules (seeded by
    --seed: the same seed draws the same operations). An evolution is eliminated, with its reason in
    OUTPUT/rejected.jsonl, when it is empty, too long, unchanged, copies template words ("#Rewritten
    Prompt#"), is judged equal to its parent (no information gain) or, with --answer, gets a short "sorry"
    refusal or an answer of only stop words. OUTPUT/evolved.jsonl holds the survivors of every round with
    parent_id, root_id and evolution {operation, round} (`curate why ID OUTPUT` follows the chain);
    OUTPUT/manifest.json counts survivors per operation and round and the length growth per round.

    \b
    Examples:
      synth evolve sample_data/prompts.jsonl -o evolved --rounds 2 --backend openai \\
          --base-url http://127.0.0.1:8000/v1 --model Qwen/Qwen2.5-7B-Instruct --answer
      synth evolve prompts.jsonl -o evolved --model ./SmolLM2-135M-Instruct.Q4_1.gguf \\
          --operation add_nodes --tree-nodes 5 --seed 1
    """
    from synth.evolve import EvolveConfig, run_evolve

    backend = kw["backend"]
    options = backend_settings(backend, kw)
    answer_options = backend_settings(answer_backend or backend, kw)
    cfg = EvolveConfig(
        inputs=list(inputs),
        output=output,
        model=kw["model"],
        backend=backend,
        rounds=rounds,
        n_per_prompt=n_per_prompt,
        operations=list(operations),
        rules=rules,
        tree_nodes=tree_nodes,
        max_chars=max_chars,
        judge=not no_judge,
        answer=answer,
        answer_backend=answer_backend,
        answer_model=answer_model,
        **sampling_settings(kw),
        batch_size=batch_size,
        **run_settings(kw),
        backend_options=options,
        answer_backend_options=answer_options,
    )
    _print_summary(run_evolve(cfg))


def _print_summary(m: dict) -> None:
    echo = functools.partial(click.echo, err=True)
    c = m["counts"]
    echo(
        f"rows {c['input']} = prompts {c['prompts']} + not prompts {c['not_a_prompt']} + invalid {c['invalid']}"
    )
    for r in m["rounds"]:
        rejected = ", ".join(f"{k} {v}" for k, v in r["rejected"].items())
        length = r["length"]
        grew = (
            f"; words {length['parent_words']} -> {length['words']} (x{length['growth']})"
            if length["growth"] is not None
            else ""
        )
        echo(
            f"round {r['round']}: {r['parents']} prompts, {r['candidates']} evolutions, {r['survivors']} survived"
            + (f" (rejected: {rejected})" if rejected else "")
            + grew
        )
    ops = ", ".join(
        f"{name} {o['survivors']}/{o['candidates']}" for name, o in m["operations"].items() if o["candidates"]
    )
    echo(f"survived per operation: {ops}")
    cache = m["cache"]
    echo(
        f"cache: {cache['hits']} hits, {cache['misses']} misses"
        + (f" ({cache['path']})" if cache["path"] else " (off)")
    )
    run = m["run_dir"]
    echo(f"evolved:   {run}/evolved.jsonl   (curate why ID {run})")
    echo(f"rejected:  {run}/rejected.jsonl")
    echo(f"manifest:  {run}/manifest.json")

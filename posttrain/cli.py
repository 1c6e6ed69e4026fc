"""`posttrain`: whole pipelines as recipes (`run`, `plan`), and the tiny offline models the tiny recipes start from.

Commands are thin: parse, call `posttrain.recipes`, print. `posttrain --help` imports no polars, torch or
transformers.
"""

from __future__ import annotations

import functools
import sys

import click

from curate.cli import exit_on_sigterm, one_line_errors
from curate.io import InputError
from posttrain.recipes.source import RecipeError

user_errors = one_line_errors((RecipeError, InputError))


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(package_name="posttrain")
def main():
    """Run a post-training pipeline (curate, synth and train stages) from one recipe file, resumably.

    \b
    Example:
      posttrain plan recipes/qwen2-tiny.yaml
      posttrain run recipes/qwen2-tiny.yaml -o runs/qwen2-tiny
      curate report runs/qwen2-tiny -o runs/qwen2-tiny/report.html
    """
    exit_on_sigterm()


def _output(recipe, output: str | None) -> str:
    return output or f"runs/{recipe.name}"


@main.command("run")
@click.argument("recipe_file", metavar="RECIPE.yaml", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", help="Directory for the stages' run directories [default: runs/NAME].")
@click.option("--dry-run", is_flag=True, help="Print the plan (`posttrain plan`) and run nothing.")
@user_errors
def run_cmd(recipe_file, output, dry_run):
    """Run a recipe: every stage in dependency order, each into DIR/STAGE; stages whose options, input contents
    and code are unchanged since they finished are skipped, so a failed or killed run continues where it
    stopped (a training stage from its last checkpoint).

    \b
    Example:
      posttrain run recipes/llama3-tiny.yaml -o runs/llama3-tiny
    """
    from posttrain.recipes import Recipe, run_recipe

    recipe = Recipe.load(recipe_file)
    out = _output(recipe, output)
    if dry_run:
        _print_plan(recipe, out)
        return
    outcome = run_recipe(recipe, out)
    echo = functools.partial(click.echo, err=True)
    echo(
        f"\n{recipe.name}: {len(outcome.ran)} stage(s) ran, {len(outcome.skipped)} skipped as unchanged, in {outcome.seconds:.1f} s"
    )
    echo(f"run:    {out}  (state in {out}/recipe.json)")
    echo(f"report: curate report {out} -o {out}/report.html")


@main.command("plan")
@click.argument("recipe_file", metavar="RECIPE.yaml", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", help="The run directory to compare with [default: runs/NAME].")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@user_errors
def plan_cmd(recipe_file, output, as_json):
    """Check a recipe and print its stages in run order: each one's command, inputs and outputs, whether it would
    run (and why) or is up to date in DIR, and an estimate of the LLM calls and tokens (synth) or steps and tokens
    (training) it will spend. Nothing runs and nothing is written.

    \b
    Example:
      posttrain plan recipes/qwen2.yaml -o runs/qwen2
    """
    from posttrain.recipes import Recipe

    recipe = Recipe.load(recipe_file)
    _print_plan(recipe, _output(recipe, output), as_json=as_json)


def _print_plan(recipe, out: str, *, as_json: bool = False) -> None:
    import orjson

    from posttrain.recipes import plan_recipe

    plans = plan_recipe(recipe, out)
    if as_json:
        click.echo(orjson.dumps([p.as_dict() for p in plans], option=orjson.OPT_INDENT_2).decode())
        return
    click.echo(f"{recipe.name}: {len(plans)} stage(s) -> {out}")
    for k, p in enumerate(plans, start=1):
        click.echo("")
        mark = "=" if p.up_to_date else "+"
        click.echo(click.style(f"{mark} [{k}/{len(plans)}] {p.instance.label}", bold=True) + f"  {p.why}")
        click.echo(f"    {p.command_line}")
        if p.inputs:
            click.echo(f"    in:  {', '.join(p.inputs)}")
        if p.outputs:
            click.echo(f"    out: {', '.join(p.outputs)}")
        for line in p.estimate_lines():
            click.echo(f"    {line}")
    todo = [p for p in plans if not p.up_to_date]
    llm = {k: sum(p.llm.get(k) or 0 for p in todo) for k in ("requests", "samples", "max_completion_tokens")}
    steps = sum(p.train.get("steps") or 0 for p in todo)
    click.echo(
        f"\n{len(todo)} of {len(plans)} stage(s) to run; LLM: ~{llm['requests']:,} requests, ~{llm['samples']:,} "
        f"samples, at most ~{llm['max_completion_tokens']:,} completion tokens; training: ~{steps:,} steps"
    )


@main.command("tiny-model")
@click.option(
    "--family",
    type=click.Choice(["llama", "qwen2", "gemma", "llama3.1", "qwen2.5"]),
    required=True,
    help="Chat format and architecture (posttrain.tinymodels).",
)
@click.option("-o", "--output", required=True, help="Model directory to write.")
@click.option(
    "--num-labels", type=click.IntRange(min=1), help="A sequence classifier (a reward model) with N labels."
)
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same weights.")
@click.option("--force", is_flag=True, help="Replace the output directory if it exists.")
@user_errors
def tiny_model_cmd(family, output, num_labels, seed, force):
    """Write a tiny random model with its family's real tokenizer specials and chat template: for tests, demos and
    the tiny recipes, offline. It generates noise; it is not a model to evaluate.

    \b
    Example:
      posttrain tiny-model --family gemma -o tiny-gemma
    """
    from curate.io import RunDir, write_json
    from curate.provenance import versions
    from posttrain.tinymodels import build_tiny_model

    run = RunDir(output, overwrite=force)
    try:
        build_tiny_model(family, run.path, seed=seed, num_labels=num_labels)
        config = {"family": family, "num_labels": num_labels, "seed": seed}
        write_json(
            run / "manifest.json",
            {"command": "posttrain tiny-model", "config": config, "versions": versions()},
        )
    except BaseException:
        run.abort()
        raise
    click.echo(f"wrote {run.commit()}", err=True)


if __name__ == "__main__":
    sys.exit(main())

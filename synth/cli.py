"""`synth`: make training data with an LLM. One command per registered method (`synth.methods`), its
options generated from the method's config fields; the summary is read from the manifest it wrote.

`synth --help` imports no polars, torch or transformers: method modules keep those inside functions.
"""

from __future__ import annotations

import functools

import click

from curate.cli import exit_on_sigterm, user_errors
from curate.threads import configure_threads
from synth.config import option_params
from synth.methods import METHODS, get_method


def synth_errors(fn):
    """`curate`'s user errors, plus backends and sandboxes that cannot start: one line, no traceback."""
    from synth.backends import BackendError
    from synth.sandbox import SandboxError

    @user_errors
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (BackendError, SandboxError) as e:
            raise click.ClickException(str(e)) from None

    return wrapper


def print_summary(m: dict) -> None:
    """What a run did, from its manifest: the method's own lines, tokens, cache, and where everything went."""
    echo = functools.partial(click.echo, err=True)
    method_cls = get_method(m["command"].removeprefix("synth "))
    for warning in m.get("warnings", []):
        echo(f"warning: {warning}")
    for line in method_cls.summary(m):
        echo(line)
    tok, thr = m.get("tokens"), m.get("throughput", {})
    if tok is not None:
        rate = thr.get("generated_tokens_per_s")
        echo(
            f"tokens: prompt {tok['prompt']:,}, completion {tok['completion']:,} ({tok['generated_now']:,} "
            "generated now" + (f" at {rate:,.0f} tok/s" if rate else "") + ")"
        )
    cache = m.get("cache")
    if cache is not None:
        echo(
            f"cache: {cache['hits']} hits, {cache['misses']} misses"
            + (f" ({cache['path']})" if cache["path"] else " (off)")
        )
    run, rows = m["run_dir"], m.get("output_rows", {})
    width = max(len(name) for name in m["outputs"]) + 2
    for name, file in m["outputs"].items():
        if name == "invalid" and not m["counts"].get("invalid"):
            continue
        extra = f" ({rows[file]} rows)" if file in rows else ""
        if name == "rejected" and m.get("reasons"):
            extra = " (" + ", ".join(f"{k} {v}" for k, v in m["reasons"].items()) + ")"
        echo(f"{name + ':':<{width}}{run}/{file}{extra}")
    echo(f"{'manifest:':<{width}}{run}/manifest.json")


def print_plan(plan: dict) -> None:
    click.echo(
        f"rows:           {plan['rows']}" + (f" ({plan['invalid']} invalid)" if plan["invalid"] else "")
    )
    for reason, k in plan["skipped"].items():
        click.echo(f"skipped:        {k} {reason} (would go to rejected.jsonl)")
    how = f"x n={plan['n']} =" if plan["n"] is not None else "for"
    click.echo(
        f"requests:       {plan['requests']} {how} {plan['samples']} samples "
        f"({plan['cached']} cached, {plan['to_generate']} to generate)"
    )
    click.echo(f"prompt tokens:  {plan['prompt_tokens']:,} ({plan['prompt_tokens_method']})")
    click.echo(f"cache:          {plan['cache'] or 'off'}")


def method_command(name: str) -> click.Command:
    """The Click command of the method registered as `name`."""
    method_cls = get_method(name)
    params = [
        click.Argument(["inputs"], nargs=-1, required=True, metavar="INPUT..."),
        click.Option(
            ["-o", "--output"],
            type=click.Path(file_okay=False),
            help="Run directory to write" + (" (required unless --dry-run)." if method_cls.uses_llm else "."),
        ),
        *option_params(method_cls.Config),
    ]
    if method_cls.uses_llm:
        params.append(
            click.Option(
                ["--dry-run"],
                is_flag=True,
                help="Print the requests and prompt tokens the run would send; run nothing.",
            )
        )
    from curate.schema import FORMATS

    for p in params:  # the reader's formats are known here, not in synth.config (which imports nothing heavy)
        if p.name == "input_format":
            p.type = click.Choice(FORMATS)

    @synth_errors
    def callback(inputs, output, dry_run=False, **values):
        from synth.config import from_options
        from synth.runner import plan_method, run_method

        cfg = from_options(method_cls.Config, values, inputs=list(inputs), output=output or "")
        if dry_run:
            print_plan(plan_method(method_cls, cfg))
            return
        if not output:
            raise click.UsageError(
                "missing option '-o' / '--output'" + (" (or pass --dry-run)" if method_cls.uses_llm else "")
            )
        print_summary(run_method(method_cls, cfg))

    doc = (method_cls.__doc__ or "").strip()
    return click.Command(name, params=params, callback=callback, help=doc, short_help=doc.split("\n")[0])


class MethodGroup(click.Group):
    """Commands are built from the method registry when asked for, so `synth --help` stays fast."""

    def list_commands(self, ctx):
        return list(METHODS)

    def get_command(self, ctx, cmd_name):
        return method_command(cmd_name) if cmd_name in METHODS else None


@click.group(
    cls=MethodGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110}
)
@click.version_option(package_name="posttrain")
def main():
    """Synthesize post-training data with an LLM: a local transformers model, an OpenAI-compatible server
    or vLLM, with every answer cached so that interrupted runs resume.

    \b
    Example:
      synth generate prompts.jsonl -o gen1 --backend hf --model ./my-model --n 4
    """
    exit_on_sigterm()
    configure_threads()  # before torch loads: no more compute threads than free CPUs


if __name__ == "__main__":
    main()

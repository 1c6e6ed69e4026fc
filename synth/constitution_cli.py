"""`synth constitution`: the command over `synth.constitution.run_constitution` (options from
`synth.options`; registered in `synth.cli`)."""

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
    synth_errors,
)

MODES = ("pairs", "revise")
SUBSETS = ("refusal", "hedging", "attribution")


@click.command("constitution")
@click.argument("inputs", nargs=-1, required=True, metavar="INPUT...")
@click.option(
    "-o", "--output", required=True, type=click.Path(file_okay=False), help="Run directory to write."
)
@click.option(
    "--mode",
    type=click.Choice(MODES),
    default="pairs",
    show_default=True,
    help="pairs: a response that follows the constitution (chosen) and one that shows a sampled "
    "avoid-principle (rejected). revise: response, critique against a sampled principle, revision "
    "(revision = chosen, original = rejected).",
)
@click.option(
    "--constitution",
    "constitution",
    type=click.Path(dir_okay=False),
    default=None,
    help="Your own principles file (YAML, same shape as rules/constitution.yaml) [default: the shipped one].",
)
@click.option(
    "--identity", default=None, help="The target model's name, for the self-identification principles."
)
@click.option("--developer", default=None, help="The target model's developer (e.g. Example Labs).")
@click.option(
    "--subset",
    type=click.Choice(SUBSETS),
    default=None,
    help="The prompts are of one kind: should be refused / have no certain answer / come with a source "
    "text to cite (in --source-field). Principles are drawn from those tagged with the subset.",
)
@click.option(
    "--source-field",
    default="source_text",
    show_default=True,
    help="--subset attribution: the input column with the text to cite (added to the user turn).",
)
@click.option(
    "--judge",
    is_flag=True,
    help="Confirm each pair with an A/B judge (same model) in both orders; keep it only if chosen wins both.",
)
@click.option(
    "--principle-seed",
    type=int,
    default=0,
    show_default=True,
    help="Which principle each prompt draws (a hash of seed and row id).",
)
@click.option(
    "--parse-retries",
    type=click.IntRange(min=0),
    default=1,
    show_default=True,
    help="Fresh samples to ask for after an empty or malformed answer (critique, verdict, response).",
)
@answer_options(batch_size=64)
@run_options
@backend_options
@input_options
@synth_errors
def constitution_cmd(
    inputs,
    output,
    mode,
    constitution,
    identity,
    developer,
    subset,
    source_field,
    judge,
    principle_seed,
    system_prompt,
    parse_retries,
    batch_size,
    keep_truncated,
    **kw,
):
    """Demonstrations and preference pairs from a constitution of principles (Qwen2, Constitutional AI),
    and refusal, hedging and attribution data (Gemma 2/3).

    Each prompt draws one principle (rules/constitution.yaml, or --constitution FILE). Writes
    OUTPUT/sft.jsonl (prompt + chosen response), OUTPUT/preference.jsonl (explicit prompt, chosen,
    rejected; ready for `train dpo`), both with principle_id, mode, subset and judge verdicts;
    OUTPUT/rejected.jsonl (prompts that gave no pair, with the reason: failed or malformed answers, no
    violation found, judge disagreement) and OUTPUT/manifest.json.

    \b
    Examples:
      synth constitution prompts.jsonl -o cai --mode pairs --model ./model --identity Ada --developer "Example Labs"
      synth constitution prompts.jsonl -o cai --mode revise --judge --backend openai \\
          --base-url http://127.0.0.1:8000/v1 --model Qwen/Qwen2.5-7B-Instruct
      synth constitution sourced.jsonl -o cite --subset attribution --source-field context --model ./model
    """
    from synth.constitution import ConstitutionConfig, run_constitution

    backend = kw["backend"]
    options = backend_settings(backend, kw)
    cfg = ConstitutionConfig(
        inputs=list(inputs),
        output=output,
        model=kw["model"],
        backend=backend,
        mode=mode,
        constitution=constitution,
        identity=identity,
        developer=developer,
        subset=subset,
        source_field=source_field,
        judge=judge,
        principle_seed=principle_seed,
        system_prompt=system_prompt,
        parse_retries=parse_retries,
        **sampling_settings(kw),
        batch_size=batch_size,
        keep_truncated=keep_truncated,
        **run_settings(kw),
        backend_options=options,
    )
    _print_summary(run_constitution(cfg))


def _print_summary(m: dict) -> None:
    echo = functools.partial(click.echo, err=True)
    c = m["counts"]
    echo(
        f"rows {c['input']} = prompts {c['prompts']} + not prompts {c['not_a_prompt']} + invalid {c['invalid']}"
    )
    reasons = ", ".join(f"{k} {v}" for k, v in m["reasons"].items() if k != "not_a_prompt")
    echo(
        f"prompts {c['prompts']} = pairs {c['kept']} + rejected {c['rejected']}"
        + (f"   ({reasons})" if reasons else "")
    )
    if m["judge"]["enabled"]:
        j = m["judge"]
        echo(
            f"judge: kept {j['kept']}, disagreements {j['disagreements']}, prefers rejected {j['prefers_rejected']}"
        )
    left = m["constitution"]["left_out"]
    if left:
        echo("principles left out: " + ", ".join(f"{x['id']} ({x['reason']})" for x in left))
    echo(f"cache: {m['cache']['hits']} hits, {m['cache']['misses']} misses")
    run = m["run_dir"]
    for name in ("sft.jsonl", "preference.jsonl", "rejected.jsonl", "manifest.json"):
        echo(f"{name.split('.')[0] + ':':<12}{run}/{name}")

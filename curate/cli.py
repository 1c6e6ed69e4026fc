"""`curate`: filter, inspect and compare post-training datasets. Commands are thin: parse, call, report."""

from __future__ import annotations

import functools
import signal
import sys

import click
import orjson
import yaml

from curate.engines import ENGINES, EngineError
from curate.errors import StepError, UsageError
from curate.io import InputError, os_error_message
from curate.schema import DEFAULT_MAX_ROW_BYTES, FORMATS

USER_ERRORS = (InputError, StepError, EngineError)


def one_line_errors(errors: tuple[type[Exception], ...]):
    """A decorator: `errors` (what a user can fix), and every failed file operation (a full disk, a file
    that cannot be read or written, a directory in the way), become one line naming the file and a non-zero
    exit, never a traceback."""

    def decorate(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except UsageError as e:
                raise click.UsageError(str(e)) from None
            except errors as e:
                raise click.ClickException(str(e).strip("'\"")) from None
            except BrokenPipeError:
                sys.stderr.close()
                sys.exit(1)
            except OSError as e:
                raise click.ClickException(os_error_message(e)) from None

        return wrapper

    return decorate


user_errors = one_line_errors(USER_ERRORS)


def exit_on_sigterm() -> None:
    """SIGTERM (`kill`, `timeout`) ends a command as Ctrl-C does: what it was writing is removed on the way out
    (a signal's default action would leave its hidden directory and worker processes behind)."""
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


def input_options(fn):
    """Options every command that reads datasets shares."""
    fn = click.option(
        "--input-format",
        type=click.Choice(FORMATS),
        default="auto",
        show_default=True,
        help="Row format; auto-detected per row by default.",
    )(fn)
    fn = click.option(
        "--on-error",
        type=click.Choice(["fail", "skip"]),
        default="fail",
        show_default=True,
        help="On a bad line: stop with its file, line and field, or set it aside in invalid.jsonl.",
    )(fn)
    fn = click.option(
        "--max-row-bytes",
        type=click.IntRange(min=1),
        default=DEFAULT_MAX_ROW_BYTES,
        show_default=True,
        help="Rows larger than this are invalid.",
    )(fn)
    return fn


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(package_name="posttrain")
def main():
    """Curate LLM post-training data: filter it, and explain every row that was dropped or edited.

    \b
    Example:
      curate filter sample_data/conversations.jsonl -o run1
      curate why <id> run1
      curate diff sample_data/conversations.jsonl run1
    """
    exit_on_sigterm()


def _parse_set(values: tuple[str, ...]) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        step, dot, option = key.partition(".")
        if not sep or not dot or not step or not option:
            raise click.BadParameter(
                f"{item!r}: expected STEP.OPTION=VALUE, e.g. near-dedup.threshold=0.85", param_hint="--set"
            )
        out.setdefault(step, {})[option] = yaml.safe_load(raw)
    return out


def _filter_spec(
    filters: str | None, config: str | None, overrides: dict[str, dict], shortcuts: list = ()
) -> list:
    """The pipeline as a recipe list, with --set overrides and shortcut flags applied to the steps they name."""
    from curate.steps import DEFAULT_FILTERS, load_recipe

    if filters and config:
        raise click.UsageError("give --filters or --config, not both")
    if config:
        spec = load_recipe(config)
    elif filters:
        spec = [f.strip() for f in filters.split(",") if f.strip()]
        if not spec:
            raise click.BadParameter("no filter named", param_hint="--filters")
    else:
        spec = list(DEFAULT_FILTERS)
    for item in spec:
        if not (isinstance(item, str) or (isinstance(item, dict) and len(item) == 1)):
            raise StepError(f"a recipe step must be a name or {{name: {{options}}}}, got {item!r}")
    names = [item if isinstance(item, str) else next(iter(item)) for item in spec]
    overrides = {k: dict(v) for k, v in overrides.items()}
    for flag, key, value, targets in shortcuts:
        present = [t for t in targets if t in names]
        if not present:
            raise click.UsageError(
                f"{flag} sets an option of {' or '.join(targets)}, which is not in the pipeline "
                f"({', '.join(names)})"
            )
        for t in present:
            overrides.setdefault(t, {})[key] = value
    merged = []
    for item in spec:
        name, settings = (item, {}) if isinstance(item, str) else next(iter(item.items()))
        merged.append({name: {**(settings or {}), **overrides.get(name, {})}})
    unused = sorted(set(overrides) - set(names))
    if unused:
        raise click.UsageError(
            f"an option is set for step {unused[0]!r}, which is not in the pipeline ({', '.join(names)})"
        )
    return merged


@main.command("filter")
@click.argument("inputs", nargs=-1, required=True)
@click.option(
    "-o",
    "--output",
    default="curated",
    show_default=True,
    help="Run directory: kept.jsonl, rejected.jsonl, edits.jsonl, invalid.jsonl, manifest.json. "
    "'-' writes kept rows to stdout (then --ledger is required).",
)
@click.option("--ledger", "ledger_dir", help="With -o -: the run directory for the ledger and manifest.")
@click.option(
    "--filters",
    help="Comma-separated steps, in order (default: quality,selfid,exact-dedup,near-dedup,language).",
)
@click.option(
    "--config",
    type=click.Path(dir_okay=False),
    help="YAML recipe: `filters: [quality, {near-dedup: {threshold: 0.85}}]`.",
)
@click.option(
    "--set", "sets", multiple=True, metavar="STEP.OPTION=VALUE", help="Override a step option; repeatable."
)
@click.option("--identity", help="selfid: the target model's own name, which it may claim (e.g. Gemma).")
@click.option("--developer", help="selfid: the target model's developer (e.g. Google).")
@click.option("--languages", help="language: codes to keep, comma-separated (default: en).")
@click.option(
    "--pii-ner", help="pii: installed spaCy model name or path for PERSON/LOCATION (e.g. en_core_web_sm)."
)
@click.option(
    "--batch-size", type=click.IntRange(min=1), default=10_000, show_default=True, help="Rows per batch."
)
@click.option(
    "-j",
    "--workers",
    type=click.IntRange(min=1),
    help="Worker processes for CPU-bound steps (default: one per core; 1: none).",
)
@click.option(
    "--engine",
    type=click.Choice(ENGINES),
    default="local",
    show_default=True,
    help="local: this machine (Polars and worker processes); ray: Ray Data, same output (pip install 'posttrain[ray]').",
)
@click.option(
    "--ray-address",
    metavar="ADDRESS",
    help="With --engine ray: join this cluster (e.g. auto, 10.0.0.5:6379, ray://head:10001); default: a local Ray instance for the run.",
)
@click.option("-f", "--force", is_flag=True, help="Replace the output directory if it exists.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or summary.")
@input_options
@user_errors
def filter_cmd(
    inputs,
    output,
    ledger_dir,
    filters,
    config,
    sets,
    identity,
    developer,
    languages,
    pii_ner,
    batch_size,
    workers,
    engine,
    ray_address,
    force,
    quiet,
    input_format,
    on_error,
    max_row_bytes,
):
    """Filter conversations; every dropped row goes to rejected.jsonl with its step, reason and detail.

    INPUTS are JSONL (.jsonl, .gz, .zst), Parquet, run directories, or '-' for stdin.

    \b
    Examples:
      curate filter data.jsonl -o run1
      curate filter a.jsonl b.parquet --filters quality,exact-dedup --on-error skip -o run2
      curate filter data.jsonl --identity Gemma --developer Google --languages en,fr -o run3
      cat data.jsonl | curate filter - -o - --ledger run4 > kept.jsonl
      curate filter data.jsonl --engine ray --ray-address auto -o run5
    """
    from curate.run import FilterConfig, run_filter

    if ray_address and engine != "ray":
        raise click.UsageError("--ray-address joins a Ray cluster: add --engine ray")
    if workers and engine == "ray":
        raise click.UsageError(
            "-j sets the local engine's worker processes; with --engine ray, Ray uses the cluster's CPUs"
        )

    shortcuts = [
        ("--identity", "identity", identity, ("selfid",)),
        ("--developer", "developer", developer, ("selfid",)),
        ("--languages", "languages", languages, ("language",)),
        ("--pii-ner", "ner", pii_ner, ("pii", "pii-redact")),
    ]
    spec = _filter_spec(filters, config, _parse_set(sets), [s for s in shortcuts if s[2] is not None])
    stdout = output == "-"
    if stdout and not ledger_dir:
        raise click.UsageError(
            "-o - writes kept rows to stdout; give --ledger DIR for rejected rows and the manifest"
        )
    cfg = FilterConfig(
        inputs=list(inputs),
        output=ledger_dir if stdout else output,
        filters=spec,
        input_format=input_format,
        on_error=on_error,
        batch_size=batch_size,
        max_row_bytes=max_row_bytes,
        overwrite=force,
        progress=None if not quiet else False,
        stdout=stdout,
        engine=engine,
        ray_address=ray_address,
    )
    if workers:
        cfg.workers = workers
    manifest = run_filter(cfg)
    if not quiet:
        _print_summary(manifest)


def _print_summary(m: dict) -> None:
    echo = functools.partial(click.echo, err=True)
    c = m["counts"]
    echo("")
    echo(f"{'step':<14} {'in':>9} {'dropped':>9} {'out':>9} {'rows/s':>9}  top reasons")
    for st in m["steps"]:
        reasons = ", ".join(f"{r} {n}" for r, n in list(st["reasons"].items())[:3])
        if "edited_rows" in st:
            reasons = f"edited {st.get('edited_rows', 0)} rows" + (f"; {reasons}" if reasons else "")
        echo(
            f"{st['name']:<14} {st['in']:>9} {st['dropped']:>9} {st['out']:>9} {st.get('rows_per_s', '-'):>9}  {reasons}"
        )
    echo("")
    echo(
        f"input {c['input']} = kept {c['kept']} + rejected {c['rejected']} + invalid {c['invalid']}"
        f"   ({m['seconds']:.1f}s, {m.get('rows_per_s') or '-'} rows/s)"
    )
    run = m.get("run_dir")
    if run:
        main = "stdout" if m["outputs"]["kept"] == "-" else f"{run}/kept.jsonl"
        echo(f"kept:     {main}")
        echo(f"rejected: {run}/rejected.jsonl   (curate why ID {run})")
        if c["edits"]:
            echo(f"edits:    {run}/edits.jsonl")
        if c["invalid"]:
            echo(f"invalid:  {run}/invalid.jsonl")
        echo(f"manifest: {run}/manifest.json")


@main.command("filters")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@user_errors
def filters_cmd(fmt):
    """List every step with its options and defaults.

    \b
    Example:
      curate filters
    """
    from curate.steps import DEFAULT_FILTERS, REGISTRY, option_help, step_class

    listing = []
    for name in REGISTRY:
        try:
            cls = step_class(name)
        except ImportError as e:
            listing.append(
                {"name": name, "unavailable": f"missing dependency: {e.name} (install posttrain[...] extras)"}
            )
            continue
        listing.append(
            {
                "name": name,
                "kind": cls.kind,
                "default": name in DEFAULT_FILTERS,
                "help": cls.help,
                "options": option_help(cls),
            }
        )
    if fmt == "json":
        click.echo(orjson.dumps(listing, option=orjson.OPT_INDENT_2, default=str).decode())
        return
    for s in listing:
        if "unavailable" in s:
            click.echo(f"{s['name']}  ({s['unavailable']})\n")
            continue
        tag = " [default]" if s["default"] else ""
        click.echo(click.style(s["name"], bold=True) + f"  ({s['kind']}){tag}  {s['help']}")
        for o in s["options"]:
            click.echo(f"    {o['name']:<26} {o['type']:<12} default {o['default']!r:<16} {o['help']}")
        click.echo("")


@main.command("why")
@click.argument("row_id")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@user_errors
def why_cmd(row_id, run_dir, fmt):
    """Print one row's fate in a run: kept, rejected (step, reason, detail), edited; and the row.

    In a `curate tags normalize` run, ROW_ID may be a tag: how it was merged, and what was merged into it.

    \b
    Example:
      curate why 3f2a9c... run1
    """
    from curate.ledger import why

    out = why(run_dir, row_id)
    if fmt == "json":
        click.echo(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode())
    else:
        _print_why(out)
    if out["status"] == "not found":
        sys.exit(1)


def _print_why(out: dict) -> None:
    status = out["status"]
    color = {"kept": "green", "rejected": "red", "edited": "yellow"}.get(status, "magenta")
    click.echo(f"{out['id']}: " + click.style(status.upper(), fg=color, bold=True) + f"  in {out['run']}")
    if status == "tag":
        _print_tag(out["tag"])
        return
    if status == "rejected":
        click.echo(f"  step:   {out['step']}\n  reason: {out['reason']}\n  detail: {out['detail']}")
        ref = out.get("refers_to")
        if ref:
            click.echo(f"  refers to {ref['id']} ({ref['status']})")
    for e in out["edits"]:
        click.echo(f"  edited by {e['step']} in {e['field']}:")
        click.echo("    " + _render_diff(_diff(e["before"], e["after"])))
    row = out.get("row")
    if row and isinstance(row.get("evolution"), dict):
        click.echo(f"  evolution: {_evolution(row['evolution'])}, root {row.get('root_id')}")
    for link in out.get("lineage", []):
        evo = f" ({_evolution(link['evolution'])})" if isinstance(link.get("evolution"), dict) else ""
        click.echo(f"  parent: {link['id']}" + evo + ("" if link["found"] else " (not in this run)"))
    if row:
        click.echo("  row:")
        from curate.schema import turn_fields

        for m in (m for _, msgs in turn_fields(row)[0] for m in msgs):
            text = m["content"] if len(m["content"]) <= 400 else m["content"][:400] + "…"
            for c in m.get("tool_calls") or ():
                text += (
                    f" [calls {c['function']['name']}({orjson.dumps(c['function']['arguments']).decode()})]"
                )
            click.echo(f"    {m['role']:>9}: " + text.replace("\n", "\n" + " " * 15))
    if status == "not found":
        click.echo("  not in the run's kept, rejected or edited rows", err=True)


def _evolution(evo: dict) -> str:
    return f"{evo.get('operation')}, round {evo.get('round')}"


def _print_tag(t: dict) -> None:
    raw = t["as_raw"]
    if raw:
        fate = (
            "dropped"
            if raw["canonical"] is None
            else "kept as it is"
            if raw["canonical"] == raw["raw"]
            else f"now {raw['canonical']!r}"
        )
        click.echo(f"  raw tag in {raw['rows']} rows: {fate}")
        for hop in raw["steps"]:
            click.echo(f"    {hop['step']}: {hop['from']!r} -> {hop['to']!r}  ({hop['detail']})")
    merged = t["merged_into_it"]
    if merged:
        click.echo(f"  canonical tag of {len(merged)} other raw tags:")
        for r in merged[:20]:
            click.echo(f"    {r['raw']!r} ({r['rows']} rows), {r['step']}: {r['steps'][-1]['detail']}")
        if len(merged) > 20:
            click.echo(f"    … {len(merged) - 20} more (--format json shows all)")


def _diff(before, after):
    from curate.diff import word_diff

    return word_diff(before, after)


def _render_diff(ops) -> str:
    out = []
    for op, text in ops:
        if op == "=":
            out.append(text)
        elif op == "-":
            out.append(click.style(f"[-{text}-]", fg="red"))
        else:
            out.append(click.style(f"{{+{text}+}}", fg="green"))
    return "".join(out)


@main.command("diff")
@click.argument("a")
@click.argument("b")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=20,
    show_default=True,
    help="Rows shown per section in text output (0: all).",
)
@user_errors
def diff_cmd(a, b, fmt, limit):
    """Compare A (before) with B (after): dropped rows with reasons, edited rows word by word, added rows.

    A and B are files or run directories; rows are joined on id.

    \b
    Examples:
      curate diff data.jsonl run1
      curate diff run1 run2 --format json | jq '.counts'
    """
    from curate.diff import diff

    out = diff(a, b)
    if fmt == "json":
        click.echo(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode())
        return
    c = out["counts"]
    click.echo(f"A {out['a']}: {c['a']} rows   B {out['b']}: {c['b']} rows")
    click.echo(
        f"unchanged {c['unchanged']}   "
        + click.style(f"dropped {c['dropped']}", fg="red")
        + "   "
        + click.style(f"edited {c['edited']}", fg="yellow")
        + "   "
        + click.style(f"added {c['added']}", fg="green")
    )
    if out["dropped_by_reason"]:
        click.echo("\ndropped, by reason:")
        for reason, n in out["dropped_by_reason"].items():
            click.echo(f"  {n:>7}  {reason}")
    cap = (lambda xs: xs) if limit == 0 else (lambda xs: xs[:limit])
    if out["dropped"]:
        click.echo(click.style("\ndropped rows:", bold=True))
        for d in cap(out["dropped"]):
            click.echo(
                click.style(f"- {d['id']}", fg="red") + f"  {d['step']}: {d['reason']}  {d['detail'] or ''}"
            )
        _more(out["dropped"], limit)
    if out["edited"]:
        click.echo(click.style("\nedited rows:", bold=True))
        for e in cap(out["edited"]):
            for ch in e["changes"]:
                click.echo(
                    click.style(f"~ {e['id']} {ch['field']}: ", fg="yellow") + _render_diff(ch["diff"])
                )
        _more(out["edited"], limit)
    if out["added"]:
        click.echo(click.style("\nadded rows:", bold=True))
        for d in cap(out["added"]):
            click.echo(click.style(f"+ {d['id']}", fg="green"))
        _more(out["added"], limit)


def _more(items, limit):
    if limit and len(items) > limit:
        click.echo(f"  … {len(items) - limit} more (--limit 0 shows all)")


@main.command("stats")
@click.argument("inputs", nargs=-1, required=True)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option(
    "--language-sample",
    type=click.IntRange(min=0),
    default=2000,
    show_default=True,
    help="Rows read for language identification (0: skip).",
)
@click.option("--input-format", type=click.Choice(FORMATS), default="auto", show_default=True)
@user_errors
def stats_cmd(inputs, fmt, language_sample, input_format):
    """Rows, kinds, turns, length distribution (words) and languages of a dataset.

    \b
    Example:
      curate stats sample_data/conversations.jsonl
    """
    from curate.stats import dataset_stats

    out = dataset_stats(list(inputs), input_format=input_format, language_sample=language_sample)
    if fmt == "json":
        click.echo(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode())
        return
    click.echo(
        f"rows     {out['rows']}"
        + (f"   (invalid lines skipped: {out['invalid']})" if out["invalid"] else "")
    )
    if not out["rows"]:
        return
    click.echo("kinds    " + ", ".join(f"{k} {v}" for k, v in out["kinds"].items()))
    click.echo(f"system   {out['with_system_prompt']} rows with a system prompt")
    for key in ("turns", "words", "assistant_words"):
        d = out[key]
        click.echo(f"{key:<16} " + "  ".join(f"{k} {v}" for k, v in d.items()))
    if "languages" in out:
        langs = ", ".join(f"{k} {v}" for k, v in list(out["languages"].items())[:10])
        click.echo(f"languages ({out['languages_sampled']} sampled)  {langs}")
    if "tags" in out:
        t = out["tags"]
        click.echo(
            f"tags     {t['tagged_rows']} tagged rows, {t['distinct_tags']} distinct tags, "
            f"{t['mean_tags_per_row']} per row"
        )
        click.echo("tags per row     " + "  ".join(f"{k}: {v}" for k, v in t["tags_per_row"].items()))
        click.echo("top tags         " + ", ".join(f"{tag} {n}" for tag, n in t["top_tags"]))


@main.group("tags")
def tags_group():
    """InsTag tags: normalize the open-set tags `synth tag` wrote.

    \b
    Example:
      curate tags normalize tagged-run -o norm-run
    """


@tags_group.command("normalize")
@click.argument("inputs", nargs=-1, required=True)
@click.option(
    "-o", "--output", required=True, help="Run directory: tagged.jsonl, tag_map.jsonl, manifest.json."
)
@click.option(
    "--steps",
    help="Comma-separated steps, in order (default: frequency,rule,association; "
    "semantic with --embedding-model).",
)
@click.option(
    "--config",
    type=click.Path(dir_okay=False),
    help="YAML recipe with a `normalize:` list (rules/instag.yaml is one).",
)
@click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="STEP.OPTION=VALUE",
    help="Override a step option, e.g. frequency.alpha=5; repeatable.",
)
@click.option(
    "--embedding-model",
    type=click.Path(exists=True, file_okay=False),
    help="Local sentence-embedding model directory: switches semantic aggregation on.",
)
@click.option("-f", "--force", is_flag=True, help="Replace the output directory if it exists.")
@input_options
@user_errors
def tags_normalize_cmd(
    inputs, output, steps, config, sets, embedding_model, force, input_format, on_error, max_row_bytes
):
    """Normalize InsTag tags: frequency filter, rule, semantic and association aggregation. No LLM.

    Rows keep every field; `tags` becomes the canonical tags and `raw_tags` keeps the tags read.
    OUTPUT/tag_map.jsonl maps each raw tag to its canonical tag (null: dropped) with the step and reason;
    `curate why TAG OUTPUT` explains one.

    \b
    Examples:
      curate tags normalize tagged-run -o norm-run
      curate tags normalize tagged.jsonl -o norm-run --set frequency.alpha=5 --embedding-model ./all-MiniLM-L6-v2
      curate tags normalize tagged.jsonl -o norm-run --steps rule,association
    """
    from curate.tags import NormalizeConfig, normalize_spec, run_normalize

    spec = normalize_spec(
        steps=steps, config=config, overrides=_parse_set(sets), embedding_model=embedding_model
    )
    m = run_normalize(
        NormalizeConfig(
            inputs=list(inputs),
            output=output,
            steps=spec,
            input_format=input_format,
            on_error=on_error,
            max_row_bytes=max_row_bytes,
            overwrite=force,
        )
    )
    echo = functools.partial(click.echo, err=True)
    for st in m["steps"]:
        extra = "  ".join(f"{k} {v}" for k, v in st.get("summary", {}).items() if k != "model")
        echo(
            f"{st['name']:<12} tags {st['tags_in']:>6} -> {st['tags_out']:>6}   merged {st['merged']:>5}  "
            f"dropped {st['dropped']:>5}  {extra}"
        )
    b, a, c = m["before"], m["after"], m["counts"]
    echo(
        f"rows {c['rows']} ({c['untagged']} without tags, {c['invalid']} invalid); tags per row "
        f"{b['mean_tags_per_row']} -> {a['mean_tags_per_row']}; distinct {b['distinct_tags']} -> {a['distinct_tags']}"
    )
    run = m["run_dir"]
    echo(f"tagged:   {run}/tagged.jsonl   (next: curate select {run} -o ... --n N)")
    echo(f"tag map:  {run}/tag_map.jsonl  (curate why TAG {run})")
    echo(f"manifest: {run}/manifest.json")


@main.command("select")
@click.argument("inputs", nargs=-1, required=True)
@click.option(
    "-o", "--output", required=True, help="Run directory: selected.jsonl, rejected.jsonl, manifest.json."
)
@click.option("-n", "--n", "n", type=click.IntRange(min=1), required=True, help="Rows to select (exactly).")
@click.option(
    "--strategy",
    type=click.Choice(["instag", "random", "complexity", "diversity"]),
    default="instag",
    show_default=True,
    help="instag: most tags first, each pass takes rows that add an uncovered tag; "
    "diversity: the same passes in random order; complexity: most tags; random.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Tie-breaks and random orders.")
@click.option("-f", "--force", is_flag=True, help="Replace the output directory if it exists.")
@input_options
@user_errors
def select_cmd(inputs, output, n, strategy, seed, force, input_format, on_error, max_row_bytes):
    """Select N rows for tag diversity and complexity (InsTag); the others go to rejected.jsonl
    (reason not-selected, with why). The manifest compares tag coverage of selection and pool.

    \b
    Examples:
      curate select norm-run -o selected --n 6000
      curate select norm-run -o baseline --n 6000 --strategy random --seed 1
    """
    from curate.select import SelectConfig, run_select

    m = run_select(
        SelectConfig(
            inputs=list(inputs),
            output=output,
            n=n,
            strategy=strategy,
            seed=seed,
            input_format=input_format,
            on_error=on_error,
            max_row_bytes=max_row_bytes,
            overwrite=force,
        )
    )
    echo = functools.partial(click.echo, err=True)
    sel, pool, c = m["selection"], m["pool"], m["counts"]
    echo(
        f"selected {c['selected']} of {c['selected'] + c['not_selected']} rows ({strategy}, seed {seed})"
        + (f" in {m['strategy']['passes']} passes" if "passes" in m["strategy"] else "")
    )
    echo(
        f"tags: {sel['distinct_tags']} of {pool['distinct_tags']} covered ({sel['tag_coverage']}); "
        f"tags per row {sel['mean_tags_per_row']} (pool {pool['mean_tags_per_row']})"
    )
    run = m["run_dir"]
    echo(f"selected: {run}/selected.jsonl")
    echo(f"rejected: {run}/rejected.jsonl   (not-selected; curate why ID {run})")
    echo(f"manifest: {run}/manifest.json")


class DefaultGroup(click.Group):
    """A group whose first argument, when it names none of its commands, goes to `default_command`:
    `curate annotate pool -o ranked` is `curate annotate serve pool -o ranked`."""

    def __init__(self, *args, default_command: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.default_command = default_command

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = [self.default_command, *args]
        return super().parse_args(ctx, args)


@main.group("annotate", cls=DefaultGroup, default_command="serve")
def annotate_group():
    """People rank, edit and flag the responses `synth candidates` pooled, on a local page; then export
    demonstrations, preference pairs and rankings.

    \b
    Examples:
      curate annotate pool -o ranked                  # serves the page and prints its address
      curate annotate export ranked -o ranked-data    # sft.jsonl, preference.jsonl, ranked.jsonl, ledger
    """


@annotate_group.command(
    "serve", short_help="Serve the ranking page (the default: curate annotate CANDIDATES -o OUT)."
)
@click.argument("candidates")
@click.option(
    "-o",
    "--output",
    required=True,
    help="Annotation directory (annotations.sqlite); an existing one is reused, which is how you continue.",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=0,
    help="Port to listen on [default: a free one, printed on start].",
)
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="A loopback address; any other is refused."
)
@user_errors
def annotate_serve_cmd(candidates, output, port, host):
    """Serve the ranking page for CANDIDATES (rows of `synth candidates`: prompt + responses) until Ctrl+C.

    Each annotator gives a name, then ranks each prompt's responses (click or number keys; drag or
    Shift+arrows to reorder), may edit the best one, flag a response (unsafe, wrong, off-topic) or skip
    the prompt. Every action is saved at once in OUTPUT/annotations.sqlite; the responses' sources are
    never sent to the page. Run the same command again to continue.

    \b
    Examples:
      curate annotate pool -o ranked
      curate annotate pool/candidates.jsonl -o ranked --port 8765
    """
    from curate.annotate.candidates import read_candidates
    from curate.annotate.server import bind, is_loopback, serve, url_of
    from curate.annotate.store import Store

    if not is_loopback(host):
        raise click.BadParameter(
            f"{host}: the page is served on a loopback address only (127.0.0.1, ::1, localhost)",
            param_hint="--host",
        )
    rows = read_candidates(candidates)
    store = Store.open(output, rows, source=str(candidates))
    try:
        sock = bind(host, port)
        names = store.annotators()
        click.echo(
            f"curate annotate: {len(rows)} prompts from {candidates}, {len(names)} annotator(s) so far; "
            f"every action is saved in {store.path}"
        )
        click.echo(f"open {url_of(sock)}   (Ctrl+C stops; run the same command to continue)")
        sys.stdout.flush()
        serve(store, sock)
    finally:
        store.close()


@annotate_group.command("export", short_help="Write demonstrations, pairs, rankings and the ledger from OUT.")
@click.argument("annotations", type=click.Path(exists=True, file_okay=False))
@click.option(
    "-o",
    "--output",
    required=True,
    help="Run directory: sft.jsonl, preference.jsonl, ranked.jsonl, rejected.jsonl, edits.jsonl, "
    "agreement.jsonl, manifest.json.",
)
@click.option(
    "--pairs",
    type=click.Choice(["each", "worst"]),
    default="each",
    show_default=True,
    help="Preference pairs: the best response against each lower one, or against the worst.",
)
@click.option("-f", "--force", is_flag=True, help="Replace the output directory if it exists.")
@user_errors
def annotate_export_cmd(annotations, output, pairs, force):
    """Export ANNOTATIONS (a `curate annotate` directory; it may be in use) as training data.

    Several annotators' rankings are combined by Borda count (ties: the annotator who came first);
    responses anyone flagged are left out; skipped and flagged prompts and responses go to the ledger.

    \b
    Examples:
      curate annotate export ranked -o ranked-data
      train sft --data ranked-data/sft.jsonl --model ./base -o sft-run
      train reward --data ranked-data/ranked.jsonl --model ./rm-base -o rm-run
    """
    from curate.annotate.export import ExportConfig, run_export

    m = run_export(ExportConfig(annotations=annotations, output=output, pairs=pairs, overwrite=force))
    c, a = m["counts"], m["agreement"]
    echo = functools.partial(click.echo, err=True)
    echo(
        f"prompts {c['prompts']} = exported {c['exported']} + skipped {c['skipped']} + all flagged "
        f"{c['all_flagged']} + not yet annotated {c['not_annotated']}"
    )
    echo(
        f"demonstrations {c['demonstrations']} ({c['edits']} edited), preference pairs {c['preference_pairs']} "
        f"({m['pairs']}), rankings {c['rankings']}"
    )
    echo(
        f"ledger {c['rejected']}: {c['skipped']} skipped, {c['all_flagged']} all flagged, "
        f"{c['flagged_responses']} flagged responses, {c['unused_edits']} edits not used"
    )
    if a["prompts_with_several_rankers"]:
        echo(
            f"agreement over {a['prompts_with_several_rankers']} prompts with several rankers: mean Kendall's tau "
            f"{a['mean_kendall_tau']}, top choice agreed {a['mean_top_agreement']}"
        )
    run = m["run_dir"]
    echo(f"files:    {run}/sft.jsonl, preference.jsonl, ranked.jsonl, agreement.jsonl")
    echo(f"rejected: {run}/rejected.jsonl   (curate why ID {run})")
    echo(f"manifest: {run}/manifest.json")


@main.command("report")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.option("-o", "--output", default="report.html", show_default=True, help="HTML file to write.")
@click.option(
    "--table-rows",
    type=click.IntRange(min=0),
    default=1000,
    show_default=True,
    help="Rejected, edited and invalid rows in the page's table (sampled per step and reason).",
)
@click.option(
    "--language-sample",
    type=click.IntRange(min=0),
    default=2000,
    show_default=True,
    help="Rows sampled across the run for language identification (0: skip).",
)
@user_errors
def report_cmd(run_dir, output, table_rows, language_sample):
    """Write a run as one self-contained HTML page: funnel, reasons, distributions before and after, and a
    table of rejected and edited rows to filter and search. Needs no network to view.

    \b
    Example:
      curate filter sample_data/conversations.jsonl -o run1
      curate report run1 -o run1.html
    """
    from curate.report import write_report

    out = write_report(run_dir, output, table_rows=table_rows, language_sample=language_sample)
    click.echo(f"{out['path']}  ({out['bytes'] / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()

"""Run a recipe: each stage's command in dependency order, each into its own run directory under DIR.

A stage whose key (options, input contents, code; `posttrain.recipes.state`) is the one it last finished with is
skipped. A stage that failed or was killed runs again, and a training stage that left checkpoints passes
`--resume` when the stage is unchanged (`--force`, starting over, when it changed). The recipe state is written
after every stage, so a run stopped anywhere continues at the first unfinished stage.
"""

from __future__ import annotations

import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from posttrain.recipes.commands import CODE, StageCommand
from posttrain.recipes.recipe import Instance, Option, Recipe, Ref, is_key_value, rebase
from posttrain.recipes.source import RecipeError
from posttrain.recipes.state import (
    RecipeState,
    code_version,
    digest,
    manifest_hash,
    now,
    output_hashes,
    relative,
)


class StageFailed(RecipeError):
    """A stage's command stopped with an error; the recipe state says which, and the next run resumes there."""


@dataclass
class Resolved:
    """One stage ready to run: its argv (without `-o` and the runner's flags), its key and what it reads."""

    instance: Instance
    argv: list[str]
    key: str
    parts: dict
    sources: list[dict] = field(default_factory=list)
    pending: dict[str, str] = field(default_factory=dict)


class Resolver:
    """Turns a stage's values into command-line text: references become paths under DIR, relative paths become
    absolute; collects the fingerprints that make up the stage's key."""

    def __init__(self, recipe: Recipe, state: RecipeState, instance: Instance, *, stale: set | None = None):
        self.recipe, self.state, self.instance = recipe, state, instance
        self.fingerprints: list[str] = []
        self.sources: list[dict] = []
        # Planning: stages that will (re)run first; a reference to one is the path it will have (`pending`).
        self.stale = stale
        self.pending: dict[str, str] = {}  # path -> the stage that will write it

    def value(self, v):
        if isinstance(v, Ref):
            return self.ref(v)
        if isinstance(v, list):
            return [self.value(x) for x in v]
        if isinstance(v, dict):
            return {k: self.value(x) for k, x in v.items()}
        path = rebase(v, self.recipe.base)
        if path is not v:
            self.fingerprints.append(self.state.fingerprint(path))
            self.sources.append({"path": path})
        return path

    def ref(self, ref: Ref) -> str:
        target = self.recipe.target(ref, self.instance)
        if not isinstance(target, tuple):  # round 1 of a `previous:` reference
            return self.value(target)
        stage_id, output = target
        run_dir = self.state.out / stage_id
        self.sources.append({"stage": stage_id, "output": output})
        path = run_dir / self.recipe.stages[ref.stage].command.outputs[output] if output else run_dir
        rec = self.state.record(stage_id)
        if self.stale is not None and (stage_id in self.stale or rec.get("status") != "done"):
            self.pending[str(path)] = stage_id
            return str(path)
        if rec.get("status") != "done":
            raise RecipeError(f"{ref.where}: '{ref}' has not been made yet (stage {stage_id} has not run)")
        if output is None:
            self.fingerprints.append(rec["key"])
        elif output in rec.get("outputs", {}):
            self.fingerprints.append(rec["outputs"][output])
        else:
            raise RecipeError(f"{ref.where}: stage {stage_id} wrote no '{output}' ({rec['command']})")
        return str(path)


def describe(v) -> object:
    """A value as the `options` part of a key sees it: references by name (their content is in `inputs`)."""
    if isinstance(v, Ref):
        return {"previous" if v.previous else "from": str(v), "first": describe(v.first)}
    if isinstance(v, list):
        return [describe(x) for x in v]
    if isinstance(v, dict):
        return {k: describe(x) for k, x in v.items()}
    return v


def render_option(option: Option, value) -> list[str]:
    """An option's value as command-line arguments."""
    p, flag = option.param, "--" + option.key
    if p.is_flag:
        if p.secondary_opts:  # --x/--no-x
            on = value if flag in p.opts else not value
            return [p.opts[0] if on else p.secondary_opts[0]]
        return [flag] if value else []
    values = value if isinstance(value, list) else [value]
    if isinstance(value, dict) and is_key_value(p):
        values = [f"{k}={yaml_text(v)}" for k, v in value.items()]
    return [a for v in values for a in (flag, text(v))]


def text(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def yaml_text(v) -> str:
    """A value as YAML flow text, which `--set` reads back as the same value."""
    import orjson

    if isinstance(v, str):
        return v
    return orjson.dumps(v).decode()


def resolve(recipe: Recipe, state: RecipeState, instance: Instance, *, stale: set | None = None) -> Resolved:
    """The stage's argv and key, with every reference pointing at a finished stage's output (with `stale`, the
    stages that will run first: references to them are `pending`, and the key is not final)."""
    stage = instance.stage
    r = Resolver(recipe, state, instance, stale=stale)
    argv = [text(v) for v in r.value(stage.inputs)]
    for option in stage.options:
        argv.extend(render_option(option, r.value(option.value)))
    parts = {
        "command": stage.command.name,
        "options": digest(
            {"inputs": describe(stage.inputs), **{o.key: describe(o.value) for o in stage.options}}
        ),
        "inputs": digest(r.fingerprints),
        "code": code_version(CODE[stage.command.kind]),
    }
    return Resolved(instance, argv, digest(parts), parts, r.sources, r.pending)


def why_run(parts: dict, rec: dict) -> str:
    """Why a stage runs (again), in words, from its key's parts and its last record."""
    if not rec:
        return "new"
    if rec.get("status") in ("failed", "running"):
        stopped = "failed" if rec["status"] == "failed" else "stopped"
        return f"{stopped} last time" + (f": {rec['error']}" if rec.get("error") else "")
    before = rec.get("key_parts", {})
    what = [k for k in ("command", "options", "inputs", "code") if parts.get(k) != before.get(k)]
    return ", ".join(f"{k} changed" for k in what) or "its output is gone or was changed"


@dataclass
class Outcome:
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    seconds: float = 0.0


def run_recipe(
    recipe: Recipe,
    out: str | Path,
    *,
    echo: Callable[[str], None] = lambda line: print(line, file=sys.stderr),
) -> Outcome:
    """Run every stage that is not up to date, in order, into `out`; return what ran and what was skipped.

    Raises `StageFailed` when a stage's command fails (after recording it), `RecipeError` for a recipe that
    cannot run. A second run to the same `out` at the same time is refused.
    """
    from curate.io import OutputClaim, output_path

    out = output_path(out)
    out.mkdir(parents=True, exist_ok=True)
    claim = OutputClaim(out)
    try:
        state = RecipeState(out)
        instances = recipe.instances()
        state.data["recipe"] = {"name": recipe.name, "path": str(recipe.path.resolve())}
        state.data["order"] = [i.id for i in instances]
        outcome = Outcome()
        t0 = time.perf_counter()
        run = {"started": now(), "ran": outcome.ran, "skipped": outcome.skipped}
        state.data["runs"] = [*state.data["runs"][-19:], run]
        for k, instance in enumerate(instances, start=1):
            resolved = resolve(recipe, state, instance)
            head = f"[{k}/{len(instances)}] {instance.label}"
            if state.is_done(instance.id, resolved.key):
                state.stages[instance.id]["last_run"] = "skipped"
                outcome.skipped.append(instance.id)
                echo(f"{head}: unchanged, skipped ({relative(out / instance.id, Path.cwd())})")
                continue
            why = why_run(resolved.parts, state.record(instance.id))
            run_stage(resolved, state, echo=lambda line, head=head, why=why: echo(f"{head} ({why}): {line}"))
            outcome.ran.append(instance.id)
        outcome.seconds = round(time.perf_counter() - t0, 3)
        run["finished"] = now()
        state.save()
        return outcome
    finally:
        claim.release()


def stage_argv(resolved: Resolved, state: RecipeState) -> list[str]:
    """The full argv: what the recipe says, the run directory, and --force or --resume as the stage needs."""
    instance, cmd = resolved.instance, resolved.instance.stage.command
    run_dir = state.out / instance.id
    flags = ["--force"] if run_dir.exists() else []
    if cmd.resumable:
        from train.resume import StateDir

        if StateDir(run_dir).progress() is not None:
            same = state.record(instance.id).get("started_key") == resolved.key
            flags = ["--resume"] if same else ["--force"]
    return [*resolved.argv, "-o", str(run_dir), *flags]


def run_stage(resolved: Resolved, state: RecipeState, *, echo: Callable[[str], None]) -> None:
    instance, cmd = resolved.instance, resolved.instance.stage.command
    argv = stage_argv(resolved, state)
    rec = state.stages.setdefault(instance.id, {})
    rec.update(
        name=instance.stage.name,
        round=instance.round,
        command=cmd.name,
        kind=cmd.kind,
        files=[[name, f] for name, f in cmd.outputs.items()],  # the main output first
        status="running",
        started_key=resolved.key,
        key_parts=resolved.parts,
        inputs=resolved.sources,
        argv=argv,
        started=now(),
        last_run="ran",
    )
    rec.pop("error", None)
    state.save()
    echo(f"{cmd.name} {shlex.join(argv)}")
    t0 = time.perf_counter()
    try:
        invoke(cmd, argv)
    except BaseException as e:
        rec.update(status="failed", error=failure_message(e), seconds=round(time.perf_counter() - t0, 3))
        state.save()
        if isinstance(e, StageFailed):
            raise StageFailed(f"stage {instance.id} ({cmd.name}) failed: {e}") from None
        raise
    run_dir = state.out / instance.id
    rec.update(
        status="done",
        key=resolved.key,
        finished=now(),
        seconds=round(time.perf_counter() - t0, 3),
        outputs=output_hashes(run_dir, cmd.outputs),
        manifest_xxh3=manifest_hash(run_dir),
    )
    state.save()
    echo(f"done in {rec['seconds']:.1f} s")


def failure_message(e: BaseException) -> str:
    if isinstance(e, KeyboardInterrupt):
        return "interrupted"
    if isinstance(e, SystemExit):
        return f"exited with status {e.code}"
    return str(e) or type(e).__name__


def invoke(cmd: StageCommand, argv: list[str]) -> None:
    """Run the command's Click command in this process, as `cmd argv...` would run in a shell; a user error is
    `StageFailed` with the command's own one-line message."""
    import click

    try:
        cmd.click_command().main(args=list(argv), prog_name=cmd.name, standalone_mode=False)
    except click.exceptions.Abort:
        raise KeyboardInterrupt from None
    except click.ClickException as e:
        raise StageFailed(e.format_message()) from None
    except click.exceptions.Exit as e:
        if e.exit_code:
            raise StageFailed(f"exited with status {e.exit_code}") from None
    except SystemExit as e:
        if e.code not in (0, None):
            raise StageFailed(f"exited with status {e.code}") from None

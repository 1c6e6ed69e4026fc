"""`posttrain plan`: what a run would do, stage by stage, and what each stage will spend. Runs nothing.

For each stage: whether it is up to date in DIR (and otherwise why it runs: new, options/inputs/code changed, or
after an earlier stage that runs), its command line, inputs and outputs, and an estimate:

- synth stages: requests, samples, prompt tokens and cached samples from `synth.runner.plan_method` when the
  input exists (exact for the method's first LLM stage); while the input is still to be made by an earlier stage,
  a bound from that stage's estimated rows (rows x n samples, at most max_tokens each);
- training stages: optimizer steps from the rows, epochs, batch size and max_steps (TRL's defaults where the
  recipe sets none), and training tokens (~4 characters a token) when the data exists; online-dpo and rl also
  count the policy's samples;
- curate stages: rows in and the most that can come out;
- an up-to-date stage shows what it spent (rows, tokens, seconds) from its manifest.
"""

from __future__ import annotations

import math
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from posttrain.recipes.recipe import Instance, Recipe
from posttrain.recipes.runner import Resolved, resolve, stage_argv, why_run
from posttrain.recipes.state import RecipeState, relative


@dataclass
class StagePlan:
    instance: Instance
    up_to_date: bool
    why: str
    command_line: str
    inputs: list[str]
    outputs: list[str]
    rows_in: int | None = None
    rows_out: int | None = None  # an upper bound, or what a finished stage wrote
    exact: bool = True  # False: rows come from earlier estimates
    llm: dict = field(default_factory=dict)
    train: dict = field(default_factory=dict)
    spent: dict = field(default_factory=dict)
    note: str = ""

    def as_dict(self) -> dict:
        keys = ("up_to_date", "why", "command_line", "inputs", "outputs", "rows_in", "rows_out", "exact")
        return {
            "stage": self.instance.id,
            **{k: getattr(self, k) for k in keys},
            **{k: v for k in ("llm", "train", "spent", "note") if (v := getattr(self, k))},
        }

    def estimate_lines(self) -> list[str]:
        approx = "" if self.exact else "~"
        out = []
        if self.rows_in is not None or self.rows_out is not None:
            rows = f"rows: {approx}{_n(self.rows_in)} in"
            if self.rows_out is not None:
                rows += f", {'' if self.up_to_date else '~'}{_n(self.rows_out)} out"
            out.append(rows)
        if self.llm:
            q = self.llm
            line = f"llm: {approx}{_n(q['requests'])} requests, {approx}{_n(q['samples'])} samples"
            if q.get("prompt_tokens") is not None:
                line += f", {_n(q['prompt_tokens'])} prompt tokens ({q['prompt_tokens_method']})"
            if q.get("max_completion_tokens") is not None:
                line += f", at most {_n(q['max_completion_tokens'])} completion tokens"
            if q.get("cached"):
                line += f"; {_n(q['cached'])} samples cached"
            out.append(line)
        if self.train:
            t = self.train
            line = f"train: {approx}{_n(t['steps'])} steps ({t['how']})"
            if t.get("tokens") is not None:
                line += f", ~{_n(t['tokens'])} tokens"
            if t.get("samples") is not None:
                line += f"; policy samples {approx}{_n(t['samples'])}"
            out.append(line)
        if self.spent:
            out.append("spent: " + ", ".join(f"{k} {_n(v)}" for k, v in self.spent.items()))
        if self.note:
            out.append(f"note: {self.note}")
        return out


def _n(v) -> str:
    if v is None:
        return "?"
    return f"{v:,}" if isinstance(v, int) else f"{v:,.3g}"


def plan_recipe(recipe: Recipe, out: str | Path) -> list[StagePlan]:
    """The plan of every stage in run order, against what `out` already holds. Writes nothing."""
    from curate.io import output_path

    out = output_path(out)
    state = RecipeState(out)
    stale: set[str] = set()
    estimates: dict[str, StagePlan] = {}
    plans = []
    instances = recipe.instances()
    order = {i.id: k for k, i in enumerate(instances)}
    for instance in instances:
        resolved = resolve(recipe, state, instance, stale=stale)
        if resolved.pending:
            up_to_date, why = False, f"after {max(resolved.pending.values(), key=order.get)}"
        else:
            up_to_date = state.is_done(instance.id, resolved.key)
            why = "up to date" if up_to_date else why_run(resolved.parts, state.record(instance.id))
        if not up_to_date:
            stale.add(instance.id)
        cmd = instance.stage.command
        argv = (
            stage_argv(resolved, state)
            if not resolved.pending
            else [*resolved.argv, "-o", str(out / instance.id)]
        )
        cwd = Path.cwd()
        plan = StagePlan(
            instance,
            up_to_date,
            why,
            f"{cmd.name} " + shlex.join(relative(Path(a), cwd) if a.startswith("/") else a for a in argv),
            [_source(s) for s in resolved.sources],
            [f"{instance.id}/{f}" for f in cmd.outputs.values()] or [f"{instance.id}/"],
        )
        try:
            estimate(plan, resolved, state, estimates)
        except Exception as e:  # an estimate is advice: say why it is missing, never fail the plan for it
            plan.note = f"no estimate ({type(e).__name__}: {e})"
        estimates[instance.id] = plan
        plans.append(plan)
    return plans


def _source(s: dict) -> str:
    if "path" in s:
        return relative(Path(s["path"]), Path.cwd())
    return s["stage"] + (f".{s['output']}" if s["output"] else "")


# --- estimates ----------------------------------------------------------------------------------------------


def estimate(plan: StagePlan, resolved: Resolved, state: RecipeState, earlier: dict[str, StagePlan]) -> None:
    cmd = plan.instance.stage.command
    if plan.up_to_date:
        spent(plan, state.out / plan.instance.id)
        return
    data = data_inputs(resolved)
    if not data:
        return
    plan.rows_in, plan.exact = rows_of(data, resolved, earlier)
    if cmd.kind == "curate":
        values = option_values(resolved)
        plan.rows_out = plan.rows_in
        if cmd.name == "curate select" and plan.rows_in is not None:
            plan.rows_out = min(int(values["n"]), plan.rows_in)
    elif cmd.kind == "synth":
        synth_estimate(plan, resolved)
    elif cmd.kind == "train":
        train_estimate(plan, resolved)


def data_inputs(resolved: Resolved) -> list[str]:
    """The stage's data: its positional inputs (curate, synth) or its `--data` (train)."""
    stage = resolved.instance.stage
    if stage.command.kind in ("curate", "synth"):
        return resolved.argv[: len(stage.inputs)]
    values = option_values(resolved)
    return [values["data"]] if stage.command.kind == "train" and "data" in values else []


def option_values(resolved: Resolved) -> dict:
    """The stage's options by parameter name, as text (what the recipe sets, not the command's defaults)."""
    out, argv, k = {}, resolved.argv[len(resolved.instance.stage.inputs) :], 0
    by_flag = {
        opt: o.param
        for o in resolved.instance.stage.options
        for opt in (*o.param.opts, *o.param.secondary_opts)
    }
    while k < len(argv):
        p = by_flag.get(argv[k])
        if p is None or p.is_flag:
            k += 1
            continue
        if p.multiple:
            out.setdefault(p.name, []).append(argv[k + 1])
        else:
            out[p.name] = argv[k + 1]
        k += 2
    return out


def rows_of(paths: list[str], resolved: Resolved, earlier: dict[str, StagePlan]) -> tuple[int | None, bool]:
    """Rows in the stage's data: counted where the files exist, an earlier stage's estimate where they will."""
    from curate.io import iter_lines, resolve_input

    total, exact = 0, True
    for p in paths:
        if p in resolved.pending:
            rows = earlier[resolved.pending[p]].rows_out
            if rows is None:
                return None, False
            total, exact = total + rows, False
            continue
        total += sum(1 for _ in iter_lines(resolve_input(p)))
    return total, exact


def synth_estimate(plan: StagePlan, resolved: Resolved) -> None:
    from synth.config import from_options
    from synth.methods import get_method
    from synth.runner import plan_method

    cmd = resolved.instance.stage.command
    method_cls = get_method(cmd.target)
    argv = [*resolved.argv, "-o", "/dev/null/plan"]
    # Resilient: an option naming a directory an earlier stage will write (a reward model) reads as unset.
    ctx = cmd.click_command().make_context(cmd.name, argv, resilient_parsing=True)
    values = dict(ctx.params)
    inputs = values.pop("inputs")
    values.pop("output", None)
    values.pop("dry_run", None)
    cfg = from_options(method_cls.Config, values, inputs=list(inputs), output="")
    n = getattr(cfg, "n", 1)
    max_tokens = getattr(cfg, "max_tokens", None)
    q = None
    if plan.exact and plan.rows_in is not None and method_cls.uses_llm:
        try:
            q = plan_method(method_cls, cfg)
        except Exception as e:  # noqa: BLE001 - a method that cannot plan ahead gets the bound below
            plan.note = f"{cmd.name} --dry-run: {e}"
        if q is not None and not q["requests"] and q["items"]:
            plan.note, q = f"{cmd.name} does not list its requests ahead; a bound instead", None
    if q is not None:
        plan.llm = {
            "requests": q["requests"],
            "samples": q["samples"],
            "prompt_tokens": q["prompt_tokens"],
            "prompt_tokens_method": q["prompt_tokens_method"],
            "cached": q["cached"],
            "max_completion_tokens": q["to_generate"] * max_tokens if max_tokens else None,
            "how": "first LLM stage of the method (plan_method)",
        }
        plan.rows_out = q["samples"]
    elif plan.rows_in is not None and method_cls.uses_llm:
        plan.llm = {
            "requests": plan.rows_in,
            "samples": plan.rows_in * n,
            "max_completion_tokens": plan.rows_in * n * max_tokens if max_tokens else None,
            "how": "bound: a request of n samples per row",
        }
        plan.exact = False
        plan.rows_out = plan.rows_in * n
    else:
        plan.rows_out = plan.rows_in


def train_estimate(plan: StagePlan, resolved: Resolved) -> None:
    """Optimizer steps from the rows, epochs, batch and max_steps; tokens from the data where it exists."""
    from train.config import load_run_config

    cmd = resolved.instance.stage.command
    values = option_values(resolved)
    if "data" not in values or plan.rows_in is None:
        return
    method = {"train rl": values.get("algo", "grpo")}.get(cmd.name, cmd.name.removeprefix("train "))
    cfg = load_run_config(
        method,
        model=values.get("model", "model"),
        output_dir="plan",
        config_path=values.get("config"),
        overrides=values.get("sets", []),
        data_path=values["data"],
    )
    trl = {**_trl_defaults(method), **cfg.trl}
    if cfg.data.max_rows is not None:
        plan.rows_in = min(plan.rows_in, cfg.data.max_rows)
    rows = plan.rows_in * (1 - cfg.data.eval_fraction)
    per_step = int(trl["per_device_train_batch_size"]) * int(trl["gradient_accumulation_steps"])
    epochs = max(1, math.ceil(float(trl["num_train_epochs"])))
    max_steps = int(trl.get("max_steps") or -1)
    samples = None
    if (
        cmd.name == "train online-dpo"
    ):  # each episode samples --n answers to its prompts, then trains on pairs
        episodes = int(values.get("episodes", 3))
        prompts = min(int(values.get("prompts_per_episode") or plan.rows_in), plan.rows_in)
        samples = prompts * int(values.get("n", 4)) * episodes
        rows = prompts * episodes
    elif cmd.name == "train rl":  # a batch counts completions: num_generations per prompt
        rows *= int(trl["num_generations"])
    steps = math.ceil(rows / per_step) * epochs
    how = f"{round(rows)} rows x {epochs} epochs / batch {per_step}"
    if max_steps > 0:
        steps, how = max_steps, f"max_steps {max_steps}"
    if cmd.name == "train rl":
        samples = steps * per_step
    plan.train = {"steps": steps, "how": how, "samples": samples}
    if cmd.name in ("train sft", "train dpo", "train reward") and plan.exact and max_steps <= 0:
        plan.train["tokens"] = int(_characters(values["data"]) / 4 * epochs)


def _trl_defaults(method: str) -> dict:
    import dataclasses

    from train.config import trl_config_class

    keys = ("per_device_train_batch_size", "gradient_accumulation_steps", "num_train_epochs", "max_steps")
    fields = {f.name: f.default for f in dataclasses.fields(trl_config_class(method))}
    return {k: fields.get(k) for k in (*keys, "num_generations")}


def _characters(path: str) -> int:
    """Characters of text in a dataset's rows (every string in them, ids and keys aside)."""
    from curate.io import iter_lines, resolve_input

    def chars(v) -> int:
        if isinstance(v, str):
            return len(v)
        if isinstance(v, list):
            return sum(chars(x) for x in v)
        if isinstance(v, dict):
            return sum(chars(x) for k, x in v.items() if k not in ("id", "role", "parent_id"))
        return 0

    total = 0
    for rec in iter_lines(resolve_input(path)):
        total += chars(orjson.loads(rec.data) if isinstance(rec.data, bytes) else rec.data)
    return total


def spent(plan: StagePlan, run_dir: Path) -> None:
    """What a finished stage did, from its manifest."""
    f = run_dir / "manifest.json"
    if not f.is_file():
        return
    m = orjson.loads(f.read_bytes())
    counts = m.get("counts") or {}
    if "input" in counts:
        plan.spent["rows in"] = counts["input"]
    rows = m.get("output_rows") or {}
    if rows:
        plan.spent["rows out"] = sum(rows.values())
    elif "kept" in counts:
        plan.spent["rows out"] = counts["kept"]
    tokens = m.get("tokens")
    if tokens:
        plan.spent["prompt tokens"] = tokens.get("prompt")
        plan.spent["completion tokens"] = tokens.get("completion")
    metrics = m.get("metrics") or {}
    if metrics.get("global_step") is not None:
        plan.spent["steps"] = metrics["global_step"]
    thr = m.get("throughput") or {}
    if thr.get("tokens") is not None:
        plan.spent["training tokens"] = thr["tokens"]
    seconds = m.get("seconds") or thr.get("seconds") or thr.get("train_runtime_s")
    if seconds is not None:
        plan.spent["seconds"] = seconds

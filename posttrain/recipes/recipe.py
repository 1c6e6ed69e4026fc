"""A recipe: named stages, each a posttrain command with its inputs and options, checked whole before anything runs.

```yaml
name: demo
stages:
  - name: filter
    command: curate filter
    inputs: [../sample_data/conversations.jsonl]    # paths are relative to the recipe file
    options: {filters: "quality,exact-dedup"}
  - name: sft
    command: train sft
    options:
      data: {from: filter.kept}                      # a file of an earlier stage's run directory
      model: {from: base}                            # an earlier stage's run directory
      set: {max_steps: 10, learning_rate: 2.0e-5}    # --set KEY=VALUE: a mapping, each value as JSON
  - name: loop
    rounds: 2                                        # the stages below, run twice
    stages:
      - name: dpo
        command: train dpo
        options:
          model: {previous: dpo, first: {from: sft}} # round r takes round r-1's dpo; round 1 takes sft
          data: ../sample_data/preference.jsonl
```

Stages run in dependency order (the order written breaks ties). `Recipe.load` refuses, naming the file and line, an
unknown key, command, option, stage or output, a value the command's option does not accept, a missing required
option, and a cycle. `Recipe.instances()` lists the stages to run, rounds expanded, each with its run directory
(`filter`, `loop/round-2/dpo`).
"""

from __future__ import annotations

import difflib
import heapq
import re
from dataclasses import dataclass, field
from pathlib import Path

from posttrain.recipes.commands import StageCommand, command, suggest
from posttrain.recipes.source import LineList, LineMap, RecipeError, Where, load_file

STAGE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
RECIPE_KEYS = ("name", "description", "stages")
STAGE_KEYS = ("name", "description", "command", "inputs", "options")
GROUP_KEYS = ("name", "description", "rounds", "stages")
# Options the runner sets itself on every stage.
MANAGED = {
    "output": "each stage writes DIR/STAGE (posttrain run -o DIR)",
    "force": "the runner replaces a stage's directory when the stage reruns",
    "resume": "the runner resumes a training stage that left checkpoints",
    "dry-run": "use `posttrain plan` for the whole recipe",
}


@dataclass(frozen=True)
class Ref:
    """An earlier stage's run directory (`output` None) or one of its files; with `previous`, the stage's
    output in the round before (in round 1: `first`)."""

    stage: str
    output: str | None
    where: Where
    previous: bool = False
    first: object = None

    def __str__(self) -> str:
        return self.stage + (f".{self.output}" if self.output else "")


@dataclass
class Option:
    """One option of a stage: the key as written, the Click parameter, the value (with `Ref`s in it)."""

    key: str
    param: object
    value: object
    where: Where


@dataclass
class Stage:
    name: str
    command: StageCommand
    inputs: list
    options: list[Option]
    where: Where
    group: Group | None = None

    def refs(self) -> list[Ref]:
        return [r for v in [self.inputs, *(o.value for o in self.options)] for r in refs_in(v)]


@dataclass
class Group:
    """Stages run `rounds` times; `previous:` refers to the round before."""

    name: str
    rounds: int
    stages: list[Stage]
    where: Where


@dataclass(frozen=True)
class Instance:
    """One stage in one round: what the runner runs, in `DIR/id`."""

    id: str
    stage: Stage
    round: int | None

    @property
    def label(self) -> str:
        return self.stage.name + (f" (round {self.round})" if self.round else "")


@dataclass
class Recipe:
    path: Path
    name: str
    description: str
    items: list[Stage | Group]  # in run order
    stages: dict[str, Stage] = field(default_factory=dict)

    @property
    def base(self) -> Path:
        """Where the recipe's relative paths start."""
        return self.path.parent

    @classmethod
    def load(cls, path: str | Path) -> Recipe:
        """Read and check a recipe file; a `RecipeError` names the file and line of the first problem."""
        path = Path(path)
        return Parser(path).recipe(load_file(path))

    def instances(self) -> list[Instance]:
        out = []
        for item in self.items:
            if isinstance(item, Stage):
                out.append(Instance(item.name, item, None))
                continue
            for r in range(1, item.rounds + 1):
                out.extend(Instance(round_id(s, r), s, r) for s in item.stages)
        return out

    def target(self, ref: Ref, instance: Instance):
        """The instance `ref` means when `instance` runs: (instance id, output name), or the `first` value."""
        stage = self.stages[ref.stage]
        if ref.previous:
            if instance.round == 1:
                return ref.first
            return round_id(stage, instance.round - 1), ref.output
        if stage.group is None:
            return stage.name, ref.output
        same = instance.stage.group is stage.group
        return round_id(stage, instance.round if same else stage.group.rounds), ref.output


def round_id(stage: Stage, r: int) -> str:
    return f"{stage.group.name}/round-{r}/{stage.name}" if stage.group else stage.name


def refs_in(value) -> list[Ref]:
    """Every `Ref` in a value (lists, mappings, and a `previous:` ref's `first`)."""
    if isinstance(value, Ref):
        return [value, *refs_in(value.first)]
    if isinstance(value, list):
        return [r for v in value for r in refs_in(v)]
    if isinstance(value, dict):
        return [r for v in value.values() for r in refs_in(v)]
    return []


class Parser:
    """Builds a `Recipe` from the YAML document, checking as it goes."""

    def __init__(self, path: Path):
        self.path = path
        self.file = str(path)

    def at(self, line: int) -> Where:
        return Where(self.file, line)

    def fail(self, line: int, message: str):
        raise RecipeError(f"{self.file}:{line}: {message}")

    def keys(self, node: LineMap, allowed: tuple[str, ...], what: str) -> None:
        for key in node:
            if key not in allowed:
                close = difflib.get_close_matches(str(key), allowed, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                self.fail(
                    node.line_of(key), f"{what}: unknown key '{key}'{hint}; allowed: {', '.join(allowed)}"
                )

    def recipe(self, doc) -> Recipe:
        if not isinstance(doc, LineMap):
            self.fail(getattr(doc, "line", 1), "a recipe is a mapping with a `stages:` list")
        self.keys(doc, RECIPE_KEYS, "recipe")
        stages = doc.get("stages")
        if not isinstance(stages, LineList) or not stages:
            self.fail(doc.line_of("stages"), "`stages:` must be a non-empty list of stages")
        items = [
            self.item(node, line, group=None) for node, line in zip(stages, stages.item_lines, strict=True)
        ]
        recipe = Recipe(
            self.path,
            str(doc.get("name") or self.path.stem.removesuffix(".yaml")),
            str(doc.get("description") or ""),
            items,
        )
        for item in items:
            for stage in item.stages if isinstance(item, Group) else [item]:
                if stage.name in recipe.stages:
                    self.fail(stage.where.line, f"two stages are named '{stage.name}'")
                recipe.stages[stage.name] = stage
            if isinstance(item, Group) and item.name in recipe.stages:
                self.fail(item.where.line, f"'{item.name}' names a stage and a group of rounds")
        for stage in recipe.stages.values():
            for ref in stage.refs():
                self.check_ref(recipe, stage, ref)
        recipe.items = self.ordered(recipe, items, group=None)
        for item in recipe.items:
            if isinstance(item, Group):
                item.stages = self.ordered(recipe, item.stages, group=item)
        return recipe

    def item(self, node, line: int, *, group: Group | None) -> Stage | Group:
        if not isinstance(node, LineMap):
            self.fail(line, "a stage is a mapping with `name` and `command` (or `rounds` and `stages`)")
        name = node.get("name")
        if not isinstance(name, str) or not STAGE_NAME.match(name):
            self.fail(node.line_of("name"), "a stage needs a `name` of letters, digits, '-' and '_'")
        if "rounds" in node or ("stages" in node and "command" not in node):
            return self.group(node, name, nested=group is not None)
        self.keys(node, STAGE_KEYS, f"stage '{name}'")
        what = f"stage '{name}'"
        cmd_name = node.get("command")
        if not isinstance(cmd_name, str):
            self.fail(
                node.line_of("command"), f"{what}: needs a `command` (e.g. curate filter, synth generate)"
            )
        cmd_name = " ".join(cmd_name.split())
        try:
            cmd = command(cmd_name)
        except KeyError:
            self.fail(node.line_of("command"), f"{what}: unknown command '{cmd_name}'{suggest(cmd_name)}")
        stage = Stage(name, cmd, [], [], self.at(node.line), group)
        click_cmd = cmd.click_command()
        stage.inputs = self.inputs(stage, click_cmd, node)
        stage.options = self.options(stage, click_cmd, node)
        return stage

    def group(self, node: LineMap, name: str, *, nested: bool) -> Group:
        what = f"group '{name}'"
        if nested:
            self.fail(node.line, f"{what}: rounds cannot be nested")
        self.keys(node, GROUP_KEYS, what)
        rounds = node.get("rounds")
        if not isinstance(rounds, int) or isinstance(rounds, bool) or rounds < 1:
            self.fail(node.line_of("rounds"), f"{what}: `rounds` must be a whole number of at least 1")
        inner = node.get("stages")
        if not isinstance(inner, LineList) or not inner:
            self.fail(node.line_of("stages"), f"{what}: `stages:` must be a non-empty list of stages")
        group = Group(name, rounds, [], self.at(node.line))
        group.stages = [self.item(n, ln, group=group) for n, ln in zip(inner, inner.item_lines, strict=True)]
        return group

    # --- values ------------------------------------------------------------------------------------------------

    def value(self, raw, line: int, what: str):
        """A value as written, with `{from: ...}` and `{previous: ..., first: ...}` turned into `Ref`s."""
        if isinstance(raw, LineMap) and ("from" in raw or "previous" in raw):
            return self.ref(raw, what)
        if isinstance(raw, LineList):
            return [self.value(v, ln, what) for v, ln in zip(raw, raw.item_lines, strict=True)]
        if isinstance(raw, LineMap):
            return {k: self.value(v, raw.line_of(k), what) for k, v in raw.items()}
        return raw

    def ref(self, raw: LineMap, what: str) -> Ref:
        kind = "from" if "from" in raw else "previous"
        allowed = ("from",) if kind == "from" else ("previous", "first")
        self.keys(raw, allowed, f"{what}: a `{kind}:` reference")
        text = raw[kind]
        if not isinstance(text, str) or not re.fullmatch(
            r"[A-Za-z0-9][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)?", text
        ):
            self.fail(raw.line_of(kind), f"{what}: `{kind}:` takes STAGE or STAGE.OUTPUT, got {text!r}")
        stage, _, output = text.partition(".")
        where = self.at(raw.line_of(kind))
        if kind == "from":
            return Ref(stage, output or None, where)
        if "first" not in raw:
            self.fail(raw.line, f"{what}: `previous: {text}` needs `first:`, the value for round 1")
        return Ref(
            stage,
            output or None,
            where,
            previous=True,
            first=self.value(raw["first"], raw.line_of("first"), what),
        )

    def inputs(self, stage: Stage, click_cmd, node: LineMap) -> list:
        args = [p for p in click_cmd.params if p.param_type_name == "argument"]
        raw = node.get("inputs")
        line = node.line_of("inputs")
        if raw is None:
            if args and args[0].required:
                self.fail(node.line, f"stage '{stage.name}': {stage.command.name} needs `inputs:`")
            return []
        if not args:
            self.fail(line, f"stage '{stage.name}': {stage.command.name} takes no inputs; use its options")
        what = f"stage '{stage.name}'"
        values = self.value(raw, line, what) if isinstance(raw, LineList) else [self.value(raw, line, what)]
        lines = raw.item_lines if isinstance(raw, LineList) else [line]
        for v, ln in zip(values, lines, strict=True):
            self.check_literal(args[0], v, ln, stage)
            self.check_input_file(v, ln, stage)
        return values

    def check_input_file(self, value, line: int, stage: Stage) -> None:
        """A file (or run directory) written as an input exists now: not found after earlier stages ran."""
        from curate.io import InputError, resolve_input

        if stage.command.kind not in ("curate", "synth") or not isinstance(value, str):
            return
        try:
            resolve_input(rebase(value, self.path.parent))
        except InputError as e:
            self.fail(line, f"stage '{stage.name}': inputs: {e}")

    def options(self, stage: Stage, click_cmd, node: LineMap) -> list[Option]:
        raw = node.get("options")
        if raw is None:
            raw = LineMap()
        if not isinstance(raw, LineMap):
            self.fail(node.line_of("options"), f"stage '{stage.name}': `options:` must be a mapping")
        table = option_table(click_cmd)
        out = []
        for key, value in raw.items():
            line = raw.line_of(key)
            flag = str(key).replace("_", "-")
            what = f"stage '{stage.name}'"
            if flag in MANAGED:
                self.fail(line, f"{what}: '{key}' is set by the recipe runner ({MANAGED[flag]})")
            if flag not in table:
                close = difflib.get_close_matches(flag, list(table), n=1, cutoff=0.6)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                self.fail(line, f"{what}: {stage.command.name} has no option '{key}'{hint}")
            param = table[flag]
            parsed = self.value(value, line, what)
            self.check_option(param, flag, parsed, line, stage)
            out.append(Option(flag, param, parsed, self.at(line)))
        given = {o.param.name for o in out}
        for p in click_cmd.params:
            if p.param_type_name == "option" and p.required and p.name not in given and p.name != "output":
                self.fail(
                    node.line,
                    f"stage '{stage.name}': {stage.command.name} needs option '{p.opts[0].lstrip('-')}'",
                )
        return out

    def check_option(self, param, flag: str, value, line: int, stage: Stage) -> None:
        what = f"stage '{stage.name}': option '{flag}'"
        if param.is_flag and not isinstance(value, bool):
            self.fail(line, f"{what} is a flag: true or false")
        if isinstance(value, dict) and not isinstance(value, Ref) and not is_key_value(param):
            self.fail(line, f"{what} takes a value, not a mapping")
        if isinstance(value, list) and not param.multiple:
            self.fail(line, f"{what} takes one value, not a list")
        for v in value if isinstance(value, list) else [value]:
            self.check_literal(param, v, line, stage)

    def check_literal(self, param, value, line: int, stage: Stage) -> None:
        """What Click would say of a literal value (references are checked when they have a path)."""
        import click

        if isinstance(value, Ref | dict | bool) or value is None or refs_in(value):
            return
        if isinstance(value, list):
            self.fail(line, f"stage '{stage.name}': a list inside a list")
        text = rebase(value, self.path.parent)
        try:
            param.type.convert(text, param, None)
        except click.BadParameter as e:
            name = param.opts[0].lstrip("-") if param.param_type_name == "option" else "inputs"
            self.fail(line, f"stage '{stage.name}': {name}: {e.message}")

    def check_ref(self, recipe: Recipe, stage: Stage, ref: Ref) -> None:
        what = f"stage '{stage.name}'"
        if ref.stage not in recipe.stages:
            close = difflib.get_close_matches(ref.stage, list(recipe.stages), n=1, cutoff=0.6)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            self.fail(ref.where.line, f"{what}: no stage named '{ref.stage}'{hint}")
        target = recipe.stages[ref.stage]
        if ref.output is not None and ref.output not in target.command.outputs:
            have = ", ".join(target.command.outputs) or "no files, only its directory"
            self.fail(
                ref.where.line,
                f"{what}: '{ref}': {target.command.name} writes no '{ref.output}' output (it writes {have}; "
                f"`from: {ref.stage}` is its run directory)",
            )
        if ref.previous:
            if stage.group is None or target.group is not stage.group:
                self.fail(
                    ref.where.line, f"{what}: `previous: {ref}` names a stage of the same group of rounds"
                )
        elif ref.stage == stage.name:
            self.fail(ref.where.line, f"{what}: takes its own output (a cycle)")

    # --- order -------------------------------------------------------------------------------------------------

    def ordered(self, recipe: Recipe, items: list, *, group: Group | None) -> list:
        """`items` in dependency order, ties in the order written; a cycle is refused at one of its references."""

        def unit(stage: Stage):  # what a stage belongs to at this level
            if group is not None:
                return stage if stage.group is group else None
            return stage.group or stage

        deps: dict[int, dict[int, Ref]] = {}
        index = {id(item): k for k, item in enumerate(items)}
        for k, item in enumerate(items):
            inner = item.stages if isinstance(item, Group) else [item]
            deps[k] = {}
            for stage in inner:
                for ref in stage.refs():
                    if ref.previous and group is not None:
                        continue  # the round before: no order within a round
                    other = unit(recipe.stages[ref.stage])
                    j = index.get(id(other)) if other is not None else None
                    if j is not None and j != k:
                        deps[k].setdefault(j, ref)
        waiting = {k: set(d) for k, d in deps.items()}
        ready = [k for k, d in waiting.items() if not d]
        heapq.heapify(ready)
        order = []
        while ready:
            k = heapq.heappop(ready)
            order.append(k)
            for j, d in waiting.items():
                if k in d:
                    d.discard(k)
                    if not d and j not in order:
                        heapq.heappush(ready, j)
        if len(order) < len(items):
            self.cycle(items, deps, [k for k in deps if k not in order])
        return [items[k] for k in order]

    def cycle(self, items: list, deps: dict, stuck: list[int]) -> None:
        path, k = [], stuck[0]
        while k not in path:
            path.append(k)
            k = next(j for j in deps[k] if j in stuck)
        loop = path[path.index(k) :] + [k]
        names = " takes from ".join(f"'{items[j].name}'" for j in loop)
        ref = deps[loop[0]][loop[1]]
        self.fail(ref.where.line, f"'{items[loop[0]].name}' takes '{ref}': a cycle ({names})")


def option_table(click_cmd) -> dict:
    """Every long option of a Click command (without `--`), and its parameter."""
    table = {}
    for p in click_cmd.params:
        if p.param_type_name != "option":
            continue
        for opt in (*p.opts, *p.secondary_opts):
            if opt.startswith("--"):
                table[opt[2:]] = p
    return table


def is_key_value(param) -> bool:
    """`--set KEY=VALUE`-style options, which take a mapping in a recipe."""
    return bool(param.multiple and param.metavar and "=" in param.metavar)


def rebase(value, base: Path):
    """A relative path that exists under the recipe's directory, made absolute; any other value as it is."""
    if not isinstance(value, str) or not value or "\n" in value or len(value) > 4096:
        return value
    p = Path(value).expanduser()
    if not p.is_absolute():
        p = base / p
    try:
        return str(p.resolve()) if p.exists() else value
    except OSError:
        return value

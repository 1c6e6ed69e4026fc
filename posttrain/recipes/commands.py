"""The commands a recipe stage may run, registered by name: one line each.

A stage runs its command exactly as a shell would (`curate filter IN... -o DIR/STAGE --filters ...`), through the
command's own Click parser, so a recipe's options are the command's options and a stage can always be re-run by
hand. The registry says, for each command, where its Click command is, what its run directory holds (the
outputs later stages may name: `from: select.selected`) and what kind of work it is (for estimates, resuming and
the code version in a stage's key). Every synth method is registered from `synth.methods.METHODS`, so a new
method needs no line here.

>>> spec = command("curate select")
>>> spec.kind, spec.outputs["selected"]
('curate', 'selected.jsonl')
>>> command("synth reject-sample").outputs["preference"]
'preference.jsonl'
"""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass, field
from functools import cache

# What a run directory of each kind holds besides its main output.
LEDGER = {"rejected": "rejected.jsonl", "invalid": "invalid.jsonl"}
TRAINED = {"samples": "samples.jsonl", "log_history": "log_history.jsonl"}
ROLLOUTS = {"rollouts": "rollouts.jsonl"}

# The code a stage's output depends on, per kind: a change in it reruns the stage.
CODE = {
    "curate": ("curate", "rules"),
    "synth": ("curate", "synth", "rules"),
    "train": ("curate", "synth", "train", "rules"),
    "setup": ("posttrain.tinymodels",),
}


@dataclass(frozen=True)
class StageCommand:
    """How a recipe runs one command: its Click command (`module:attribute`, or a synth method's name), the
    files of its run directory by output name, and its kind (`curate`, `synth`, `train`, `setup`)."""

    name: str
    target: str
    kind: str
    outputs: dict = field(default_factory=dict)

    def click_command(self):
        if self.kind == "synth":
            from synth.cli import method_command

            return method_command(self.target)
        module, _, attr = self.target.partition(":")
        return getattr(importlib.import_module(module), attr)

    @property
    def resumable(self) -> bool:
        """Training commands keep checkpoints in `.OUT.state/` and continue from them with `--resume`."""
        return any(p.name == "resume" for p in self.click_command().params)


def _curate(target: str, main: str, *more: str) -> StageCommand:
    outputs = {main: f"{main}.jsonl", **{m: f"{m}.jsonl" for m in more}, **LEDGER}
    return StageCommand("", target, "curate", outputs)


def _train(target: str, **outputs: str) -> StageCommand:
    return StageCommand("", target, "train", {**TRAINED, **outputs})


REGISTRY: dict[str, StageCommand] = {
    "curate filter": _curate("curate.cli:filter_cmd", "kept", "edits"),
    "curate select": _curate("curate.cli:select_cmd", "selected"),
    "curate tags normalize": _curate("curate.cli:tags_normalize_cmd", "tagged", "tag_map"),
    "train sft": _train("train.cli:sft_cmd"),
    "train dpo": _train("train.cli:dpo_cmd"),
    "train reward": _train("train.cli:reward_cmd"),
    "train online-dpo": _train(
        "train.cli:online_dpo_cmd", **ROLLOUTS, preference="preference.jsonl", **LEDGER
    ),
    "train bond": _train("train.cli:bond_cmd", **ROLLOUTS, preference="preference.jsonl", **LEDGER),
    "train rl": _train("train.cli:rl_cmd", **ROLLOUTS),
    "train distill": _train("train.cli:distill_cmd"),
    "train merge": StageCommand("", "train.cli:merge_cmd", "train"),
    "posttrain tiny-model": StageCommand("", "posttrain.cli:tiny_model_cmd", "setup"),
}


def _synth(name: str) -> StageCommand:
    from synth.methods import get_method

    method = get_method(name)
    files = (method.main_output, *method.other_outputs, *LEDGER.values())
    return StageCommand("", name, "synth", {f.removesuffix(".jsonl"): f for f in files})


def names() -> list[str]:
    from synth.methods import METHODS

    return [*REGISTRY, *(f"synth {m}" for m in METHODS)]


@cache
def command(name: str) -> StageCommand:
    """The registered command `name` ("curate filter", "synth generate", "train sft"...); KeyError if none."""
    from dataclasses import replace

    from synth.methods import METHODS

    if name in REGISTRY:
        return replace(REGISTRY[name], name=name)
    method = name.removeprefix("synth ")
    if name.startswith("synth ") and method in METHODS:
        return replace(_synth(method), name=name)
    raise KeyError(name)


def suggest(name: str) -> str:
    close = difflib.get_close_matches(name, names(), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""

"""The synth methods, registered by name (one line each); `synth.cli` makes a command of every one.

A method is a `synth.runner.Method` subclass in its own module: its `Config` (settings with help, from which
the command's options are generated) and `run_batch(items) -> Outputs`. Modules are imported when a command
is built, so they keep torch, transformers and polars inside functions.
"""

from __future__ import annotations

import importlib

METHODS: dict[str, str] = {
    "generate": "synth.methods.generate:Generate",
    "reject-sample": "synth.methods.reject_sample:RejectSample",
    "exec-verify": "synth.methods.exec_verify:ExecVerify",
    "tag": "synth.methods.tag:Tag",
    "evolve": "synth.methods.evolve:Evolve",
    "constitution": "synth.methods.constitution:Constitutional",
    "autoif": "synth.methods.autoif:AutoIF",
    "candidates": "synth.methods.candidates:Candidates",
    "repurpose": "synth.methods.repurpose:Repurpose",
    "roleplay": "synth.methods.roleplay:Roleplay",
}


def get_method(name: str):
    """The method class registered as `name`."""
    if name not in METHODS:
        raise KeyError(f"unknown synth method {name!r} (choose from {', '.join(METHODS)})")
    module, _, cls = METHODS[name].partition(":")
    return getattr(importlib.import_module(module), cls)

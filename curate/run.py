"""`run_filter`: the library function behind `curate filter`, and the manifest every command writes.

>>> from curate.run import FilterConfig, run_filter
>>> m = run_filter(FilterConfig(inputs=["sample_data/conversations.jsonl"], output="/tmp/run", overwrite=True))
>>> m["counts"]["input"] == m["counts"]["kept"] + m["counts"]["rejected"] + m["counts"]["invalid"]
True
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone

from curate.engines import ENGINES
from curate.io import InputError, JsonlWriter, RunDir, resolve_input, write_json
from curate.ledger import RunLedger
from curate.pipeline import Pipeline, Step
from curate.provenance import versions
from curate.schema import DEFAULT_MAX_ROW_BYTES, Reader
from curate.steps import DEFAULT_FILTERS, build_steps


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


class Run:
    """The run-directory lifecycle every command shares: the directory (built hidden, moved into place at the
    end), the reader over `cfg.inputs`, the ledger (main output, rejected, edits, invalid) and any extra JSONL
    writers. Leaving the `with` block by an exception aborts every writer and the directory and closes what
    the run opened (`on_close`): nothing half-written is left. `finish(**sections)` closes the files, checks
    that the row counts add up, writes `manifest.json` and commits the directory.

    `cfg` needs `inputs`, `output`, `overwrite`, `input_format`, `on_error` and `max_row_bytes`.

    >>> from pathlib import Path
    >>> from curate.io import write_jsonl
    >>> write_jsonl("/tmp/run-in.jsonl", [{"prompt": "hi"}])
    1
    >>> cfg = FilterConfig(inputs=["/tmp/run-in.jsonl"], output="/tmp/run-demo", overwrite=True)
    >>> with Run("curate demo", cfg) as run:
    ...     run.ledger.kept(list(run.reader))
    ...     m = run.finish(counts={"input": run.reader.count, "balanced": True})
    >>> m["counts"]["input"], sorted(p.name for p in Path(m["run_dir"]).iterdir())[:2]
    (1, ['edits.jsonl', 'invalid.jsonl'])
    """

    def __init__(self, command: str, cfg, *, main: str = "kept.jsonl", stdout: bool = False, config=None):
        self.cfg = cfg
        self.t0 = time.perf_counter()
        self.manifest = base_manifest(command, asdict(cfg) if config is None else config, cfg.inputs)
        self.main, self.stdout = main, stdout
        self.reader = self.ledger = None
        self._writers: list[JsonlWriter] = []
        self._closers: list = []
        self._committed = False
        self.dir = RunDir(cfg.output, overwrite=cfg.overwrite, inputs=cfg.inputs)

    def __enter__(self) -> Run:
        cfg = self.cfg
        try:
            self.reader = Reader(
                cfg.inputs,
                input_format=cfg.input_format,
                on_error=cfg.on_error,
                max_row_bytes=cfg.max_row_bytes,
            )
            self.ledger = RunLedger(self.dir, main=self.main, stdout=self.stdout)
        except BaseException:
            self._abort()
            raise
        return self

    def writer(self, name: str) -> JsonlWriter:
        """A JSONL file of the run directory, written atomically with it."""
        w = JsonlWriter(self.dir / name)
        self._writers.append(w)
        return w

    def on_close(self, closer) -> None:
        """Something to close when the run ends (a sandbox, a backend, a pipeline's workers)."""
        self._closers.append(closer)

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.t0

    def finish(self, **sections) -> dict:
        """Close every file, write the manifest (with `sections`) and move the run directory into place."""
        self.ledger.write_invalid([bad.as_record() for bad in self.reader.invalid])
        for w in self._writers:
            w.close()
        self.ledger.close()
        counts = sections.get("counts", {})
        if (
            counts.get("balanced") is False
        ):  # the runner's invariant; a failure here is a bug, not a user error
            raise AssertionError(f"row counts do not add up: {counts}")
        if self.reader.fingerprints:  # size and hash of each input, taken while reading it
            self.manifest["inputs"] = self.reader.fingerprints
        self.manifest.update(sections)
        self.manifest.setdefault("seconds", round(self.seconds, 3))
        write_json(self.dir / "manifest.json", self.manifest)
        self.manifest["run_dir"] = str(self.dir.commit())
        self._committed = True
        return self.manifest

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None or not self._committed:
            self._abort()
        else:
            self._close_resources()
        return False

    def _abort(self) -> None:
        for w in self._writers:
            w.abort()
        if self.ledger is not None:
            self.ledger.abort()
        self.dir.abort()
        self._close_resources()

    def _close_resources(self) -> None:
        while self._closers:
            self._closers.pop().close()


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
    config = {
        **asdict(cfg),
        "steps": [{"name": s.name, "kind": s.kind, "settings": s.settings()} for s in steps],
    }
    if cfg.engine == "ray":
        from curate.engines.ray_data import RayPipeline

        pipeline = RayPipeline(
            steps, batch_size=cfg.batch_size, progress=cfg.progress, address=cfg.ray_address
        )
    else:
        pipeline = Pipeline(steps, batch_size=cfg.batch_size, progress=cfg.progress)
    with Run("curate filter", cfg, stdout=cfg.stdout, config=config) as run:
        pipeline.run_parallel(run.reader, run.ledger, workers=cfg.workers)
        reader, ledger = run.reader, run.ledger
        counts = {
            "input": reader.count,
            "kept": ledger.counts["kept"],
            "rejected": ledger.counts["rejected"],
            "invalid": len(reader.invalid),
            "edits": ledger.counts["edits"],
        }
        counts["balanced"] = counts["input"] == counts["kept"] + counts["rejected"] + counts["invalid"]
        summaries = pipeline.summaries() if cfg.engine == "ray" else [s.summary() for s in steps]
        return run.finish(
            counts=counts,
            engine=pipeline.info if cfg.engine == "ray" else {"name": "local", "workers": cfg.workers},
            steps=[_step_record(s, st) for s, st in zip(summaries, pipeline.stats, strict=True)],
            seconds=round(run.seconds, 3),
            rows_per_s=round(counts["input"] / run.seconds) if run.seconds > 0 else None,
            outputs={
                "kept": "-" if cfg.stdout else "kept.jsonl",
                "rejected": "rejected.jsonl",
                "edits": "edits.jsonl",
                "invalid": "invalid.jsonl",
            },
        )

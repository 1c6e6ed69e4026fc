"""`SynthRun`: what a synth command sets up and tears down around its own work.

The run directory (built hidden, moved into place at the end), the reader, the ledger and any extra JSONL
writers, the response cache and the backend (built from the config, or given ready-made) and the `CachedLLM`
over them. Leaving the `with` block by an exception aborts every writer and the directory and closes what the
run opened: nothing half-written is left behind. `finish(**sections)` closes the files, checks that the row
counts add up, writes `manifest.json` and commits the directory.

>>> from curate.io import write_jsonl
>>> from synth.generate import GenerateConfig
>>> write_jsonl("/tmp/sr-in.jsonl", [{"prompt": "hi"}])
1
>>> cfg = GenerateConfig(inputs=["/tmp/sr-in.jsonl"], output="/tmp/sr-run", model="-", overwrite=True)
>>> with SynthRun(cfg, "synth demo", main="out.jsonl", llm=False) as run:
...     for row in run.reader:
...         run.ledger.kept([row])
...     m = run.finish(counts={"input": run.reader.count, "balanced": True})
>>> m["counts"]["input"], sorted(p.name for p in run.run.target.iterdir())[:2]
(1, ['edits.jsonl', 'invalid.jsonl'])
"""

from __future__ import annotations

import time
from dataclasses import asdict

from curate.io import InputError, JsonlWriter, RunDir, write_json
from curate.ledger import RunLedger
from curate.run import base_manifest
from curate.schema import Reader
from synth.backends import Backend, get_backend
from synth.generate import model_identity, open_cache
from synth.llm import CachedLLM


def build_backend(cfg) -> Backend:
    """The config's backend: in this process, or (`engine: ray`) one per actor on a Ray cluster."""
    engine = getattr(cfg, "engine", "local")
    if engine == "ray":
        from synth.ray_llm import RayBackend

        return RayBackend(
            cfg.backend,
            model=cfg.model,
            address=cfg.ray_address,
            actors=cfg.ray_actors,
            factory=get_backend,
            **cfg.backend_options,
        )
    if engine != "local":
        raise InputError(f"--engine must be local or ray, not {engine!r}")
    if getattr(cfg, "ray_address", None) or getattr(cfg, "ray_actors", None):
        raise InputError("--ray-address and --ray-actors are for --engine ray")
    return get_backend(cfg.backend, model=cfg.model, **cfg.backend_options)


class SynthRun:
    def __init__(self, cfg, command: str, *, main: str, backend: Backend | None = None, llm: bool = True):
        cfg.validate()
        self.cfg = cfg
        self.t0 = time.perf_counter()
        self.manifest = base_manifest(command, asdict(cfg), cfg.inputs)
        self.main = main
        self.backend = backend
        self._own_backend = backend is None
        self._wants_llm = llm
        self.cache = self.llm = self.ledger = None
        self._writers: list[JsonlWriter] = []
        self._closers: list = []
        self.load_seconds = 0.0
        self.run = RunDir(cfg.output, overwrite=cfg.overwrite, inputs=cfg.inputs)

    def __enter__(self) -> SynthRun:
        cfg = self.cfg
        try:
            self.reader = Reader(
                cfg.inputs,
                input_format=cfg.input_format,
                on_error=cfg.on_error,
                max_row_bytes=cfg.max_row_bytes,
            )
            if self._wants_llm:
                self.cache = open_cache(cfg)
                if self.backend is None:
                    self.backend = build_backend(cfg)
                self.llm = CachedLLM(self.backend, self.cache, model_identity(cfg.backend, cfg.model))
            self.load_seconds = time.perf_counter() - self.t0
            self.ledger = RunLedger(self.run, main=self.main)
        except BaseException:
            self._abort()
            raise
        return self

    def writer(self, name: str) -> JsonlWriter:
        """A JSONL file of the run directory, written atomically with it."""
        w = JsonlWriter(self.run / name)
        self._writers.append(w)
        return w

    def on_close(self, closer) -> None:
        """Something of the command's own (a sandbox, a second backend) to close when the run ends."""
        self._closers.append(closer)

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.t0

    def llm_sections(self) -> dict:
        """The manifest's backend, tokens and cache sections (commands add their own counts)."""
        if self.llm is None:
            return {}
        st, cfg = self.llm.stats, self.cfg
        return {
            "backend": {
                "name": self.backend.name,
                "model": cfg.model,
                "model_identity": self.llm.model_id,
                **self.backend.info(),
            },
            "llm": st.as_dict(),
            "cache": {
                "enabled": cfg.use_cache,
                "path": str(self.cache.path) if self.cache.path else None,
                "hits": self.cache.hits,
                "misses": self.cache.misses,
                "stored": st.fresh_samples if cfg.use_cache else 0,
            },
        }

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
        self.manifest.update(self.llm_sections())
        if self.reader.fingerprints:  # size and hash of each input, taken while reading it
            self.manifest["inputs"] = self.reader.fingerprints
        self.manifest.update(sections)
        thr = self.manifest.setdefault("throughput", {})
        thr.update(seconds=round(self.seconds, 3), load_seconds=round(self.load_seconds, 3))
        if self.llm is not None:
            st = self.llm.stats
            thr["backend_seconds"] = round(st.backend_seconds, 3)
            thr["generated_tokens_per_s"] = (
                round(st.fresh_completion_tokens / st.backend_seconds, 1) if st.backend_seconds else None
            )
        write_json(self.run / "manifest.json", self.manifest)
        self.manifest["run_dir"] = str(self.run.commit())
        self._committed = True
        return self.manifest

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None or not getattr(self, "_committed", False):
            self._abort()
        else:
            self._close_resources()
        return False

    def _abort(self) -> None:
        for w in self._writers:
            w.abort()
        if self.ledger is not None:
            self.ledger.abort()
        self.run.abort()
        self._close_resources()

    def _close_resources(self) -> None:
        for closer in reversed(self._closers):
            closer.close()
        self._closers.clear()
        if self.cache is not None:
            self.cache.close()
            self.cache = None
        if self._own_backend and self.backend is not None:
            self.backend.close()
            self.backend = None

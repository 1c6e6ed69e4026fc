"""The method runner: what every synth method used to repeat, written once.

A **method** is a small class: `Config` (a dataclass of `synth.config` settings), `prepare(row)` (the item it
works on, or `Skip(reason, detail)` for a row it cannot use) and `run_batch(items) -> Outputs` (rows for its
main output, ledger rows, rows for its other files). `run_method(Method, cfg)` owns the rest: the run
directory (`curate.run.Run`: built hidden, committed or removed), the reader and invalid lines, skipped rows
to the ledger, batches with a progress bar, the response cache and the backend (`CachedLLM`), counts with the
balance check, and the manifest. `synth.cli` generates each method's command from its `Config` and prints
the summary from the manifest.

>>> from curate.io import read_jsonl, write_jsonl
>>> from synth.config import InputSettings, RunSettings, settings, setting
>>> @settings
... class ShoutConfig(InputSettings, RunSettings):
...     batch_size: int = setting(2, "Rows per batch.")
>>> class Shout(Method):
...     '''Upper-case every user turn.'''
...     name, Config, main_output, uses_llm = "shout", ShoutConfig, "shouted.jsonl", False
...     def prepare(self, row):
...         if "messages" not in row:
...             raise Skip("not_a_conversation", "no messages")
...         return row
...     def run_batch(self, items):
...         out = Outputs()
...         for row in items:
...             out.kept.append({**row, "messages": [{**m, "content": m["content"].upper()} for m in row["messages"]]})
...         return out
>>> _ = write_jsonl("/tmp/shout-in.jsonl", [{"id": "a", "prompt": "hi"}, {"id": "b", "prompt": "yo"}])
>>> m = run_method(Shout, ShoutConfig(inputs=["/tmp/shout-in.jsonl"], output="/tmp/shout", overwrite=True))
>>> m["counts"], [r["messages"][0]["content"] for r in read_jsonl("/tmp/shout/shouted.jsonl")]
({'input': 2, 'invalid': 0, 'handled': 2, 'balanced': True}, ['HI', 'YO'])
"""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass, field
from typing import ClassVar

from curate.io import InputError, iter_lines
from curate.schema import public, rejected_row
from synth.backends import Backend, get_backend
from synth.llm import CachedLLM, model_identity, open_cache
from synth.prompts import batched


class Skip(Exception):
    """A row the method cannot use; `reason` and `detail` go to the ledger with the row."""

    def __init__(self, reason: str, detail: str, **extra):
        super().__init__(detail)
        self.reason, self.detail, self.extra = reason, detail, extra


@dataclass
class Outputs:
    """What one batch produced: rows of the main output, ledger rows, rows of the method's other files."""

    kept: list[dict] = field(default_factory=list)
    rejected: list[dict] = field(default_factory=list)
    files: dict[str, list[dict]] = field(default_factory=dict)
    step: str = ""

    def reject(self, row: dict, reason: str, detail: str, **extra) -> None:
        """Set `row` aside in the ledger with why (its private columns dropped)."""
        self.rejected.append(rejected_row(public(row), reason, detail, step=self.step, **extra))

    def write(self, name: str, rows) -> None:
        self.files.setdefault(name, []).extend(rows)


class Method:
    """Base class of a synth method; see the module docstring. Subclasses set the class attributes."""

    name: ClassVar[str]
    Config: ClassVar[type]
    main_output: ClassVar[str] = "kept.jsonl"
    other_outputs: ClassVar[tuple[str, ...]] = ()
    uses_llm: ClassVar[bool] = True
    skip_counts: ClassVar[tuple[str, ...]] = ()  # skip reasons always shown in the counts (0 when none)

    def __init__(self, cfg, ctx: MethodRun):
        self.cfg, self.ctx = cfg, ctx

    @property
    def llm(self) -> CachedLLM:
        return self.ctx.llm

    def outputs(self, **extra) -> Outputs:
        """An empty `Outputs` whose ledger rows carry this method's step name."""
        return Outputs(step=self.name, **extra)

    def prepare(self, row: dict):
        """The item `run_batch` works on for one input row; raise `Skip` for a row the method cannot use."""
        return row

    def run_batch(self, items: list) -> Outputs:
        raise NotImplementedError

    def run(self, runner: MethodRun) -> None:
        """Stream the input through `run_batch` (methods with rounds or stages override this)."""
        runner.stream(runner.run.reader, count_input=True)

    def counts(self) -> dict:
        """The method's own counts for the manifest (`input`, `invalid` and `balanced` are added)."""
        return {}

    def balanced(self, counts: dict) -> bool:
        """The method's own invariant on its counts (rows in = rows accounted for is checked by the runner)."""
        return True

    def sections(self) -> dict:
        """Further manifest sections (metrics, rules used, per-round figures)."""
        return {}

    @classmethod
    def summary(cls, manifest: dict) -> list[str]:
        """Lines for the command's summary, read from the manifest."""
        c = manifest["counts"]
        return [f"rows {c['input']} = handled {c.get('handled', 0)} + invalid {c['invalid']}"]

    @classmethod
    def redirect(cls, cfg):
        """Another (method, config) that does what these settings ask (exec-verify --generate-tests is
        reject-sample with the code verifier), or None."""
        return None

    def plan_requests(self, item) -> list:
        """The chat requests the first LLM stage sends for an item (for `--dry-run` estimates)."""
        return []

    def close(self) -> None:
        pass


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
            **cfg.backend_options(),
        )
    if engine != "local":
        raise InputError(f"--engine must be local or ray, not {engine!r}")
    if getattr(cfg, "ray_address", None) or getattr(cfg, "ray_actors", None):
        raise InputError("--ray-address and --ray-actors are for --engine ray")
    return get_backend(cfg.backend, model=cfg.model, **cfg.backend_options())


def validate_common(cfg) -> None:
    """Checks every config of the shared bundles needs; a method's own `validate()` adds its rules."""
    from synth.config import check_ranges

    check_ranges(cfg)  # what Click checks on the command line, for library callers
    if getattr(cfg, "on_error", "fail") not in ("fail", "skip"):
        raise InputError(f"--on-error must be fail or skip, not {cfg.on_error!r}")
    if getattr(cfg, "batch_size", None) is not None and cfg.batch_size < 1:
        raise InputError(f"--batch-size must be at least 1, got {cfg.batch_size}")
    if hasattr(cfg, "request"):
        try:
            cfg.request([{"role": "user", "content": "x"}], n=getattr(cfg, "n", 1))
        except ValueError as e:
            raise InputError(
                str(e)
                .replace("max_tokens", "--max-tokens")
                .replace("top_p", "--top-p")
                .replace("n must", "--n must")
            ) from None


def validate_backend(cfg) -> None:
    from synth.config import BACKEND_CHOICES

    if cfg.backend not in BACKEND_CHOICES:
        raise InputError(f"unknown backend {cfg.backend!r} (choose from {', '.join(BACKEND_CHOICES)})")
    if not cfg.model:
        raise InputError("--model is required")


class MethodRun:
    """One run of a method: the run directory, the LLM, progress and counts (`run_method` drives it)."""

    def __init__(self, method_cls, cfg, *, backend: Backend | None = None, command: str | None = None):
        from curate.run import Run

        self.method_cls, self.cfg = method_cls, cfg
        self.command = command or f"synth {method_cls.name}"
        self.backend = backend
        self._own_backend = backend is None
        self.cache = self.llm = None
        self.method = None
        self.skipped: Counter = Counter()
        self.reasons: Counter = Counter()
        self.handled = 0
        self.written: Counter = Counter()
        self.load_seconds = 0.0
        self.bar = None
        self._sandbox = None
        self.run = Run(self.command, cfg, main=method_cls.main_output)

    def __enter__(self) -> MethodRun:
        self.run.__enter__()
        try:
            if self.method_cls.uses_llm:
                self.cache = open_cache(self.cfg.cache_path())
                self.run.on_close(self.cache)
                if self.backend is None:
                    self.backend = build_backend(self.cfg)
                if self._own_backend:
                    self.run.on_close(self.backend)
                self.llm = CachedLLM(
                    self.backend, self.cache, model_identity(self.cfg.backend, self.cfg.model)
                )
            self._files = {name: self.run.writer(name) for name in self.method_cls.other_outputs}
        except BaseException:
            self.run.__exit__(*sys.exc_info())
            raise
        return self

    def __exit__(self, *exc):
        return self.run.__exit__(*exc)

    # --- what methods use ---------------------------------------------------------------------------------

    def llm_for(self, backend: str, model: str, options: dict | None = None, *, ready: Backend | None = None):
        """A second model sharing the run's cache (a judge, an answering model): the run's own backend when
        it is the same model, else a new one closed with the run."""
        if ready is None and (backend, model) == (self.cfg.backend, self.cfg.model) and options is None:
            return self.llm
        if ready is None:
            ready = get_backend(
                backend, model=model, **(self.cfg.backend_options(backend) if options is None else options)
            )
            self.run.on_close(ready)
        return CachedLLM(ready, self.cache, model_identity(backend, model))

    def sandbox(self):
        """The sandbox for generated code (opened on first use, closed with the run)."""
        if self._sandbox is None:
            from synth.sandbox import Limits, Sandbox

            cfg = self.cfg
            limits = Limits(wall_s=cfg.exec_timeout, cpu_s=cfg.exec_timeout, memory_mb=cfg.exec_memory_mb)
            self._sandbox = Sandbox(workers=cfg.workers(), limits=limits, backend=cfg.sandbox)
            self.run.on_close(self._sandbox)
        return self._sandbox

    def write(self, out: Outputs) -> None:
        ledger = self.run.ledger
        ledger.kept(out.kept)
        ledger.rejected(out.rejected)
        self.reasons.update(r["reject_reason"] for r in out.rejected)
        self.written[self.method_cls.main_output] += len(out.kept)
        for name, rows in out.files.items():
            self._files[name].write_many(rows)
            self.written[name] += len(rows)

    def items(self, rows: list[dict]) -> list:
        """`prepare` every row; skipped rows go to the ledger at once."""
        items = []
        for row in rows:
            try:
                items.append(self.method.prepare(row))
            except Skip as s:
                self.skipped[s.reason] += 1
                self.reasons[s.reason] += 1
                self.run.ledger.rejected(
                    [rejected_row(public(row), s.reason, s.detail, step=self.method_cls.name, **s.extra)]
                )
        return items

    def stream(self, rows, *, count_input: bool, batch_size: int | None = None) -> None:
        """Rows through `prepare` and `run_batch`, batch by batch, with the progress bar."""
        reader = self.run.reader
        for batch in batched(rows, batch_size or self.cfg.batch_size):
            items = self.items(batch)
            if items:
                self.handled += len(items) if count_input else 0
                self.write(self.method.run_batch(items))
            if self.bar is not None:
                self.bar.update((reader.count - self.bar.n) if count_input else len(batch))
                self._postfix()

    def _postfix(self) -> None:
        st = self.llm.stats if self.llm is not None else None
        if st is not None and st.backend_seconds > 0:
            self.bar.set_postfix_str(
                f"{st.fresh_completion_tokens / st.backend_seconds:,.0f} tok/s", refresh=False
            )

    def progress_bar(self, desc: str | None = None):
        from tqdm import tqdm

        cfg = self.cfg
        enabled = sys.stderr.isatty() if cfg.progress is None else cfg.progress
        total = count_lines(cfg.inputs) if enabled else None  # a second, cheap pass over the raw lines
        return tqdm(
            total=total,
            unit="row",
            desc=desc or self.method_cls.name,
            file=sys.stderr,
            disable=not enabled,
            dynamic_ncols=True,
        )

    # --- the manifest ---------------------------------------------------------------------------------------

    def llm_sections(self) -> dict:
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

    def finish(self) -> dict:
        method, reader = self.method, self.run.reader
        own = method.counts()
        counts = {"input": reader.count, "invalid": len(reader.invalid)}
        counts.update({name: self.skipped.get(name, 0) for name in self.method_cls.skip_counts})
        if not own:
            own = {"handled": self.handled}
        counts.update(own)
        counts["balanced"] = counts["input"] == counts["invalid"] + sum(
            self.skipped.values()
        ) + self.handled and (method.balanced(counts))
        sections = {"counts": counts, "reasons": dict(self.reasons.most_common()), **self.llm_sections()}
        sections.update(method.sections())
        files = (
            self.method_cls.main_output,
            *self.method_cls.other_outputs,
            "rejected.jsonl",
            "invalid.jsonl",
        )
        sections.setdefault("outputs", {f.removesuffix(".jsonl"): f for f in files})
        sections["output_rows"] = {
            self.method_cls.main_output: self.run.ledger.counts["kept"],
            **{n: self.written[n] for n in self.method_cls.other_outputs},
        }
        thr = sections.setdefault("throughput", {})
        seconds = self.run.seconds
        thr.update(seconds=round(seconds, 3), load_seconds=round(self.load_seconds, 3))
        if self.llm is not None:
            st = self.llm.stats
            thr["backend_seconds"] = round(st.backend_seconds, 3)
            thr["generated_tokens_per_s"] = (
                round(st.fresh_completion_tokens / st.backend_seconds, 1) if st.backend_seconds else None
            )
        return self.run.finish(**sections)


def count_lines(inputs: list) -> int | None:
    from curate.io import is_rereadable

    try:
        if not all(is_rereadable(p) for p in inputs):  # stdin, a pipe: the reader's to read, once
            return None
        return sum(1 for _ in iter_lines(inputs))
    except InputError:
        return None


def run_method(method_cls, cfg, *, backend: Backend | None = None, **parts) -> dict:
    """Run `method_cls` over `cfg.inputs` into the run directory `cfg.output`; return the manifest.

    `backend` may be given ready-made (a loaded model, a `ScriptedBackend` in tests); `parts` are further
    ready-made pieces the method accepts (a judge backend, a verifier).
    """
    if hasattr(cfg, "validate"):
        cfg.validate()
    other = method_cls.redirect(cfg)
    if other is not None:
        return run_method(*other, backend=backend, **parts)
    validate_common(cfg)
    if method_cls.uses_llm:
        validate_backend(cfg)
    with MethodRun(method_cls, cfg, backend=backend) as runner:
        runner.method = method_cls(cfg, runner, **parts)
        runner.run.on_close(runner.method)
        runner.load_seconds = runner.run.seconds
        with runner.progress_bar() as bar:
            runner.bar = bar
            runner.method.run(runner)
            runner.bar = None
        return runner.finish()


def plan_method(method_cls, cfg) -> dict:
    """What `run_method` would ask the LLM first, without loading a model or writing anything (`--dry-run`)."""
    from curate.schema import Reader
    from synth.cache import ResponseCache, sample_key

    if hasattr(cfg, "validate"):
        cfg.validate()
    other = method_cls.redirect(cfg)
    if other is not None:
        return plan_method(*other)
    validate_common(cfg)
    validate_backend(cfg)
    reader = Reader(
        cfg.inputs, input_format=cfg.input_format, on_error=cfg.on_error, max_row_bytes=cfg.max_row_bytes
    )
    method = method_cls(cfg, None)
    counter = prompt_token_counter(cfg)
    path = cfg.cache_path()
    cache = ResponseCache(path) if path is not None and path.is_file() else None
    identity = model_identity(cfg.backend, cfg.model)
    skipped: Counter = Counter()
    ns: set[int] = set()
    items = requests = samples = cached = prompt_tokens = 0
    try:
        for batch in batched(reader, 1000):
            keys = []
            for row in batch:
                try:
                    item = method.prepare(row)
                except Skip as s:
                    skipped[s.reason] += 1
                    continue
                items += 1
                for req in method.plan_requests(item):
                    requests += 1
                    samples += req.n
                    ns.add(req.n)
                    prompt_tokens += counter(req.messages)
                    keys.extend(sample_key(cfg.backend, identity, req, i) for i in range(req.n))
            if cache is not None:
                cached += len(cache.get_many(keys))
    finally:
        if cache is not None:
            cache.close()
    return {
        "rows": reader.count,
        "invalid": len(reader.invalid),
        "skipped": dict(skipped),
        "items": items,
        "requests": requests,
        "samples": samples,
        "n": next(iter(ns)) if len(ns) == 1 else None,
        "cached": cached,
        "to_generate": samples - cached,
        "prompt_tokens": prompt_tokens,
        "prompt_tokens_method": getattr(counter, "method", "estimate"),
        "cache": str(path) if path else None,
    }


def prompt_token_counter(cfg):
    """Exact counts with the model's tokenizer and chat template where it is local; else ~4 characters a token."""
    from pathlib import Path

    p = Path(cfg.model).expanduser()
    if cfg.backend in ("hf", "vllm") and p.exists():
        try:
            from transformers import AutoTokenizer

            where, extra = (str(p.parent), {"gguf_file": p.name}) if p.suffix == ".gguf" else (str(p), {})
            tok = AutoTokenizer.from_pretrained(where, **extra)

            def exact(messages) -> int:
                return len(
                    tok.apply_chat_template(
                        list(messages), tokenize=True, add_generation_prompt=True, return_dict=True
                    )["input_ids"]
                )

            exact.method = "tokenizer"  # type: ignore[attr-defined]
            return exact
        except Exception:  # no usable tokenizer here: estimate rather than fail a dry run
            pass

    def estimate(messages) -> int:
        return sum(len(m["content"]) // 4 + 4 for m in messages)

    estimate.method = "estimate (~4 characters per token)"  # type: ignore[attr-defined]
    return estimate

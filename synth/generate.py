"""`run_generate`: answer prompts with a teacher model (SFT distillation), the library behind `synth generate`.

Each input row is a prompt: `messages` ending in a user turn (or any format the reader adapts to one). A
conversation that ends in an assistant turn is answered afresh; the old answer is kept in
`previous_response`. For every row, `n` samples are taken (cached ones are reused) and each becomes one row
of `generated.jsonl`: the conversation with the new assistant turn plus `parent_id`, `sample_index`,
`model`, `backend`, `finish_reason` and token counts. Samples that failed, were cut off at `max_tokens`
(unless `keep_truncated`) or came back empty go to `rejected.jsonl` with the reason, never a crash.

>>> from curate.io import write_jsonl
>>> from posttrain.tinymodels import build_tiny_model
>>> from synth.generate import GenerateConfig, run_generate
>>> model = str(build_tiny_model("qwen2", "/tmp/tiny-qwen2"))
>>> write_jsonl("/tmp/prompts.jsonl", [{"prompt": "Name a colour."}, {"prompt": "Say hi."}])
2
>>> m = run_generate(GenerateConfig(inputs=["/tmp/prompts.jsonl"], output="/tmp/gen-run", model=model, n=2,
...                                 max_tokens=8, keep_truncated=True, overwrite=True, use_cache=False))
>>> m["counts"]["samples"] == m["counts"]["generated"] + m["counts"]["rejected_samples"]
True
"""

from __future__ import annotations

import functools
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import xxhash

from curate.io import InputError, is_rereadable, iter_lines
from curate.ledger import RunLedger
from curate.schema import DEFAULT_MAX_ROW_BYTES, Reader, public, rejected_row
from synth.backends import Backend, BackendError, ChatRequest, Completion
from synth.cache import NullCache, ResponseCache, default_cache_path, sample_key
from synth.llm import CachedLLM

STEP = "generate"
OUTPUT = "generated.jsonl"


@dataclass
class GenerateConfig:
    inputs: list
    output: str
    model: str
    backend: str = "hf"
    n: int = 1
    system_prompt: str | None = None  # added to rows without a system message of their own
    temperature: float = 0.7
    top_p: float = 0.95
    max_tokens: int = 1024
    seed: int | None = None
    stop: list[str] = field(default_factory=list)
    batch_size: int = 64  # rows handed to the backend at once; each batch is committed to the cache
    cache: str | None = None  # cache file; None = default_cache_path()
    use_cache: bool = True
    engine: str = "local"  # local | ray: the backend on Ray actors (synth.ray_llm.RayBackend)
    ray_address: str | None = None
    ray_actors: int | None = None
    keep_truncated: bool = False  # keep samples that hit max_tokens (finish_reason "length")
    input_format: str = "auto"
    on_error: str = "fail"
    max_row_bytes: int = DEFAULT_MAX_ROW_BYTES
    overwrite: bool = False
    progress: bool | None = None  # None: a progress bar when stderr is a terminal
    backend_options: dict = field(default_factory=dict)

    def validate(self) -> None:
        if self.backend not in ("hf", "openai", "vllm"):
            raise InputError(f"unknown backend {self.backend!r} (choose from hf, openai, vllm)")
        if not self.model:
            raise InputError("--model is required")
        if self.on_error not in ("fail", "skip"):
            raise InputError(f"--on-error must be fail or skip, not {self.on_error!r}")
        if self.batch_size < 1:
            raise InputError(f"--batch-size must be at least 1, got {self.batch_size}")
        try:
            self.request([{"role": "user", "content": "x"}])
        except ValueError as e:
            raise InputError(
                str(e).replace("max_tokens", "--max-tokens").replace("top_p", "--top-p")
            ) from None

    def request(self, messages, n: int | None = None) -> ChatRequest:
        return ChatRequest(
            messages=messages,
            n=self.n if n is None else n,
            temperature=self.temperature,
            top_p=self.top_p,
            max_tokens=self.max_tokens,
            seed=self.seed,
            stop=tuple(self.stop),
        )

    def cache_path(self) -> Path | None:
        if not self.use_cache:
            return None
        return Path(self.cache).expanduser() if self.cache else default_cache_path()


class NotAPrompt(ValueError):
    pass


def prompt_of(row: dict, system_prompt: str | None = None) -> tuple[list[dict], str | None]:
    """The messages to answer, and the assistant answer they replace (if the row already had one)."""
    if row.get("_kind") == "preference":
        raise NotAPrompt(
            "a preference row (prompt/chosen/rejected); give synth generate prompts or conversations"
        )
    msgs = [{"role": m["role"], "content": m["content"]} for m in row["messages"]]
    previous = None
    if msgs and msgs[-1]["role"] == "assistant":
        previous = msgs.pop()["content"]
    if not msgs or msgs[-1]["role"] != "user":
        raise NotAPrompt("no user turn to answer at the end of the conversation")
    if system_prompt and msgs[0]["role"] != "system":
        msgs.insert(0, {"role": "system", "content": system_prompt})
    return msgs, previous


def sample_id(parent_id: str, sample_index: int) -> str:
    """Stable id of a generated sample: the same row and sample index give the same id in every run."""
    return xxhash.xxh3_128_hexdigest(
        orjson.dumps({"parent_id": parent_id, "sample_index": sample_index}, option=orjson.OPT_SORT_KEYS)
    )


def model_identity(backend: str, model: str) -> str:
    """The model as the cache knows it: a local path also carries its files' sizes and times, so a model
    rebuilt at the same path does not answer from the old model's cache."""
    p = Path(model).expanduser()
    if backend == "openai" or not p.exists():
        return model
    files = [p] if p.is_file() else sorted(f for f in p.iterdir() if f.is_file())
    stamp = [(f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in files]
    return f"{model}@{xxhash.xxh3_64_hexdigest(orjson.dumps(stamp))}"


def batched(rows: Iterable[dict], size: int) -> Iterator[list[dict]]:
    batch: list[dict] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _count_lines(inputs: list) -> int | None:
    try:
        if not all(is_rereadable(p) for p in inputs):  # stdin, a pipe: the reader's to read, once
            return None
        return sum(1 for _ in iter_lines(inputs))
    except InputError:
        return None


@dataclass
class _Item:
    row: dict
    messages: list[dict]
    previous: str | None


@dataclass
class _Totals:
    requests: int = 0
    samples: int = 0
    generated: int = 0
    rejected_samples: int = 0
    not_a_prompt: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasons: Counter = field(default_factory=Counter)
    unknown_token_counts: int = 0


_reject = functools.partial(rejected_row, step=STEP)


class _Generator:
    """One run: cache lookups, backend calls, and the rows that come out."""

    def __init__(self, cfg: GenerateConfig, llm: CachedLLM, ledger: RunLedger):
        self.cfg = cfg
        self.backend = llm.backend
        self.ledger = ledger
        self.llm = llm
        self.t = _Totals()

    def run_batch(self, rows: list[dict]) -> None:
        cfg, t = self.cfg, self.t
        items: list[_Item] = []
        for row in rows:
            try:
                messages, previous = prompt_of(row, cfg.system_prompt)
            except NotAPrompt as e:
                t.not_a_prompt += 1
                t.reasons["not_a_prompt"] += 1
                self.ledger.rejected([_reject(public(row), "not_a_prompt", str(e))])
                continue
            items.append(_Item(row, messages, previous))
        t.requests += len(items)
        t.samples += len(items) * cfg.n
        results = self.llm.complete_each([cfg.request(it.messages) for it in items])
        for it, (samples, error) in zip(items, results, strict=True):
            self._write(it, samples, error)

    def _write(self, it: _Item, samples: list[Completion | None], error: str | None) -> None:
        cfg, t = self.cfg, self.t
        base = public(it.row)
        parent = base.pop("id")
        base.pop("messages", None)
        kept, rejected = [], []
        prompt_counted = False
        for i, comp in enumerate(samples):
            head = {"id": sample_id(parent, i), "parent_id": parent}
            if comp is None:
                rejected.append(
                    _reject(
                        {**head, "messages": it.messages, **base},
                        "generation_failed",
                        error or "no completion",
                        sample_index=i,
                        model=cfg.model,
                        backend=self.backend.name,
                    )
                )
                t.reasons["generation_failed"] += 1
                continue
            if not prompt_counted:
                t.prompt_tokens += comp.prompt_tokens or 0
                prompt_counted = True
            if comp.completion_tokens is None:
                t.unknown_token_counts += 1
            t.completion_tokens += comp.completion_tokens or 0
            out = {
                **head,
                "messages": [*it.messages, {"role": "assistant", "content": comp.text}],
                **base,
                **({"previous_response": it.previous} if it.previous is not None else {}),
                "sample_index": i,
                "model": cfg.model,
                "backend": self.backend.name,
                "finish_reason": comp.finish_reason,
                "prompt_tokens": comp.prompt_tokens,
                "completion_tokens": comp.completion_tokens,
            }
            if comp.finish_reason == "length" and not cfg.keep_truncated:
                reason, detail = (
                    "truncated",
                    f"hit --max-tokens {cfg.max_tokens} before the end of the answer",
                )
            elif not comp.text.strip():
                reason, detail = "empty_completion", "the model answered with nothing"
            else:
                kept.append(out)
                continue
            rejected.append(_reject(out, reason, detail))
            t.reasons[reason] += 1
        t.generated += len(kept)
        t.rejected_samples += len(rejected)
        self.ledger.kept(kept)
        self.ledger.rejected(rejected)


def open_cache(cfg: GenerateConfig):
    path = cfg.cache_path()
    if path is None:
        return NullCache()
    try:
        return ResponseCache(path)
    except OSError as e:
        raise InputError(f"--cache: {e}") from None


def progress_bar(cfg: GenerateConfig, *, desc: str = STEP):
    from tqdm import tqdm

    enabled = sys.stderr.isatty() if cfg.progress is None else cfg.progress
    total = _count_lines(cfg.inputs) if enabled else None  # a second, cheap pass over the raw lines
    return tqdm(total=total, unit="row", desc=desc, file=sys.stderr, disable=not enabled, dynamic_ncols=True)


def run_generate(cfg: GenerateConfig, backend: Backend | None = None) -> dict:
    """Answer every prompt in `cfg.inputs` into the run directory `cfg.output`; return the manifest.

    `backend` may be given ready-made (a library caller reusing a loaded model); otherwise it is built from
    `cfg.backend`, `cfg.model` and `cfg.backend_options`.
    """
    from synth.run import SynthRun

    with SynthRun(cfg, "synth generate", main=OUTPUT, backend=backend) as run:
        gen = _Generator(cfg, run.llm, run.ledger)
        with progress_bar(cfg) as bar:
            for batch in batched(run.reader, cfg.batch_size):
                gen.run_batch(batch)
                bar.update(run.reader.count - bar.n)  # lines read, invalid ones included
                if gen.llm.stats.backend_seconds > 0:
                    bar.set_postfix_str(
                        f"{gen.llm.stats.fresh_completion_tokens / gen.llm.stats.backend_seconds:,.0f} tok/s",
                        refresh=False,
                    )
        t, llm = gen.t, gen.llm.stats
        counts = {
            "input": run.reader.count,
            "invalid": len(run.reader.invalid),
            "not_a_prompt": t.not_a_prompt,
            "requests": t.requests,
            "samples": t.samples,
            "generated": t.generated,
            "rejected_samples": t.rejected_samples,
            "failed_requests": llm.failed_requests,
        }
        counts["balanced"] = (
            counts["input"] == counts["invalid"] + counts["not_a_prompt"] + counts["requests"]
            and counts["samples"] == counts["generated"] + counts["rejected_samples"]
        )
        seconds = run.seconds
        return run.finish(
            counts=counts,
            reasons=dict(t.reasons.most_common()),
            tokens={
                "prompt": t.prompt_tokens,
                "completion": t.completion_tokens,
                "generated_now": llm.fresh_completion_tokens,
                **({"samples_without_counts": t.unknown_token_counts} if t.unknown_token_counts else {}),
            },
            throughput={
                "rows_per_s": round(counts["input"] / seconds, 2) if seconds > 0 else None,
            },
            outputs={"generated": OUTPUT, "rejected": "rejected.jsonl", "invalid": "invalid.jsonl"},
        )


def plan_generate(cfg: GenerateConfig) -> dict:
    """What `run_generate` would do, without loading a model or writing anything (`--dry-run`)."""
    cfg.validate()
    reader = Reader(
        cfg.inputs, input_format=cfg.input_format, on_error=cfg.on_error, max_row_bytes=cfg.max_row_bytes
    )
    counter = _prompt_token_counter(cfg)
    path = cfg.cache_path()
    cache = ResponseCache(path) if path is not None and path.is_file() else None
    identity = model_identity(cfg.backend, cfg.model)
    requests = not_a_prompt = cached = prompt_tokens = 0
    try:
        for batch in batched(reader, 1000):
            keys = []
            for row in batch:
                try:
                    messages, _ = prompt_of(row, cfg.system_prompt)
                except NotAPrompt:
                    not_a_prompt += 1
                    continue
                requests += 1
                prompt_tokens += counter(messages)
                req = cfg.request(messages)
                keys.extend(sample_key(cfg.backend, identity, req, i) for i in range(cfg.n))
            if cache is not None:
                cached += len(cache.get_many(keys))
    finally:
        if cache is not None:
            cache.close()
    return {
        "rows": reader.count,
        "invalid": len(reader.invalid),
        "not_a_prompt": not_a_prompt,
        "requests": requests,
        "samples": requests * cfg.n,
        "cached": cached,
        "to_generate": requests * cfg.n - cached,
        "prompt_tokens": prompt_tokens,
        "prompt_tokens_method": getattr(counter, "method", "estimate"),
        "cache": str(path) if path else None,
    }


def _prompt_token_counter(cfg: GenerateConfig):
    """Exact counts with the model's tokenizer and chat template where it is local; else ~4 characters a token."""
    p = Path(cfg.model).expanduser()
    if cfg.backend in ("hf", "vllm") and p.exists():
        try:
            from transformers import AutoTokenizer

            where, extra = (str(p.parent), {"gguf_file": p.name}) if p.suffix == ".gguf" else (str(p), {})
            tok = AutoTokenizer.from_pretrained(where, **extra)

            def exact(messages) -> int:
                return len(
                    tok.apply_chat_template(
                        messages, tokenize=True, add_generation_prompt=True, return_dict=True
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


__all__ = ["GenerateConfig", "run_generate", "plan_generate", "prompt_of", "sample_id", "BackendError"]

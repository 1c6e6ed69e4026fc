"""`CachedLLM`: a backend behind the response cache, the one way every synth command asks an LLM.

Each sample is cached under its own key (backend, model, settings, messages, sample index), so asking
for 16 samples after 8 were made generates only the missing 8, and a killed run resumes.

>>> from synth.backends.scripted import ScriptedBackend
>>> from synth.backends import ChatRequest
>>> from synth.cache import NullCache
>>> llm = CachedLLM(ScriptedBackend(lambda req, i: f"answer {i}"), NullCache())
>>> [c.text for c in llm.complete([ChatRequest([{"role": "user", "content": "hi"}], n=2)])[0].completions]
['answer 0', 'answer 1']
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import xxhash

from synth.backends import Backend, ChatRequest, ChatResult, Completion
from synth.cache import sample_key


@dataclass
class LLMStats:
    requests: int = 0
    samples: int = 0
    cache_hits: int = 0
    fresh_samples: int = 0
    failed_requests: int = 0
    fresh_completion_tokens: int = 0
    backend_seconds: float = 0.0

    def as_dict(self) -> dict:
        d = dict(self.__dict__)
        d["backend_seconds"] = round(self.backend_seconds, 3)
        if self.backend_seconds > 0:
            d["fresh_tokens_per_s"] = round(self.fresh_completion_tokens / self.backend_seconds, 1)
        return d


@dataclass
class CachedLLM:
    backend: Backend
    cache: object  # ResponseCache | NullCache
    model_id: str | None = None  # identity used in cache keys (defaults to backend.model)
    stats: LLMStats = field(default_factory=LLMStats)

    def __post_init__(self):
        if self.model_id is None:
            self.model_id = getattr(self.backend, "model", "")

    def keys(self, request: ChatRequest) -> list[str]:
        return [sample_key(self.backend.name, self.model_id, request, i) for i in range(request.n)]

    def complete(self, requests: Sequence[ChatRequest]) -> list[ChatResult]:
        """`request.n` completions per request, from the cache where possible; errors per request."""
        out = []
        for samples, error in self.complete_each(requests):
            done = [c for c in samples if c is not None]
            out.append(
                ChatResult(completions=done) if error is None else ChatResult(completions=done, error=error)
            )
        return out

    def complete_each(
        self, requests: Sequence[ChatRequest]
    ) -> list[tuple[list[Completion | None], str | None]]:
        """Per request: one entry per sample index (None where it failed) and the request's error."""
        st = self.stats
        keys = [self.keys(r) for r in requests]
        st.requests += len(requests)
        st.samples += sum(r.n for r in requests)
        found: dict[str, Completion] = self.cache.get_many(k for ks in keys for k in ks)
        st.cache_hits += len(found)
        todo = [(j, [i for i, k in enumerate(ks) if k not in found]) for j, ks in enumerate(keys)]
        todo = [(j, missing) for j, missing in todo if missing]
        errors: dict[int, str] = {}
        if todo:
            stored: set[int] = set()

            def store(k: int, res: ChatResult) -> None:
                # Committed as each request's answers arrive, whatever the batch: a killed run keeps them.
                if k in stored:
                    return
                stored.add(k)
                j, missing = todo[k]
                if res.ok and len(res.completions) != len(missing):
                    res = ChatResult(
                        error=f"the backend returned {len(res.completions)} completions, "
                        f"expected {len(missing)}"
                    )
                if not res.ok:
                    errors[j] = res.error or "unknown error"
                    st.failed_requests += 1
                    return
                fresh = [(keys[j][i], comp) for i, comp in zip(missing, res.completions, strict=True)]
                st.fresh_completion_tokens += sum(comp.completion_tokens or 0 for _, comp in fresh)
                st.fresh_samples += len(fresh)
                self.cache.put_many(fresh, backend=self.backend.name, model=self.model_id)
                found.update(fresh)

            t0 = time.perf_counter()
            results = self.backend.generate(
                [requests[j].with_n(len(missing)) for j, missing in todo], on_result=store
            )
            st.backend_seconds += time.perf_counter() - t0
            for k, res in enumerate(results):  # what the backend did not report as it went
                store(k, res)
        out = []
        for j, ks in enumerate(keys):
            samples = [found.get(k) for k in ks]
            out.append(
                (samples, None if all(c is not None for c in samples) else errors.get(j, "no completion"))
            )
        return out


def model_identity(backend: str, model: str) -> str:
    """The model as the cache knows it: a local path also carries its files' sizes and times, so a model
    rebuilt at the same path does not answer from the old model's cache."""
    p = Path(model).expanduser()
    if backend == "openai" or not p.exists():
        return model
    files = [p] if p.is_file() else sorted(f for f in p.iterdir() if f.is_file())
    stamp = [(f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in files]
    return f"{model}@{xxhash.xxh3_64_hexdigest(orjson.dumps(stamp))}"


def open_cache(path: Path | None):
    """The response cache at `path` (None: no cache)."""
    from curate.io import InputError
    from synth.cache import NullCache, ResponseCache

    if path is None:
        return NullCache()
    try:
        return ResponseCache(path)
    except OSError as e:
        raise InputError(f"--cache: {e}") from None

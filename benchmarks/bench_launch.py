"""`train sft` in one process against `train sft --num-processes N` (accelerate, DDP), side by side on the same
model, data and seed, through the real command line in fresh processes.

Each configuration runs `--repeat` times, interleaved (1 process, N processes, 1 process, ...) so that load from
other jobs on the machine falls on both alike. Reported per configuration, as medians:

- tokens/s in steady state: non-padding input tokens seen by all processes together between the logged step
  `--warmup` and the last step, over that training time (from the run's `log_history.jsonl`, as transformers
  counts them: summed over the processes);
- tokens/s per process: the same divided by the number of processes;
- wall seconds of the whole command: start-up, `train check`, launching, training, saving, sanity generation.

On CPU one process gets all the cores (`--threads`, default: every core) and N processes share them (accelerate's
`--num_cpu_threads_per_process`, set by posttrain: cores // N), so the comparison is at equal hardware.

    python benchmarks/bench_launch.py                              # CPU: the small model, 1 vs 2 processes
    python benchmarks/bench_launch.py --size 0.5b --processes 8 --steps 30 --batch 8 --seq-len 1024   # GPUs
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_train import SIZES, build_model, make_rows  # noqa: E402


def steady_tokens_per_s(run: Path, warmup: int) -> float | None:
    logged = [json.loads(x) for x in (run / "log_history.jsonl").read_text().splitlines() if x.strip()]
    steps = [h for h in logged if "loss" in h and "train_runtime" in h]
    first = next((h for h in steps if h["step"] >= warmup), None)
    last = steps[-1] if steps else None
    if first is None or last is None or last["train_runtime"] <= first["train_runtime"]:
        return None
    return (last["num_input_tokens_seen"] - first["num_input_tokens_seen"]) / (
        last["train_runtime"] - first["train_runtime"]
    )


def run_sft(processes: int, model: Path, data: Path, out: Path, args, threads: int) -> dict:
    sets = [
        f"max_steps={args.steps}",
        f"per_device_train_batch_size={args.batch}",
        f"max_length={args.seq_len}",
        "logging_steps=1",
        "save_strategy=no",
        "gradient_checkpointing=false",
        "dataloader_pin_memory=false",
        "seed=0",
    ]
    cmd = [
        sys.executable,
        "-m",
        "train.cli",
        "sft",
        "--data",
        str(data),
        "--model",
        str(model),
        "-o",
        str(out),
    ]
    cmd += [x for s in sets for x in ("--set", s)] + ["--force"]
    if processes > 1:
        cmd += ["--num-processes", str(processes)]
    env = {
        **os.environ,
        "OMP_NUM_THREADS": str(threads),
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    t = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{done.stderr[-4000:]}")
    m = json.loads((out / "manifest.json").read_text())
    steady = steady_tokens_per_s(out, args.warmup)
    return {
        "processes": processes,
        "world_size": m["distributed"]["world_size"],
        "global_batch": m["distributed"]["global_batch_size"],
        "steady_tokens_per_s": steady,
        "steady_tokens_per_s_per_process": steady / processes if steady else None,
        "wall_s": wall,
        "final_loss": m["metrics"]["last_logged_loss"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", choices=list(SIZES), default="small")
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5, help="logged steps left out of the steady-state rate")
    ap.add_argument("--batch", type=int, default=8, help="per-device batch")
    ap.add_argument("--seq-len", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="CPU threads of the 1-process run [all cores]")
    ap.add_argument("--out", help="also write the results as JSON here")
    args = ap.parse_args()

    from transformers import AutoTokenizer

    cores = len(os.sched_getaffinity(0))
    threads = args.threads or cores
    results: dict[int, list[dict]] = {1: [], args.processes: []}
    with tempfile.TemporaryDirectory(prefix="bench-launch-") as tmp:
        tmp = Path(tmp)
        model = build_model(args.size, tmp / "model")
        tok = AutoTokenizer.from_pretrained(model)
        # enough rows for the N-process run's global batch, so both read fresh rows every step
        rows = make_rows(tok, args.batch * args.steps * args.processes, args.seq_len, preference=False)
        data = tmp / "sft.jsonl"
        data.write_text("".join(json.dumps(r) + "\n" for r in rows))
        for k in range(args.repeat):
            for n in results:
                r = run_sft(n, model, data, tmp / f"out-{n}", args, threads if n == 1 else max(1, cores // n))
                r["repeat"] = k
                results[n].append(r)
                print(json.dumps(r), flush=True)
    print()
    print(
        f"model {args.size}, batch {args.batch} per process, seq-len <= {args.seq_len}, {args.steps} steps, "
        f"{cores} cores; medians of {args.repeat}"
    )
    print(f"{'processes':>9} {'tokens/s':>10} {'per process':>12} {'wall s':>8}")
    med = {}
    for n, rs in results.items():
        med[n] = {
            key: statistics.median(r[key] for r in rs)
            for key in ("steady_tokens_per_s", "steady_tokens_per_s_per_process", "wall_s")
        }
        m = med[n]
        print(
            f"{n:>9} {m['steady_tokens_per_s']:>10.0f} {m['steady_tokens_per_s_per_process']:>12.0f} "
            f"{m['wall_s']:>8.1f}"
        )
    one, many = med[1], med[args.processes]
    print(
        f"ratio {args.processes} processes / 1: tokens/s {many['steady_tokens_per_s'] / one['steady_tokens_per_s']:.2f}x, "
        f"per process {many['steady_tokens_per_s_per_process'] / one['steady_tokens_per_s']:.2f}x, "
        f"wall {many['wall_s'] / one['wall_s']:.2f}x"
    )
    if args.out:
        Path(args.out).write_text(json.dumps({"runs": results, "medians": med}, indent=2) + "\n")


if __name__ == "__main__":
    main()

"""Does `train distill` bring the student's next-token distribution closer to the teacher's on prompts it never saw?
End to end through the CLI, on a small pair a CPU trains in minutes.

The teacher is a larger tiny Qwen2-style model (hidden 128, 4 layers; the student: hidden 64, 2 layers, the same
tokenizer) fine-tuned with `train sft` on `bench_online`'s toy task: answer in one short sentence. The student starts
from random weights. Then, on the task's prompts (a quarter held out, never trained on):

- `train distill` (TRL's DistillationTrainer: the student samples, generalized JSD at beta 0.5), and
- `train distill --lmbda 0.5 --seq-kd` (GKDTrainer: half the batches sampled from the teacher),

each for the same steps. Reported from each run's manifest: KL(student || teacher) and KL(teacher || student) per
token, on the student's own samples of the held-out prompts, before and after; and the share of the student's greedy
held-out answers that follow the format rule, against the teacher's.

    python benchmarks/bench_distill.py                         # about 5-10 minutes on 2 CPU cores
    python benchmarks/bench_distill.py --steps 40 --out bench-distill.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.bench_online import BIN, RULE, evaluate, prompt, sh, tasks, write  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--teacher-steps", type=int, default=150, help="SFT steps that teach the teacher the task"
    )
    ap.add_argument("--steps", type=int, default=60, help="distillation steps")
    ap.add_argument("--max-tokens", type=int, default=16, help="tokens per sampled reply")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", help="keep the models and runs here (default: a temporary directory)")
    ap.add_argument("--out", help="also write the results as JSON here")
    args = ap.parse_args()

    from posttrain.tinymodels import build_tiny_model
    from train.data import read_rows, split_rows

    with tempfile.TemporaryDirectory(prefix="bench-distill-") as tmp:
        work = Path(args.work or tmp)
        work.mkdir(parents=True, exist_ok=True)
        student = build_tiny_model("qwen2", work / "student", seed=args.seed)
        teacher_base = build_tiny_model(
            "qwen2", work / "teacher-base", seed=args.seed + 1, head_dim=32, num_hidden_layers=4
        )
        items = tasks()
        sft = [
            {"id": f"t{i}", "messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}
            for i, (q, a) in enumerate(items)
        ]
        sft_data = write(work / "teacher-sft.jsonl", sft)
        prompts = write(work / "prompts.jsonl", [prompt(i, q) for i, (q, _) in enumerate(items)])
        fast = [
            "--set",
            "logging_steps=5",
            "--set",
            "gradient_checkpointing=false",
            "--set",
            "save_strategy=no",
        ]
        seconds = {
            "teacher sft": sh(
                "train sft",
                [str(BIN / "train"), "sft", "--data", str(sft_data), "--model", str(teacher_base), "-o",
                 str(work / "teacher"), "--set", f"max_steps={args.teacher_steps}", "--set", "learning_rate=3e-3",
                 "--set", "per_device_train_batch_size=8", *fast, "--force"],
                work / "teacher.log",
            )
        }  # fmt: skip
        common = [
            str(BIN / "train"), "distill", "--model", str(student), "--teacher", str(work / "teacher"),
            "--data", str(prompts), "--max-completion-length", str(args.max_tokens), "--kl-samples", "4",
            "--set", f"max_steps={args.steps}", "--set", "learning_rate=2e-3", "--set", "per_device_train_batch_size=8",
            "--set", "data.eval_fraction=0.25", "--set", f"seed={args.seed}", *fast, "--force",
        ]  # fmt: skip
        runs = {"distill (on-policy)": [], "distill --lmbda 0.5 --seq-kd": ["--lmbda", "0.5", "--seq-kd"]}
        for name, extra in runs.items():
            out = work / ("gkd" if extra else "distill")
            seconds[name] = sh(name, [*common, "-o", str(out), *extra], work / f"{out.name}.log")
            runs[name] = out

        rows, _ = read_rows(str(prompts), kind="prompt")
        _, held = split_rows(rows, 0.25)
        held = [{"id": r["id"], "messages": r["messages"]} for r in held]
        results = {"held_out_prompts": len(held), "rule": RULE, "steps": args.steps, "runs": {}}
        greedy = {
            name: evaluate(model, held, n=1, max_tokens=args.max_tokens, seed=args.seed)["greedy"]
            for name, model in (("student (before)", student), ("teacher", work / "teacher"))
        }
        for name, out in runs.items():
            m = json.loads((out / "manifest.json").read_text())
            d = m["distillation"]["divergence"]
            results["runs"][name] = {
                "trainer": m["distillation"]["trainer"],
                "before": d["before"],
                "after": d["after"],
                "greedy_pass_after": evaluate(out, held, n=1, max_tokens=args.max_tokens, seed=args.seed)[
                    "greedy"
                ],
                "wall_s": round(seconds[name], 1),
            }
        results["greedy_pass"] = greedy
        results["teacher_sft_wall_s"] = round(seconds["teacher sft"], 1)
    print()
    print(
        f"held-out prompts: {len(held)}; per-token divergences in nats on the student's samples (4 per prompt)"
    )
    print(
        f"{'run':30} {'KL(s||t) before':>16} {'after':>8} {'KL(t||s) before':>16} {'after':>8} {'greedy pass':>12} {'wall s':>7}"
    )
    for name, r in results["runs"].items():
        b, a = r["before"], r["after"]
        print(
            f"{name:30} {b['kl_student_teacher']:16.3f} {a['kl_student_teacher']:8.3f} {b['kl_teacher_student']:16.3f} "
            f"{a['kl_teacher_student']:8.3f} {r['greedy_pass_after']:12.2f} {r['wall_s']:7.1f}"
        )
    print(
        f"greedy pass of the student before: {greedy['student (before)']:.2f}; of the teacher: {greedy['teacher']:.2f}"
    )
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()

"""`synth reject-sample`: the Click command over `synth.reject.run_reject_sample` (options from
`synth.options`; registered in `synth.cli`)."""

from __future__ import annotations

import functools

import click

from curate.cli import input_options
from synth.options import (
    BACKEND_CHOICES,
    answer_options,
    backend_options,
    backend_settings,
    run_options,
    run_settings,
    sampling_settings,
    sandbox_options,
    sandbox_settings,
    synth_errors,
)


@click.command("reject-sample")
@click.argument("inputs", nargs=-1, required=True, metavar="INPUT...")
@click.option(
    "-o", "--output", required=True, type=click.Path(file_okay=False), help="Run directory to write."
)
@backend_options
@click.option(
    "-n", "--n", "n", type=click.IntRange(min=1), default=16, show_default=True, help="Samples per prompt."
)
@click.option(
    "--verifier",
    type=click.Choice(["math", "code", "reward-model", "judge"]),
    default="math",
    show_default=True,
    help="math: final answer against the row's gold answer; code: the response's code against the row's tests "
    "in the sandbox; reward-model: best-of-N with a local reward model; judge: an LLM rates each sample against "
    "rules/judge.yaml.",
)
@click.option(
    "--keep-per-prompt",
    type=click.IntRange(min=0),
    default=None,
    help="Demonstrations per prompt in sft.jsonl, distinct reasoning paths only [default: 4 for math, "
    "1 (the best) for reward-model and judge].",
)
@click.option(
    "--pairs-per-prompt",
    type=click.IntRange(min=0),
    default=1,
    show_default=True,
    help="Preference pairs per prompt: correct vs incorrect, or best vs worst (then 2nd best vs 2nd worst...).",
)
@click.option(
    "--min-margin",
    type=click.FloatRange(min=0),
    default=1.0,
    show_default=True,
    help="reward-model/judge: the score gap a pair needs (reward-model logits, or judge points on the rubric's scale).",
)
@click.option(
    "--min-score",
    type=float,
    default=None,
    help="reward-model/judge: the score a demonstration needs [default: none, the best is kept].",
)
@click.option(
    "--answer-field",
    default="answer",
    show_default=True,
    help="Column with the gold answer: GSM8K's '... #### 42', MATH's \\boxed{...} or a bare value.",
)
@click.option(
    "--tolerance",
    type=click.FloatRange(min=0),
    default=1e-4,
    show_default=True,
    help="math: relative tolerance for non-integer answers (integers must be equal).",
)
@click.option(
    "--symbolic",
    type=click.Choice(["auto", "on", "off"]),
    default="auto",
    show_default=True,
    help="math: also accept symbolically equal answers with sympy (auto: when sympy is installed).",
)
@click.option(
    "--near-duplicate-threshold",
    type=click.FloatRange(0, 1, min_open=True),
    default=0.8,
    show_default=True,
    help="Two kept responses of a prompt with at least this estimated Jaccard (word 5-grams) are one path.",
)
@click.option(
    "--reward-model",
    type=click.Path(exists=True),
    default=None,
    help="reward-model: a local AutoModelForSequenceClassification directory (one output).",
)
@click.option(
    "--reward-batch-size",
    type=click.IntRange(min=1),
    default=16,
    show_default=True,
    help="reward-model: conversations per forward pass.",
)
@click.option("--judge-model", default=None, help="judge: the judging model [default: --model].")
@click.option(
    "--judge-backend",
    type=click.Choice(BACKEND_CHOICES),
    default=None,
    help="judge: its backend [default: --backend]; it shares the backend options (--base-url, --device...).",
)
@click.option(
    "--judge-rubric",
    default="judge.yaml",
    show_default=True,
    help="judge: rubric and prompt, a shipped rules file or your own YAML.",
)
@click.option(
    "--judge-max-tokens",
    type=click.IntRange(min=1),
    default=256,
    show_default=True,
    help="judge: longest rating, in tokens.",
)
@click.option(
    "--tests-field",
    default="tests",
    show_default=True,
    help="code: column with the tests: assert statements, or HumanEval's def check(candidate) with --entry-point-field.",
)
@click.option(
    "--entry-point-field",
    default="entry_point",
    show_default=True,
    help="code: column naming the function under test.",
)
@click.option(
    "--generate-tests",
    is_flag=True,
    help="code: for prompts without tests the LLM writes --n-tests asserts; a test counts when some sample passes it, "
    "a sample is correct when it passes every such test (rules/exec_tests.yaml).",
)
@click.option(
    "--n-tests",
    type=click.IntRange(min=1),
    default=8,
    show_default=True,
    help="code: tests to generate per prompt.",
)
@sandbox_options
@answer_options(batch_size=8)
@run_options
@input_options
@synth_errors
def reject_sample_cmd(
    inputs,
    output,
    n,
    verifier,
    keep_per_prompt,
    pairs_per_prompt,
    min_margin,
    min_score,
    answer_field,
    tolerance,
    symbolic,
    near_duplicate_threshold,
    reward_model,
    reward_batch_size,
    judge_model,
    judge_backend,
    judge_rubric,
    judge_max_tokens,
    tests_field,
    entry_point_field,
    generate_tests,
    n_tests,
    system_prompt,
    batch_size,
    keep_truncated,
    **kw,
):
    """Rejection sampling: n samples per prompt, verified, into SFT demonstrations and preference pairs.

    Every prompt is answered n times (cached samples are reused) and each sample is verified. Up to
    --keep-per-prompt correct (or best-scored) samples per prompt, without exact or near-duplicate reasoning
    paths, go to OUTPUT/sft.jsonl as conversations; correct against incorrect (or best against worst, at least
    --min-margin apart) go to OUTPUT/preference.jsonl with an explicit prompt, both scores and the method.
    OUTPUT/samples.jsonl holds every sample with its verdict, extracted answer or score and why;
    OUTPUT/rejected.jsonl the prompts with no correct sample or nothing to contrast, with the reason;
    OUTPUT/manifest.json pass@1, pass@n, the histogram of correct samples per prompt, tokens and throughput.

    \b
    Examples:
      synth reject-sample sample_data/math.jsonl -o rs --model ./SmolLM2-135M-Instruct.Q4_1.gguf \\
          --n 16 --verifier math --temperature 0.8 --max-tokens 384
      synth reject-sample sample_data/code.jsonl -o rs-code --backend openai --model Qwen/Qwen2.5-Coder-7B-Instruct \\
          --n 8 --verifier code --exec-timeout 5
      synth reject-sample prompts.jsonl -o bon --backend openai --base-url http://127.0.0.1:8000/v1 \\
          --model Qwen/Qwen2.5-7B-Instruct --n 8 --verifier reward-model --reward-model ./my-rm --min-margin 2
      synth reject-sample prompts.jsonl -o judged --backend openai --model Qwen/Qwen2.5-7B-Instruct \\
          --verifier judge --judge-model Qwen/Qwen2.5-72B-Instruct --min-score 7
      train dpo --data rs --model ./my-sft-model -o dpo-run
    """
    from synth.reject import RejectConfig, run_reject_sample

    backend = kw["backend"]
    options = backend_settings(backend, kw)
    judge_options = None
    if judge_backend is not None and judge_backend != backend:
        judge_options = backend_settings(judge_backend, kw)
    cfg = RejectConfig(
        inputs=list(inputs),
        output=output,
        model=kw["model"],
        backend=backend,
        n=n,
        verifier=verifier,
        keep_per_prompt=keep_per_prompt,
        pairs_per_prompt=pairs_per_prompt,
        min_margin=min_margin,
        min_score=min_score,
        answer_field=answer_field,
        tolerance=tolerance,
        symbolic=symbolic,
        near_duplicate_threshold=near_duplicate_threshold,
        reward_model=reward_model,
        reward_batch_size=reward_batch_size,
        reward_device=kw["device"],
        judge_backend=judge_backend,
        judge_model=judge_model,
        judge_rubric=judge_rubric,
        judge_max_tokens=judge_max_tokens,
        judge_backend_options=judge_options,
        tests_field=tests_field,
        entry_point_field=entry_point_field,
        generate_tests=generate_tests,
        n_tests=n_tests,
        **sandbox_settings(kw),
        system_prompt=system_prompt,
        **sampling_settings(kw),
        batch_size=batch_size,
        keep_truncated=keep_truncated,
        **run_settings(kw),
        backend_options=options,
    )
    _print_summary(run_reject_sample(cfg))


def _print_summary(m: dict) -> None:
    echo = functools.partial(click.echo, err=True)
    c, met, tok, thr = m["counts"], m["metrics"], m["tokens"], m["throughput"]
    for warning in m["warnings"]:
        echo(f"warning: {warning}")
    missing = "no tests" if m["config"]["verifier"] == "code" else "no gold answer"
    skipped = f" + not prompts {c['not_a_prompt']}" + (
        f" + {missing} {c['no_gold_answer']}" if c["no_gold_answer"] else ""
    )
    echo(f"rows {c['input']} = prompts {c['prompts']}{skipped} + invalid {c['invalid']}")
    verdicts = ", ".join(f"{k} {v}" for k, v in c["verdicts"].items())
    echo(f"samples {c['samples']}: {verdicts}")
    if met.get("pass@1") is not None:
        n = m["config"]["n"]
        echo(
            f"pass@1 {met['pass@1']:.3f}, pass@{n} {met[f'pass@{n}']:.3f}; correct per prompt: "
            + " ".join(f"{k}:{v}" for k, v in met["correct_per_prompt"].items() if v)
        )
    if "scores" in met:
        echo(
            f"scores: best {met['scores']['best_mean']:g} / worst {met['scores']['worst_mean']:g} on average"
        )
    reasons = ", ".join(f"{k} {v}" for k, v in m["reasons"].items())
    rate = thr["generated_tokens_per_s"]
    echo(
        f"tokens: prompt {tok['prompt']:,}, completion {tok['completion']:,} ({tok['generated_now']:,} generated now"
        + (f" at {rate:,.0f} tok/s" if rate else "")
        + ")"
    )
    run = m["run_dir"]
    echo(f"sft:        {run}/sft.jsonl ({c['sft']} demonstrations from {c['prompts_with_sft']} prompts)")
    echo(f"preference: {run}/preference.jsonl ({c['pairs']} pairs from {c['prompts_with_pairs']} prompts)")
    echo(f"samples:    {run}/samples.jsonl")
    echo(f"rejected:   {run}/rejected.jsonl" + (f" ({reasons})" if reasons else ""))
    echo(f"manifest:   {run}/manifest.json")

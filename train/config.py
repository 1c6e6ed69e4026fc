"""Typed run configuration for `train sft|dpo|reward|online-dpo|rl|distill|bond`, read from YAML and `--set KEY=VALUE`.

A config file holds TRL's own config fields (`SFTConfig`, `DPOConfig`, `RewardConfig`) at the top level, plus two
blocks of ours: `data:` (what to read and how to split it) and `lora:` (peft LoRA settings; its presence turns LoRA
on, like `--lora`). Unknown keys are rejected with the closest valid name, before any model is loaded.

>>> cfg = load_run_config("sft", model="m", output_dir="out", data_path="sft.jsonl",
...                       overrides=["max_steps=10", "data.eval_fraction=0.1"])
>>> cfg.trl["max_steps"], cfg.data.eval_fraction
(10, 0.1)
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import yaml

from train.launch import LaunchSettings

METHODS = ("sft", "dpo", "reward", "online-dpo", "grpo", "rloo", "distill", "gkd", "bond")


class _Loader(yaml.SafeLoader):
    """YAML 1.2-style scalars: only true/false are booleans (`save_strategy: no` stays the string TRL expects)
    and `1e-3` is a float."""


_Loader.yaml_implicit_resolvers = {
    ch: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for ch, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


# PyYAML reads `1e-3` as a string (YAML 1.1 wants `1.0e-3`); learning rates are written that way.
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


# The loader itself, for readers that extend it (`posttrain.recipes` keeps line numbers).
Yaml12Loader = _Loader


def load_yaml(text_or_stream):
    return yaml.load(text_or_stream, Loader=_Loader)


class ConfigError(ValueError):
    """A config the user can fix: unknown key, wrong type, conflicting values."""


@dataclass
class DataConfig:
    """The `data:` block."""

    path: str | None = field(
        default=None,
        metadata={"help": "Data file or run directory (curate/synth output). `--data` overrides it."},
    )
    input_format: str = field(
        default="auto",
        metadata={
            "help": "Input format for the schema adapters: auto, messages, sharegpt, alpaca, prompt-response, preference."
        },
    )
    eval_fraction: float = field(
        default=0.0,
        metadata={
            "help": "Fraction of rows held out for evaluation, chosen by a hash of the row id (the same rows in every "
            "run). 0 trains on everything."
        },
    )
    max_rows: int | None = field(
        default=None, metadata={"help": "Use only the first N rows (smoke runs). None uses all of them."}
    )


@dataclass
class LoraSettings:
    """The `lora:` block: a subset of `peft.LoraConfig`."""

    r: int = field(default=16, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA scaling numerator (scale = lora_alpha / r)."})
    lora_dropout: float = field(default=0.05, metadata={"help": "Dropout on the LoRA input."})
    target_modules: list[str] | str = field(
        default="all-linear",
        metadata={
            "help": "Module names to adapt, or 'all-linear' (every linear layer except the output head)."
        },
    )


@dataclass
class RunConfig:
    """Shared fields of the training methods; see the subclasses for defaults per method."""

    method: ClassVar[str] = ""
    trl_config_name: ClassVar[str] = ""

    model: str = field(metadata={"help": "Model directory (or hub id when online) to start from."})
    output_dir: str = field(
        metadata={"help": "Run directory to write: model, tokenizer, manifest.json, samples."}
    )
    data: DataConfig = field(default_factory=DataConfig, metadata={"help": "The `data:` block."})
    lora: LoraSettings | None = field(
        default=None,
        metadata={"help": "LoRA settings; None trains every parameter. `--lora` sets the defaults."},
    )
    trl: dict[str, Any] = field(
        default_factory=dict,
        metadata={"help": "TRL config fields given by the user (validated against the TRL config class)."},
    )
    skip_check: bool = field(
        default=False, metadata={"help": "Skip `train check` before training (not advised)."}
    )
    force: bool = field(
        default=False,
        metadata={
            "help": "Replace an existing non-empty output directory, and discard a stopped run's state."
        },
    )
    resume: bool = field(
        default=False,
        metadata={
            "help": "Continue a stopped run from its last checkpoint (online-dpo: after its last finished episode), "
            "kept in the hidden `.OUTPUT.state/` beside the output directory."
        },
    )
    sanity_prompts: int = field(
        default=4, metadata={"help": "Prompts from the data to generate from (or score) after training."}
    )
    max_new_tokens: int = field(default=64, metadata={"help": "Token budget of each sanity generation."})
    launch: LaunchSettings = field(
        default_factory=LaunchSettings,
        metadata={
            "help": "How many processes train and how they share the model (`train.launch`); the default trains "
            "in this process."
        },
    )

    @property
    def max_length(self) -> int | None:
        return self.trl.get("max_length", 1024)


@dataclass
class SFTRunConfig(RunConfig):
    """`train sft`: supervised fine-tuning on conversations, loss on assistant turns only by default."""

    method: ClassVar[str] = "sft"
    trl_config_name: ClassVar[str] = "SFTConfig"

    assistant_only_loss: bool = field(
        default=True,
        metadata={
            "help": "Train only on assistant turns (their text and end-of-turn token). Set TRL's "
            "`assistant_only_loss: false` to train on every token."
        },
    )
    add_eos: bool = field(
        default=False,
        metadata={
            "help": "Write the tokenizer's eos_token right after the final assistant turn and train it, for models "
            "whose generations end `<end_of_turn><eos>` (Gemma 2) when the chat template does not write it. "
            "`--add-eos` sets it."
        },
    )


@dataclass
class DPORunConfig(RunConfig):
    """`train dpo`: direct preference optimisation on prompt/chosen/rejected rows."""

    method: ClassVar[str] = "dpo"
    trl_config_name: ClassVar[str] = "DPOConfig"

    settings: Any = field(
        default=None,
        metadata={"help": "The online merging optimizer's settings (`train.online_merging`), or None."},
    )


@dataclass
class RewardRunConfig(RunConfig):
    """`train reward`: a Bradley-Terry reward model (sequence classifier, one label) on preference rows."""

    method: ClassVar[str] = "reward"
    trl_config_name: ClassVar[str] = "RewardConfig"

    data: DataConfig = field(
        default_factory=lambda: DataConfig(eval_fraction=0.1),
        metadata={"help": "The `data:` block; 10% is held out by default to measure reward accuracy."},
    )
    ensemble: int = field(
        default=1,
        metadata={
            "help": "WARM: train this many reward models from one initialisation (seed, data order and, with "
            "--ensemble-lr, learning rate differing) and average their weights into the output."
        },
    )
    ensemble_lr: list[float] | None = field(
        default=None,
        metadata={
            "help": "WARM: learning rates given to the members in turn, comma-separated (1e-5,2e-5); default: "
            "learning_rate for every member."
        },
    )


@dataclass
class OnlineRunConfig(RunConfig):
    """The on-policy commands: what they sample and how it is scored (`settings`), besides TRL's config."""

    settings: Any = field(
        default=None,
        metadata={"help": "The command's own settings: reward spec, sampling, episodes (`train.rewards`)."},
    )


@dataclass
class OnlineDPORunConfig(OnlineRunConfig):
    """`train online-dpo`: episodes of sampling from the policy, scoring, and DPO on best-vs-worst pairs."""

    method: ClassVar[str] = "online-dpo"
    trl_config_name: ClassVar[str] = "DPOConfig"


@dataclass
class GRPORunConfig(OnlineRunConfig):
    """`train rl --algo grpo`: group-relative policy optimisation with the verifiers as reward functions."""

    method: ClassVar[str] = "grpo"
    trl_config_name: ClassVar[str] = "GRPOConfig"


@dataclass
class RLOORunConfig(OnlineRunConfig):
    """`train rl --algo rloo`: REINFORCE leave-one-out with the verifiers as reward functions."""

    method: ClassVar[str] = "rloo"
    trl_config_name: ClassVar[str] = "RLOOConfig"


@dataclass
class DistillRunConfig(OnlineRunConfig):
    """`train distill`: on-policy distillation from a teacher with TRL's `DistillationTrainer` (`lmbda` 1)."""

    method: ClassVar[str] = "distill"
    trl_config_name: ClassVar[str] = "DistillationConfig"

    data: DataConfig = field(
        default_factory=lambda: DataConfig(eval_fraction=0.1),
        metadata={"help": "The `data:` block; 10% is held out by default to measure the KL to the teacher."},
    )


@dataclass
class GKDRunConfig(DistillRunConfig):
    """`train distill --lmbda < 1`: generalized knowledge distillation with `trl.experimental.gkd.GKDTrainer`."""

    method: ClassVar[str] = "gkd"
    trl_config_name: ClassVar[str] = "experimental.gkd.GKDConfig"


@dataclass
class BondRunConfig(OnlineRunConfig):
    """`train bond`: best-of-N distillation in episodes, with an EMA anchor."""

    method: ClassVar[str] = "bond"
    trl_config_name: ClassVar[str] = "SFTConfig"


RUN_CONFIGS: dict[str, type[RunConfig]] = {
    "sft": SFTRunConfig,
    "dpo": DPORunConfig,
    "reward": RewardRunConfig,
    "online-dpo": OnlineDPORunConfig,
    "grpo": GRPORunConfig,
    "rloo": RLOORunConfig,
    "distill": DistillRunConfig,
    "gkd": GKDRunConfig,
    "bond": BondRunConfig,
}

# Keys owned by posttrain: a value in the YAML would be ignored or fight with what the command does.
_MANAGED_KEYS = {
    "output_dir": "set the output directory with -o",
    "dataset_text_field": "posttrain feeds conversations (`messages`) or preference rows, never a text column",
    "dataset_kwargs": "posttrain prepares the dataset itself",
    "completion_only_loss": "use `assistant_only_loss` (default true) instead",
    "formatting_func": "posttrain applies the model's chat template",
    "resume_from_checkpoint": "pass --resume: checkpoints are kept in the hidden .OUTPUT.state/ beside the output",
}


def trl_config_class(method: str):
    """TRL's config class of `method` (`experimental.gkd.GKDConfig` names one outside TRL's top level)."""
    import importlib

    module, _, name = f"trl.{RUN_CONFIGS[method].trl_config_name}".rpartition(".")
    return getattr(importlib.import_module(module), name)


def trl_field_names(method: str) -> set[str]:
    return {f.name for f in dataclasses.fields(trl_config_class(method)) if f.init}


def _suggest(key: str, names) -> str:
    close = difflib.get_close_matches(key, list(names), n=1, cutoff=0.75)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _block(cls, values, name: str):
    if values is None:
        return cls()
    if not isinstance(values, dict):
        raise ConfigError(f"'{name}:' must be a mapping, got {type(values).__name__}")
    known = {f.name for f in dataclasses.fields(cls)}
    for key in values:
        if key not in known:
            hint = _suggest(key, known).replace("'", f"'{name}.", 1) if _suggest(key, known) else ""
            raise ConfigError(f"unknown key '{name}.{key}'{hint}; known: {', '.join(sorted(known))}")
    return cls(**values)


def parse_override(text: str) -> tuple[str, Any]:
    """`KEY=VALUE` with VALUE read as YAML (`max_steps=10`, `loss_type=[sigmoid]`, `data.eval_fraction=0.1`)."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected KEY=VALUE")
    key, raw = text.split("=", 1)
    try:
        value = load_yaml(raw) if raw.strip() else None
    except yaml.YAMLError as e:
        raise ConfigError(f"--set {text!r}: value is not valid YAML ({e})") from None
    return key.strip(), value


def read_config_file(path: str | Path | None) -> dict:
    if path is None:
        return {}
    try:
        with open(path, encoding="utf-8") as fh:
            loaded = load_yaml(fh)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({e})") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path}: expected a mapping of TRL config fields plus a `data:` block")
    return loaded


def load_run_config(
    method: str,
    *,
    model: str,
    output_dir: str,
    config_path: str | Path | None = None,
    overrides: list[str] = (),
    data_path: str | None = None,
    lora: bool = False,
    skip_check: bool = False,
    force: bool = False,
    resume: bool = False,
    **fields,
) -> RunConfig:
    """Merge the YAML file, `--set` overrides and flags into a validated `RunConfig` (no model is loaded);
    `fields` are further fields of the method's config class (`settings` of the online commands)."""
    if method not in RUN_CONFIGS:
        raise ConfigError(f"unknown method {method!r} (choose from {', '.join(METHODS)})")
    cls = RUN_CONFIGS[method]
    raw = dict(read_config_file(config_path))
    for item in overrides:
        key, value = parse_override(item)
        if "." in key:
            block, sub = key.split(".", 1)
            if block not in ("data", "lora"):
                raise ConfigError(f"--set {item!r}: only the data. and lora. blocks take dotted keys")
            section = raw.get(block) or {}
            if not isinstance(section, dict):
                raise ConfigError(f"'{block}:' must be a mapping")
            raw[block] = {**section, sub: value}
        else:
            raw[key] = value

    data_block = raw.pop("data", None)
    lora_given = "lora" in raw
    lora_block = raw.pop("lora", None)
    default_data = cls.__dataclass_fields__["data"].default_factory()
    data = _block(DataConfig, {**dataclasses.asdict(default_data), **(data_block or {})}, "data")
    if data_path is not None:
        data.path = str(data_path)
    if data.path is None:
        raise ConfigError("no training data: pass --data FILE_OR_RUN_DIR (or set data.path in the config)")
    if not 0.0 <= float(data.eval_fraction) < 1.0:
        raise ConfigError(f"data.eval_fraction must be in [0, 1), got {data.eval_fraction}")
    lora_settings = _block(LoraSettings, lora_block, "lora") if (lora or lora_given) else None

    extra: dict[str, Any] = {}
    for own in ("assistant_only_loss", "add_eos"):
        if method == "sft" and own in raw:
            extra[own] = bool(raw.pop(own))
    trl_names = trl_field_names(method)
    for key in raw:
        if key in _MANAGED_KEYS:
            raise ConfigError(f"config key '{key}' is managed by posttrain: {_MANAGED_KEYS[key]}")
        if key not in trl_names:
            raise ConfigError(
                f"unknown config key '{key}'{_suggest(key, trl_names | {'data', 'lora'})}: top-level keys are "
                f"fields of trl.{cls.trl_config_name}, plus the `data:` and `lora:` blocks"
            )
    return cls(
        model=str(model),
        output_dir=str(output_dir),
        data=data,
        lora=lora_settings,
        trl=raw,
        skip_check=skip_check,
        force=force,
        resume=resume,
        **extra,
        **fields,
    )


def describe_fields(cls) -> list[tuple[str, str]]:
    """(name, help) for every field of a config dataclass: the source of `--help` text and the docs."""
    return [(f.name, f.metadata.get("help", "")) for f in dataclasses.fields(cls)]

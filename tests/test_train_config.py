"""Run configs: TRL fields plus `data:`/`lora:` blocks, unknown keys refused before any model loads."""

from __future__ import annotations

import dataclasses

import pytest

pytest.importorskip("trl")

from train.config import (  # noqa: E402
    RUN_CONFIGS,
    ConfigError,
    DataConfig,
    LoraSettings,
    load_run_config,
    load_yaml,
)


def _load(method="sft", tmp_path=None, text=None, **kw):
    path = None
    if text is not None:
        path = tmp_path / "cfg.yaml"
        path.write_text(text)
    return load_run_config(
        method, model="m", output_dir="o", config_path=path, **{"data_path": "d.jsonl", **kw}
    )


def test_trl_fields_data_and_lora_blocks(tmp_path):
    cfg = _load(
        "dpo",
        tmp_path,
        "beta: 0.2\nloss_type: [sigmoid]\nlearning_rate: 5e-7\ndata:\n  eval_fraction: 0.1\nlora:\n  r: 8\n",
    )
    assert cfg.trl == {"beta": 0.2, "loss_type": ["sigmoid"], "learning_rate": 5e-7}
    assert cfg.data.eval_fraction == 0.1 and cfg.data.path == "d.jsonl"
    assert cfg.lora == LoraSettings(r=8)


def test_lora_flag_turns_on_default_lora():
    assert _load(lora=True).lora == LoraSettings()
    assert _load().lora is None


@pytest.mark.parametrize(
    "text,message",
    [
        ("learning_rat: 0.1\n", "unknown config key 'learning_rat' (did you mean 'learning_rate'?)"),
        ("beta: 0.1\n", "unknown config key 'beta'"),  # a DPO field in an SFT config
        ("data:\n  eval_frac: 0.1\n", "unknown key 'data.eval_frac' (did you mean 'data.eval_fraction'"),
        ("lora:\n  rank: 4\n", "unknown key 'lora.rank'"),
        ("output_dir: x\n", "managed by posttrain: set the output directory with -o"),
        ("data:\n  eval_fraction: 1.5\n", "data.eval_fraction must be in [0, 1)"),
        ("- a\n- b\n", "expected a mapping"),
    ],
)
def test_bad_configs_are_refused_with_a_clear_message(tmp_path, text, message):
    with pytest.raises(ConfigError) as e:
        _load("sft", tmp_path, text)
    assert message in str(e.value)


def test_overrides_and_yaml_scalars():
    cfg = _load(
        overrides=[
            "save_strategy=no",
            "learning_rate=1e-3",
            "max_steps=3",
            "data.max_rows=5",
            "assistant_only_loss=false",
        ]
    )
    assert cfg.trl == {"save_strategy": "no", "learning_rate": 1e-3, "max_steps": 3}
    assert cfg.data.max_rows == 5 and cfg.assistant_only_loss is False
    assert load_yaml("a: yes\nb: off\nc: true\nd: 2e-5") == {"a": "yes", "b": "off", "c": True, "d": 2e-5}
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        _load(overrides=["max_steps"])


def test_missing_data_is_an_error():
    with pytest.raises(ConfigError, match="no training data"):
        load_run_config("sft", model="m", output_dir="o")


def test_reward_holds_out_ten_percent_by_default():
    assert _load("reward").data.eval_fraction == 0.1
    assert _load("dpo").data.eval_fraction == 0.0


def test_every_config_field_has_help():
    for cls in (*RUN_CONFIGS.values(), DataConfig, LoraSettings):
        for f in dataclasses.fields(cls):
            assert f.metadata.get("help"), f"{cls.__name__}.{f.name} has no help"


def test_trl_config_builds_with_cpu_fp32_defaults():
    from train.common import build_trl_args
    from train.sft import SFT

    cfg = _load(overrides=["max_steps=2"])
    args = build_trl_args(cfg, SFT, "out")
    assert args.max_steps == 2 and args.bf16 is False and args.fp16 is False  # fp32 on CPU
    assert args.report_to in ("none", [], ["none"]) and args.assistant_only_loss is False
    with pytest.raises(ConfigError, match="invalid SFTConfig settings"):
        build_trl_args(_load(overrides=["save_strategy=sometimes"]), SFT, "out")

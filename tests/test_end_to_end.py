"""The whole loop through the real CLIs: sample data -> curate filter -> synth reject-sample (scripted
model) -> train dpo on a tiny model, each reading the previous run directory as it is."""

from __future__ import annotations

import json
import math

from curate.cli import main as curate_main
from synth.backends.scripted import ScriptedBackend
from synth.cli import main as synth_main
from tests.conftest import SAMPLE, read_jsonl
from train.cli import main as train_main


def _gold():
    rows = read_jsonl(SAMPLE / "math.jsonl")
    return {r["messages"][-1]["content"]: str(r["answer"]).replace("####", "").strip() for r in rows}


def test_sample_data_to_dpo(tmp_path, cli, monkeypatch):
    from posttrain.tinymodels import build_tiny_model
    from synth import runner as run_module

    curated = tmp_path / "curated"
    res = cli(curate_main, "filter", SAMPLE / "math.jsonl", "-o", curated, "-q", "-j", "1")
    assert res.exit_code == 0, res.output
    kept = read_jsonl(curated / "kept.jsonl")
    assert kept and all("answer" in r for r in kept)

    gold = _gold()

    def model(req, i):  # right on even samples, wrong on odd ones
        value = gold[req.messages[-1]["content"]]
        return (
            f"Step by step, the result is {value}.\n#### {value}"
            if i % 2 == 0
            else "I think it is 7.5.\n#### 7.5"
        )

    monkeypatch.setattr(run_module, "get_backend", lambda name, **kw: ScriptedBackend(model, model="m"))
    rs = tmp_path / "rs"
    res = cli(
        synth_main,
        "reject-sample",
        curated,
        "-o",
        rs,
        "--model",
        "m",
        "--n",
        "4",
        "--verifier",
        "math",
        "--no-cache",
        "--pairs-per-prompt",
        "1",
    )
    assert res.exit_code == 0, res.output
    pairs = read_jsonl(rs / "preference.jsonl")
    assert len(pairs) >= len(kept) - 2 and all(p["prompt"][0]["role"] == "user" for p in pairs)

    tiny = build_tiny_model("qwen2", tmp_path / "tiny")
    dpo = tmp_path / "dpo"
    res = cli(
        train_main,
        "dpo",
        "--data",
        rs,
        "--model",
        tiny,
        "-o",
        dpo,
        "--set",
        "max_steps=2",
        "--set",
        "per_device_train_batch_size=4",
        "--set",
        "save_strategy=no",
        "--set",
        "logging_steps=1",
        "--set",
        "max_length=256",
    )
    assert res.exit_code == 0, res.output
    m = json.loads((dpo / "manifest.json").read_text())
    assert m["data"]["rows"] == len(pairs) and m["metrics"]["global_step"] == 2
    assert math.isfinite(m["metrics"]["last_logged_loss"])

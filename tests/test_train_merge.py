"""`train merge`: weighted means exact, WARP interpolation, and mismatches refused before anything is written."""

from __future__ import annotations

import json

import pytest

from tests.train_fixtures import copy_model, state_dict, tiny_model

torch = pytest.importorskip("torch")

from safetensors.torch import load_file, save_file  # noqa: E402

from train.cli import main as train_cli  # noqa: E402
from train.merge import MergeError, merge_checkpoints  # noqa: E402


def _fake_model(path, tensors: dict, config: dict | None = None):
    """A minimal checkpoint: config.json and model.safetensors with the given tensors."""
    path.mkdir(parents=True)
    cfg = {"architectures": ["TinyForCausalLM"], "model_type": "tiny", "hidden_size": 4, **(config or {})}
    (path / "config.json").write_text(json.dumps(cfg))
    save_file(tensors, str(path / "model.safetensors"))
    return path


def _nothing_written(tmp_path, out_name: str) -> bool:
    return not (tmp_path / out_name).exists() and not any(
        p.name.startswith(f".{out_name}.") for p in tmp_path.iterdir()
    )


def test_weighted_mean_is_exact(tmp_path, cli):
    # Values and weights are exact in binary, so fp32 accumulation must give exactly the weighted mean.
    a = {
        "w": torch.tensor([[1.0, 2.0], [3.0, -4.0]]),
        "b": torch.tensor([0.5, 8.0]),
        "step": torch.tensor([7]),
    }
    b = {
        "w": torch.tensor([[5.0, 6.0], [-7.0, 8.0]]),
        "b": torch.tensor([1.5, 0.0]),
        "step": torch.tensor([7]),
    }
    c = {
        "w": torch.tensor([[9.0, 10.0], [11.0, 12.0]]),
        "b": torch.tensor([-2.5, 4.0]),
        "step": torch.tensor([7]),
    }
    paths = [_fake_model(tmp_path / n, t) for n, t in (("a", a), ("b", b), ("c", c))]
    r = cli(train_cli, "merge", *paths, "-o", tmp_path / "out", "--weights", "1,1,2")
    assert r.exit_code == 0, r.output
    got = load_file(str(tmp_path / "out" / "model.safetensors"))
    for name in ("w", "b"):
        expected = a[name] * 0.25 + b[name] * 0.25 + c[name] * 0.5
        assert torch.equal(got[name], expected), name
    assert torch.equal(got["step"], a["step"])  # non-float tensors must agree and are copied
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert [m["weight"] for m in manifest["models"]] == [0.25, 0.25, 0.5]
    assert manifest["method"] == "weighted average" and manifest["accumulation"] == "float32"
    assert json.loads((tmp_path / "out" / "config.json").read_text())["architectures"] == ["TinyForCausalLM"]


def test_uniform_average_of_real_models_loads_and_matches(tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    paths = [tiny_model("qwen2", seed=s) for s in (1, 2, 3)]
    out = merge_checkpoints(paths, tmp_path / "soup", echo=lambda s: None)
    sds = [state_dict(p) for p in paths]
    merged = state_dict(out)
    for name, t in merged.items():
        expected = sum(sd[name].double() for sd in sds) / 3
        assert torch.allclose(t.double(), expected, atol=1e-6, rtol=0), name
    AutoTokenizer.from_pretrained(out)  # tokenizer copied
    model = AutoModelForCausalLM.from_pretrained(out)
    assert (
        model.generation_config.eos_token_id
        == AutoModelForCausalLM.from_pretrained(paths[0]).generation_config.eos_token_id
    )


def test_warp_interpolates_towards_the_base(tmp_path):
    base = _fake_model(tmp_path / "init", {"w": torch.tensor([0.0, 4.0, -8.0])})
    a = _fake_model(tmp_path / "a", {"w": torch.tensor([2.0, 4.0, 8.0])})
    b = _fake_model(tmp_path / "b", {"w": torch.tensor([6.0, 0.0, 0.0])})
    out = merge_checkpoints([a, b], tmp_path / "warp", base=base, alpha=0.5, echo=lambda s: None)
    # merge = [4, 2, 4]; base + 0.5 * (merge - base) = [2, 3, -2]
    assert torch.equal(load_file(str(out / "model.safetensors"))["w"], torch.tensor([2.0, 3.0, -2.0]))
    assert json.loads((out / "manifest.json").read_text())["alpha"] == 0.5


def test_bf16_stays_bf16_unless_asked(tmp_path):
    a = _fake_model(tmp_path / "a", {"w": torch.tensor([1.0, 2.0], dtype=torch.bfloat16)})
    b = _fake_model(tmp_path / "b", {"w": torch.tensor([2.0, 3.0], dtype=torch.bfloat16)})
    auto = merge_checkpoints([a, b], tmp_path / "auto", echo=lambda s: None)
    assert load_file(str(auto / "model.safetensors"))["w"].dtype == torch.bfloat16
    f32 = merge_checkpoints([a, b], tmp_path / "f32", dtype="float32", echo=lambda s: None)
    assert torch.equal(load_file(str(f32 / "model.safetensors"))["w"], torch.tensor([1.5, 2.5]))
    assert json.loads((f32 / "config.json").read_text())["dtype"] == "float32"


def test_sharded_output_loads(tmp_path):
    from transformers import AutoModelForCausalLM

    paths = [tiny_model("llama", seed=s) for s in (1, 2)]
    out = merge_checkpoints(paths, tmp_path / "sharded", max_shard_bytes=100_000, echo=lambda s: None)
    index = json.loads((out / "model.safetensors.index.json").read_text())
    assert len(set(index["weight_map"].values())) > 1
    merged = AutoModelForCausalLM.from_pretrained(out).state_dict()
    sds = [state_dict(p) for p in paths]
    name = "model.layers.0.mlp.up_proj.weight"
    assert torch.allclose(merged[name], (sds[0][name] + sds[1][name]) / 2, atol=1e-7)


@pytest.fixture
def no_tensor_reads(monkeypatch):
    """Fail if any tensor is read: refusals must come from headers and configs alone."""
    import safetensors

    def refuse(*a, **k):
        raise AssertionError("a tensor was read")

    monkeypatch.setattr(safetensors, "safe_open", refuse)
    monkeypatch.setattr("safetensors.torch.load_file", refuse)


def test_mismatched_architectures_are_refused_before_anything_is_written(tmp_path, cli, no_tensor_reads):
    r = cli(train_cli, "merge", tiny_model("qwen2"), tiny_model("llama"), "-o", tmp_path / "out")
    assert r.exit_code == 1
    assert "architectures differ: LlamaForCausalLM (llama) vs Qwen2ForCausalLM (qwen2)" in r.output
    assert _nothing_written(tmp_path, "out")


def test_reward_model_and_causal_lm_are_refused(tmp_path, no_tensor_reads):
    with pytest.raises(MergeError, match="architectures differ"):
        merge_checkpoints([tiny_model("llama"), tiny_model("llama", num_labels=1)], tmp_path / "out")
    assert _nothing_written(tmp_path, "out")


def test_shape_and_config_mismatches_are_refused(tmp_path, no_tensor_reads):
    a = _fake_model(tmp_path / "a", {"w": torch.zeros(2, 4)})
    b = _fake_model(tmp_path / "b", {"w": torch.zeros(2, 3)})
    with pytest.raises(MergeError, match=r"shapes differ for w: \[2, 3\] vs \[2, 4\]"):
        merge_checkpoints([a, b], tmp_path / "out")
    c = _fake_model(tmp_path / "c", {"w": torch.zeros(2, 4)}, {"hidden_size": 8})
    with pytest.raises(MergeError, match="configs differ in hidden_size"):
        merge_checkpoints([a, c], tmp_path / "out")
    d = _fake_model(tmp_path / "d", {"w": torch.zeros(2, 4), "extra": torch.zeros(1)})
    with pytest.raises(MergeError, match="tensor names differ"):
        merge_checkpoints([a, d], tmp_path / "out")
    a2 = _fake_model(tmp_path / "a2", {"w": torch.ones(2, 4)})
    with pytest.raises(MergeError, match="architectures differ"):  # the base is checked too
        merge_checkpoints([a, a2], tmp_path / "out", base=tiny_model("qwen2"), alpha=0.5)
    assert _nothing_written(tmp_path, "out")


def test_different_vocabularies_are_refused(tmp_path, no_tensor_reads):
    other = copy_model(tiny_model("qwen2", seed=1), tmp_path / "other")
    tj = json.loads((other / "tokenizer.json").read_text())
    vocab = tj["model"]["vocab"]
    a, b = sorted(vocab)[10:12]
    vocab[a], vocab[b] = vocab[b], vocab[a]  # same size, ids swapped: shapes match, meanings do not
    (other / "tokenizer.json").write_text(json.dumps(tj))
    with pytest.raises(MergeError, match="tokenizer vocabularies differ"):
        merge_checkpoints([tiny_model("qwen2"), other], tmp_path / "out")
    assert _nothing_written(tmp_path, "out")


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"weights": [1.0]}, "1 weights for 2 models"),
        ({"weights": [1.0, -1.0]}, "non-negative"),
        ({"alpha": 0.5}, "--base and --alpha go together"),
        ({"base": "x", "alpha": 1.5}, r"--alpha must be in \[0, 1\]"),
    ],
)
def test_bad_arguments(tmp_path, kwargs, message):
    a = _fake_model(tmp_path / "a", {"w": torch.zeros(2)})
    b = _fake_model(tmp_path / "b", {"w": torch.zeros(2)})
    with pytest.raises(MergeError, match=message):
        merge_checkpoints([a, b], tmp_path / "out", **kwargs)


def test_adapter_and_bin_checkpoints_are_refused_with_advice(tmp_path):
    ad = tmp_path / "adapter"
    ad.mkdir()
    (ad / "config.json").write_text("{}")
    (ad / "adapter_config.json").write_text("{}")
    with pytest.raises(MergeError, match="a LoRA adapter, not a model"):
        merge_checkpoints([ad, ad], tmp_path / "out")


def test_existing_output_needs_force(tmp_path, cli):
    a = _fake_model(tmp_path / "a", {"w": torch.zeros(2)})
    b = _fake_model(tmp_path / "b", {"w": torch.ones(2)})
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("x")
    r = cli(train_cli, "merge", a, b, "-o", tmp_path / "out")
    assert r.exit_code == 1 and "pass --force" in r.output
    r = cli(train_cli, "merge", a, b, "-o", tmp_path / "out", "--force")
    assert r.exit_code == 0 and not (tmp_path / "out" / "keep.txt").exists()


# --- merge methods against hand-computed tensors ------------------------------------------------------------


def _three(tmp_path):
    base = _fake_model(tmp_path / "init", {"w": torch.tensor([1.0, 1.0, 1.0, 1.0])})
    a = _fake_model(tmp_path / "a", {"w": torch.tensor([4.0, 1.0, -1.0, 1.5])})  # tau_a = [3, 0, -2, 0.5]
    b = _fake_model(tmp_path / "b", {"w": torch.tensor([0.0, 3.0, 2.0, 1.0])})  # tau_b = [-1, 2, 1, 0]
    return base, a, b


def test_ties_trims_elects_signs_and_averages_the_agreeing_entries(tmp_path):
    base, a, b = _three(tmp_path)
    out = merge_checkpoints([a, b], tmp_path / "ties", base=base, method="ties", echo=lambda s: None)
    # density 0.5 keeps 2 of 4 entries: tau_a -> [3, 0, -2, 0], tau_b -> [-1, 2, 0, 0]
    # signs of the sum [2, 2, -2, 0] -> [+, +, -, 0]; agreeing means: [3, 2, -2, 0]
    got = load_file(str(out / "model.safetensors"))["w"]
    assert torch.allclose(got, torch.tensor([4.0, 3.0, -1.0, 1.0]))
    m = json.loads((out / "manifest.json").read_text())
    assert m["merge"] == {"name": "ties", "density": 0.5}


def test_slerp_of_task_vectors_matches_the_formula(tmp_path):
    import math

    base = _fake_model(tmp_path / "init", {"w": torch.tensor([1.0, 1.0])})
    a = _fake_model(tmp_path / "a", {"w": torch.tensor([2.0, 1.0])})  # tau = [1, 0]
    b = _fake_model(tmp_path / "b", {"w": torch.tensor([1.0, 2.0])})  # tau = [0, 1]: 90 degrees apart
    out = merge_checkpoints([a, b], tmp_path / "slerp", base=base, method="slerp", echo=lambda s: None)
    s = math.sin(math.pi / 4) / math.sin(math.pi / 2)  # t = 0.5, omega = pi/2
    assert torch.allclose(load_file(str(out / "model.safetensors"))["w"], torch.tensor([1 + s, 1 + s]))
    # WARP's last step on top: alpha 0.5 halves the way from the base
    out = merge_checkpoints(
        [a, b], tmp_path / "warp", base=base, alpha=0.5, method="slerp", echo=lambda s: None
    )
    assert torch.allclose(
        load_file(str(out / "model.safetensors"))["w"], torch.tensor([1 + s / 2, 1 + s / 2])
    )


def test_dare_drops_and_rescales_with_a_reproducible_mask(tmp_path):
    from train.merge import Dare

    base, a, b = _three(tmp_path)
    dare = Dare(0.5, seed=7)
    out = merge_checkpoints([a, b], tmp_path / "dare", base=base, method=dare, echo=lambda s: None)
    tau_a, tau_b = torch.tensor([3.0, 0.0, -2.0, 0.5]), torch.tensor([-1.0, 2.0, 1.0, 0.0])
    ma, mb = dare.mask((4,), "w", 0), dare.mask((4,), "w", 1)
    expected = 1.0 + 0.5 * (tau_a * ma / 0.5) + 0.5 * (tau_b * mb / 0.5)
    assert torch.allclose(load_file(str(out / "model.safetensors"))["w"], expected)
    again = merge_checkpoints(
        [a, b], tmp_path / "dare2", base=base, method=Dare(0.5, seed=7), echo=lambda s: None
    )
    assert torch.equal(load_file(str(again / "model.safetensors"))["w"], expected.float())


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"method": "ties"}, "give the initial model with --base"),
        ({"method": "slerp", "extra": True}, "slerp merges two models"),
    ],
)
def test_merge_method_errors(tmp_path, kwargs, message):
    base, a, b = _three(tmp_path)
    models = [a, b, base] if kwargs.pop("extra", False) else [a, b]
    with pytest.raises(MergeError, match=message):
        merge_checkpoints(models, tmp_path / "x", echo=lambda s: None, **kwargs)

"""The tiny offline models: real chat templates, BOS/EOS/pad, determinism, reward-model heads."""

import hashlib
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest

from posttrain.tinymodels import FAMILIES, build_tiny_model

pytest.importorskip("transformers")

CONVERSATION = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Hi"},
    {"role": "assistant", "content": "Hello!"},
    {"role": "user", "content": "Bye"},
]

EXPECTED = {
    "llama": (
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nBye<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    ),
    "qwen2": (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
        "<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n"
    ),
    "gemma": (
        "<bos><start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\nHello!<end_of_turn>\n"
        "<start_of_turn>user\nBye<end_of_turn>\n<start_of_turn>model\n"
    ),
}
END_OF_TURN = {"llama": "<|eot_id|>", "qwen2": "<|im_end|>", "gemma": "<end_of_turn>"}
BOS = {"llama": "<|begin_of_text|>", "qwen2": None, "gemma": "<bos>"}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return {f: build_tiny_model(f, tmp_path_factory.mktemp(f), seed=0) for f in FAMILIES}


@pytest.mark.parametrize("family", FAMILIES)
def test_chat_template_renders_the_family_format(built, family):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(built[family])
    text = tok.apply_chat_template(CONVERSATION, tokenize=False, add_generation_prompt=True)
    assert text == EXPECTED[family]


def test_gemma_prompt_is_exactly_the_reports_format(built):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(built["gemma"])
    text = tok.apply_chat_template(
        [{"role": "user", "content": "Hi"}], tokenize=False, add_generation_prompt=True
    )
    assert text == "<bos><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n"


@pytest.mark.parametrize("family", FAMILIES)
def test_special_tokens_are_single_ids_and_bos_appears_once(built, family):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(built[family])
    eot = tok.convert_tokens_to_ids(END_OF_TURN[family])
    assert tok.convert_ids_to_tokens(eot) == END_OF_TURN[family]
    assert tok.pad_token_id is not None and tok.pad_token_id != eot
    text = tok.apply_chat_template(CONVERSATION, tokenize=False, add_generation_prompt=True)
    ids = tok(text, add_special_tokens=False).input_ids
    assert ids.count(eot) == (3 if family == "gemma" else 4)  # Gemma folds the system turn in
    if BOS[family] is None:
        assert tok.bos_token is None
        assert tok("hello").input_ids == tok("hello", add_special_tokens=False).input_ids
    else:
        bos = tok.convert_tokens_to_ids(BOS[family])
        assert tok.bos_token_id == bos
        assert ids[0] == bos and ids.count(bos) == 1
        # Like the real tokenizers, plain encoding adds BOS too: the double-BOS trap is present.
        assert tok(text).input_ids[:2] == [bos, bos]


@pytest.mark.parametrize("family", FAMILIES)
def test_generation_config_stops_at_end_of_turn(built, family):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(built[family])
    model = AutoModelForCausalLM.from_pretrained(built[family])
    eos = model.generation_config.eos_token_id
    assert tok.convert_tokens_to_ids(END_OF_TURN[family]) in eos
    assert model.config.pad_token_id == tok.pad_token_id
    assert model.config.vocab_size == len(tok)
    assert model.config.hidden_size == 64 and model.config.num_hidden_layers == 2


def test_tokenizer_round_trips_any_text(built):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(built["llama"])
    for text in ["Hello, world!", "héllo 日本 🙂", " two  spaces\n\ttab", ""]:
        assert tok.decode(tok(text, add_special_tokens=False).input_ids) == text


def _digest(path):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(path.iterdir())}


def test_same_seed_same_files_other_seed_other_weights(built, tmp_path):
    again = _digest(build_tiny_model("qwen2", tmp_path / "a", seed=0))
    assert again == _digest(built["qwen2"])
    other = _digest(build_tiny_model("qwen2", tmp_path / "b", seed=1))
    assert other["model.safetensors"] != again["model.safetensors"]
    assert other["tokenizer.json"] == again["tokenizer.json"]


@pytest.mark.parametrize("family", FAMILIES)
def test_reward_model_scores_a_padded_batch(tmp_path, family):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    path = build_tiny_model(family, tmp_path, seed=0, num_labels=1)
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path)
    assert type(model).__name__.endswith("ForSequenceClassification")
    assert model.config.pad_token_id == tok.pad_token_id
    batch = tok(["a short one", "a much longer text than the other one"], padding=True, return_tensors="pt")
    with torch.no_grad():
        scores = model(**batch).logits
    assert scores.shape == (2, 1)
    alone = model(**tok(["a short one"], return_tensors="pt")).logits
    assert torch.allclose(alone[0], scores[0], atol=1e-4)


def test_unknown_family_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="unknown model family 'mistral'"):
        build_tiny_model("mistral", tmp_path)


@pytest.mark.parametrize("family", FAMILIES)
def test_head_dim_sets_the_attention_head_size(tmp_path, family):
    from transformers import AutoConfig, AutoModelForCausalLM

    path = build_tiny_model(family, tmp_path, head_dim=32)  # what vLLM's CPU attention accepts
    config = AutoConfig.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path)
    q = model.model.layers[0].self_attn.q_proj
    assert config.hidden_size == 128 and q.out_features == config.num_attention_heads * 32
    assert getattr(config, "head_dim", 32) == 32

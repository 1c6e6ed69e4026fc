"""Tiny, randomly initialised Llama-, Qwen2- and Gemma-style models for tests and demos, built offline.

Each model comes with a byte-level BPE tokenizer trained on the fly (on a few paragraphs of English
shipped here) that carries the family's real special tokens, BOS/EOS/pad settings and chat template:

- ``llama``: Llama 3 (``<|begin_of_text|>``, ``<|start_header_id|>role<|end_header_id|>``, ``<|eot_id|>``);
  the tokenizer adds ``<|begin_of_text|>`` itself, as Meta's does, so callers that render the template
  must encode with ``add_special_tokens=False`` or get two BOS tokens.
- ``qwen2``: ChatML (``<|im_start|>``/``<|im_end|>``, default system prompt); no BOS token at all.
- ``gemma``: ``<bos><start_of_turn>user\\n...<end_of_turn>\\n<start_of_turn>model\\n`` as the Gemma reports
  show (a system message is folded into the first user turn, as Gemma 3's template does); the tokenizer
  adds ``<bos>`` itself and its ``eos_token`` is ``<eos>``, while generation stops at ``<end_of_turn>``.

``generation_config.eos_token_id`` always lists the end-of-turn token. With ``num_labels`` the model is a
``...ForSequenceClassification`` (a reward model) with ``pad_token_id`` in its config.

>>> import tempfile
>>> from transformers import AutoModelForCausalLM, AutoTokenizer
>>> from posttrain.tinymodels import build_tiny_model
>>> path = build_tiny_model("gemma", tempfile.mkdtemp(), seed=0)
>>> tok = AutoTokenizer.from_pretrained(path)
>>> tok.apply_chat_template([{"role": "user", "content": "Hi"}], tokenize=False, add_generation_prompt=True)
'<bos><start_of_turn>user\\nHi<end_of_turn>\\n<start_of_turn>model\\n'
>>> model = AutoModelForCausalLM.from_pretrained(path)
>>> tok.convert_ids_to_tokens(model.generation_config.eos_token_id)
['<eos>', '<end_of_turn>']
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

FAMILIES = ("llama", "qwen2", "gemma")

# Meta's Llama 3 Instruct template, unchanged.
LLAMA3_TEMPLATE = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'"
    "+ message['content'] | trim + '<|eot_id|>' %}"
    "{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)

# Qwen2-Instruct's ChatML template, unchanged.
CHATML_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

# Gemma 3's text template: Gemma 2's format, plus a system message folded into the first user turn.
GEMMA_TEMPLATE = (
    "{{ bos_token }}"
    "{%- if messages[0]['role'] == 'system' -%}"
    "{%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}"
    "{%- set loop_messages = messages[1:] -%}"
    "{%- else -%}{%- set first_user_prefix = '' -%}{%- set loop_messages = messages -%}{%- endif -%}"
    "{%- for message in loop_messages -%}"
    "{%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
    "{%- endif -%}"
    "{%- if message['role'] == 'assistant' -%}{%- set role = 'model' -%}"
    "{%- else -%}{%- set role = message['role'] -%}{%- endif -%}"
    "{{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else '') }}"
    "{{ message['content'] | trim }}{{ '<end_of_turn>\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<start_of_turn>model\n' }}{%- endif -%}"
)


@dataclass(frozen=True)
class FamilySpec:
    template: str
    bos: str | None
    eos: str  # the tokenizer's eos_token (what TRL appends to completions)
    pad: str
    end_of_turn: str
    unk: str | None = None
    # Special tokens the trainer places first (Gemma: <pad>=0, <eos>=1, <bos>=2, <unk>=3) ...
    leading: tuple[str, ...] = ()
    # ... and those added after training, at the end of the vocabulary (Llama 3, Qwen2).
    trailing: tuple[str, ...] = ()
    generation_eos: tuple[str, ...] = ()
    extra: dict = field(default_factory=dict)


SPECS: dict[str, FamilySpec] = {
    "llama": FamilySpec(
        template=LLAMA3_TEMPLATE,
        bos="<|begin_of_text|>",
        eos="<|eot_id|>",
        pad="<|finetune_right_pad_id|>",
        end_of_turn="<|eot_id|>",
        trailing=(
            "<|begin_of_text|>",
            "<|end_of_text|>",
            "<|finetune_right_pad_id|>",
            "<|start_header_id|>",
            "<|end_header_id|>",
            "<|eot_id|>",
        ),
        generation_eos=("<|end_of_text|>", "<|eot_id|>"),
    ),
    "qwen2": FamilySpec(
        template=CHATML_TEMPLATE,
        bos=None,
        eos="<|im_end|>",
        pad="<|endoftext|>",
        end_of_turn="<|im_end|>",
        trailing=("<|endoftext|>", "<|im_start|>", "<|im_end|>"),
        generation_eos=("<|im_end|>", "<|endoftext|>"),
    ),
    "gemma": FamilySpec(
        template=GEMMA_TEMPLATE,
        bos="<bos>",
        eos="<eos>",
        pad="<pad>",
        unk="<unk>",
        end_of_turn="<end_of_turn>",
        leading=("<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>"),
        generation_eos=("<eos>", "<end_of_turn>"),
    ),
}

# A few paragraphs of plain English: enough for a BPE vocabulary that splits ordinary text sensibly.
CORPUS = """\
The quick brown fox jumps over the lazy dog. A journey of a thousand miles begins with a single step.
Hello! How are you today? I am fine, thank you. What is your name? My name is Ada, and I like to help.
Please write a short poem about the sea. The sea is wide and deep and blue; the waves come in and go.
Explain why the sky is blue. Sunlight is scattered by the air, and blue light is scattered the most.
Here is a Python function that adds two numbers: def add(a, b): return a + b. It returns their sum.
What is the capital of France? The capital of France is Paris. The capital of Italy is Rome.
Summarize the following text in one sentence. The report describes how the model was trained and tested.
Translate to French: good morning, thank you, see you later. Bonjour, merci, a bientot.
Count from one to ten: one, two, three, four, five, six, seven, eight, nine, ten. 1 2 3 4 5 6 7 8 9 10.
A helpful assistant answers questions clearly, admits when it does not know, and keeps answers short.
The user asked a question about math: what is 12 times 12? The answer is 144. What is 7 plus 5? It is 12.
Data engineers filter, deduplicate and mix training data. Researchers train models on curated examples.
Water boils at 100 degrees Celsius at sea level. Ice melts at 0 degrees. The Earth orbits the Sun.
Once upon a time there was a small robot who wanted to learn to paint. Every day it practised colours.
Thank you for your question. I hope this helps. Let me know if you have any other questions!
The system message sets the rules; the user asks; the assistant or model answers, turn by turn.
"""

VOCAB_SIZE = 600  # before special tokens


def _train_tokenizer(spec: FamilySpec):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE + len(spec.leading),
        special_tokens=list(spec.leading),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS.splitlines(), trainer=trainer)
    if spec.trailing:
        tok.add_special_tokens(list(spec.trailing))
    if spec.bos is not None:
        # Like Meta's and Google's tokenizers: encoding text adds BOS by itself.
        bos_id = tok.token_to_id(spec.bos)
        tok.post_processor = processors.Sequence(
            [
                processors.ByteLevel(trim_offsets=False),
                processors.TemplateProcessing(
                    single=f"{spec.bos} $A",
                    pair=f"{spec.bos} $A {spec.bos} $B",
                    special_tokens=[(spec.bos, bos_id)],
                ),
            ]
        )
    else:
        tok.post_processor = processors.ByteLevel(trim_offsets=False)
    return tok


def build_tokenizer(family: str):
    """The family's tokenizer as a `PreTrainedTokenizerFast`, chat template set (no model)."""
    from transformers import PreTrainedTokenizerFast

    spec = _spec(family)
    raw = _train_tokenizer(spec)
    named = {spec.bos, spec.eos, spec.pad, spec.unk}
    extra = [t for t in (*spec.leading, *spec.trailing) if t not in named]
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=raw,
        bos_token=spec.bos,
        eos_token=spec.eos,
        pad_token=spec.pad,
        unk_token=spec.unk,
        additional_special_tokens=extra,
        add_bos_token=spec.bos is not None,
        add_eos_token=False,
        clean_up_tokenization_spaces=False,
        model_max_length=2048,
    )
    tokenizer.chat_template = spec.template
    return tokenizer


def _spec(family: str) -> FamilySpec:
    if family not in SPECS:
        raise ValueError(f"unknown model family {family!r} (known: {', '.join(FAMILIES)})")
    return SPECS[family]


def _config(family: str, tokenizer, num_labels: int | None, head_dim: int):
    import transformers

    spec = _spec(family)
    ids = {
        "vocab_size": len(tokenizer),
        "bos_token_id": tokenizer.convert_tokens_to_ids(spec.bos) if spec.bos else None,
        "eos_token_id": tokenizer.convert_tokens_to_ids(spec.eos),
        "pad_token_id": tokenizer.convert_tokens_to_ids(spec.pad),
    }
    # 4 heads of head_dim each (16 unless asked: vLLM's CPU attention needs 32, 64, 80, ...).
    shape = {
        "hidden_size": 4 * head_dim,
        "intermediate_size": 8 * head_dim,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 2048,
        "tie_word_embeddings": True,
    }
    if family == "llama":
        config = transformers.LlamaConfig(**shape, **ids, rope_theta=500000.0)
    elif family == "qwen2":
        config = transformers.Qwen2Config(**shape, **ids, use_sliding_window=False)
    else:
        config = transformers.Gemma3TextConfig(
            **shape, **ids, head_dim=head_dim, sliding_window=512, query_pre_attn_scalar=head_dim
        )
    if num_labels is not None:
        config.num_labels = num_labels
    return config


def build_tiny_model(
    family: str,
    out_dir: str | os.PathLike,
    *,
    seed: int = 0,
    num_labels: int | None = None,
    head_dim: int = 16,
) -> Path:
    """Write a tiny random model of `family` with its tokenizer to `out_dir`; return the directory.

    The same `seed` gives the same weights. With `num_labels`, a sequence-classification (reward) model.
    The model has 4 attention heads of `head_dim` (hidden size 4 x `head_dim`); vLLM's CPU attention needs
    32, 64, 80, ... (`head_dim=32` builds a model vLLM can serve).
    """
    import torch
    import transformers
    from transformers import GenerationConfig

    spec = _spec(family)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(family)
    config = _config(family, tokenizer, num_labels, head_dim)
    if num_labels is None:
        cls = {
            "llama": transformers.LlamaForCausalLM,
            "qwen2": transformers.Qwen2ForCausalLM,
            "gemma": transformers.Gemma3ForCausalLM,
        }[family]
    else:
        cls = {
            "llama": transformers.LlamaForSequenceClassification,
            "qwen2": transformers.Qwen2ForSequenceClassification,
            "gemma": transformers.Gemma3TextForSequenceClassification,
        }[family]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = cls(config)
    model.eval()
    eos_ids = [tokenizer.convert_tokens_to_ids(t) for t in spec.generation_eos]
    end_of_turn = tokenizer.convert_tokens_to_ids(spec.end_of_turn)
    assert end_of_turn in eos_ids
    if num_labels is None:
        model.generation_config = GenerationConfig(
            bos_token_id=config.bos_token_id,
            eos_token_id=eos_ids,
            pad_token_id=config.pad_token_id,
        )
    bars_were_on = transformers.utils.logging.is_progress_bar_enabled()
    transformers.utils.logging.disable_progress_bar()
    try:
        model.save_pretrained(out)
        tokenizer.save_pretrained(out)
    finally:
        if bars_were_on:
            transformers.utils.logging.enable_progress_bar()
    return out

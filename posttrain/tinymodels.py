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

Two variants carry the tool-use templates of their successors, same architecture and special tokens:

- ``llama3.1``: Meta's Llama 3.1 Instruct template (tools in the first user message, a call rendered as
  ``{"name": ..., "parameters": ...}<|eot_id|>``, results under the ``ipython`` header);
- ``qwen2.5``: Qwen2.5-Instruct's template (``<tools>`` in the system message, ``<tool_call>`` blocks, results as
  ``<tool_response>`` in a user turn).

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
from dataclasses import dataclass, field, replace
from pathlib import Path

FAMILIES = ("llama", "qwen2", "gemma")
TOOL_FAMILIES = ("llama3.1", "qwen2.5")  # the same architectures, with the tool-use templates

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


# Meta's Llama 3.1 Instruct template, unchanged (custom tools: JSON calls, results under `ipython`).
LLAMA31_TEMPLATE = r"""{{- bos_token }}
{%- if custom_tools is defined %}
    {%- set tools = custom_tools %}
{%- endif %}
{%- if not tools_in_user_message is defined %}
    {%- set tools_in_user_message = true %}
{%- endif %}
{%- if not date_string is defined %}
    {%- set date_string = "26 Jul 2024" %}
{%- endif %}
{%- if not tools is defined %}
    {%- set tools = none %}
{%- endif %}

{#- This block extracts the system message, so we can slot it into the right place. #}
{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content']|trim %}
    {%- set messages = messages[1:] %}
{%- else %}
    {%- set system_message = "" %}
{%- endif %}

{#- System message + builtin tools #}
{{- "<|start_header_id|>system<|end_header_id|>\n\n" }}
{%- if builtin_tools is defined or tools is not none %}
    {{- "Environment: ipython\n" }}
{%- endif %}
{%- if builtin_tools is defined %}
    {{- "Tools: " + builtin_tools | reject('equalto', 'code_interpreter') | join(", ") + "\n\n"}}
{%- endif %}
{{- "Cutting Knowledge Date: December 2023\n" }}
{{- "Today Date: " + date_string + "\n\n" }}
{%- if tools is not none and not tools_in_user_message %}
    {{- "You have access to the following functions. To call a function, please respond with JSON for a function call." }}
    {{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.' }}
    {{- "Do not use variables.\n\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\n\n" }}
    {%- endfor %}
{%- endif %}
{{- system_message }}
{{- "<|eot_id|>" }}

{#- Custom tools are passed in a user message with some extra guidance #}
{%- if tools_in_user_message and not tools is none %}
    {#- Extract the first user message so we can plug it in here #}
    {%- if messages | length != 0 %}
        {%- set first_user_message = messages[0]['content']|trim %}
        {%- set messages = messages[1:] %}
    {%- else %}
        {{- raise_exception("Cannot put tools in the first user message when there's no first user message!") }}
{%- endif %}
    {{- '<|start_header_id|>user<|end_header_id|>\n\n' -}}
    {{- "Given the following functions, please respond with a JSON for a function call " }}
    {{- "with its proper arguments that best answers the given prompt.\n\n" }}
    {{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.' }}
    {{- "Do not use variables.\n\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\n\n" }}
    {%- endfor %}
    {{- first_user_message + "<|eot_id|>"}}
{%- endif %}

{%- for message in messages %}
    {%- if not (message.role == 'ipython' or message.role == 'tool' or 'tool_calls' in message) %}
        {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' }}
    {%- elif 'tool_calls' in message %}
        {%- if not message.tool_calls|length == 1 %}
            {{- raise_exception("This model only supports single tool-calls at once!") }}
        {%- endif %}
        {%- set tool_call = message.tool_calls[0].function %}
        {%- if builtin_tools is defined and tool_call.name in builtin_tools %}
            {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' -}}
            {{- "<|python_tag|>" + tool_call.name + ".call(" }}
            {%- for arg_name, arg_val in tool_call.arguments | items %}
                {{- arg_name + '="' + arg_val + '"' }}
                {%- if not loop.last %}
                    {{- ", " }}
                {%- endif %}
                {%- endfor %}
            {{- ")" }}
        {%- else  %}
            {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' -}}
            {{- '{"name": "' + tool_call.name + '", ' }}
            {{- '"parameters": ' }}
            {{- tool_call.arguments | tojson }}
            {{- "}" }}
        {%- endif %}
        {%- if builtin_tools is defined %}
            {#- This means we're in ipython mode #}
            {{- "<|eom_id|>" }}
        {%- else %}
            {{- "<|eot_id|>" }}
        {%- endif %}
    {%- elif message.role == "tool" or message.role == "ipython" %}
        {{- "<|start_header_id|>ipython<|end_header_id|>\n\n" }}
        {%- if message.content is mapping or message.content is iterable %}
            {{- message.content | tojson }}
        {%- else %}
            {{- message.content }}
        {%- endif %}
        {{- "<|eot_id|>" }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}
{%- endif %}
"""

# Qwen2.5-Instruct's template, unchanged (Hermes-style <tool_call> blocks).
QWEN25_TEMPLATE = r"""{%- if tools %}
    {{- '<|im_start|>system\n' }}
    {%- if messages[0]['role'] == 'system' %}
        {{- messages[0]['content'] }}
    {%- else %}
        {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}
    {%- endif %}
    {{- "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>" }}
    {%- for tool in tools %}
        {{- "\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n" }}
{%- else %}
    {%- if messages[0]['role'] == 'system' %}
        {{- '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }}
    {%- else %}
        {{- '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n' }}
    {%- endif %}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant" and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + '\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role }}
        {%- if message.content %}
            {{- '\n' + message.content }}
        {%- endif %}
        {%- for tool_call in message.tool_calls %}
            {%- if tool_call.function is defined %}
                {%- set tool_call = tool_call.function %}
            {%- endif %}
            {{- '\n<tool_call>\n{"name": "' }}
            {{- tool_call.name }}
            {{- '", "arguments": ' }}
            {{- tool_call.arguments | tojson }}
            {{- '}\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\n' }}
    {%- elif message.role == "tool" %}
        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\n<tool_response>\n' }}
        {{- message.content }}
        {{- '\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
{%- endif %}
"""

# Gemma's template ending a finished conversation as the Gemma 2 report shows a model turn, `<end_of_turn><eos>`:
# the EOS follows the final model turn only (not a generation prompt, not earlier turns).
GEMMA_EOS_TEMPLATE = GEMMA_TEMPLATE.replace(
    "{{ message['content'] | trim }}{{ '<end_of_turn>\n' }}",
    "{{ message['content'] | trim }}{{ '<end_of_turn>' }}"
    "{%- if loop.last and role == 'model' and not add_generation_prompt -%}{{ eos_token }}"
    "{%- else -%}{{ '\n' }}{%- endif -%}",
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
    arch: str = ""  # the family whose architecture a template variant uses


def _variant(base: FamilySpec, template: str, *, trailing: tuple[str, ...] = (), arch: str) -> FamilySpec:
    return replace(base, template=template, trailing=(*base.trailing, *trailing), arch=arch)


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

SPECS["llama3.1"] = _variant(
    SPECS["llama"], LLAMA31_TEMPLATE, trailing=("<|eom_id|>", "<|python_tag|>"), arch="llama"
)
SPECS["qwen2.5"] = _variant(SPECS["qwen2"], QWEN25_TEMPLATE, arch="qwen2")

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
        raise ValueError(f"unknown model family {family!r} (known: {', '.join(SPECS)})")
    return SPECS[family]


def _arch(family: str) -> str:
    return _spec(family).arch or family


def _config(family: str, tokenizer, num_labels: int | None, head_dim: int, num_hidden_layers: int = 2):
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
        "num_hidden_layers": num_hidden_layers,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 2048,
        "tie_word_embeddings": True,
    }
    if _arch(family) == "llama":
        config = transformers.LlamaConfig(**shape, **ids, rope_theta=500000.0)
    elif _arch(family) == "qwen2":
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
    num_hidden_layers: int = 2,
) -> Path:
    """Write a tiny random model of `family` with its tokenizer to `out_dir`; return the directory.

    The same `seed` gives the same weights. With `num_labels`, a sequence-classification (reward) model.
    The model has 4 attention heads of `head_dim` (hidden size 4 x `head_dim`); vLLM's CPU attention needs
    32, 64, 80, ... (`head_dim=32` builds a model vLLM can serve). A larger `head_dim` or `num_hidden_layers`
    makes a bigger model with the same tokenizer (a teacher to distil from).
    """
    import torch
    import transformers
    from transformers import GenerationConfig

    spec = _spec(family)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(family)
    config = _config(family, tokenizer, num_labels, head_dim, num_hidden_layers)
    if num_labels is None:
        cls = {
            "llama": transformers.LlamaForCausalLM,
            "qwen2": transformers.Qwen2ForCausalLM,
            "gemma": transformers.Gemma3ForCausalLM,
        }[_arch(family)]
    else:
        cls = {
            "llama": transformers.LlamaForSequenceClassification,
            "qwen2": transformers.Qwen2ForSequenceClassification,
            "gemma": transformers.Gemma3TextForSequenceClassification,
        }[_arch(family)]
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

"""Label masks and the chat-template preflight: golden Gemma masks, and each planted template fault caught."""

from __future__ import annotations

import pytest

from tests.train_fixtures import END_OF_TURN

pytest.importorskip("transformers")

from posttrain.tinymodels import CHATML_TEMPLATE, GEMMA_TEMPLATE, LLAMA3_TEMPLATE, build_tokenizer  # noqa: E402
from train.template import (  # noqa: E402
    IGNORE_INDEX,
    PROBE,
    end_of_turn_token,
    preflight,
    tokenize_conversation,
    trained_spans,
)


@pytest.fixture(scope="module")
def toks():
    return {f: build_tokenizer(f) for f in ("gemma", "qwen2", "llama")}


def _levels(pf) -> dict[str, str]:
    out = {}
    for f in pf.findings:
        if f.level != "info":
            out[f.check] = f.level
    return out


# --- golden label masks ------------------------------------------------------------------------------------


def test_gemma_label_mask_is_exactly_the_replies_and_their_end_of_turn(toks):
    tok = toks["gemma"]
    ids, labels = tokenize_conversation(tok, PROBE)
    text = tok.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)
    assert text == (
        "<bos><start_of_turn>user\nKnock knock.<end_of_turn>\n"
        "<start_of_turn>model\nWho's there?<end_of_turn>\n"
        "<start_of_turn>user\nGemma.<end_of_turn>\n"
        "<start_of_turn>model\nGemma who?<end_of_turn>\n"
    )
    # Every model turn is trained (the Gemma 2 report's multi-turn format), nothing else: not the user turns,
    # not `<start_of_turn>model\n`, not the newline after `<end_of_turn>`.
    assert trained_spans(tok, ids, labels) == ["Who's there?<end_of_turn>", "Gemma who?<end_of_turn>"]
    assert ids.count(tok.bos_token_id) == 1 and ids[0] == tok.bos_token_id
    assert labels[0] == IGNORE_INDEX
    eot = tok.convert_tokens_to_ids("<end_of_turn>")
    trained = [t for t, lab in zip(ids, labels, strict=True) if lab != IGNORE_INDEX]
    assert trained.count(eot) == 2 and trained[-1] == eot
    # labels equal the ids where trained (no shifting here: the model shifts)
    assert all(lab in (IGNORE_INDEX, t) for t, lab in zip(ids, labels, strict=True))


def test_gemma_system_prompt_is_folded_into_the_first_user_turn_and_not_trained(toks):
    tok = toks["gemma"]
    msgs = [{"role": "system", "content": "Be brief."}, *PROBE]
    ids, labels = tokenize_conversation(tok, msgs)
    assert tok.decode(ids, skip_special_tokens=False).startswith(
        "<bos><start_of_turn>user\nBe brief.\n\nKnock knock."
    )
    assert trained_spans(tok, ids, labels) == ["Who's there?<end_of_turn>", "Gemma who?<end_of_turn>"]


@pytest.mark.parametrize("family", ["qwen2", "llama"])
def test_label_mask_other_families(toks, family):
    tok = toks[family]
    ids, labels = tokenize_conversation(tok, PROBE)
    eot = END_OF_TURN[family]
    assert trained_spans(tok, ids, labels) == [f"Who's there?{eot}", f"Gemma who?{eot}"]
    bos = tok.bos_token_id
    assert bos is None or ids.count(bos) == 1


def test_full_sequence_loss_when_assistant_only_is_off(toks):
    tok = toks["gemma"]
    ids, labels = tokenize_conversation(tok, PROBE, assistant_only=False)
    assert labels == ids


def test_end_of_turn_is_found_by_rendering(toks):
    assert {f: end_of_turn_token(t) for f, t in toks.items()} == END_OF_TURN


# --- preflight -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("family", ["gemma", "qwen2", "llama"])
@pytest.mark.parametrize("kind", ["sft", "preference"])
def test_real_templates_pass(toks, family, kind):
    pf = preflight(toks[family], kind=kind, method="reward" if kind == "preference" else None)
    assert pf.errors == [], [f.as_dict() for f in pf.errors]
    assert pf.end_of_turn == END_OF_TURN[family]


def _variant(family: str, template: str):
    tok = build_tokenizer(family)
    tok.chat_template = template
    return tok


PLANTED = {
    # A BOS per message: the classic doubled BOS.
    "bos per turn": (
        "gemma",
        GEMMA_TEMPLATE.replace("{{ '<start_of_turn>' + role", "{{ bos_token + '<start_of_turn>' + role"),
        "one BOS",
    ),
    # No BOS, while the model (its tokenizer adds one) was pretrained with it.
    "missing BOS": (
        "llama",
        LLAMA3_TEMPLATE.replace("{% set content = bos_token + content %}", ""),
        "one BOS",
    ),
    # ChatML that closes a turn only when the next one opens: the final reply has no <|im_end|> to learn.
    "end-of-turn outside the reply": (
        "qwen2",
        "{% for m in messages %}{% if not loop.first %}{{ '<|im_end|>\n' }}{% endif %}"
        "{{ '<|im_start|>' + m['role'] + '\n' + m['content'] }}{% endfor %}"
        "{% if add_generation_prompt %}{{ '<|im_end|>\n<|im_start|>assistant\n' }}{% endif %}",
        "end-of-turn token",
    ),
    # The generation prompt differs from how a reply is rendered: training context != inference context.
    "prompt not a prefix": (
        "qwen2",
        CHATML_TEMPLATE.replace("{{ '<|im_start|>assistant\n' }}", "{{ '<|im_start|>assistant: ' }}"),
        "prompt is a prefix",
    ),
    # Text after the end-of-turn token inside the reply: the model is trained to go on past its stop token.
    "text after end-of-turn": (
        "qwen2",
        CHATML_TEMPLATE.replace("'<|im_end|>' + '\n'", "'<|im_end|>' + '\n-- \n'"),
        "end-of-turn trained",
    ),
    # Nothing special closes a turn: the model has no token to stop on.
    "no end-of-turn token": (
        "qwen2",
        CHATML_TEMPLATE.replace("'<|im_end|>' + '\n'", "'\n### end\n'"),
        "end-of-turn token",
    ),
}


@pytest.mark.parametrize("kind", ["sft", "preference"])
@pytest.mark.parametrize("fault", sorted(PLANTED))
def test_planted_template_faults_are_caught(fault, kind):
    family, template, check = PLANTED[fault]
    pf = preflight(_variant(family, template), kind=kind)
    assert _levels(pf).get(check) == "error", (fault, [f.as_dict() for f in pf.findings])


def test_no_chat_template_is_an_error():
    tok = build_tokenizer("qwen2")
    tok.chat_template = None
    pf = preflight(tok, kind="sft")
    assert [f.check for f in pf.errors] == ["chat template"]


def test_template_that_rejects_system_messages_fails_only_rows_that_have_one():
    template = (
        "{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}"
        + GEMMA_TEMPLATE
    )
    tok = _variant("gemma", template)
    clean = preflight(tok, kind="sft", samples=[{"id": "a", "messages": PROBE[:2]}])
    assert clean.errors == []
    assert any(f.check == "system messages" for f in clean.findings)
    row = {"id": "b", "messages": [{"role": "system", "content": "Be brief."}, *PROBE[:2]]}
    bad = preflight(tok, kind="sft", samples=[row])
    assert [f.check for f in bad.errors] == ["template renders the data"]
    assert "System role not supported" in bad.errors[0].examples[0]


def test_reward_pad_token_that_ends_sequences_is_caught():
    tok = build_tokenizer("llama")
    assert preflight(tok, kind="preference", method="reward").errors == []
    tok.pad_token = (
        "<|eot_id|>"  # a common shortcut: pad = eos; the score would be read before the last token
    )
    pf = preflight(tok, kind="preference", method="reward")
    assert [f.check for f in pf.errors] == ["reward read position"]

"""The reports' chat formats in `train`: golden label masks for Llama 3.1 / Qwen2.5 tool use and Gemma's end
tokens, plain text rows for a pre-trained model, rankings expanded into pairs, the preflight's tool probe, the
one-line error for a model without a chat template, and a few training steps on each."""

from __future__ import annotations

import json

import pytest

from tests.train_fixtures import FAST, copy_model, tiny_model, write_rows

pytest.importorskip("transformers")

from posttrain.tinymodels import GEMMA_EOS_TEMPLATE, QWEN25_TEMPLATE, build_tokenizer  # noqa: E402
from train.template import (  # noqa: E402
    IGNORE_INDEX,
    PROBE,
    TOOL_PROBE,
    TOOLS_PROBE,
    preflight,
    render,
    text_findings,
    tokenize_conversation,
    tokenize_text,
    trained_spans,
)

WEATHER = TOOLS_PROBE[0]


def call(name="get_weather", **arguments):
    return {"type": "function", "function": {"name": name, "arguments": arguments or {"city": "Paris"}}}


def tool_row(i: int, **extra) -> dict:
    city = ["Paris", "Rome", "Oslo", "Lisbon"][i % 4]
    return {
        "id": f"t{i}",
        "tools": [WEATHER],
        "messages": [
            {"role": "user", "content": f"What is the weather in {city}?"},
            {"role": "assistant", "content": None, "tool_calls": [call(city=city)]},
            {"role": "ipython", "content": f'{{"temperature": {10 + i}}}'},
            {"role": "assistant", "content": f"It is {10 + i} degrees in {city}."},
        ],
        **extra,
    }


def ranked_rows(n: int = 4) -> list[dict]:
    rows = []
    for k in range(n):
        rows.append(
            {
                "id": f"r{k}",
                "prompt": f"What is {k} plus 1?",
                "responses": [f"It is {k + 1}.", f"Maybe {k + 1}.", "I do not know."],
                "margin": 0.5,
            }
        )
        rows.append(
            {
                "id": f"e{k}",
                "prompt": "What is the capital of France?" + " Please." * k,
                "edited": "The capital of France is Paris.",
                "chosen": "Paris.",
                "rejected": "Rome.",
            }
        )
    return rows


@pytest.fixture(scope="module")
def toks():
    return {f: build_tokenizer(f) for f in ("llama3.1", "qwen2.5", "gemma", "llama", "qwen2")}


def _decoded(tok, ids):
    return tok.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)


# --- golden label masks -----------------------------------------------------------------------------------------


def test_llama31_tool_use_trains_the_call_and_the_answer_not_the_result(toks):
    tok = toks["llama3.1"]
    ids, labels = tokenize_conversation(tok, TOOL_PROBE, tools=TOOLS_PROBE)
    assert trained_spans(tok, ids, labels) == [
        '{"name": "get_weather", "parameters": {"city": "Paris"}}<|eot_id|>',
        "It is 18 degrees in Paris.<|eot_id|>",
    ]
    text = _decoded(tok, ids)
    assert text == render(tok, TOOL_PROBE, tools=TOOLS_PROBE)
    # the tools are declared in the first user turn, the result comes back under `ipython` (as a JSON string:
    # Meta's template applies tojson to string contents too); neither is trained
    assert '"name": "get_weather",\n        "description"' in text
    assert '<|start_header_id|>ipython<|end_header_id|>\n\n"{\\"temperature\\": 18}"<|eot_id|>' in text
    assert ids.count(tok.bos_token_id) == 1 and labels[0] == IGNORE_INDEX


def test_qwen25_tool_use_label_mask(toks):
    tok = toks["qwen2.5"]
    ids, labels = tokenize_conversation(tok, TOOL_PROBE, tools=TOOLS_PROBE)
    assert trained_spans(tok, ids, labels) == [
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call><|im_end|>',
        "It is 18 degrees in Paris.<|im_end|>",
    ]
    assert "<|im_start|>user\n<tool_response>\n" in _decoded(tok, ids)


def test_arguments_given_as_a_json_string_render_as_an_object(toks):
    tok = toks["qwen2.5"]
    as_string = {"type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
    msgs = [TOOL_PROBE[0], {"role": "assistant", "content": "", "tool_calls": [as_string]}]
    assert render(tok, msgs, tools=TOOLS_PROBE) == render(tok, TOOL_PROBE[:2], tools=TOOLS_PROBE)


def test_several_assistant_messages_in_one_turn_are_each_trained(toks):
    tok = toks["llama"]
    msgs = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "assistant", "content": "How can I help?"},
    ]
    ids, labels = tokenize_conversation(tok, msgs)
    assert trained_spans(tok, ids, labels) == ["Hello!<|eot_id|>", "How can I help?<|eot_id|>"]


def test_gemma2_end_of_turn_eos_ending_trains_the_final_eos(toks):
    tok = build_tokenizer("gemma")
    tok.chat_template = GEMMA_EOS_TEMPLATE
    ids, labels = tokenize_conversation(tok, PROBE)
    assert _decoded(tok, ids) == (
        "<bos><start_of_turn>user\nKnock knock.<end_of_turn>\n"
        "<start_of_turn>model\nWho's there?<end_of_turn>\n"
        "<start_of_turn>user\nGemma.<end_of_turn>\n"
        "<start_of_turn>model\nGemma who?<end_of_turn><eos>"
    )
    # `<end_of_turn>` inside the labels of every model turn, the final `<eos>` trained too
    assert trained_spans(tok, ids, labels) == ["Who's there?<end_of_turn>", "Gemma who?<end_of_turn><eos>"]


def test_add_eos_ends_the_final_turn_with_a_trained_eos(toks):
    tok = toks["gemma"]  # Gemma 3's template, which does not write one
    ids, labels = tokenize_conversation(tok, PROBE, add_eos=True)
    assert _decoded(tok, ids).endswith("<start_of_turn>model\nGemma who?<end_of_turn><eos>")
    assert trained_spans(tok, ids, labels) == ["Who's there?<end_of_turn>", "Gemma who?<end_of_turn><eos>"]
    assert ids.count(tok.eos_token_id) == 1
    llama = toks["llama"]  # its eos is the end-of-turn token already: nothing to add
    assert tokenize_conversation(llama, PROBE, add_eos=True) == tokenize_conversation(llama, PROBE)


def test_pretrained_text_row_is_bos_text_eos_all_trained(toks):
    from train.data import sft_dataset

    gemma = toks["gemma"]
    ids = tokenize_text(gemma, "The sea is wide and deep and blue.")
    assert _decoded(gemma, ids) == "<bos>The sea is wide and deep and blue.<eos>"
    qwen = toks["qwen2"]  # no BOS token at all
    assert _decoded(qwen, tokenize_text(qwen, "The sea.")) == "The sea.<|im_end|>"
    ds = sft_dataset([{"id": "x", "_kind": "text", "text": "The sea."}], gemma)
    assert ds[0]["labels"] == ds[0]["input_ids"] == tokenize_text(gemma, "The sea.")


# --- preflight -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("family", ["llama3.1", "qwen2.5"])
@pytest.mark.parametrize("kind,method", [("sft", None), ("preference", "reward")])
def test_tool_templates_pass_the_preflight_with_a_tool_call_probe(toks, family, kind, method, monkeypatch):
    import train.template as template

    probed = []
    real = template.split_preference if kind == "preference" else template.tokenize_conversation

    def spy(tok, *args, **kw):
        probed.append(kw.get("tools"))
        return real(tok, *args, **kw)

    monkeypatch.setattr(
        template, "split_preference" if kind == "preference" else "tokenize_conversation", spy
    )
    pf = preflight(toks[family], kind=kind, method=method)
    assert pf.errors == [], [f.as_dict() for f in pf.errors]
    assert TOOLS_PROBE in probed  # the tool-use exchange was probed


def test_a_template_that_does_not_close_tool_calls_is_refused(toks):
    tok = build_tokenizer("qwen2.5")
    tok.chat_template = QWEN25_TEMPLATE.replace(
        "{{- '}\\n</tool_call>' }}\n        {%- endfor %}\n        {{- '<|im_end|>\\n' }}",
        "{{- '}\\n</tool_call>' }}\n        {%- endfor %}\n        {{- '\\n' }}",
    )
    assert tok.chat_template != QWEN25_TEMPLATE
    pf = preflight(tok, kind="sft")
    (bad,) = [f for f in pf.errors if f.check == "end-of-turn trained"]
    assert bad.examples[0].startswith("probe: tool call")


def test_gemma_eos_ending_passes_the_preflight_it_used_to_fail():
    tok = build_tokenizer("gemma")
    tok.chat_template = GEMMA_EOS_TEMPLATE
    for kind in ("sft", "preference"):
        pf = preflight(tok, kind=kind)
        assert pf.errors == [], [f.as_dict() for f in pf.errors]
        assert any(f.check == "final EOS" for f in pf.findings)


def test_tool_rows_on_a_template_without_tools_fail_the_render_check(toks):
    from curate.schema import normalize

    pf = preflight(toks["gemma"], kind="sft", samples=[normalize(tool_row(0))])
    assert [f.check for f in pf.errors] == ["template renders the data"]


def test_text_rows_need_an_eos():
    tok = build_tokenizer("gemma")
    assert [f.level for f in text_findings(tok)] == ["ok", "ok"]
    tok.eos_token = None
    assert [f.check for f in text_findings(tok) if f.level == "error"] == ["EOS"]


# --- data: validation, rankings, datasets ---------------------------------------------------------------------


def _rows(raw):
    from curate.schema import normalize

    return [normalize(r) for r in raw]


def test_validation_of_tool_use_rankings_and_margins():
    from train.data import validate_rows

    assert validate_rows(_rows([tool_row(0), tool_row(1)]), kind="sft") == []
    bad = tool_row(2)
    bad["messages"][1]["tool_calls"] = [call("launch_rocket")]
    (p,) = validate_rows(_rows([bad]), kind="sft")
    assert p.check == "tool calls" and "undeclared_tool: messages[1] calls 'launch_rocket'" in p.message
    assert validate_rows(_rows(ranked_rows(1)), kind="preference") == []
    same = {"prompt": "q", "responses": ["a", "b", "a"], "margin": "big"}
    checks = {p.check: p.message for p in validate_rows(_rows([same]), kind="preference")}
    assert checks == {
        "chosen != rejected": "responses[0] and responses[2] are identical",
        "margin": "margin is str, not a number",
    }


def test_ranked_rows_expand_to_every_ordered_pair():
    from train.data import reward_pairs

    (row,) = _rows([{"prompt": "q", "responses": ["a", "b", "c", "d"], "margin": 1.0}])
    pairs = [(c[0]["content"], r[0]["content"], m) for c, r, m in reward_pairs(row)]
    assert pairs == [
        ("a", "b", 1.0),
        ("a", "c", 2.0),
        ("a", "d", 3.0),
        ("b", "c", 1.0),
        ("b", "d", 2.0),
        ("c", "d", 1.0),
    ]
    (edited,) = _rows([{"prompt": "q", "chosen": "good", "rejected": "bad", "edited": "best"}])
    pairs = [(c[0]["content"], r[0]["content"], m) for c, r, m in reward_pairs(edited)]
    assert pairs == [("best", "good", 0.0), ("best", "bad", 0.0), ("good", "bad", 0.0)]


def test_preference_datasets_reward_pairs_dpo_extremes_tools_and_margins():
    from train.data import preference_dataset

    rows = _rows(ranked_rows(2))
    reward = preference_dataset(rows, method="reward")
    assert len(reward) == 4 * 3 and reward.column_names == ["prompt", "chosen", "rejected", "margin"]
    assert reward["margin"][:3] == [0.5, 1.0, 0.5] and reward["margin"][3:6] == [0.0, 0.0, 0.0]
    dpo = preference_dataset(rows, method="dpo")
    assert len(dpo) == 4 and "margin" not in dpo.column_names
    assert (dpo[0]["chosen"][0]["content"], dpo[0]["rejected"][0]["content"]) == (
        "It is 1.",
        "I do not know.",
    )
    assert (dpo[1]["chosen"][0]["content"], dpo[1]["rejected"][0]["content"]) == (
        "The capital of France is Paris.",
        "Rome.",
    )


def test_other_rows_tool_arguments_do_not_leak_into_a_rows_messages():
    from train.data import preference_dataset

    def pref(i, **arguments):
        return {
            "id": str(i),
            "tools": [WEATHER],
            "prompt": [{"role": "user", "content": "Go"}],
            "chosen": [{"role": "assistant", "content": "", "tool_calls": [call(**arguments)]}],
            "rejected": [{"role": "assistant", "content": "No."}],
        }

    ds = preference_dataset(_rows([pref(0, city="Paris"), pref(1, query="cats", limit=3)]))
    assert ds[0]["chosen"][0]["tool_calls"][0]["function"]["arguments"] == {"city": "Paris"}
    assert ds[1]["chosen"][0]["tool_calls"][0]["function"]["arguments"] == {"query": "cats", "limit": 3}
    assert "tool_calls" not in ds[0]["rejected"][0] and json.loads(ds[0]["tools"]) == [WEATHER]


def test_a_held_out_ranking_contributes_no_training_pair():
    from train.data import preference_dataset, split_rows

    rows = _rows(ranked_rows(20))
    train, held = split_rows(rows, 0.3)
    assert train and held
    seen = {json.dumps(p) for p in preference_dataset(train, method="reward")["prompt"]}
    assert not seen & {json.dumps(p) for p in preference_dataset(held, method="reward")["prompt"]}


# --- train check ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """The tiny Gemma without a chat template, as a pre-trained model is released."""
    path = copy_model(tiny_model("gemma"), tmp_path_factory.mktemp("pt") / "gemma-pt")
    (path / "chat_template.jinja").unlink(missing_ok=True)
    cfg = json.loads((path / "tokenizer_config.json").read_text())
    cfg.pop("chat_template", None)
    (path / "tokenizer_config.json").write_text(json.dumps(cfg))
    return path


def test_train_check_on_a_model_without_chat_template_is_one_line(cli, tmp_path, pretrained):
    from tests.train_fixtures import sft_rows
    from train.cli import main as train_cli

    data = write_rows(tmp_path / "sft.jsonl", sft_rows(1))
    r = cli(train_cli, "check", "--data", data, "--model", pretrained)
    assert r.exit_code != 0
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.output
    assert lines[0].startswith(f"Error: {pretrained}: the tokenizer has no chat template")
    assert "--input-format text" in lines[0]


def test_train_check_on_text_rows(cli, tmp_path, pretrained):
    from tests.conftest import SAMPLE
    from train.cli import main as train_cli

    r = cli(train_cli, "check", "--data", SAMPLE / "text.jsonl", "--model", pretrained)
    assert r.exit_code == 0, r.output
    assert "(24 rows, text)" in r.output and "text rows (BOS + text + EOS, no chat template used)" in r.output
    assert "ok    EOS: a text row ends with <eos>" in r.output


def test_train_check_on_tool_use(cli, tmp_path):
    from train.cli import main as train_cli

    data = write_rows(tmp_path / "tools.jsonl", [tool_row(i) for i in range(3)])
    ok = cli(train_cli, "check", "--data", data, "--model", tiny_model("llama3.1"), "--max-length", "4096")
    assert ok.exit_code == 0, ok.output
    assert "ok    tool calls" in ok.output and "ok    template renders" in ok.output
    gemma = cli(train_cli, "check", "--data", data, "--model", tiny_model("gemma"))
    assert gemma.exit_code == 1 and "FAIL  template renders the data" in gemma.output
    assert "Conversation roles must alternate" in gemma.output


def test_every_row_the_template_refuses_is_reported_not_only_the_sampled_ones(cli, tmp_path):
    from train.cli import main as train_cli

    parallel = tool_row(7, id="parallel")
    parallel["messages"][1]["tool_calls"] *= 2  # Llama 3.1's template takes one call per message
    parallel["messages"].insert(3, {"role": "tool", "content": "18"})
    data = write_rows(tmp_path / "tools.jsonl", [*(tool_row(i) for i in range(8)), parallel])
    r = cli(train_cli, "check", "--data", data, "--model", tiny_model("llama3.1"), "--max-length", "4096")
    assert r.exit_code == 1
    assert (
        "FAIL  template renders: the chat template refuses the row "
        "(TemplateError: This model only supports single tool-calls at once!) (1 row)"
    ) in r.output
    assert "tools.jsonl:9 (id parallel)" in r.output


# --- a few training steps on each ---------------------------------------------------------------------------


def _run(method: str, model, data, out, *sets, **fields):
    from train.config import load_run_config
    from train.dpo import run_dpo
    from train.reward import run_reward
    from train.sft import run_sft

    cfg = load_run_config(
        method,
        model=str(model),
        output_dir=str(out),
        data_path=str(data),
        overrides=[*FAST, "max_steps=1", "per_device_train_batch_size=2", *sets],
    )
    cfg.sanity_prompts, cfg.max_new_tokens = 1, 4
    for k, v in fields.items():
        setattr(cfg, k, v)
    run = {"sft": run_sft, "dpo": run_dpo, "reward": run_reward}[method]
    out = run(cfg, echo=lambda s: None)
    return json.loads((out / "manifest.json").read_text()), out


def test_sft_on_tool_use_with_llama31(tmp_path):
    data = write_rows(tmp_path / "tools.jsonl", [tool_row(i) for i in range(4)])
    manifest, _ = _run("sft", tiny_model("llama3.1"), data, tmp_path / "sft")
    assert manifest["data_kind"] == "sft" and manifest["metrics"]["global_step"] == 1


def test_sft_on_text_rows_with_a_pretrained_model(tmp_path, pretrained):
    from tests.conftest import SAMPLE

    manifest, out = _run("sft", pretrained, SAMPLE / "text.jsonl", tmp_path / "pt", "max_length=128")
    assert manifest["data_kind"] == "text" and manifest["template"]["format"] == "text"
    (sample,) = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert isinstance(sample["prompt"], str)


def test_add_eos_in_train_check_and_the_sft_config(cli, tmp_path):
    from tests.train_fixtures import sft_rows
    from train.cli import main as train_cli
    from train.config import load_run_config

    data = write_rows(tmp_path / "sft.jsonl", sft_rows(1))
    r = cli(train_cli, "check", "--data", data, "--model", tiny_model("gemma"), "--add-eos")
    assert r.exit_code == 0, r.output
    assert "note  final EOS: <eos> follows the final turn (--add-eos) and is trained" in r.output
    cfg = load_run_config("sft", model="m", output_dir="o", data_path=str(data), overrides=["add_eos=true"])
    assert cfg.add_eos is True and "add_eos" not in cfg.trl


def test_sft_with_add_eos_trains_the_final_eos(tmp_path):
    from tests.train_fixtures import sft_rows

    data = write_rows(tmp_path / "sft.jsonl", sft_rows(1))
    manifest, out = _run("sft", tiny_model("gemma"), data, tmp_path / "eos", add_eos=True)
    assert manifest["config"]["add_eos"] is True
    check = json.loads((out / "check.json").read_text())
    assert any(f["check"] == "final EOS" for f in check["template"]["findings"])


def test_dpo_on_rankings_uses_best_against_worst(tmp_path):
    data = write_rows(tmp_path / "ranked.jsonl", ranked_rows(2))
    manifest, _ = _run("dpo", tiny_model("llama3.1"), data, tmp_path / "dpo")
    assert manifest["data"]["rows"] == 4 and manifest["metrics"]["global_step"] == 1


def tool_preference(i: int) -> dict:
    convo = tool_row(i)["messages"]
    return {
        "id": f"tp{i}",
        "tools": [WEATHER],
        "prompt": convo[:3],
        "chosen": convo[3:],
        "rejected": [{"role": "assistant", "content": "I cannot check the weather."}],
    }


def test_reward_on_rankings_and_tool_use_learns_every_pair(tmp_path):
    rows = [*ranked_rows(3), tool_preference(0), tool_preference(1)]
    data = write_rows(tmp_path / "ranked.jsonl", rows)
    manifest, _ = _run(
        "reward", tiny_model("qwen2.5", num_labels=1), data, tmp_path / "rm", "data.eval_fraction=0.3"
    )
    held = manifest["data"]["eval_ids_sample"]
    assert held and manifest["metrics"]["global_step"] == 1
    # a held-out ranking of 3 responses gives 3 pairs, a pair 1
    expected = sum(3 if i.startswith(("r", "e")) else 1 for i in held)
    assert manifest["metrics"]["eval_pairs"] == expected

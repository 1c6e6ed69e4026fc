"""The chat template as training sees it: rendering, label masks, and the preflight that proves them right.

posttrain builds the SFT label mask itself, from the text the chat template renders, so it works with any template
(no `{% generation %}` markers needed). For each assistant turn *i* it renders the conversation up to turn *i* with
the generation prompt, and up to and including turn *i*; the difference is exactly what the model must produce
there: the reply and the end-of-turn token (trailing whitespace between turns is not trained, the model never
generates it). That only holds if the template has the properties the preflight checks:

- exactly one BOS in the tokenized conversation (templates and tokenizers both like to add one);
- the end-of-turn token (Gemma `<end_of_turn>`, ChatML `<|im_end|>`, Llama 3 `<|eot_id|>`) is a single token, closes
  every assistant turn and lies inside the trained labels, so the model learns to stop;
- the prompt tokens (with the generation prompt) are a prefix of the prompt + completion tokens, so the context
  seen in training is the one seen at inference;
- rendering is prefix-preserving across turns (earlier turns render the same whatever follows), except for an
  EOS the template writes after the final turn only (Gemma 2's `<end_of_turn><eos>`): it is trained there.

Tool use renders through the template too (`tools` to `apply_chat_template(tools=...)`, assistant `tool_calls`
with their arguments as objects, `tool` results): every assistant message is trained, tool calls included;
tool results, like user turns, are context. Plain text rows (a pre-trained model, no template) are the
tokenizer's BOS, the text and its EOS, all trained.

>>> from posttrain.tinymodels import build_tokenizer
>>> tok = build_tokenizer("gemma")
>>> ids, labels = tokenize_conversation(tok, [{"role": "user", "content": "Knock knock."},
...                                           {"role": "assistant", "content": "Who's there?"}])
>>> trained_spans(tok, ids, labels)
["Who's there?<end_of_turn>"]
"""

from __future__ import annotations

from dataclasses import dataclass, field

IGNORE_INDEX = -100

# A conversation in the Gemma 2 report's own example (multi-turn, the first reply followed by another turn).
PROBE = [
    {"role": "user", "content": "Knock knock."},
    {"role": "assistant", "content": "Who's there?"},
    {"role": "user", "content": "Gemma."},
    {"role": "assistant", "content": "Gemma who?"},
]
# A tool-use exchange (Llama 3.1 / Qwen2.5 style): a call, its result, and the answer, both assistant messages
# trained. Probed for templates that render tool calls.
TOOLS_PROBE = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current temperature in a city.",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string", "description": "The city."}},
                "required": ["city"],
            },
        },
    }
]
TOOL_PROBE = [
    {"role": "user", "content": "What is the weather in Paris?"},
    {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}
        ],
    },
    {"role": "tool", "content": '{"temperature": 18}'},
    {"role": "assistant", "content": "It is 18 degrees in Paris."},
]
_SENTINEL = "Zq7 sentinel reply"

KNOWN_FORMATS = (
    ("gemma", "<start_of_turn>"),
    ("chatml", "<|im_start|>"),
    ("llama3", "<|start_header_id|>"),
)


class TemplateError(ValueError):
    """The chat template cannot be used to build correct training labels for a conversation."""


def template_format(tokenizer) -> str:
    """A name for the template's family ('gemma', 'chatml', 'llama3' or 'other'), for reports."""
    tpl = _template_text(tokenizer)
    for name, marker in KNOWN_FORMATS:
        if marker in tpl:
            return name
    return "other"


def _template_text(tokenizer) -> str:
    tpl = getattr(tokenizer, "chat_template", None) or ""
    if isinstance(tpl, dict):
        tpl = tpl.get("default", "")
    return tpl


def template_hash(tokenizer) -> str:
    import hashlib

    return hashlib.sha256(_template_text(tokenizer).encode("utf-8")).hexdigest()


def has_chat_template(tokenizer) -> bool:
    return bool(_template_text(tokenizer))


def supports_tools(tokenizer) -> bool:
    """Whether the template renders tool calls (Llama 3.1, Qwen2.5 ...), judged from its text."""
    return "tool_calls" in _template_text(tokenizer)


def template_message(m: dict) -> dict:
    """A message as chat templates read it: role and content; an assistant's tool calls with their arguments
    as objects (templates serialize them with `tojson`); a tool result's `tool_call_id` and `name`."""
    out = {"role": m["role"], "content": m["content"]}
    if m.get("tool_calls"):
        out["tool_calls"] = [_template_call(c) for c in m["tool_calls"]]
    if m["role"] == "tool":
        out.update({k: m[k] for k in ("tool_call_id", "name") if m.get(k) is not None})
    return out


def _template_call(call: dict) -> dict:
    import json

    fn = call["function"]
    args = json.loads(fn["arguments"]) if isinstance(fn["arguments"], str) else fn["arguments"]
    return {**call, "type": call.get("type") or "function", "function": {**fn, "arguments": args}}


def render(
    tokenizer, messages: list[dict], *, add_generation_prompt: bool = False, tools: list[dict] | None = None
) -> str:
    return tokenizer.apply_chat_template(
        [template_message(m) for m in messages],
        tools=tools or None,
        tokenize=False,
        add_generation_prompt=add_generation_prompt,
    )


def encode(tokenizer, text: str) -> list[int]:
    """Token ids of rendered chat text, exactly as `apply_chat_template(tokenize=True)` (and so TRL) makes them:
    the template already wrote every special token, so the tokenizer must not add its own."""
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def special_ids(tokenizer) -> set[int]:
    ids = set(tokenizer.all_special_ids)
    ids.update(i for i, tok in tokenizer.added_tokens_decoder.items() if tok.special)
    return ids


def _first_added_token_after(tokenizer, text: str) -> str | None:
    at = text.find(_SENTINEL)
    if at < 0:
        return None
    added = set(tokenizer.get_added_vocab().values()) | special_ids(tokenizer)
    for tid in encode(tokenizer, text[at + len(_SENTINEL) :]):
        if tid in added and tokenizer.decode([tid]).strip():
            return tokenizer.convert_ids_to_tokens(tid)
    return None


def end_of_turn_token(tokenizer) -> str | None:
    """The token that closes the model's reply: the first added (control) token after a reply in a rendered
    conversation that ends with that reply, which is what the model must generate to stop. None if the final
    reply is not closed by a control token (the preflight reports it)."""
    msgs = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": _SENTINEL}]
    return _first_added_token_after(tokenizer, render(tokenizer, msgs))


def _next_turn_token(tokenizer) -> str | None:
    msgs = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": _SENTINEL},
        {"role": "user", "content": "Hi"},
    ]
    try:
        return _first_added_token_after(tokenizer, render(tokenizer, msgs))
    except Exception:
        return None


@dataclass
class TurnSpan:
    """Character span of one assistant turn in the rendered conversation: [start, end) is trained."""

    start: int
    end: int
    has_end_of_turn: bool


def _without_final_eos(tokenizer, text: str) -> str | None:
    """`text` without the EOS a template writes after the final turn only (and the whitespace around it), or
    None if it does not end with one."""
    eos = tokenizer.eos_token
    body = text.rstrip()
    if not eos or not body.endswith(eos):
        return None
    return body[: -len(eos)]


def assistant_spans(
    tokenizer, messages: list[dict], *, eot: str | None, tools: list[dict] | None = None
) -> tuple[str, list[TurnSpan]]:
    """The rendered conversation and the span of every assistant message, by rendering growing prefixes.

    Raises `TemplateError` when the template is not prefix-preserving, because then no span is right. An EOS that
    the template writes only after the final turn is the one exception: earlier turns end before it, and the
    final turn's span includes it (the model learns to write it, as Gemma 2 writes `<end_of_turn><eos>`).
    """
    full = render(tokenizer, messages, tools=tools)
    spans = []
    for i, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        before = render(tokenizer, messages[:i], add_generation_prompt=True, tools=tools) if i else ""
        upto = render(tokenizer, messages[: i + 1], tools=tools)
        if not upto.startswith(before):
            raise TemplateError(
                f"turn {i}: the prompt rendered with the generation prompt is not a prefix of the prompt plus the "
                f"reply (prompt ends {before[-40:]!r}, conversation has {upto[len(before) - 40 : len(before)]!r})"
            )
        if not full.startswith(upto):
            core = _without_final_eos(tokenizer, upto)
            if core is None or not full.startswith(core):
                raise TemplateError(
                    f"turn {i}: the template renders earlier turns differently once later turns follow "
                    f"(not prefix-preserving near {upto[-40:]!r})"
                )
            upto = core
        reply = upto[len(before) :]
        # Whitespace after the end-of-turn token separates turns; the model never generates it.
        trimmed = reply.rstrip()
        closed = trimmed.endswith(eot) if eot else False
        if eot and not closed:  # `<end_of_turn><eos>`: the turn is closed before the final EOS
            core = _without_final_eos(tokenizer, trimmed)
            closed = core is not None and core.rstrip().endswith(eot)
        spans.append(TurnSpan(len(before), len(before) + len(trimmed), closed))
    return full, spans


def tokenize_conversation(
    tokenizer,
    messages: list[dict],
    *,
    assistant_only: bool = True,
    eot: str | None = None,
    tools: list[dict] | None = None,
    add_eos: bool = False,
) -> tuple[list[int], list[int]]:
    """Token ids and labels for SFT: labels are -100 outside the assistant messages (or nowhere, if not
    `assistant_only`). A token is trained only if it lies wholly inside a message's span. `add_eos` writes the
    tokenizer's EOS right after a final assistant turn that the template does not already end with it (trained)."""
    if eot is None:
        eot = end_of_turn_token(tokenizer)
    full, spans = assistant_spans(tokenizer, messages, eot=eot, tools=tools)
    if add_eos and spans and messages[-1]["role"] == "assistant":
        full, spans[-1] = _with_final_eos(tokenizer, full, spans[-1])
    enc = tokenizer(full, add_special_tokens=False, return_offsets_mapping=True)
    ids = enc["input_ids"]
    if not assistant_only:
        return ids, list(ids)
    labels = [IGNORE_INDEX] * len(ids)
    k = 0
    for n, (a, b) in enumerate(enc["offset_mapping"]):
        while k < len(spans) and a >= spans[k].end:
            k += 1
        if k == len(spans):
            break
        if b > a and a >= spans[k].start and b <= spans[k].end:
            labels[n] = ids[n]
    return ids, labels


def _with_final_eos(tokenizer, full: str, last: TurnSpan) -> tuple[str, TurnSpan]:
    eos = tokenizer.eos_token
    if not eos:
        raise TemplateError("add_eos: the tokenizer has no eos_token to add")
    if _without_final_eos(tokenizer, full[: last.end]) is not None:
        return full, last  # the template already ends the conversation with it
    # The untrained whitespace after the final turn goes: the sequence ends `<end_of_turn><eos>`.
    return full[: last.end] + eos, TurnSpan(last.start, last.end + len(eos), last.has_end_of_turn)


def tokenize_text(tokenizer, text: str) -> list[int]:
    """A plain-text row as a pre-trained model reads it: the BOS the tokenizer adds (if it adds one), the text,
    and the tokenizer's EOS (added when its post-processor does not), every token trained."""
    ids = tokenizer(text, add_special_tokens=True)["input_ids"]
    eos = tokenizer.eos_token_id
    if eos is not None and (not ids or ids[-1] != eos):
        ids = [*ids, eos]
    return ids


def trained_spans(tokenizer, ids: list[int], labels: list[int]) -> list[str]:
    """The trained text as contiguous pieces (decoded with special tokens): what a label-mask test compares."""
    pieces, run = [], []
    for tid, lab in zip(ids, labels, strict=True):
        if lab != IGNORE_INDEX:
            run.append(tid)
        elif run:
            pieces.append(run)
            run = []
    if run:
        pieces.append(run)
    return [
        tokenizer.decode(p, skip_special_tokens=False, clean_up_tokenization_spaces=False) for p in pieces
    ]


def split_preference(
    tokenizer, prompt: list[dict], completion: list[dict], *, tools: list[dict] | None = None
) -> tuple[list[int], list[int], list[int]]:
    """(prompt ids, prompt+completion ids, completion ids) the way TRL's DPO trainer cuts them."""
    prompt_ids = encode(tokenizer, render(tokenizer, prompt, add_generation_prompt=True, tools=tools))
    full_ids = encode(tokenizer, render(tokenizer, prompt + completion, tools=tools))
    n = 0
    while n < min(len(prompt_ids), len(full_ids)) and prompt_ids[n] == full_ids[n]:
        n += 1
    return prompt_ids, full_ids, full_ids[n:]


# ---------------------------------------------------------------------------------------------------------------
# Preflight


@dataclass
class Finding:
    """One result of the preflight: `ok`, `info`, `warning` or `error`."""

    level: str
    check: str
    message: str
    examples: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"level": self.level, "check": self.check, "message": self.message, "examples": self.examples}


@dataclass
class Preflight:
    format: str
    end_of_turn: str | None
    template_sha256: str
    findings: list[Finding]

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "error"]

    def as_dict(self) -> dict:
        return {
            "format": self.format,
            "end_of_turn": self.end_of_turn,
            "template_sha256": self.template_sha256,
            "findings": [f.as_dict() for f in self.findings],
        }


def _probes(
    tokenizer, kind: str, samples: list[dict]
) -> list[tuple[str, list[dict], list[dict] | None, list | None]]:
    """(label, prompt-or-conversation, completion, tools) to check: the Gemma report's dialogue, a system-prompt
    variant, a tool-use exchange when the template renders tool calls, and real rows of the dataset (which catch
    templates that fail on this data's shapes)."""
    from curate.schema import ranking

    out: list[tuple[str, list[dict], list[dict] | None, list | None]] = []
    tools = supports_tools(tokenizer)
    if kind == "sft":
        out.append(("probe: multi-turn", PROBE, None, None))
        out.append(
            ("probe: system + multi-turn", [{"role": "system", "content": "Be brief."}, *PROBE], None, None)
        )
        if tools:
            out.append(("probe: tool call", TOOL_PROBE, None, TOOLS_PROBE))
        out += [(f"row {r['id']}", r["messages"], None, r.get("tools")) for r in samples]
    else:
        out.append(
            ("probe: multi-turn prompt", PROBE[:3], [{"role": "assistant", "content": "Gemma who?"}], None)
        )
        out.append(
            ("probe: system prompt", [{"role": "system", "content": "Be brief."}, PROBE[0]], [PROBE[1]], None)
        )
        if tools:
            out.append(("probe: tool call", TOOL_PROBE[:3], TOOL_PROBE[3:], TOOLS_PROBE))
        out += [(f"row {r['id']}", r["prompt"], ranking(r)[0][1], r.get("tools")) for r in samples]
    return out


def _fmt(tokenizer, ids: list[int]) -> str:
    return repr(tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False))


def preflight(
    tokenizer,
    *,
    kind: str,
    samples: list[dict] = (),
    method: str | None = None,
    model_dir=None,
    add_eos: bool = False,
) -> Preflight:
    """Check that the tokenizer's chat template gives correct training sequences for `kind` ('sft', 'preference'
    or 'text'); `samples` are a few normalized rows of the dataset, checked too. `method='reward'` adds the
    reward-model checks; `model_dir` lets the generation config and vocabulary size be compared; `add_eos` checks
    SFT sequences with the EOS `--add-eos` writes after the final turn."""
    findings: list[Finding] = []
    fmt = template_format(tokenizer)
    if kind == "text":
        return Preflight("text", tokenizer.eos_token, template_hash(tokenizer), text_findings(tokenizer))
    if not _template_text(tokenizer):
        findings.append(Finding("error", "chat template", "the tokenizer has no chat template"))
        return Preflight(fmt, None, template_hash(tokenizer), findings)

    eot = end_of_turn_token(tokenizer)
    eot_id = None
    if eot is None:
        nxt = _next_turn_token(tokenizer)
        hint = f" (only the next turn's {nxt} follows a reply)" if nxt else ""
        findings.append(
            Finding(
                "error",
                "end-of-turn token",
                "the template does not close the model's reply with a control token, so there is nothing to train "
                f"the model to stop on{hint}",
            )
        )
    else:
        pieces = tokenizer(eot, add_special_tokens=False)["input_ids"]
        if len(pieces) != 1:
            findings.append(
                Finding("error", "end-of-turn token", f"{eot} is not a single token (it encodes as {pieces})")
            )
        else:
            eot_id = pieces[0]
            note = (
                "" if eot == tokenizer.eos_token else f" (the tokenizer's eos_token is {tokenizer.eos_token})"
            )
            findings.append(Finding("ok", "end-of-turn token", f"{eot} is one token, id {eot_id}{note}"))

    bos_id = tokenizer.bos_token_id
    encodes_bos = bos_id is not None and tokenizer("a")["input_ids"][:1] == [bos_id]
    # A "BOS" that the template writes literally at every turn (SmolLM2's bos_token is ChatML's <|im_start|>)
    # is a turn marker: only a doubled one at the start is a problem then.
    bos_marks_turns = bool(tokenizer.bos_token) and tokenizer.bos_token in (tokenizer.chat_template or "")
    bos_bad, prefix_bad, eot_bad, render_bad, pad_bad, probe_bad = [], [], [], [], [], []
    final_eos = []
    for label, msgs, completion, tools in _probes(tokenizer, kind, list(samples)):

        def _check_bos(seqs, label=label):
            for seq in seqs:
                if bos_id is None:
                    n_bos = 0
                elif bos_marks_turns:
                    n_bos = next((k for k, t in enumerate(seq) if t != bos_id), len(seq))  # the leading run
                else:
                    n_bos = seq.count(bos_id)
                if n_bos > 1 or (n_bos == 0 and encodes_bos):
                    bos_bad.append(f"{label}: {n_bos} BOS tokens, starts {_fmt(tokenizer, seq[:3])}")

        try:
            if kind == "sft":
                seqs = [encode(tokenizer, render(tokenizer, msgs, tools=tools))]
                _check_bos(seqs)
                ids, labels = tokenize_conversation(tokenizer, msgs, eot=eot, tools=tools, add_eos=add_eos)
                trained = [t for t, lab in zip(ids, labels, strict=True) if lab != IGNORE_INDEX]
                _, spans = assistant_spans(tokenizer, msgs, eot=eot, tools=tools)
                if eot_id is not None and (
                    not spans or not all(s.has_end_of_turn for s in spans) or eot_id not in trained
                ):
                    eot_bad.append(f"{label}: trained {trained_spans(tokenizer, ids, labels)!r}")
                if trained and trained[-1] == tokenizer.eos_token_id != eot_id:
                    final_eos.append(label)
                # every assistant turn: prompt tokens a prefix of prompt + reply tokens
                for i, m in enumerate(msgs):
                    if m["role"] == "assistant" and i:
                        p = encode(
                            tokenizer, render(tokenizer, msgs[:i], add_generation_prompt=True, tools=tools)
                        )
                        if ids[: len(p)] != p:
                            prefix_bad.append(f"{label} turn {i}: prompt ends {_fmt(tokenizer, p[-4:])}")
            else:
                p, full, comp = split_preference(tokenizer, msgs, completion, tools=tools)
                _check_bos([full])
                if full[: len(p)] != p:
                    prefix_bad.append(
                        f"{label}: prompt ends {_fmt(tokenizer, p[-4:])}, prompt+completion has "
                        f"{_fmt(tokenizer, full[max(0, len(p) - 4) : len(p)])}"
                    )
                stripped = _rstrip_ids(tokenizer, comp)
                if stripped and stripped[-1] == tokenizer.eos_token_id != eot_id:
                    final_eos.append(label)  # `<end_of_turn><eos>`: the EOS after the turn is trained too
                    stripped = _rstrip_ids(tokenizer, stripped[:-1])
                if eot_id is not None and (not stripped or stripped[-1] != eot_id):
                    eot_bad.append(f"{label}: completion tokens end {_fmt(tokenizer, comp[-4:])}")
                if (
                    method == "reward"
                    and tokenizer.pad_token_id is not None
                    and full
                    and full[-1] == tokenizer.pad_token_id
                ):
                    pad_bad.append(f"{label}: sequence ends with the pad token {tokenizer.pad_token}")
        except TemplateError as e:
            prefix_bad.append(f"{label}: {e}")
        except Exception as e:  # the template itself raised (e.g. 'System role not supported')
            (probe_bad if label.startswith("probe: system") else render_bad).append(
                f"{label}: {type(e).__name__}: {e}"
            )

    def add(bad, check, ok_msg, err_msg, level="error"):
        if bad:
            findings.append(Finding(level, check, err_msg, bad[:5]))
        else:
            findings.append(Finding("ok", check, ok_msg))

    add(
        render_bad,
        "template renders the data",
        "every checked conversation renders",
        "the chat template fails on some conversations",
    )
    if probe_bad:
        # Gemma 1/2 templates refuse system messages; that only matters if the data has them (then a row fails).
        findings.append(
            Finding(
                "info",
                "system messages",
                "the template rejects system messages (rows with one would fail)",
                probe_bad,
            )
        )
    if bos_id is None:
        findings.append(Finding("ok", "one BOS", "the tokenizer has no BOS token (nothing to double)"))
    else:
        add(
            bos_bad,
            "one BOS",
            f"exactly one {tokenizer.bos_token} per sequence",
            f"sequences must hold exactly one {tokenizer.bos_token}"
            + (" (the tokenizer adds one itself, the template must too)" if encodes_bos else ""),
        )
        if encodes_bos and not bos_bad:
            findings.append(
                Finding(
                    "info",
                    "one BOS",
                    f"the tokenizer adds {tokenizer.bos_token} when encoding text: rendered chats must be encoded "
                    "with add_special_tokens=False (posttrain and TRL do), or the sequence starts with two",
                )
            )
    if final_eos:
        findings.append(
            Finding(
                "info",
                "final EOS",
                f"{tokenizer.eos_token} follows the final turn "
                + ("(--add-eos)" if add_eos and kind == "sft" else "(the template writes it)")
                + " and is trained",
                final_eos[:5],
            )
        )
    if eot is not None:
        add(
            eot_bad,
            "end-of-turn trained",
            f"{eot} closes every assistant turn and is in the trained labels",
            f"{eot} is missing from the trained tokens of some assistant turns: the model would not learn to stop",
        )
    add(
        prefix_bad,
        "prompt is a prefix",
        "prompt tokens are a prefix of prompt + completion tokens",
        "the prompt tokenizes differently alone than followed by its reply: training context != inference context",
    )
    if method == "reward":
        add(
            pad_bad,
            "reward read position",
            "sequences do not end with the pad token",
            "the pad token ends sequences: the reward head would read the score from the wrong token",
        )

    if model_dir is not None:
        findings += _model_findings(tokenizer, model_dir, eot_id)
    return Preflight(fmt, eot, template_hash(tokenizer), findings)


def text_findings(tokenizer) -> list[Finding]:
    """Plain-text rows: BOS and EOS as the tokenizer defines them, one each, the EOS trained."""
    ids = tokenize_text(tokenizer, "The sea is wide and deep and blue.")
    out = []
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    if bos is not None:
        n = ids.count(bos)
        adds = tokenizer("a")["input_ids"][:1] == [bos]
        if n > 1 or (adds and n != 1):
            out.append(Finding("error", "one BOS", f"{n} {tokenizer.bos_token} tokens in a text row"))
        else:
            what = (
                f"starts with {tokenizer.bos_token}"
                if n
                else f"no {tokenizer.bos_token} (the tokenizer adds none)"
            )
            out.append(Finding("ok", "one BOS", f"a text row {what}"))
    if eos is None:
        out.append(
            Finding(
                "error",
                "EOS",
                "the tokenizer has no eos_token: a model trained on text rows would never learn to stop",
            )
        )
    else:
        out.append(Finding("ok", "EOS", f"a text row ends with {tokenizer.eos_token}, id {eos}, trained"))
    return out


def _rstrip_ids(tokenizer, ids: list[int]) -> list[int]:
    out = list(ids)
    while out and tokenizer.decode([out[-1]]).strip() == "":
        out.pop()
    return out


def _model_findings(tokenizer, model_dir, eot_id: int | None) -> list[Finding]:
    from pathlib import Path

    import orjson

    out: list[Finding] = []
    cfg_path = Path(model_dir) / "config.json"
    if cfg_path.is_file():
        cfg = orjson.loads(cfg_path.read_bytes())
        vocab = cfg.get("vocab_size") or (cfg.get("text_config") or {}).get("vocab_size")
        if vocab is not None and len(tokenizer) > vocab:
            out.append(
                Finding(
                    "error",
                    "vocabulary",
                    f"the tokenizer has {len(tokenizer)} tokens but the model's embedding has {vocab} rows",
                )
            )
    gen_path = Path(model_dir) / "generation_config.json"
    if eot_id is not None and gen_path.is_file():
        eos = orjson.loads(gen_path.read_bytes()).get("eos_token_id")
        eos = [eos] if isinstance(eos, int) else list(eos or [])
        if eot_id not in eos:
            out.append(
                Finding(
                    "info",
                    "generation stops",
                    f"generation_config.eos_token_id {eos} lacks the end-of-turn token {eot_id}; posttrain adds it "
                    "to the trained model",
                )
            )
    return out

"""`synth constitution`: demonstrations and preference pairs from an explicit list of principles.

Qwen2 writes a constitution (principles to follow and to avoid) and has the LLM answer in line with it or
against it; Constitutional AI (Bai et al., 2022) critiques a response against a principle and revises it;
Gemma 2/3 add refusal, hedging and attribution data. Per prompt, one principle is drawn (seeded by the
prompt's id, so a re-run draws the same one), and:

- ``mode="pairs"``: the principle is an avoid-principle; the chosen response follows the whole
  constitution, the rejected one shows the avoided behaviour.
- ``mode="revise"``: any principle; a first response (the input's own assistant turn, or a plain
  generation) is critiqued against it and revised. The revision is the demonstration; revision against the
  original is the pair. A critique that finds no violation leaves no pair (ledger: ``no_violation``).
- ``judge=True``: an A/B judge with the principle in view is asked in both orders (chosen shown first, then
  second) to cancel position bias; the pair is kept only if chosen wins both. A backend that returned
  log-probabilities would allow a probability threshold instead (`judge_keeps`); none does yet, so that
  path is unused and the rule is always "both orders".
- ``subset``: the prompts are of one kind (should be refused, have no certain answer, or come with a
  source text in ``source_field`` to cite); principles are drawn from those tagged with the subset and the
  chosen response gets the subset's instruction.

Every kept prompt gives one row of ``sft.jsonl`` (prompt + the chosen response) and one of
``preference.jsonl`` (explicit prompt / chosen / rejected), both with ``principle_id``, ``mode``,
``subset``, ``judge`` (verdicts, or null) and ``parent_id``. Every other prompt goes to ``rejected.jsonl``
with its reason: failed or empty generations, malformed critiques or verdicts (after ``parse_retries``),
identical pairs, judge disagreements.

>>> from synth.backends.scripted import ScriptedBackend
>>> from curate.io import write_jsonl
>>> write_jsonl("/tmp/cai-prompts.jsonl", [{"id": "p1", "prompt": "Who will win the next World Cup?"}])
1
>>> script = lambda req, i: "Nobody can know." if "particular care" in req.messages[0]["content"] else "Brazil."
>>> m = run_constitution(ConstitutionConfig(inputs=["/tmp/cai-prompts.jsonl"], output="/tmp/cai-run",
...     model="scripted", subset="hedging", overwrite=True, use_cache=False), backend=ScriptedBackend(script))
>>> m["counts"]["kept"], m["principles_drawn"]
(1, {'false-certainty': 1})
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import orjson
import xxhash
import yaml

from curate.io import InputError
from curate.schema import public
from rules import fill, load_rules, rules_path
from synth.backends import ChatRequest, Completion
from synth.config import (
    AnswerSettings,
    BackendSettings,
    InputSettings,
    RunSettings,
    SamplingSettings,
    setting,
    settings,
)
from synth.methods.generate import as_prompt
from synth.parse import ParseError, parse_json
from synth.prompts import derived_id
from synth.runner import Method, run_method

STEP = "constitution"
MODES = ("pairs", "revise")
SUBSETS = ("refusal", "hedging", "attribution")
KINDS = ("follow", "avoid")
PLACEHOLDERS = ("identity", "developer")
DEFAULT_CONSTITUTION = "constitution.yaml"
FEWSHOT = "constitution_fewshot.yaml"
_PRINCIPLE_KEYS = ("id", "kind", "area", "description", "example", "subset")
_ID = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


# --- the constitution -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Principle:
    id: str
    kind: str  # follow | avoid
    description: str
    example: str
    area: str | None = None
    subset: str | None = None

    def needs(self) -> list[str]:
        """The placeholders ({identity}, {developer}) its text uses."""
        text = self.description + self.example
        return [p for p in PLACEHOLDERS if "{" + p + "}" in text]

    def filled(self, values: dict[str, str]) -> Principle:
        return Principle(
            self.id,
            self.kind,
            fill(self.description, **values),
            fill(self.example, **values),
            self.area,
            self.subset,
        )


@dataclass
class Constitution:
    path: str
    xxh3_128: str
    principles: list[Principle]  # the ones in use, placeholders filled
    left_out: list[dict] = field(default_factory=list)  # {id, reason}

    def pool(self, *, mode: str, subset: str | None) -> list[Principle]:
        """The principles a prompt's principle is drawn from."""
        return [
            p
            for p in self.principles
            if (mode != "pairs" or p.kind == "avoid") and (subset is None or p.subset == subset)
        ]


class ConstitutionError(InputError):
    """A constitution file that cannot be used; the message names the file and the principle."""


def load_constitution(
    path: str | Path | None = None, *, identity: str | None = None, developer: str | None = None
) -> Constitution:
    """The shipped constitution (`path=None`) or a user's file, validated; placeholders filled.

    >>> c = load_constitution(identity="Ada", developer="Example Labs")
    >>> [p.description for p in c.principles if p.id == "correct-self-identification"]
    ['When asked who or what you are, say that you are Ada, an AI model made by Example Labs.']
    >>> load_constitution().left_out[0]["id"]
    'correct-self-identification'
    """
    where = rules_path(DEFAULT_CONSTITUTION) if path is None else Path(path)
    if not where.is_file():
        raise ConstitutionError(f"{where}: no such constitution file")
    raw = where.read_bytes()
    try:
        data = yaml.safe_load(raw)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConstitutionError(f"{where}: not valid YAML{at} ({getattr(e, 'problem', None) or e})") from None
    if not isinstance(data, dict) or "principles" not in data:
        raise ConstitutionError(f"{where}: expected a mapping with a 'principles:' list")
    extra = sorted(set(data) - {"principles"})
    if extra:
        raise ConstitutionError(f"{where}: unknown top-level key {extra[0]!r} (only 'principles' is read)")
    items = data["principles"]
    if not isinstance(items, list) or not items:
        raise ConstitutionError(f"{where}: 'principles' must be a non-empty list")
    principles: list[Principle] = []
    seen: set[str] = set()
    for n, item in enumerate(items, start=1):
        principles.append(_principle(item, f"{where}: principle {n}", seen))
    values = {"identity": identity, "developer": developer}
    given = {k: v for k, v in values.items() if v}
    used, left_out = [], []
    for p in principles:
        missing = [name for name in p.needs() if name not in given]
        if missing:
            flags = " and ".join(f"--{m}" for m in missing)
            left_out.append({"id": p.id, "reason": f"needs {flags}"})
        else:
            used.append(p.filled(given))
    return Constitution(str(where), xxhash.xxh3_128_hexdigest(raw), used, left_out)


def _principle(item, where: str, seen: set[str]) -> Principle:
    if not isinstance(item, dict):
        raise ConstitutionError(f"{where}: expected a mapping with id, kind, description and example")
    pid = item.get("id")
    if not isinstance(pid, str) or not _ID.match(pid):
        got = "missing" if pid is None else f"{pid!r} is not"
        raise ConstitutionError(f"{where}: 'id' {got} a lowercase name (letters, digits, '-', '_')")
    where = f"{where} ({pid})"
    if pid in seen:
        raise ConstitutionError(f"{where}: duplicate id")
    seen.add(pid)
    unknown = [k for k in item if k not in _PRINCIPLE_KEYS]
    if unknown:
        raise ConstitutionError(
            f"{where}: unknown key {unknown[0]!r} (expected {', '.join(_PRINCIPLE_KEYS)})"
        )
    if item.get("kind") not in KINDS:
        raise ConstitutionError(f"{where}: 'kind' is {item.get('kind')!r}; expected follow or avoid")
    for key in ("description", "example"):
        if not isinstance(item.get(key), str) or not item[key].strip():
            raise ConstitutionError(f"{where}: '{key}' must be a non-empty string")
    subset = item.get("subset")
    if subset is not None and subset not in SUBSETS:
        raise ConstitutionError(f"{where}: 'subset' is {subset!r}; expected one of {', '.join(SUBSETS)}")
    area = item.get("area")
    if area is not None and not isinstance(area, str):
        raise ConstitutionError(f"{where}: 'area' must be a string")
    return Principle(pid, item["kind"], item["description"].strip(), item["example"].strip(), area, subset)


def draw_principle(pool: list[Principle], row_id: str, seed: int) -> Principle:
    """The principle of one prompt: a hash of (seed, id), so it does not depend on order or batching."""
    return pool[xxhash.xxh3_64_intdigest(f"{seed}\0{row_id}".encode()) % len(pool)]


# --- prompts ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Prompts:
    """The templates and few-shot examples of `rules/constitution_fewshot.yaml`."""

    text: dict
    examples: list[dict]

    @classmethod
    def load(cls, name: str | Path = FEWSHOT) -> Prompts:
        data = load_rules(name)
        return cls(data["prompts"], data.get("examples") or [])

    def principle(self, p: Principle | dict) -> str:
        p = asdict(p) if isinstance(p, Principle) else p
        return fill(
            self.text["principle"],
            kind=p["kind"],
            description=p["description"].strip(),
            example=p["example"].strip(),
        )

    def follow_system(self, c: Constitution, p: Principle, subset: str | None) -> str:
        lines = [f"- {'Do' if q.kind == 'follow' else 'Never'}: {q.description}" for q in c.principles]
        text = fill(self.text["follow_system"], principles="\n".join(lines), principle=self.principle(p))
        return f"{text}\n\n{self.text['subset_guidance'][subset]}" if subset else text

    def violate_system(self, p: Principle) -> str:
        return fill(
            self.text["violate_system"], violation=self.text["violation"][p.kind], principle=self.principle(p)
        )

    def critique_messages(self, p: Principle, conversation: list[dict], response: str) -> list[dict]:
        msgs = [{"role": "system", "content": self.text["critique_system"]}]
        for ex in self.examples:
            msgs.append(
                {
                    "role": "user",
                    "content": self._critique_user(ex["principle"], _user(ex["prompt"]), ex["response"]),
                }
            )
            msgs.append({"role": "assistant", "content": orjson.dumps(ex["critique"]).decode()})
        msgs.append({"role": "user", "content": self._critique_user(p, conversation, response)})
        return msgs

    def _critique_user(self, p, conversation: list[dict], response: str) -> str:
        kind = p.kind if isinstance(p, Principle) else p["kind"]
        return fill(
            self.text["critique_user"],
            principle=self.principle(p),
            conversation=render_conversation(conversation),
            response=response.strip(),
            check=self.text["check"][kind],
        )

    def revision_messages(
        self, p: Principle, conversation: list[dict], response: str, critique: str
    ) -> list[dict]:
        msgs = [{"role": "system", "content": self.text["revision_system"]}]
        for ex in self.examples:
            if ex.get("revision"):
                msgs.append(
                    {
                        "role": "user",
                        "content": self._revision_user(
                            ex["principle"], _user(ex["prompt"]), ex["response"], ex["critique"]["critique"]
                        ),
                    }
                )
                msgs.append({"role": "assistant", "content": ex["revision"].strip()})
        msgs.append({"role": "user", "content": self._revision_user(p, conversation, response, critique)})
        return msgs

    def _revision_user(self, p, conversation: list[dict], response: str, critique: str) -> str:
        return fill(
            self.text["revision_user"],
            principle=self.principle(p),
            conversation=render_conversation(conversation),
            response=response.strip(),
            critique=critique.strip(),
        )

    def judge_messages(self, p: Principle, conversation: list[dict], a: str, b: str) -> list[dict]:
        user = fill(
            self.text["judge_user"],
            principle=self.principle(p),
            conversation=render_conversation(conversation),
            response_a=a.strip(),
            response_b=b.strip(),
        )
        return [{"role": "system", "content": self.text["judge_system"]}, {"role": "user", "content": user}]

    def attribution_user(self, prompt: str, source: str) -> str:
        return fill(self.text["attribution_user"], prompt=prompt, source=source.strip())


def _user(text: str) -> list[dict]:
    return [{"role": "user", "content": text.strip()}]


def render_conversation(messages: list[dict]) -> str:
    """A conversation as plain text for a critique or judge prompt."""
    return "\n\n".join(f"{m['role'].capitalize()}: {m['content'].strip()}" for m in messages)


# --- parsing the model's answers --------------------------------------------------------------------


class Unusable(Exception):
    """An answer that retrying will not fix (cut off at max_tokens): the prompt goes to the ledger."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def parse_response(comp: Completion, max_tokens: int, *, keep_truncated: bool = False) -> str:
    if comp.finish_reason == "length" and not keep_truncated:
        raise Unusable("truncated", f"hit --max-tokens {max_tokens} before the end of the answer")
    text = comp.text.strip()
    if not text:
        raise ParseError("empty output")
    return text


def parse_critique(comp: Completion) -> tuple[bool, str]:
    """`(violation, critique)` from the critic's JSON."""
    value = parse_json(comp.text, expect=dict)
    violation, critique = value.get("violation"), value.get("critique")
    if isinstance(violation, str) and violation.strip().lower() in ("true", "false", "yes", "no"):
        violation = violation.strip().lower() in ("true", "yes")
    if not isinstance(violation, bool):
        raise ParseError(f"'violation' must be true or false, got {violation!r}")
    if not isinstance(critique, str) or not critique.strip():
        raise ParseError("'critique' is missing or empty")
    return violation, critique.strip()


_LONE_LETTER = re.compile(r"^\W*(?:response\s+)?([AB])\W*$", re.I)
_NAMED_LETTER = re.compile(r"\bresponse\s+([AB])\b", re.I)


def parse_verdict(comp: Completion) -> tuple[str, str]:
    """`("A" | "B", reason)` from the judge's JSON. Without JSON, a bare "A" or "B", or prose that names
    only one of "Response A" and "Response B" (small models answer "The correct answer is Response B"),
    is read as that letter; prose that names both is malformed.

    >>> parse_verdict(Completion("The answer is: Response B: it cites the source.", "stop", 1, 1))
    ('B', 'The answer is: Response B: it cites the source.')
    """
    text = comp.text or ""
    lone = _LONE_LETTER.match(text)
    if lone:
        return lone.group(1).upper(), ""
    try:
        value = parse_json(text, expect=dict)
    except ParseError:
        named = {m.upper() for m in _NAMED_LETTER.findall(text)}
        if len(named) == 1:
            return named.pop(), " ".join(text.split())[:200]
        raise
    better = value.get("better")
    if not isinstance(better, str) or better.strip().upper() not in ("A", "B"):
        raise ParseError(f'\'better\' must be "A" or "B", got {better!r}')
    reason = value.get("reason")
    return better.strip().upper(), reason.strip() if isinstance(reason, str) else ""


@dataclass(frozen=True)
class Verdict:
    """One judge answer, in terms of the pair: `winner` is "chosen" or "rejected"."""

    order: str  # chosen_first | rejected_first
    winner: str
    reason: str
    p_chosen: float | None = None  # from log-probabilities; no backend reports them yet

    def as_dict(self) -> dict:
        return {"order": self.order, "winner": self.winner, "reason": self.reason, "p_chosen": self.p_chosen}


def judge_keeps(verdicts: list[Verdict], *, threshold: float = 0.5) -> bool:
    """Keep a pair when the judge prefers chosen in both orders; with log-probabilities in every verdict,
    when the mean probability of chosen reaches `threshold` instead.

    >>> v = lambda order, w, p=None: Verdict(order, w, "", p)
    >>> judge_keeps([v("chosen_first", "chosen"), v("rejected_first", "rejected")])
    False
    >>> judge_keeps([v("chosen_first", "chosen", 0.9), v("rejected_first", "rejected", 0.45)], threshold=0.6)
    True
    """
    ps = [v.p_chosen for v in verdicts]
    if ps and all(p is not None for p in ps):
        return sum(ps) / len(ps) >= threshold
    return bool(verdicts) and all(v.winner == "chosen" for v in verdicts)


# --- the run ----------------------------------------------------------------------------------------


@settings
class ConstitutionConfig(AnswerSettings, SamplingSettings, BackendSettings, RunSettings, InputSettings):
    mode: str = setting(
        "pairs",
        "pairs: a response that follows the constitution (chosen) and one that shows a sampled avoid-principle "
        "(rejected). revise: response, critique against a sampled principle, revision (revision = chosen, "
        "original = rejected).",
        choices=MODES,
    )
    constitution: str | None = setting(
        None,
        "Your own principles file (YAML, same shape as rules/constitution.yaml) [default: the shipped one].",
        path={"dir_okay": False},
    )
    identity: str | None = setting(None, "The target model's name, for the self-identification principles.")
    developer: str | None = setting(None, "The target model's developer (e.g. Example Labs).")
    subset: str | None = setting(
        None,
        "The prompts are of one kind: should be refused / have no certain answer / come with a source text to "
        "cite (in --source-field). Principles are drawn from those tagged with the subset.",
        choices=SUBSETS,
    )
    source_field: str = setting(
        "source_text",
        "--subset attribution: the input column with the text to cite (added to the user turn).",
    )
    judge: bool = setting(
        False,
        "Confirm each pair with an A/B judge (same model) in both orders; keep it only if chosen wins both.",
    )
    principle_seed: int = setting(0, "Which principle each prompt draws (a hash of seed and row id).")
    parse_retries: int = setting(
        1,
        "Fresh samples to ask for after an empty or malformed answer (critique, verdict, response).",
        min=0,
    )
    n: int = setting(1, "One pair per prompt: must be 1.", cli=False)
    judge_temperature: float = setting(0.0, "The judge's sampling temperature.", cli=False, min=0)
    judge_max_tokens: int = setting(256, "Longest judge answer (at most --max-tokens).", cli=False, min=1)
    judge_threshold: float = setting(
        0.5,
        "Mean probability of chosen a pair needs, with log-probabilities (no backend returns them yet).",
        cli=False,
        min=0,
        max=1,
    )
    prompts_file: str = setting(FEWSHOT, "Templates and few-shot examples (rules/).", cli=False)

    def validate(self) -> None:
        if self.n != 1:
            raise InputError("synth constitution makes one pair per prompt (n must be 1)")
        principle_pool(self)  # a broken constitution fails before a model is loaded

    def judge_request(self, messages) -> ChatRequest:
        return ChatRequest(
            messages=messages,
            temperature=self.judge_temperature,
            top_p=self.top_p,
            max_tokens=min(self.judge_max_tokens, self.max_tokens),
            seed=self.seed,
            stop=tuple(self.stop),
        )


def principle_pool(cfg: ConstitutionConfig) -> tuple[Constitution, list[Principle]]:
    """The run's constitution and the principles its prompts draw from (none to draw: an `InputError`)."""
    constitution = load_constitution(cfg.constitution, identity=cfg.identity, developer=cfg.developer)
    pool = constitution.pool(mode=cfg.mode, subset=cfg.subset)
    if not pool:
        wanted = "avoid-principle" if cfg.mode == "pairs" else "principle"
        scope = f" tagged 'subset: {cfg.subset}'" if cfg.subset else ""
        left = (
            f" ({len(constitution.left_out)} left out: {constitution.left_out[0]['reason']})"
            if constitution.left_out
            else ""
        )
        raise InputError(f"{constitution.path}: no {wanted}{scope} to draw for --mode {cfg.mode}{left}")
    return constitution, pool


@dataclass
class _Item:
    row: dict
    prompt: list[dict]  # the prompt as written to the output
    principle: Principle
    original: str | None = None  # revise: the input's own assistant turn
    chosen: str | None = None
    rejected: str | None = None
    critique: str | None = None
    violation: bool | None = None
    verdicts: list[Verdict] = field(default_factory=list)
    failure: tuple[str, str] | None = None

    def fail(self, reason: str, detail: str) -> None:
        if self.failure is None:
            self.failure = (reason, detail)

    @property
    def ok(self) -> bool:
        return self.failure is None


@dataclass
class _Job:
    """One question to the model for one item: how to ask, how to read the answer, where to put it."""

    item: _Item
    request: ChatRequest
    parse: Callable[[Completion], object]
    store: Callable[[_Item, object], None]
    malformed: str  # ledger reason when every attempt is empty or malformed


class Constitutional(Method):
    """Demonstrations and preference pairs from a constitution of principles (Qwen2, Constitutional AI),
    and refusal, hedging and attribution data (Gemma 2/3).

    Each prompt draws one principle (rules/constitution.yaml, or --constitution FILE). Writes
    OUTPUT/sft.jsonl (prompt + chosen response), OUTPUT/preference.jsonl (explicit prompt, chosen,
    rejected; ready for `train dpo`), both with principle_id, mode, subset and judge verdicts;
    OUTPUT/rejected.jsonl (prompts that gave no pair, with the reason: failed or malformed answers, no
    violation found, judge disagreement) and OUTPUT/manifest.json.

    \b
    Examples:
      synth constitution prompts.jsonl -o cai --mode pairs --model ./model --identity Ada --developer "Example Labs"
      synth constitution prompts.jsonl -o cai --mode revise --judge --backend openai \\
          --base-url http://127.0.0.1:8000/v1 --model Qwen/Qwen2.5-7B-Instruct
      synth constitution sourced.jsonl -o cite --subset attribution --source-field context --model ./model
    """

    name = STEP
    Config = ConstitutionConfig
    main_output = "sft.jsonl"
    other_outputs = ("preference.jsonl",)
    skip_counts = ("not_a_prompt",)

    def __init__(self, cfg: ConstitutionConfig, ctx):
        super().__init__(cfg, ctx)
        self.c, self.pool = principle_pool(cfg)
        self.prompts = Prompts.load(cfg.prompts_file)
        self.t = Counter(kept=0, rejected=0)
        self.drawn: Counter = Counter()
        self.judged: Counter = Counter()

    def prepare(self, row: dict) -> _Item:
        prompt = as_prompt(row, self.cfg.system_prompt)
        principle = draw_principle(self.pool, prompt.id, self.cfg.principle_seed)
        self.drawn[principle.id] += 1
        given = prompt.previous if self.cfg.mode == "revise" and (prompt.previous or "").strip() else None
        it = _Item(row, prompt.messages, principle, original=given)
        if self.cfg.subset == "attribution":
            source = row.get(self.cfg.source_field)
            if not isinstance(source, str) or not source.strip():
                it.fail(
                    "no_source_text",
                    f"an attribution prompt needs its source text in '{self.cfg.source_field}'",
                )
            else:
                last = it.prompt[-1]
                it.prompt = [
                    *it.prompt[:-1],
                    {**last, "content": self.prompts.attribution_user(last["content"], source)},
                ]
        return it

    def plan_requests(self, it: _Item) -> list:
        if not it.ok:
            return []
        if self.cfg.mode == "pairs":
            jobs = [self._chosen_job(it), self._rejected_job(it)]
        else:
            jobs = [self._original_job(it) if it.original is None else self._critique_job(it)]
        return [j.request for j in jobs]

    # One batch: every stage asks the model once for all its items (plus retries).
    def run_batch(self, items: list[_Item]):
        todo = [it for it in items if it.ok]
        if self.cfg.mode == "pairs":
            self._ask([self._chosen_job(it) for it in todo] + [self._rejected_job(it) for it in todo])
        else:
            self._ask([self._original_job(it) for it in todo if it.original is None])
            self._ask([self._critique_job(it) for it in todo if it.ok])
            for it in todo:
                if it.ok and not it.violation:
                    it.fail("no_violation", f"the critique found no violation: {it.critique}")
            self._ask([self._revision_job(it) for it in todo if it.ok])
        for it in todo:
            if it.ok and it.chosen.strip() == it.rejected.strip():
                it.fail("identical_pair", "chosen and rejected are the same text")
        if self.cfg.judge:
            self._ask([job for it in todo if it.ok for job in self._judge_jobs(it)])
            for it in todo:
                if it.ok:
                    self._decide(it)
        out = self.outputs()
        for it in items:
            self._write(it, out)
        return out

    # --- the questions ---
    def _text_job(self, it: _Item, messages: list[dict], store, reason: str = "empty_response") -> _Job:
        return _Job(it, self.cfg.request(messages), self._parse_text, store, reason)

    def _parse_text(self, comp: Completion) -> str:
        return parse_response(comp, self.cfg.max_tokens, keep_truncated=self.cfg.keep_truncated)

    def _with_system(self, it: _Item, system: str) -> list[dict]:
        """The prompt with `system` in front (merged with the prompt's own system message, if any)."""
        if it.prompt[0]["role"] == "system":
            return [{"role": "system", "content": f"{system}\n\n{it.prompt[0]['content']}"}, *it.prompt[1:]]
        return [{"role": "system", "content": system}, *it.prompt]

    def _chosen_job(self, it: _Item) -> _Job:
        system = self.prompts.follow_system(self.c, it.principle, self.cfg.subset)
        return self._text_job(it, self._with_system(it, system), lambda i, v: setattr(i, "chosen", v))

    def _rejected_job(self, it: _Item) -> _Job:
        system = self.prompts.violate_system(it.principle)
        return self._text_job(it, self._with_system(it, system), lambda i, v: setattr(i, "rejected", v))

    def _original_job(self, it: _Item) -> _Job:
        return self._text_job(it, it.prompt, lambda i, v: setattr(i, "original", v))

    def _critique_job(self, it: _Item) -> _Job:
        def store(i: _Item, value) -> None:
            i.violation, i.critique = value

        msgs = self.prompts.critique_messages(it.principle, it.prompt, it.original)
        return _Job(it, self.cfg.request(msgs), parse_critique, store, "critique_malformed")

    def _revision_job(self, it: _Item) -> _Job:
        def store(i: _Item, value) -> None:
            i.chosen, i.rejected = value, i.original

        msgs = self.prompts.revision_messages(it.principle, it.prompt, it.original, it.critique)
        return self._text_job(it, msgs, store)

    def _judge_jobs(self, it: _Item) -> list[_Job]:
        jobs = []
        for order, (a, b) in (
            ("chosen_first", (it.chosen, it.rejected)),
            ("rejected_first", (it.rejected, it.chosen)),
        ):
            first_is_chosen = order == "chosen_first"

            def store(i: _Item, value, order=order, first_is_chosen=first_is_chosen) -> None:
                letter, reason = value
                winner = "chosen" if (letter == "A") == first_is_chosen else "rejected"
                i.verdicts.append(Verdict(order, winner, reason))

            msgs = self.prompts.judge_messages(it.principle, it.prompt, a, b)
            jobs.append(_Job(it, self.cfg.judge_request(msgs), parse_verdict, store, "judge_malformed"))
        return jobs

    def _decide(self, it: _Item) -> None:
        winners = [v.winner for v in sorted(it.verdicts, key=lambda v: v.order)]
        if judge_keeps(it.verdicts, threshold=self.cfg.judge_threshold):
            self.judged["kept"] += 1
            return
        if len(set(winners)) > 1:
            self.judged["disagreements"] += 1
            it.fail(
                "judge_disagreement",
                "the judge's preference flipped with the order: "
                + ", ".join(f"{v.order} -> {v.winner}" for v in it.verdicts),
            )
        else:
            self.judged["prefers_rejected"] += 1
            it.fail("judge_prefers_rejected", "the judge preferred the rejected response in both orders")

    def _ask(self, jobs: list[_Job]) -> None:
        """Ask every job's question; a malformed or empty answer is asked again as a fresh sample (the
        cache keeps the earlier ones), up to `parse_retries` times."""
        attempt = 0
        jobs = [j for j in jobs if j.item.ok]
        while jobs:
            answers = self.llm.complete_each([j.request.with_n(attempt + 1) for j in jobs])
            again = []
            for job, (samples, error) in zip(jobs, answers, strict=True):
                comp = samples[attempt]
                if comp is None:
                    job.item.fail("generation_failed", error or "no completion")
                    continue
                try:
                    job.store(job.item, job.parse(comp))
                except Unusable as e:
                    job.item.fail(e.reason, e.detail)
                except ParseError as e:
                    if attempt < self.cfg.parse_retries:
                        again.append(job)
                    else:
                        tries = f" (after {attempt + 1} attempts)" if attempt else ""
                        job.item.fail(job.malformed, f"{e}{tries}")
            jobs = [j for j in again if j.item.ok]
            attempt += 1

    # --- output ---
    def _labels(self, it: _Item) -> dict:
        return {
            "principle_id": it.principle.id,
            "principle_kind": it.principle.kind,
            "mode": self.cfg.mode,
            "subset": self.cfg.subset,
            "judge": [v.as_dict() for v in it.verdicts] if self.cfg.judge else None,
            **({"critique": it.critique} if it.critique is not None else {}),
        }

    def _write(self, it: _Item, out) -> None:
        base = public(it.row)
        parent = base.pop("id")
        base.pop("messages", None)
        labels = self._labels(it)
        if not it.ok:
            self.t["rejected"] += 1
            candidates = {"chosen": it.chosen, "rejected": it.rejected, "original": it.original}
            row = {"id": parent, "messages": it.prompt, **base, **labels}
            out.reject(row, *it.failure, candidates=candidates)
            return
        self.t["kept"] += 1
        model = {"model": self.cfg.model, "backend": self.llm.backend.name}
        out.kept.append(
            {
                "id": derived_id(parent, step=STEP, kind="sft"),
                "parent_id": parent,
                "messages": [*it.prompt, {"role": "assistant", "content": it.chosen}],
                **base,
                **labels,
                **model,
            }
        )
        pair = {
            "id": derived_id(parent, step=STEP, kind="preference"),
            "parent_id": parent,
            "prompt": it.prompt,
            "chosen": [{"role": "assistant", "content": it.chosen}],
            "rejected": [{"role": "assistant", "content": it.rejected}],
            **base,
            **labels,
            **model,
        }
        out.write("preference.jsonl", [pair])

    # --- the manifest ---
    def counts(self) -> dict:
        return {"prompts": self.ctx.handled, **self.t}

    def balanced(self, c: dict) -> bool:
        kept = self.ctx.run.ledger.counts["kept"]
        return (
            c["prompts"] == c["kept"] + c["rejected"]
            and kept == self.ctx.written["preference.jsonl"] == c["kept"]
        )

    def sections(self) -> dict:
        c, cfg = self.c, self.cfg
        judge = {"enabled": False}
        if cfg.judge:
            judge = {
                "enabled": True,
                "rule": "keep when chosen wins in both orders (no backend returns log-probabilities, so "
                "judge_threshold is unused)",
                **{k: self.judged[k] for k in ("kept", "disagreements", "prefers_rejected")},
            }
        return {
            "constitution": {
                "path": c.path,
                "xxh3_128": c.xxh3_128,
                "principles": [p.id for p in c.principles],
                "left_out": c.left_out,
                "pool": [p.id for p in self.pool],
            },
            "principles_drawn": dict(sorted(self.drawn.items())),
            "judge": judge,
        }

    @classmethod
    def summary(cls, m: dict) -> list[str]:
        c = m["counts"]
        reasons = ", ".join(f"{k} {v}" for k, v in m["reasons"].items() if k != "not_a_prompt")
        lines = [
            f"rows {c['input']} = prompts {c['prompts']} + not prompts {c['not_a_prompt']} + invalid {c['invalid']}",
            f"prompts {c['prompts']} = pairs {c['kept']} + rejected {c['rejected']}"
            + (f"   ({reasons})" if reasons else ""),
        ]
        if m["judge"]["enabled"]:
            j = m["judge"]
            lines.append(
                f"judge: kept {j['kept']}, disagreements {j['disagreements']}, prefers rejected {j['prefers_rejected']}"
            )
        left = m["constitution"]["left_out"]
        if left:
            lines.append("principles left out: " + ", ".join(f"{x['id']} ({x['reason']})" for x in left))
        return lines


def run_constitution(cfg: ConstitutionConfig, backend=None) -> dict:
    """Write `sft.jsonl`, `preference.jsonl`, the ledger and the manifest to `cfg.output`; return the manifest.
    `backend` may be given ready-made (a loaded model, a `ScriptedBackend` in tests)."""
    return run_method(Constitutional, cfg, backend=backend)


__all__ = [
    "Constitution",
    "ConstitutionConfig",
    "ConstitutionError",
    "Constitutional",
    "Principle",
    "Prompts",
    "judge_keeps",
    "load_constitution",
    "run_constitution",
]

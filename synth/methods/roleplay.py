"""`synth roleplay`: role-play dialogues from character profiles (Qwen2's role-play data, after Ditto).

Each input row is a character: a `profile` (text, or a JSON object whose fields are rendered as text) and a
`name` (or the profile's `name`). With the profile in context, the LLM writes queries a user might send the
character, of each kind in `rules/roleplay.yaml` (about the character itself, and general ones), then answers
each in character. A consistency judge from the verifier layer (`rules/judge_roleplay.yaml`, the profile as
its reference) rates every answer; answers below `--min-judge-score` go to the ledger. The training rows hold
the dialogue only, as the report describes: the user's query and the in-character answer, never the profile
(the character's name and the query kind are columns).

>>> profile_text({"name": "Ada", "born": 1815, "traits": ["curious", "precise"]})
'name: Ada\\nborn: 1815\\ntraits: curious, precise'
"""

from __future__ import annotations

from dataclasses import dataclass

from rules import fill, load_rules
from synth.config import (
    BackendSettings,
    InputSettings,
    RunSettings,
    SamplingSettings,
    default,
    setting,
    settings,
)
from synth.methods.generate import sample_verdict
from synth.methods.judged import JudgeGate
from synth.parse import ParseError, parse_json
from synth.prompts import derived_id
from synth.runner import Method, Skip, run_method
from synth.verifiers import Task
from synth.verifiers.judge import JudgeSettings


def profile_text(profile) -> str:
    if isinstance(profile, str):
        return profile.strip()
    lines = []
    for key, value in profile.items():
        shown = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
        lines.append(f"{key}: {shown}")
    return "\n".join(lines)


@settings
class RoleplayConfig(JudgeSettings, SamplingSettings, BackendSettings, RunSettings, InputSettings):
    profile_field: str = setting("profile", "Column holding the character's profile (text or a JSON object).")
    name_field: str = setting("name", "Column holding the character's name [default: the profile's name].")
    queries: int = setting(4, "Queries to write per character and kind of query.", min=1)
    rules: str = setting("roleplay.yaml", "Prompts and query kinds: the shipped rules file or your own YAML.")
    judge: bool = setting(
        True, "Check each answer against the profile with the consistency judge.", negate="--no-judge"
    )
    min_judge_score: float = setting(7.0, "The judge score an answer needs (rubric scale).")
    batch_size: int = setting(8, "Characters per batch.", min=1)
    input_format: str = default("record")
    judge_rubric: str = default("judge_roleplay.yaml")
    judge_reference_field: str | None = default("_profile")
    max_tokens: int = default(512)


@dataclass
class Character:
    row: dict
    name: str
    profile: str

    @property
    def id(self) -> str:
        return str(self.row["id"])


class Roleplay(Method):
    """Role-play dialogues from character profiles, checked for consistency; the profile stays out of the rows.

    For each character (--profile-field: text or a JSON object; --name-field), the LLM writes --queries user
    messages of each kind in rules/roleplay.yaml (about the character, and general ones) and answers each in
    character with the profile in its system prompt. A consistency judge (rules/judge_roleplay.yaml) rates each
    answer against the profile. OUTPUT/sft.jsonl holds the dialogues (user query, in-character answer) with
    `character` and `kind` columns but not the profile; OUTPUT/rejected.jsonl the characters without a profile,
    failed generations and answers the judge rejected, with its reason.

    \b
    Examples:
      synth roleplay characters.jsonl -o rp --backend openai --base-url http://127.0.0.1:8000/v1 \\
          --model Qwen/Qwen2.5-7B-Instruct --queries 8
      synth roleplay characters.jsonl -o rp --model ./my-model --judge-model ./bigger-model --no-judge
    """

    name = "roleplay"
    Config = RoleplayConfig
    main_output = "sft.jsonl"
    skip_counts = ("no_profile",)

    def __init__(self, cfg, ctx):
        super().__init__(cfg, ctx)
        self.rules = load_rules(cfg.rules)
        self.kinds = dict(self.rules.get("kinds") or {"general": "asking anything"})
        self.judge = JudgeGate(cfg, ctx, low_reason="out_of_character")
        self.t = {"characters": 0, "query_requests": 0, "queries": 0, "dialogues": 0, "rejected_dialogues": 0}

    def prepare(self, row: dict) -> Character:
        profile = row.get(self.cfg.profile_field)
        if not (isinstance(profile, str) and profile.strip()) and not (isinstance(profile, dict) and profile):
            raise Skip(
                "no_profile", f"no profile in field '{self.cfg.profile_field}' (text or a JSON object)"
            )
        name = row.get(self.cfg.name_field) or (profile.get("name") if isinstance(profile, dict) else None)
        if not isinstance(name, str) or not name.strip():
            name = profile_text(profile).splitlines()[0][:60]
        return Character(row, name.strip(), profile_text(profile))

    def run_batch(self, characters: list[Character]):
        cfg, r = self.cfg, self.rules
        out = self.outputs()
        asks = [(ch, kind) for ch in characters for kind in self.kinds]
        self.t["characters"] += len(characters)
        self.t["query_requests"] += len(asks)
        requests = [
            cfg.request(
                [
                    {"role": "system", "content": r["query_system"].strip()},
                    {
                        "role": "user",
                        "content": fill(
                            r["query_template"],
                            profile=ch.profile,
                            name=ch.name,
                            n=cfg.queries,
                            kind=self.kinds[kind],
                        ),
                    },
                ],
                n=1,
            )
            for ch, kind in asks
        ]
        dialogues = []
        for (ch, kind), (samples, error) in zip(asks, self.llm.complete_each(requests), strict=True):
            queries, why = self._queries(samples[0], error)
            if not queries:
                out.reject(ch.row, "no_queries", f"{kind}: {why}", kind=kind)
                continue
            for i, q in enumerate(queries[: cfg.queries]):
                dialogues.append((ch, kind, i, q))
        self.t["queries"] += len(dialogues)
        system = r["answer_system"]
        answers = self.llm.complete_each(
            [
                cfg.request(
                    [
                        {"role": "system", "content": fill(system, name=ch.name, profile=ch.profile).strip()},
                        {"role": "user", "content": q},
                    ],
                    n=1,
                )
                for ch, _, _, q in dialogues
            ]
        )
        made = []
        for (ch, kind, i, q), (samples, error) in zip(dialogues, answers, strict=True):
            comp = samples[0]
            row = {
                "id": derived_id(ch.id, kind=kind, query=i),
                "parent_id": ch.id,
                "messages": [
                    {"role": "user", "content": q},
                    {"role": "assistant", "content": comp.text if comp else ""},
                ],
                "character": ch.name,
                "kind": kind,
                "model": cfg.model,
            }
            if comp is None:
                out.reject(row, "generation_failed", error or "no completion")
            elif (unusable := sample_verdict(comp, cfg)) is not None:
                out.reject(row, *unusable)
            else:
                made.append((ch, row))
        rows = [row for _, row in made]
        tasks = [
            Task({"_profile": ch.profile}, row["messages"][:1], [row["messages"][1]["content"]])
            for ch, row in made
        ]
        self.judge.sort(out, rows, tasks)
        self.t["dialogues"] += len(out.kept)
        self.t["rejected_dialogues"] += sum(1 for r_ in out.rejected if r_["reject_reason"] != "no_queries")
        return out

    @staticmethod
    def _queries(comp, error) -> tuple[list[str], str]:
        if comp is None:
            return [], f"generation failed: {error}"
        try:
            value = parse_json(comp.text, expect=list)
        except ParseError as e:
            return [], str(e)
        queries = [q.strip() for q in value if isinstance(q, str) and q.strip()]
        return list(dict.fromkeys(queries)), "no query in the JSON list"

    def counts(self) -> dict:
        return dict(self.t)

    def balanced(self, c: dict) -> bool:
        return c["queries"] == c["dialogues"] + c["rejected_dialogues"]

    def sections(self) -> dict:
        return {"kinds": self.kinds, **self.judge.info()}

    def close(self) -> None:
        self.judge.close()

    @classmethod
    def summary(cls, m: dict) -> list[str]:
        c = m["counts"]
        return [
            f"rows {c['input']} = characters {c['characters']} + no profile {c['no_profile']} + invalid {c['invalid']}",
            f"queries {c['queries']} = dialogues {c['dialogues']} + rejected {c['rejected_dialogues']}",
        ]


def run_roleplay(cfg: RoleplayConfig, backend=None) -> dict:
    return run_method(Roleplay, cfg, backend=backend)

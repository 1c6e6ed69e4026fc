"""`synth tag`: InsTag open-set intention tagging (Lu et al., 2024).

An LLM reads the user turn(s) of each row and answers a JSON list of `{tag, explanation}` (prompts in
`rules/instag.yaml`). Answers are parsed defensively (code fences, trailing commas, single quotes, prose
around the list, output cut off at `max_tokens`); an answer that still cannot be read is followed by a
correction prompt, up to `retries` times. Each row comes out in `tagged.jsonl` with `tags: list[str]` and
the model's explanations in `tag_explanations`; a row that could not be tagged goes to `rejected.jsonl`
with the reason (`unparseable_tags`, `tagging_failed`, `no_user_turn`), never a crash.

>>> from synth.backends.scripted import ScriptedBackend
>>> from curate.io import write_jsonl
>>> write_jsonl("/tmp/tag-in.jsonl", [{"prompt": "Add 2 and 3."}])
1
>>> backend = ScriptedBackend(lambda req, i: '```json\\n[{"tag": "Math", "explanation": "a sum",},]\\n```')
>>> m = run_tag(TagConfig(inputs=["/tmp/tag-in.jsonl"], output="/tmp/tag-run", model="scripted",
...                       overwrite=True, use_cache=False), backend=backend)
>>> m["counts"]["tagged"], m["tags"]["top_tags"]
(1, [['Math', 1]])
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from curate.io import InputError
from curate.schema import public
from rules import fill
from synth.config import (
    BackendSettings,
    InputSettings,
    RunSettings,
    SamplingSettings,
    default,
    setting,
    settings,
)
from synth.parse import ParseError, parse_json
from synth.runner import Method, Skip, run_method


@settings
class TagConfig(SamplingSettings, BackendSettings, RunSettings, InputSettings):
    rules: str = setting(
        "instag.yaml", "Prompt templates: a copy of rules/instag.yaml (system, prompt, correction, retries)."
    )
    retries: int | None = setting(
        None, "Correction prompts after an unreadable answer [default: the rules file's, 2].", min=0
    )
    batch_size: int = setting(
        64, "Rows per backend call; each finished batch is committed to the cache.", min=1
    )
    # Tagging wants one deterministic answer per row and short output.
    temperature: float = default(0.0)
    max_tokens: int = default(512)

    def validate(self) -> None:
        TagPrompts.load(self.rules)  # a broken rules file is an error before any model is loaded


@dataclass(frozen=True)
class TagPrompts:
    """The prompt templates of `rules/instag.yaml`."""

    system: str | None
    prompt: str
    correction: str
    turn_header: str
    retries: int

    @classmethod
    def load(cls, name: str | Path) -> TagPrompts:
        from rules import load_rules

        try:
            rules = load_rules(name)
        except (FileNotFoundError, ValueError, OSError) as e:
            raise InputError(f"--rules: {e}") from None
        except Exception as e:  # yaml.YAMLError
            raise InputError(f"--rules {name}: not valid YAML ({e})") from None
        missing = [k for k in ("prompt", "correction") if not isinstance(rules.get(k), str)]
        if missing:
            raise InputError(f"--rules {name}: missing the {missing[0]!r} template")
        if "{instruction}" not in rules["prompt"]:
            raise InputError(f"--rules {name}: the prompt template has no {{instruction}} placeholder")
        return cls(
            system=rules.get("system") or None,
            prompt=rules["prompt"],
            correction=rules["correction"],
            turn_header=rules.get("turn_header") or "User turn {n}:",
            retries=int(rules.get("retries", 2)),
        )

    def messages(self, user_turns: list[str]) -> list[dict]:
        if len(user_turns) == 1:
            instruction = user_turns[0]
        else:
            instruction = "\n\n".join(
                f"{fill(self.turn_header, n=k)}\n{t}" for k, t in enumerate(user_turns, start=1)
            )
        msgs = [{"role": "system", "content": self.system}] if self.system else []
        return [*msgs, {"role": "user", "content": fill(self.prompt, instruction=instruction)}]

    def correct(self, messages: list[dict], answer: str, error: str) -> list[dict]:
        """The conversation so far, the unreadable answer, and a request to answer again."""
        return [
            *messages,
            {"role": "assistant", "content": answer},
            {"role": "user", "content": fill(self.correction, error=error)},
        ]


_TAG_FIELD = re.compile(r"""["']tag["']\s*:\s*(["'])([^"'\n]{1,200})\1""")
_EXPLANATION_FIELD = re.compile(r"""["']explanation["']\s*:\s*(["'])(.*?)(?<!\\)\1""", re.S)


def user_turns(row: dict) -> list[str]:
    """The user turns InsTag tags: of `messages`, or of a preference row's `prompt`."""
    msgs = row.get("messages") if row.get("_kind") != "preference" else row.get("prompt")
    turns = [m["content"] for m in msgs or () if m["role"] == "user" and m["content"].strip()]
    if not turns:
        raise Skip("no_user_turn", "no user turn to tag")
    return turns


def parse_tags(text: str) -> list[dict]:
    """`[{tag, explanation}]` from an LLM answer; plain strings are tags without explanation.

    >>> parse_tags("Tags: [{'tag': 'Coding ', 'explanation': 'Python'}, 'debugging', {'tag': 'coding'}]")
    [{'tag': 'Coding', 'explanation': 'Python'}, {'tag': 'debugging', 'explanation': None}, {'tag': 'coding', 'explanation': None}]
    >>> parse_tags('{"tag": "vaccines", "explanation": "Vaccines train the immune system to recogn')
    [{'tag': 'vaccines', 'explanation': None}]
    """
    try:
        value = parse_json(text, expect=list)
    except ParseError as e:
        # Objects without the list around them, perhaps cut off inside the last one (small models write
        # long explanations): every complete "tag" string, with its explanation where that is complete.
        found = list(_TAG_FIELD.finditer(text))
        if not found:
            raise e from None
        value = []
        for k, m in enumerate(found):
            rest = text[m.end() : found[k + 1].start() if k + 1 < len(found) else len(text)]
            explained = _EXPLANATION_FIELD.search(rest)
            value.append({"tag": m.group(2), "explanation": explained.group(2) if explained else None})
    out, seen = [], set()
    for item in value:
        tag, explanation = (
            (item, None)
            if isinstance(item, str)
            else ((item.get("tag"), item.get("explanation")) if isinstance(item, dict) else (None, None))
        )
        if not isinstance(tag, str) or not tag.strip():
            continue
        tag = " ".join(tag.split())
        if tag in seen:
            continue
        seen.add(tag)
        out.append({"tag": tag, "explanation": explanation if isinstance(explanation, str) else None})
    if not out:
        raise ParseError(f"no {{tag, explanation}} items in the JSON list: {' '.join(text.split())[:80]!r}")
    return out


class Tag(Method):
    """Tag the intentions of each row's user turn(s) with an LLM (InsTag): `tags` and `tag_explanations`.

    INPUT is JSONL (.gz/.zst), Parquet, `-` or a run directory, in any format `curate` reads. The model
    answers a JSON list of {tag, explanation}; broken JSON (code fences, trailing commas, single quotes,
    cut-off output) is repaired, and an unreadable answer gets a correction prompt (--retries). Rows that
    still fail go to OUTPUT/rejected.jsonl with the reason. Writes OUTPUT/tagged.jsonl, OUTPUT/rejected.jsonl,
    OUTPUT/invalid.jsonl and OUTPUT/manifest.json. Next: `curate tags normalize`, `curate select`.

    \b
    Examples:
      synth tag sample_data/conversations.jsonl -o tagged --backend hf --model ./SmolLM2-135M-Instruct.Q4_1.gguf
      synth tag prompts.jsonl -o tagged --backend openai --base-url http://127.0.0.1:8000/v1 \\
          --model Qwen/Qwen2.5-7B-Instruct --concurrency 64
    """

    name = "tag"
    Config = TagConfig
    main_output = "tagged.jsonl"
    skip_counts = ("no_user_turn",)

    def __init__(self, cfg: TagConfig, ctx):
        super().__init__(cfg, ctx)
        self.prompts = TagPrompts.load(cfg.rules)
        self.retries = self.prompts.retries if cfg.retries is None else cfg.retries
        self.t = Counter(rows=0, tagged=0, retried_rows=0, fixed_by_retry=0, correction_requests=0)
        self.tag_lists: list[list[str]] = []

    def prepare(self, row: dict) -> tuple[dict, list[dict]]:
        return row, self.prompts.messages(user_turns(row))

    def plan_requests(self, item) -> list:
        return [self.cfg.request(item[1], n=1)]

    def run_batch(self, items: list[tuple[dict, list[dict]]]):
        t, out = self.t, self.outputs()
        t["rows"] += len(items)
        outcome: dict[int, dict | tuple] = {}  # row index -> tagged row, or (reason, detail, extra)
        pending = list(enumerate(msgs for _, msgs in items))
        for attempt in range(self.retries + 1):
            if not pending:
                break
            if attempt:
                t["correction_requests"] += len(pending)
                t["retried_rows"] += len(pending) if attempt == 1 else 0
            answers = self.llm.complete_each([self.cfg.request(msgs, n=1) for _, msgs in pending])
            retry = []
            for (k, msgs), ([comp], error) in zip(pending, answers, strict=True):
                if comp is None:  # the backend failed (it has its own retries): not the model's fault
                    outcome[k] = ("tagging_failed", error or "no completion", {})
                    continue
                try:
                    tags = parse_tags(comp.text)
                except ParseError as e:
                    if attempt < self.retries:
                        retry.append((k, self.prompts.correct(msgs, comp.text, str(e))))
                    else:
                        detail = f"{e} (after {attempt + 1} answers)"
                        outcome[k] = ("unparseable_tags", detail, {"tag_output": comp.text})
                    continue
                t["fixed_by_retry"] += attempt > 0
                self.tag_lists.append([x["tag"] for x in tags])
                outcome[k] = {
                    **public(items[k][0]),
                    "tags": [x["tag"] for x in tags],
                    "tag_explanations": tags,
                }
            pending = retry
        for k in sorted(outcome):
            if isinstance(outcome[k], dict):
                out.kept.append(outcome[k])
            else:
                reason, detail, extra = outcome[k]
                out.reject(items[k][0], reason, detail, **extra)
        t["tagged"] += len(out.kept)
        return out

    def counts(self) -> dict:
        return {**self.t, "rejected": self.ctx.run.ledger.counts["rejected"]}

    def balanced(self, c: dict) -> bool:
        return c["rows"] + c["no_user_turn"] == c["tagged"] + c["rejected"]

    def sections(self) -> dict:
        from curate.tags import tag_distribution

        p = self.prompts
        return {
            "retries": self.retries,
            "prompts": {
                "rules": self.cfg.rules,
                "system": p.system,
                "prompt": p.prompt,
                "correction": p.correction,
            },
            "tags": tag_distribution(self.tag_lists),
        }

    @classmethod
    def summary(cls, m: dict) -> list[str]:
        c, t = m["counts"], m["tags"]
        reasons = ", ".join(f"{k} {v}" for k, v in m["reasons"].items())
        lines = [
            f"rows {c['input']} = tagged {c['tagged']} + rejected {c['rejected']} + invalid {c['invalid']}"
            + (f"   (rejected.jsonl: {reasons})" if reasons else "")
        ]
        if c["retried_rows"]:
            lines.append(
                f"correction prompts: {c['correction_requests']} for {c['retried_rows']} rows, "
                f"{c['fixed_by_retry']} fixed"
            )
        lines.append(
            f"tags: {t['distinct_tags']} distinct, {t['mean_tags_per_row']} per row; top: "
            + ", ".join(f"{tag} {n}" for tag, n in t["top_tags"][:8])
        )
        lines.append(f"next: curate tags normalize {m['run_dir']} -o DIR")
        return lines


def run_tag(cfg: TagConfig, backend=None) -> dict:
    """Tag every row of `cfg.inputs` into the run directory `cfg.output`; return the manifest.

    `backend` may be given ready-made (a loaded model, or a `ScriptedBackend` in tests); otherwise it is
    built from the config's backend settings.
    """
    return run_method(Tag, cfg, backend=backend)


__all__ = ["Tag", "TagConfig", "TagPrompts", "parse_tags", "run_tag", "user_turns"]

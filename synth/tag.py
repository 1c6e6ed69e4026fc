"""`run_tag`: InsTag open-set intention tagging (Lu et al., 2024), the library behind `synth tag`.

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
from dataclasses import dataclass
from pathlib import Path

from curate.io import InputError
from curate.ledger import RunLedger
from curate.schema import public, rejected_row
from curate.tags import tag_distribution
from synth.backends import Backend
from synth.generate import GenerateConfig, batched, progress_bar
from synth.llm import CachedLLM
from synth.parse import ParseError, parse_json

STEP = "tag"
OUTPUT = "tagged.jsonl"


@dataclass
class TagConfig(GenerateConfig):
    """`GenerateConfig`'s backend, sampling, cache and input settings; tagging takes one greedy answer
    per row (`n`, `system_prompt` and `keep_truncated` are not used)."""

    temperature: float = 0.0
    max_tokens: int = 512
    rules: str = "instag.yaml"  # prompt templates: a file shipped in rules/ or a path
    retries: int | None = None  # correction prompts after an unreadable answer; None: the rules file's

    def validate(self) -> None:
        super().validate()
        if self.n != 1:
            raise InputError("synth tag takes one answer per row (n=1)")
        if self.retries is not None and self.retries < 0:
            raise InputError(f"--retries must be 0 or more, got {self.retries}")


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
                f"{self.turn_header.replace('{n}', str(k))}\n{t}" for k, t in enumerate(user_turns, start=1)
            )
        msgs = [{"role": "system", "content": self.system}] if self.system else []
        return [*msgs, {"role": "user", "content": self.prompt.replace("{instruction}", instruction)}]

    def correct(self, messages: list[dict], answer: str, error: str) -> list[dict]:
        """The conversation so far, the unreadable answer, and a request to answer again."""
        return [
            *messages,
            {"role": "assistant", "content": answer},
            {"role": "user", "content": self.correction.replace("{error}", error)},
        ]


_TAG_FIELD = re.compile(r"""["']tag["']\s*:\s*(["'])([^"'\n]{1,200})\1""")
_EXPLANATION_FIELD = re.compile(r"""["']explanation["']\s*:\s*(["'])(.*?)(?<!\\)\1""", re.S)


class NoUserTurn(ValueError):
    pass


def user_turns(row: dict) -> list[str]:
    """The user turns InsTag tags: of `messages`, or of a preference row's `prompt`."""
    msgs = row.get("messages") if row.get("_kind") != "preference" else row.get("prompt")
    turns = [m["content"] for m in msgs or () if m["role"] == "user" and m["content"].strip()]
    if not turns:
        raise NoUserTurn("no user turn to tag")
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


class _Tagger:
    """One run: prompts, correction rounds, and the rows that come out."""

    def __init__(self, cfg: TagConfig, prompts: TagPrompts, llm: CachedLLM, ledger: RunLedger):
        self.cfg, self.prompts, self.llm, self.ledger = cfg, prompts, llm, ledger
        self.retries = prompts.retries if cfg.retries is None else cfg.retries
        self.counts = {
            "no_user_turn": 0,
            "rows": 0,
            "tagged": 0,
            "rejected": 0,
            "retried_rows": 0,
            "fixed_by_retry": 0,
            "correction_requests": 0,
        }
        self.reasons: dict[str, int] = {}
        self.tag_lists: list[list[str]] = []

    def _reject(self, row: dict, reason: str, detail: str, **extra) -> dict:
        self.reasons[reason] = self.reasons.get(reason, 0) + 1
        return rejected_row(public(row), reason, detail, step=STEP, **extra)

    def run_batch(self, rows: list[dict]) -> None:
        c = self.counts
        pending: list[tuple[int, list[dict]]] = []
        outcome: dict[int, dict] = {}
        for k, row in enumerate(rows):
            try:
                pending.append((k, self.prompts.messages(user_turns(row))))
            except NoUserTurn as e:
                c["no_user_turn"] += 1
                outcome[k] = self._reject(row, "no_user_turn", str(e))
        c["rows"] += len(pending)
        for attempt in range(self.retries + 1):
            if not pending:
                break
            if attempt:
                c["correction_requests"] += len(pending)
                if attempt == 1:
                    c["retried_rows"] += len(pending)
            answers = self.llm.complete_each([self.cfg.request(msgs, n=1) for _, msgs in pending])
            retry = []
            for (k, msgs), (samples, error) in zip(pending, answers, strict=True):
                comp = samples[0]
                if comp is None:  # the backend failed (it has its own retries): not the model's fault
                    outcome[k] = self._reject(rows[k], "tagging_failed", error or "no completion")
                    continue
                try:
                    tags = parse_tags(comp.text)
                except ParseError as e:
                    if attempt < self.retries:
                        retry.append((k, self.prompts.correct(msgs, comp.text, str(e))))
                    else:
                        outcome[k] = self._reject(
                            rows[k],
                            "unparseable_tags",
                            f"{e} (after {attempt + 1} answers)",
                            tag_output=comp.text,
                        )
                    continue
                c["fixed_by_retry"] += attempt > 0
                self.tag_lists.append([t["tag"] for t in tags])
                outcome[k] = {**public(rows[k]), "tags": [t["tag"] for t in tags], "tag_explanations": tags}
            pending = retry
        kept = [outcome[k] for k in sorted(outcome) if "reject_step" not in outcome[k]]
        rejected = [outcome[k] for k in sorted(outcome) if "reject_step" in outcome[k]]
        c["tagged"] += len(kept)
        c["rejected"] += len(rejected)
        self.ledger.kept(kept)
        self.ledger.rejected(rejected)


def run_tag(cfg: TagConfig, backend: Backend | None = None) -> dict:
    """Tag every row of `cfg.inputs` into the run directory `cfg.output`; return the manifest.

    `backend` may be given ready-made (a loaded model, or a `ScriptedBackend` in tests); otherwise it is
    built from `cfg.backend`, `cfg.model` and `cfg.backend_options`.
    """
    from synth.run import SynthRun

    cfg.validate()
    prompts = TagPrompts.load(cfg.rules)
    with SynthRun(cfg, "synth tag", main=OUTPUT, backend=backend) as run:
        tagger = _Tagger(cfg, prompts, run.llm, run.ledger)
        with progress_bar(cfg, desc=STEP) as bar:
            for batch in batched(run.reader, cfg.batch_size):
                tagger.run_batch(batch)
                bar.update(run.reader.count - bar.n)
        counts = {"input": run.reader.count, "invalid": len(run.reader.invalid), **tagger.counts}
        counts["balanced"] = counts["input"] == counts["invalid"] + counts["tagged"] + counts["rejected"]
        return run.finish(
            counts=counts,
            reasons=dict(sorted(tagger.reasons.items(), key=lambda kv: -kv[1])),
            retries=tagger.retries,
            prompts={
                "rules": cfg.rules,
                "system": prompts.system,
                "prompt": prompts.prompt,
                "correction": prompts.correction,
            },
            tags=tag_distribution(tagger.tag_lists),
            seconds=round(run.seconds, 3),
            outputs={"tagged": OUTPUT, "rejected": "rejected.jsonl", "invalid": "invalid.jsonl"},
        )


__all__ = ["TagConfig", "TagPrompts", "run_tag", "parse_tags", "user_turns"]

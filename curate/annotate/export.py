"""`curate annotate export`: the annotations of an OUT directory as training data, a ledger and a manifest.

EXPORT (a run directory, built hidden and moved into place when complete) holds

- `sft.jsonl`: per exported prompt, the prompt and its best response (the edited one where there is one) as
  `messages` (`id` = the prompt's id);
- `preference.jsonl`: `prompt, chosen, rejected` (+ `edited`, edited > chosen > rejected): the best response
  against each lower one (`--pairs each`) or against the worst (`--pairs worst`);
- `ranked.jsonl`: `prompt, responses: [best, ..., worst]` (+ `edited`), the shape `train reward` learns every
  ordered pair of;
- `rejected.jsonl`: skipped prompts, prompts whose responses were all flagged, flagged responses and edits
  not used, each with `reject_step`, `reject_reason`, `reject_detail`;
- `edits.jsonl`: the edits exported (`id, step, field, before, after, annotator`), as `curate why` reads them;
- `agreement.jsonl`: per finished prompt, who ranked or skipped it, the combined order and the agreement;
- `manifest.json`: counts (prompts = exported + skipped + all flagged + not yet annotated), per annotator,
  agreement, how rankings were combined.

Several annotators' rankings are combined by Borda count, ties broken by the annotator who registered first
(`curate.annotate.rank`); responses anyone flagged are left out of every ranking.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from curate.annotate.rank import FLAG_REASONS, Outcome, decide
from curate.annotate.store import DB_NAME, Store
from curate.io import InputError
from curate.schema import DEFAULT_MAX_ROW_BYTES, content_id, rejected_row

STEP = "curate annotate"
PAIRS = ("each", "worst")
_reject = functools.partial(rejected_row, step=STEP)


@dataclass
class ExportConfig:
    annotations: str  # the OUT directory of `curate annotate`
    output: str
    pairs: str = "each"  # each: best vs each lower response; worst: best vs the worst
    overwrite: bool = False
    # what curate.run.Run reads of every command's config
    inputs: list = field(default_factory=list)
    input_format: str = "auto"
    on_error: str = "fail"
    max_row_bytes: int = DEFAULT_MAX_ROW_BYTES

    def __post_init__(self):
        if self.pairs not in PAIRS:
            raise InputError(f"--pairs must be one of {', '.join(PAIRS)}, not {self.pairs!r}")
        self.inputs = [f"{self.annotations}/{DB_NAME}"]


def _said(pairs: list[tuple[str, str | None]]) -> str:
    return "; ".join(f"{who}: {what or '(no reason)'}" for who, what in pairs)


def _turn(text: str) -> list[dict]:
    return [{"role": "assistant", "content": text}]


class Exporter:
    """Writes one prompt's outcome into the run's files and counts it."""

    def __init__(self, run, pairs: str):
        self.run, self.pairs = run, pairs
        self.pref, self.ranked, self.agree = (
            run.writer(n) for n in ("preference.jsonl", "ranked.jsonl", "agreement.jsonl")
        )
        keys = ("exported", "skipped", "all_flagged", "not_annotated", "demonstration_only")
        self.counts = dict.fromkeys(keys + ("flagged_responses", "edits", "unused_edits"), 0)
        self.agreements: list[dict] = []

    def add(self, row: dict, o: Outcome) -> None:
        status = "not_annotated" if o.status == "open" else o.status
        self.counts[status] += 1
        if o.status == "open":
            return
        self._ledger(row, o)
        resp = row["responses"]
        record = {
            "id": row["id"],
            "status": o.status,
            "rankers": o.rankers,
            "skipped_by": [{"annotator": a, "reason": r} for a, r in o.skips],
            "ranking": [resp[k]["id"] for k in o.ranking],
            **o.agreement,
        }
        self.agree.write(record)
        self.agreements.append(record)
        if o.status == "exported":
            self._rows(row, o)

    def _rows(self, row: dict, o: Outcome) -> None:
        prompt, resp = row["prompt"], row["responses"]
        best = resp[o.ranking[0]]["text"]
        edited = o.edit[1] if o.edit else None
        self.run.ledger.kept([{"id": row["id"], "messages": prompt + _turn(edited or best)}])
        if edited is not None:
            self.counts["edits"] += 1
            self.run.ledger.edits(
                [
                    {
                        "id": row["id"],
                        "step": STEP,
                        "field": f"messages[{len(prompt)}].content",
                        "before": best,
                        "after": edited,
                        "annotator": o.edit[0],
                    }
                ]
            )
        if len(o.ranking) < 2:
            self.counts["demonstration_only"] += 1
            return
        lower = o.ranking[1:] if self.pairs == "each" else o.ranking[-1:]
        extra = {"edited": _turn(edited)} if edited is not None else {}
        for k in lower:
            pair = {"prompt": prompt, "chosen": _turn(best), "rejected": _turn(resp[k]["text"]), **extra}
            self.pref.write({"id": content_id(pair), "parent_id": row["id"], **pair})
        self.ranked.write(
            {
                "id": row["id"],
                "prompt": prompt,
                "responses": [_turn(resp[k]["text"]) for k in o.ranking],
                **extra,
            }
        )

    def _ledger(self, row: dict, o: Outcome) -> None:
        if o.status == "skipped":
            self.run.ledger.rejected([_reject(row, "skipped", _said(o.skips))])
        elif o.status == "all_flagged":
            self.run.ledger.rejected(
                [_reject(row, "all_responses_flagged", f"{len(row['responses'])} responses, all flagged")]
            )
        for k, flags in sorted(o.flagged.items()):
            r = row["responses"][k]
            worst = min((reason for _, reason in flags), key=FLAG_REASONS.index)
            self.counts["flagged_responses"] += 1
            self.run.ledger.rejected(
                [
                    _reject(
                        {"id": r["id"], "parent_id": row["id"], "prompt": row["prompt"], "response": r},
                        f"flagged_{worst.replace('-', '_')}",
                        _said(flags),
                        flags=[{"annotator": a, "reason": reason} for a, reason in flags],
                    )
                ]
            )
        for e in o.unused_edits:
            self.counts["unused_edits"] += 1
            base = row["responses"][e.base]
            self.run.ledger.rejected(
                [
                    _reject(
                        {
                            "id": f"{base['id']}:edit:{e.annotator}",
                            "parent_id": row["id"],
                            "prompt": row["prompt"],
                        },
                        "edit_not_used",
                        f"{e.annotator}: {e.why}",
                        annotator=e.annotator,
                        response=base,
                        edited=e.text,
                    )
                ]
            )

    def summary(self, rows: list[dict], names: list[str], by_pos: dict) -> dict:
        c = self.counts
        c["prompts"] = len(rows)
        c["balanced"] = c["prompts"] == c["exported"] + c["skipped"] + c["all_flagged"] + c["not_annotated"]
        c["demonstrations"] = self.run.ledger.counts["kept"]
        c["preference_pairs"] = self.pref.count
        c["rankings"] = self.ranked.count
        c["rejected"] = self.run.ledger.counts["rejected"]
        per = {n: {"ranked": 0, "skipped": 0, "open": 0} for n in names}
        for js in by_pos.values():
            for j in js:
                per[j.annotator][j.status] += 1
        several = [a for a in self.agreements if a["annotators"] >= 2]
        taus = [a["kendall_tau"] for a in several if a["kendall_tau"] is not None]
        tops = [a["top_agreement"] for a in several if a["top_agreement"] is not None]
        return {
            "counts": c,
            "annotators": per,
            "agreement": {
                "prompts_with_several_rankers": len(several),
                "mean_kendall_tau": round(sum(taus) / len(taus), 3) if taus else None,
                "mean_top_agreement": round(sum(tops) / len(tops), 3) if tops else None,
            },
            "combine": "Borda count over the annotators who ranked a prompt (a response scores the number of "
            "responses ranked below it); ties broken by the annotator who registered first; responses any "
            "annotator flagged are left out",
            "pairs": "best vs each lower response" if self.pairs == "each" else "best vs the worst response",
        }


def run_export(cfg: ExportConfig) -> dict:
    """Export an annotation directory into the run directory `cfg.output`; return the manifest."""
    from curate.run import Run

    store = Store.read(cfg.annotations)
    try:
        rows, names, by_pos = store.snapshot()
        meta, history = store.meta(), store.history()
    finally:
        store.close()
    with Run(STEP + " export", cfg, main="sft.jsonl") as run:
        ex = Exporter(run, cfg.pairs)
        for pos, row in enumerate(rows):
            ex.add(row, decide(by_pos[pos], len(row["responses"])))
        return run.finish(
            **ex.summary(rows, names, by_pos),
            annotations={"dir": str(cfg.annotations), "candidates": meta["candidates"], **history},
            outputs={
                "demonstrations": "sft.jsonl",
                "preference": "preference.jsonl",
                "ranked": "ranked.jsonl",
                "rejected": "rejected.jsonl",
                "edits": "edits.jsonl",
                "agreement": "agreement.jsonl",
            },
        )

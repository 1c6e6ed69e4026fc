"""The ledger of a run directory: what was kept, rejected, edited or invalid, and how to ask about a row.

A run directory holds its main output (`kept.jsonl`, or `sft.jsonl`/`preference.jsonl`), `rejected.jsonl`
(the row plus `reject_step`, `reject_reason`, `reject_detail`), `edits.jsonl` (`id, step, field, before,
after`), `invalid.jsonl` (lines that could not be read, with the error) and `manifest.json`.
"""

from __future__ import annotations

from pathlib import Path

import orjson

from curate.io import MAIN_OUTPUTS, InputError, JsonlWriter, RunDir, iter_lines
from curate.pipeline import Sink

LEDGER_FILES = ("rejected.jsonl", "edits.jsonl", "invalid.jsonl")


class RunLedger(Sink):
    """Streams a run's rows into the files of a `RunDir` (all written atomically with the directory)."""

    def __init__(self, run: RunDir, *, main: str = "kept.jsonl", stdout: bool = False):
        self.run = run
        self.main_name = main
        self._main = JsonlWriter("-" if stdout else run / main)
        self._rejected = JsonlWriter(run / "rejected.jsonl")
        self._edits = JsonlWriter(run / "edits.jsonl")

    def kept(self, rows):
        self._main.write_many(rows)

    def rejected(self, rows):
        self._rejected.write_many(rows)

    def edits(self, records):
        self._edits.write_many(records)

    def write_invalid(self, records: list[dict]) -> None:
        with JsonlWriter(self.run / "invalid.jsonl") as w:
            w.write_many(records)

    @property
    def counts(self) -> dict:
        return {"kept": self._main.count, "rejected": self._rejected.count, "edits": self._edits.count}

    def close(self) -> None:
        for w in (self._main, self._rejected, self._edits):
            w.close()

    def abort(self) -> None:
        for w in (self._main, self._rejected, self._edits):
            w.abort()


def _load(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [orjson.loads(r.data) for r in iter_lines([path])]


class Run:
    """A finished run directory, read back for `why`, `diff` and `report`."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.is_dir():
            raise InputError(f"{path}: not a run directory")
        mf = self.path / "manifest.json"
        self.manifest = orjson.loads(mf.read_bytes()) if mf.is_file() else {}
        self.main_files = [self.path / n for n in MAIN_OUTPUTS if (self.path / n).is_file()]
        if not self.main_files and not mf.is_file():
            raise InputError(f"{path}: not a run directory (no manifest.json or {MAIN_OUTPUTS[0]})")

    def kept(self) -> list[dict]:
        return [row for f in self.main_files for row in _load(f)]

    def rejected(self) -> list[dict]:
        return _load(self.path / "rejected.jsonl")

    def edits(self) -> list[dict]:
        return _load(self.path / "edits.jsonl")

    def invalid(self) -> list[dict]:
        return _load(self.path / "invalid.jsonl")


def why(run_path: str | Path, row_id: str) -> dict:
    """One row's fate in a run: kept / rejected (step, reason, detail) / edited, and the row itself.

    Follows `reject_detail` references ("duplicate of X") to the kept row, and `parent_id` chains.
    """
    run = Run(run_path)
    out: dict = {"id": row_id, "run": str(run.path), "status": "not found", "edits": []}
    by_id_kept = {r.get("id"): r for r in run.kept()}
    by_id_rej = {r.get("id"): r for r in run.rejected()}
    if row_id in by_id_rej:
        row = by_id_rej[row_id]
        out.update(
            status="rejected",
            step=row.get("reject_step"),
            reason=row.get("reject_reason"),
            detail=row.get("reject_detail"),
            row=row,
        )
        ref = _referenced_id(row.get("reject_detail") or "")
        if ref is not None:
            out["refers_to"] = {
                "id": ref,
                "status": "kept"
                if ref in by_id_kept
                else ("rejected" if ref in by_id_rej else "not in this run"),
                "row": by_id_kept.get(ref) or by_id_rej.get(ref),
            }
    elif row_id in by_id_kept:
        out.update(status="kept", row=by_id_kept[row_id])
    out["edits"] = [e for e in run.edits() if e.get("id") == row_id]
    if out["status"] == "not found" and out["edits"]:
        out["status"] = "edited"
    lineage = []
    seen = {row_id}
    row = out.get("row")
    while row and row.get("parent_id") and row["parent_id"] not in seen:
        pid = row["parent_id"]
        seen.add(pid)
        row = by_id_kept.get(pid) or by_id_rej.get(pid)
        evolution = {"evolution": row["evolution"]} if row and row.get("evolution") else {}  # synth evolve
        lineage.append({"id": pid, "found": row is not None, **evolution})
    if lineage:
        out["lineage"] = lineage
    if out["status"] == "not found" and (run.path / "tag_map.jsonl").is_file():  # curate tags normalize
        tag = _tag_fate(run.path / "tag_map.jsonl", row_id)
        if tag:
            out.update(status="tag", tag=tag)
    return out


def _tag_fate(tag_map: Path, tag: str) -> dict | None:
    """A raw tag's way to its canonical tag (each hop with its step and reason), and the raw tags merged
    into `tag` when it is a canonical one."""
    records = _load(tag_map)
    raw = next((r for r in records if r.get("raw") == tag), None)
    merged = [r for r in records if r.get("canonical") == tag and r.get("raw") != tag]
    if raw is None and not merged:
        return None
    return {"tag": tag, "as_raw": raw, "merged_into_it": merged}


def _referenced_id(detail: str) -> str | None:
    for marker in ("duplicate of ",):
        if marker in detail:
            rest = detail.split(marker, 1)[1]
            return rest.split(" (", 1)[0].strip()
    return None

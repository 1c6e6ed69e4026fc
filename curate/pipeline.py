"""The step protocol and the streaming runner.

A step is a small configured object with a ``name`` and one method:

- ``Filter.verdict(frame) -> DataFrame[reason, detail]`` (null reason = keep), same height as ``frame``;
- ``Editor.edit(frame) -> frame`` rewriting the columns in ``fields`` (``messages``, ``rejected``);
- ``FilterEditor.review(frame) -> (verdict, frame)``: both at once, from one look at each row (PII: drop a
  row holding a card number, redact the e-mail address in the rows it keeps);
- ``Annotator.annotate(frame) -> frame`` adding columns and keeping every row.

The runner streams rows in batches, builds one Polars frame per batch, applies the steps in order and is
the only place that drops rows. It hands kept rows, rejected rows and edits to a sink (the run directory's
ledger), and keeps per-step counts and timings for the manifest.

Frame columns every step may read: ``_i`` (row position in the batch), ``id``, ``kind``
(conversation | prompt | preference | text), ``messages`` (list of {role, content, tool_calls, tool_call_id};
for preference rows, prompt + best response; for text rows, the text as one assistant turn), ``rejected``
(preference rows: the other responses in rank order; otherwise null) and ``tools`` (the function names the
row declares; null when it declares none). ``tool_calls`` is the message's calls as JSON text (null when it
makes none); see `curate.schema.turn_fields`.

>>> import polars as pl
>>> class Short(Filter):
...     name = "short"
...     def verdict(self, frame):
...         n = frame["messages"].list.len()
...         return pl.DataFrame({"reason": pl.Series([("too_few_turns" if k < 2 else None) for k in n], dtype=pl.String),
...                              "detail": pl.Series([None] * len(n), dtype=pl.String)})
>>> rows = [{"id": "a", "messages": [{"role": "user", "content": "hi"}], "_kind": "prompt"}]
>>> sink = MemorySink(); stats = Pipeline([Short()]).run(rows, sink)
>>> [r["reject_reason"] for r in sink.rejected_rows]
['too_few_turns']
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from typing import ClassVar

import orjson
import polars as pl

from curate.errors import StepError
from curate.schema import IdRegistry, id_key, public, rejected_row, turn_fields, turn_path
from curate.turns import tool_names

MSG = pl.Struct({"role": pl.String, "content": pl.String, "tool_calls": pl.String, "tool_call_id": pl.String})
FRAME_SCHEMA = {
    "_i": pl.UInt32,
    "id": pl.String,
    "kind": pl.String,
    "messages": pl.List(MSG),
    "rejected": pl.List(MSG),
    "tools": pl.List(pl.String),
}
VERDICT_SCHEMA = {"reason": pl.String, "detail": pl.String}
BASE_COLUMNS = frozenset(FRAME_SCHEMA)


class Step:
    """Base of all steps. Subclasses are dataclasses: their fields are the step's settings."""

    name: ClassVar[str] = ""
    kind: ClassVar[str] = ""
    help: ClassVar[str] = ""
    # Stateless steps decide each row on its own and may run in worker processes. A stateful step (dedup)
    # decides in input order in the main process; its per-row work goes in `prepare`, which workers run.
    stateless: ClassVar[bool] = True

    def prepare(self, frame: pl.DataFrame) -> pl.DataFrame:
        """Per-row work of a stateful step, done ahead in a worker: add `_`-prefixed columns, same rows."""
        return frame

    def settings(self) -> dict:
        if dataclasses.is_dataclass(self):
            return {
                f.name: getattr(self, f.name) for f in dataclasses.fields(self) if not f.name.startswith("_")
            }
        return {}

    def summary(self) -> dict:
        """Extra facts for the manifest (models used, what was not detected, state sizes)."""
        return {}


class Filter(Step):
    kind = "filter"

    def verdict(self, frame: pl.DataFrame) -> pl.DataFrame:  # pragma: no cover - interface
        raise NotImplementedError


class Editor(Step):
    kind = "editor"
    fields: ClassVar[tuple[str, ...]] = ("messages", "rejected")

    def edit(self, frame: pl.DataFrame) -> pl.DataFrame:  # pragma: no cover - interface
        raise NotImplementedError


class FilterEditor(Step):
    """A filter that also edits the rows it keeps, from the same analysis of each row.

    ``review`` returns the verdict (as a filter's) and the edited frame (as an editor's), both the height of
    its input. The runner drops the rows with a reason first; the edits of the rows it keeps go to
    ``edits.jsonl``, those of dropped rows nowhere (the ledger holds a dropped row as it came in).
    """

    kind = "filter-editor"
    fields: ClassVar[tuple[str, ...]] = ("messages", "rejected")

    def review(self, frame: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:  # pragma: no cover
        raise NotImplementedError


EDITING_KINDS = frozenset({"editor", "filter-editor"})
METHODS = {"filter": "verdict", "editor": "edit", "filter-editor": "review", "annotator": "annotate"}


class Annotator(Step):
    kind = "annotator"

    def annotate(self, frame: pl.DataFrame) -> pl.DataFrame:  # pragma: no cover - interface
        raise NotImplementedError


@dataclasses.dataclass
class FunctionStep(Step):
    """A plain function used as a step: ``as_step(fn, kind="filter")``."""

    fn: Callable
    step_kind: str
    step_name: str

    def __post_init__(self):
        self.kind = self.step_kind  # type: ignore[misc]
        self.name = self.step_name  # type: ignore[misc]
        setattr(self, METHODS[self.step_kind], self.fn)
        if self.step_kind in EDITING_KINDS:
            self.fields = Editor.fields  # type: ignore[misc]

    def settings(self) -> dict:
        return {"function": getattr(self.fn, "__qualname__", repr(self.fn))}


def as_step(fn: Callable, *, kind: str, name: str | None = None) -> FunctionStep:
    if kind not in METHODS:
        raise ValueError(f"kind must be one of {', '.join(METHODS)}, not {kind!r}")
    return FunctionStep(fn=fn, step_kind=kind, step_name=name or fn.__name__)


def verdicts(reasons: list, details: list) -> pl.DataFrame:
    """Build a verdict frame from two Python lists (None = keep)."""
    return pl.DataFrame({"reason": reasons, "detail": details}, schema=VERDICT_SCHEMA)


def to_frame(rows: list[dict]) -> pl.DataFrame:
    # Flat turn columns grouped back into lists: Polars builds these far faster than nested Python values.
    turns, rturns = _Turns(), _Turns()
    tools: dict[int, list[str]] = {}
    for i, r in enumerate(rows):
        if r["_kind"] in ("conversation", "prompt"):
            turns.add(i, r["messages"])
        else:
            msgs, rest = turn_fields(r)
            for _, ms in msgs:
                turns.add(i, ms)
            for _, ms in rest:
                rturns.add(i, ms)
        if r.get("tools"):
            tools[i] = tool_names(r["tools"])
    frame = pl.DataFrame(
        {"_i": range(len(rows)), "id": [r["id"] for r in rows], "kind": [r["_kind"] for r in rows]},
        schema={"_i": pl.UInt32, "id": pl.String, "kind": pl.String},
    )
    frame = frame.join(turns.lists("messages"), on="_i", how="left", maintain_order="left")
    if rturns.index:
        frame = frame.join(rturns.lists("rejected"), on="_i", how="left", maintain_order="left")
    else:
        frame = frame.with_columns(rejected=pl.lit(None, dtype=pl.List(MSG)))
    if tools:
        frame = frame.with_columns(
            tools=pl.Series([tools.get(i) for i in range(len(rows))], dtype=pl.List(pl.String))
        )
    else:
        frame = frame.with_columns(tools=pl.lit(None, dtype=pl.List(pl.String)))
    return frame.select(list(FRAME_SCHEMA))


class _Turns:
    """Turn columns of a batch; the tool columns are filled only from the first message that has tool fields."""

    def __init__(self):
        self.index, self.roles, self.contents = [], [], []
        self.calls: list | None = None
        self.call_ids: list | None = None

    def add(self, i: int, msgs: list[dict]) -> None:
        for m in msgs:
            self.index.append(i)
            self.roles.append(m["role"])
            self.contents.append(m["content"])
            if self.calls is None and len(m) > 2 and (m.get("tool_calls") or m.get("tool_call_id")):
                self.calls = [None] * (len(self.index) - 1)
                self.call_ids = [None] * (len(self.index) - 1)
            if self.calls is not None:
                calls = m.get("tool_calls")
                self.calls.append(orjson.dumps(calls).decode() if calls else None)
                self.call_ids.append(m.get("tool_call_id"))

    def lists(self, name: str) -> pl.DataFrame:
        schema = {"_i": pl.UInt32, **MSG.to_schema()}
        cols = {"_i": self.index, "role": self.roles, "content": self.contents}
        if self.calls is None:
            turns = pl.DataFrame(cols, schema={k: schema[k] for k in cols}).with_columns(
                tool_calls=pl.lit(None, dtype=pl.String), tool_call_id=pl.lit(None, dtype=pl.String)
            )
        else:
            turns = pl.DataFrame(
                {**cols, "tool_calls": self.calls, "tool_call_id": self.call_ids}, schema=schema
            )
        return turns.group_by("_i", maintain_order=True).agg(pl.struct(*MSG.to_schema()).alias(name))


def _plain(msgs: list[dict]) -> list[dict]:
    return [{"role": m["role"], "content": m["content"]} for m in msgs]


# Text views shared by steps, so every filter reads a conversation the same way.
def content_text(col: str = "messages", *, roles: Iterable[str] | None = None, sep: str = "\n") -> pl.Expr:
    """All turn contents of `col` joined by `sep`; restricted to `roles` when given."""
    el = pl.element()
    if roles is not None:
        roles = list(roles)
        return (
            pl.col(col)
            .list.eval(el.filter(el.struct.field("role").is_in(roles)).struct.field("content"))
            .list.join(sep)
            .fill_null("")
        )
    return pl.col(col).list.eval(el.struct.field("content")).list.join(sep).fill_null("")


class Sink:
    """Where the runner puts its results; the run directory's ledger is one, tests use MemorySink."""

    def kept(self, rows: list[dict]) -> None: ...
    def rejected(self, rows: list[dict]) -> None: ...
    def edits(self, records: list[dict]) -> None: ...


class MemorySink(Sink):
    def __init__(self):
        self.kept_rows: list[dict] = []
        self.rejected_rows: list[dict] = []
        self.edit_records: list[dict] = []

    def kept(self, rows):
        self.kept_rows.extend(rows)

    def rejected(self, rows):
        self.rejected_rows.extend(rows)

    def edits(self, records):
        self.edit_records.extend(records)


@dataclasses.dataclass
class StepStats:
    name: str
    kind: str
    rows_in: int = 0
    dropped: int = 0
    edited_rows: int = 0
    seconds: float = 0.0
    reasons: Counter = dataclasses.field(default_factory=Counter)

    def as_dict(self) -> dict:
        d = {
            "name": self.name,
            "kind": self.kind,
            "in": self.rows_in,
            "dropped": self.dropped,
            "out": self.rows_in - self.dropped,
            "seconds": round(self.seconds, 3),
            "reasons": dict(self.reasons.most_common()),
        }
        if self.kind in EDITING_KINDS:
            d["edited_rows"] = self.edited_rows
        if self.seconds > 0 and self.rows_in:
            d["rows_per_s"] = round(self.rows_in / self.seconds)
        return d


class Pipeline:
    """Applies steps to a stream of normalized rows, batch by batch."""

    def __init__(self, steps: list[Step], *, batch_size: int = 10_000, progress: bool | None = None):
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        names = [s.name for s in steps]
        dup = [n for n, c in Counter(names).items() if c > 1]
        if dup:
            raise StepError(f"step {dup[0]!r} appears twice; give each step once")
        self.steps = steps
        self.batch_size = batch_size
        self.progress = sys.stderr.isatty() if progress is None else progress
        self.stats = [StepStats(s.name, s.kind) for s in steps]
        self.rows_in = 0
        self.rows_kept = 0

    def run(self, rows: Iterable[dict], sink: Sink) -> list[StepStats]:
        bar = self._bar()
        try:
            for batch in _batches(rows, self.batch_size):
                self.run_batch(batch, sink)
                if bar is not None:
                    bar.update(len(batch))
                    bar.set_postfix(kept=self.rows_kept, refresh=False)
        finally:
            if bar is not None:
                bar.close()
        return self.stats

    def run_batch(self, rows: list[dict], sink: Sink) -> None:
        self.rows_in += len(rows)
        frame = apply_steps(to_frame(rows), rows, self.steps, self.stats, sink)
        kept = _with_annotations(frame, rows)
        self.rows_kept += len(kept)
        sink.kept(kept)

    def run_parallel(self, reader, sink: Sink, *, workers: int) -> list[StepStats]:
        """Like `run`, with decoding, the leading stateless steps and every `prepare` in worker processes.

        Batches come back in input order, so stateful steps decide exactly as in one process.
        """
        import concurrent.futures as cf
        import multiprocessing as mp

        k = next((i for i, s in enumerate(self.steps) if not s.stateless), len(self.steps))
        head, tail = self.steps[:k], self.steps[k:]
        batches = _batches(reader.lines(), self.batch_size)
        first = next(batches, None)
        if first is None:
            return self.stats
        second = next(batches, None)
        if second is None or workers < 2:  # one batch (or no pool wanted): not worth starting processes
            for batch in (first, second, *batches):
                if batch is not None:
                    self._run_here(batch, reader, sink)
            return self.stats
        bar = self._bar()
        ctx = mp.get_context("spawn")  # never fork a process that has started Polars' thread pool
        # The processes are the parallelism: one Polars thread each, or they fight over the cores.
        # Spawned workers read the variable at start-up (they start lazily, so it stays set meanwhile).
        saved = os.environ.get("POLARS_MAX_THREADS")
        os.environ.setdefault("POLARS_MAX_THREADS", "1")
        try:
            self._run_pool(cf, ctx, workers, reader, head, tail, first, second, batches, sink, bar)
        finally:
            if saved is None:
                os.environ.pop("POLARS_MAX_THREADS", None)
        if bar is not None:
            bar.close()
        return self.stats

    def _run_here(self, batch: list, reader, sink: Sink) -> None:
        """One batch of raw lines decoded, id-checked and run through every step in this process."""
        rows, invalid = reader.decode_batch(batch)
        reader.invalid.extend(invalid)
        self.run_batch(rows, sink)

    def _run_pool(self, cf, ctx, workers, reader, head, tail, first, second, batches, sink, bar) -> None:
        # Workers get a reader without state: ids are checked here, in input order, when a batch comes back.
        blank = dataclasses.replace(reader, invalid=[], count=0, ids=IdRegistry(), fingerprints=[])
        with cf.ProcessPoolExecutor(
            workers,
            mp_context=ctx,
            initializer=_worker_init,
            initargs=(blank, head, tail, os.getpid()),
        ) as pool:
            pending = []
            for batch in _chain([first, second], batches):
                pending.append((batch, pool.submit(_worker_run, batch)))
                while len(pending) > workers:  # bounded: results wait in memory
                    self._merge(*pending.pop(0), head, tail, sink, reader, bar)
            for batch, fut in pending:
                self._merge(batch, fut, head, tail, sink, reader, bar)

    def _merge(self, batch, fut, head, tail, sink, reader, bar) -> None:
        rows, prepared, rejected, edits, invalid, head_stats, n_in, keys = fut.result()
        if not reader.ids.admits_all(keys):
            # A duplicate id (rare): the batch again, here, where the check turns the later row invalid
            # before any step sees it; the worker's results are dropped.
            self._run_here(batch, reader, sink)
            if bar is not None:
                bar.update(n_in)
            return
        reader.invalid.extend(invalid)
        self.rows_in += n_in
        for mine, theirs in zip(self.stats, head_stats, strict=False):
            mine.rows_in += theirs.rows_in
            mine.dropped += theirs.dropped
            mine.edited_rows += theirs.edited_rows
            mine.seconds += theirs.seconds
            mine.reasons.update(theirs.reasons)
        if rejected:
            sink.rejected(rejected)
        if edits:
            sink.edits(edits)
        if rows:
            frame = to_frame(rows)
            if prepared is not None and prepared.width:
                frame = frame.hstack(prepared)
            frame = apply_steps(frame, rows, tail, self.stats[len(head) :], sink)
            kept = _with_annotations(frame, rows)
            self.rows_kept += len(kept)
            sink.kept(kept)
        if bar is not None:
            bar.update(n_in)
            bar.set_postfix(kept=self.rows_kept, refresh=False)

    def _bar(self):
        if not self.progress:
            return None
        from tqdm import tqdm

        return tqdm(unit=" rows", unit_scale=True, file=sys.stderr, dynamic_ncols=True, desc="curate")


def apply_steps(frame, rows, steps, stats, sink) -> pl.DataFrame:
    """Apply `steps` to one batch; the only place rows are dropped. Returns the surviving frame."""
    for step, st in zip(steps, stats, strict=True):
        if frame.height == 0:
            break
        st.rows_in += frame.height
        t0 = time.perf_counter()
        if step.kind == "filter":
            frame = _apply_filter(step, st, frame, rows, sink)
        elif step.kind == "editor":
            new = step.edit(frame)
            _check_height(step, frame, new)
            frame = _apply_edits(step, st, frame, new, rows, sink)
        elif step.kind == "filter-editor":
            frame = _apply_review(step, st, frame, rows, sink)
        elif step.kind == "annotator":
            out = step.annotate(frame)
            _check_height(step, frame, out)
            frame = out
        else:
            raise StepError(f"step {step.name!r} has unknown kind {step.kind!r}")
        st.seconds += time.perf_counter() - t0
    return frame


def _apply_filter(step, st, frame, rows, sink) -> pl.DataFrame:
    return _drop(step, st, frame, step.verdict(frame), rows, sink)


def _apply_review(step, st, frame, rows, sink) -> pl.DataFrame:
    """A filter-editor: drop as its verdict says, then record and keep the edits of the surviving rows."""
    out = step.review(frame)
    if not (isinstance(out, tuple) and len(out) == 2):
        raise StepError(f"step {step.name!r}: review must return (verdict, edited frame)")
    v, new = out
    _check_height(step, frame, new)
    kept = _drop(step, st, frame, v, rows, sink)
    if kept.height < frame.height:
        new = new.filter(v["reason"].is_null())
    return _apply_edits(step, st, kept, new, rows, sink)


def _drop(step, st, frame, v, rows, sink) -> pl.DataFrame:
    _check_height(step, frame, v)
    if "reason" not in v.columns:
        raise StepError(f"step {step.name!r}: verdict has no 'reason' column")
    drop = v["reason"].is_not_null()
    n_drop = int(drop.sum())
    if n_drop == 0:
        return frame
    detail = v["detail"] if "detail" in v.columns else pl.Series([None] * v.height, dtype=pl.String)
    gone = frame.filter(drop)
    out = []
    for ann, reason, det in zip(
        _with_annotations(gone, rows), v["reason"].filter(drop), detail.filter(drop), strict=True
    ):
        out.append(rejected_row(ann, reason, det, step=step.name))
        st.reasons[reason] += 1
    st.dropped += n_drop
    sink.rejected(out)
    return frame.filter(~drop)


def _apply_edits(step, st, frame, new, rows, sink) -> pl.DataFrame:
    if not new["_i"].equals(frame["_i"]):
        raise StepError(f"step {step.name!r}: an editor must keep row order")
    records = []
    edited = set()
    for fld in step.fields:
        if fld not in frame.columns:
            continue
        changed = (new[fld] != frame[fld]).fill_null(True) & ~(new[fld].is_null() & frame[fld].is_null())
        if not changed.any():
            continue
        for i, before, after in zip(
            frame["_i"].filter(changed).to_list(),
            frame[fld].filter(changed).to_list(),
            new[fld].filter(changed).to_list(),
            strict=True,
        ):
            row = rows[i]
            for path, b, a in _write_back(row, fld, before or [], after or []):
                records.append({"id": row["id"], "step": step.name, "field": path, "before": b, "after": a})
                edited.add(i)
    st.edited_rows += len(edited)
    if records:
        sink.edits(records)
    return new


def _write_back(row: dict, fld: str, before: list[dict], after: list[dict]) -> Iterator[tuple[str, str, str]]:
    """Apply changed turn contents of a frame column to the row dict; yield (path, before, after)."""
    if len(before) != len(after):
        raise StepError(f"an editor changed the number of turns in '{fld}' of row {row['id']}")
    messages, rejected = turn_fields(row)
    targets = [
        (name, j, m)
        for name, msgs in (rejected if fld == "rejected" else messages)
        for j, m in enumerate(msgs)
    ]
    for (name, j, msg), b, a in zip(targets, before, after, strict=True):
        if b["content"] != a["content"]:
            if name == "text":
                row["text"] = a["content"]
            else:
                msg["content"] = a["content"]
            yield turn_path(name, j), b["content"], a["content"]


def _check_height(step, frame, out) -> None:
    if not isinstance(out, pl.DataFrame):
        raise StepError(f"step {step.name!r} returned {type(out).__name__}, expected a polars DataFrame")
    if out.height != frame.height:
        raise StepError(f"step {step.name!r} returned {out.height} rows for {frame.height}")


def _with_annotations(frame: pl.DataFrame, rows: list[dict]) -> list[dict]:
    extra = [c for c in frame.columns if c not in BASE_COLUMNS and not c.startswith("_")]
    idx = frame["_i"].to_list()
    if not extra:
        return [public(rows[i]) for i in idx]
    values = frame.select(extra).to_dicts()
    return [{**public(rows[i]), **v} for i, v in zip(idx, values, strict=True)]


def _batches(rows: Iterable[dict], size: int) -> Iterator[list[dict]]:
    batch = []
    for r in rows:
        batch.append(r)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _chain(first: list, rest: Iterator) -> Iterator:
    for item in first:
        if item is not None:
            yield item
    yield from rest


# --- worker processes -------------------------------------------------------------------------------
_WORKER: dict = {}


def _worker_init(reader, head: list[Step], tail: list[Step], parent: int) -> None:
    die_with_parent(parent)
    _WORKER.update(reader=reader, head=head, tail=tail)


def die_with_parent(parent: int) -> None:
    """Have the kernel kill this process when `parent` dies (Linux's PR_SET_PDEATHSIG), so that a `kill -9`
    of the command leaves no worker behind; if the parent is already gone, exit now."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
    if os.getppid() != parent:
        os._exit(1)


def _worker_run(batch: list):
    """Decode a batch, run the stateless head steps and the tail's `prepare`; return what the main needs."""
    reader, head, tail = _WORKER["reader"], _WORKER["head"], _WORKER["tail"]
    rows, invalid = reader.decode_batch(batch, check_ids=False)
    keys = [id_key(r) for r in rows]
    sink = MemorySink()
    stats = [StepStats(s.name, s.kind) for s in head]
    frame = apply_steps(to_frame(rows), rows, head, stats, sink) if rows else None
    kept_rows, prepared = [], None
    if frame is not None and frame.height:
        idx = frame["_i"].to_list()
        extra = [c for c in frame.columns if c not in BASE_COLUMNS]
        # Keep annotations of the head steps on the rows themselves; renumber for the main process.
        kept_rows = (
            [{**rows[i], **v} for i, v in zip(idx, frame.select(extra).to_dicts(), strict=True)]
            if extra
            else [rows[i] for i in idx]
        )
        frame = frame.with_columns(_i=pl.int_range(frame.height, dtype=pl.UInt32))
        for step in tail:
            frame = step.prepare(frame)
        # The tail sees what it would in one process: the head's annotations and its own prepared columns.
        prepared = frame.select([c for c in frame.columns if c not in BASE_COLUMNS])
    return kept_rows, prepared, sink.rejected_rows, sink.edit_records, invalid, stats, len(batch), keys

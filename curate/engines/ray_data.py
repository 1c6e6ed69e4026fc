"""The Ray Data engine: ``curate filter --engine ray [--ray-address HOST:PORT]``.

The same step objects as the local engine, the same run directory, byte for byte: kept, rejected, edited
and invalid rows, in the same order, with the same `reject_detail`. Without ``--ray-address`` a local Ray
instance starts and stops with the command; with it, the command joins that cluster and leaves it running.

How a run goes:

1. The driver reads the input lines with the local reader (every format, stdin, run directories) and puts
   them into the object store in blocks of ``--batch-size`` lines, each line numbered in input order
   (`_seq`). Everything after that runs on the cluster: decoding, validation and every step. Rows never
   leave their block; only keys and signatures are shuffled. Ids are checked first, as the local reader
   checks them: (line, id, content) hashes are grouped by id across the cluster, each group is decided in
   line order, and the first stage makes the lines whose id an earlier line has with other content
   invalid rows (one more map and shuffle of 24 bytes a row).
2. Steps that decide each row on its own (quality, selfid, language, pii, toxicity, ...) map over the
   blocks: each block becomes a Polars frame (from Arrow, without copying) and goes through the local
   runner's `apply_steps`. Consecutive such steps run in one task, with one copy of each step per worker
   process (a model loads once per process); a step whose ``device`` asks for CUDA (Detoxify, hf
   classifiers) runs in an actor pool of its own, one GPU per actor. Annotations stay columns for every
   later step, as within one local batch.
3. Exact and near dedup are distributed operations, decided by the local steps themselves:

   - exact: xxh3 keys are computed per block; (line number, id, key) triples are grouped by key across
     the cluster (`groupby` on a hash of the key); each group goes, in input order, through a fresh
     `ExactDedupFilter`: the first occurrence wins and the detail names it, as locally.
   - near: MinHash signatures and LSH band keys are computed per block (same 128 permutations, bands,
     seed); (band key, line number) pairs are grouped by key across the cluster; each bucket shared by
     several rows gives candidate edges; the connected components of that graph are found on the driver
     (vectorized label propagation over the edges, which exist only for rows sharing a band with another
     row); whole components are grouped onto partitions, and each partition goes, in input order,
     through a fresh `NearDedupFilter`. Rows alone in all their buckets are kept and shipped nowhere.

   The rule is the local one, exactly: a row is dropped when it is a near duplicate of an *earlier kept*
   row, and the detail names that row and the exact Jaccard of their shingle sets (carried with the
   signatures to the partition). Chains stay chains: A~B, B~C, A!~C keeps A and C and drops B. It is identical because
   a row's candidates are the rows sharing a band with it, always in its own component, and components
   do not interact, so they are decided in parallel. "Keep one row per component", the usual
   distributed shortcut, would drop C, which duplicates nothing that is kept: a silent loss, and a
   `reject_detail` that could name no kept row at the threshold. So both engines keep the local rule.

   The verdicts (dropped rows only: line number, reason, detail) are joined back onto the blocks as a
   broadcast join; the next steps see only the rows that survived, as locally.
4. The driver streams the blocks back in input order and writes the run directory with the local ledger:
   kept rows as they come, ledger rows in the local runner's order (batch, step, row). The directory is
   built under a hidden name and renamed at the end.

Failures: Ray Data retries a task whose worker died (and restarts a dead actor); rows never move between
blocks, so a retry cannot reorder them. A step that raises stops the run with its own error, and no run
directory is left, complete or absent.

Limits, stated: the driver reads the raw lines (no parsing) and writes the outputs, as the local engine
does; near-dedup's candidate graph (16 bytes per edge, only rows with a shared band) and the dropped
rows' verdicts are held on the driver. Steps that keep other state across rows have no distributed form:
they are refused with a message, never run per block.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import sys
import time
import uuid

import numpy as np
import orjson
import polars as pl

from curate.engines import EngineError
from curate.filters.dedup import ExactDedupFilter, NearDedupFilter, band_probability
from curate.io import RawLine, dumps
from curate.pipeline import (
    BASE_COLUMNS,
    FRAME_SCHEMA,
    MSG,
    Filter,
    MemorySink,
    Sink,
    Step,
    StepStats,
    _with_annotations,
    apply_steps,
    to_frame,
)
from curate.schema import (
    InvalidRow,
    Reader,
    RowError,
    decode,
    duplicate_id_error,
    id_key,
    normalize,
    public,
)

# What a record in a block is (`_out`): a row still in play, or one line of an output file.
ROW, KEPT, REJECTED, EDIT, INVALID, STATS = range(6)
RECORD_SCHEMA = {
    "_out": pl.Int8,
    "_seq": pl.UInt64,
    "_step": pl.Int32,
    "_field": pl.Int32,
    "_k": pl.UInt32,
    "_json": pl.Binary,
}
ROW_SCHEMA = {
    "_row": pl.Binary,
    "id": pl.String,
    "kind": pl.String,
    "messages": pl.List(MSG),
    "rejected": pl.List(MSG),
    "tools": pl.List(pl.String),
}
RAW_SCHEMA = {"_seq": pl.UInt64, "_src": pl.Int32, "_line": pl.Int64, "_data": pl.Binary, "_obj": pl.Boolean}

# Steps the local runner keeps in its main process for one model copy, though each row is decided on its
# own: here they map over blocks like any per-row step, on a GPU when their `device` asks for one.
MODEL_STEPS = frozenset({"toxicity"})
# Rows per shuffle partition at most; partitions are at least the cluster's CPUs.
PARTITION_ROWS = 500_000


def require_ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise EngineError("--engine ray needs Ray Data: pip install 'posttrain[ray]'") from None
    return ray


@contextlib.contextmanager
def ray_session(address: str | None, *, progress: bool):
    """Join `address`, or start a local Ray instance for the duration; an instance already initialized
    in this process (a notebook, the tests) is used as it is and left running."""
    ray = require_ray()
    from ray.data.context import ShuffleStrategy

    ctx = ray.data.DataContext.get_current()
    saved = (
        ctx.enable_progress_bars,
        ctx.execution_options.preserve_order,
        ctx.shuffle_strategy,
        ctx.raise_original_map_exception,
    )
    data_log = logging.getLogger("ray.data")
    saved_level = data_log.level
    started = False
    try:
        if not ray.is_initialized():
            # Ray's usage statistics would phone home; a data tool should not.
            os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
            # One Polars thread per task: the tasks are the parallelism (as the local worker processes).
            opts = {
                "logging_level": logging.WARNING if progress else logging.ERROR,
                "runtime_env": {"env_vars": {"POLARS_MAX_THREADS": "1"}},
            }
            if address is None:
                opts["include_dashboard"] = False
            _check_reachable(address)
            try:
                ray.init(address=address, **opts)
            except (ConnectionError, RuntimeError, ValueError) as e:
                where = f"join the Ray cluster at {address}" if address else "start a local Ray instance"
                raise EngineError(f"cannot {where}: {e}") from None
            started = True
        info = {
            "address": address
            or (
                "local instance, started for the run"
                if started
                else "the Ray instance this process had already started"
            )
        }
        ctx.enable_progress_bars = progress
        # Blocks come back in input order: rows never move between blocks, so output order needs no sort.
        ctx.execution_options.preserve_order = True
        # The groupbys move keys and signatures only. The task-based sort shuffle starts nothing; the hash
        # shuffle starts aggregator actors for every groupby (ten times slower on small jobs).
        ctx.shuffle_strategy = ShuffleStrategy.SORT_SHUFFLE_PULL_BASED
        ctx.raise_original_map_exception = (
            True  # a step's own error, not "UDF failed to process a data block"
        )
        data_log.setLevel(logging.WARNING if progress else logging.ERROR)
        yield ray, info
    finally:
        (
            ctx.enable_progress_bars,
            ctx.execution_options.preserve_order,
            ctx.shuffle_strategy,
            ctx.raise_original_map_exception,
        ) = saved
        data_log.setLevel(saved_level)
        if started:
            ray.shutdown()


def _check_reachable(address: str | None, timeout: float = 10.0) -> None:
    """A HOST:PORT that nothing answers on fails now: Ray itself would keep retrying for minutes."""
    if not address or "://" in address or address == "auto" or ":" not in address:
        return
    import socket

    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except (OSError, ValueError) as e:
        raise EngineError(
            f"no Ray cluster answers at {address} ({e}); start one with `ray start --head`, "
            f"or leave out --ray-address for a local instance"
        ) from None


# --- on the workers: one block through a run of steps ---------------------------------------------------
class _Decided(Filter):
    """A stateful step's verdicts, resolved across the cluster, looked up by line number (`_seq`)."""

    def __init__(self, name: str, rejects: pl.DataFrame):
        self.name = name  # type: ignore[misc]
        self.rejects = rejects  # _seq, reason, detail: the dropped rows only

    def verdict(self, frame: pl.DataFrame) -> pl.DataFrame:
        return (
            frame.select("_seq")
            .join(self.rejects, on="_seq", how="left", maintain_order="left")
            .select("reason", "detail")
        )


class _LazyRows:
    """Row dicts decoded from a block's `_row` JSON only when a step's ledger or write-back needs them."""

    def __init__(self, payload: pl.Series, kinds: pl.Series):
        self.payload = payload
        self.kinds = kinds
        self.cache: dict[int, dict] = {}

    def __getitem__(self, i: int) -> dict:
        row = self.cache.get(i)
        if row is None:
            row = self.cache[i] = {**orjson.loads(self.payload[i]), "_kind": self.kinds[i]}
        return row


@dataclasses.dataclass
class StageSpec:
    token: str  # names this stage's step copies in a worker process
    steps: list  # [(step index, step)]
    batch_size: int
    reader: Reader | None = None  # the first stage decodes raw lines
    sources: list = dataclasses.field(default_factory=list)
    duplicates: np.ndarray | None = None  # the first stage: sorted line numbers of rows with a duplicate id
    prepare: list = dataclasses.field(default_factory=list)  # stateful steps right after this stage
    final: bool = False  # the last stage: surviving rows become kept records


_COPIES: dict[str, tuple[str, list, list]] = {}


class BlockRunner:
    """Runs one block through a stage's steps; a callable for tasks, or an actor class for GPU stages."""

    def __init__(self, spec: StageSpec):
        self.spec = spec

    def _copy(self):
        # One copy of the steps per worker process and stage, so a model loads once per process.
        if self.spec.token not in _COPIES:
            while len(_COPIES) >= 16:  # stages of earlier runs in a long-lived worker
                _COPIES.pop(next(iter(_COPIES)))
            _COPIES[self.spec.token] = (uuid.uuid4().hex, self.spec.steps, [0])
        return _COPIES[self.spec.token]

    def __call__(self, table):
        spec = self.spec
        copy_id, steps, calls = self._copy()
        calls[0] += 1
        block = pl.from_arrow(table)
        out = _Records()
        if spec.reader is not None:
            carried = None
            rows, seqs = self._decode(block, out)
            frame = to_frame(rows).with_columns(_seq=pl.Series(seqs, dtype=pl.UInt64))
            payload = None
        else:
            carried = block.filter(pl.col("_out") != ROW).select(list(RECORD_SCHEMA))
            live = (
                block.filter(pl.col("_out") == ROW)
                if "_row" in block.columns
                else pl.DataFrame(schema={**RECORD_SCHEMA, **ROW_SCHEMA})
            )
            rows = _LazyRows(live["_row"], live["kind"])
            payload = live["_row"]
            # Annotations stay columns for the steps that follow, as in one local batch. Columns an earlier
            # stateful step prepared are spent: that step has decided.
            notes = [
                c
                for c in live.columns
                if c not in RECORD_SCHEMA and c not in ROW_SCHEMA and not c.startswith("_")
            ]
            frame = live.with_columns(_i=pl.int_range(live.height, dtype=pl.UInt32)).select(
                [*FRAME_SCHEMA, "_seq", *notes]
            )
        stats = {i: StepStats(s.name, s.kind) for i, s in steps}
        sink = MemorySink()
        changed = False
        for i, step in steps:
            before = frame
            n_rejected, n_edits = len(sink.rejected_rows), len(sink.edit_records)
            frame = apply_steps(frame, rows, [step], [stats[i]], sink)
            if len(sink.rejected_rows) > n_rejected:
                gone = before["_seq"].to_numpy()[~np.isin(before["_i"].to_numpy(), frame["_i"].to_numpy())]
                for seq, row in zip(gone, sink.rejected_rows[n_rejected:], strict=True):
                    out.add(REJECTED, int(seq), i, 0, dumps(row))
            if len(sink.edit_records) > n_edits:
                changed = True
                for (f, seq), rec in zip(
                    _edit_owners(step, before, frame), sink.edit_records[n_edits:], strict=True
                ):
                    out.add(EDIT, seq, i, f, dumps(rec))
        notes = [c for c in frame.columns if c not in BASE_COLUMNS and not c.startswith("_")]
        idx = frame["_i"].to_list()
        if spec.final and notes:  # a kept row with its annotations, as the local runner writes it
            body = [dumps(r) for r in _with_annotations(frame, rows)]
        elif payload is None:
            body = [dumps(public(rows[i])) for i in idx]
        else:
            body = payload.gather(idx).to_list() if idx else []
            if changed:  # rows an editor wrote back to
                body = [
                    dumps(public(rows.cache[i])) if i in rows.cache else b
                    for i, b in zip(idx, body, strict=True)
                ]
        if spec.final:
            for seq, b in zip(frame["_seq"].to_list(), body, strict=True):
                out.add(KEPT, seq, 0, 0, b)
            kept = None
        else:
            for step in spec.prepare:  # their per-row work (keys, signatures), as the local workers do
                frame = step.prepare(frame)
            prepared = [c for c in frame.columns if c.startswith("_") and c not in ("_i", "_seq")]
            kept = frame.select(
                pl.lit(ROW, dtype=pl.Int8).alias("_out"),
                "_seq",
                pl.Series("_row", body, dtype=pl.Binary),
                *list(ROW_SCHEMA)[1:],
                *notes,
                *prepared,
            )
        summaries = {i: [copy_id, calls[0], s.summary()] for i, s in steps if not isinstance(s, _Decided)}
        out.add(
            STATS,
            0,
            -1,
            0,
            orjson.dumps(
                {"steps": {i: _stats_dict(st) for i, st in stats.items()}, "copies": summaries},
                default=str,
                option=orjson.OPT_NON_STR_KEYS,
            ),
        )
        # The rows part stays when empty: every block of a stage has the same columns.
        parts = [p for p in (carried, out.frame(), kept) if p is not None and (p.height or p is kept)]
        # In line order, so that a block Ray splits by size comes back as consecutive ranges of lines.
        result = pl.concat(parts, how="diagonal").sort("_seq", maintain_order=True)
        return result.to_arrow(compat_level=pl.CompatLevel.oldest())

    def _decode(self, block: pl.DataFrame, out: _Records) -> tuple[list[dict], list[int]]:
        import pickle

        spec = self.spec
        rows, seqs = [], []
        for seq, src, line, data, obj in block.select(list(RAW_SCHEMA)).iter_rows():
            rec = RawLine(spec.sources[src], line, pickle.loads(data) if obj else data)
            good, bad = spec.reader.decode_batch([rec], check_ids=False)  # raises with --on-error fail
            if good and _contains(spec.duplicates, seq):
                bad = [spec.reader.set_aside(rec, duplicate_id_error(good[0]["id"]))]
                good = []
            if good:
                rows.append(good[0])
                seqs.append(seq)
            for b in bad:
                out.add(INVALID, seq, -1, 0, orjson.dumps(b.as_record()))
        return rows, seqs


def _contains(sorted_values: np.ndarray | None, value: int) -> bool:
    if sorted_values is None or not len(sorted_values):
        return False
    i = np.searchsorted(sorted_values, value)
    return bool(i < len(sorted_values) and sorted_values[i] == value)


def _stats_dict(st: StepStats) -> dict:
    return {
        "in": st.rows_in,
        "dropped": st.dropped,
        "edited": st.edited_rows,
        "seconds": st.seconds,
        "reasons": dict(st.reasons),
    }


def _edit_owners(step: Step, before: pl.DataFrame, after: pl.DataFrame) -> list[tuple[int, int]]:
    """(field index, line number) of each edit record `apply_steps` made, in its order: fields, rows, turns.

    A filter-editor's edits are those of the rows it kept: `before` is compared on those rows only.
    """
    if before.height != after.height:
        before = before.filter(before["_i"].is_in(after["_i"].implode()))
    owners = []
    for f, fld in enumerate(step.fields):
        if fld not in before.columns:
            continue
        changed = (after[fld] != before[fld]).fill_null(True) & ~(
            after[fld].is_null() & before[fld].is_null()
        )
        if not changed.any():
            continue
        for seq, b, a in zip(
            before["_seq"].filter(changed).to_list(),
            before[fld].filter(changed).to_list(),
            after[fld].filter(changed).to_list(),
            strict=True,
        ):
            n = sum(x["content"] != y["content"] for x, y in zip(b or [], a or [], strict=False))
            owners.extend([(f, seq)] * n)
    return owners


class _Records:
    def __init__(self):
        self.cols: dict[str, list] = {k: [] for k in RECORD_SCHEMA}

    def add(self, out: int, seq: int, step: int, field: int, data: bytes) -> None:
        c = self.cols
        c["_out"].append(out)
        c["_seq"].append(seq)
        c["_step"].append(step)
        c["_field"].append(field)
        c["_k"].append(len(c["_k"]))
        c["_json"].append(data)

    def frame(self) -> pl.DataFrame:
        return pl.DataFrame(self.cols, schema=RECORD_SCHEMA)


# --- on the workers: the duplicate-id check ---------------------------------------------------------------
class _IdKeys:
    """Each valid row's line number and `id_key`, partitioned by id, for the duplicate-id check."""

    def __init__(self, reader: Reader, sources: list, partitions: int):
        self.reader, self.sources, self.partitions = reader, sources, partitions

    def __call__(self, table):
        import pickle

        import pyarrow as pa

        seqs, ids, contents = [], [], []
        for seq, src, line, data, obj in pl.from_arrow(table).select(list(RAW_SCHEMA)).iter_rows():
            rec = RawLine(self.sources[src], line, pickle.loads(data) if obj else data)
            try:
                row = normalize(
                    decode(rec, max_row_bytes=self.reader.max_row_bytes),
                    input_format=self.reader.input_format,
                )
            except RowError:  # an invalid line, which the first stage reports
                continue
            i, c = id_key(row)
            seqs.append(seq)
            ids.append(i)
            contents.append(c)
        ids = np.array(ids, np.uint64)
        return pa.table(
            {
                "_seq": pa.array(seqs, pa.uint64()),
                "_id": pa.array(ids),
                "_content": pa.array(np.array(contents, np.uint64)),
                "_part": pa.array(ids % np.uint64(self.partitions)),
            }
        )


def _duplicate_seqs(table):
    """Line numbers of the rows whose id an earlier row has with other content (the local reader's rule)."""
    keys = pl.from_arrow(table).sort("_seq")
    dups = keys.filter(pl.col("_content") != pl.col("_content").first().over("_id"))
    return dups.select(pl.col("_seq").cast(pl.UInt64)).to_arrow(compat_level=pl.CompatLevel.oldest())


# --- on the workers: the distributed forms of the stateful steps -----------------------------------------
class _Columns:
    """The line number, id and a stateful step's prepared column of the rows that reach the step (live
    rows, less those an earlier stateful step of the same stage dropped), with a partition number."""

    def __init__(self, column: str, dtype, partitions: int, dropped: np.ndarray, extra: dict | None = None):
        self.column, self.dtype, self.partitions, self.dropped = column, dtype, partitions, dropped
        self.extra = extra or {}  # more prepared columns the step's verdict reads

    def __call__(self, table):
        block = pl.from_arrow(table)
        schema = {"_seq": pl.UInt64, "id": pl.String, self.column: self.dtype, **self.extra}
        if self.column not in block.columns:
            live = pl.DataFrame(schema=schema)
        else:
            live = block.filter(pl.col("_out") == ROW).select(list(schema))
            if len(self.dropped):
                live = live.filter(~pl.col("_seq").is_in(pl.Series(self.dropped, dtype=pl.UInt64).implode()))
        if self.column == "_exact_key":  # rows with the same key meet in one partition
            head = np.frombuffer(b"".join(live["_exact_key"].to_list()), dtype="<u8")[::2]
            live = live.with_columns(_part=pl.Series(head % np.uint64(self.partitions), dtype=pl.UInt64))
        return live.to_arrow(compat_level=pl.CompatLevel.oldest())


class _BandKeys:
    """One (band key, line number) pair per LSH band of each row, partitioned by key."""

    def __init__(self, step: NearDedupFilter, partitions: int):
        self.step, self.partitions = step, partitions

    def __call__(self, table):
        import pyarrow as pa

        n = table.num_rows
        full = pl.from_arrow(table).get_column("_minhash").to_numpy().reshape(n, self.step.num_perm)
        keys = self.step._band_keys(full).ravel()
        seqs = np.repeat(table["_seq"].to_numpy(), self.step.bands)
        return pa.table({"_part": keys % np.uint64(self.partitions), "_key": keys, "_seq": seqs})


def _bucket_edges(table):
    """Rows sharing a band key, as edges from the key's first row to each other row (a star per bucket)."""
    import pyarrow as pa

    key, seq = table["_key"].to_numpy(), table["_seq"].to_numpy()
    order = np.lexsort((seq, key))
    key, seq = key[order], seq[order]
    start = np.concatenate([[True], key[1:] != key[:-1]])
    first = seq[start][np.cumsum(start) - 1]
    u, v = first[~start], seq[~start]
    if len(u):
        pairs = np.unique(np.stack([u, v], axis=1), axis=0)
        u, v = pairs[:, 0], pairs[:, 1]
    return pa.table({"u": pa.array(u, pa.uint64()), "v": pa.array(v, pa.uint64())})


class _AssignPartition:
    """Keeps the rows that are in a candidate component, tagged with their component's partition."""

    def __init__(self, nodes: np.ndarray, parts: np.ndarray):
        self.nodes, self.parts = nodes, parts

    def __call__(self, table):
        seq = table["_seq"].to_numpy()
        pos = np.minimum(np.searchsorted(self.nodes, seq), max(len(self.nodes) - 1, 0))
        hit = self.nodes[pos] == seq if len(self.nodes) else np.zeros(len(seq), bool)
        import pyarrow as pa

        return table.filter(pa.array(hit)).append_column("_part", pa.array(self.parts[pos[hit]], pa.uint64()))


class _Resolve:
    """A fresh copy of a stateful step decides one partition's rows in input order, batch by batch."""

    def __init__(self, step: Step, batch_size: int):
        self.step, self.batch_size = step, batch_size
        self.__name__ = f"resolve[{step.name}]"  # Ray names the operator after it

    def __call__(self, table):
        rows = pl.from_arrow(table).sort("_seq")
        step = dataclasses.replace(self.step)
        out = []
        for chunk in rows.iter_slices(self.batch_size):
            v = step.verdict(chunk.with_columns(_i=pl.int_range(chunk.height, dtype=pl.UInt32)))
            out.append(
                pl.DataFrame({"_seq": chunk["_seq"], "reason": v["reason"], "detail": v["detail"]}).filter(
                    pl.col("reason").is_not_null()
                )
            )
        result = pl.concat(out) if out else pl.DataFrame(schema=_VERDICT)
        return result.cast(_VERDICT).to_arrow(compat_level=pl.CompatLevel.oldest())


_VERDICT = {"_seq": pl.UInt64, "reason": pl.String, "detail": pl.String}


def components(u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Connected components of the graph with edges (u[k], v[k]): each node and its component's smallest node.

    Label propagation with pointer jumping, vectorized: each round lowers both ends of every edge to the
    smaller label, then follows labels to their own labels.

    >>> components(np.array([5, 7, 9], np.uint64), np.array([7, 8, 10], np.uint64))
    (array([ 5,  7,  8,  9, 10], dtype=uint64), array([5, 5, 5, 9, 9], dtype=uint64))
    """
    nodes, inverse = np.unique(np.concatenate([u, v]), return_inverse=True)
    a, b = inverse[: len(u)], inverse[len(u) :]
    label = np.arange(len(nodes))
    while True:
        low = np.minimum(label[a], label[b])
        new = label.copy()
        np.minimum.at(new, a, low)
        np.minimum.at(new, b, low)
        new = new[new]
        if np.array_equal(new, label):
            return nodes, nodes[label]
        label = new


# --- on the driver ---------------------------------------------------------------------------------------
@dataclasses.dataclass
class _Segment:
    steps: list  # [(index, step)] of per-row steps
    gpus: float = 0.0
    prepare: list = dataclasses.field(default_factory=list)  # [(index, step)]: stateful steps right after it
    final: bool = False


class RayPipeline:
    """`curate.pipeline.Pipeline`'s interface for `run_filter`, on Ray Data.

    >>> from curate.steps import build_steps
    >>> [len(s.steps) for s in RayPipeline(build_steps(["quality", "exact-dedup", "language"]))._plan()]
    [1, 1]
    """

    def __init__(
        self,
        steps: list[Step],
        *,
        batch_size: int = 10_000,
        progress: bool | None = None,
        address: str | None = None,
    ):
        require_ray()
        self.steps = steps
        self.batch_size = batch_size
        self.progress = sys.stderr.isatty() if progress is None else progress
        self.address = address
        self.stats = [StepStats(s.name, s.kind) for s in steps]
        self.info: dict = {}
        self._copies: dict[int, dict[str, tuple[int, dict]]] = {}
        self._dedup_info: dict[int, dict] = {}
        self._plan()  # refuse a pipeline it cannot place before reading anything

    def _plan(self) -> list[_Segment]:
        """The map stages: per-row steps, split where a stateful step (dedup) or the GPU request changes."""
        segments = [_Segment([])]
        for i, step in enumerate(self.steps):
            if isinstance(step, ExactDedupFilter | NearDedupFilter):
                if len(segments) > 1 and not segments[-1].steps and segments[-2].prepare:
                    segments[-2].prepare.append((i, step))  # right after another: decided from the same stage
                else:
                    segments[-1].prepare.append((i, step))
                    segments.append(_Segment([]))
            elif step.stateless or step.name in MODEL_STEPS:
                gpus = _gpus(step)
                if segments[-1].steps and segments[-1].gpus != gpus:
                    segments.append(_Segment([]))
                segments[-1].steps.append((i, step))
                segments[-1].gpus = gpus
            else:
                raise EngineError(
                    f"step {step.name!r} keeps state across rows and has no distributed form; "
                    f"run it with --engine local"
                )
        segments[-1].final = True
        return segments

    def run_parallel(self, reader: Reader, sink: Sink, *, workers: int | None = None) -> list[StepStats]:
        """Run the pipeline over `reader`'s lines into `sink`. `workers` is the local engine's: Ray decides."""
        with ray_session(self.address, progress=self.progress) as (ray, session):
            refs, sources, n = self._read(ray, reader)
            cpus = int(ray.cluster_resources().get("CPU", 1))
            partitions = max(1, cpus, math.ceil(n / PARTITION_ROWS))
            self.info = {
                "name": "ray",
                "ray": ray.__version__,
                **session,
                "cluster": {
                    k: v for k, v in ray.cluster_resources().items() if k in ("CPU", "GPU", "memory")
                },
                "shuffle_partitions": partitions,
            }
            try:
                raw = ray.data.from_arrow_refs(refs)
                duplicates = self._duplicate_ids(raw, reader, sources, partitions)
                ds = self._build(ray, raw, reader, sources, partitions, duplicates)
                self._write(ds, reader, sink)
            except Exception as e:
                user = _user_error(e)
                if user is e:
                    raise
                raise user from None
        return self.stats

    def _read(self, ray, reader: Reader):
        import pickle

        sources: dict[str, int] = {}
        refs, cols, n = [], {k: [] for k in RAW_SCHEMA}, 0

        def put():
            refs.append(
                ray.put(pl.DataFrame(cols, schema=RAW_SCHEMA).to_arrow(compat_level=pl.CompatLevel.oldest()))
            )
            for c in cols.values():
                c.clear()

        for rec in reader.lines():
            obj = not isinstance(rec.data, bytes)  # Parquet rows come decoded
            cols["_seq"].append(n)
            cols["_src"].append(sources.setdefault(rec.source, len(sources)))
            cols["_line"].append(rec.line)
            cols["_data"].append(pickle.dumps(rec.data) if obj else rec.data)
            cols["_obj"].append(obj)
            n += 1
            if len(cols["_seq"]) >= self.batch_size:
                put()
        if cols["_seq"]:
            put()
        return refs, list(sources), n

    def _map(self, ds, spec: StageSpec, gpus: float):
        common = {"batch_format": "pyarrow", "batch_size": None, "zero_copy_batch": True}
        if gpus:
            # One model per actor, one GPU each; as many actors as the cluster has GPUs.
            import ray

            size = max(1, int(ray.cluster_resources().get("GPU", 1) // gpus))
            # Ray wants a batch size with GPUs: the local batch size. Batches may then straddle blocks,
            # which changes nothing: they stay in line order, and the ledger is ordered by line number.
            return ds.map_batches(
                BlockRunner,
                fn_constructor_kwargs={"spec": spec},
                num_gpus=gpus,
                concurrency=size,
                **{**common, "batch_size": self.batch_size},
            )
        return ds.map_batches(BlockRunner(spec), **common)

    def _duplicate_ids(self, raw, reader: Reader, sources: list, partitions: int) -> np.ndarray:
        """Sorted line numbers of the rows with a duplicate id: (line, id, content) keys grouped by id across
        the cluster, each group decided in input order. The first stage turns these rows into invalid ones
        before any step sees them, as the local reader does."""
        keys = raw.map_batches(
            _IdKeys(dataclasses.replace(reader, invalid=[], count=0, fingerprints=[]), sources, partitions),
            batch_format="pyarrow",
            batch_size=None,
        )
        found = _collect(
            keys.groupby("_part", num_partitions=partitions).map_groups(
                _duplicate_seqs, batch_format="pyarrow"
            ),
            schema={"_seq": pl.UInt64},
        )
        return np.sort(found["_seq"].to_numpy())

    def _build(self, ray, ds, reader: Reader, sources: list, partitions: int, duplicates: np.ndarray):
        segments = self._plan()
        worker_reader = dataclasses.replace(reader, invalid=[], count=0, fingerprints=[])
        pending: list = []
        for k, seg in enumerate(segments):
            spec = StageSpec(
                token=uuid.uuid4().hex,
                steps=pending + seg.steps,
                batch_size=self.batch_size,
                reader=worker_reader if k == 0 else None,
                sources=sources if k == 0 else [],
                duplicates=duplicates if k == 0 else None,
                prepare=[step for _, step in seg.prepare],
                final=seg.final,
            )
            ds = self._map(ds, spec, seg.gpus)
            pending = []
            if seg.prepare:
                ds = ds.materialize()  # read twice: for the steps' keys, and by the next stage
                dropped = np.empty(0, np.uint64)
                for i, step in seg.prepare:  # each sees the rows the previous ones kept
                    t0 = time.perf_counter()
                    rejects = self._resolve(ds, step, i, partitions, dropped)
                    self.stats[i].seconds += time.perf_counter() - t0
                    pending.append((i, _Decided(step.name, rejects)))
                    dropped = np.union1d(dropped, rejects["_seq"].to_numpy()).astype(np.uint64)
        return ds

    def _resolve(self, ds, step: Step, i: int, partitions: int, dropped: np.ndarray) -> pl.DataFrame:
        """The rows a stateful step drops over the whole dataset (line number, reason, detail), given the
        rows stateful steps before it in the same stage dropped."""
        resolve = _Resolve(step, self.batch_size)
        if isinstance(step, ExactDedupFilter):
            keys = ds.map_batches(
                _Columns("_exact_key", pl.Binary, partitions, dropped),
                batch_format="pyarrow",
                batch_size=None,
            )
            rejects = _collect(
                keys.groupby("_part", num_partitions=partitions).map_groups(resolve, batch_format="pyarrow")
            )
            self._dedup_info[i] = {}
            return rejects
        sigs = ds.map_batches(
            _Columns(
                "_minhash",
                pl.Array(pl.UInt32, step.num_perm),
                partitions,
                dropped,
                extra={"_shingles": pl.Binary},
            ),
            batch_format="pyarrow",
            batch_size=None,
        ).materialize()
        bands = sigs.map_batches(_BandKeys(step, partitions), batch_format="pyarrow", batch_size=None)
        edges = _collect(
            bands.groupby("_part", num_partitions=partitions).map_groups(
                _bucket_edges, batch_format="pyarrow"
            ),
            schema={"u": pl.UInt64, "v": pl.UInt64},
        )
        nodes, labels = components(edges["u"].to_numpy(), edges["v"].to_numpy())
        self._dedup_info[i] = {
            "candidate_edges": edges.height,
            "rows_in_clusters": len(nodes),
            "clusters": len(np.unique(labels)),
        }
        if not len(nodes):
            return pl.DataFrame(schema=_VERDICT)
        members = sigs.map_batches(
            _AssignPartition(nodes, labels % np.uint64(partitions)), batch_format="pyarrow", batch_size=None
        )
        return _collect(
            members.groupby("_part", num_partitions=partitions).map_groups(resolve, batch_format="pyarrow")
        )

    def _write(self, ds, reader: Reader, sink: Sink) -> None:
        """Stream the blocks back in input order: kept rows at once, ledger rows ordered per batch as the
        local runner writes them (batch, step, field, row, then the order the step produced them)."""
        raw = type(sink).__name__ == "RunLedger"  # it writes pre-serialized rows as they are
        encode = orjson.Fragment if raw else orjson.loads
        pending: list[pl.DataFrame] = []
        flushed = 0  # batches before this one are written
        last_kept = -1
        bs = self.batch_size

        def flush(upto: int | None):
            nonlocal pending, flushed
            if not pending:
                return
            buf = pl.concat(pending).with_columns(_batch=pl.col("_seq") // bs)
            ready = buf if upto is None else buf.filter(pl.col("_batch") < upto)
            pending = [] if upto is None else [buf.filter(pl.col("_batch") >= upto).drop("_batch")]
            if ready.height and ready["_batch"].min() < flushed:
                raise AssertionError("ray engine: ledger rows arrived after their batch was written")
            ready = ready.sort("_batch", "_step", "_field", "_seq", "_k")
            for out, put in ((REJECTED, sink.rejected), (EDIT, sink.edits)):
                part = ready.filter(pl.col("_out") == out)["_json"].to_list()
                if part:
                    put([encode(b) for b in part])
            for b in ready.filter(pl.col("_out") == INVALID).sort("_seq")["_json"].to_list():
                reader.invalid.append(InvalidRow(**orjson.loads(b)))
            if upto is not None:
                flushed = max(flushed, upto)

        for table in ds.iter_batches(batch_size=None, batch_format="pyarrow", prefetch_batches=2):
            block = pl.from_arrow(table)
            for rec in block.filter(pl.col("_out") == STATS)["_json"].to_list():
                self._add_stats(orjson.loads(rec))
            lines = block.filter(pl.col("_out") != STATS)
            if lines.height:
                flush(int(lines["_seq"].min()) // bs)
            kept = lines.filter(pl.col("_out") == KEPT)
            if kept.height:
                seqs = kept["_seq"].to_numpy()
                if seqs[0] <= last_kept or (len(seqs) > 1 and (np.diff(seqs.astype(np.int64)) <= 0).any()):
                    raise AssertionError("ray engine: kept rows out of input order")
                last_kept = int(seqs[-1])
                sink.kept([encode(b) for b in kept["_json"].to_list()])
            ledger = lines.filter(pl.col("_out").is_in([REJECTED, EDIT, INVALID]))
            if ledger.height:
                pending.append(ledger)
        flush(None)

    def _add_stats(self, rec: dict) -> None:
        for i, d in rec["steps"].items():
            st = self.stats[int(i)]
            st.rows_in += d["in"]
            st.dropped += d["dropped"]
            st.edited_rows += d["edited"]
            st.seconds += d["seconds"]
            st.reasons.update(d["reasons"])
        for i, (copy_id, calls, summary) in rec["copies"].items():
            seen = self._copies.setdefault(int(i), {})
            if copy_id not in seen or seen[copy_id][0] < calls:
                seen[copy_id] = (calls, summary)

    def summaries(self) -> list[dict]:
        """Each step's summary for the manifest, as the local engine reports it."""
        out = []
        for i, step in enumerate(self.steps):
            st = self.stats[i]
            if isinstance(step, ExactDedupFilter):
                out.append({"distinct": st.rows_in - st.dropped, **self._dedup_info.get(i, {})})
            elif isinstance(step, NearDedupFilter):
                out.append(
                    {
                        "kept_rows_indexed": st.rows_in - st.dropped,
                        **self._dedup_info.get(i, {}),
                        "recall_at_threshold": round(
                            band_probability(step.threshold, step.bands, step.rows), 4
                        ),
                    }
                )
            else:
                copies = [s for _, s in self._copies.get(i, {}).values()]
                out.append(merge_summaries(step.summary(), copies))
        return out


def merge_summaries(base: dict, copies: list[dict]) -> dict:
    """One summary from the summaries of a step's copies on the workers.

    Numbers are counters relative to a fresh step's summary (`base`): what each copy added is summed, so
    a setting that no copy changed (a threshold, the size of a rule set) stays as it is. Other values are
    taken from the first copy that has them.

    >>> merge_summaries({"checked": 12, "uncertain": 0}, [{"checked": 12, "uncertain": 2}, {"checked": 12, "uncertain": 3}])
    {'checked': 12, 'uncertain': 5}
    """
    out = dict(base)
    for key in dict.fromkeys([*base, *(k for c in copies for k in c)]):
        values = [c[key] for c in copies if key in c]
        if not values:
            continue
        start = base.get(key)
        if all(_is_number(v) for v in values) and (start is None or _is_number(start)):
            zero = start or 0
            out[key] = zero + sum(v - zero for v in values)
        elif all(isinstance(v, dict) for v in values) and isinstance(start, dict | None):
            out[key] = merge_summaries(start or {}, values)
        else:
            out[key] = values[0]
    return out


def _is_number(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _gpus(step: Step) -> float:
    """One GPU for a model step whose device is CUDA (or `auto` on a cluster that has GPUs)."""
    if step.name not in MODEL_STEPS or set(str(getattr(step, "backend", "")).split("+")) <= {
        "profanity",
        "rules",
    }:
        return 0.0
    device = str(getattr(step, "device", "cpu"))
    if device.startswith("cuda"):
        return 1.0
    if device == "auto":
        import ray

        return 1.0 if ray.is_initialized() and ray.cluster_resources().get("GPU", 0) >= 1 else 0.0
    return 0.0


def _collect(ds, schema: dict | None = None) -> pl.DataFrame:
    schema = schema or _VERDICT
    parts = [pl.from_arrow(t) for t in ds.iter_batches(batch_size=None, batch_format="pyarrow")]
    parts = [p for p in parts if p.height]
    return pl.concat(parts).cast(schema) if parts else pl.DataFrame(schema=schema)


def _user_error(e: BaseException) -> BaseException:
    """The exception a step or the reader raised on a worker, out of Ray's wrappers."""
    from curate.io import InputError
    from curate.pipeline import StepError

    seen = set()
    queue = [e]
    while queue:
        cur = queue.pop(0)
        if cur is None or id(cur) in seen:
            continue
        seen.add(id(cur))
        cause = getattr(cur, "cause", None)  # Ray's task error, which also poses as its cause's type
        if isinstance(cur, InputError | StepError | EngineError) and cause is None:
            return cur
        queue.extend([cause, cur.__cause__, cur.__context__])
    return e

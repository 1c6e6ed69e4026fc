"""`exact-dedup` and `near-dedup`: stateful filters, first occurrence wins.

Both read the whole conversation (every turn's role and content; for preference rows also the rejected
turns). Both keep state across batches, decide deterministically in input order, and name the kept row in
`reject_detail`.

Near-dedup is MinHash LSH over word 5-gram shingles. MinHash signatures come from rensa (Rust), fed with
shingle hashes computed in Polars/NumPy; `tests/test_dedup_agreement.py` checks that its Jaccard estimates
agree with datasketch's on the same shingles. A row sharing an LSH band with an earlier kept row is a
candidate (21 bands of 6 rows: P(candidate) = 0.998 at Jaccard 0.8). The decision is the *exact* Jaccard
of the two rows' shingle sets, computed for every candidate whose Jaccard estimated from the signatures
is at least `threshold - verify_margin` (the estimate's standard error is 0.035 at 128 permutations, so
the margin of 0.15 loses no pair at the threshold): a pair just above the threshold is dropped and one
just below is kept, whatever the estimate said. The band index is a few sorted NumPy runs
(log-structured merging), so memory per kept row is `bands` x 12 bytes plus a 16-bit fingerprint of its
signature (256 bytes) and an 8-byte offset; the kept rows' shingles (sorted 32-bit hashes, ~4 bytes per
word) go to a temporary file that the OS caches and deletes when the step ends.

>>> from curate.pipeline import to_frame
>>> text = "the quick brown fox jumps over the lazy dog " * 8
>>> rows = [{"id": i, "_kind": "conversation", "messages": [{"role": "user", "content": "Say it"},
...         {"role": "assistant", "content": t}]} for i, t in (("a", text), ("b", text + "again"))]
>>> NearDedupFilter().verdict(to_frame(rows))["reason"].to_list()
[None, 'near_duplicate']
"""

from __future__ import annotations

import itertools
import os
import tempfile
from dataclasses import dataclass, field

import numpy as np
import polars as pl
import xxhash

from curate.pipeline import Filter, verdicts
from curate.text import word_ngram_hashes, words

_MIX = np.uint64(0x9E3779B97F4A7C15)


def normalized_turn(content: pl.Expr) -> pl.Expr:
    """What exact-dedup compares of a turn: Unicode NFKC, lowercase, every run of whitespace one space,
    none at the ends, so a copy that differs only in case, spacing, line breaks or full-width forms in any
    turn is the same."""
    return content.str.normalize("NFKC").str.to_lowercase().str.replace_all(r"\s+", " ").str.strip_chars()


def conversation_text(frame: pl.DataFrame, *, normalize: bool = False) -> pl.Series:
    """Role-tagged text of every turn (and rejected turns), the unit both dedup filters compare; with
    `normalize`, each turn's content as `normalized_turn` makes it (roles and turn order are kept)."""
    content = pl.element().struct.field("content")
    if normalize:
        content = normalized_turn(content)
    turn = pl.element().struct.field("role") + pl.lit("\x1f") + content
    return frame.select(
        pl.concat_str(
            pl.col("messages").list.eval(turn).list.join("\x1e"),
            pl.col("rejected").list.eval(turn).list.join("\x1e").fill_null(""),
            separator="\x1d",
        )
    ).to_series()


@dataclass
class ExactDedupFilter(Filter):
    name = "exact-dedup"
    help = (
        "Exact duplicates (xxh3_128 of every turn's role and content) after normalizing each turn: Unicode "
        "NFKC, lowercase, runs of whitespace made one space and trimmed at both ends; first occurrence kept."
    )

    stateless = False
    _seen: dict = field(default_factory=dict, init=False, repr=False)

    def prepare(self, frame: pl.DataFrame) -> pl.DataFrame:
        texts = conversation_text(frame, normalize=True)
        keys = [xxhash.xxh3_128_digest(t.encode("utf-8", "surrogatepass")) for t in texts]
        return frame.with_columns(_exact_key=pl.Series(keys, dtype=pl.Binary))

    def verdict(self, frame: pl.DataFrame) -> pl.DataFrame:
        if "_exact_key" not in frame.columns:
            frame = self.prepare(frame)
        reasons, details = [], []
        seen = self._seen
        for rid, key in zip(frame["id"], frame["_exact_key"], strict=True):
            first = seen.get(key)
            if first is None:
                seen[key] = rid
                reasons.append(None)
                details.append(None)
            else:
                reasons.append("exact_duplicate")
                details.append(f"duplicate of {first}")
        return verdicts(reasons, details)

    def summary(self) -> dict:
        return {"distinct": len(self._seen)}


class _BandIndex:
    """Multimap from 64-bit band key to the ordinals of kept rows, as sorted NumPy runs.

    A bitmap over the keys' top 28 bits (32 MB) answers "certainly absent" for most queries, so only a
    few keys are searched in the runs; without it, lookups slow down as the index grows.
    """

    BITS = 28

    def __init__(self):
        self.runs: list[tuple[np.ndarray, np.ndarray]] = []
        self._bitmap = np.zeros(1 << (self.BITS - 6), np.uint64)

    def _slots(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        top = keys >> np.uint64(64 - self.BITS)
        return (top >> np.uint64(6)).astype(np.int64), np.uint64(1) << (top & np.uint64(63))

    def add(self, keys: np.ndarray, ordinals: np.ndarray) -> None:
        word, bit = self._slots(keys)
        np.bitwise_or.at(self._bitmap, word, bit)
        order = np.argsort(keys, kind="stable")
        self.runs.append((keys[order], ordinals[order]))
        # Merge while the newest run is at least half its predecessor: O(log n) runs, amortized O(n log n).
        # Merging by insertion positions needs no index array the size of both runs (peak memory).
        while len(self.runs) >= 2 and len(self.runs[-1][0]) * 2 >= len(self.runs[-2][0]):
            (k2, o2), (k1, o1) = self.runs.pop(), self.runs.pop()
            pos = np.searchsorted(k1, k2, side="right")  # equal keys: older entries first
            self.runs.append((np.insert(k1, pos, k2), np.insert(o1, pos, o2)))

    def lookup(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(query position, ordinal) for every stored entry whose key equals a query key."""
        word, bit = self._slots(keys)
        maybe = np.nonzero(self._bitmap[word] & bit)[0]
        q, o = self._search(keys[maybe])
        return maybe[q], o

    def _search(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        qs, os_ = [], []
        for k, o in self.runs:
            lo = np.searchsorted(k, keys, side="left")
            hi = np.searchsorted(k, keys, side="right")
            n = hi - lo
            hit = np.nonzero(n)[0]
            if len(hit) == 0:
                continue
            reps = n[hit]
            q = np.repeat(hit, reps)
            starts = np.repeat(lo[hit], reps)
            offs = np.arange(len(q)) - np.repeat(np.concatenate([[0], np.cumsum(reps)[:-1]]), reps)
            qs.append(q)
            os_.append(o[starts + offs].astype(np.int64))
        if not qs:
            return np.empty(0, np.int64), np.empty(0, np.int64)
        return np.concatenate(qs), np.concatenate(os_)

    @property
    def nbytes(self) -> int:
        return self._bitmap.nbytes + sum(k.nbytes + o.nbytes for k, o in self.runs)


def fingerprints(signatures: np.ndarray) -> np.ndarray:
    """The low 16 bits of each MinHash value, kept for Jaccard verification.

    Two different 32-bit values share their low 16 bits with probability 2**-16, so the estimated Jaccard
    rises by at most (1 - J) / 65536: invisible at two decimals, and it halves the memory a kept row
    costs (128 x 2 bytes instead of 128 x 4).
    """
    return (signatures & 0xFFFF).astype(np.uint16)


def shingle_sets(hashes: np.ndarray, counts: np.ndarray) -> pl.Series:
    """Per row, its distinct shingles as sorted 32-bit hashes (the top half of each 64-bit hash: two
    different shingles of a pair collide with probability ~1e-10 per pair of shingles), as the bytes of a
    uint32 array (a Binary column: cheap to build, to pass between processes and to write)."""
    rows = len(counts)
    rid = np.repeat(np.arange(rows, dtype=np.uint64), counts)
    key = np.sort((rid << np.uint64(32)) | (hashes >> np.uint64(32)))
    key = key[np.concatenate([[True], key[1:] != key[:-1]])] if len(key) else key
    values = (key & np.uint64(0xFFFFFFFF)).astype(np.uint32)
    per_row = np.bincount((key >> np.uint64(32)).astype(np.int64), minlength=rows)
    ends = np.cumsum(per_row)
    raw = values.tobytes()
    return pl.Series(
        "_shingles",
        [raw[4 * (e - n) : 4 * e] for e, n in zip(ends.tolist(), per_row.tolist(), strict=True)],
        pl.Binary,
    )


def as_set(blob: bytes) -> np.ndarray:
    """A row's shingle set from its `_shingles` bytes."""
    return np.frombuffer(blob, dtype=np.uint32)


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Exact Jaccard of two sorted sets of distinct hashes."""
    inter = len(np.intersect1d(a, b, assume_unique=True))
    union = len(a) + len(b) - inter
    return inter / union if union else 1.0


def band_probability(s: float, bands: int, rows: int) -> float:
    """Probability that two rows of Jaccard `s` share at least one band."""
    return 1 - (1 - s**rows) ** bands


@dataclass
class NearDedupFilter(Filter):
    name = "near-dedup"
    help = "Near duplicates by MinHash LSH over word n-gram shingles; first occurrence kept."

    threshold: float = field(
        default=0.8,
        metadata={"help": "Jaccard of word n-gram sets at or above which a row is a duplicate (exact)"},
    )
    num_perm: int = field(default=128, metadata={"help": "MinHash permutations"})
    bands: int = field(default=21, metadata={"help": "LSH bands (bands x rows <= num_perm)"})
    rows: int = field(default=6, metadata={"help": "rows per LSH band"})
    verify_margin: float = field(
        default=0.15,
        metadata={"help": "candidates with estimated Jaccard >= threshold - this get the exact Jaccard"},
    )
    ngram: int = field(default=5, metadata={"help": "shingle size in words"})
    seed: int = field(default=42, metadata={"help": "MinHash seed"})

    stateless = False

    def __post_init__(self):
        if not 0 < self.threshold <= 1:
            raise ValueError("threshold must be in (0, 1]")
        if self.bands * self.rows > self.num_perm:
            raise ValueError(f"bands x rows ({self.bands * self.rows}) exceeds num_perm ({self.num_perm})")
        if min(self.bands, self.rows, self.ngram, self.num_perm) < 1:
            raise ValueError("num_perm, bands, rows and ngram must be positive")
        if not 0 <= self.verify_margin <= 1:
            raise ValueError("verify_margin must be in [0, 1]")
        self._index = _BandIndex()
        self._sigs: list[np.ndarray] = []  # 16-bit fingerprints of kept rows' signatures, chunk per batch
        self._chunk_starts: list[int] = []
        self._ids: list[str] = []
        self._spill = None  # kept rows' shingles: a temporary file, opened on first use
        self._spill_offsets: list[np.ndarray] = []  # per chunk, start of each kept row's shingles (in values)
        self._spilled = 0
        self._candidates = 0
        self._exact_checks = 0

    def __getstate__(self) -> dict:  # worker processes only `prepare`; the open file stays here
        return {**self.__dict__, "_spill": None}

    def shingles(self, texts: pl.Series) -> tuple[np.ndarray, np.ndarray]:
        """Word n-gram hashes of each text (flat) and the number per text."""
        return word_ngram_hashes(words(texts, strip_punctuation=True), self.ngram)

    def signatures(self, texts: pl.Series) -> np.ndarray:
        return self._signatures(*self.shingles(texts))

    def _signatures(self, hashes: np.ndarray, counts: np.ndarray) -> np.ndarray:
        import rensa

        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.uint64)
        matrix = rensa.RMinHash.digest_matrix_from_flat_token_hashes(
            hashes, offsets, self.num_perm, self.seed
        )
        flat = np.fromiter(
            itertools.chain.from_iterable(matrix.to_rows()),
            dtype=np.uint32,
            count=len(counts) * self.num_perm,
        )
        return flat.reshape(len(counts), self.num_perm)

    def _band_keys(self, sigs: np.ndarray) -> np.ndarray:
        n = len(sigs)
        used = sigs[:, : self.bands * self.rows].astype(np.uint64).reshape(n, self.bands, self.rows)
        keys = np.zeros((n, self.bands), np.uint64)
        for j in range(self.rows):
            keys = keys * _MIX + used[:, :, j] + np.uint64(1)
        # Distinct key spaces per band.
        return keys ^ (np.arange(self.bands, dtype=np.uint64) * np.uint64(0xC2B2AE3D27D4EB4F))

    def _stored(self, ordinals: np.ndarray) -> np.ndarray:
        starts = np.asarray(self._chunk_starts)
        chunk = np.searchsorted(starts, ordinals, side="right") - 1
        return np.stack([self._sigs[c][o - starts[c]] for c, o in zip(chunk, ordinals, strict=True)])

    def prepare(self, frame: pl.DataFrame) -> pl.DataFrame:
        hashes, counts = self.shingles(conversation_text(frame))
        sigs = self._signatures(hashes, counts)
        return frame.with_columns(
            _minhash=pl.Series(sigs, dtype=pl.Array(pl.UInt32, self.num_perm)),
            _shingles=shingle_sets(hashes, counts),
        )

    def _write_kept_shingles(self, blobs: list[bytes]) -> None:
        lengths = np.array([len(b) // 4 for b in blobs], dtype=np.int64)
        if self._spill is None:
            self._spill = tempfile.TemporaryFile(prefix="posttrain-near-dedup-")
        os.write(self._spill.fileno(), b"".join(blobs))
        self._spill_offsets.append(
            np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64) + self._spilled
        )
        self._spilled += int(lengths.sum())

    def _kept_shingles(self, ordinal: int) -> np.ndarray:
        starts = np.asarray(self._chunk_starts)
        c = int(np.searchsorted(starts, ordinal, side="right") - 1)
        offs = self._spill_offsets[c]
        k = ordinal - starts[c]
        begin = int(offs[k])
        end = int(offs[k + 1]) if k + 1 < len(offs) else self._chunk_end(c)
        data = os.pread(self._spill.fileno(), (end - begin) * 4, begin * 4)
        return np.frombuffer(data, dtype=np.uint32)

    def _chunk_end(self, c: int) -> int:
        return int(self._spill_offsets[c + 1][0]) if c + 1 < len(self._spill_offsets) else self._spilled

    def verdict(self, frame: pl.DataFrame) -> pl.DataFrame:
        n = frame.height
        if "_minhash" not in frame.columns:
            frame = self.prepare(frame)
        full = frame["_minhash"].to_numpy().reshape(n, self.num_perm)
        keys = self._band_keys(full)
        sigs = fingerprints(full)
        blobs = frame["_shingles"].to_list()
        low = self.threshold - self.verify_margin

        def batch_set(i: int) -> np.ndarray:
            return as_set(blobs[i])

        def first_duplicate(candidates, estimates, shingles_of):
            """The first candidate (input order) whose exact Jaccard reaches the threshold."""
            mine = batch_set(r)
            for cand, est in zip(candidates, estimates, strict=True):
                if est < low:
                    continue
                self._exact_checks += 1
                j = jaccard(mine, shingles_of(cand))
                if j >= self.threshold:
                    return cand, j
            return None

        flat = keys.ravel()
        # Earlier batches: candidate (row, kept ordinal) pairs, decided by exact Jaccard.
        q, o = self._index.lookup(flat)
        prior: dict[int, list[int]] = {}
        if len(q):
            rows = q // self.bands
            pairs = np.unique(np.stack([rows, o], axis=1), axis=0)
            for r, ordinal in pairs:
                prior.setdefault(int(r), []).append(int(ordinal))
        # This batch: rows sharing a band key with an earlier row of the batch.
        order = np.argsort(flat, kind="stable")
        sk = flat[order]
        same = np.concatenate([[False], sk[1:] == sk[:-1]])
        group_start = np.maximum.accumulate(np.where(~same, np.arange(len(sk)), 0))
        shared = same | np.concatenate([same[1:], [False]])
        key_owner: dict[int, list[int]] = {}
        involved = set(prior)
        for pos in np.nonzero(shared)[0]:
            involved.add(int(order[pos] // self.bands))
        reasons: list[str | None] = [None] * n
        details: list[str | None] = [None] * n
        kept = np.ones(n, bool)
        group_of = {}
        for pos in np.nonzero(shared)[0]:
            group_of.setdefault(int(order[pos] // self.bands), []).append(int(group_start[pos]))
        ids = frame["id"]
        for r in sorted(involved):
            best = None
            cands = prior.get(r, [])
            if cands:
                self._candidates += len(cands)
                cands = sorted(cands)
                est = (self._stored(np.asarray(cands)) == sigs[r]).mean(axis=1)
                hit = first_duplicate(cands, est, self._kept_shingles)
                if hit is not None:
                    best = (self._ids[hit[0]], hit[1])
            if best is None:
                earlier = sorted({e for g in group_of.get(r, []) for e in key_owner.get(g, []) if e < r})
                if earlier:
                    self._candidates += len(earlier)
                    est = (sigs[earlier] == sigs[r]).mean(axis=1)
                    hit = first_duplicate(earlier, est, batch_set)
                    if hit is not None:
                        best = (ids[hit[0]], hit[1])
            if best is not None:
                kept[r] = False
                reasons[r] = "near_duplicate"
                details[r] = f"near duplicate of {best[0]} (Jaccard {best[1]:.2f})"
            else:
                for g in group_of.get(r, []):
                    key_owner.setdefault(g, []).append(r)
        keep_idx = np.nonzero(kept)[0]
        if len(keep_idx):
            start = len(self._ids)
            self._chunk_starts.append(start)
            self._sigs.append(sigs[keep_idx])
            self._ids.extend(ids.gather(keep_idx).to_list())
            self._write_kept_shingles([blobs[k] for k in keep_idx.tolist()])
            ordinals = np.repeat(np.arange(start, start + len(keep_idx), dtype=np.uint32), self.bands)
            self._index.add(keys[keep_idx].ravel(), ordinals)
        return verdicts(reasons, details)

    def summary(self) -> dict:
        return {
            "kept_rows_indexed": len(self._ids),
            "candidate_pairs_verified": self._candidates,
            "exact_jaccard_computed": self._exact_checks,
            "index_bytes": self._index.nbytes
            + sum(s.nbytes for s in self._sigs)
            + sum(o.nbytes for o in self._spill_offsets),
            "shingle_file_bytes": self._spilled * 4,
            "recall_at_threshold": round(band_probability(self.threshold, self.bands, self.rows), 4),
        }

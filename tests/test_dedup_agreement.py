"""near-dedup's MinHash (rensa, hashes from Polars) against datasketch, the reference, on the same shingles."""

from __future__ import annotations

import random

import numpy as np
import polars as pl
from datasketch import MinHash, MinHashLSH

from curate.filters.dedup import NearDedupFilter, band_probability
from curate.text import normalized

VOCAB = [f"w{i}" for i in range(3000)]


def _doc(rnd, n=150):
    return " ".join(rnd.choice(VOCAB) for _ in range(n))


def _mutate(rnd, text, k):
    w = text.split()
    for _ in range(k):
        w[rnd.randrange(len(w))] = rnd.choice(VOCAB)
    return " ".join(w)


def _shingles(text, n=5):
    w = normalized(pl.Series([text]), strip_punctuation=True)[0].split(" ")
    return {" ".join(w[i : i + n]) for i in range(len(w) - n + 1)}


def _datasketch(text, num_perm=128):
    m = MinHash(num_perm=num_perm, seed=1)
    m.update_batch([s.encode() for s in _shingles(text)])
    return m


def test_jaccard_estimates_agree_with_datasketch_and_the_truth():
    rnd = random.Random(1)
    f = NearDedupFilter()
    errs_ours, errs_ref = [], []
    for k in (0, 1, 3, 6, 10, 20, 40):
        for _ in range(4):
            a = _doc(rnd)
            b = _mutate(rnd, a, k)
            sa, sb = _shingles(a), _shingles(b)
            truth = len(sa & sb) / len(sa | sb)
            sig = f.signatures(pl.Series([a, b]))
            ours = float((sig[0] == sig[1]).mean())
            ref = _datasketch(a).jaccard(_datasketch(b))
            errs_ours.append(abs(ours - truth))
            errs_ref.append(abs(ref - truth))
            assert abs(ours - ref) < 0.2, (k, ours, ref, truth)
    # Same estimator quality as the reference: mean absolute error within 0.02 of datasketch's.
    assert np.mean(errs_ours) < np.mean(errs_ref) + 0.02
    assert np.mean(errs_ours) < 0.05


def test_dedup_decisions_agree_with_datasketch_lsh():
    rnd = random.Random(2)
    docs, is_dup = [], []
    originals = [_doc(rnd, 200) for _ in range(150)]
    for i, d in enumerate(originals):
        docs.append(d)
        is_dup.append(False)
        if i % 3 == 0:  # a near copy, 1-3 words changed: Jaccard well above 0.8
            docs.append(_mutate(rnd, d, rnd.randint(1, 3)))
            is_dup.append(True)
    frame_rows = [
        {
            "id": str(i),
            "_kind": "conversation",
            "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": d}],
        }
        for i, d in enumerate(docs)
    ]
    from curate.pipeline import to_frame

    ours = [r is not None for r in NearDedupFilter().verdict(to_frame(frame_rows))["reason"]]
    # datasketch: same threshold, query then insert (keep-first), candidates verified by estimated Jaccard.
    lsh = MinHashLSH(threshold=0.8, num_perm=128)
    ref = []
    sigs = {}
    for i, d in enumerate(docs):
        text = "user\x1fq\x1eassistant\x1f" + d + "\x1d"
        m = _datasketch(text)
        hits = [h for h in lsh.query(m) if sigs[h].jaccard(m) >= 0.8]
        ref.append(bool(hits))
        if not hits:
            lsh.insert(str(i), m)
            sigs[str(i)] = m
    # Both estimate Jaccard from 128 permutations, so rows near the threshold may fall either side in
    # either implementation; decisions must agree almost everywhere and match the planted truth.
    agree = np.mean(np.array(ours) == np.array(ref))
    assert agree >= 0.97, agree
    truth = np.array(is_dup)
    o = np.array(ours)
    assert (o & truth).sum() / truth.sum() >= 0.95  # recall
    assert (o & ~truth).sum() == 0  # precision: no distinct document dropped


def test_default_bands_give_the_promised_recall():
    f = NearDedupFilter()
    assert band_probability(0.8, f.bands, f.rows) >= 0.95

"""Exact dedup's per-turn normalization and near dedup's exact-Jaccard decision, on tiny literal rows."""

from __future__ import annotations

from curate.filters.dedup import ExactDedupFilter, NearDedupFilter
from curate.pipeline import to_frame


def conv(id, *turns):
    return {"id": id, "_kind": "conversation", "messages": [{"role": r, "content": c} for r, c in turns]}


def reasons(step, rows):
    v = step.verdict(to_frame(rows))
    return list(zip(v["reason"], v["detail"], strict=True))


def test_per_turn_whitespace_copy_is_an_exact_duplicate():
    """Regression: whitespace was trimmed only at the ends of the whole conversation, so a copy whose turn
    had a trailing newline or leading spaces was not an exact duplicate."""
    a = conv("a", ("user", "What is 2+2?"), ("assistant", "It is 4."))
    b = conv("b", ("user", "What is 2+2?\n"), ("assistant", "   It is 4."))
    c = conv("c", ("user", "  what   IS 2+2? "), ("assistant", "It\tis\n\n4.\n"))
    assert reasons(ExactDedupFilter(), [a, b, c]) == [
        (None, None),
        ("exact_duplicate", "duplicate of a"),
        ("exact_duplicate", "duplicate of a"),
    ]


def test_unicode_compatibility_forms_are_the_same_text():
    a = conv("a", ("user", "Define efficient"), ("assistant", "Efficient: doing more with less."))
    b = conv(
        "b", ("user", "Ｄｅｆｉｎｅ　eﬃcient"), ("assistant", "Eﬃcient: doing more with less.")
    )  # full-width, ideographic space, ligature
    assert reasons(ExactDedupFilter(), [a, b])[1] == ("exact_duplicate", "duplicate of a")


def test_roles_and_turn_boundaries_still_count():
    a = conv("a", ("user", "Hi"), ("assistant", "Hello there"))
    moved = conv("b", ("user", "Hi Hello"), ("assistant", "there"))
    swapped = conv("c", ("assistant", "Hi"), ("user", "Hello there"))
    assert reasons(ExactDedupFilter(), [a, moved, swapped]) == [(None, None)] * 3


def _gray_zone_rows():
    """A 200-word text and copies with 4 and 5 words replaced, each 40 words apart: word-5-gram Jaccard
    just above and just below 0.8 (within the MinHash estimate's noise of +-0.035)."""
    words = [f"w{i}" for i in range(200)]

    def copy(k):
        w = list(words)
        for p in range(10, 10 + 40 * k, 40):
            w[p] = f"changed{p}"
        return " ".join(w)

    orig = conv("orig", ("user", "Q"), ("assistant", " ".join(words)))
    return (
        orig,
        conv("above", ("user", "Q"), ("assistant", copy(4))),
        conv("below", ("user", "Q"), ("assistant", copy(5))),
    )


def test_near_dedup_gray_zone_is_decided_by_exact_jaccard():
    from curate.filters.dedup import as_set, conversation_text, jaccard, shingle_sets

    orig, above, below = _gray_zone_rows()
    f = NearDedupFilter()
    hashes, counts = f.shingles(conversation_text(to_frame([orig, above, below])))
    sets = [as_set(b) for b in shingle_sets(hashes, counts)]
    j_above, j_below = jaccard(sets[0], sets[1]), jaccard(sets[0], sets[2])
    assert 0.8 <= j_above < 0.83 and 0.76 < j_below < 0.8
    got = reasons(NearDedupFilter(), [orig, above, below])
    assert got[0] == (None, None) and got[2] == (None, None)
    assert got[1] == ("near_duplicate", f"near duplicate of orig (Jaccard {j_above:.2f})")
    # across batches (the kept row's shingles are read back from the spill file) the decision is the same
    step = NearDedupFilter()
    assert reasons(step, [orig]) == [(None, None)]
    assert reasons(step, [below, above]) == [(None, None), got[1]]
    assert step.summary()["exact_jaccard_computed"] >= 2


def test_near_dedup_threshold_moves_the_exact_decision():
    orig, above, _ = _gray_zone_rows()
    assert reasons(NearDedupFilter(threshold=0.83), [orig, above])[1] == (None, None)

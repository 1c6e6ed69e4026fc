"""Exact dedup's per-turn normalization and near dedup's exact-Jaccard decision, on tiny literal rows."""

from __future__ import annotations

from curate.filters.dedup import ExactDedupFilter
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

"""What several annotators' work on one prompt comes to: the responses they flagged, one combined ranking of
the rest (Borda count), the edit that goes with it, and how far they agreed.

Only finished work counts (a submitted ranking or a skip); drafts are ignored. A response any of them flagged
is left out of the ranking. A prompt is exported when at least one annotator ranked it, skipped when every
annotator who finished it skipped it, and `all_flagged` when its rankers left no response unflagged.

>>> alice = Judgement("alice", "ranked", ranking=[2, 0, 1])
>>> bob = Judgement("bob", "ranked", ranking=[0, 2, 1], edit=(0, "A better answer."))
>>> o = decide([alice, bob], 3)
>>> o.status, o.ranking, o.agreement["top_agreement"], o.agreement["kendall_tau"]
('exported', [2, 0, 1], 0.5, 0.333)
>>> o.edit, [e.annotator for e in o.unused_edits]
(None, ['bob'])
"""

from __future__ import annotations

from dataclasses import dataclass, field

FLAG_REASONS = ("unsafe", "wrong", "off-topic")  # in order of severity: the first names a flagged response


@dataclass
class Judgement:
    """One annotator's work on one prompt: responses by index, best first."""

    annotator: str
    status: str  # open | ranked | skipped
    ranking: list[int] = field(default_factory=list)
    flags: dict[int, str] = field(default_factory=dict)  # response index -> reason
    edit: tuple[int, str] | None = None  # (index of the response it edits, the edited text)
    skip_reason: str | None = None


@dataclass
class UnusedEdit:
    annotator: str
    base: int
    text: str
    why: str


@dataclass
class Outcome:
    status: str  # exported | skipped | all_flagged | open
    ranking: list[int]  # combined, best first, flagged responses left out
    rankers: list[str]
    skips: list[tuple[str, str | None]]  # (annotator, reason)
    flagged: dict[int, list[tuple[str, str]]]  # response index -> [(annotator, reason)]
    edit: tuple[str, str] | None  # (annotator, text) of the edit of the combined best
    unused_edits: list[UnusedEdit]
    agreement: dict


def borda(rankings: list[list[int]]) -> list[int]:
    """One ranking from several complete rankings of the same items (best first): an item scores, in each, the
    number of items ranked below it. Ties keep the first ranking's order.

    >>> borda([[0, 1, 2], [1, 2, 0], [2, 1, 0]])  # scores 0: 2, 1: 4, 2: 3
    [1, 2, 0]
    >>> borda([[0, 1], [1, 0]])
    [0, 1]
    """
    first = rankings[0]
    score = dict.fromkeys(first, 0)
    for r in rankings:
        for pos, item in enumerate(r):
            score[item] += len(r) - 1 - pos
    return sorted(first, key=lambda item: -score[item])  # sorted is stable: ties stay in the first's order


def kendall_tau(a: list, b: list) -> float | None:
    """Kendall's tau between two complete rankings of the same items: 1 the same order, -1 reversed; None for
    fewer than two items.

    >>> kendall_tau([0, 1, 2], [0, 1, 2]), kendall_tau([0, 1, 2], [2, 1, 0]), kendall_tau([0, 1, 2], [1, 0, 2])
    (1.0, -1.0, 0.333)
    """
    if len(a) < 2:
        return None
    pos = {item: k for k, item in enumerate(b)}
    n = len(a)
    s = sum(1 if pos[a[i]] < pos[a[j]] else -1 for i in range(n) for j in range(i + 1, n))
    return round(s / (n * (n - 1) / 2), 3)


def agreement(rankings: list[list[int]], combined: list[int]) -> dict:
    """Mean Kendall's tau over pairs of annotators, and the share of annotators whose best is the combined best
    (both None with fewer than two annotators or two responses)."""
    taus = [
        t
        for i in range(len(rankings))
        for j in range(i + 1, len(rankings))
        if (t := kendall_tau(rankings[i], rankings[j])) is not None
    ]
    several = len(rankings) >= 2 and bool(combined)
    return {
        "annotators": len(rankings),
        "kendall_tau": round(sum(taus) / len(taus), 3) if taus else None,
        "top_agreement": round(sum(r[0] == combined[0] for r in rankings) / len(rankings), 3)
        if several
        else None,
    }


def decide(judgements: list[Judgement], n_responses: int) -> Outcome:
    """The outcome of one prompt; `judgements` in annotator order (the first breaks Borda ties)."""
    done = [j for j in judgements if j.status in ("ranked", "skipped")]
    flagged: dict[int, list[tuple[str, str]]] = {}
    for j in done:
        for k, reason in sorted(j.flags.items()):
            flagged.setdefault(k, []).append((j.annotator, reason))
    rankers = [j for j in done if j.status == "ranked"]
    skips = [(j.annotator, j.skip_reason) for j in done if j.status == "skipped"]
    rankings = [[k for k in j.ranking if k not in flagged] for j in rankers]
    combined = borda(rankings) if rankings and rankings[0] else []
    status = "open" if not done else "skipped" if not rankers else "exported" if combined else "all_flagged"
    edit, unused = None, []
    for j in done:
        if j.edit is None:
            continue
        base, text = j.edit
        why = _edit_unused(j, base, combined, taken=edit is not None)
        if why is None:
            edit = (j.annotator, text)
        else:
            unused.append(UnusedEdit(j.annotator, base, text, why))
    return Outcome(
        status=status,
        ranking=combined,
        rankers=[j.annotator for j in rankers],
        skips=skips,
        flagged=flagged,
        edit=edit,
        unused_edits=unused,
        agreement=agreement(rankings, combined),
    )


def _edit_unused(j: Judgement, base: int, combined: list[int], *, taken: bool) -> str | None:
    """Why an annotator's edit is not the exported one (None: it is). Ranks are shown 1-based, as on the page."""
    if j.status == "skipped":
        return "the annotator skipped the prompt"
    if not j.ranking or j.ranking[0] != base:
        return f"response {base + 1} was edited but is not this annotator's best"
    if not combined or combined[0] != base:
        best = f"response {combined[0] + 1}" if combined else "none (all flagged)"
        return f"response {base + 1} was edited but the combined best is {best}"
    if taken:
        return "an earlier annotator's edit of the same response is exported"
    return None

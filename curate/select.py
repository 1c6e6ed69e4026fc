"""`curate select`: pick N rows for tag diversity and complexity (InsTag), or by a baseline strategy.

- `instag`: complexity-first diverse sampling (Lu et al., 2024). Rows sorted by number of tags, most
  first; each pass starts with no tag covered and takes a row only when it adds a tag not yet covered in
  that pass, until every tag left in the pool is covered; passes repeat until N rows are taken.
- `diversity`: the same passes over the rows in random order (no complexity sort).
- `complexity`: the N rows with the most tags.
- `random`: N rows at random.

Ties, and every random order, come from `seed`: the same input and seed give the same selection.

>>> pick([{"a", "b"}, {"a"}, {"c"}, {"b"}], 2, strategy="instag").rows
[0, 2]
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from curate.io import InputError, RunDir, write_json
from curate.ledger import RunLedger
from curate.schema import DEFAULT_MAX_ROW_BYTES, public, rejected_row
from curate.tags import read_tag_lists, row_tags, second_pass, tag_distribution

STEP = "select"
OUTPUT = "selected.jsonl"
STRATEGIES = ("instag", "random", "complexity", "diversity")


@dataclass
class Selection:
    rows: list[int]  # selected row positions, in the order they were taken
    why_not: dict[int, str]  # a row that was not selected -> why
    passes: int | None = None  # instag / diversity
    filled: int = 0  # rows taken after no remaining row could add a tag (they had none)


def pick(tags: Sequence[set | frozenset], n: int, *, strategy: str = "instag", seed: int = 0) -> Selection:
    """Choose `n` of the rows whose tag sets are `tags` (exactly n; n <= len(tags))."""
    import numpy as np

    if strategy not in STRATEGIES:
        raise InputError(f"unknown strategy {strategy!r} (choose from {', '.join(STRATEGIES)})")
    if not 0 <= n <= len(tags):
        raise InputError(f"cannot select {n} rows from {len(tags)}")
    shuffled = np.random.default_rng(seed).permutation(len(tags)).tolist()
    if strategy == "random":
        chosen = set(shuffled[:n])
        return Selection(
            shuffled[:n], {i: f"not drawn (seed {seed})" for i in range(len(tags)) if i not in chosen}
        )
    tiebreak = [0] * len(tags)
    for rank, i in enumerate(shuffled):
        tiebreak[i] = rank
    if strategy == "diversity":
        return _passes(shuffled, tags, n)
    by_complexity = sorted(range(len(tags)), key=lambda i: (-len(tags[i]), tiebreak[i]))
    if strategy == "instag":
        return _passes(by_complexity, tags, n)
    chosen = set(by_complexity[:n])
    least = min((len(tags[i]) for i in chosen), default=0)
    return Selection(
        by_complexity[:n],
        {
            i: f"{len(tags[i])} tags; the {n} selected rows have {least} or more"
            for i in range(len(tags))
            if i not in chosen
        },
    )


def _passes(order: list[int], tags: Sequence[set | frozenset], n: int) -> Selection:
    selected: list[int] = []
    remaining = list(order)
    skipped_in: dict[int, int] = {}
    passes = filled = 0
    while len(selected) < n:
        passes += 1
        pool = set().union(*(tags[i] for i in remaining))
        covered: set = set()
        left: list[int] = []
        added = 0
        for pos, i in enumerate(remaining):
            if len(selected) == n or len(covered) == len(pool):
                left.extend(remaining[pos:])
                break
            if tags[i] and not tags[i] <= covered:
                selected.append(i)
                covered |= tags[i]
                added += 1
            else:
                left.append(i)
                skipped_in[i] = passes
        remaining = left
        if added == 0:
            # Guard: no remaining row has a tag, so another pass would add nothing; take the rest in
            # order to reach exactly n, and say so in the manifest.
            take = remaining[: n - len(selected)]
            selected.extend(take)
            filled = len(take)
            remaining = remaining[len(take) :]
    why_not = {}
    for i in remaining:
        if not tags[i]:
            why_not[i] = "no tags"
        elif i in skipped_in:
            why_not[i] = (
                f"no new tag in pass {skipped_in[i]}: its {len(tags[i])} tags were covered by rows "
                f"taken before it in that pass"
            )
        else:
            why_not[i] = f"the budget of {n} rows was filled in pass {passes} before this row was reached"
    return Selection(selected, why_not, passes=passes, filled=filled)


@dataclass
class SelectConfig:
    inputs: list
    output: str
    n: int
    strategy: str = "instag"
    seed: int = 0
    input_format: str = "auto"
    on_error: str = "fail"
    max_row_bytes: int = DEFAULT_MAX_ROW_BYTES
    overwrite: bool = False

    def validate(self) -> None:
        if self.strategy not in STRATEGIES:
            raise InputError(f"unknown strategy {self.strategy!r} (choose from {', '.join(STRATEGIES)})")
        if self.n < 1:
            raise InputError(f"--n must be at least 1, got {self.n}")


def run_select(cfg: SelectConfig) -> dict:
    """Select `cfg.n` rows of `cfg.inputs` into `cfg.output`/selected.jsonl; the others go to rejected.jsonl
    with reason `not-selected`. Returns the manifest (coverage and tag counts of selection and pool)."""
    from curate.run import base_manifest

    cfg.validate()
    t0 = time.perf_counter()
    manifest = base_manifest("curate select", asdict(cfg), cfg.inputs)
    _, tag_lists = read_tag_lists(cfg)
    if cfg.n > len(tag_lists):
        raise InputError(f"--n {cfg.n} is more than the {len(tag_lists)} rows in the input")
    if all(t is None for t in tag_lists) and cfg.strategy != "random":
        raise InputError("no row has `tags`: tag the rows first (synth tag), or use --strategy random")
    ids: dict[str, int] = {}
    tag_sets = [frozenset(ids.setdefault(t, len(ids)) for t in (tags or ())) for tags in tag_lists]
    sel = pick(tag_sets, cfg.n, strategy=cfg.strategy, seed=cfg.seed)
    chosen = set(sel.rows)
    run = RunDir(cfg.output, overwrite=cfg.overwrite, inputs=cfg.inputs)
    ledger = RunLedger(run, main=OUTPUT)
    reader = second_pass(cfg)
    try:
        kept, rejected = [], []
        for i, row in enumerate(reader):
            if i >= len(tag_lists) or row_tags(row) != tag_lists[i]:
                raise InputError("the input changed while it was being read; run again")
            if i in chosen:
                kept.append(public(row))
            else:
                rejected.append(
                    rejected_row(public(row), "not-selected", f"{cfg.strategy}: {sel.why_not[i]}", step=STEP)
                )
            if len(kept) + len(rejected) >= 10_000:
                ledger.kept(kept)
                ledger.rejected(rejected)
                kept, rejected = [], []
        ledger.kept(kept)
        ledger.rejected(rejected)
        ledger.write_invalid([bad.as_record() for bad in reader.invalid])
        ledger.close()
    except BaseException:
        ledger.abort()
        run.abort()
        raise
    counts = {
        "input": reader.count,
        "selected": ledger.counts["kept"],
        "not_selected": ledger.counts["rejected"],
        "invalid": len(reader.invalid),
    }
    counts["balanced"] = (
        counts["input"] == counts["selected"] + counts["not_selected"] + counts["invalid"]
        and counts["selected"] == cfg.n
    )
    selection = tag_distribution(tag_lists[i] for i in sorted(chosen))
    pool = tag_distribution(tag_lists)
    selection["tag_coverage"] = (
        round(selection["distinct_tags"] / pool["distinct_tags"], 4) if pool["distinct_tags"] else None
    )
    manifest.update(
        counts=counts,
        reasons={"not-selected": counts["not_selected"]} if counts["not_selected"] else {},
        selection=selection,
        pool=pool,
        strategy={
            "name": cfg.strategy,
            "seed": cfg.seed,
            **(
                {"passes": sel.passes, "filled_without_new_tags": sel.filled}
                if sel.passes is not None
                else {}
            ),
        },
        inputs=reader.fingerprints,
        seconds=round(time.perf_counter() - t0, 3),
        outputs={"selected": OUTPUT, "rejected": "rejected.jsonl", "invalid": "invalid.jsonl"},
    )
    if not counts["balanced"]:  # an invariant of the selection; a failure here is a bug
        run.abort()
        raise AssertionError(f"row counts do not add up: {counts}")
    write_json(run / "manifest.json", manifest)
    manifest["run_dir"] = str(run.commit())
    return manifest

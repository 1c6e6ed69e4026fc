"""`curate report DIR` on a recipe run (`posttrain run`): the stages as a flow, on one page.

A recipe run directory holds one run directory per stage and `recipe.json` (`STATE_FILE`), written by
`posttrain.recipes`: `order` (stage ids in run order) and `stages` (per id: `name`, `round`, `command`, `kind`,
`status`, `last_run`, `seconds`, `inputs`: `[{stage, output} | {path}]`). The page shows the rows flowing from the
inputs through the stages (and what each dropped), a table of the stages (rows in and out, what was dropped and
why, tokens spent, training steps, loss and reward), the training loss curves and the rewards of online
training, and links to each stage's own report, written beside the page (`REPORT.stages/STAGE.html`).
"""

from __future__ import annotations

from pathlib import Path

import orjson

from curate.io import InputError, atomic_path

STATE_FILE = "recipe.json"
KINDS_WITH_ROWS = ("curate", "synth")


def is_recipe_run(path: str | Path) -> bool:
    return (Path(path) / STATE_FILE).is_file()


def write_flow_report(run_dir: str | Path, out_path: str | Path, **stage_report_options) -> dict:
    """The recipe run's page at `out_path`, and each stage's own report beside it."""
    from curate.report import write_report

    run_dir, out = Path(run_dir), Path(out_path)
    state = orjson.loads((run_dir / STATE_FILE).read_bytes())
    stages = [
        stage_facts(run_dir, sid, state["stages"][sid])
        for sid in state.get("order", [])
        if sid in state["stages"]
    ]
    reports = out.with_name(out.stem + ".stages")
    for s in stages:
        if s["status"] != "done" or s["kind"] == "setup" or s["command"] == "train merge":
            continue
        target = reports / (s["id"].replace("/", "--") + ".html")
        try:
            write_report(run_dir / s["id"], target, **stage_report_options)
            s["report"] = f"{reports.name}/{target.name}"
        except InputError as e:
            s["report_error"] = str(e)
    figures = [f for f in (flow_figure(stages), loss_figure(stages), reward_figure(stages)) if f]
    page = render(run_dir, state, stages, figures)
    with atomic_path(out) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return {
        "path": str(out),
        "bytes": out.stat().st_size,
        "table": {"stages": len(stages)},
        "figures": [f["id"] for f in figures],
    }


# ---------------------------------------------------------------------------------------------- reading


def _rows(path: Path) -> int | None:
    from curate.report import _line_count

    return _line_count(path) if path.is_file() else None


def output_file(run_dir: Path, rec: dict, name: str | None = None) -> Path | None:
    """A stage's output file by name (default: its main output, listed first in `files`)."""
    files = dict(rec.get("files") or [])
    if name is None:
        return run_dir / next(iter(files.values())) if files else None
    return run_dir / files.get(name, f"{name}.jsonl")


def stage_facts(run_dir: Path, sid: str, rec: dict) -> dict:
    """What the page shows of one stage, from its record, its manifest and its files."""
    d = run_dir / sid
    mf = d / "manifest.json"
    m = orjson.loads(mf.read_bytes()) if mf.is_file() else {}
    facts = {
        "id": sid,
        "name": rec.get("name", sid),
        "round": rec.get("round"),
        "command": rec.get("command", m.get("command", "")),
        "kind": rec.get("kind", ""),
        "status": rec.get("status", ""),
        "last_run": rec.get("last_run", ""),
        "seconds": rec.get("seconds"),
        "error": rec.get("error"),
        "inputs": rec.get("inputs", []),
        "dir": d,
        "record": rec,
    }
    counts = m.get("counts") or {}
    if facts["kind"] in KINDS_WITH_ROWS:
        main = output_file(d, rec)
        facts["rows_in"] = counts.get("input")
        facts["rows_out"] = _rows(main) if main else None
        facts["dropped"], facts["reasons"] = dropped(d / "rejected.jsonl")
    data = m.get("data") or {}
    if "rows" in data:
        facts["rows_in"] = data["rows"]
    tokens = m.get("tokens") or {}
    if tokens:
        facts["tokens"] = {"prompt": tokens.get("prompt"), "completion": tokens.get("completion")}
    metrics = m.get("metrics") or {}
    if metrics.get("global_step") is not None:
        facts["steps"] = metrics["global_step"]
        facts["loss"] = metrics.get("train_loss")
    facts["curve"] = curve(d / "log_history.jsonl", "loss")
    facts["rewards"] = rewards(d / "rollouts.jsonl")
    return facts


def dropped(path: Path) -> tuple[int, dict]:
    import polars as pl

    if not path.is_file() or not path.stat().st_size:
        return 0, {}
    frame = (
        pl.scan_ndjson(path, schema={"reject_reason": pl.String}).group_by("reject_reason").len().collect()
    )
    reasons = dict(
        sorted(zip(frame["reject_reason"].fill_null("?"), frame["len"], strict=True), key=lambda kv: -kv[1])
    )
    return sum(reasons.values()), reasons


def curve(path: Path, metric: str) -> list[tuple[float, float]]:
    if not path.is_file():
        return []
    out = []
    for line in path.read_bytes().splitlines():
        h = orjson.loads(line) if line.strip() else {}
        if metric in h and h.get("step") is not None:
            out.append((h["step"], h[metric]))
    return out


def rewards(path: Path) -> list[tuple[int, float]]:
    """Mean reward per episode (online-dpo) or step (rl) from rollouts.jsonl."""
    import polars as pl

    if not path.is_file() or not path.stat().st_size:
        return []
    frame = pl.scan_ndjson(
        path, schema={"episode": pl.Int64, "step": pl.Int64, "eval": pl.Boolean, "reward": pl.Float64}
    ).collect()
    frame = frame.filter(~pl.col("eval").fill_null(False)).drop_nulls("reward")
    by = "episode" if frame["episode"].drop_nulls().len() else "step"
    stats = frame.drop_nulls(by).group_by(by).agg(pl.col("reward").mean()).sort(by)
    return list(zip(stats[by].to_list(), stats["reward"].to_list(), strict=True))


def source_rows(run_dir: Path, s: dict, by_id: dict) -> tuple[str, int | None]:
    """(label, rows) of one input of a stage: an input file, an earlier stage's file or its run directory's rows.
    A model (a training stage's directory) carries no rows."""
    if "path" in s:
        p = Path(s["path"])
        return p.name, (_rows(p) if p.is_file() else None)
    up = by_id.get(s["stage"])
    if up is None:
        return s["stage"], None
    if s.get("output"):
        return up["id"], _rows(output_file(up["dir"], up["record"], s["output"]))
    return up["id"], up.get("rows_out")


# ---------------------------------------------------------------------------------------------- figures


def flow_figure(stages: list[dict]) -> dict | None:
    """Rows from the inputs through the stages, and what each stage dropped: a Sankey diagram."""
    import plotly.graph_objects as go

    from curate.report import _figure, _layout

    by_id = {s["id"]: s for s in stages}
    nodes: dict[str, int] = {}

    def node(label: str) -> int:
        return nodes.setdefault(label, len(nodes))

    src, dst, val = [], [], []
    for s in stages:
        for i in s["inputs"]:
            label, rows = source_rows(s["dir"].parent, i, by_id)
            if rows:
                src.append(node(label)), dst.append(node(s["id"])), val.append(rows)
        if s.get("dropped"):
            src.append(node(s["id"])), dst.append(node(f"{s['id']}: dropped")), val.append(s["dropped"])
    if not val:
        return None
    labels = list(nodes)
    colors = ["#fca5a5" if lab.endswith(": dropped") else "#93c5fd" for lab in labels]
    fig = go.Figure(
        go.Sankey(
            node={"label": labels, "color": colors, "pad": 14},
            link={"source": src, "target": dst, "value": val},
            arrangement="snap",
        )
    )
    _layout(fig, height=max(360, 28 * len(labels)))
    f = _figure(
        "flow",
        "Rows through the stages",
        fig,
        "Each link is the rows a stage read from an input, "
        "or the rows it dropped (red). Models passed between training stages carry no rows.",
        wide=True,
    )
    return f


def _lines(fig_id: str, title: str, series: list[tuple[str, list]], x: str, y: str, note: str) -> dict | None:
    import plotly.graph_objects as go

    from curate.report import _figure, _layout

    if not series:
        return None
    fig = go.Figure()
    for name, points in series:
        fig.add_scatter(x=[p[0] for p in points], y=[p[1] for p in points], mode="lines+markers", name=name)
    _layout(fig, x=x, y=y)
    return _figure(fig_id, title, fig, note, wide=True)


def loss_figure(stages: list[dict]) -> dict | None:
    series = [(s["id"], s["curve"]) for s in stages if s["curve"]]
    return _lines(
        "losses",
        "Training loss",
        series,
        "step",
        "loss",
        "TRL's logged training loss of each training stage.",
    )


def reward_figure(stages: list[dict]) -> dict | None:
    series = [(s["id"], s["rewards"]) for s in stages if s["rewards"]]
    return _lines(
        "stage-rewards",
        "Rewards in online training",
        series,
        "episode or step",
        "mean reward",
        "Mean reward given per episode (online-dpo) or step (rl), from each stage's rollouts.jsonl.",
    )


# ---------------------------------------------------------------------------------------------- HTML


def _stage_table(stages: list[dict]) -> str:
    from curate.report import _esc, _num

    head = (
        "<tr><th>stage</th><th>command</th><th>this run</th><th>inputs</th><th>rows in</th><th>rows out</th>"
        "<th>dropped (why)</th><th>tokens</th><th>training</th><th>seconds</th></tr>"
    )
    body = []
    for s in stages:
        name = _esc(s["id"])
        if s.get("report"):
            name = f'<a href="{_esc(s["report"])}">{name}</a>'
        status = s["last_run"] if s["status"] == "done" else s["status"]
        if s.get("error"):
            status += f": {_esc(s['error'])}"
        inputs = ", ".join(
            _esc(i["stage"] + (f".{i['output']}" if i.get("output") else ""))
            if "stage" in i
            else _esc(Path(i["path"]).name)
            for i in s["inputs"]
        )
        why = ", ".join(f"{_esc(r)} {_num(n)}" for r, n in list((s.get("reasons") or {}).items())[:4])
        drop = f"{_num(s['dropped'])} <span class=dim>({why})</span>" if s.get("dropped") else ""
        tok = s.get("tokens") or {}
        tokens = f"{_num(tok.get('prompt'))} + {_num(tok.get('completion'))}" if tok else ""
        train = []
        if s.get("steps") is not None:
            train.append(f"{_num(s['steps'])} steps")
        if s.get("loss") is not None:
            train.append(f"loss {_num(s['loss'])}")
        if s["rewards"]:
            train.append(f"reward {_num(s['rewards'][0][1])} → {_num(s['rewards'][-1][1])}")
        body.append(
            f"<tr><td><b>{name}</b></td><td>{_esc(s['command'])}</td><td>{_esc(status)}</td><td>{inputs}</td>"
            f"<td>{_num(s.get('rows_in', ''))}</td><td>{_num(s.get('rows_out', ''))}</td><td>{drop}</td>"
            f"<td>{tokens}</td><td>{', '.join(train)}</td><td>{_num(s.get('seconds') or '')}</td></tr>"
        )
    return f'<table class="steps">{head}{"".join(body)}</table>'


def render(run_dir: Path, state: dict, stages: list[dict], figures: list[dict]) -> str:
    from curate.report import _esc, _section, fill_page

    recipe = state.get("recipe") or {}
    last = (state.get("runs") or [{}])[-1]
    failed = sum(s["status"] == "failed" for s in stages)
    total = {k: sum((s.get("tokens") or {}).get(k) or 0 for s in stages) for k in ("prompt", "completion")}
    cards = [
        ("stages", len(stages)),
        ("ran last time", len(last.get("ran", []))),
        ("skipped (unchanged)", len(last.get("skipped", []))),
        ("failed", failed),
        ("prompt tokens", total["prompt"]),
        ("completion tokens", total["completion"]),
    ]
    body = "".join(
        [
            "<style>#table{display:none}</style>",  # no row table here: each stage's own report has one
            _section("Flow", [f for f in figures if f["id"] == "fig-flow"]),
            f"<section><h2>Stages</h2>{_stage_table(stages)}</section>",
            _section("Training", [f for f in figures if f["id"] != "fig-flow"]),
        ]
    )
    payload = {
        "figures": [
            {"id": f["id"], "data": f["fig"].get("data", []), "layout": f["fig"].get("layout", {})}
            for f in figures
        ],
        "rows": [],
        "dups": {},
        "steps": {},
        "summary": {},
    }
    return fill_page(
        title=f"Recipe report · {recipe.get('name', run_dir.name)}",
        meta=f"recipe {_esc(recipe.get('path', ''))} · last run started {_esc(last.get('started', ''))}",
        cards="".join(
            f'<div class="card"><div class="n">{v:,}</div><div class="k">{_esc(k)}</div></div>'
            for k, v in cards
        ),
        body=body,
        table_note="",
        config={k: state.get(k) for k in ("recipe", "order", "runs")},
        payload=payload,
        path=run_dir,
    )

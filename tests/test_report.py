"""`curate report`: the HTML run report, checked as data and as a page rendered by headless Chromium."""

from __future__ import annotations

import random
import re
import shutil
import subprocess
from pathlib import Path

import orjson
import polars as pl
import pytest

from curate.cli import main
from curate.metrics import pass_at_k
from curate.pipeline import as_step
from curate.report import write_report
from curate.run import FilterConfig, run_filter
from curate.steps import build_steps
from tests.conftest import conv, write_jsonl

SENTENCES = [
    "Start by reading the error message carefully, because it usually names the file and the line.",
    "A virtual environment keeps the packages of one project away from those of another.",
    "Rivers carry sediment downstream and build wide deltas where they meet the sea.",
    "The recipe needs two cups of flour, a pinch of salt and some warm water.",
    "Photosynthesis turns light, water and carbon dioxide into sugar and oxygen.",
    "When the cache is cold, the first request takes longer than the ones that follow.",
    "Most birds migrate at night, when the air is calm and predators are few.",
    "A good commit message says why the change was made, not only what changed.",
    "The museum opens at nine in the morning and closes at six in the evening.",
    "Interest rates rise when the central bank wants to slow down inflation.",
    "Tests that touch the network are slow and fail for reasons nobody controls.",
    "The violin has four strings tuned in perfect fifths, from G up to E.",
    "Sorting a list in place saves memory, while sorted returns a new list.",
    "Heavy rain in the mountains can flood the valley towns within a few hours.",
    "Index the column you filter on most often, and check the query plan afterwards.",
    "The novel follows three sisters who inherit a failing farm after the war.",
    "Stretch before running, and increase your distance by no more than ten percent a week.",
    "A hash map gives constant time lookups on average, but its worst case is linear.",
    "The bridge was closed for repairs after engineers found cracks in its supports.",
    "Drink water regularly during a long hike, even when you do not feel thirsty.",
    "Compilers turn source code into machine code that the processor can run.",
    "The team won the final after a penalty shootout that lasted eleven rounds.",
    "Volcanic soil is rich in minerals, which is why farms crowd the slopes.",
    "Back up your data before upgrading the operating system, just in case.",
    "The telescope collects faint light from galaxies billions of years away.",
    "Learning a language is easier when you practise a little every single day.",
    "The function returns early when the input list is empty, to avoid an error.",
    "Old maps show the coastline much further inland than it is today.",
    "Green tea contains less caffeine than coffee but more than most herbal teas.",
    "Logging at the right level makes a production incident much easier to debug.",
]
TOPICS = [
    "Python",
    "cooking",
    "geography",
    "music",
    "databases",
    "hiking",
    "astronomy",
    "history",
    "finance",
    "sport",
]
N_BASE = 80
N_EXACT = 6
N_NEAR = 5
SEARCH_WORD = "zanzibarian"  # appears in exactly one (rejected) row
HOSTILE = "</script><script>alert(1)</script>"
EMAIL = r"[\w.]+@[\w.]+\.\w+"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="headless Chromium is not installed (Debian package `chromium`, listed in .ci/apt-packages)",
)


def redact_emails(frame: pl.DataFrame) -> pl.DataFrame:
    el = pl.element()
    return frame.with_columns(
        pl.col("messages").list.eval(
            pl.struct(el.struct.field("role"), el.struct.field("content").str.replace_all(EMAIL, "<EMAIL>"))
        )
    )


def planted_rows() -> list[dict]:
    rng = random.Random(7)
    rows = []
    for i in range(N_BASE):
        topic = TOPICS[i % len(TOPICS)]
        answer = " ".join(rng.sample(SENTENCES, rng.randint(5, 9)))
        rows.append(
            conv(
                f"Question {i}: could you explain something useful about {topic}?",
                answer,
                score=round(rng.random(), 3),
                tags=[topic.lower(), rng.choice(["how-to", "fact", "advice"])],
            )
        )
    for i in range(N_EXACT):  # the same conversation, shouted: an exact duplicate after normalization
        m = rows[i]["messages"]
        rows.append(conv(m[0]["content"].upper(), m[1]["content"]))
    for i in range(10, 10 + N_NEAR):  # one word changed in a long answer: a near duplicate
        m = rows[i]["messages"]
        words = m[1]["content"].split()
        words[len(words) // 2] = "meanwhile"
        rows.append(conv(m[0]["content"], " ".join(words)))
    rows.append(
        conv(
            "Quelle est la capitale de la France ?",
            "La capitale de la France est Paris, une très belle ville au bord de la Seine.",
        )
    )
    rows.append(
        conv("Who are you?", f"As an AI language model developed by OpenAI, I am {SEARCH_WORD}. {HOSTILE}")
    )
    rows.append(
        conv(
            "How can I reach support?", "Write to jane.doe@example.com and the team will answer within a day."
        )
    )
    return rows


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("report")
    src = write_jsonl(base / "input.jsonl", planted_rows())
    with open(src, "ab") as fh:
        fh.write(b'{"messages": "not a list"}\n')
    steps = build_steps(["quality", "selfid", "exact-dedup", "near-dedup", "language"])
    steps.insert(1, as_step(redact_emails, kind="editor", name="redact-email"))
    m = run_filter(
        FilterConfig(inputs=[str(src)], output=str(base / "run"), on_error="skip", workers=1, progress=False),
        steps=steps,
    )
    assert m["counts"]["balanced"]
    return Path(m["run_dir"])


@pytest.fixture(scope="module")
def report(run_dir) -> tuple[Path, dict]:
    out = run_dir.parent / "report.html"
    info = write_report(run_dir, out)
    return out, info


def payload(path: Path) -> dict:
    m = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', path.read_text(), re.S)
    assert m, "the page carries its data in one JSON script block"
    return orjson.loads(m.group(1))


def test_report_is_self_contained_and_small(report):
    path, info = report
    page = path.read_text()
    assert info["bytes"] == path.stat().st_size < 20_000_000
    assert not re.search(r"<script[^>]+src=|<link[^>]+href=|@import|<iframe", page), (
        "nothing loaded from outside"
    )
    assert "Plotly" in page and page.count("<script") == 3  # plotly.js, the data, the page's script
    assert "<script>alert(1)" not in page, "row text cannot close the data block"


def test_report_figures_cover_the_run(report, run_dir):
    path, info = report
    ids = set(info["figures"])
    assert {
        "fig-funnel",
        "fig-reasons",
        "fig-words",
        "fig-assistant_words",
        "fig-col-score",
        "fig-languages",
        "fig-tags",
        "fig-jaccard",
        "fig-edits",
    } <= ids
    data = payload(path)
    funnel = next(f for f in data["figures"] if f["id"] == "fig-funnel")["data"][0]
    manifest = orjson.loads((run_dir / "manifest.json").read_bytes())
    assert funnel["x"][0] == manifest["counts"]["input"]
    assert funnel["x"][-1] == manifest["counts"]["kept"]
    reasons = {t["name"] for t in next(f for f in data["figures"] if f["id"] == "fig-reasons")["data"]}
    assert {"exact_duplicate", "near_duplicate", "claims_other_developer", "language_not_allowed"} <= reasons


def test_report_table_explains_rows(report, run_dir):
    data = payload(report[0])
    rows = data["rows"]
    by_reason: dict[str, list[dict]] = {}
    for r in rows:
        by_reason.setdefault(r["reason"], []).append(r)
    assert len(by_reason["exact_duplicate"]) == N_EXACT
    assert len(by_reason["near_duplicate"]) == N_NEAR
    assert len(by_reason["invalid"]) == 1
    kept = {r["id"]: r for r in map(orjson.loads, (run_dir / "kept.jsonl").read_bytes().splitlines())}
    for r in by_reason["exact_duplicate"] + by_reason["near_duplicate"]:
        dup = data["dups"][r["dup"]["id"]]
        assert dup["where"] == "kept"
        assert dup["sections"][0]["turns"][1][1] == kept[r["dup"]["id"]]["messages"][1]["content"]
    (edited,) = by_reason["edited"]
    assert ["-", "jane.doe@example.com"] in edited["edits"][0]["diff"]
    assert ["+", "<EMAIL>"] in edited["edits"][0]["diff"]
    assert data["steps"]["exact-dedup"]["exact_duplicate"] == [N_EXACT, N_EXACT]


def test_table_samples_every_reason_of_a_big_ledger(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    write_jsonl(
        run / "kept.jsonl", [{"id": f"k{i}", **conv(f"q {i}", f"answer number {i}")} for i in range(300)]
    )
    reasons = ["common"] * 2900 + ["rare"] * 80 + ["rarest"] * 20
    rejected = [
        {
            "id": f"r{i}",
            **conv(f"q {i}", "x"),
            "reject_step": "s",
            "reject_reason": reason,
            "reject_detail": f"row r{i}",
        }
        for i, reason in enumerate(reasons)
    ]
    write_jsonl(run / "rejected.jsonl", rejected)
    with open(run / "rejected.jsonl", "r+b") as fh:  # a blank line must not shift which rows are fetched
        body = fh.read()
        fh.seek(0)
        fh.write(b"\n" + body)
    info = write_report(run, tmp_path / "r.html", table_rows=100, language_sample=0)
    rows = payload(tmp_path / "r.html")["rows"]
    count = {r: sum(1 for x in rows if x["reason"] == r) for r in ("common", "rare", "rarest")}
    assert count == {"common": 97, "rare": 25, "rarest": 20}
    assert all(r["detail"] == f"row {r['id']}" for r in rows)
    assert info["table"]["rejected"] == 3000


def test_synth_run_gets_pass_at_k_and_margins(tmp_path):
    run = tmp_path / "synth-run"
    run.mkdir()
    samples = [
        {"id": f"p{p}-{s}", "parent_id": f"p{p}", "sample_index": s, "passed": s < p}
        for p in range(5)
        for s in range(4)
    ]
    write_jsonl(run / "samples.jsonl", samples)
    prefs = [
        {
            "id": f"pair{i}",
            "prompt": [{"role": "user", "content": f"question {i}"}],
            "chosen": [{"role": "assistant", "content": "a long and careful answer " * (i + 1)}],
            "rejected": [{"role": "assistant", "content": "short"}],
            "chosen_score": 0.9,
            "rejected_score": 0.1 * i,
        }
        for i in range(6)
    ]
    write_jsonl(run / "preference.jsonl", prefs)
    write_jsonl(
        run / "rejected.jsonl",
        [
            {
                "id": "p0",
                "messages": [{"role": "user", "content": "question"}],
                "reject_step": "reject-sample",
                "reject_reason": "no_correct_sample",
                "reject_detail": "0 of 4 samples passed",
            }
        ],
    )
    (run / "manifest.json").write_bytes(
        orjson.dumps(
            {
                "command": "synth reject-sample",
                "counts": {"prompts": 5, "samples": 20, "pairs": 6, "rejected": 1},
            }
        )
    )
    info = write_report(run, tmp_path / "s.html", language_sample=0)
    assert {
        "fig-funnel",
        "fig-reasons",
        "fig-pass-at-k",
        "fig-correct-per-prompt",
        "fig-pref-lengths",
        "fig-score-margin",
    } <= set(info["figures"])
    curve = next(f for f in payload(tmp_path / "s.html")["figures"] if f["id"] == "fig-pass-at-k")["data"][0]
    assert curve["x"] == [1, 2, 4]
    assert curve["y"][0] == pytest.approx((0 + 1 + 2 + 3 + 4) / 20)


def test_pass_at_k_is_the_unbiased_estimator():
    from curate.metrics import mean_pass_at_k

    assert pass_at_k(4, 1, 1) == pytest.approx(0.25)
    assert pass_at_k(4, 1, 2) == pytest.approx(1 - 3 / 6)  # 1 - C(3,2)/C(4,2)
    assert pass_at_k(4, 1, 4) == pytest.approx(1.0)
    # Only prompts with at least k samples count.
    assert mean_pass_at_k([(4, 0), (8, 8)], 8) == pytest.approx(1.0)


def test_cli_report(cli, run_dir, tmp_path):
    out = tmp_path / "cli.html"
    res = cli(main, "report", run_dir, "-o", out)
    assert res.exit_code == 0, res.output
    assert str(out) in res.output and out.stat().st_size > 0
    empty = tmp_path / "empty"
    empty.mkdir()
    res = cli(main, "report", empty, "-o", tmp_path / "x.html")
    assert res.exit_code == 1 and "not a run directory" in res.output


# ---------------------------------------------------------------------------------------------- in a browser


def chromium(tmp_path: Path, url: str, *args: str) -> str:
    profile = tmp_path / f"chromium-profile-{len(list(tmp_path.glob('chromium-profile-*')))}"
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=15000",
        *args,
        url,
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    return res.stdout


def table_rows(dom: str) -> list[dict]:
    return [
        dict(re.findall(r'data-(\w+)="([^"]*)"', attrs))
        for attrs in re.findall(r'<details class="row"([^>]*)>', dom)
    ]


@needs_chromium
def test_plots_render_in_chromium(report, tmp_path):
    path, info = report
    assert info["table"]["rows"] <= 25, "the planted run fits on one page, so every row is checked below"
    dom = chromium(tmp_path, path.as_uri() + "#open=1", "--dump-dom")
    assert f'data-plots-rendered="{len(info["figures"])}"' in dom, "every figure drew its SVG"
    for fig_id in info["figures"]:
        start = dom.index(f'id="{fig_id}"')
        assert 'class="main-svg"' in dom[start : dom.find('class="plot"', start + 1)], fig_id
    assert 'data-table-ready="1"' in dom
    assert len(table_rows(dom)) == info["table"]["rows"]
    assert dom.count("<ins>meanwhile</ins>") == N_NEAR, "each near duplicate is diffed against the kept row"
    assert "<del>jane.doe@example.com</del><ins>&lt;EMAIL&gt;</ins>" in dom, "an edit shows as a word diff"


@needs_chromium
def test_table_filters_in_chromium(report, tmp_path):
    url = report[0].as_uri()
    rows = table_rows(chromium(tmp_path, url + "#step=exact-dedup", "--dump-dom"))
    assert len(rows) == N_EXACT and {r["step"] for r in rows} == {"exact-dedup"}

    dom = chromium(tmp_path, url + f"#q={SEARCH_WORD.upper()}", "--dump-dom")
    (row,) = table_rows(dom)
    assert row["reason"] == "claims_other_developer"
    assert 'data-matches="1"' in dom


@needs_chromium
def test_screenshot(report, tmp_path):
    shot = tmp_path / "report.png"
    chromium(
        tmp_path, report[0].as_uri(), f"--screenshot={shot}", "--window-size=1400,1800", "--hide-scrollbars"
    )
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000

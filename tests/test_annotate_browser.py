"""The ranking page in a real browser: Debian's headless Chromium driven by Playwright, against `curate annotate`
running as a real subprocess (killed and restarted midway), on candidates `synth candidates` pooled from three
scripted models. The export is then checked against what was clicked and typed."""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import sys
import threading

import pytest
from conftest import ROOT, read_jsonl, write_jsonl

from curate.cli import main as curate_main

pytestmark = pytest.mark.browser

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
# What each scripted model says: the page must show these texts and never the models' names.
ANSWERS = {
    "m-small": "Short answer {q}.",
    "m-medium": "A medium-length answer to question {q}.",
    "m-large": "A long, careful answer to question {q}, with the reasons behind it.",
}


class Server:
    """`curate annotate CANDIDATES -o OUT` in a subprocess, on a free port it prints."""

    def __init__(self, candidates, out):
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "curate.cli", "annotate", str(candidates), "-o", str(out)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env=env,
        )
        lines: queue.Queue = queue.Queue()
        self.reader = threading.Thread(target=self._read, args=(lines,), daemon=True)
        self.reader.start()
        self.url = None
        while self.url is None:
            try:
                line = lines.get(timeout=120)
            except queue.Empty:
                line = ""
            if not line:
                self.proc.kill()
                raise AssertionError(f"curate annotate did not start: {self.proc.stderr.read()}")
            if line.startswith("open "):
                self.url = line.split()[1]

    def _read(self, lines: queue.Queue) -> None:
        for line in self.proc.stdout:
            lines.put(line)
        lines.put("")

    def kill(self) -> None:
        self.proc.kill()  # SIGKILL: no chance to save anything on the way out
        self.proc.wait(10)
        self.reader.join(10)  # it reads to the end of the closed pipe
        self.proc.stdout.close()
        self.proc.stderr.close()


@pytest.fixture(scope="module")
def candidates(tmp_path_factory):
    """Three prompts, each answered by three scripted models: `synth candidates` shuffles them per prompt."""
    from synth.backends.scripted import ScriptedBackend
    from synth.methods.candidates import Candidates, CandidatesConfig
    from synth.runner import run_method

    tmp = tmp_path_factory.mktemp("pool")
    src = write_jsonl(tmp / "prompts.jsonl", [{"id": f"q{k}", "prompt": f"Question {k}?"} for k in range(3)])

    def backend(name, *, model, **kw):
        return ScriptedBackend(
            lambda req, i: ANSWERS[model].format(q=req.messages[-1]["content"][9]), model=model
        )

    with pytest.MonkeyPatch.context() as mp:
        import synth.runner as runner

        mp.setattr(runner, "get_backend", backend)
        cfg = CandidatesConfig(
            inputs=[str(src)], output=str(tmp / "pool"), models=list(ANSWERS), use_cache=False
        )
        run_method(Candidates, cfg)
    return tmp / "pool" / "candidates.jsonl"


@pytest.fixture(scope="module")
def page():
    if CHROMIUM is None:
        pytest.skip("no Chromium installed (Debian: apt-get install chromium; `make system-deps` does it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.set_default_timeout(15_000)
        yield page
        browser.close()


def chips(page) -> list[str]:
    return page.locator("#ranking .chip .key").all_inner_texts()


def test_rank_edit_flag_skip_reload_kill_restart_and_export(tmp_path, cli, candidates, page):
    from playwright.sync_api import expect

    rows = read_jsonl(candidates)
    text = [[r["text"] for r in row["responses"]] for row in rows]  # as the page shows them, response k+1
    out = tmp_path / "ranked"
    server = Server(candidates, out)
    try:
        # First visit: the page asks for a name, then shows the first prompt; no source reaches the page.
        page.goto(server.url)
        page.fill("#name-input", "alice")
        page.press("#name-input", "Enter")
        expect(page.locator("#where")).to_have_text("prompt 1 of 3")
        for k in range(3):
            expect(page.locator(f"#response-{k + 1} .text").first).to_have_text(text[0][k])
        html = page.content()
        assert not any(name in html for name in ANSWERS) and "strategy" not in html

        # Prompt 1: a key at once (the hidden name field once kept the focus and swallowed it), then the mouse:
        # click a response, drag the second chip to the top, edit the best, submit.
        page.keyboard.press("2")
        expect(page.locator("#ranking .chip")).to_have_count(1)
        page.click("#response-3 .text")
        expect(page.locator("#ranking .chip")).to_have_count(2)
        assert chips(page) == ["2", "3"]
        first, second = (page.locator("#ranking .chip").nth(k).bounding_box() for k in (0, 1))
        page.mouse.move(second["x"] + 30, second["y"] + second["height"] / 2)
        page.mouse.down()
        page.mouse.move(first["x"] + 30, first["y"] + 2, steps=6)
        page.mouse.up()
        expect(page.locator("#response-3 .rank")).to_have_text("#1")  # redrawn from the server's answer
        assert chips(page) == ["3", "2"]
        page.click("#edit-btn")
        expect(page.locator("#edit-text")).to_have_value(text[0][2])
        page.fill("#edit-text", "An edited, better answer to question 0.")
        page.click("#edit-save")
        expect(page.locator("#edit-note")).to_contain_text("Edited version of response 3 saved")
        page.click("#submit")
        expect(page.locator("#where")).to_have_text("prompt 2 of 3")

        # Prompt 2 with the keyboard: 1 and 3 rank, Shift+Up moves 3 up, Up selects 2, w flags it wrong.
        page.keyboard.press("1")
        page.keyboard.press("3")
        page.keyboard.press("Shift+ArrowUp")
        page.keyboard.press("ArrowUp")
        page.keyboard.press("w")
        expect(page.locator("#response-2 .rank")).to_have_text("flagged: wrong")
        expect(page.locator("#response-3 .rank")).to_have_text("#1")
        # Reload mid-task: the draft comes back from the server as it was left.
        page.reload()
        expect(page.locator("#where")).to_have_text("prompt 2 of 3")
        expect(page.locator("#response-2 .rank")).to_have_text("flagged: wrong")
        assert chips(page) == ["3", "1"]
        page.keyboard.press("Enter")
        expect(page.locator("#where")).to_have_text("prompt 3 of 3")
        page.keyboard.press("1")  # a draft on prompt 3, then the server dies
        expect(page.locator("#ranking .chip")).to_have_count(1)
    finally:
        server.kill()

    # Restart on the same OUT: the page continues at the prompt alice has not finished, with her draft.
    server = Server(candidates, out)
    try:
        page.goto(server.url)
        expect(page.locator("#where")).to_have_text("prompt 3 of 3")
        expect(page.locator("#who")).to_contain_text("alice")
        assert chips(page) == ["1"]
        page.keyboard.press("s")
        expect(page.locator("#skip-reason")).to_be_focused()
        page.keyboard.type("Not sure what is asked")
        page.keyboard.press("Enter")
        expect(page.locator("#overview-title")).to_have_text("All 3 prompts done. Thank you!")

        # A second annotator, named in the address, ranks prompt 1 by keys; agreement then shows on it.
        page.goto(server.url + "?annotator=bob")
        expect(page.locator("#where")).to_have_text("prompt 1 of 3")
        expect(page.locator("#ranking .chip")).to_have_count(0)  # alice's work is hers
        for key in ("3", "1", "Enter"):
            page.keyboard.press(key)
        expect(page.locator("#where")).to_have_text("prompt 2 of 3")
        page.keyboard.press("ArrowLeft")
        expect(page.locator("#agreement")).to_have_text(
            "Agreement: 2 annotators ranked this prompt · Kendall's τ 0.333 · top choice agreed 100% · "
            "combined: 3 > 2 > 1"
        )
    finally:
        server.kill()

    # The export holds exactly what was done on the page.
    r = cli(curate_main, "annotate", "export", out, "-o", tmp_path / "data")
    assert r.exit_code == 0, r.output
    data = tmp_path / "data"
    q = [row["prompt"] for row in rows]
    a = lambda t: [{"role": "assistant", "content": t}]  # noqa: E731
    edited = "An edited, better answer to question 0."
    assert read_jsonl(data / "sft.jsonl") == [
        {"id": rows[0]["id"], "messages": q[0] + a(edited)},
        {"id": rows[1]["id"], "messages": q[1] + a(text[1][2])},
    ]
    assert [
        (p["prompt"], p["chosen"], p["rejected"], p.get("edited"))
        for p in read_jsonl(data / "preference.jsonl")
    ] == [
        (q[0], a(text[0][2]), a(text[0][1]), a(edited)),
        (q[0], a(text[0][2]), a(text[0][0]), a(edited)),
        (q[1], a(text[1][2]), a(text[1][0]), None),
    ]
    assert [(row["responses"], row.get("edited")) for row in read_jsonl(data / "ranked.jsonl")] == [
        ([a(text[0][k]) for k in (2, 1, 0)], a(edited)),
        ([a(text[1][k]) for k in (2, 0)], None),
    ]
    ledger = {(row["id"], row["reject_reason"]): row for row in read_jsonl(data / "rejected.jsonl")}
    assert set(ledger) == {(rows[2]["id"], "skipped"), (rows[1]["responses"][1]["id"], "flagged_wrong")}
    assert ledger[rows[2]["id"], "skipped"]["reject_detail"] == "alice: Not sure what is asked"
    assert ledger[rows[1]["responses"][1]["id"], "flagged_wrong"]["response"]["text"] == text[1][1]
    m = json.loads((data / "manifest.json").read_text())
    c = m["counts"]
    assert (c["prompts"], c["exported"], c["skipped"], c["not_annotated"], c["balanced"]) == (
        3,
        2,
        1,
        0,
        True,
    )
    assert m["annotators"] == {
        "alice": {"ranked": 2, "skipped": 1, "open": 0},
        "bob": {"ranked": 1, "skipped": 0, "open": 0},
    }
    assert m["agreement"]["mean_kendall_tau"] == 0.333 and m["agreement"]["mean_top_agreement"] == 1.0

"""Take docs/annotate.png: the ranking page of `curate annotate` on sample_data/candidates.jsonl, mid-task.

    .venv/bin/python scripts/annotate_screenshot.py [-o docs/annotate.png]

Starts the server and Debian's headless Chromium as the browser test does (tests/test_annotate_browser.py), ranks
two of the four responses of the second prompt by keys, flags one off-topic, and saves an edit of the best.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from test_annotate_browser import CHROMIUM, LAUNCH_ARGS, Server  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--output", default=str(ROOT / "docs" / "annotate.png"))
    args = ap.parse_args()
    if CHROMIUM is None:
        sys.exit("no Chromium installed (apt-get install chromium)")
    from playwright.sync_api import expect, sync_playwright

    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as pw:
        server = Server(ROOT / "sample_data" / "candidates.jsonl", Path(tmp) / "ranked")
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 1000})
            page.goto(server.url + "?annotator=alice#/2")
            expect(page.locator("#where")).to_have_text("prompt 2 of 6")
            texts = page.locator("#responses .card > .text").all_inner_texts()

            def find(words: str) -> int:
                return next(k for k, t in enumerate(texts) if words in t)

            page.click(f"#response-{find('favourite season') + 1} .flag >> text=off-topic")
            for k in (find("state of the atmosphere"), find("short-term")):
                page.keyboard.press(str(k + 1))
            expect(page.locator("#ranking .chip")).to_have_count(2)
            page.keyboard.press("e")
            page.fill(
                "#edit-text",
                texts[find("state of the atmosphere")] + " Both are measured by weather stations.",
            )
            page.click("#edit-save")
            expect(page.locator("#edit-note")).to_be_visible()
            page.mouse.move(0, 0)
            page.wait_for_timeout(3000)  # the toast fades
            page.screenshot(path=args.output, full_page=True)
        finally:
            browser.close()
            server.kill()
    print(args.output)


if __name__ == "__main__":
    main()

"""How long a person waits for a save, and how long an export takes: `curate annotate` as a real subprocess,
driven over HTTP by the same calls the page makes, then `curate annotate export`.

    .venv/bin/python benchmarks/bench_annotate.py --prompts 2000 --responses 4 --actions 400

Each action (a ranking change, a flag, a submit) is one committed SQLite transaction (WAL, synchronous=FULL)
before the answer leaves: the latency quoted is the round trip the page waits for.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from conftest import write_jsonl  # noqa: E402
from test_annotate_browser import Server  # noqa: E402


def pool(n: int, k: int) -> list[dict]:
    return [
        {
            "id": f"p{i}",
            "prompt": [{"role": "user", "content": f"Question {i}: explain something in a few sentences."}],
            "responses": [
                {"text": f"Response {j} to question {i}. " * 20, "sources": [{"model": f"m{j}"}]}
                for j in range(k)
            ],
        }
        for i in range(n)
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", type=int, default=2000)
    ap.add_argument("--responses", type=int, default=4)
    ap.add_argument("--actions", type=int, default=400, help="actions timed per annotator")
    args = ap.parse_args()
    import httpx

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cand = write_jsonl(tmp / "candidates.jsonl", pool(args.prompts, args.responses))
        t0 = time.perf_counter()
        server = Server(cand, tmp / "ranked")
        started = time.perf_counter() - t0
        waits: dict[str, list[float]] = {"rank": [], "flag": [], "submit": [], "view": []}
        try:
            with httpx.Client(base_url=server.url) as http:
                for name in ("alice", "bob"):
                    headers = {"X-Annotator": name}
                    http.post("/api/annotators", headers=headers).raise_for_status()
                    pos = 0
                    while sum(len(w) for w in waits.values()) < args.actions * (1 if name == "alice" else 2):
                        order = list(range(args.responses))
                        if name == "bob":
                            order.reverse()
                        calls = [
                            ("view", "GET", f"/api/prompts/{pos}", None),
                            ("rank", "PUT", f"/api/prompts/{pos}/ranking", {"ranking": order[:1]}),
                            ("flag", "PUT", f"/api/prompts/{pos}/flags/{order[-1]}", {"reason": "wrong"}),
                            ("rank", "PUT", f"/api/prompts/{pos}/ranking", {"ranking": order[:-2]}),
                            ("submit", "POST", f"/api/prompts/{pos}/submit", None),
                        ]
                        for kind, method, path, body in calls:
                            t = time.perf_counter()
                            http.request(method, path, headers=headers, json=body).raise_for_status()
                            waits[kind].append(time.perf_counter() - t)
                        pos += 1
        finally:
            server.kill()
        t = time.perf_counter()
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        subprocess.run(
            [
                sys.executable,
                "-m",
                "curate.cli",
                "annotate",
                "export",
                str(tmp / "ranked"),
                "-o",
                str(tmp / "data"),
            ],
            check=True,
            env=env,
            capture_output=True,
        )
        exported = time.perf_counter() - t
    print(f"server start (read and load {args.prompts} prompts, first line printed): {started:.2f} s")
    for kind, w in waits.items():
        ms = sorted(x * 1000 for x in w)
        print(
            f"{kind:<7} {len(ms):>5} calls  median {statistics.median(ms):6.1f} ms  p95 {ms[int(0.95 * len(ms))]:6.1f} ms"
        )
    print(
        f"export of {args.prompts} prompts ({pos} ranked by both annotators): {exported:.2f} s (whole command)"
    )


if __name__ == "__main__":
    main()

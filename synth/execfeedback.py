"""Execution feedback: code taken from responses and run against tests in the sandbox.

Three users: `synth exec-verify` (responses that already exist, checked against the row's `tests`), the
`code` verifier of `synth reject-sample` (sampled responses, checked the same way) and generated tests
(`--generate-tests`: for prompts without tests the LLM writes unit tests, and tests and solutions are
cross-checked, as CodeT does: a test is kept when at least one solution passes it, a solution is ranked by
the kept tests it passes and is correct when it passes them all).

A row's tests are assert statements (a list, or one string of Python) or HumanEval's `def check(candidate)`
with the row's `entry_point`. Each check is a `synth.sandbox.TestJob` (`check_job`): the solution is loaded as
the module `solution` (so its `if __name__ == "__main__":` block does not run) in one process, and the tests
run in another against proxies of its names, with only plain data between them, so a solution cannot forge
its verdict; a failing assert shows its line (from `tests.py`) in the message and in the stderr kept.
`program` is the older single-process program, still used where the code is the judge rather than the
judged (AutoIF's verification functions).

>>> extract_code("Here:\\n```python\\ndef add(a, b):\\n    return a + b\\n```\\nDone.")
'def add(a, b):\\n    return a + b'
>>> assemble_tests(["assert add(1, 2) == 3"], entry_point="add")
'assert add(1, 2) == 3'
>>> assemble_tests("def check(candidate):\\n    assert candidate(1, 2) == 3", entry_point="add").splitlines()[-1]
'check(add)'
"""

from __future__ import annotations

import ast
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from synth.sandbox import Result, Sandbox

FENCE = re.compile(r"^[ \t]*```[ \t]*([\w+.-]*)[^\n]*\n(.*?)^[ \t]*```", re.S | re.M)
OPEN_FENCE = re.compile(r"^[ \t]*```[ \t]*([\w+.-]*)[^\n]*\n(.*)\Z", re.S | re.M)
PYTHON_TAGS = {"python", "py", "python3", "py3"}
STDERR_TAIL = 1500  # characters of stderr kept with a verdict

PROGRAM = """import linecache as _linecache


def _load(_name, _source, _namespace):
    _linecache.cache[_name] = (len(_source), None, _source.splitlines(True), _name)
    exec(compile(_source, _name, "exec"), _namespace)


_namespace = {{"__name__": "solution", "__builtins__": __builtins__}}
_load("solution.py", {solution!r}, _namespace)
_load("tests.py", {tests!r}, _namespace)
"""


class NoTests(ValueError):
    """The row's tests are missing or unusable."""


def extract_code(text: str | None) -> str | None:
    """The Python code of a response: its ```python blocks (else its untagged blocks) joined, or the whole text
    when it has no fence and parses as Python; None when there is none."""
    if not text:
        return None
    blocks = [(lang.lower(), body) for lang, body in FENCE.findall(text)]
    if not blocks:  # a block cut off at max_tokens has no closing fence
        blocks = [(lang.lower(), body) for lang, body in OPEN_FENCE.findall(text)]
    chosen = [b for lang, b in blocks if lang in PYTHON_TAGS] or [b for lang, b in blocks if not lang]
    if chosen:
        code = "\n\n".join(b.strip("\n") for b in chosen)
        return code if code.strip() else None
    if blocks:
        return None  # only other languages (```bash, ```text)
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return None
    definitions = (ast.FunctionDef, ast.ClassDef, ast.Assign, ast.Import, ast.ImportFrom)
    return text.strip("\n") if any(isinstance(n, definitions) for n in tree.body) else None


def assemble_tests(tests, *, entry_point: str | None = None) -> str:
    """Python source of a row's tests: assert lines joined, or HumanEval's `check` called on `entry_point`."""
    if isinstance(tests, list):
        if not tests or not all(isinstance(t, str) for t in tests):
            raise NoTests("tests must be a non-empty list of strings (assert statements)")
        src = "\n".join(t.rstrip() for t in tests)
    elif isinstance(tests, str) and tests.strip():
        src = tests.rstrip()
    else:
        raise NoTests("no tests (expected a list of assert statements or a string of Python)")
    try:
        tree = ast.parse(src)
    except SyntaxError as e:
        raise NoTests(f"tests do not parse: {e.msg} (line {e.lineno})") from None
    defines_check = any(isinstance(n, ast.FunctionDef) and n.name == "check" for n in tree.body)
    calls_check = "check(" in src.replace("def check(", "")
    if defines_check and not calls_check:
        if not entry_point:
            raise NoTests("HumanEval-style tests (def check(candidate)) need the row's entry_point")
        if not entry_point.isidentifier():
            raise NoTests(f"entry_point {entry_point!r} is not a Python name")
        src += f"\n\n\ncheck({entry_point})"
    return src


def program(solution: str, tests: str) -> str:
    return PROGRAM.format(solution=solution, tests=tests)


def check_job(solution: str, tests: str, entry_point=None, id: str | None = None):
    """The sandbox job that runs `tests` against `solution` in two processes (an unusable entry point is
    ignored: `assemble_tests` has already called `check` on a usable one)."""
    from synth.sandbox import TestJob

    usable = isinstance(entry_point, str) and entry_point.isidentifier()
    return TestJob(solution, tests, entry_point=entry_point if usable else None, id=id)


def stderr_tail(text: str, limit: int = STDERR_TAIL) -> str:
    return text if len(text) <= limit else "..." + text[-limit:]


def describe(result: Result) -> str:
    """One line for a ledger: the verdict's cause and message."""
    if result.verdict == "pass":
        return "passed"
    cause = result.error or result.verdict
    msg = (result.message or "").strip().replace("\n", " ")
    if len(msg) > 200:
        msg = msg[:200] + "..."
    return f"{result.verdict}: {cause}" + (f": {msg}" if msg else "")


def exec_record(result: Result) -> dict:
    """What a row keeps of its run: verdict, error class, message, the tail of stderr and the time."""
    return {
        "verdict": result.verdict,
        "error": result.error,
        "message": result.message,
        "stderr_tail": stderr_tail(result.stderr or ""),
        "duration_s": round(result.duration_s, 4),
    }


@dataclass
class SandboxSettings:
    """How jobs run: the sandbox backend, its workers and the limits of one job."""

    backend: str = "auto"
    workers: int = 2
    wall_s: float = 10.0
    memory_mb: int = 1024

    def limits(self):
        from synth.sandbox import Limits

        return Limits(wall_s=self.wall_s, cpu_s=self.wall_s, memory_mb=self.memory_mb)

    @classmethod
    def of(cls, cfg) -> SandboxSettings:
        """From a command's config (the fields `synth.options.sandbox_settings` fills)."""
        return cls(cfg.sandbox, cfg.sandbox_workers, cfg.exec_timeout, cfg.exec_memory_mb)

    def open(self) -> Sandbox:
        from synth.sandbox import Sandbox

        return Sandbox(workers=self.workers, limits=self.limits(), backend=self.backend)


@dataclass
class RowTests:
    """A row's tests as source, or why it has none."""

    source: str | None
    problem: str | None = None

    @classmethod
    def of(cls, row: dict, *, field: str = "tests", entry_point_field: str = "entry_point") -> RowTests:
        if row.get(field) is None:
            return cls(None, f"no '{field}' field")
        try:
            return cls(assemble_tests(row[field], entry_point=row.get(entry_point_field)))
        except NoTests as e:
            return cls(None, f"'{field}': {e}")


@dataclass
class CrossCheck:
    """Generated tests against sampled solutions: which tests are kept and what each solution passes."""

    tests: list[str]
    passes: list[list[bool]]  # passes[solution][test]
    kept: list[int] = field(default_factory=list)  # indices of tests at least one solution passes

    def __post_init__(self):
        self.kept = [j for j in range(len(self.tests)) if any(row[j] for row in self.passes)]

    def passed(self, solution: int) -> int:
        return sum(self.passes[solution][j] for j in self.kept)

    def correct(self, solution: int) -> bool:
        return bool(self.kept) and self.passed(solution) == len(self.kept)


def split_asserts(text: str) -> list[str]:
    """The top-level assert statements of generated tests (code fences and prose around them dropped)."""
    code = extract_code(text) or text
    try:
        tree = ast.parse(code)
    except SyntaxError:
        lines = [ln.strip() for ln in code.splitlines() if ln.strip().startswith("assert ")]
        out = []
        for ln in lines:
            try:
                ast.parse(ln)
            except SyntaxError:
                continue
            out.append(ln)
        return out
    return [ast.get_source_segment(code, n) for n in tree.body if isinstance(n, ast.Assert)]


def verdict_counts(results: list[Result]) -> dict:
    return dict(Counter(r.verdict for r in results).most_common())


class CodeVerifier:
    """The `code` verifier of `synth reject-sample`: each response's code runs against the row's tests in the
    sandbox (correct = the whole program ran without an exception). With `llm` (generated tests), prompts
    without tests get `n_tests` asserts from the LLM, cross-checked against the samples (`CrossCheck`)."""

    name = "code"
    missing_reason = "no_tests"

    def __init__(
        self,
        settings: SandboxSettings,
        *,
        tests_field: str = "tests",
        entry_point_field: str = "entry_point",
        llm=None,
        n_tests: int = 8,
        rules: str = "exec_tests.yaml",
        max_tokens: int = 512,
        seed: int | None = None,
    ):
        from rules import load_rules, rules_path

        self.settings = settings
        self.tests_field, self.entry_point_field = tests_field, entry_point_field
        self.llm, self.n_tests, self.max_tokens, self.seed = llm, n_tests, max_tokens, seed
        self.rules = load_rules(rules) if llm is not None else None
        self.rules_path = str(rules_path(rules)) if llm is not None else None
        self._sandbox: Sandbox | None = None
        self.jobs: Counter = Counter()
        self.generated = Counter()  # prompts asked, tests written, tests kept, prompts with no usable test

    @property
    def sandbox(self) -> Sandbox:
        if self._sandbox is None:
            self._sandbox = self.settings.open()
        return self._sandbox

    def check(self, row: dict) -> tuple[str | None, str | None]:
        """The row's tests as source, or (None, why it cannot be verified); with generated tests, rows without
        tests are verified against the LLM's."""
        tests = RowTests.of(row, field=self.tests_field, entry_point_field=self.entry_point_field)
        if tests.source is None and self.llm is not None and row.get(self.tests_field) is None:
            return None, None
        return tests.source, tests.problem

    def verify(self, items) -> None:
        given = [it for it in items if it.gold is not None]
        todo = [
            (s, check_job(code, it.gold, it.row.get(self.entry_point_field)))
            for it in given
            for s in it.samples
            if s.pending and (code := self._code(s)) is not None
        ]
        for (s, _), r in zip(todo, self._run([j for _, j in todo]), strict=True):
            s.verdict = "correct" if r.passed else "incorrect"
            s.score = 1.0 if r.passed else 0.0
            s.extracted = "pass" if r.passed else (r.error or "fail") if r.verdict == "fail" else r.verdict
            s.why = describe(r) + ("" if r.passed else f" | stderr: {stderr_tail(r.stderr or '', 300)}")
        generated = [it for it in items if it.gold is None]
        if generated:
            self._verify_generated(generated)

    def _code(self, s) -> str | None:
        code = extract_code(s.text)
        if code is None:
            s.verdict, s.score, s.extracted = "incorrect", 0.0, "no_code"
            s.why = "no Python code in the response"
        return code

    def _run(self, jobs: list) -> list[Result]:
        results = self.sandbox.map(jobs) if jobs else []
        self.jobs.update(r.verdict for r in results)
        return results

    def _tests_request(self, item):
        from synth.backends import ChatRequest
        from synth.parse import fill_template

        r = self.rules
        entry = item.row.get(self.entry_point_field)
        hint = fill_template(r.get("entry_point_hint", ""), entry_point=entry) if entry else ""
        task = "\n\n".join(m["content"] for m in item.messages if m["role"] != "system")
        user = fill_template(r["template"], task=task, n_tests=self.n_tests, entry_point_hint=hint)
        return ChatRequest(
            [{"role": "system", "content": r["system"].strip()}, {"role": "user", "content": user}],
            n=1,
            temperature=0.0,
            max_tokens=self.max_tokens,
            seed=self.seed,
        )

    def _verify_generated(self, items) -> None:
        answers = self.llm.complete_each([self._tests_request(it) for it in items])
        self.generated["prompts"] += len(items)
        plans = []
        for item, (comps, error) in zip(items, answers, strict=True):
            tests = (
                [] if comps[0] is None else list(dict.fromkeys(split_asserts(comps[0].text)))[: self.n_tests]
            )
            self.generated["tests_written"] += len(tests)
            codes = {s.index: self._code(s) for s in item.samples if s.pending}
            codes = {i: c for i, c in codes.items() if c is not None}
            if not tests:
                why = (
                    f"test generation failed: {error}"
                    if comps[0] is None
                    else "the LLM wrote no assert statement"
                )
                self.generated["prompts_without_tests"] += 1
                for s in item.samples:
                    if s.pending or s.extracted == "no_code":
                        s.verdict, s.score, s.extracted, s.why = "unverified", None, None, why
                item.notes["generated_tests"] = {"written": [], "kept": [], "why": why}
                continue
            plans.append((item, tests, codes))
        jobs = [
            check_job(code, t, item.row.get(self.entry_point_field))
            for item, tests, codes in plans
            for code in codes.values()
            for t in tests
        ]
        results = iter(self._run(jobs))
        for item, tests, codes in plans:
            passes = {i: [next(results).passed for _ in tests] for i in codes}
            for s in item.samples:  # samples without code pass nothing, but still count as solutions
                passes.setdefault(s.index, [False] * len(tests))
            order = sorted(passes)
            cc = CrossCheck(tests, [passes[i] for i in order])
            self.generated["tests_kept"] += len(cc.kept)
            item.notes["generated_tests"] = {"written": tests, "kept": [tests[j] for j in cc.kept]}
            for k, i in enumerate(order):
                s = item.samples[i]
                if s.extracted == "no_code" or not s.pending:
                    continue
                ok = cc.correct(k)
                s.verdict = "correct" if ok else "incorrect"
                s.score = cc.passed(k) / len(cc.kept) if cc.kept else 0.0
                s.extracted = f"{cc.passed(k)}/{len(cc.kept)} tests"
                s.why = (
                    f"passed {cc.passed(k)} of the {len(cc.kept)} generated tests that some solution passes "
                    f"({len(tests) - len(cc.kept)} of {len(tests)} written were passed by none)"
                )

    def info(self) -> dict:
        out = {
            "name": self.name,
            "tests_field": self.tests_field,
            "entry_point_field": self.entry_point_field,
            "jobs": dict(self.jobs.most_common()),
            "sandbox": self._sandbox.info()
            if self._sandbox is not None
            else {"backend": self.settings.backend},
        }
        if self.llm is not None:
            out["generated_tests"] = {
                "rules": self.rules_path,
                "n_tests": self.n_tests,
                **self.generated,
                "llm": self.llm.stats.as_dict(),
            }
        return out

    def close(self) -> None:
        if self._sandbox is not None:
            self._sandbox.close()
            self._sandbox = None

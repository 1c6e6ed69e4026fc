"""`code`: code taken from responses and run against tests in the sandbox (execution feedback).

Users: `synth exec-verify` (responses that already exist, checked against the row's `tests`), `synth
reject-sample --verifier code` (sampled responses, checked the same way), train's code rewards, and generated tests
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

from synth.config import setting, settings
from synth.verifiers import Task, Verdict, Verifier

if TYPE_CHECKING:
    from synth.sandbox import Result

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


@settings
class CodeSettings:
    tests_field: str = setting(
        "tests", "code: column with the tests: assert statements, or HumanEval's def check(candidate)."
    )
    entry_point_field: str = setting(
        "entry_point", "code: column naming the function HumanEval-style tests call."
    )
    generate_tests: bool = setting(
        False,
        "code: for prompts without tests the LLM writes --n-tests asserts; a test counts when some sample passes "
        "it, a sample is correct when it passes every such test (rules/exec_tests.yaml).",
    )
    n_tests: int = setting(8, "code: tests to generate per prompt.", min=1)


class CodeVerifier(Verifier):
    """Each completion's code runs against the row's tests in the sandbox (correct = every test passed). With
    `generate_tests`, rows without tests get `n_tests` asserts from the generating LLM, cross-checked against
    the completions (`CrossCheck`, as CodeT does)."""

    name = "code"
    missing_reason = "no_tests"
    Settings = CodeSettings

    def __init__(self, settings, ctx, *, rules: str = "exec_tests.yaml", max_tokens: int = 512):
        from rules import load_rules, rules_path

        super().__init__(settings, ctx)
        s = settings
        self.tests_field, self.entry_point_field = s.tests_field, s.entry_point_field
        self.generate = s.generate_tests
        if self.generate and (ctx is None or ctx.llm is None):
            from curate.io import InputError

            raise InputError("--generate-tests needs a model to write the tests (--model)")
        self.n_tests, self.max_tokens, self.seed = s.n_tests, max_tokens, getattr(s, "seed", None)
        self.rules = load_rules(rules) if self.generate else None
        self.rules_path = str(rules_path(rules)) if self.generate else None
        self.jobs: Counter = Counter()
        self.generated: Counter = (
            Counter()
        )  # prompts asked, tests written, tests kept, prompts with no usable test

    def _tests(self, row: dict) -> RowTests:
        return RowTests.of(row, field=self.tests_field, entry_point_field=self.entry_point_field)

    def problem(self, row: dict) -> str | None:
        if self.generate and row.get(self.tests_field) is None:
            return None  # the LLM writes them
        return self._tests(row).problem

    def verify(self, tasks: list[Task]) -> list[list[Verdict]]:
        out: list[list[Verdict | None]] = [[None] * len(t.completions) for t in tasks]
        runs, generated = [], []
        for t, task in enumerate(tasks):
            tests = self._tests(task.row)
            if tests.source is None:
                if self.generate and task.row.get(self.tests_field) is None:
                    generated.append(t)
                else:
                    out[t] = [Verdict(None, "unscored", tests.problem) for _ in task.completions]
                continue
            for c, text in enumerate(task.completions):
                code = extract_code(text)
                if code is None:
                    out[t][c] = NO_CODE
                else:
                    runs.append(((t, c), code, tests.source, task.row.get(self.entry_point_field)))
        for ((t, c), *_), r in zip(runs, self._run([run[1:] for run in runs]), strict=True):
            out[t][c] = self._verdict(r)
        if generated:
            self._verify_generated([tasks[t] for t in generated], [out[t] for t in generated])
        return out  # type: ignore[return-value]

    @staticmethod
    def _verdict(r: Result) -> Verdict:
        facts = {"exec": exec_record(r)}
        if r.passed:
            return Verdict(1.0, "correct", describe(r), "pass", facts=facts)
        extracted = (r.error or "fail") if r.verdict == "fail" else r.verdict
        detail = describe(r) + f" | stderr: {stderr_tail(r.stderr or '', 300)}"
        return Verdict(0.0, "incorrect", detail, extracted, facts=facts)

    def _run(self, checks: list[tuple[str, str, str | None]]) -> list[Result]:
        """Run each (solution, tests, entry point) in the sandbox as a `TestJob`: the tests run in a process
        that never runs the solution's code (see `synth.sandbox`)."""
        jobs = [check_job(code, tests, entry_point) for code, tests, entry_point in checks]
        results = self.ctx.sandbox().map(jobs) if jobs else []
        self.jobs.update(r.verdict for r in results)
        return results

    def _tests_request(self, task: Task):
        from rules import fill
        from synth.backends import ChatRequest

        r = self.rules
        entry = task.row.get(self.entry_point_field)
        hint = fill(r.get("entry_point_hint", ""), entry_point=entry) if entry else ""
        text = "\n\n".join(m["content"] for m in task.messages if m["role"] != "system")
        user = fill(r["template"], task=text, n_tests=self.n_tests, entry_point_hint=hint)
        return ChatRequest(
            [{"role": "system", "content": r["system"].strip()}, {"role": "user", "content": user}],
            n=1,
            temperature=0.0,
            max_tokens=self.max_tokens,
            seed=self.seed,
        )

    def _verify_generated(self, tasks: list[Task], outs: list[list]) -> None:
        answers = self.ctx.llm.complete_each([self._tests_request(t) for t in tasks])
        self.generated["prompts"] += len(tasks)
        plans = []
        for task, row, (comps, error) in zip(tasks, outs, answers, strict=True):
            tests = (
                [] if comps[0] is None else list(dict.fromkeys(split_asserts(comps[0].text)))[: self.n_tests]
            )
            self.generated["tests_written"] += len(tests)
            if not tests:
                why = (
                    f"test generation failed: {error}"
                    if comps[0] is None
                    else "the LLM wrote no assert statement"
                )
                self.generated["prompts_without_tests"] += 1
                row[:] = [Verdict(None, "unscored", why) for _ in task.completions]
                task.notes["generated_tests"] = {"written": [], "kept": [], "why": why}
                continue
            codes = {c: extract_code(text) for c, text in enumerate(task.completions)}
            plans.append((task, row, tests, {c: code for c, code in codes.items() if code is not None}))
        results = iter(
            self._run(
                [
                    (code, t, task.row.get(self.entry_point_field))
                    for task, _, tests, codes in plans
                    for code in codes.values()
                    for t in tests
                ]
            )
        )
        for task, row, tests, codes in plans:
            passes = {c: [next(results).passed for _ in tests] for c in codes}
            order = range(
                len(task.completions)
            )  # completions without code pass nothing, but count as solutions
            cc = CrossCheck(tests, [passes.get(c, [False] * len(tests)) for c in order])
            self.generated["tests_kept"] += len(cc.kept)
            task.notes["generated_tests"] = {"written": tests, "kept": [tests[j] for j in cc.kept]}
            for c in order:
                if c not in codes:
                    row[c] = NO_CODE
                    continue
                ok, n = cc.correct(c), cc.passed(c)
                row[c] = Verdict(
                    n / len(cc.kept) if cc.kept else 0.0,
                    "correct" if ok else "incorrect",
                    f"passed {n} of the {len(cc.kept)} generated tests that some solution passes "
                    f"({len(tests) - len(cc.kept)} of {len(tests)} written were passed by none)",
                    f"{n}/{len(cc.kept)} tests",
                )

    def info(self) -> dict:
        sandbox = (
            self.ctx.sandbox().info() if self.jobs else {"backend": getattr(self.settings, "sandbox", "auto")}
        )
        out = {
            "name": self.name,
            "tests_field": self.tests_field,
            "entry_point_field": self.entry_point_field,
            "jobs": dict(self.jobs.most_common()),
            "sandbox": sandbox,
        }
        if self.generate:
            out["generated_tests"] = {
                "rules": self.rules_path,
                "n_tests": self.n_tests,
                **self.generated,
                "llm": self.ctx.llm.stats.as_dict(),
            }
        return out


NO_CODE = Verdict(0.0, "incorrect", "no Python code in the response", "no_code")

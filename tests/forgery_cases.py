"""Wrong solutions that try to forge a passing verdict, and honest ones that must pass (tests/test_code_forgery.py).

Every attack is a solution that computes the wrong answer (or none) and tries to be verified anyway: by
comparison tricks, by reading the tests or the expected values out of the interpreter, by subverting the
harness, by forging the completion record, or by attacking the process that runs the tests. `old` says whether
it passes when solution and tests share one interpreter (`synth.verifiers.code.program` as one `Job`, how
execution feedback ran before `TestJob`); the test suite checks that claim too, so each `old=True` attack is
shown to be a real forgery of the single-process harness.

Cases with `touches_host` signal, trace or read other processes: harmless inside the forkserver sandbox (other
uids, hidden /proc, its own pid namespace), but with the `unsafe` backend they would act on the whole machine
as the calling user -- `os.kill(-1, SIGKILL)` as root ends every process on it. Never run them unsafe.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Case:
    name: str
    solution: str
    tests: str
    entry_point: str | None = None
    old: bool = False  # passes the single-process harness
    touches_host: bool = (
        False  # acts on other processes: run only where jobs are isolated, never with `unsafe`
    )


ADD_TESTS = "assert add(2, 3) == 5\nassert add(-1, 1) == 0\nassert add(10, 20) == 30\n"
ADD_CHECK = "def check(candidate):\n    assert candidate(2, 3) == 5\n    assert candidate(-1, 1) == 0\n"
FLOAT_TESTS = "assert abs(add(0.1, 0.2) - 0.3) < 1e-9\nassert abs(add(1.5, 1.0) - 2.5) < 1e-9\n"
# Reads the expected values out of a test source (any text holding `add(a, b) == c` lines) into a table.
PARSE = """
import re as _re

def _table(text):
    out = {}
    for a, b, c in _re.findall(r"(?:add|candidate)\\(\\s*(-?[\\d.]+),\\s*(-?[\\d.]+)\\)\\s*==\\s*(-?[\\d.]+)", text):
        out[(float(a), float(b))] = int(c) if c.lstrip("-").isdigit() else float(c)
    return out
"""
# The completion record of the single-process runner, written by the solution itself: the token is a local of
# the runner's frame (`run_program(code, token, job_dir)`).
RECORD = """
import json, os, sys

def _forge(token):
    os.write(3, (token + " " + json.dumps({"pid": os.getpid(), "status": "ok"}) + "\\n").encode())
    os._exit(0)
"""

# Every readable mapping of the process's own memory (ctypes: /proc/self/mem is closed to a non-dumpable process).
MEMORY = """
import ctypes

def _memory():
    out = []
    for line in open('/proc/self/maps'):
        f = line.split()
        lo, hi = (int(x, 16) for x in f[0].split('-'))
        if f[1].startswith('r') and len(f) > 5 and f[5].startswith('[v') or not f[1].startswith('r'):
            continue
        if len(f) > 5 and f[5].startswith('/') and not f[1].startswith('rw'):
            continue  # code and read-only data of files
        out.append(ctypes.string_at(lo, hi - lo))
    return b''.join(out)
"""

ATTACKS = [
    # -- comparison: objects whose dunders say yes
    Case(
        "always-equal object",
        "class Yes:\n    def __eq__(self, other):\n        return True\n\ndef add(a, b):\n    return Yes()\n",
        ADD_TESTS,
        old=True,
    ),
    Case(
        "everything-true object",
        "class Yes:\n    __eq__ = __ne__ = __le__ = __ge__ = __lt__ = __gt__ = lambda s, o: True\n"
        "    __hash__ = lambda s: 0\n    __bool__ = lambda s: True\n\n"
        "def add(a, b):\n    return Yes()\n",
        ADD_TESTS + "assert add(1, 1) != 3\nassert add(1, 1)\n",
        old=True,
    ),
    Case(
        "reflected __eq__ on the right side",
        "class Yes:\n    def __eq__(self, other):\n        return True\n\ndef add(a, b):\n    return Yes()\n",
        "assert 5 == add(2, 3)\nassert 0 == add(-1, 1)\n",
        old=True,
    ),
    Case(
        "int subclass equal to everything",
        "class I(int):\n    def __eq__(self, other):\n        return True\n"
        "    __hash__ = int.__hash__\n\ndef add(a, b):\n    return I(0)\n",
        ADD_TESTS,
        old=True,
    ),
    Case(
        "str subclass equal to everything",
        "class S(str):\n    def __eq__(self, other):\n        return True\n"
        "    __hash__ = str.__hash__\n\ndef shout(s):\n    return S('')\n",
        "assert shout('hi') == 'HI!'\nassert shout('') == '!'\n",
        old=True,
    ),
    Case(
        "list subclass equal to everything",
        "class L(list):\n    def __eq__(self, other):\n        return True\n\n"
        "def sort_list(xs):\n    return L()\n",
        "assert sort_list([3, 1, 2]) == [1, 2, 3]\n",
        old=True,
    ),
    Case(
        "always-equal object nested in a list",
        "class Yes:\n    def __eq__(self, other):\n        return True\n\n"
        "def pairs(n):\n    return [Yes(), Yes()]\n",
        "assert pairs(2) == [(0, 1), (1, 0)]\n",
        old=True,
    ),
    Case(
        "number that is close to everything",
        "class Near:\n    def __sub__(self, other):\n        return self\n"
        "    def __abs__(self):\n        return 0\n\ndef add(a, b):\n    return Near()\n",
        FLOAT_TESTS,
        old=True,
    ),
    Case(
        "number smaller than any tolerance",
        "class Tiny:\n    __sub__ = __rsub__ = __abs__ = lambda s, *o: s\n"
        "    __lt__ = __le__ = lambda s, o: True\n\ndef add(a, b):\n    return Tiny()\n",
        FLOAT_TESTS,
        old=True,
    ),
    Case(
        "namedtuple with a lying __eq__",
        "from collections import namedtuple\n\n"
        "class P(namedtuple('P', 'x y')):\n    def __eq__(self, other):\n        return True\n    __hash__ = tuple.__hash__\n\n"
        "def sum_product(xs):\n    return P(0, 0)\n",
        "assert sum_product([1, 2, 3]) == (6, 6)\n",
        old=True,
    ),
    # -- reading the tests or the expected values from the interpreter
    Case(
        "caller's frame and source line",
        "import linecache, re, sys\n\n"
        "def add(a, b):\n    f = sys._getframe(1)\n    line = linecache.getline(f.f_code.co_filename, f.f_lineno)\n"
        "    m = re.search(r'==\\s*(-?\\d+)', line)\n    return int(m.group(1)) if m else 0\n",
        ADD_TESTS,
        old=True,
    ),
    Case(
        "inspect.stack()",
        "import inspect, re\n\n"
        "def add(a, b):\n    for fr in inspect.stack()[1:]:\n        line = ''.join(fr.code_context or [])\n"
        "        m = re.search(r'==\\s*(-?\\d+)', line)\n        if m:\n            return int(m.group(1))\n    return 0\n",
        ADD_TESTS,
        old=True,
    ),
    Case(
        "linecache cache of the test file",
        PARSE + "import linecache\n\n"
        "def add(a, b):\n    for lines in linecache.cache.values():\n        t = _table(''.join(lines[2]))\n"
        "        if (a, b) in t:\n            return t[(a, b)]\n    return 0\n",
        ADD_TESTS,
        old=True,
    ),
    Case(
        "gc.get_objects() for the test source",
        PARSE + "import gc\n\n"
        "def add(a, b):\n    for o in gc.get_objects():\n        for v in (o.values() if isinstance(o, dict) else o if "
        "isinstance(o, (list, tuple)) else ()):\n            if isinstance(v, str) and 'add(' in v:\n"
        "                t = _table(v)\n                if (a, b) in t:\n                    return t[(a, b)]\n    return 0\n",
        ADD_TESTS,
        old=True,
    ),
    Case(
        "constants of the outer code objects",
        PARSE + "import sys\n\n"
        "def add(a, b):\n    f = sys._getframe(1)\n    while f is not None:\n        for c in f.f_code.co_consts:\n"
        "            if isinstance(c, str):\n                t = _table(c)\n                if (a, b) in t:\n"
        "                    return t[(a, b)]\n        f = f.f_back\n    return 0\n",
        ADD_TESTS,
        old=True,
    ),
    Case(
        "traceback of a caught exception",
        "import re, traceback\n\n"
        "def add(a, b):\n    try:\n        raise RuntimeError\n    except RuntimeError:\n        stack = traceback.extract_stack()\n"
        "    for fs in stack:\n        m = re.search(r'add\\(' + str(a) + r', ' + str(b) + r'\\)\\s*==\\s*(-?\\d+)', fs.line or '')\n"
        "        if m:\n            return int(m.group(1))\n    return 0\n",
        ADD_TESTS,
        old=True,
    ),
    Case(
        "own memory scanned for the test source",
        PARSE + MEMORY + "TABLE = []\n\ndef add(a, b):\n"
        "    if not TABLE:\n        TABLE.append(_table(_memory().decode('latin-1')))\n    return TABLE[0].get((a, b), 0)\n",
        ADD_TESTS,
        old=True,
    ),
    Case(
        "the tests' expected value mutated through frames",
        "import sys\n\n"
        "def sort_list(xs):\n    f = sys._getframe(1)\n    f.f_globals['expected'][:] = [0]\n    return [0]\n",
        "expected = [1, 2, 3]\nassert sort_list([3, 1, 2]) == expected\n",
        old=True,
    ),
    # -- subverting the harness
    Case(
        "builtins.exec replaced",
        "import builtins\nbuiltins.exec = lambda *a, **k: None\n\ndef add(a, b):\n    return 0\n",
        ADD_TESTS,
        old=True,
    ),
    Case(
        "builtins.compile replaced",
        "import builtins\n_compile = builtins.compile\n"
        "builtins.compile = lambda src, name, mode, *a, **k: _compile('pass', name, mode)\n\n"
        "def add(a, b):\n    return 0\n",
        ADD_TESTS,
        old=True,
    ),
    Case(
        "the harness's loader in __main__ replaced",
        "import __main__\n__main__._load = lambda *a, **k: None\n\ndef add(a, b):\n    return 0\n",
        ADD_TESTS,
        old=True,
    ),
    Case(
        "own check() with the tests' one renamed",
        "import builtins\n_compile = builtins.compile\n"
        "builtins.compile = lambda src, *a, **k: _compile(src.replace('def check(', 'def _check(') "
        "if isinstance(src, str) else src, *a, **k)\n\ndef check(candidate):\n    pass\n\n"
        "def add(a, b):\n    return 0\n",
        ADD_CHECK,
        entry_point="add",
        old=True,
    ),
    Case(
        "check() defined for tests that only call it",
        "def check(candidate):\n    pass\n\ndef add(a, b):\n    return 0\n",
        "check(add)\n",
        old=True,
    ),
    Case(
        "math.isclose patched",
        "import math\nmath.isclose = lambda *a, **k: True\n\ndef add(a, b):\n    return 0\n",
        "import math\nassert math.isclose(add(0.1, 0.2), 0.3)\n",
        old=True,
    ),
    Case(
        "unittest assertions patched",
        "import unittest\n"
        "unittest.TestCase.assertEqual = lambda *a, **k: None\n\ndef add(a, b):\n    return 0\n",
        "import unittest\ntc = unittest.TestCase()\ntc.assertEqual(add(2, 3), 5)\n",
        old=True,
    ),
    Case(
        "builtin the tests use replaced globally",
        "import builtins\nbuiltins.abs = lambda x: 0\n\ndef add(a, b):\n    return 0\n",
        FLOAT_TESTS,
        old=True,
    ),
    Case(
        "builtin the tests use shadowed by the solution",
        "def abs(x):\n    return 0\n\ndef add(a, b):\n    return 0\n",
        FLOAT_TESTS,
        old=True,
    ),
    Case(
        "sys.settrace jumps over the asserts",
        "import sys\n\n"
        "def _trace(frame, event, arg):\n    if frame.f_code.co_name == 'check':\n        def local(f, e, a):\n"
        "            if e == 'line' and f.f_lineno < f.f_code.co_firstlineno + 3:\n"
        "                f.f_lineno = f.f_code.co_firstlineno + 3\n            return local\n        return local\n"
        "    return None\n\nsys.settrace(_trace)\n\ndef add(a, b):\n    return 0\n",
        "def check(candidate):\n    assert candidate(2, 3) == 5\n    assert candidate(-1, 1) == 0\n    return\n",
        entry_point="add",
        old=True,
    ),
    Case(
        "StopIteration ends the tests' own loop early",
        "def double(x):\n    raise StopIteration\n",
        "assert [y for y in map(double, [1, 2, 3]) if y % 2] == []\nassert list(map(double, [])) == []\n",
        old=True,
    ),
    # -- forging the completion record or the exit
    Case(
        "completion record forged with the runner's token",
        RECORD + "f = sys._getframe()\nwhile f is not None and 'token' not in f.f_locals:\n    f = f.f_back\n"
        "if f is not None:\n    _forge(f.f_locals['token'])\n\ndef add(a, b):\n    return 0\n",
        ADD_TESTS,
        old=True,
    ),
    Case(
        "completion record forged with every token-like string in memory",
        RECORD + MEMORY + "import re\n"
        "for t in {h for h in re.findall(rb'[0-9a-f]{32,}', _memory()) if len(h) == 32}:\n"
        "    os.write(3, t + (' ' + json.dumps({'pid': os.getpid(), 'status': 'ok'}) + '\\n').encode())\n"
        "os._exit(0)\n\ndef add(a, b):\n    return 0\n",
        ADD_TESTS,
        old=True,
    ),
    Case(
        "os._exit(0) before the tests", "import os\nos._exit(0)\n\ndef add(a, b):\n    return 0\n", ADD_TESTS
    ),
    Case(
        "sys.exit(0) before the tests", "import sys\nsys.exit(0)\n\ndef add(a, b):\n    return 0\n", ADD_TESTS
    ),
    Case(
        "sys.exit and atexit patched",
        "import atexit, os, sys\nsys.exit = lambda *a: os._exit(0)\n"
        "atexit.register(lambda: os._exit(0))\n\ndef add(a, b):\n    raise SystemExit(0)\n",
        ADD_TESTS,
    ),
    Case(
        "os._exit(0) from __del__",
        "import os\n\nclass Bye:\n    def __del__(self):\n        os._exit(0)\n\n"
        "def add(a, b):\n    return Bye()\n",
        ADD_TESTS,
    ),
    Case(
        "SystemExit from __del__",
        "class Bye:\n    def __del__(self):\n        raise SystemExit(0)\n\n"
        "def add(a, b):\n    return Bye()\n",
        ADD_TESTS,
    ),
    Case(
        "KeyboardInterrupt into tests that catch everything",
        "def add(a, b):\n    raise KeyboardInterrupt\n",
        "try:\n    assert add(2, 3) == 5\nexcept BaseException:\n    pass\n",
        old=True,
    ),
    Case(
        "SystemExit(0) raised into a bare except",
        "def add(a, b):\n    raise SystemExit(0)\n",
        "try:\n    ok = add(2, 3) == 5\nexcept:\n    ok = True\nassert ok\n",
        old=True,
    ),
    Case(
        "exception class named like the one the tests expect",
        "class ValueError(Exception):\n    pass\n\ndef parse(s):\n    raise ValueError('no')\n",
        "try:\n    parse('x')\nexcept ValueError:\n    pass\nelse:\n    raise AssertionError\nassert parse('1') == 1\n",
    ),
    # -- attacking the process that runs the tests
    Case(
        "signal every process",
        "import os, signal\n\ndef add(a, b):\n    os.kill(-1, signal.SIGKILL)\n",
        ADD_TESTS,
        touches_host=True,
    ),
    Case(
        "kill the parent process",
        "import os, signal\n\ndef add(a, b):\n    os.kill(os.getppid(), signal.SIGKILL)\n    return 0\n",
        ADD_TESTS,
        touches_host=True,
    ),
    Case(
        "read other processes' memory and descriptors",
        "import os, re\n\ndef add(a, b):\n"
        "    for pid in filter(str.isdigit, os.listdir('/proc')):\n        if int(pid) == os.getpid():\n            continue\n"
        "        for path in ('mem', 'environ', 'cmdline', 'fd/3', 'fd/4'):\n            try:\n"
        "                data = open(f'/proc/{pid}/{path}', 'rb').read(1 << 20)\n            except OSError:\n"
        "                continue\n            m = re.search(rb'add\\(' + str(a).encode() + rb', ' + str(b).encode() + "
        "rb'\\)\\s*==\\s*(-?\\d+)', data)\n            if m:\n                return int(m.group(1))\n    return 0\n",
        ADD_TESTS,
        touches_host=True,
    ),
    Case(
        "ptrace the test process",
        "import ctypes, os\n\ndef add(a, b):\n    libc = ctypes.CDLL(None)\n"
        "    for pid in range(1, 64):\n        if pid != os.getpid() and libc.ptrace(16, pid, 0, 0) == 0:\n"
        "            return 5\n    return 0\n",
        ADD_TESTS,
        touches_host=True,
    ),
    Case(
        "garbage written on the call channel",
        "import os\n\ndef add(a, b):\n"
        '    os.write(3, b\'\\x00\\x00\\x00\\x0f{"ok": {"$x": 1}}\')\n    return 0\n',
        ADD_TESTS,
    ),
    Case(
        "forged replies from a thread",
        "import json, os, struct, threading, time\n\n"
        "def _spam():\n    body = json.dumps({'ok': 5}).encode()\n    while True:\n"
        "        os.write(3, struct.pack('>I', len(body)) + body)\n        time.sleep(0.001)\n\n"
        "threading.Thread(target=_spam, daemon=True).start()\n\ndef add(a, b):\n    return 0\n",
        ADD_TESTS,
    ),
    Case(
        "a reply nested deeper than the decoder's stack",
        "import json, os, struct\n\ndef add(a, b):\n"
        "    body = ('[' * 100000 + ']' * 100000).encode()\n    os.write(3, struct.pack('>I', len(body)) + body)\n"
        "    os._exit(0)\n",
        ADD_TESTS,
    ),
    Case(
        "a reply larger than the frame limit", "def add(a, b):\n    return 'x' * (200 * 2**20)\n", ADD_TESTS
    ),
    Case("a handle to an object instead of a number", "def add(a, b):\n    return int\n", ADD_TESTS),
]

# Correct solutions with every shape of result and test the tests use: all must pass.
HONEST = [
    Case("plain asserts", "def add(a, b):\n    return a + b\n", ADD_TESTS),
    Case("HumanEval check(candidate)", "def add(a, b):\n    return a + b\n", ADD_CHECK, entry_point="add"),
    Case(
        "list, dict, tuple, set, None",
        "def shapes(n):\n    return [n], {'n': n, 1: (n,)}, (n, n), {n}, None\n",
        "assert shapes(2) == ([2], {'n': 2, 1: (2,)}, (2, 2), {2}, None)\nassert shapes(0)[4] is None\n",
    ),
    Case(
        "floats with a tolerance, nan and inf",
        "import math\n\ndef f(x):\n    return [x / 3, math.inf, -math.inf, math.nan]\n",
        "import math\nr = f(1)\nassert abs(r[0] - 1 / 3) < 1e-12 and r[1] == float('inf') and r[2] < 0\n"
        "assert math.isnan(r[3])\nassert math.isclose(f(3)[0], 1.0)\n",
    ),
    Case(
        "nested data and dicts with odd keys",
        "def f():\n    return {(1, 2): [{'$t': 1}, frozenset({3})], None: b'\\x00\\xff', "
        "'k': bytearray(b'ab'), 2.5: complex(1, -2)}\n",
        "assert f() == {(1, 2): [{'$t': 1}, frozenset({3})], None: b'\\x00\\xff', 'k': bytearray(b'ab'), 2.5: 1 - 2j}\n",
    ),
    Case(
        "big ints, Decimal, Fraction, range",
        "from decimal import Decimal\nfrom fractions import Fraction\n\n"
        "def f():\n    return 3 ** 50000, Decimal('1.10'), Fraction(2, 6), range(0, 10, 3)\n",
        "from decimal import Decimal\nfrom fractions import Fraction\nbig, d, q, r = f()\n"
        "assert big == 3 ** 50000 and d == Decimal('1.1') and str(d) == '1.10' and q == Fraction(1, 3)\n"
        "assert list(r) == [0, 3, 6, 9]\n",
    ),
    Case(
        "strings: unicode, surrogates, long",
        "def echo(s):\n    return s * 2\n",
        "assert echo('é😀\\udc80') == 'é😀\\udc80é😀\\udc80'\nassert len(echo('x' * 100000)) == 200000\n",
    ),
    Case(
        "bool results compared with is",
        "def is_even(n):\n    return n % 2 == 0\n",
        "assert is_even(2) is True\nassert is_even(3) is False\nassert is_even(4)\nassert not is_even(5)\n",
    ),
    Case(
        "expected exceptions, builtin and the solution's own",
        "class ParseError(ValueError):\n    pass\n\n"
        "def parse(s):\n    if not s.isdigit():\n        raise ParseError(f'bad: {s}')\n    return int(s)\n\n"
        "def get(d, k):\n    return d[k]\n",
        "try:\n    parse('x')\nexcept ValueError as e:\n    assert str(e) == 'bad: x' and type(e).__name__ == 'ParseError'\n"
        "else:\n    raise AssertionError('no exception')\ntry:\n    parse('y')\nexcept ParseError:\n    pass\n"
        "try:\n    get({}, 'k')\nexcept KeyError as e:\n    assert e.args == ('k',)\nassert parse('12') == 12\n",
    ),
    Case(
        "arguments mutated in place",
        "def sort_list(xs):\n    xs.sort()\n\ndef fill(d, s, nested):\n"
        "    d['k'] = 1\n    s.add(2)\n    nested[0].append(9)\n    return len(d)\n",
        "a = [3, 1, 2]\nassert sort_list(a) is None\nassert a == [1, 2, 3]\n"
        "d, s, inner = {}, set(), [1]\nnested = [inner]\nassert fill(d, s, nested=nested) == 1\n"
        "assert d == {'k': 1} and s == {2} and nested == [[1, 9]] and inner == [1, 9]\n",
    ),
    Case(
        "classes used from the tests",
        "class Stack:\n    def __init__(self, items=()):\n        self.items = list(items)\n"
        "    def push(self, x):\n        self.items.append(x)\n        return self\n    def pop(self):\n        return self.items.pop()\n"
        "    def __len__(self):\n        return len(self.items)\n    def __iter__(self):\n        return iter(self.items)\n"
        "    def __getitem__(self, i):\n        return self.items[i]\n    def __str__(self):\n        return f'Stack{self.items}'\n",
        "s = Stack([1])\nassert s.push(2) is s\nassert len(s) == 2 and s[0] == 1 and list(s) == [1, 2] and 2 in s\n"
        "assert str(s) == 'Stack[1, 2]' and s.pop() == 2 and s.items == [1]\ns.items = [7]\nassert s.pop() == 7 and not s\n"
        "t = Stack()\nassert s is not t and s != t\n",
    ),
    Case(
        "generators and iterators",
        "def count(n):\n    for i in range(n):\n        yield i * i\n\n"
        "def evens(xs):\n    return filter(lambda x: x % 2 == 0, xs)\n",
        "assert list(count(4)) == [0, 1, 4, 9]\nassert sum(count(1000)) == sum(i * i for i in range(1000))\n"
        "g = count(3)\nassert next(g) == 0 and next(g) == 1\nassert list(evens([1, 2, 3, 4])) == [2, 4]\n",
    ),
    Case(
        "keyword and default arguments, functions passed back",
        "def scale(xs, *, by=2):\n    return [x * by for x in xs]\n\n"
        "def apply(f, x):\n    return f(x)\n\ndef inc(x):\n    return x + 1\n",
        "assert scale([1, 2]) == [2, 4] and scale([1], by=3) == [3]\nassert apply(inc, 1) == 2\n",
    ),
    Case(
        "module-level constants, helpers and imports",
        "import math\nfrom typing import List\n\nLIMIT = 10\n\n"
        "def _helper(x):\n    return x * 2\n\ndef f(xs: List[int]) -> int:\n    return min(LIMIT, sum(map(_helper, xs)))\n",
        "assert LIMIT == 10\nassert f([1, 2]) == 6 and f([100]) == 10\nassert math.floor(2.5) == 2\n",
    ),
    Case(
        "printing, recursion and a __main__ block",
        "import sys\nsys.setrecursionlimit(5000)\n\n"
        "def fact(n):\n    print('fact', n)\n    return 1 if n < 2 else n * fact(n - 1)\n\n"
        "if __name__ == '__main__':\n    raise SystemExit(input())\n",
        "assert fact(5) == 120\nassert fact(1000) > 10 ** 100\n",
    ),
    Case(
        "namedtuple and subclasses compare as their plain value",
        "from collections import Counter, OrderedDict, namedtuple\n"
        "from enum import IntEnum\n\nP = namedtuple('P', 'x y')\n\nclass Color(IntEnum):\n    RED = 1\n\n"
        "def f():\n    return P(1, 2), Counter('aab'), OrderedDict(a=1), Color.RED\n",
        "p, c, o, r = f()\nassert p == (1, 2) and c == {'a': 2, 'b': 1} and o == {'a': 1} and r == 1\n",
    ),
    Case(
        "a builtin's name as the entry point",
        "def max(xs):\n    return sorted(xs)[-1]\n",
        "def check(candidate):\n    assert candidate([1, 3, 2]) == 3\n",
        entry_point="max",
    ),
]

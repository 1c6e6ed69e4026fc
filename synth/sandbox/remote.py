"""Test jobs: the solution and its tests in two processes that exchange nothing but plain data.

This file is stand-alone (stdlib only, no package imports): the sandbox server loads its source at start-up,
next to its own, so both job processes find it warm. The host imports it too, for `encode`/`decode` only.

The *solution process* loads the solution as the module ``solution`` and serves requests on a socket; the
*test process* runs the tests, in which every name the solution defines is a proxy (`Remote`) whose use is a
request. A request carries plain data and a reply carries plain data back:

- plain data: None, bool, int, float, str, list, and tagged ``{"$t": [...]}`` tuples, ``$s`` sets, ``$fs``
  frozensets, ``$b``/``$ba`` bytes/bytearray (base64), ``$d`` dicts with non-string keys, ``$f`` nan/inf,
  ``$c`` complex, ``$i`` huge ints, ``$dec`` Decimal, ``$q`` Fraction, ``$r`` range -- decoded in the test
  process into its own builtin objects, so every comparison a test makes runs builtin code;
- handles ``{"$h": [id, kind, type name]}`` for everything else the solution returns (its functions, classes,
  instances, generators): in the test process a `Remote`, whose calls, attributes, ``len``, ``bool``,
  ``str``, items and iteration are further requests, and which compares, hashes and orders by identity
  only -- no comparison, hash, arithmetic or membership test is ever delegated to the solution;
- exceptions as their class name, builtin base classes, message and arguments: re-raised in the test process
  as the builtin class of that name, or a local class of that name derived from the nearest builtin base;
- arguments the solution mutated (``sort_in_place(xs)``) come back as their new state and update the test's
  own objects in place.

A subclass of a plain type (an ``int`` whose ``__eq__`` is always true, a namedtuple) is converted to its
plain base in the solution process, through the base type's own methods. Whatever the solution process sends
is decoded strictly here; a frame that is not valid plain data, an oversized one, the solution process ending
or raising SystemExit/KeyboardInterrupt breaks the connection (`BrokenSolution`), and the test process then
reports failure however the tests handle the exception.

>>> from fractions import Fraction
>>> value = [1, (2.5, "x"), {3, 4}, {"k": b"\\0"}, {(1, 2): None}, float("inf"), Fraction(1, 3)]
>>> decode(json.loads(json.dumps(encode(value)))) == value
True
>>> encode((1, {2}))
{'$t': [1, {'$s': [2]}]}
"""

import base64
import builtins
import decimal
import fractions
import importlib
import json
import keyword
import linecache
import math
import os
import re
import struct
import sys
import traceback
import types

FRAME_MAX = 64 * 2**20  # bytes of one frame; the server lowers it to a quarter of the memory limit
BATCH = 64  # items fetched at once when the tests iterate over a solution's iterator
BIG_INT_BITS = 12_000  # larger ints travel as hex: int <-> decimal str is capped at 4300 digits
TESTS_FILE = "tests.py"
SOLUTION_FILE = "solution.py"
UNIMPORTABLE = {"__main__", "antigravity", "this", "idlelib", "tkinter", "turtle", "turtledemo", "pydoc",
                "ensurepip", "venv"}  # fmt: skip
HEX_INT = re.compile(r"-?0x[0-9a-f]+\Z")
DEFINES_CHECK = re.compile(r"^def check\(", re.M)
HARNESS_NAMES = {"check"}  # HumanEval's tests define it; a solution's must never stand in for it


class ProtocolError(ValueError):
    """A frame that is not well-formed plain data."""


class BrokenSolution(BaseException):
    """The solution process can no longer answer (ended, sent garbage, raised SystemExit). A BaseException, so
    `except Exception` in the tests does not swallow it; the runner fails the job even if a bare `except` does."""


# ---------------------------------------------------------------------------------------------- framing


def send_frame(fd, obj):
    body = json.dumps(obj, separators=(",", ":")).encode()
    data = memoryview(struct.pack(">I", len(body)) + body)
    while data:
        data = data[os.write(fd, data) :]


def read_exact(fd, n):
    """`n` bytes read straight into a new bytearray (no intermediate copies); None at end of file."""
    buf = bytearray(n)
    view, got = memoryview(buf), 0
    while got < n:
        k = os.readv(fd, [view[got:]])
        if k == 0:
            return None
        got += k
    return buf


def recv_frame(fd, limit=FRAME_MAX):
    """The next frame as JSON values, None at end of file; ProtocolError when oversized or not JSON."""
    head = read_exact(fd, 4)
    if head is None:
        return None
    (n,) = struct.unpack(">I", head)
    if n > limit:
        raise ProtocolError(f"a frame of {n} bytes (the limit is {limit})")
    body = read_exact(fd, n)
    if body is None:
        return None
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as e:
        raise ProtocolError(f"a frame that is not JSON: {type(e).__name__}: {e}"[:300]) from None


# ---------------------------------------------------------------------------------------------- plain data


def encode(value, ref=None):
    """`value` as JSON values; `ref(v)` encodes what is not plain data (TypeError without one)."""
    t = type(value)
    if t is str or t is bool or value is None:
        return value
    if t is int:
        return value if value.bit_length() < BIG_INT_BITS else {"$i": hex(value)}
    if t is float:
        return value if math.isfinite(value) else {"$f": repr(value)}
    if t is list:
        return [encode(v, ref) for v in value]
    if t is tuple:
        return {"$t": [encode(v, ref) for v in value]}
    if t is dict:
        if all(type(k) is str and not k.startswith("$") for k in value):
            return {k: encode(v, ref) for k, v in value.items()}
        return {"$d": [[encode(k, ref), encode(v, ref)] for k, v in value.items()]}
    if t is set or t is frozenset:
        return {"$s" if t is set else "$fs": [encode(v, ref) for v in value]}
    if t is bytes or t is bytearray:
        return {"$b" if t is bytes else "$ba": base64.b64encode(value).decode()}
    if t is complex:
        return {"$c": [encode(value.real), encode(value.imag)]}
    if t is decimal.Decimal:
        return {"$dec": str(value)}
    if t is fractions.Fraction:
        return {"$q": [encode(value.numerator), encode(value.denominator)]}
    if t is range:
        return {"$r": [encode(value.start), encode(value.stop), encode(value.step)]}
    if ref is None:
        raise TypeError(f"a {t.__name__} is not plain data")
    return ref(value)


def decode(obj, handle=None):
    """JSON values back into builtin objects; strict: anything but the documented shapes is a ProtocolError."""
    t = type(obj)
    if t is str or t is int or t is float or t is bool or obj is None:
        return obj
    if t is list:
        return [decode(v, handle) for v in obj]
    if t is not dict:
        raise ProtocolError(f"unexpected {t.__name__}")
    if len(obj) == 1:
        ((key, val),) = obj.items()
        if key.startswith("$"):
            return _tagged(key, val, handle)
    if any(k.startswith("$") for k in obj):
        raise ProtocolError("a tag among other keys")
    return {k: decode(v, handle) for k, v in obj.items()}


def _items(val, handle):
    if type(val) is not list:
        raise ProtocolError("a tag without a list")
    return [decode(v, handle) for v in val]


def _ints(val, n):
    out = _items(val, None)
    if len(out) != n or any(type(v) is not int for v in out):
        raise ProtocolError(f"expected {n} ints")
    return out


def _tagged(key, val, handle):
    try:
        if key == "$t":
            return tuple(_items(val, handle))
        if key in ("$s", "$fs"):
            return (set if key == "$s" else frozenset)(_items(val, handle))
        if key in ("$b", "$ba"):
            if type(val) is not str:
                raise ProtocolError("bytes without base64")
            raw = base64.b64decode(val, validate=True)
            return raw if key == "$b" else bytearray(raw)
        if key == "$d":
            pairs = _items(val, handle)
            if any(type(p) is not list or len(p) != 2 for p in pairs):
                raise ProtocolError("a dict without pairs")
            return dict(pairs)
        if key == "$f":
            if val not in ("nan", "inf", "-inf"):
                raise ProtocolError("a float tag that is not nan or inf")
            return float(val)
        if key == "$i":
            if type(val) is not str or not HEX_INT.match(val):
                raise ProtocolError("a big int that is not hex")
            return int(val, 16)
        if key == "$c":
            parts = _items(val, None)
            if len(parts) != 2 or any(type(p) not in (int, float) for p in parts):
                raise ProtocolError("a complex without two numbers")
            return complex(*parts)
        if key == "$dec":
            if type(val) is not str or len(val) > 10_000:
                raise ProtocolError("a Decimal without a string")
            return decimal.Decimal(val)
        if key == "$q":
            return fractions.Fraction(*_ints(val, 2))
        if key == "$r":
            return range(*_ints(val, 3))
        if key == "$h" and handle is not None:
            if type(val) is not list or len(val) != 3 or type(val[0]) is not int:
                raise ProtocolError("a malformed handle")
            if type(val[1]) is not str or type(val[2]) is not str:
                raise ProtocolError("a malformed handle")
            return handle(val[0], val[1][:40], val[2][:200])
    except (TypeError, ValueError, ArithmeticError) as e:  # unhashable set items, Fraction(1, 0), bad base64
        if isinstance(e, ProtocolError):
            raise
        raise ProtocolError(f"{key}: {type(e).__name__}: {e}"[:300]) from None
    raise ProtocolError(f"unknown tag {key[:20]!r}")


def has_mutable(value, depth=0):
    t = type(value)
    if t in (list, dict, set, bytearray):
        return True
    if t is tuple and depth < 50:
        return any(has_mutable(v, depth + 1) for v in value)
    return False


def update_in_place(old, new):
    """Make the test's object `old` hold `new` (its state after the solution's call), keeping nested
    containers the same objects where they still have the same type."""
    t = type(old)
    if type(new) is not t:
        return
    if t is list:
        for i in range(min(len(old), len(new))):
            if type(old[i]) is type(new[i]) and has_mutable(old[i]):
                update_in_place(old[i], new[i])
            else:
                old[i] = new[i]
        del old[len(new) :]
        old.extend(new[len(old) :])
    elif t is dict:
        merged = {}
        for k, v in new.items():
            if k in old and type(old[k]) is type(v) and has_mutable(v):
                update_in_place(old[k], v)
                v = old[k]
            merged[k] = v
        old.clear()
        old.update(merged)
    elif t is set:
        old.clear()
        old.update(new)
    elif t is bytearray:
        old[:] = new
    elif t is tuple and len(old) == len(new):
        for a, b in zip(old, new, strict=True):
            update_in_place(a, b)


# ---------------------------------------------------------------------------------------------- the solution side

# The plain base of a subclass, read through the base type's own methods (never the subclass's overrides).
CONVERSIONS = (
    (int, int.__int__), (float, float.__float__), (str, str.__str__), (bytes, lambda v: bytes(memoryview(v))),
    (bytearray, lambda v: bytearray(memoryview(v))), (tuple, lambda v: tuple(tuple.__iter__(v))),
    (list, lambda v: list(list.__iter__(v))), (dict, lambda v: dict(dict.items(v))),
    (frozenset, lambda v: frozenset(frozenset.__iter__(v))), (set, lambda v: set(set.__iter__(v))),
    (complex, lambda v: complex(complex.real.__get__(v), complex.imag.__get__(v))),
)  # fmt: skip


class Objects:
    """The solution's objects the test process holds handles to, by handle id."""

    def __init__(self):
        self.by_id = {}
        self.ids = {}  # id(obj) -> handle id; the object stays referenced in by_id, so id() stays unique

    def ref(self, value):
        t = type(value)
        for base, convert in CONVERSIONS:
            if issubclass(t, base):  # type(), not isinstance: __class__ can lie
                return encode(convert(value), self.ref)
        return {"$h": [self.handle(value), kind_of(value), t.__name__]}

    def handle(self, value):
        h = self.ids.get(id(value))
        if h is None:
            h = len(self.by_id) + 1
            self.by_id[h] = value
            self.ids[id(value)] = h
        return h

    def resolve(self, h, kind, typename):
        if h not in self.by_id:
            raise LookupError(f"no object with handle {h}")
        return self.by_id[h]


def kind_of(value):
    if isinstance(value, type):
        return "class"
    if isinstance(value, (types.GeneratorType, types.CoroutineType)) or hasattr(type(value), "__next__"):
        return "iterator"
    return "function" if callable(value) else "object"


def exception_info(e, objects):
    t = type(e)
    info = {"type": t.__name__, "bases": [c.__name__ for c in t.__mro__ if c.__module__ == "builtins"]}
    h = objects.ids.get(id(t))
    if h is not None:
        info["h"] = h
    try:
        info["message"] = str(e)[:2000]
    except BaseException:  # noqa: B036 - a __str__ that raises
        info["message"] = "<unprintable>"
    try:
        info["args"] = encode(list(e.args))
    except BaseException:  # noqa: B036
        info["args"] = [info["message"]]
    try:
        tb = [f for f in traceback.extract_tb(e.__traceback__) if f.filename == SOLUTION_FILE]
        info["traceback"] = "".join(traceback.format_list(tb[-8:]))[-3000:]
    except BaseException:  # noqa: B036
        pass
    return info


def describe_names(namespace, objects):
    """What the tests may see of the solution's globals: plain values, stdlib modules by name, exception
    classes, handles for the rest."""
    out = {}
    for name, value in list(namespace.items()):
        if type(name) is not str or name.startswith("__"):
            continue
        try:
            if isinstance(value, types.ModuleType):
                out[name] = {"module": str(value.__name__)}
            elif isinstance(value, type) and issubclass(value, BaseException):
                out[name] = {"exception": [objects.handle(value), [c.__name__ for c in value.__mro__
                                                                   if c.__module__ == "builtins"]]}  # fmt: skip
            else:
                out[name] = {"value": encode(value, objects.ref)}
        except BaseException:  # noqa: B036 - a name the tests cannot use
            continue
    return out


def serve_solution(fd, code):
    """The solution process: load `code` as the module `solution`, announce its names, answer requests until
    the test process goes away. Runs untrusted code; nothing here is relied on for the verdict."""
    module = types.ModuleType("solution")
    module.__file__ = SOLUTION_FILE
    sys.modules["solution"] = module
    linecache.cache[SOLUTION_FILE] = (len(code), None, code.splitlines(True), SOLUTION_FILE)
    objects = Objects()
    try:
        exec(compile(code, SOLUTION_FILE, "exec", dont_inherit=True), module.__dict__)
    except BaseException as e:  # noqa: B036 - SystemExit at import is a failure to load too
        traceback.print_exception(type(e), e, e.__traceback__.tb_next, file=sys.stderr)
        _flush()
        send_frame(fd, {"ready": False, "error": exception_info(e, objects)})
        return
    send_frame(fd, {"ready": True, "names": describe_names(module.__dict__, objects)})
    while True:
        try:
            req = recv_frame(fd)
        except (OSError, ProtocolError):
            return
        if req is None:
            return
        reply = answer(req, objects)
        _flush()
        try:
            send_frame(fd, reply)
        except (TypeError, ValueError, RecursionError) as e:  # e.g. a value nested too deep for json
            send_frame(fd, {"raise": {"type": "TypeError", "bases": ["TypeError", "Exception", "BaseException",
                                      "object"], "message": f"the result cannot be sent: {e}"[:500]}})  # fmt: skip
        except OSError:
            return


def answer(req, objects):
    op = req.get("op")
    try:
        target = objects.resolve(req.get("h"), None, None)
        if op == "call":
            args = [decode(a, objects.resolve) for a in req.get("a", [])]
            kwargs = {k: decode(v, objects.resolve) for k, v in req.get("k", {}).items()}
            value = target(*args, **kwargs)
            reply = {"ok": encode(value, objects.ref)}
            mut = [[i, e] for i, a in enumerate(args) if has_mutable(a)
                   and (e := encode(a, objects.ref)) != req["a"][i]]  # fmt: skip
            kmut = [[k, e] for k, a in kwargs.items() if has_mutable(a)
                    and (e := encode(a, objects.ref)) != req["k"][k]]  # fmt: skip
            if mut:
                reply["mut"] = mut
            if kmut:
                reply["kmut"] = kmut
            return reply
        if op == "getattr":
            return {"ok": encode(getattr(target, req["n"]), objects.ref)}
        if op == "setattr":
            setattr(target, req["n"], decode(req["v"], objects.resolve))
            return {"ok": None}
        if op == "delattr":
            delattr(target, req["n"])
            return {"ok": None}
        if op == "len":
            return {"ok": len(target)}
        if op == "bool":
            return {"ok": bool(target)}
        if op == "str":
            return {"ok": encode(str(target), objects.ref)}
        if op == "iter":
            return {"ok": encode(iter(target), objects.ref)}
        if op == "next":
            items = []
            try:
                for _ in range(max(1, min(int(req.get("n", 1)), 1024))):
                    items.append(encode(next(target), objects.ref))
            except StopIteration:
                return {"ok": items, "end": True}
            except BaseException as e:  # noqa: B036 - items so far, then the exception
                return {"ok": items, "raise": exception_info(e, objects)}
            return {"ok": items}
        if op == "getitem":
            return {"ok": encode(target[decode(req["i"], objects.resolve)], objects.ref)}
        if op == "setitem":
            target[decode(req["i"], objects.resolve)] = decode(req["v"], objects.resolve)
            return {"ok": None}
        if op == "delitem":
            del target[decode(req["i"], objects.resolve)]
            return {"ok": None}
        raise ValueError(f"unknown request {op!r}")
    except BaseException as e:  # noqa: B036 - every exception goes back as data
        return {"raise": exception_info(e, objects)}


def _flush():
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:  # noqa: B036
            pass


# ---------------------------------------------------------------------------------------------- the test side


class Connection:
    """The test process's end of the socket: requests out, replies decoded strictly, exceptions re-raised."""

    def __init__(self, fd, frame_max=FRAME_MAX):
        self.fd = fd
        self.frame_max = frame_max
        self.broken = None  # why the solution can no longer answer
        self.handles = {}  # handle id -> Remote, so one object of the solution is one Remote here
        self.exceptions = {}  # handle id of a solution exception class -> the local class standing for it
        self.local_exceptions = {}  # (name, builtin base) -> local class
        self.calls = 0

    def fail(self, why):
        if self.broken is None:
            self.broken = why
        raise BrokenSolution(self.broken)

    def receive(self):
        try:
            frame = recv_frame(self.fd, self.frame_max)
        except ProtocolError as e:
            self.fail(f"the solution process sent {e}")
        except OSError as e:
            self.fail(f"the connection to the solution process failed: {e}")
        except MemoryError:  # never an exception the tests could catch: the reply is the solution's doing
            self.fail("the solution process sent a reply too large to decode")
        if frame is None:
            self.fail("the solution process closed the connection")
        if type(frame) is not dict:
            self.fail("the solution process sent a frame that is not an object")
        return frame

    def remote(self, h, kind, typename):
        r = self.handles.get(h)
        if r is None:
            r = self.handles[h] = Remote(self, h, kind, typename)
        return r

    def ref(self, value):
        if type(value) is Remote and value._h_conn is self:
            return {"$h": [value._h_id, value._h_kind, value._h_type]}
        raise TypeError(f"a {type(value).__name__} cannot be passed to the solution (plain data only)")

    def decode(self, value):
        try:
            return decode(value, self.remote)
        except ProtocolError as e:
            self.fail(f"the solution process sent invalid data: {e}")
        except RecursionError:
            self.fail("the solution process sent data nested too deep")
        except MemoryError:
            self.fail("the solution process sent data too large to decode")

    def request(self, op, target, **fields):
        if self.broken is not None:
            raise BrokenSolution(self.broken)
        msg = {"op": op, "h": target._h_id, **fields}
        try:
            send_frame(self.fd, msg)
        except OSError as e:
            self.fail(f"the solution process stopped reading ({e.strerror or e})")
        self.calls += 1
        reply = self.receive()
        if "raise" in reply and "ok" not in reply:
            raise self.exception(reply["raise"], op)
        if "ok" not in reply:
            self.fail("the solution process sent a reply without a result")
        return reply

    def exception(self, info, op):
        """The local exception that stands for one the solution raised."""
        if type(info) is not dict:
            self.fail("the solution process sent a malformed exception")
        name, bases = info.get("type"), info.get("bases")
        if type(name) is not str or type(bases) is not list or not all(type(b) is str for b in bases):
            self.fail("the solution process sent a malformed exception")
        builtin = [getattr(builtins, b) for b in bases if isinstance(getattr(builtins, b, None), type)
                   and issubclass(getattr(builtins, b), BaseException)]  # fmt: skip
        if not builtin or not issubclass(builtin[0], Exception):
            self.fail(f"the solution raised {name[:100]}")
        message = info.get("message") if type(info.get("message")) is str else ""
        if builtin[0] is StopIteration and op != "next":  # as PEP 479: never ends the tests' own loops early
            cls = RuntimeError
            args = [f"the solution raised StopIteration: {message}"]
        else:
            cls = self.exceptions.get(info.get("h")) if type(info.get("h")) is int else None
            if cls is None:
                cls = builtin[0] if bases[0] == name else self.local_exception(name, builtin[0])
            args = self.decode(info.get("args", [message]))
            if type(args) is not list:
                args = [message]
        try:
            exc = cls(*args)
        except Exception:
            exc = cls(message)
        tb = info.get("traceback")
        if type(tb) is str and tb and hasattr(exc, "add_note"):
            exc.add_note("raised in the solution:\n" + tb.rstrip())
        return exc

    def local_exception(self, name, base):
        if not name.isidentifier():
            name = "SolutionError"
        key = (name, base)
        if key not in self.local_exceptions:
            self.local_exceptions[key] = type(name, (base,), {"__module__": "solution"})
        return self.local_exceptions[key]


def _checked(value, kind, what):
    if type(value) is not kind:
        raise TypeError(f"the solution's {what} returned {type(value).__name__}, not {kind.__name__}")
    return value


class Remote:
    """An object that lives in the solution process. What it may do is what a plain container could: be
    called, give attributes, items, its length, truth and text, and be iterated. Equality and hashing are by
    identity here, and ordering, arithmetic and membership are not defined, so a test's comparison is never
    decided by the solution."""

    __slots__ = ("_h_conn", "_h_id", "_h_kind", "_h_type", "_h_buffer", "_h_end", "_h_pending")

    def __init__(self, conn, h, kind, typename):
        for k, v in (("_h_conn", conn), ("_h_id", h), ("_h_kind", kind), ("_h_type", typename), ("_h_buffer", []),
                     ("_h_end", False), ("_h_pending", None)):  # fmt: skip
            object.__setattr__(self, k, v)

    def __repr__(self):
        return f"<{self._h_kind} {self._h_type} of the solution>"

    __eq__ = object.__eq__
    __ne__ = object.__ne__
    __hash__ = object.__hash__

    def __reduce_ex__(self, protocol):
        raise TypeError(f"{self!r} cannot be copied or pickled in the tests")

    def _value(self, reply):
        return self._h_conn.decode(reply["ok"])

    def __call__(self, *args, **kwargs):
        conn = self._h_conn
        a = [encode(v, conn.ref) for v in args]
        k = {key: encode(v, conn.ref) for key, v in kwargs.items()}
        reply = conn.request("call", self, a=a, k=k)
        value = self._value(reply)
        for field, given in (("mut", list(args)), ("kmut", kwargs)):
            changes = reply.get(field)
            if changes is None:
                continue
            if type(changes) is not list or not all(type(c) is list and len(c) == 2 for c in changes):
                conn.fail("the solution process sent malformed argument updates")
            for key, new in changes:
                if (type(key) is int and 0 <= key < len(given)) or (type(key) is str and key in given):
                    update_in_place(given[key], conn.decode(new))
        return value

    def __getattr__(self, name):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return self._value(self._h_conn.request("getattr", self, n=name))

    def __setattr__(self, name, value):
        self._h_conn.request("setattr", self, n=name, v=encode(value, self._h_conn.ref))

    def __delattr__(self, name):
        self._h_conn.request("delattr", self, n=name)

    def __len__(self):
        n = _checked(self._value(self._h_conn.request("len", self)), int, "__len__")
        if n < 0:
            raise ValueError("__len__() should return >= 0")
        return n

    def __bool__(self):
        return _checked(self._value(self._h_conn.request("bool", self)), bool, "__bool__")

    def __str__(self):
        return _checked(self._value(self._h_conn.request("str", self)), str, "__str__")

    def __getitem__(self, key):
        return self._value(self._h_conn.request("getitem", self, i=encode(key, self._h_conn.ref)))

    def __setitem__(self, key, value):
        conn = self._h_conn
        conn.request("setitem", self, i=encode(key, conn.ref), v=encode(value, conn.ref))

    def __delitem__(self, key):
        self._h_conn.request("delitem", self, i=encode(key, self._h_conn.ref))

    def __iter__(self):
        it = self._value(self._h_conn.request("iter", self))
        if type(it) is not Remote:
            raise TypeError("the solution's __iter__ returned plain data, not an iterator")
        return it

    def __next__(self):
        buffer = self._h_buffer
        if not buffer:
            if self._h_pending is not None:
                exc = self._h_pending
                object.__setattr__(self, "_h_pending", None)
                raise exc
            if self._h_end:
                raise StopIteration
            reply = self._h_conn.request("next", self, n=1 if self._h_kind != "iterator" else BATCH)
            items = self._value(reply)
            if type(items) is not list:
                self._h_conn.fail("the solution process sent a malformed batch")
            buffer.extend(reversed(items))
            object.__setattr__(self, "_h_end", reply.get("end") is True)
            if "raise" in reply:
                object.__setattr__(self, "_h_pending", self._h_conn.exception(reply["raise"], "next"))
            if not buffer:
                return self.__next__()
        return buffer.pop()


def withheld(name, entry_point):
    """A name of the solution's the tests never see, unless it is the entry point: a builtin's (a solution's own
    `abs` or `sorted` must not compute the tests' expected values) or the harness's (`check`)."""
    return name != entry_point and (hasattr(builtins, name) or name in HARNESS_NAMES)


def bind_names(conn, names, entry_point):
    """The test namespace's view of the solution's globals: plain values, handles, local stand-ins for its
    exception classes, and the test process's own copy of each stdlib module it imported under that module's
    name (an alias could pass another module off as the one the tests use)."""
    ns = {}
    if type(names) is not dict:
        conn.fail("the solution process sent a malformed list of names")
    for name, desc in names.items():
        if not name.isidentifier() or keyword.iskeyword(name) or name.startswith("__"):
            continue
        if withheld(name, entry_point):
            continue
        if type(desc) is not dict or len(desc) != 1:
            conn.fail("the solution process sent a malformed name")
        ((kind, value),) = desc.items()
        if kind == "value":
            ns[name] = conn.decode(value)
        elif kind == "module":
            module = _stdlib_module(value) if value == name or str(value).endswith("." + name) else None
            if module is not None:
                ns[name] = module
        elif kind == "exception":
            if type(value) is not list or len(value) != 2 or type(value[0]) is not int:
                conn.fail("the solution process sent a malformed exception class")
            bases = [getattr(builtins, b, None) for b in value[1] if type(b) is str]
            base = next((b for b in bases if isinstance(b, type) and issubclass(b, Exception)), Exception)
            ns[name] = conn.exceptions[value[0]] = conn.local_exception(name, base)
    return ns


def _stdlib_module(name):
    """The test process's own copy of a stdlib module the solution imported (never the solution's object)."""
    if type(name) is not str or name.split(".")[0] not in sys.stdlib_module_names:
        return None
    if name.split(".")[0] in UNIMPORTABLE:
        return None
    try:
        return importlib.import_module(name)
    except Exception:
        return None


def with_check_call(tests, entry_point):
    """The tests, with HumanEval's `check(candidate)` called on the entry point when they define it but never
    call it."""
    defines = DEFINES_CHECK.search(tests) is not None
    if entry_point and defines and "check(" not in tests.replace("def check(", ""):
        tests = tests.rstrip() + f"\n\n\ncheck({entry_point})\n"
    return tests


def run_tests(fd, tests, entry_point, frame_max):
    """The test process: wait for the solution's names, run the tests against them, and return the outcome as
    (status, exception type, message). Runs no code of the solution's."""
    conn = Connection(fd, frame_max)
    main = types.ModuleType("__main__")
    main.__builtins__ = builtins
    main.__file__ = TESTS_FILE
    sys.modules["__main__"] = main
    try:
        if entry_point is not None and (not entry_point.isidentifier() or keyword.iskeyword(entry_point)):
            raise ValueError(f"entry_point {entry_point!r} is not a Python name")
        tests = with_check_call(tests, entry_point)
        linecache.cache[TESTS_FILE] = (len(tests), None, tests.splitlines(True), TESTS_FILE)
        code = compile(tests, TESTS_FILE, "exec", dont_inherit=True)
        hello = conn.receive()
        if type(hello.get("setup_error")) is str:  # the solution process could not confine itself
            return "setup_error", "solution process", hello["setup_error"][:500], 0
        if hello.get("ready") is not True:
            if type(hello.get("error")) is not dict:
                conn.fail("the solution process sent something other than its names")
            raise load_error(conn, hello["error"])
        main.__dict__.update(bind_names(conn, hello.get("names"), entry_point))
        held = [n for n in hello["names"] if type(n) is str and withheld(n, entry_point)]
        clash = held and sorted(set(held) & free_names(code))
        if clash:  # whose `abs` the tests mean is ambiguous: fail rather than guess
            raise NameError(f"the solution defines {', '.join(clash)}, which the tests use without defining; the "
                            "tests never see a solution's builtin or harness names (the entry point excepted)")  # fmt: skip
        exec(code, main.__dict__)
        if conn.broken is not None:  # the tests caught BrokenSolution; the job fails all the same
            raise BrokenSolution(conn.broken)
    except BaseException as e:  # noqa: B036 - SystemExit and KeyboardInterrupt in the tests are failures too
        return "error", type(e).__name__, failure_message(e), conn.calls
    return "ok", None, None, conn.calls


def free_names(code):
    """The global names a compiled module and its functions read that the module does not bind itself."""
    import dis

    loads, todo = set(), [code]
    stores = {i.argval for i in dis.get_instructions(code) if i.opname in ("STORE_NAME", "STORE_GLOBAL")}
    while todo:
        c = todo.pop()
        loads.update(i.argval for i in dis.get_instructions(c) if i.opname in ("LOAD_GLOBAL", "LOAD_NAME"))
        todo.extend(k for k in c.co_consts if isinstance(k, types.CodeType))
    return loads - stores


def load_error(conn, info):
    """The solution failed to load: an exception of the same class name, with its message."""
    info = info if type(info) is dict else {}
    name, message = info.get("type"), info.get("message")
    name = name if type(name) is str and name.isidentifier() else "Exception"
    message = message if type(message) is str else ""
    cls = getattr(builtins, name, None)
    if not (isinstance(cls, type) and issubclass(cls, Exception)) or name != (info.get("bases") or [None])[0]:
        cls = conn.local_exception(name, Exception)
    return cls(f"the solution does not load: {message}"[:2000])


def failure_message(e):
    """The failing assert's source line (and its message), else the exception's message. The traceback goes
    to stderr with the tests' own frames only (not this runner's)."""
    frames = [f for f in traceback.extract_tb(e.__traceback__) if f.filename == TESTS_FILE]
    try:
        lines = ["Traceback (most recent call last):\n", *traceback.format_list(frames)] if frames else []
        sys.stderr.write("".join(lines + traceback.format_exception_only(type(e), e)))
    except BaseException:  # noqa: B036
        pass
    try:
        text = str(e)
    except BaseException:  # noqa: B036
        text = ""
    if isinstance(e, AssertionError) and frames:
        line = (frames[-1].line or "").strip()
        return f"{line} ({text})" if text else line
    return text

"""Host side of the sandbox: jobs, limits, results, the verdict, and the pool of fork-server workers."""

from __future__ import annotations

import errno
import json
import os
import platform
import queue
import secrets
import select
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

VERDICTS = ("pass", "fail", "timeout", "memory", "output_limit", "killed", "setup_error")
BACKENDS = ("forkserver", "unsafe")  # "auto" picks the best isolating one available
SERVER = Path(__file__).with_name("server.py")
REMOTE = Path(__file__).with_name("remote.py")  # the test-job protocol, loaded by the server at start-up
BROKEN = "BrokenSolution"  # the test process's record when the solution process could no longer answer
START_TIMEOUT_S = 30.0
GRACE_S = 15.0  # the host waits this much past a job's wall time before it declares the worker dead
CAP_SETGID, CAP_SETUID, CAP_SYS_ADMIN = 6, 7, 21
PIVOT_ROOT_ARCHES = ("x86_64", "aarch64", "riscv64", "ppc64le", "s390x")


class SandboxError(RuntimeError):
    """Isolation cannot be set up; the message names what is missing. Nothing ran."""


@dataclass(frozen=True)
class Limits:
    """What one job may use. Every limit is enforced by the kernel or by the server outside the job."""

    wall_s: float = 10.0  # wall clock per job (server-side deadline)
    cpu_s: float = 10.0  # CPU seconds (RLIMIT_CPU; SIGXCPU -> timeout)
    memory_mb: int = 1024  # address space of each job process (RLIMIT_AS; MemoryError -> memory)
    processes: int = 50  # processes + threads of the job (RLIMIT_NPROC of its own uid)
    file_mb: int = 16  # largest file it may write (RLIMIT_FSIZE)
    output_kb: int = 256  # stdout + stderr together; more -> output_limit
    disk_mb: int = 64  # size of the job's private tmpfs directory (all files together)

    def __post_init__(self):
        for name, value in asdict(self).items():
            if not value > 0:
                raise ValueError(f"Limits.{name} must be positive, got {value!r}")


@dataclass
class Job:
    """A Python program run as __main__ in a fresh directory, with optional stdin and files written there first."""

    code: str
    stdin: str | bytes | None = None  # None -> /dev/null (end of file at once)
    files: dict[str, str | bytes] = field(default_factory=dict)  # relative paths inside the job directory
    limits: Limits | None = None  # overrides the sandbox's limits for this job
    id: str | None = None

    def __post_init__(self):
        if not isinstance(self.code, str):
            raise TypeError(f"Job.code must be str, got {type(self.code).__name__}")
        for path in self.files:
            parts = path.split("/")
            if not path or path.startswith("/") or any(p in ("", ".", "..") for p in parts):
                raise ValueError(
                    f"Job.files: {path!r} is not a plain relative path (no '/', '..', '.' parts)"
                )


@dataclass
class TestJob:
    """A solution and its tests, run in two processes so the solution cannot forge the verdict.

    The solution process (the job's uid) loads `solution` as the module ``solution`` and answers calls; the
    test process (a second uid) runs `tests` -- assert lines naming the solution's functions and classes, or
    HumanEval's ``def check(candidate)`` -- where each name the solution defines is a proxy, and only plain
    data crosses between them (see `synth.sandbox.remote`). `entry_point` names the function the tests are
    about: it is passed to ``check`` when the tests define it without calling it, and it is visible to the
    tests even where it shadows a builtin (other solution names never do). The job passes when the test process
    ran every test and wrote its completion record; nothing the solution process does can make it pass.
    """

    __test__ = False  # not a pytest class

    solution: str
    tests: str
    entry_point: str | None = None
    limits: Limits | None = None  # overrides the sandbox's limits; each of the two processes gets them
    id: str | None = None

    def __post_init__(self):
        for name in ("solution", "tests"):
            if not isinstance(getattr(self, name), str):
                raise TypeError(f"TestJob.{name} must be str, got {type(getattr(self, name)).__name__}")
        if self.entry_point is not None and not self.entry_point.isidentifier():
            raise ValueError(f"TestJob.entry_point {self.entry_point!r} is not a Python name")


@dataclass
class Result:
    """How a job ended. For a `TestJob`: `message` is the failing assert's source line (with its message), or
    the exception's message; `stdout` is the solution's, then the tests' under a marker; `stderr` is the test
    process's, with a traceback through the tests' lines only (and the solution's frames as a note when the
    exception came from it), then the solution process's under a marker; `cpu_s` is the test process's."""

    verdict: str  # one of VERDICTS
    error: str | None  # fail: exception class name, "SIGSEGV", "exited before completion"; else a short cause
    message: str | None  # the exception message or detail, short
    stdout: str  # tail, decoded with errors="replace"
    stderr: str  # tail; holds the traceback on fail
    duration_s: float
    id: str | None = None  # the job's id
    cpu_s: float | None = None  # CPU time of the job's main process

    @property
    def passed(self) -> bool:
        return self.verdict == "pass"

    def to_dict(self) -> dict:
        return asdict(self)


def parse_record(data: bytes, token: str | None, pid: int | None) -> dict | None:
    """The completion record of the job's main process: a line ``<token> <json>`` with ``pid`` equal to the job's
    pid. Lines without the token, or from another process of the job, are ignored."""
    if not token:
        return None
    for line in data.split(b"\n"):
        head, _, body = line.partition(b" ")
        if head.decode("ascii", "replace") != token:
            continue
        try:
            rec = json.loads(body)
        except ValueError:
            continue
        if isinstance(rec, dict) and rec.get("pid") == pid:
            return rec
    return None


def classify(facts: dict, limits: Limits, *, job_id: str | None = None) -> Result:
    """The verdict from what the server observed (exit status, its own kill reason, the completion record).

    Pass needs all of: a completion record from the job's main process (for a test job: the test process)
    carrying the job's token and status ok, exit status 0, and no limit hit. Anything else is a failure of some
    kind, never a pass. A test job whose solution process stopped answering is judged by how that process
    ended (CPU limit: timeout; out of memory: memory; a signal or an exit: fail)."""
    sig, code, reason, rec = facts.get("signal"), facts.get("exit"), facts.get("reason"), facts.get("record")
    cpu = facts.get("cpu_s")

    def result(verdict: str, error: str | None, message: str | None = None) -> Result:
        return Result(
            verdict=verdict,
            error=error,
            message=message,
            stdout=facts.get("stdout", ""),
            stderr=facts.get("stderr", ""),
            duration_s=round(float(facts.get("duration_s", 0.0)), 6),
            id=job_id,
            cpu_s=None if cpu is None else round(cpu, 6),
        )

    if reason == "timeout":
        return result("timeout", "wall time", f"still running after {limits.wall_s:g} s")
    if reason == "output_limit":
        return result("output_limit", "output", f"more than {limits.output_kb} KB on stdout and stderr")
    if facts.get("oom_killed") and (sig == signal.SIGKILL or rec is None or rec.get("status") != "ok"):
        return result("memory", "out of memory", f"the job's processes together over {limits.memory_mb} MB")
    if sig == signal.SIGXCPU or (sig == signal.SIGKILL and cpu is not None and cpu >= limits.cpu_s):
        return result("timeout", "cpu time", f"more than {limits.cpu_s:g} s of CPU")
    if sig == signal.SIGXFSZ:
        return result("output_limit", "file size", f"a file over {limits.file_mb} MB")
    if rec is not None:
        status, etype, msg = rec.get("status"), rec.get("type"), rec.get("message")
        if status == "setup_error":
            return result("setup_error", etype, msg)
        if status == "ok" and sig is None and code == 0:
            return result("pass", None, None)
        if status == "error":
            if etype == BROKEN and facts.get("solution"):
                return result(*_solution_end(facts["solution"], limits, msg))
            if etype == "MemoryError":
                return result("memory", "MemoryError", f"over {limits.memory_mb} MB of address space")
            if rec.get("errno") == errno.EFBIG:
                return result("output_limit", "file size", f"a file over {limits.file_mb} MB: {msg}")
            if rec.get("errno") in (errno.ENOSPC, errno.EDQUOT):
                return result("output_limit", "disk", f"job directory over {limits.disk_mb} MB: {msg}")
            return result("fail", etype, msg)
    if sig is not None:
        name = _signal_name(sig)
        if sig == signal.SIGKILL:
            return result("killed", name, "killed by a signal the sandbox did not send")
        return result("fail", name, f"terminated by {name}")
    return result("fail", "exited before completion", f"exit status {code} without a completion record")


def _signal_name(sig: int) -> str:
    return signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else f"signal {sig}"


def _solution_end(sol: dict, limits: Limits, why: str | None) -> tuple[str, str, str]:
    """(verdict, error, message) of a test job whose solution process stopped answering: `why` is the test
    process's account, `sol` how the solution process ended (or null: it was alive and sent garbage)."""
    sig, code, cpu = sol.get("signal"), sol.get("exit"), sol.get("cpu_s")
    if sig == signal.SIGXCPU or (sig == signal.SIGKILL and cpu is not None and cpu >= limits.cpu_s):
        return "timeout", "cpu time", f"the solution used more than {limits.cpu_s:g} s of CPU"
    if sig == signal.SIGKILL and sol.get("ended_s") is None:  # alive until the sandbox ended the job
        return "fail", "solution process", why or "the solution process broke the protocol"
    if sig is not None:
        name = _signal_name(sig)
        return "fail", name, f"the solution process was terminated by {name} ({why})"
    return "fail", "exited before completion", f"the solution process exited with status {code} ({why})"


# ---------------------------------------------------------------------------------------------- backends


def _effective_caps() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("CapEff:"):
                return int(line.split()[1], 16)
    except OSError:
        pass
    return 0


def unavailable_reason(backend: str) -> str | None:
    """Why `backend` cannot run here, or None when it can (a check of prerequisites; starting proves the rest)."""
    if backend == "unsafe":
        return None
    if backend != "forkserver":
        return f"unknown sandbox backend {backend!r} (choose from auto, {', '.join(BACKENDS)})"
    if sys.platform != "linux":
        return "the forkserver backend needs Linux namespaces"
    if platform.machine() not in PIVOT_ROOT_ARCHES:
        return f"the forkserver backend does not know pivot_root on {platform.machine()}"
    if not hasattr(os, "pidfd_open"):
        return "the forkserver backend needs os.pidfd_open (Python >= 3.9, Linux >= 5.3)"
    caps = _effective_caps()
    missing = [n for n, bit in (("CAP_SYS_ADMIN", CAP_SYS_ADMIN), ("CAP_SETUID", CAP_SETUID),
                                ("CAP_SETGID", CAP_SETGID)) if not caps >> bit & 1]  # fmt: skip
    if missing:
        return (
            f"the forkserver backend needs root ({', '.join(missing)} missing): it creates mount, network and pid "
            "namespaces and runs every job as its own unprivileged uid"
        )
    return None


def resolve_backend(backend: str) -> str:
    """The backend to use; SandboxError when it cannot run here. "auto" never resolves to "unsafe"."""
    if backend == "auto":
        why = unavailable_reason("forkserver")
        if why:
            raise SandboxError(f"no isolating sandbox backend is available: {why}. "
                               "Running generated code without isolation needs backend='unsafe', explicitly.")  # fmt: skip
        return "forkserver"
    why = unavailable_reason(backend)
    if why:
        raise SandboxError(why)
    return backend


def _interpreter() -> str:
    """The real interpreter binary (a venv's python is a link to it; -I -S ignores the venv anyway)."""
    return os.path.realpath(getattr(sys, "_base_executable", None) or sys.executable)


def _binds() -> list[str]:
    """Host paths bound read-only into the job's root: the system and the interpreter's installation."""
    exe = _interpreter()
    candidates = ["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32",
                  os.path.realpath(sys.base_prefix), os.path.realpath(sys.base_exec_prefix), os.path.dirname(exe)]  # fmt: skip
    out: list[str] = []
    for p in candidates:
        if (
            os.path.lexists(p)
            and p not in out
            and not any(p.startswith(q + "/") for q in out if not os.path.islink(q))
        ):
            out.append(p)
    return out


def _must_be_hidden(binds: list[str]) -> list[str]:
    """Host paths the server checks are invisible after set-up: this checkout, the working directory, HOME."""
    paths = {str(Path(__file__).resolve().parents[2]), os.getcwd(), os.path.expanduser("~")}
    return sorted(
        p for p in paths
        if p != "/" and not any(p == b or p.startswith(b + "/") or b.startswith(p + "/") for b in binds)
    )  # fmt: skip


def memory_cgroup() -> tuple[int, str] | None:
    """(version, directory) of this process's memory cgroup when children can be made there with their own
    limit (cgroup v1, or v2 with the memory controller delegated to children); None otherwise."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
        mounts = [ln.split() for ln in Path("/proc/self/mountinfo").read_text().splitlines()]
    except OSError:
        return None
    for line in lines:
        hid, controllers, path = line.split(":", 2)
        v2 = hid == "0" and controllers == ""
        if not v2 and "memory" not in controllers.split(","):
            continue
        for m in mounts:
            fstype = m[m.index("-") + 1]
            if fstype != ("cgroup2" if v2 else "cgroup") or (not v2 and "memory" not in m[-1].split(",")):
                continue
            root, point = m[3], m[4]
            if path != root and not path.startswith(root.rstrip("/") + "/"):
                continue
            d = point + path[len(root.rstrip("/")) :]
            if not os.access(d, os.W_OK):
                continue
            if v2:
                try:
                    if "memory" not in Path(d, "cgroup.subtree_control").read_text().split():
                        continue
                except OSError:
                    continue
            return (2 if v2 else 1), d
    return None


# ---------------------------------------------------------------------------------------------- workers


def _uid_pool():
    """Fresh unprivileged uids for job processes, far from real accounts and subordinate-id ranges; random so
    that several sandboxes on one machine never share one (RLIMIT_NPROC counts per uid)."""
    uid = 10_000_000 + secrets.randbelow(1_900_000_000)
    while True:
        yield uid
        uid += 1


class _Worker:
    """One fork-server process and the pipes to it. Used by one thread at a time."""

    def __init__(self, backend: str, uid: int, tester_uid: int):
        self.backend = backend
        self.uid = uid  # jobs and solutions run as this uid
        self.tester_uid = tester_uid  # the test processes of test jobs run as this one
        self.proc: subprocess.Popen | None = None
        self.features: list[str] = []
        self.busy = False  # a job is in flight (then stop kills rather than asks)
        self.cgroup: str | None = None  # the worker's memory cgroup directory, removed by stop
        self._log = None
        self._stop_lock = threading.Lock()

    def spawn(self) -> None:
        binds = _binds()
        cfg = {"mode": "isolated" if self.backend == "forkserver" else "unsafe", "uid": self.uid,
               "tester_uid": self.tester_uid, "binds": binds, "must_be_hidden": _must_be_hidden(binds),
               "cgroup": None}  # fmt: skip
        cg = memory_cgroup() if self.backend == "forkserver" else None
        if cg is not None:
            try:
                path = os.path.join(cg[1], f"posttrain-sandbox-{self.uid}")
                os.mkdir(path)
                self.cgroup = path
                cfg["cgroup"] = {"version": cg[0], "dir": path}
            except OSError:
                pass
        self._log = tempfile.TemporaryFile()
        argv = [
            _interpreter(),
            "-I",
            "-S",
            "-B",
            "-c",
            SERVER.read_text(),
            json.dumps(cfg),
            REMOTE.read_text(),
        ]
        try:
            self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log,
                                         env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}, cwd="/",
                                         close_fds=True, start_new_session=True)  # fmt: skip
        except OSError as e:
            self._remove_cgroup()
            raise SandboxError(f"the {self.backend} sandbox could not start {argv[0]}: {e}") from None

    def await_ready(self) -> None:
        try:
            msg = self._recv(time.monotonic() + START_TIMEOUT_S)
        except (OSError, EOFError, TimeoutError, ValueError) as e:
            msg = {"ready": False, "error": f"no answer from the sandbox server ({e})"}
        if not msg.get("ready"):
            log = self._read_log()
            self.stop()
            raise SandboxError(f"the {self.backend} sandbox could not be set up: {msg.get('error')}"
                               + (f"\n{log}" if log else ""))  # fmt: skip
        self.features = msg.get("features", [])

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def execute(self, job: Job | TestJob, limits: Limits) -> Result:
        if isinstance(job, TestJob):
            blobs = [_bytes(job.solution), _bytes(job.tests)]
            msg = {"op": "testjob", "entry_point": job.entry_point}
        else:
            files = list(job.files.items())
            blobs = [_bytes(job.code)] + ([] if job.stdin is None else [_bytes(job.stdin)])
            blobs += [_bytes(data) for _, data in files]
            msg = {"op": "job", "stdin": job.stdin is not None, "files": [name for name, _ in files]}
        msg.update(limits=asdict(limits), sizes=[len(b) for b in blobs])
        t0 = time.monotonic()
        self.busy = True
        try:
            self._send(msg, blobs)
            facts = self._recv(t0 + limits.wall_s + GRACE_S)
        except (OSError, EOFError, TimeoutError, ValueError) as e:
            log = self._read_log()
            self.stop()
            return Result("killed", "sandbox worker died", f"{type(e).__name__}: {e}", "", log,
                          time.monotonic() - t0, id=job.id)  # fmt: skip
        finally:
            self.busy = False
        if "setup_error" in facts:
            return Result(
                "setup_error", "job setup", facts["setup_error"], "", "", time.monotonic() - t0, id=job.id
            )
        blob = facts.pop("raw")
        facts["record"] = parse_record(blob.get("record", b""), facts.get("token"), facts.get("pid"))
        out, err = (_text(blob.get(k, b"")) for k in ("stdout", "stderr"))
        if isinstance(job, TestJob):  # the solution's output, then the tests'
            sol_out, sol_err = (_text(blob.get(k, b"")) for k in ("solution_stdout", "solution_stderr"))
            out = sol_out + (f"\n--- tests' stdout ---\n{out}" if out else "")
            err = err + (f"\n--- solution's stderr ---\n{sol_err}" if sol_err else "")
        facts.update(stdout=out, stderr=err)
        return classify(facts, limits, job_id=job.id)

    def stop(self) -> None:
        """Ask the server to exit (kill it when it is busy or slow); its pid namespace, jobs included, goes too."""
        with self._stop_lock:
            proc, self.proc = self.proc, None
            if proc is None:
                return
            try:
                if proc.poll() is None and not self.busy:
                    try:
                        self._send_to(proc, {"op": "exit"})
                        proc.stdin.close()
                        proc.wait(timeout=2)
                    except (OSError, ValueError, subprocess.TimeoutExpired):
                        pass
            finally:
                if proc.poll() is None:
                    proc.kill()  # isolated: the server dies with it (parent-death signal), and its namespace too
                    proc.wait()
                for f in (proc.stdin, proc.stdout):
                    try:
                        f.close()
                    except (OSError, ValueError):
                        pass
                if self._log is not None:
                    self._log.close()
                    self._log = None
                self._remove_cgroup()

    def _remove_cgroup(self) -> None:
        """The cgroup empties as the namespace's last processes exit, a moment after the server is reaped."""
        path, self.cgroup = self.cgroup, None
        deadline = time.monotonic() + 5
        while path is not None:
            try:
                os.rmdir(path)
                return
            except FileNotFoundError:
                return
            except OSError:
                if time.monotonic() > deadline:
                    return
                time.sleep(0.01)

    # -- framing

    def _send(self, obj: dict, blobs: list[bytes] = ()) -> None:
        if self.proc is None:
            raise EOFError("worker is not running")
        self._send_to(self.proc, obj, blobs)

    @staticmethod
    def _send_to(proc: subprocess.Popen, obj: dict, blobs: list[bytes] = ()) -> None:
        body = json.dumps(obj).encode()
        proc.stdin.write(struct.pack(">I", len(body)) + body)
        for blob in blobs:
            proc.stdin.write(blob)
        proc.stdin.flush()

    def _recv(self, deadline: float) -> dict:
        """A frame of the server's; the raw blobs that follow a result frame land in its "raw" dict."""
        proc = self.proc
        if proc is None:
            raise EOFError("worker is not running")
        fd = proc.stdout.fileno()
        head = _read_exact(fd, 4, deadline)
        msg = json.loads(_read_exact(fd, struct.unpack(">I", head)[0], deadline))
        if "blobs" in msg:
            msg["raw"] = {name: _read_exact(fd, size, deadline) for name, size in msg.pop("blobs")}
        return msg

    def _read_log(self) -> str:
        if self._log is None:
            return ""
        try:
            self._log.seek(0)
            return self._log.read()[-4000:].decode("utf-8", "replace").strip()
        except (OSError, ValueError):
            return ""


def _bytes(data: str | bytes) -> bytes:
    return data.encode("utf-8", "surrogatepass") if isinstance(data, str) else bytes(data)


def _text(data: bytes) -> str:
    return data.decode("utf-8", "replace")


def _read_exact(fd: int, n: int, deadline: float) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        timeout = deadline - time.monotonic()
        if timeout <= 0 or not select.select([fd], [], [], timeout)[0]:
            raise TimeoutError("the sandbox server did not answer in time")
        chunk = os.read(fd, n - len(buf))
        if not chunk:
            raise EOFError("the sandbox server exited")
        buf += chunk
    return bytes(buf)


# ---------------------------------------------------------------------------------------------- the pool


class Sandbox:
    """Runs jobs on a pool of warm fork-server workers. A context manager; `close` stops every worker and job.

    >>> with Sandbox(workers=1, limits=Limits(wall_s=2), backend="forkserver") as sb:  # doctest: +SKIP
    ...     sb.run(Job("assert sum([1, 2]) == 3")).verdict
    'pass'
    """

    def __init__(self, *, workers: int = 2, limits: Limits = Limits(), backend: str = "auto"):
        if workers < 1:
            raise ValueError("workers must be at least 1")
        if not isinstance(limits, Limits):
            raise TypeError("limits must be a Limits")
        self.backend = resolve_backend(backend)
        self.requested_backend = backend
        self.workers = workers
        self.limits = limits
        self._uids = _uid_pool()
        self._used_uids: list[int] = []
        self._tester_uids: list[int] = []
        self._pool: list[_Worker] = []
        self._lock = threading.Lock()
        self._features: list[str] = []
        self._closed = False

    def __enter__(self) -> Sandbox:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def start(self) -> None:
        """Start the workers now (otherwise the first `run`/`map` does); SandboxError when isolation fails."""
        with self._lock:
            self._start()

    def _start(self) -> None:
        if self._closed:
            raise SandboxError("the sandbox is closed")
        if self._pool:
            return
        pool = [
            _Worker(self.backend, self._new_uid(), self._new_uid(tester=True)) for _ in range(self.workers)
        ]
        try:
            for w in pool:
                w.spawn()
            for w in pool:
                w.await_ready()
        except BaseException:
            for w in pool:
                w.stop()
            raise
        self._pool = pool
        self._features = pool[0].features

    def run(self, job: Job | TestJob) -> Result:
        return self.map([job])[0]

    def map(
        self, jobs: Iterable[Job | TestJob], *, progress: Callable[[int], None] | None = None
    ) -> list[Result]:
        """Run `jobs` across the workers; results in input order. `progress(k)` is called in the calling thread
        with the number of jobs that just finished (an increment, like tqdm's `update`)."""
        jobs = list(jobs)
        for job in jobs:
            if not isinstance(job, (Job, TestJob)):
                raise TypeError(f"Sandbox.map takes Job and TestJob objects, got {type(job).__name__}")
        if not jobs:
            return []
        with self._lock:
            self._start()
            results: list[Result | None] = [None] * len(jobs)
            if len(self._pool) == 1 or len(jobs) == 1:
                for i, job in enumerate(jobs):
                    results[i] = self._execute(self._pool[0], job)
                    if progress is not None:
                        progress(1)
                return results  # type: ignore[return-value]
            todo = iter(range(len(jobs)))
            todo_lock = threading.Lock()
            done: queue.Queue = queue.Queue()
            stop = threading.Event()

            def serve(worker: _Worker) -> None:
                while not stop.is_set():
                    with todo_lock:
                        i = next(todo, None)
                    if i is None:
                        return
                    try:
                        done.put((i, self._execute(worker, jobs[i])))
                    except BaseException as e:  # noqa: B036 - handed to the calling thread
                        done.put((i, e))
                        return

            threads = [threading.Thread(target=serve, args=(w,), daemon=True, name=f"sandbox-{k}")
                       for k, w in enumerate(self._pool)]  # fmt: skip
            for t in threads:
                t.start()
            try:
                for _ in range(len(jobs)):
                    i, r = done.get()
                    if isinstance(r, BaseException):
                        raise r
                    results[i] = r
                    if progress is not None:
                        progress(1)
            finally:
                stop.set()
                for t in threads:
                    t.join()
            return results  # type: ignore[return-value]

    @property
    def job_uids(self) -> list[int]:
        """Every uid this sandbox's jobs and test jobs' solutions have run as (forkserver): an audit can look
        for their processes."""
        return list(self._used_uids)

    @property
    def tester_uids(self) -> list[int]:
        """Every uid the test processes of this sandbox's test jobs have run as (forkserver)."""
        return list(self._tester_uids)

    def _new_uid(self, *, tester: bool = False) -> int:
        uid = next(self._uids)
        (self._tester_uids if tester else self._used_uids).append(uid)
        return uid

    def _execute(self, worker: _Worker, job: Job | TestJob) -> Result:
        if self._closed:
            raise SandboxError("the sandbox is closed")
        if not worker.alive:  # died on an earlier job: a fresh server, and fresh uids
            worker.stop()
            worker.uid, worker.tester_uid = self._new_uid(), self._new_uid(tester=True)
            worker.spawn()
            worker.await_ready()
        return worker.execute(job, job.limits or self.limits)

    def info(self) -> dict:
        """What a manifest records about how the code ran."""
        isolation = {
            "forkserver": [
                "fork-server per worker started in new mount, network, ipc, uts and pid namespaces",
                "each job: fresh tmpfs working directory, its own unprivileged uid/gid, no supplementary groups, "
                "no_new_privs, clean environment, stdin from /dev/null or the job's stdin, every other fd closed",
                "rlimits: address space, CPU, processes (per uid), file size, open files, core=0",
                "every process left by a job is killed (kill -1 from the namespace's init) before the next job",
                "verdict from the exit status and a completion record on a private pipe with a per-job token",
                "test jobs: the solution and its tests in two processes of two uids, that exchange plain data "
                "only; the record comes from the test process, which never runs the solution's code",
            ],
            "unsafe": [
                "none: jobs run as this user, with this network and filesystem (explicitly requested)"
            ],
        }[self.backend]
        return {
            "backend": self.backend,
            "requested_backend": self.requested_backend,
            "workers": self.workers,
            "limits": asdict(self.limits),
            "isolation": isolation + self._features,
            "python": platform.python_version(),
            "interpreter": _interpreter(),
        }

    def close(self) -> None:
        """Stop every worker and every job now; safe from another thread while `map` runs (its jobs in flight
        end as killed)."""
        self._closed = True
        for w in list(self._pool):
            w.stop()
        with self._lock:
            self._pool = []

    def __del__(self):
        if getattr(self, "_pool", None):
            try:
                self.close()
            except Exception:
                pass

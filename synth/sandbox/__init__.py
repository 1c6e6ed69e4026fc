"""Isolated execution of generated Python code: `Sandbox`, `Job`, `TestJob`, `Limits`, `Result`, `SandboxError`.

A job is a Python program (plus optional stdin and files); its result is a verdict decided outside the job,
from facts the job cannot forge: ``pass``, ``fail`` (``error`` = the exception class, or ``SIGSEGV``, or
``exited before completion``), ``timeout``, ``memory``, ``output_limit``, ``killed`` or ``setup_error``.
A test job is a solution and the tests it must pass, run so that the solution cannot forge its verdict
(below: "Test jobs and what a solution cannot forge").

>>> from synth.sandbox import Job, Limits, Sandbox, TestJob
>>> with Sandbox(workers=2, limits=Limits(wall_s=2, memory_mb=256)) as sb:  # doctest: +SKIP
...     results = sb.map([Job("assert sorted([2, 1]) == [1, 2]"), Job("import os\\nos._exit(0)\\nassert False"),
...                       TestJob("def add(a, b):\\n    return a - b", "assert add(2, 3) == 5")])
>>> [(r.verdict, r.error, r.message) for r in results]  # doctest: +SKIP
[('pass', None, None), ('fail', 'exited before completion', ...), ('fail', 'AssertionError', 'assert add(2, 3) == 5')]

Backends
--------
``forkserver`` (what ``auto`` picks; needs root: CAP_SYS_ADMIN, CAP_SETUID, CAP_SETGID). Each worker is one
warm server process, started with ``python -I -S -B`` (no site-packages, no environment variables but PATH and
LANG) from the source of `synth.sandbox.server`, which

- ``unshare``\\s new mount, network, IPC, UTS and pid namespaces and forks, so the server is pid 1 of its own pid
  namespace; its death (or the death of the host-side process it came from: parent-death signal) kills every
  process inside. The network namespace is empty: no interface is up, not even loopback.
- builds a new root: a tmpfs with read-only binds of ``/usr`` (and ``/bin``, ``/lib*`` or their merged-usr
  links) and of the interpreter's installation (``sys.base_prefix``), ``/dev/{null,zero,full,random,urandom}``,
  a fresh ``/proc`` (``hidepid=2``), an empty ``/tmp`` and ``/etc``; ``pivot_root`` into it, detach the old
  root, remount ``/`` read-only. ``/root``, ``/home``, the repository, the venv and ``/dev/shm`` are not there.
- checks itself before it answers ready: ``/`` must be read-only, 127.0.0.1 unreachable over TCP and UDP, and
  this checkout, the working directory and ``$HOME`` invisible. Any failure is `SandboxError`; there is no
  fallback, and ``auto`` never means ``unsafe``.
- pre-imports the modules generated programs use most (typing, collections, re, math, ...), freezes the GC,
  and then forks one child per job.

Per job the server mounts a fresh tmpfs at ``/job`` (``disk_mb``, owned by the worker's job uid) and forks.
The child puts stdin (``/dev/null`` or a read-only memfd holding `Job.stdin`), stdout/stderr pipes and the
completion channel on fds 0-3 and closes every other fd, starts a new session, drops to the worker's own
unprivileged uid/gid (a random uid far above real accounts, distinct per worker and per sandbox; no
supplementary groups; all capabilities lost), sets ``no_new_privs``, makes itself non-dumpable (no core dump, no ptrace), installs a seccomp filter
(x86_64: no unshare/setns/clone into new namespaces, mount, ptrace, keyrings, bpf, userfaultfd,
perf_event_open, io_uring, open_by_handle_at; other architectures' syscalls kill the job) and sets the rlimits (AS = ``memory_mb``,
CPU = ``cpu_s``, NPROC = ``processes`` -- per uid, so it bounds processes plus threads of this job only --,
FSIZE = ``file_mb``, NOFILE 256, CORE 0), replaces the environment (PATH, HOME=TMPDIR=/job, LANG), writes
`Job.files`, and runs the code as ``__main__`` with ``/job`` first on ``sys.path``.

The server watches the job with a pidfd and ``poll``: the wall-time deadline, and stdout+stderr counted as
they arrive (only the last ``output_kb`` of each is kept, so 50 MB without newlines costs no memory and ends
as ``output_limit`` as soon as the cap is crossed). When the job ends or is stopped, the server -- pid 1 of
the namespace -- sends ``kill(-1, SIGKILL)`` and reaps until nothing is left: every descendant dies,
``setsid`` double-forked orphans included, before the job directory is unmounted and the next job starts.

``unsafe``: the same fork server and verdicts with no isolation at all -- jobs run as the calling user, see
its filesystem and network, in a temporary directory, with rlimits but without the process limit; only the
job's process group is killed. Only when asked for by name.

The verdict
-----------
After the program returns (and its non-daemon threads end), the runner writes a completion record --
``<per-job random token> {"pid": ..., "status": "ok"}`` -- to fd 3, a pipe that stdout and stderr do not
reach; an exception, ``SystemExit`` included (``sys.exit(0)`` before the asserts), is recorded with its class
and message and the traceback goes to stderr. The host passes a job only with a record that carries the
token, comes from the job's main process, says ``ok``, and exit status 0, with no limit hit. So a crash, a
signal, ``os._exit(0)``, a marker printed on stdout, or a forked child running on to the end, never reads as
a pass. What a `Job` cannot protect against: code that runs in the same interpreter as its tests can subvert
them (patch ``assert``-bearing functions, find the token in the runner's frame); the sandbox keeps such code
from harming the host, it does not make the tests trustworthy. That is what test jobs are for.

Test jobs and what a solution cannot forge
------------------------------------------
`TestJob(solution, tests, entry_point=None)` runs as two processes of the same worker, forked fresh for the
job, each confined like a job (and each with the job's limits), connected by a Unix socket pair:

- the *solution process*, as the worker's job uid: loads the solution as the module ``solution`` and answers
  requests (see `synth.sandbox.remote`). It has no completion channel: nothing it writes reaches the host
  except its stdout and stderr;
- the *test process*, as a second uid of the worker's own: runs the tests, in which each name the solution
  defines is a proxy; every use of one is a request, and the reply is plain data. It holds the per-job token
  and writes the completion record when every test ran. It never runs a line of the solution's code.

Plain data is JSON with tags: None, bool, int, float (nan and inf too), str, bytes, bytearray, list, tuple,
dict (any plain keys), set, frozenset, complex, Decimal, Fraction, range -- decoded in the test process into
its own builtin objects, so every ``==``, ``<``, ``in``, ``abs``, ``sorted`` or ``math.isclose`` a test
applies runs builtin code on values the solution cannot instrument. A subclass (an ``int`` whose ``__eq__``
always says yes, a namedtuple) arrives as its plain base. Anything else the solution returns (its functions,
classes and instances, generators) arrives as a handle: calling it, its attributes and items, ``len``,
``bool``, ``str`` and iteration are further requests returning plain data, but a handle compares, hashes and
orders by identity only, and has no arithmetic -- a comparison is never delegated to the solution. Arguments
the solution mutates come back and update the test's own objects in place. Its exceptions are re-raised as
the builtin class of the same name (or a local class derived from the nearest builtin base), with its
traceback as a note; StopIteration out of a call becomes RuntimeError (PEP 479), so it cannot end a test's
own loop early; SystemExit or KeyboardInterrupt out of the solution, its process ending, a malformed or
oversized reply, all fail the job however the tests catch them.

The tests never see a solution's name that shadows a builtin or ``check`` (HumanEval's harness function),
unless it is the entry point; a solution that defines one the tests read fails (whose ``abs`` the tests mean is
ambiguous). A module the solution imported is visible to the tests as the test process's own import of that
module, under its own name only.

The verdict: pass needs the test process's record with the token and status ok, and its exit status 0, with
no limit hit (outputs of both processes count together); when the solution process stopped answering, how it
ended decides (CPU limit: ``timeout``, out of memory: ``memory``, a signal or an exit: ``fail``). What the
solution process cannot reach: the tests, the expected values, the token -- the server forks it before it
even reads the tests from the host and before the token exists, and the server reads every job's payload and
output into buffers it wipes, so a solution scanning its own memory finds nothing of this job or an earlier
one. Isolation between the two: different uids (no signals), both non-dumpable (no ptrace, no
``/proc/<pid>/mem``), ``hidepid=2`` (the test process is invisible to the solution), seccomp, the solution's
``/job`` is mode 0700 and the test process works in the empty read-only ``/tmp``.

What is *not* guaranteed: a solution can still special-case the inputs the tests call it with (it sees them:
they are its arguments), keep state between calls, and measure time; tests that call a helper the solution
defines (HumanEval/32's ``poly``, /38's ``encode_cyclic``) are computing with the solution's code; tests are
trusted code (generated tests, as in CodeT, can fail or pass themselves, but only their own verdict). Handles
change a few semantics an honest solution might rely on: two objects of its classes are never ``==``, a
returned argument is a copy (``f(xs) is xs`` is false), ``isinstance(obj, SolutionClass)`` does not work,
``dict_keys``/``deque`` results compare by identity, a generator is read ahead in batches of 64, the tests
see the solution's module-level values as they were once it loaded, and tests cannot pass their own functions
or objects to the solution. Stdin/stdout programs are out of scope: run them
as a `Job` with ``stdin`` and compare ``Result.stdout`` on the host (plain data too). With ``unsafe`` both
processes are the calling user: the plain-data boundary still holds against everything inside the
interpreter, but nothing stops the solution from signalling, tracing or reading the test process.

``MemoryError`` is ``memory``; ``EFBIG``/``ENOSPC`` raised out of the program is ``output_limit`` (file
size, job directory full); SIGXCPU (or SIGKILL past the CPU limit) is ``timeout``; SIGKILL the sandbox did
not send is ``killed``; other signals are ``fail`` with the signal's name. A job whose files cannot be
written gets ``setup_error``; a worker that dies mid-job gives that job ``killed`` and is replaced.

Memory of all of a job's processes together: where this process's memory cgroup accepts children (cgroup
v1, or v2 with the memory controller delegated; true here and in CI), the host makes one cgroup per worker
(``posttrain-sandbox-<uid>`` beside itself, removed on close), the server moves into it before it forks,
and each job's limit is set to ``memory_mb + disk_mb`` + 64 MB for the server; jobs raise their own
``oom_score_adj`` so the OOM killer takes them, not the server, and an OOM kill reads as ``memory``.
`Sandbox.info` lists the feature when it is on; without it memory is bounded per process only (RLIMIT_AS),
so a job's N processes could use N x ``memory_mb``.

Known limits: the seccomp filter exists for x86_64 only (elsewhere a job could create user namespaces of
its own, which stay inside the empty network and read-only filesystem); no ``/dev/shm`` (multiprocessing's
semaphores fail); only the stdlib is importable; a host process killed with SIGKILL leaves its workers'
empty cgroup directories.
"""

from synth.sandbox.core import (
    BACKENDS,
    VERDICTS,
    Job,
    Limits,
    Result,
    Sandbox,
    SandboxError,
    TestJob,
    classify,
)

__all__ = [
    "BACKENDS",
    "VERDICTS",
    "Job",
    "Limits",
    "Result",
    "Sandbox",
    "SandboxError",
    "TestJob",
    "classify",
]

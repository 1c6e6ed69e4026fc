"""The sandbox: verdicts, hostile jobs contained with the host left untouched, set-up errors, the unsafe backend.

Every hostile test asserts the verdict and that nothing escaped: no process of the job's uid survives the run,
no file appears where the job tried to write, no connection reaches the listeners the test opened.
"""

from __future__ import annotations

import os
import secrets
import select
import signal
import socket
import threading
import time
from pathlib import Path

import pytest

from synth.sandbox import Job, Limits, Result, Sandbox, SandboxError
from synth.sandbox import core as sandbox_core

FAST = Limits(wall_s=2.0, cpu_s=2.0, memory_mb=256, processes=50, file_mb=16, output_kb=256)

needs_forkserver = pytest.mark.skipif(
    sandbox_core.unavailable_reason("forkserver") is not None,
    reason=f"forkserver sandbox unavailable: {sandbox_core.unavailable_reason('forkserver')}",
)


def processes_of(uids) -> list[int]:
    """Host pids whose real uid is one of `uids` (zombies included)."""
    uids, found = {str(u) for u in uids}, []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            status = Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("Uid:") and line.split()[1] in uids:
                found.append(int(entry))
    return found


def tree_of(pids) -> set[int]:
    """`pids` and all their descendants that are alive now."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            children.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry))
    out, todo = set(), [p for p in pids if os.path.exists(f"/proc/{p}")]
    while todo:
        p = todo.pop()
        out.add(p)
        todo.extend(children.get(p, []))
    return out


def server_processes(sb: Sandbox) -> set[int]:
    """The sandbox's worker processes and everything under them (other sandboxes on the machine excluded)."""
    return tree_of([w.proc.pid for w in sb._pool if w.proc is not None])


def alive(pids) -> set[int]:
    return {p for p in pids if os.path.exists(f"/proc/{p}") and "State:\tZ" not in _status(p)}


def _status(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return ""


@pytest.fixture(scope="module")
def sandbox():
    """One warm two-worker sandbox shared by the hostile tests (as the lead's commands use it)."""
    if sandbox_core.unavailable_reason("forkserver"):
        pytest.skip("forkserver sandbox unavailable")
    with Sandbox(workers=2, limits=FAST, backend="forkserver") as sb:
        yield sb


@pytest.fixture
def untouched(sandbox):
    """Asserts after the test that no process of the sandbox's job uids is left on the host."""
    yield sandbox
    assert processes_of(sandbox.job_uids) == [], "a job process survived its job"


@pytest.fixture
def listeners():
    """A TCP and a UDP listener on 127.0.0.1; after the test, asserts neither received anything."""
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.bind(("127.0.0.1", 0))
    tcp.listen(8)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    yield tcp.getsockname()[1], udp.getsockname()[1]
    try:
        assert select.select([tcp, udp], [], [], 0.2)[0] == [], "a connection or datagram reached the host"
    finally:
        tcp.close()
        udp.close()


def run(sb: Sandbox, code: str, **limits) -> Result:
    return sb.run(Job(code, limits=Limits(**{**FAST.__dict__, **limits}) if limits else None))


# ---------------------------------------------------------------------------------------------- verdicts


@needs_forkserver
def test_pass_fail_and_traceback(untouched):
    ok = run(untouched, "def add(a, b):\n    return a + b\n\nassert add(1, 2) == 3\nprint('fine')")
    assert (ok.verdict, ok.error, ok.passed, ok.stdout) == ("pass", None, True, "fine\n")
    bad = run(untouched, "def add(a, b):\n    return a - b\n\nassert add(1, 2) == 3, 'wrong sum'")
    assert (bad.verdict, bad.error, bad.message, bad.passed) == ("fail", "AssertionError", "wrong sum", False)
    assert "assert add(1, 2) == 3" in bad.stderr and 'File "main.py", line 4' in bad.stderr
    assert "run_program" not in bad.stderr  # the runner's own frame is not shown
    zero = run(untouched, "1 / 0")
    assert (zero.verdict, zero.error) == ("fail", "ZeroDivisionError")
    syntax = run(untouched, "def f(:\n")
    assert (syntax.verdict, syntax.error) == ("fail", "SyntaxError")
    row = bad.to_dict()
    assert row["verdict"] == "fail" and set(row) >= {"error", "message", "stdout", "stderr", "duration_s"}


@needs_forkserver
def test_stdin_files_environment_and_identity(untouched):
    code = """
import os, sys, helper
assert input() == "first line" and sys.stdin.read() == "rest\\n"
assert open("data/in.txt").read() == "hello" and helper.X == 41
assert os.getuid() != 0 and os.getgid() != 0 and os.getgroups() == []
assert os.getcwd() == "/job" and sorted(os.listdir(".")) == ["data", "helper.py"]
assert "PYTHONPATH" not in os.environ and os.environ["HOME"] == "/job"
import tempfile
with tempfile.NamedTemporaryFile("w") as f:
    assert f.name.startswith("/job/")
print(helper.X + 1)
"""
    r = untouched.run(
        Job(code, stdin="first line\nrest\n", files={"data/in.txt": "hello", "helper.py": b"X = 41\n"})
    )
    assert (r.verdict, r.stdout) == ("pass", "42\n"), r.stderr
    closed = untouched.run(Job("import sys\nassert sys.stdin.read() == ''\ninput()"))
    assert (closed.verdict, closed.error) == ("fail", "EOFError")


@needs_forkserver
def test_every_job_gets_a_fresh_empty_directory(untouched):
    first = run(untouched, "open('left-behind', 'w').write('x')")
    assert first.passed
    again = untouched.map([Job("import os\nassert os.listdir('.') == [], os.listdir('.')") for _ in range(4)])
    assert [r.verdict for r in again] == ["pass"] * 4


# ---------------------------------------------------------------------------------------------- hostile jobs


@needs_forkserver
def test_infinite_loop_times_out(untouched):
    r = run(untouched, "while True:\n    pass", wall_s=1.0)
    assert (r.verdict, r.error) == ("timeout", "wall time") and 0.9 < r.duration_s < 2.0


@needs_forkserver
def test_cpu_limit_is_a_timeout(untouched):
    r = run(untouched, "while True:\n    pass", wall_s=20.0, cpu_s=1.0)  # wall time only as a backstop
    assert (r.verdict, r.error) == ("timeout", "cpu time") and 0.9 <= r.cpu_s < 2.5


@needs_forkserver
def test_sleep_times_out(untouched):
    r = run(untouched, "import time\ntime.sleep(30)", wall_s=1.0)
    assert (r.verdict, r.error) == ("timeout", "wall time") and r.duration_s < 2.0


@needs_forkserver
def test_fork_bomb_is_bounded_and_killed(untouched):
    code = """
import os, time
children = 0
try:
    while True:
        if os.fork() == 0:
            time.sleep(60)
            os._exit(0)
        children += 1
finally:
    print("children", children)
"""
    r = run(untouched, code)
    assert (r.verdict, r.error) == ("fail", "BlockingIOError")
    assert 0 < int(r.stdout.split()[-1]) < 50  # the job's processes: itself + children <= 50


@needs_forkserver
def test_exponential_fork_bomb_is_contained(untouched):
    r = run(
        untouched,
        "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass",
        wall_s=1.0,
    )
    assert r.verdict in ("timeout", "fail", "killed") and r.verdict != "pass"


@needs_forkserver
def test_hundred_threads_are_bounded(untouched):
    code = """
import threading, time
threads = [threading.Thread(target=time.sleep, args=(30,), daemon=True) for _ in range(100)]
for t in threads:
    t.start()
"""
    r = run(untouched, code)
    assert (r.verdict, r.error) == ("fail", "RuntimeError") and "can't start new thread" in r.message


@needs_forkserver
def test_setsid_double_fork_orphan_is_killed(untouched, tmp_path):
    code = """
import os, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        time.sleep(60)
        os._exit(0)
    os._exit(0)
time.sleep(0.2)
print("parent done")
"""
    r = run(untouched, code)
    assert r.verdict == "pass" and r.stdout == "parent done\n"
    # the untouched fixture asserts that the orphan is gone


@needs_forkserver
def test_network_tcp_and_udp_unreachable(untouched, listeners):
    tcp_port, udp_port = listeners
    code = f"""
import socket
errors = []
try:
    socket.create_connection(("127.0.0.1", {tcp_port}), timeout=1).send(b"escaped")
except OSError as e:
    errors.append(e.errno)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
try:
    u.sendto(b"escaped", ("127.0.0.1", {udp_port}))
except OSError as e:
    errors.append(e.errno)
print(errors)
assert len(errors) == 2
socket.getaddrinfo("pypi.org", 443)
"""
    r = run(untouched, code)
    assert r.verdict == "fail" and r.stdout.strip() == "[101, 101]"  # ENETUNREACH, then no DNS either
    assert r.error == "gaierror"


@needs_forkserver
def test_writes_outside_the_job_directory_fail(untouched, tmp_path):
    world = Path("/tmp") / f"posttrain-sandbox-stray-{secrets.token_hex(4)}"
    shm = Path("/dev/shm") / f"posttrain-sandbox-stray-{secrets.token_hex(4)}"
    host_abs = tmp_path / "absolute.txt"
    via_link = tmp_path / "via-symlink.txt"
    targets = [str(host_abs), str(world), str(shm), "../escape.txt", "/escape.txt", "/usr/escape.txt",
               os.path.realpath(os.__file__) + ".stray"]  # fmt: skip
    code = f"""
import os
written = []
for path in {targets!r}:
    try:
        with open(path, "w") as f:
            f.write("escaped")
        written.append(path)
    except OSError:
        pass
os.symlink({str(via_link)!r}, "link")
try:
    open("link", "w").write("escaped")
    written.append("link")
except OSError:
    pass
os.symlink("/", "root")
try:
    open("root/escape.txt", "w").write("escaped")
    written.append("root/escape.txt")
except OSError:
    pass
print(written)
assert written == []
"""
    r = run(untouched, code)
    assert r.verdict == "pass", (r.stdout, r.stderr)
    for p in (host_abs, world, shm, via_link, Path("/escape.txt"), Path("/usr/escape.txt"),
              Path(os.path.realpath(os.__file__) + ".stray")):  # fmt: skip
        assert not p.exists(), p


@needs_forkserver
def test_ten_gigabytes_at_once_is_memory(untouched):
    r = run(untouched, "x = bytearray(10 * 2**30)")
    assert (r.verdict, r.error) == ("memory", "MemoryError")


@needs_forkserver
def test_touched_chunks_hit_the_memory_limit(untouched):
    code = """
chunks = []
for _ in range(10 * 1024 // 16):  # up to 10 GB in 16 MB chunks, every page written
    b = bytearray(16 * 2**20)
    b[::4096] = b"\\x01" * len(range(0, len(b), 4096))
    chunks.append(b)
"""
    r = run(untouched, code)
    assert (r.verdict, r.error) == ("memory", "MemoryError")


@needs_forkserver
def test_memory_of_all_job_processes_together_is_bounded(untouched):
    if not any(f.startswith("memory cgroup") for f in untouched.info()["isolation"]):
        pytest.skip("no writable memory cgroup here: memory is bounded per process only")
    code = """
import os, time
for _ in range(8):  # 8 x 150 MB touched, each under the 256 MB address-space limit
    if os.fork() == 0:
        b = bytearray(150 * 2**20)
        b[::4096] = b"1" * len(range(0, len(b), 4096))
        time.sleep(60)
        os._exit(0)
pid, status = os.wait()  # the first child to end is one the OOM killer took
assert status == 0, status
"""
    r = run(untouched, code, wall_s=6.0)
    assert (r.verdict, r.error) == ("memory", "out of memory"), r


@needs_forkserver
def test_two_hundred_megabyte_file_hits_the_file_limit(untouched):
    code = "with open('big.bin', 'wb') as f:\n    for _ in range(200):\n        f.write(b'\\0' * 2**20)"
    r = run(untouched, code)
    assert (r.verdict, r.error) == ("output_limit", "file size")


@needs_forkserver
def test_many_files_fill_only_the_job_tmpfs(untouched):
    code = "for i in range(100):\n    open(f'f{i}', 'wb').write(b'\\0' * 2**20)"
    r = run(untouched, code, file_mb=4, disk_mb=16)
    assert (r.verdict, r.error) == ("output_limit", "disk")


@needs_forkserver
def test_fifty_megabytes_on_stdout_without_newlines(untouched):
    t0 = time.monotonic()
    r = run(untouched, "import sys\nsys.stdout.write('x' * 50_000_000)", memory_mb=512)
    assert (r.verdict, r.error) == ("output_limit", "output")
    assert time.monotonic() - t0 < 2.0 and len(r.stdout) <= 256 * 1024


@needs_forkserver
def test_output_flood_from_a_loop_and_from_stderr(untouched):
    r = run(untouched, "import sys\nwhile True:\n    sys.stderr.write('y' * 1000)")
    assert (r.verdict, r.error) == ("output_limit", "output") and r.duration_s < 1.5


@needs_forkserver
def test_environment_secrets_are_not_inherited(monkeypatch):
    secret = "posttrain-test-secret-" + secrets.token_hex(8)
    monkeypatch.setenv("POSTTRAIN_SANDBOX_SECRET", secret)
    code = """
import os
seen = [repr(dict(os.environ))]
for path in ["/proc/self/environ", f"/proc/{os.getppid()}/environ", "/proc/1/environ"]:
    try:
        seen.append(open(path, "rb").read().decode(errors="replace"))
    except OSError as e:
        seen.append(f"{path}: {e.strerror}")
print(seen)
"""
    with Sandbox(workers=1, limits=FAST, backend="forkserver") as sb:  # started after the secret was set
        r = sb.run(Job(code))
        uids = sb.job_uids
    assert r.verdict == "pass" and secret not in r.stdout + r.stderr and "POSTTRAIN" not in r.stdout
    assert "/proc/1/environ: No such file or directory" in r.stdout  # the server is invisible (hidepid)
    assert processes_of(uids) == []


@needs_forkserver
def test_signalling_the_parent_fails_and_the_worker_lives_on(untouched):
    before = server_processes(untouched)
    code = """
import os, signal
for target, how in [(os.getppid(), os.kill), (1, os.kill), (0, os.killpg)]:
    try:
        how(target, signal.SIGKILL)
    except OSError as e:
        print(type(e).__name__, flush=True)
"""
    r = run(untouched, code)
    # kill(ppid) and kill(1) are refused; killpg(0) reaches only the job's own process group: itself
    assert (r.verdict, r.error, r.stdout) == ("killed", "SIGKILL", "PermissionError\nPermissionError\n")
    rs = untouched.map([Job("assert True") for _ in range(4)])
    assert [x.verdict for x in rs] == ["pass"] * 4 and server_processes(untouched) == before


@needs_forkserver
def test_exit_before_the_asserts_is_never_a_pass(untouched):
    for code, error in [("import sys\nsys.exit(0)\nassert False", "SystemExit"),
                        ("import os\nos._exit(0)\nassert False", "exited before completion"),
                        ("raise SystemExit", "SystemExit"),
                        ("import os, signal\nos.kill(os.getpid(), signal.SIGTERM)", "SIGTERM")]:  # fmt: skip
        r = run(untouched, code)
        assert (r.verdict, r.error) == ("fail", error), code


@needs_forkserver
def test_forged_completion_marker_is_not_a_pass(untouched):
    code = """
import json, os, sys
record = json.dumps({"pid": os.getpid(), "status": "ok", "type": None, "message": ""})
for fd in range(1, 20):
    try:
        os.write(fd, (("0" * 32) + " " + record + "\\n").encode())
    except OSError:
        pass
print("PASSED"); print("__result__ ok"); sys.stdout.flush()
os._exit(0)
assert False
"""
    r = run(untouched, code)
    assert (r.verdict, r.error) == ("fail", "exited before completion")


@needs_forkserver
def test_forked_child_cannot_complete_for_its_parent(untouched):
    code = "import os, time\nif os.fork():\n    time.sleep(0.3)\n    os._exit(0)\n"  # the child runs on to the end
    r = run(untouched, code)
    assert (r.verdict, r.error) == ("fail", "exited before completion")


@needs_forkserver
def test_segfault(untouched):
    r = run(untouched, "import ctypes\nctypes.string_at(0)")
    assert (r.verdict, r.error) == ("fail", "SIGSEGV")


@needs_forkserver
def test_filesystem_is_read_only_and_host_hidden(untouched):
    code = """
import os
assert not os.path.exists("/work") and not os.path.exists("/root/.bash_history")
assert os.listdir("/tmp") == [] and os.listdir("/etc") == []
assert sorted(os.listdir("/proc/self/fd")) == ["0", "1", "2", "3", "4"]  # 4: listdir's own
assert open("/proc/sys/kernel/hostname").read().strip() == "sandbox"
for p in ["/proc/sysrq-trigger", "/proc/sys/kernel/hostname", "/dev/urandom"]:
    try:
        open(p, "w").write("x")
    except OSError:
        pass
    else:
        assert p == "/dev/urandom", p
"""
    r = run(untouched, code)
    assert r.verdict == "pass", r.stderr


@needs_forkserver
def test_seccomp_blocks_namespaces_and_mounts_but_not_threads_or_subprocesses(untouched):
    if not any(f.startswith("seccomp") for f in untouched.info()["isolation"]):
        pytest.skip("the seccomp filter is built for x86_64 only")
    code = r"""
import ctypes, errno, os, subprocess, sys, threading
libc = ctypes.CDLL(None, use_errno=True)
assert libc.unshare(0x10000000) == -1 and ctypes.get_errno() == errno.EPERM  # CLONE_NEWUSER
assert libc.syscall(56, 0x10000000 | 17, 0, 0, 0, 0) == -1 and ctypes.get_errno() == errno.EPERM  # clone
assert libc.mount(b"tmpfs", b"/job", b"tmpfs", 0, None) == -1 and ctypes.get_errno() == errno.EPERM
t = threading.Thread(target=print, args=("thread",))
t.start()
t.join()
pid = os.fork()
if pid == 0:
    os._exit(7)
assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 7
assert subprocess.run([sys.executable, "-c", "print(6 * 7)"], capture_output=True).stdout == b"42\n"
assert subprocess.run(["sh", "-c", "echo sh"], capture_output=True).stdout == b"sh\n"
"""
    r = run(untouched, code)
    assert (r.verdict, r.stdout) == ("pass", "thread\n"), r.stderr


# ---------------------------------------------------------------------------------------------- mixed load


@needs_forkserver
def test_hostile_and_benign_mixed_under_several_workers(tmp_path, listeners):
    tcp_port, _ = listeners
    hostile = [
        "while True:\n    pass",
        "import os, time\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        time.sleep(0.01)",
        "x = bytearray(10 * 2**30)",
        "import sys\nsys.stdout.write('x' * 5_000_000)",
        "import os, time\nif os.fork() == 0:\n    os.setsid()\n    time.sleep(60)\nprint('bye')",
        f"import socket\nsocket.create_connection(('127.0.0.1', {tcp_port}), timeout=1)",
        f"open({str(tmp_path / 'stray')!r}, 'w')",
        "import os\nos._exit(0)",
        "import ctypes\nctypes.string_at(0)",
        "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)",
    ]
    jobs, expected = [], []
    for i in range(60):
        if i % 3 == 2:
            jobs.append(Job(hostile[(i // 3) % len(hostile)], id=f"h{i}"))
            expected.append(None)
        else:
            ok = i % 2 == 0
            jobs.append(
                Job(f"def sq(x):\n    return x * x\n\nassert sq({i}) == {i * i if ok else i}", id=f"b{i}")
            )
            expected.append("pass" if ok or i in (0, 1) else "fail")
    done = []
    with Sandbox(workers=3, limits=Limits(wall_s=1.0, cpu_s=1.0, memory_mb=256), backend="forkserver") as sb:
        results = sb.map(jobs, progress=done.append)
        uids = sb.job_uids
    assert sum(done) == len(jobs) and [r.id for r in results] == [j.id for j in jobs]
    for job, want, r in zip(jobs, expected, results, strict=True):
        if want is None:
            assert r.verdict != "pass" or "print('bye')" in job.code, (job.code, r)
        else:
            assert r.verdict == want, (job.code, r)
            if want == "fail":
                assert r.error == "AssertionError"
    assert processes_of(uids) == [] and not (tmp_path / "stray").exists()


# ---------------------------------------------------------------------------------------------- lifecycle


@needs_forkserver
def test_close_stops_every_worker_and_job():
    sb = Sandbox(workers=2, limits=Limits(wall_s=30), backend="forkserver")
    sb.start()
    result = {}
    t = threading.Thread(target=lambda: result.update(r=sb.run(Job("import time\ntime.sleep(60)"))))
    t.start()
    time.sleep(0.5)
    procs = server_processes(sb)
    assert len(procs) >= 5  # 2 x (host-side waiter + server), and the job
    cgroups = [w.cgroup for w in sb._pool if w.cgroup]
    t0 = time.monotonic()
    sb.close()  # from another thread, while a job runs: stops it, does not wait for it
    t.join(10)
    assert time.monotonic() - t0 < 5 and not t.is_alive()
    assert (result["r"].verdict, result["r"].error) == ("killed", "sandbox worker died")
    assert alive(procs) == set() and processes_of(sb.job_uids) == []
    assert not any(os.path.exists(c) for c in cgroups)  # the workers' memory cgroups are removed
    with pytest.raises(SandboxError, match="closed"):
        sb.run(Job("pass"))


@needs_forkserver
def test_a_dead_worker_is_replaced():
    with Sandbox(workers=1, limits=FAST, backend="forkserver") as sb:
        proc = sb._pool[0].proc
        threading.Timer(0.3, proc.kill).start()  # the server dies mid-job (e.g. the host OOM killer)
        r = sb.run(Job("import time\ntime.sleep(5)"))
        assert (r.verdict, r.error) == ("killed", "sandbox worker died")
        assert sb.run(Job("assert 2 + 2 == 4")).passed
        assert len(sb.job_uids) == 2 and processes_of(sb.job_uids) == []


@needs_forkserver
def test_info_names_backend_limits_and_isolation():
    with Sandbox(workers=1, limits=FAST, backend="auto") as sb:
        info = sb.info()
    assert info["backend"] == "forkserver" and info["requested_backend"] == "auto" and info["workers"] == 1
    assert info["limits"]["wall_s"] == 2.0 and info["limits"]["memory_mb"] == 256
    assert any("pid namespaces" in f for f in info["isolation"])
    assert any(f.startswith("self-check") for f in info["isolation"])


def test_job_and_limits_are_validated():
    with pytest.raises(ValueError, match="plain relative path"):
        Job("pass", files={"../x": "y"})
    with pytest.raises(ValueError, match="plain relative path"):
        Job("pass", files={"/etc/x": "y"})
    with pytest.raises(ValueError, match="wall_s"):
        Limits(wall_s=0)
    with pytest.raises(SandboxError, match="unknown sandbox backend"):
        Sandbox(backend="docker")


@needs_forkserver
def test_job_file_over_the_limit_is_a_setup_error(untouched):
    r = untouched.run(Job("print('ran')", files={"big.bin": b"\0" * (2 * 2**20)}, limits=Limits(file_mb=1)))
    assert (r.verdict, r.stdout) == ("setup_error", "") and "File too large" in r.message


# ---------------------------------------------------------------------------------------------- set-up errors


def test_auto_without_isolation_is_an_error_never_unsafe(monkeypatch, tmp_path):
    monkeypatch.setattr(sandbox_core, "_effective_caps", lambda: 0)  # as a user without root
    marker = tmp_path / "ran-unsandboxed"
    with pytest.raises(SandboxError, match=r"needs root .*CAP_SYS_ADMIN.*backend='unsafe'"):
        Sandbox(backend="auto").run(Job(f"open({str(marker)!r}, 'w')"))
    with pytest.raises(SandboxError, match="needs root"):
        Sandbox(backend="forkserver")
    assert not marker.exists()


@needs_forkserver
def test_isolation_that_fails_to_set_up_raises_and_runs_nothing(monkeypatch, tmp_path):
    # The server's self-check finds a host path it must not see: it refuses to serve.
    monkeypatch.setattr(sandbox_core, "_must_be_hidden", lambda binds: ["/usr"])
    marker = tmp_path / "ran"
    spawned = []
    spawn = sandbox_core._Worker.spawn
    monkeypatch.setattr(sandbox_core._Worker, "spawn", lambda self: (spawn(self), spawned.append(self.proc)))
    sb = Sandbox(workers=2, limits=FAST, backend="forkserver")
    with pytest.raises(SandboxError, match="could not be set up: .*host path /usr is visible"):
        sb.run(Job(f"open({str(marker)!r}, 'w')"))
    assert not marker.exists() and len(spawned) == 2
    assert all(p.poll() is not None for p in spawned) and alive(p.pid for p in spawned) == set()
    monkeypatch.setattr(sandbox_core, "_interpreter", lambda: str(tmp_path / "no-python"))
    with pytest.raises((SandboxError, OSError)):
        Sandbox(workers=1, backend="forkserver").start()


def test_unsafe_backend_is_explicit_and_runs_without_isolation(tmp_path):
    marker = tmp_path / "written-by-unsafe-job"
    with Sandbox(workers=2, limits=FAST, backend="unsafe") as sb:
        info = sb.info()
        results = sb.map([Job(f"import os\nopen({str(marker)!r}, 'w').write('x')\nprint(os.getcwd())"),
                          Job("assert 1 == 2"), Job("while True:\n    pass", limits=Limits(wall_s=0.5)),
                          Job("import os\nos._exit(0)")])  # fmt: skip
    assert info["backend"] == "unsafe" and info["isolation"][0].startswith("none")
    assert [r.verdict for r in results] == ["pass", "fail", "timeout", "fail"]
    assert marker.exists()  # the whole point: nothing is isolated
    assert not Path(results[0].stdout.strip()).exists()  # its temporary job directory is removed


def test_unsafe_is_never_chosen_by_auto(monkeypatch):
    monkeypatch.setattr(sandbox_core, "unavailable_reason", lambda b: None if b == "unsafe" else "simulated")
    with pytest.raises(SandboxError, match="simulated"):
        Sandbox(backend="auto")


def test_classify_never_passes_without_a_valid_record():
    lim = Limits()
    base = {"stdout": "", "stderr": "", "duration_s": 0.1, "cpu_s": 0.05}
    ok = {"pid": 2, "status": "ok"}
    assert sandbox_core.classify({**base, "exit": 0, "signal": None, "record": ok}, lim).verdict == "pass"
    for facts in [{"exit": 0, "signal": None, "record": None}, {"exit": 1, "signal": None, "record": ok},
                  {"exit": None, "signal": signal.SIGKILL, "record": ok},
                  {"exit": 0, "signal": None, "record": ok, "reason": "timeout"},
                  {"exit": 0, "signal": None, "record": ok, "reason": "output_limit"}]:  # fmt: skip
        assert sandbox_core.classify({**base, **facts}, lim).verdict != "pass", facts

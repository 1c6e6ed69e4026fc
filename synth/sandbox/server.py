"""The part of the sandbox that runs inside the isolation: set-up, the fork-server loop and the job runners.

This file is deliberately stand-alone (stdlib only, no package imports): the host reads its source and starts
it as ``python -I -S -B -c <this source> <config json> <source of remote.py>``, so nothing from the
repository, the venv or site-packages has to be visible inside the new root. See `synth.sandbox` for the design.

Host -> server: frames (4-byte big-endian length + JSON) on the server's stdin; server -> host: frames on its
stdout. The first frame the server sends is ``{"ready": true, "features": [...]}`` or
``{"ready": false, "error": "..."}``. A job frame (``op`` ``job`` or ``testjob``, the limits, the sizes of
its payload) is followed by the payload's raw bytes (program, stdin, files; or solution, tests), read straight
into buffers the server wipes once the job processes are forked. Each job gets one result frame with the raw
facts (exit statuses, why the server killed the job, the token) followed by the raw output tails and the
completion record; the host parses the record and turns the facts into a verdict. The server never decodes
what a job wrote, so none of it lingers in its heap for a later job's fork to find.
"""

import _signal
import ctypes
import errno
import fcntl
import gc
import json
import os
import platform
import resource
import select
import signal
import sys
import time

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MNT_DETACH = 2
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_CHILD_SUBREAPER, PR_SET_NO_NEW_PRIVS = 1, 4, 36, 38
PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 22, 2
M_ARENA_MAX = -8
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "riscv64": 41, "ppc64le": 203, "s390x": 217}

JOB_DIR = "/job"  # inside the new root; a fresh tmpfs is mounted here for every job
RECORD_MAX = 65536  # bytes read from the completion channel; more is treated as output abuse
RESULT_FD = 3  # the completion channel in the job process (and in the test process of a test job)
CALL_FD = 3  # the socket between the two processes of a test job, in the solution process
TESTS_CALL_FD = 4  # its other end, in the test process
SERVER_MB = 64  # the server's share of its worker's memory cgroup
CHILD_PATH = "/usr/local/bin:/usr/bin:/bin"

# Modules most generated programs import, loaded once in the server so a forked job finds them warm. Not
# threading: its after-fork hook costs every job process about 130 page faults (~1.5 ms) whether it uses threads
# or not; the few jobs that do import it themselves.
PRELOAD = (
    "abc", "array", "base64", "bisect", "collections", "copy", "dataclasses", "datetime", "decimal", "enum",
    "fractions", "functools", "hashlib", "heapq", "io", "itertools", "json", "linecache", "math", "operator",
    "random", "re", "statistics", "string", "struct", "textwrap", "traceback", "types", "typing",
)  # fmt: skip

_libc = None
remote = None  # the module synth/sandbox/remote.py, loaded by main()


def libc():
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
        _libc.mount.argtypes = [
            ctypes.c_char_p,
            ctypes.c_char_p,
            ctypes.c_char_p,
            ctypes.c_ulong,
            ctypes.c_char_p,
        ]
        _libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
        _libc.unshare.argtypes = [ctypes.c_int]
        _libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
        _libc.sethostname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
    return _libc


def _check(ret, what):
    if ret != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"{what}: {os.strerror(e)}")


def _b(s):
    return None if s is None else os.fsencode(s)


def mount(source, target, fstype, flags, data=None):
    _check(libc().mount(_b(source), _b(target), _b(fstype), flags, _b(data)), f"mount {target}")


def umount(target):
    _check(libc().umount2(_b(target), MNT_DETACH), f"umount {target}")


def prctl(option, arg):
    _check(libc().prctl(option, arg, 0, 0, 0), f"prctl({option})")


# ---------------------------------------------------------------------------------------------- framing


def recv(fd):
    """A frame from the host (the test-job protocol's framing, `synth/sandbox/remote.py`); None at end of file."""
    return remote.recv_frame(fd, 2**26)


def send(fd, obj):
    remote.send_frame(fd, obj)


# ---------------------------------------------------------------------------------------------- isolation


def build_root(cfg):
    """Private mount namespace: tmpfs root, read-only binds of the system and the interpreter, /dev, /proc, an
    empty read-only /tmp and a mount point for the per-job tmpfs; then pivot_root and remount / read-only."""
    features = []
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    binds = [p for p in cfg["binds"] if os.path.lexists(p)]
    newroot = next(d for d in ("/mnt", "/media", "/srv", "/opt", "/tmp", "/home")
                   if os.path.isdir(d) and not os.path.islink(d)
                   and not any(p == d or p.startswith(d + "/") for p in binds))  # fmt: skip
    mount("tmpfs", newroot, "tmpfs", MS_NOSUID | MS_NODEV, "size=8m,nr_inodes=4096,mode=0755")

    def inside(p):
        return newroot + p

    for p in binds:
        if os.path.islink(p):  # merged /usr: /bin -> usr/bin is recreated as the same link
            os.makedirs(os.path.dirname(inside(p)), mode=0o755, exist_ok=True)
            os.symlink(os.readlink(p), inside(p))
            continue
        os.makedirs(inside(p), mode=0o755, exist_ok=True)
        mount(p, inside(p), None, MS_BIND | MS_REC)
        mount(None, inside(p), None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)
    features.append("read-only system binds: " + " ".join(binds))

    os.makedirs(inside("/dev"), mode=0o755)
    for name in ("null", "zero", "full", "random", "urandom"):
        open(inside("/dev/" + name), "w").close()
        mount("/dev/" + name, inside("/dev/" + name), None, MS_BIND)
        mount(None, inside("/dev/" + name), None, MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NOEXEC)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                         ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):  # fmt: skip
        os.symlink(target, inside("/dev/" + name))

    os.makedirs(inside("/proc"), mode=0o555)
    try:  # hidepid: a job sees only its own processes, not the server's
        mount("proc", inside("/proc"), "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, "hidepid=2")
        features.append("proc hidepid=2")
    except OSError:
        mount("proc", inside("/proc"), "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    for d in (JOB_DIR, "/tmp", "/etc"):
        os.makedirs(inside(d), mode=0o755, exist_ok=True)

    os.chdir(newroot)
    _check(libc().syscall(SYS_PIVOT_ROOT[platform.machine()], b".", b"."), "pivot_root")
    umount(".")  # the old root, stacked on top of the new one by pivot_root(".", ".")
    os.chdir("/")
    mount(None, "/", None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
    features.append("pivot_root into tmpfs root, remounted read-only")
    return features


def isolate(cfg):
    """Run in the process the host started: new namespaces, then fork so the server is pid 1 of its own pid
    namespace (its death kills every job process). The first process stays behind only to wait for it, and
    its death (the host killing it) kills the server through the parent-death signal."""
    libc().mallopt(M_ARENA_MAX, 2)
    _check(libc().unshare(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWPID), "unshare")
    pid = os.fork()
    if pid:  # still in the host's pid namespace
        os.close(0)
        os.close(1)
        _, status = os.waitpid(pid, 0)
        os._exit(os.waitstatus_to_exitcode(status) & 0xFF)
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    name = b"sandbox"
    _check(libc().sethostname(name, len(name)), "sethostname")
    features = ["namespaces: mount net ipc uts pid", "network: empty namespace, no interface up"]
    if cfg.get("cgroup"):
        features += join_memory_cgroup(cfg["cgroup"])
    features += build_root(cfg)
    prctl(PR_SET_DUMPABLE, 0)
    features += self_check(cfg)
    features += build_seccomp()
    return features


CGROUP = {}  # open descriptors on the worker's memory cgroup: "limit", "events"


def join_memory_cgroup(cg):
    """Move the server into the worker's own memory cgroup (made by the host), so every job process is born in
    it: their memory together is bounded, not only each one's address space. Each job raises its own
    oom_score_adj to 1000 (which needs no privilege), so the cgroup's OOM killer takes job processes first."""
    d, v2 = cg["dir"], cg["version"] == 2
    CGROUP["limit"] = os.open(os.path.join(d, "memory.max" if v2 else "memory.limit_in_bytes"), os.O_WRONLY)
    CGROUP["events"] = os.open(os.path.join(d, "memory.events" if v2 else "memory.oom_control"), os.O_RDONLY)
    swap = os.path.join(d, "memory.swap.max")
    if v2 and os.path.exists(swap):
        with open(swap, "w") as f:
            f.write("0")
    with open(os.path.join(d, "cgroup.procs"), "w") as f:
        f.write("0")
    return [f"memory cgroup v{cg['version']} per worker: all processes of a job together"]


def oom_kills():
    if not CGROUP:
        return 0
    for line in os.pread(CGROUP["events"], 4096, 0).decode().splitlines():
        if line.startswith("oom_kill "):
            return int(line.split()[1])
    return 0


def self_check(cfg):
    """Refuse to serve when the isolation is not what it should be (never a silent downgrade)."""
    import socket

    try:
        open("/.write-probe", "w").close()
    except OSError as e:
        if e.errno != errno.EROFS:
            raise
    else:
        raise RuntimeError("root filesystem is writable after set-up")
    for family, kind in ((socket.AF_INET, socket.SOCK_STREAM), (socket.AF_INET, socket.SOCK_DGRAM)):
        s = socket.socket(family, kind)
        try:
            s.settimeout(0.2)
            s.connect(("127.0.0.1", 9))
            if kind == socket.SOCK_DGRAM:
                s.send(b"x")
        except OSError as e:
            if e.errno not in (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EADDRNOTAVAIL):
                raise RuntimeError(f"network probe: unexpected {e!r}") from None
        else:
            raise RuntimeError("network is reachable from inside the sandbox")
        finally:
            s.close()
    for path in cfg.get("must_be_hidden", []):
        if os.path.lexists(path):
            raise RuntimeError(f"host path {path} is visible inside the sandbox")
    return ["self-check: root read-only, 127.0.0.1 unreachable, host paths hidden"]


# Syscalls a job never needs and that are the usual way into kernel bugs: namespaces (unprivileged user
# namespaces above all), mounts, ptrace, keyrings, bpf, userfaultfd, perf, io_uring, handles. x86_64 only.
SECCOMP_BLOCKED_X86_64 = {
    "unshare": 272, "setns": 308, "mount": 165, "umount2": 166, "pivot_root": 155, "chroot": 161, "ptrace": 101,
    "add_key": 248, "request_key": 249, "keyctl": 250, "bpf": 321, "userfaultfd": 323, "perf_event_open": 298,
    "open_by_handle_at": 304, "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
}  # fmt: skip
SECCOMP = {}


class SockFilter(ctypes.Structure):
    _fields_ = [
        ("code", ctypes.c_ushort),
        ("jt", ctypes.c_ubyte),
        ("jf", ctypes.c_ubyte),
        ("k", ctypes.c_uint),
    ]


class SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(SockFilter))]


def build_seccomp():
    """A classic-BPF seccomp filter: other architectures' and x32 syscalls kill the job; the blocked syscalls
    fail with EPERM; clone3 fails with ENOSYS (its flags cannot be inspected; libc falls back to clone); clone
    with a namespace flag fails with EPERM; everything else is allowed."""
    if platform.machine() != "x86_64":
        return []
    ld, jeq, jge, jset, ret = 0x20, 0x15, 0x35, 0x45, 0x06
    allow, kill = 0x7FFF0000, 0x80000000
    eperm, enosys = 0x00050000 | errno.EPERM, 0x00050000 | errno.ENOSYS
    namespaces = 0x7E020000  # CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET
    prog = [(ld, 0, 0, 4), (jeq, 1, 0, 0xC000003E), (ret, 0, 0, kill),  # arch must be x86_64
            (ld, 0, 0, 0), (jge, 0, 1, 0x40000000), (ret, 0, 0, kill)]  # no x32 ABI  # fmt: skip
    for nr in SECCOMP_BLOCKED_X86_64.values():
        prog += [(jeq, 0, 1, nr), (ret, 0, 0, eperm)]
    prog += [(jeq, 0, 1, 435), (ret, 0, 0, enosys)]  # clone3
    prog += [(jeq, 0, 3, 56), (ld, 0, 0, 16), (jset, 0, 1, namespaces), (ret, 0, 0, eperm)]  # clone
    prog += [(ret, 0, 0, allow)]
    filters = (SockFilter * len(prog))(*[SockFilter(*ins) for ins in prog])
    SECCOMP["filters"] = filters  # kept alive for the forked jobs
    SECCOMP["prog"] = SockFprog(len(prog), filters)
    return ["seccomp: no namespaces, mounts, ptrace, keyrings, bpf, userfaultfd, perf, io_uring"]


def install_seccomp():
    if SECCOMP:
        _check(libc().prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(SECCOMP["prog"]), 0, 0),
               "seccomp")  # fmt: skip


# ---------------------------------------------------------------------------------------------- the server


class Tail:
    """The last (or, with ``head``, the first) `cap` bytes that came through a pipe, in one buffer allocated up
    front and wiped after use: nothing a job wrote lingers in the server's heap for a later job's fork to find."""

    def __init__(self, cap, *, head=False):
        self.buf = bytearray(cap)
        self.cap = cap
        self.head = head
        self.total = 0

    def add(self, view):
        n, cap = len(view), self.cap
        if self.head:
            take = max(0, min(n, cap - self.total))
            self.buf[self.total : self.total + take] = view[:take]
            self.total += n
            return
        if n > cap:
            self.total += n - cap
            view, n = view[n - cap :], cap
        pos = self.total % cap
        first = min(n, cap - pos)
        self.buf[pos : pos + first] = view[:first]
        if n > first:
            self.buf[: n - first] = view[first:]
        self.total += n

    def chunks(self):
        view = memoryview(self.buf)
        if self.total <= self.cap:
            return [view[: self.total]]
        if self.head:
            return [view]
        pos = self.total % self.cap
        return [view[pos:], view[:pos]]

    def size(self):
        return min(self.total, self.cap)

    def wipe(self):
        n = self.size()
        self.buf[:n] = bytes(n)
        self.total = 0


SCRATCH = bytearray(65536)  # every read from a job's pipes lands here first (never in a new bytes object)
SCRATCH_USED = [0]  # how much of it the last job touched


def wipe(buf):
    if buf is not None:
        buf[:] = bytes(len(buf))


def read_blob(fd, n):
    """`n` bytes of a job's payload from the host, straight into a bytearray the server wipes after the fork."""
    buf = remote.read_exact(fd, n)
    if buf is None:
        raise SystemExit("the host closed the channel mid-frame")
    return buf


def send_facts(fd, facts, blobs):
    """A result frame: the facts as JSON (with each blob's name and size), then the blobs' raw bytes."""
    send(fd, {**facts, "blobs": [[name, tail.size()] for name, tail in blobs]})
    for _, tail in blobs:
        for chunk in tail.chunks():
            while chunk:
                chunk = chunk[os.write(fd, chunk) :]


def text(blob):
    return bytes(blob).decode("utf-8", "surrogatepass")


class Server:
    def __init__(self, cfg):
        self.cfg = cfg
        self.isolated = cfg["mode"] == "isolated"
        self.uid = cfg.get("uid")
        self.tester_uid = cfg.get("tester_uid")
        self.tails = {}
        self.env_cwd = None  # the job directory the server's environment is prepared for

    def tails_for(self, lim, *names):
        """The output buffers of a job, reused from job to job (they are wiped after each)."""
        out = []
        for name in names:
            cap = RECORD_MAX if name == "record" else cap_of(lim)
            if name not in self.tails or self.tails[name].cap != cap:
                self.tails[name] = Tail(cap, head=name == "record")
            out.append((name, self.tails[name]))
        return out

    def serve(self):
        for name in PRELOAD:
            __import__(name)
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        if not self.isolated:
            prctl(PR_SET_CHILD_SUBREAPER, 1)
        # A job process pays a page fault (copy on write) for every page of the server's it writes, and the
        # interpreter writes to code it runs for the first few times: run here what every job runs first.
        self.env_cwd = JOB_DIR if self.isolated else "/tmp"
        os.environ.clear()
        os.environ.update(child_environment(self.env_cwd))
        for _ in range(10):
            prctl(PR_SET_NO_NEW_PRIVS, 1)  # every job sets it anyway; the server never executes a program
        gc.collect()
        gc.freeze()  # forked jobs do not touch the server's objects' pages
        while True:
            msg = recv(0)
            if msg is None or msg.get("op") == "exit":
                return
            run = self.run_test_job if msg.get("op") == "testjob" else self.run_job
            facts, blobs = run(msg)
            try:
                send_facts(1, facts, blobs)
            finally:
                for _, tail in blobs:
                    tail.wipe()
                SCRATCH[: SCRATCH_USED[0]] = bytes(SCRATCH_USED[0])
                SCRATCH_USED[0] = 0

    # -- per job

    def make_job_dir(self, lim):
        if self.isolated:
            size = max(int(lim["disk_mb"]), 1)
            mount("tmpfs", JOB_DIR, "tmpfs", MS_NOSUID | MS_NODEV,
                  f"size={size}m,nr_inodes=16384,mode=0700,uid={self.uid},gid={self.uid}")  # fmt: skip
            return JOB_DIR
        import tempfile

        return tempfile.mkdtemp(prefix="posttrain-sandbox-unsafe-")

    def remove_job_dir(self, path):
        if self.isolated:
            umount(path)
        else:
            import shutil

            shutil.rmtree(path, ignore_errors=True)

    def prepare(self, lim, processes):
        """The job directory and the memory cgroup's limit; (job_dir, oom kills so far) or a setup error."""
        try:
            job_dir = self.make_job_dir(lim)
        except OSError as e:
            return None, f"job directory: {e}"
        if CGROUP:  # the jobs' memory and its files (tmpfs pages are charged too), plus the server's own
            cap = (processes * int(lim["memory_mb"]) + int(lim["disk_mb"]) + SERVER_MB) * 1024 * 1024
            try:
                os.pwrite(CGROUP["limit"], str(cap).encode(), 0)
            except OSError as e:
                self.remove_job_dir(job_dir)
                return None, f"memory cgroup limit: {e}"
        return job_dir, oom_kills()

    def run_job(self, msg):
        """A program as __main__: one process, its completion record on fd 3."""
        lim = msg["limits"]
        blobs = [read_blob(0, n) for n in msg["sizes"]]
        code, rest = blobs[0], blobs[1:]
        stdin = rest.pop(0) if msg.get("stdin") else None
        files = dict(zip(msg.get("files", []), rest, strict=True))
        token = os.urandom(16).hex()
        job_dir, ooms = self.prepare(lim, 1)
        if job_dir is None:
            for b in blobs:
                wipe(b)
            return {"setup_error": ooms}, []
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        res_r, res_w = os.pipe()
        in_fd = None
        if stdin is not None:
            in_fd = os.memfd_create("stdin", 0)
            os.write(in_fd, stdin)
            os.lseek(in_fd, 0, os.SEEK_SET)
        t0 = time.monotonic()
        pid = self.fork(lambda: job_child(self, code, files, lim, job_dir, token, in_fd, out_w, err_w, res_w))
        for fd in (out_w, err_w, res_w) + ((in_fd,) if in_fd is not None else ()):
            os.close(fd)
        for b in blobs:
            wipe(b)
        blobs = self.tails_for(lim, "stdout", "stderr", "record")
        (_, out), (_, err), (_, rec) = blobs
        if isinstance(pid, str):
            for fd in (out_r, err_r, res_r):
                os.close(fd)
            self.remove_job_dir(job_dir)
            return {"setup_error": pid}, []
        try:
            facts, _ = self.watch(pid, [], {out_r: out, err_r: err}, (res_r, rec), lim, t0)
        finally:
            for fd in (out_r, err_r, res_r):
                os.close(fd)
            self.remove_job_dir(job_dir)
        facts.update(token=token, pid=pid, oom_killed=oom_kills() > ooms)
        return facts, blobs

    def run_test_job(self, msg):
        """A solution and its tests in two processes (see `synth.sandbox.remote`). The solution process is forked
        before the tests are even read from the host, and before the token exists: its copy of the server's
        memory holds neither. The tests go to a second process, as another uid, that holds the token."""
        lim = msg["limits"]
        sol_size, tests_size = msg["sizes"]
        solution = read_blob(0, sol_size)
        job_dir, ooms = self.prepare(lim, 2)
        if job_dir is None:
            wipe(solution)
            wipe(read_blob(0, tests_size))
            return {"setup_error": ooms}, []
        frame_max = max(2**16, min(remote.FRAME_MAX, int(lim["memory_mb"]) * 2**20 // 4))
        sol_out_r, sol_out_w = os.pipe()
        sol_err_r, sol_err_w = os.pipe()
        sock_sol, sock_tests = socket_pair()
        t0 = time.monotonic()
        sol_pid = self.fork(
            lambda: solution_child(self, solution, lim, job_dir, sol_out_w, sol_err_w, sock_sol)
        )
        for fd in (sol_out_w, sol_err_w, sock_sol):
            os.close(fd)
        wipe(solution)
        tests = read_blob(0, tests_size)
        token = os.urandom(16).hex()
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        res_r, res_w = os.pipe()
        tests_dir = "/tmp" if self.isolated else job_dir
        pid = "solution process: " + sol_pid if isinstance(sol_pid, str) else self.fork(
            lambda: run_tests_child(self, tests, msg.get("entry_point"), frame_max, lim, tests_dir, token, out_w,
                                 err_w, res_w, sock_tests))  # fmt: skip
        for fd in (out_w, err_w, res_w, sock_tests):
            os.close(fd)
        wipe(tests)
        blobs = self.tails_for(lim, "stdout", "stderr", "record", "solution_stdout", "solution_stderr")
        out, err, rec, sol_out, sol_err = (tail for _, tail in blobs)
        pipes = (out_r, err_r, res_r, sol_out_r, sol_err_r)
        if isinstance(pid, str):
            self.kill_all([sol_pid] if isinstance(sol_pid, int) else [])
            for fd in pipes:
                os.close(fd)
            self.remove_job_dir(job_dir)
            return {"setup_error": pid}, []
        try:
            facts, others = self.watch(pid, [sol_pid], {out_r: out, err_r: err, sol_out_r: sol_out,
                                                        sol_err_r: sol_err}, (res_r, rec), lim, t0)  # fmt: skip
        finally:
            for fd in pipes:
                os.close(fd)
            self.remove_job_dir(job_dir)
        facts.update(token=token, pid=pid, oom_killed=oom_kills() > ooms, solution=others[sol_pid])
        return facts, blobs

    @staticmethod
    def fork(run):
        """Fork a job process that runs `run` (and never returns); its pid, or the error as a string."""
        try:
            pid = os.fork()
        except OSError as e:
            return f"fork: {e}"
        if pid == 0:  # pragma: no cover - runs in the job process
            try:
                run()
            finally:
                os._exit(4)
        return pid

    def watch(self, pid, others, streams, record, lim, t0):
        """Read the job's output while it runs (`streams`: the stdout and stderr pipes of all its processes,
        counted together); stop it at the wall-time or output limit or when `pid` ends; then kill whatever it
        left behind and collect the exit status of `pid` and of each of `others`."""
        cap = int(lim["output_kb"]) * 1024
        deadline = t0 + float(lim["wall_s"])
        res_r, rec = record
        tails = {**streams, res_r: rec}
        open_fds = set(tails)
        pidfds = {os.pidfd_open(p): p for p in (pid, *others)}
        poller = select.poll()
        for fd in (*tails, *pidfds):
            os.set_blocking(fd, False)
            poller.register(fd, select.POLLIN)
        reason = None
        statuses, ended = {}, {}

        def take(fd):
            """Read once from fd: True when data came (more may follow), False when empty or closed."""
            nonlocal reason
            if fd not in open_fds:
                return False
            try:
                n = os.readv(fd, [SCRATCH])
            except BlockingIOError:
                return False
            if not n:
                open_fds.discard(fd)
                poller.unregister(fd)
                return False
            tails[fd].add(memoryview(SCRATCH)[:n])
            SCRATCH_USED[0] = max(SCRATCH_USED[0], n)
            if fd == res_r:
                if rec.total > RECORD_MAX:
                    reason = reason or "output_limit"
            elif sum(t.total for t in streams.values()) > cap:
                reason = reason or "output_limit"
            return True

        try:
            while reason is None and pid not in statuses:
                timeout = deadline - time.monotonic()
                if timeout <= 0:
                    reason = "timeout"
                    break
                for fd, _ev in poller.poll(max(timeout * 1000, 1)):
                    if fd in pidfds:
                        p = pidfds[fd]
                        poller.unregister(fd)
                        _, status, rusage = os.wait4(p, 0)
                        statuses[p] = (status, rusage)
                        ended[p] = time.monotonic() - t0
                    else:
                        take(fd)
            t1 = time.monotonic()
            for p in others:  # ended on their own by now (a process the sandbox kills shows SIGKILL)
                reaped = (0,) if p in statuses else os.wait4(p, os.WNOHANG)
                if reaped[0] == p:
                    statuses[p], ended[p] = reaped[1:], t1 - t0
            for p, st in self.kill_all([p for p in (pid, *others) if p not in statuses]).items():
                statuses[p] = st
            # What is still in the pipes was written before the kill, and counts against the limit too; every
            # writer is dead now, so each read returns data or end-of-file.
            for fd in tails:
                while take(fd):
                    pass
        finally:
            for fd in pidfds:
                os.close(fd)
        facts = {**status_facts(*statuses[pid]), "reason": reason, "duration_s": t1 - t0,
                 "output_bytes": sum(t.total for t in streams.values())}  # fmt: skip
        return facts, {p: {**status_facts(*statuses[p]), "ended_s": ended.get(p)} for p in others}

    def kill_all(self, pids):
        """Kill every process the job left, detached or not, and reap them; returns {pid: (status, rusage)} for
        those of `pids` reaped here.

        Isolated: the server is pid 1 of a pid namespace that holds nothing but itself and the job's processes,
        so kill(-1) reaches all of them (setsid orphans included) and they all end up as its children; a fork
        racing with the kill fails, because the forking process already has SIGKILL pending. Unsafe: only the
        job's processes and their process groups."""
        statuses = {}
        if not self.isolated:
            for pid in pids:
                for kill in (os.kill, os.killpg):
                    try:
                        kill(pid, signal.SIGKILL)
                    except (ProcessLookupError, PermissionError):
                        pass
            for pid in pids:
                try:
                    _, status, rusage = os.wait4(pid, 0)
                    statuses[pid] = (status, rusage)
                except ChildProcessError:
                    pass
            while True:  # orphans re-parented to this subreaper
                try:
                    if os.waitpid(-1, os.WNOHANG)[0] == 0:
                        break
                except ChildProcessError:
                    break
            return statuses
        while True:
            try:
                os.kill(-1, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                reaped, st, ru = os.wait4(-1, 0)
            except ChildProcessError:
                return statuses
            if reaped in pids:
                statuses[reaped] = (st, ru)


def cap_of(lim):
    return int(lim["output_kb"]) * 1024


def status_facts(status, rusage):
    if status is None:
        return {"exit": None, "signal": None, "cpu_s": None}
    sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
    return {"exit": None if sig else os.WEXITSTATUS(status), "signal": sig,
            "cpu_s": rusage.ru_utime + rusage.ru_stime, "maxrss_kb": rusage.ru_maxrss, "minflt": rusage.ru_minflt}  # fmt: skip


def socket_pair():
    """The call channel between the two processes of a test job: a connected pair of Unix stream sockets."""
    import socket

    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    return a.detach(), b.detach()


# ---------------------------------------------------------------------------------------------- the job processes


def confine(server, lim, cwd, uid, fds):
    """In a freshly forked job process: put `fds` ({target: source, None = /dev/null}) in place and close every
    other descriptor, start a new session, drop to `uid` (isolated), no new privileges, seccomp, rlimits and a
    clean environment. Runs before any untrusted code."""
    _signal.signal(int(signal.SIGINT), _signal.default_int_handler)  # the C module: no enum lookups here
    for sig in (signal.SIGTERM, signal.SIGCHLD, signal.SIGHUP, signal.SIGQUIT):
        _signal.signal(int(sig), _signal.SIG_DFL)
    sources = [os.open("/dev/null", os.O_RDONLY) if src is None else src for src in fds.values()]
    # Lift the sources above the targets first so no dup2 overwrites a source still to be copied.
    high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 64) for fd in sources]
    for src, dst in zip(high, fds, strict=True):
        os.dup2(src, dst)
    os.closerange(max(fds) + 1, 1 << 20)  # the host channel, the other pipes' ends, the memfd
    os.chdir(cwd)
    os.umask(0o022)
    os.setsid()  # its own session and process group: killpg(0) reaches only the job
    if CGROUP:  # the cgroup's OOM killer takes the job's processes before the server
        fd = os.open("/proc/self/oom_score_adj", os.O_WRONLY)
        os.write(fd, b"1000")
        os.close(fd)
    if server.isolated:
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
    if server.isolated or uid == server.tester_uid:
        prctl(PR_SET_DUMPABLE, 0)  # no core dump, no ptrace, no /proc/<pid>/mem by its peers
    prctl(PR_SET_NO_NEW_PRIVS, 1)
    install_seccomp()
    set_limits(lim, nproc=server.isolated)
    if cwd != server.env_cwd:  # the server's own environment is already a job's (see Server.serve)
        for key in ("HOME", "TMPDIR", "PWD"):
            os.environ[key] = cwd


def child_environment(cwd):
    return {"PATH": CHILD_PATH, "HOME": cwd, "TMPDIR": cwd, "LANG": "C.UTF-8", "PWD": cwd}


def job_child(server, code, files, lim, job_dir, token, in_fd, out_w, err_w, res_w):
    """The forked process of a `Job`: confine itself, then run the program as __main__. Never returns."""
    channel = res_w
    try:
        if in_fd is not None:  # a read-only descriptor on the memfd, so the job cannot rewrite its stdin
            ro = os.open(f"/proc/self/fd/{in_fd}", os.O_RDONLY)
            os.close(in_fd)
            in_fd = ro
        confine(server, lim, job_dir, server.uid, {0: in_fd, 1: out_w, 2: err_w, RESULT_FD: res_w})
        channel = RESULT_FD
        write_files(files)
        code = text(code)
    except BaseException as e:  # noqa: B036
        os.write(channel, record(token, "setup_error", type(e).__name__, str(e)))
        os._exit(3)
    run_program(code, token, job_dir)


def solution_child(server, solution, lim, job_dir, out_w, err_w, sock):
    """The solution process of a test job: confined as the job uid, it serves calls on fd 3 (no completion
    channel: nothing it says can make the job pass)."""
    channel = sock
    try:
        confine(server, lim, job_dir, server.uid, {0: None, 1: out_w, 2: err_w, CALL_FD: sock})
        channel = CALL_FD
        solution = text(solution)
        setup_stdio()
        sys.path.insert(0, job_dir)
    except BaseException as e:  # noqa: B036
        remote.send_frame(channel, {"ready": False, "setup_error": f"{type(e).__name__}: {e}"})
        os._exit(3)
    remote.serve_solution(CALL_FD, solution)
    os._exit(0)


def run_tests_child(server, tests, entry_point, frame_max, lim, cwd, token, out_w, err_w, res_w, sock):
    """The test process of a test job: confined as the tester uid, it runs the tests against proxies of the
    solution's names and writes the completion record. It never runs code of the solution's."""
    channel = res_w
    try:
        confine(server, lim, cwd, server.tester_uid, {0: None, 1: out_w, 2: err_w, RESULT_FD: res_w,
                                                      TESTS_CALL_FD: sock})  # fmt: skip
        channel = RESULT_FD
        tests = text(tests)  # print() and tracebacks go to the server's own (never used) sys.stdout and
        # sys.stderr, which write to fds 1 and 2: now this process's pipes (new streams cost ~0.5 ms a job)
        sys.stdout.reconfigure(errors="backslashreplace")
    except BaseException as e:  # noqa: B036
        os.write(channel, record(token, "setup_error", type(e).__name__, str(e)))
        os._exit(3)
    status, etype, message, calls = remote.run_tests(TESTS_CALL_FD, tests, entry_point, frame_max)
    flush_stdio()
    try:
        os.write(RESULT_FD, record(token, status, etype, message, calls=calls))
    except BaseException:  # noqa: B036
        os._exit(5)
    os._exit(0 if status == "ok" else 1)


def set_limits(lim, *, nproc):
    mb = 1024 * 1024
    cpu = max(1, int(-(-float(lim["cpu_s"]) // 1)))

    def setr(res, soft, hard=None):
        resource.setrlimit(res, (soft, soft if hard is None else hard))

    setr(resource.RLIMIT_AS, int(lim["memory_mb"]) * mb)
    setr(resource.RLIMIT_CPU, cpu, cpu + 1)
    setr(resource.RLIMIT_FSIZE, int(lim["file_mb"]) * mb)
    setr(resource.RLIMIT_NOFILE, 256)
    setr(resource.RLIMIT_CORE, 0)
    setr(resource.RLIMIT_MEMLOCK, 0)
    setr(resource.RLIMIT_MSGQUEUE, 0)
    if nproc:
        setr(resource.RLIMIT_NPROC, int(lim["processes"]))


def write_files(files):
    for rel, data in files.items():
        parts = rel.split("/")
        if rel.startswith("/") or any(p in ("", ".", "..") for p in parts):
            raise ValueError(f"job file path must be relative and plain: {rel!r}")
        if len(parts) > 1:
            os.makedirs("/".join(parts[:-1]), exist_ok=True)
        fd = os.open(rel, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)


def record(token, status, etype=None, message=None, **extra):
    rec = {"pid": os.getpid(), "status": status, "type": etype, "message": (message or "")[:2000], **extra}
    return (token + " " + json.dumps(rec) + "\n").encode()


def setup_stdio():
    """Fresh text streams on fds 0-2 (the server's own were never meant for jobs)."""
    import io

    sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False), encoding="utf-8", errors="surrogateescape")
    sys.stdout = io.TextIOWrapper(
        io.FileIO(1, "w", closefd=False), encoding="utf-8", errors="backslashreplace"
    )
    sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), encoding="utf-8", errors="backslashreplace",
                                  line_buffering=True)  # fmt: skip
    sys.__stdin__, sys.__stdout__, sys.__stderr__ = sys.stdin, sys.stdout, sys.stderr


def flush_stdio():
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            stream.flush()
        except BaseException:  # noqa: B036 - a job that broke its streams still gets its verdict
            pass


def run_program(code, token, job_dir):
    """Run `code` as the __main__ module. The completion record goes out only after the program returned (and
    its non-daemon threads ended), on a channel stdout/stderr cannot reach; an exception, SystemExit included,
    is recorded as one."""
    import builtins
    import linecache
    import traceback
    import types

    setup_stdio()
    sys.argv = ["main.py"]
    sys.path.insert(0, job_dir)
    main = types.ModuleType("__main__")
    main.__builtins__ = builtins
    main.__file__ = os.path.join(job_dir, "main.py")
    sys.modules["__main__"] = main
    linecache.cache["main.py"] = (len(code), None, code.splitlines(True), "main.py")
    status, etype, message, extra = "ok", None, None, {}
    try:
        exec(compile(code, "main.py", "exec", dont_inherit=True), main.__dict__)
        shutdown = getattr(
            sys.modules.get("threading"), "_shutdown", None
        )  # only a job that imported it has threads to wait for
        if shutdown is not None:  # like the end of a real program: wait for non-daemon threads
            shutdown()
    except BaseException as e:  # noqa: B036 - SystemExit and KeyboardInterrupt are failures too
        status, etype = "error", type(e).__name__
        message = str(e.code) if isinstance(e, SystemExit) else str(e)
        if isinstance(e, OSError) and e.errno:
            extra["errno"] = e.errno
        try:
            tb = e.__traceback__.tb_next or e.__traceback__  # without this runner's frame
            traceback.print_exception(type(e), e, tb, limit=-30, file=sys.stderr)
        except BaseException:  # noqa: B036
            pass
    flush_stdio()
    try:
        os.write(RESULT_FD, record(token, status, etype, message, **extra))
    except BaseException:  # noqa: B036
        os._exit(5)
    os._exit(0 if status == "ok" else 1)


# ---------------------------------------------------------------------------------------------- entry point


def load_remote(source):
    """The test-job protocol (`synth.sandbox.remote`), sent by the host as a second argument."""
    import types

    global remote
    remote = types.ModuleType("sandbox_remote")
    exec(compile(source, "<sandbox remote>", "exec", dont_inherit=True), remote.__dict__)
    sys.modules["sandbox_remote"] = remote


def main():
    cfg = json.loads(sys.argv[1])
    load_remote(sys.argv[2])
    os.umask(0o022)
    try:
        features = isolate(cfg) if cfg["mode"] == "isolated" else ["none: unsafe mode"]
    except BaseException as e:  # noqa: B036
        send(1, {"ready": False, "error": f"{type(e).__name__}: {e}"})
        os._exit(2)
    send(1, {"ready": True, "features": features})
    Server(cfg).serve()
    os._exit(0)


if __name__ == "__main__":
    main()

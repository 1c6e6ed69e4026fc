"""The part of the sandbox that runs inside the isolation: set-up, the fork-server loop and the job runner.

This file is deliberately stand-alone (stdlib only, no package imports): the host reads its source and starts
it as ``python -I -S -B -c <this source> <config json>``, so nothing from the repository, the venv or
site-packages has to be visible inside the new root. See `synth.sandbox` for the design.

Host -> server: frames (4-byte big-endian length + JSON) on the server's stdin; server -> host: frames on its
stdout. The first frame the server sends is ``{"ready": true, "features": [...]}`` or
``{"ready": false, "error": "..."}``. Each job frame gets one result frame with the raw facts (exit status,
why the server killed the job, the completion record, output tails); the host turns those into a verdict.
"""

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
import struct
import sys
import time
from base64 import b64decode, b64encode

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
RESULT_FD = 3  # the completion channel in the job process
SERVER_MB = 64  # the server's share of its worker's memory cgroup
CHILD_PATH = "/usr/local/bin:/usr/bin:/bin"

# Modules most generated programs import, loaded once in the server so a forked job finds them warm.
PRELOAD = (
    "abc", "array", "base64", "bisect", "collections", "copy", "dataclasses", "datetime", "decimal", "enum",
    "fractions", "functools", "hashlib", "heapq", "io", "itertools", "json", "linecache", "math", "operator",
    "random", "re", "statistics", "string", "struct", "textwrap", "threading", "traceback", "types", "typing",
)  # fmt: skip

_libc = None


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


def read_exact(fd, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = os.read(fd, n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


def recv(fd):
    head = read_exact(fd, 4)
    if head is None:
        return None
    body = read_exact(fd, struct.unpack(">I", head)[0])
    return None if body is None else json.loads(body)


def send(fd, obj):
    body = json.dumps(obj, separators=(",", ":")).encode()
    data = struct.pack(">I", len(body)) + body
    while data:
        data = data[os.write(fd, data) :]


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


class Server:
    def __init__(self, cfg):
        self.cfg = cfg
        self.isolated = cfg["mode"] == "isolated"
        self.uid = cfg.get("uid")

    def serve(self):
        for name in PRELOAD:
            __import__(name)
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        if not self.isolated:
            prctl(PR_SET_CHILD_SUBREAPER, 1)
        gc.collect()
        gc.freeze()  # forked jobs do not touch the server's objects' pages
        while True:
            msg = recv(0)
            if msg is None or msg.get("op") == "exit":
                return
            send(1, self.run_job(msg))

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

    def run_job(self, msg):
        lim = msg["limits"]
        token = os.urandom(16).hex()
        stdin = b64decode(msg["stdin"]) if msg.get("stdin") is not None else None
        files = {k: b64decode(v) for k, v in msg.get("files", {}).items()}
        try:
            job_dir = self.make_job_dir(lim)
        except OSError as e:
            return {"setup_error": f"job directory: {e}"}
        if CGROUP:  # the job's memory and its files (tmpfs pages are charged too), plus the server's own
            cap = (int(lim["memory_mb"]) + int(lim["disk_mb"]) + SERVER_MB) * 1024 * 1024
            try:
                os.pwrite(CGROUP["limit"], str(cap).encode(), 0)
            except OSError as e:
                self.remove_job_dir(job_dir)
                return {"setup_error": f"memory cgroup limit: {e}"}
        ooms = oom_kills()
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        res_r, res_w = os.pipe()
        in_fd = None
        if stdin is not None:
            in_fd = os.memfd_create("stdin", 0)
            os.write(in_fd, stdin)
            os.lseek(in_fd, 0, os.SEEK_SET)
        t0 = time.monotonic()
        try:
            pid = os.fork()
        except OSError as e:
            pid, error = None, f"fork: {e}"
        if pid == 0:  # pragma: no cover - runs in the job process
            child(self, msg["code"], files, lim, job_dir, token, in_fd, out_w, err_w, res_w)
        for fd in (out_w, err_w, res_w) + ((in_fd,) if in_fd is not None else ()):
            os.close(fd)
        if pid is None:
            for fd in (out_r, err_r, res_r):
                os.close(fd)
            self.remove_job_dir(job_dir)
            return {"setup_error": error}
        try:
            facts = self.watch(pid, lim, out_r, err_r, res_r, t0)
        finally:
            for fd in (out_r, err_r, res_r):
                os.close(fd)
            self.remove_job_dir(job_dir)
        facts["record"] = parse_record(facts.pop("record_bytes"), token, pid)
        facts["oom_killed"] = oom_kills() > ooms
        return facts

    def watch(self, pid, lim, out_r, err_r, res_r, t0):
        """Read the job's output while it runs; stop it at the wall-time or output limit; then kill whatever it
        left behind and collect its exit status."""
        cap = int(lim["output_kb"]) * 1024
        deadline = t0 + float(lim["wall_s"])
        bufs = {out_r: bytearray(), err_r: bytearray(), res_r: bytearray()}
        counts = {out_r: 0, err_r: 0, res_r: 0}
        open_fds = {out_r, err_r, res_r}
        pidfd = os.pidfd_open(pid)
        poller = select.poll()
        for fd in (out_r, err_r, res_r, pidfd):
            os.set_blocking(fd, False)
            poller.register(fd, select.POLLIN)
        reason = None
        status = rusage = None

        def take(fd):
            """Read once from fd: True when data came (more may follow), False when empty or closed."""
            nonlocal reason
            if fd not in open_fds:
                return False
            try:
                data = os.read(fd, 65536)
            except BlockingIOError:
                return False
            if not data:
                open_fds.discard(fd)
                poller.unregister(fd)
                return False
            counts[fd] += len(data)
            buf = bufs[fd]
            buf += data
            if fd == res_r:
                if counts[fd] > RECORD_MAX:
                    reason = reason or "output_limit"
                del buf[RECORD_MAX:]
            else:
                if counts[out_r] + counts[err_r] > cap:
                    reason = reason or "output_limit"
                if len(buf) > cap:
                    del buf[: len(buf) - cap]
            return True

        try:
            while reason is None:
                timeout = deadline - time.monotonic()
                if timeout <= 0:
                    reason = "timeout"
                    break
                exited = False
                for fd, _ev in poller.poll(max(timeout * 1000, 1)):
                    if fd == pidfd:
                        exited = True
                    else:
                        take(fd)
                if exited:
                    _, status, rusage = os.wait4(pid, 0)
                    break
            t1 = time.monotonic()
            st, ru = self.kill_all(pid)
            if status is None:
                status, rusage = st, ru
            # What is still in the pipes was written before the kill, and counts against the limit too; every
            # writer is dead now, so each read returns data or end-of-file.
            for fd in (out_r, err_r, res_r):
                while take(fd):
                    pass
        finally:
            os.close(pidfd)
        code = sig = None
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
        else:
            code = os.WEXITSTATUS(status)
        return {
            "exit": code,
            "signal": sig,
            "reason": reason,
            "duration_s": t1 - t0,
            "cpu_s": rusage.ru_utime + rusage.ru_stime,
            "maxrss_kb": rusage.ru_maxrss,
            "stdout": b64encode(bytes(bufs[out_r])).decode(),
            "stderr": b64encode(bytes(bufs[err_r])).decode(),
            "output_bytes": counts[out_r] + counts[err_r],
            "record_bytes": bytes(bufs[res_r]),
        }

    def kill_all(self, pid):
        """Kill every process the job left, detached or not, and reap them; returns the job's (status, rusage)
        when it was reaped here.

        Isolated: the server is pid 1 of a pid namespace that holds nothing but itself and the job's processes,
        so kill(-1) reaches all of them (setsid orphans included) and they all end up as its children; a fork
        racing with the kill fails, because the forking process already has SIGKILL pending. Unsafe: only the
        job and its process group."""
        status = rusage = None
        if not self.isolated:
            for kill in (os.kill, os.killpg):
                try:
                    kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            try:
                _, status, rusage = os.wait4(pid, 0)
            except ChildProcessError:
                pass
            while True:  # orphans re-parented to this subreaper
                try:
                    if os.waitpid(-1, os.WNOHANG)[0] == 0:
                        break
                except ChildProcessError:
                    break
            return status, rusage
        while True:
            try:
                os.kill(-1, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                reaped, st, ru = os.wait4(-1, 0)
            except ChildProcessError:
                return status, rusage
            if reaped == pid:
                status, rusage = st, ru


def parse_record(data, token, pid):
    """The completion record of the job's main process: a line ``<token> <json>`` with ``pid`` equal to the job's
    pid. Lines without the token, or from another process of the job, are ignored."""
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


# ---------------------------------------------------------------------------------------------- the job


def child(server, code, files, lim, job_dir, token, in_fd, out_w, err_w, res_w):
    """The forked job process: confine itself, then run the program as __main__. Never returns."""
    channel = res_w
    try:
        try:
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD, signal.SIGHUP, signal.SIGQUIT):
                signal.signal(sig, signal.default_int_handler if sig == signal.SIGINT else signal.SIG_DFL)
            if in_fd is None:
                in_fd = os.open("/dev/null", os.O_RDONLY)
            else:  # a read-only descriptor on the memfd, so the job cannot rewrite its stdin
                ro = os.open(f"/proc/self/fd/{in_fd}", os.O_RDONLY)
                os.close(in_fd)
                in_fd = ro
            # Lift the sources above the targets first so no dup2 overwrites a source still to be copied.
            high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 64) for fd in (res_w, in_fd, out_w, err_w)]
            for src, dst in zip(high, (RESULT_FD, 0, 1, 2), strict=True):
                os.dup2(src, dst)
            channel = RESULT_FD
            os.closerange(RESULT_FD + 1, 1 << 20)  # the host channel, the other pipes' ends, the memfd
            os.chdir(job_dir)
            os.umask(0o022)
            os.setsid()  # its own session and process group: killpg(0) reaches only the job
            if CGROUP:  # the cgroup's OOM killer takes the job's processes before the server
                with open("/proc/self/oom_score_adj", "w") as f:
                    f.write("1000")
            if server.isolated:
                os.setgroups([])
                os.setresgid(server.uid, server.uid, server.uid)
                os.setresuid(server.uid, server.uid, server.uid)
                prctl(PR_SET_DUMPABLE, 0)  # no core dump, even where core_pattern pipes to a host helper
            prctl(PR_SET_NO_NEW_PRIVS, 1)
            install_seccomp()
            set_limits(lim, nproc=server.isolated)
            os.environ.clear()
            os.environ.update({"PATH": CHILD_PATH, "HOME": job_dir, "TMPDIR": job_dir, "LANG": "C.UTF-8",
                               "PWD": job_dir})  # fmt: skip
            write_files(files)
        except BaseException as e:  # noqa: B036
            os.write(channel, record(token, "setup_error", type(e).__name__, str(e)))
            os._exit(3)
        run_program(code, token, job_dir)
    finally:
        os._exit(4)


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


def run_program(code, token, job_dir):
    """Run `code` as the __main__ module. The completion record goes out only after the program returned (and
    its non-daemon threads ended), on a channel stdout/stderr cannot reach; an exception, SystemExit included,
    is recorded as one."""
    import builtins
    import io
    import linecache
    import threading
    import traceback
    import types

    sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False), encoding="utf-8", errors="surrogateescape")
    sys.stdout = io.TextIOWrapper(
        io.FileIO(1, "w", closefd=False), encoding="utf-8", errors="backslashreplace"
    )
    sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), encoding="utf-8", errors="backslashreplace",
                                  line_buffering=True)  # fmt: skip
    sys.__stdin__, sys.__stdout__, sys.__stderr__ = sys.stdin, sys.stdout, sys.stderr
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
        shutdown = getattr(threading, "_shutdown", None)
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
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            stream.flush()
        except BaseException:  # noqa: B036 - a job that broke its streams still gets its verdict
            pass
    try:
        os.write(RESULT_FD, record(token, status, etype, message, **extra))
    except BaseException:  # noqa: B036
        os._exit(5)
    os._exit(0 if status == "ok" else 1)


# ---------------------------------------------------------------------------------------------- entry point


def main():
    cfg = json.loads(sys.argv[1])
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

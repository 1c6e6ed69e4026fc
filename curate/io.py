"""Reading and writing datasets: JSONL (plain, .gz, .zst), Parquet, and `-` for stdin/stdout.

Every write goes to a temporary name beside the target and is renamed into place at the end, so a
crashed run leaves either the old file or the new one, never half of one. Every input is read once, in
one pass that also fingerprints it (so pipes and FIFOs work); a file that cannot be read or decompressed
to its end is an error naming the file, never a bad line.

>>> from curate.io import iter_lines, write_jsonl
>>> write_jsonl("/tmp/x.jsonl", [{"a": 1}])
1
>>> [rec.data for rec in iter_lines(["/tmp/x.jsonl"])]
[b'{"a":1}']
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import glob
import gzip
import io
import os
import re
import shutil
import sys
import tempfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import xxhash

# Files a run directory may hold as its main output, in the order a reader looks for them.
MAIN_OUTPUTS = (
    "kept.jsonl",
    "sft.jsonl",
    "preference.jsonl",
    "tagged.jsonl",
    "selected.jsonl",
    "generated.jsonl",
    "evolved.jsonl",
    "candidates.jsonl",
    "verified.jsonl",
    "output.jsonl",
)
_UMASK = os.umask(0)
os.umask(_UMASK)


class InputError(Exception):
    """A problem with the user's input: shown as one line, never as a traceback."""


@dataclass(frozen=True, slots=True)
class RawLine:
    """One input line (or Parquet row, already decoded) and where it came from."""

    source: str
    line: int
    data: bytes | dict


def is_stdio(path: str | os.PathLike) -> bool:
    return str(path) == "-"


def is_rereadable(path: str | os.PathLike) -> bool:
    """Whether an input can be read twice: regular files, not stdin, a FIFO or a process substitution."""
    return not is_stdio(path) and all(Path(p).is_file() for p in resolve_input(path))


def resolve_input(path: str | os.PathLike) -> list[Path | str]:
    """A file, `-`, or a run directory (its main output files)."""
    if is_stdio(path):
        return ["-"]
    p = Path(path)
    if p.is_dir():
        found = [p / name for name in MAIN_OUTPUTS if (p / name).is_file()]
        if not found:
            raise InputError(
                f"{p}: a directory, but no run output in it (looked for {', '.join(MAIN_OUTPUTS)})"
            )
        return found
    if not p.exists():
        raise InputError(f"{p}: no such file")
    return [p]


def is_parquet(path: Path | str) -> bool:
    return str(path).endswith(".parquet")


def display_name(path: Path | str) -> str:
    return "stdin" if is_stdio(path) else str(path)


class _Hashing(io.RawIOBase):
    """Reads through to `raw`, hashing and counting the bytes: an input is fingerprinted in the same pass that
    reads it, so a pipe or a FIFO (`<(zcat x.gz)`) is read once, as a file is."""

    def __init__(self, raw):
        self.raw = raw
        # A buffered stream (stdin) would wait to fill the whole buffer; one read gives what has arrived.
        self._read = getattr(raw, "readinto1", raw.readinto)
        self.hash = xxhash.xxh3_128()
        self.bytes = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:
        n = self._read(buf)
        if n:
            self.hash.update(memoryview(buf)[:n])
            self.bytes += n
        return n

    def fingerprint(self, path: Path | str) -> dict:
        return {"path": str(path), "bytes": self.bytes, "xxh3_128": self.hash.hexdigest()}


class _ZstdStream(io.RawIOBase):
    """Decompresses concatenated zstd frames; a stream that ends inside a frame is an error, not an early end
    (zstandard's own reader returns what it has and stops, which would lose the rest of the file silently)."""

    CHUNK = 1 << 16

    def __init__(self, source):
        import zstandard

        self.source = source
        self.dctx = zstandard.ZstdDecompressor()
        self.frame = None
        self.out = b""
        self.pos = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:
        while self.pos >= len(self.out):
            data = self.source.read(self.CHUNK)
            if not data:
                if self.frame is not None and not self.frame.eof:
                    raise EOFError("compressed data ends inside a zstd frame: the file is truncated")
                return 0
            parts = []
            while data:
                if self.frame is None or self.frame.eof:
                    self.frame = self.dctx.decompressobj()
                parts.append(self.frame.decompress(data))
                data = self.frame.unused_data if self.frame.eof else b""
            self.out, self.pos = b"".join(parts), 0
        n = min(len(buf), len(self.out) - self.pos)
        buf[:n] = self.out[self.pos : self.pos + n]
        self.pos += n
        return n


def _decompression_errors() -> tuple[type[BaseException], ...]:
    errors: tuple = (OSError, EOFError, zlib.error)
    with contextlib.suppress(ImportError):
        import zstandard

        errors += (zstandard.ZstdError,)
    return errors


def read_error(path: Path | str, e: BaseException) -> InputError:
    """A file that cannot be read, or whose compression is broken: one line naming the file."""
    reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e) or type(e).__name__
    return InputError(f"{display_name(path)}: cannot read ({reason})")


def iter_lines(paths: Iterable[str | os.PathLike], *, fingerprints: list | None = None) -> Iterator[RawLine]:
    """Yield every non-blank line of every input, with its file and 1-based line number.

    Parquet rows come as dicts; everything else as raw bytes for the schema layer to parse, so that a
    bad line can be reported (and kept in `invalid.jsonl`) instead of stopping the reader. A file that cannot
    be read, or whose compression is corrupt or truncated, raises `InputError` naming it: it is never
    blamed on a line, and never skipped. Each input read to its end appends its size and xxh3_128 to
    `fingerprints`, computed in the same pass.
    """
    for given in paths:
        for path in resolve_input(given):
            if is_parquet(path):
                yield from _iter_parquet(path, fingerprints)
            else:
                yield from _iter_text(path, fingerprints)


def _iter_text(path: Path | str, fingerprints: list | None) -> Iterator[RawLine]:
    name = str(path)
    try:
        with contextlib.ExitStack() as stack:
            if is_stdio(path):
                raw = _Hashing(sys.stdin.buffer)
            else:
                raw = _Hashing(stack.enter_context(open(name, "rb", buffering=0)))
            if name.endswith(".gz"):
                fh = gzip.GzipFile(fileobj=io.BufferedReader(raw, 1 << 20), mode="rb")
            elif name.endswith(".zst"):
                fh = io.BufferedReader(_ZstdStream(io.BufferedReader(raw, 1 << 20)), 1 << 20)
            else:
                fh = io.BufferedReader(raw, 1 << 20)
            for n, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                yield RawLine(name, n, line.rstrip(b"\r\n"))
    except _decompression_errors() as e:
        raise read_error(path, e) from None
    if fingerprints is not None:
        fingerprints.append(raw.fingerprint(path))


def _iter_parquet(path: Path | str, fingerprints: list | None) -> Iterator[RawLine]:
    import polars as pl

    if is_stdio(path) or not Path(path).is_file():
        raise InputError(f"{path}: Parquet needs a regular file (it is read by random access), not a pipe")
    try:
        lf = pl.scan_parquet(path)
        n = 0
        for batch in lf.collect_batches():
            for row in batch.iter_rows(named=True):
                n += 1
                yield RawLine(str(path), n, row)
    except pl.exceptions.PolarsError as e:
        raise InputError(f"{path}: cannot read Parquet ({e})") from None
    except OSError as e:
        raise read_error(path, e) from None
    if fingerprints is not None:
        fingerprints.append(file_fingerprint(path))


def file_fingerprint(path: Path | str) -> dict:
    """Size and xxh3_128 of a regular file (Parquet, which is read by random access, is hashed apart)."""
    try:
        with open(path, "rb", buffering=0) as fh:
            raw = _Hashing(fh)
            while raw.read(1 << 22):
                pass
    except OSError as e:
        raise read_error(path, e) from None
    return raw.fingerprint(path)


def dumps(row: dict) -> bytes:
    return orjson.dumps(row, option=orjson.OPT_SERIALIZE_NUMPY)


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """Load a whole (small) JSONL file, e.g. a ledger file. Not for user input: use `iter_lines`."""
    out = []
    for rec in iter_lines([path]):
        try:
            out.append(orjson.loads(rec.data) if isinstance(rec.data, bytes) else rec.data)
        except orjson.JSONDecodeError as e:
            raise InputError(f"{rec.source}:{rec.line}: not valid JSON ({e})") from None
    return out


_PARTIAL = re.compile(r"(?<![^/])\.([^/]+)\.\d+\.[^/.]+\.partial(?=/|$)")


def named(e: OSError, target: str | os.PathLike) -> OSError:
    """`e` about the file the user named, not the hidden temporary file (or the bare descriptor) it hit."""
    return type(e)(e.errno, e.strerror or str(e), "stdout" if is_stdio(target) else str(target))


def os_error_message(e: OSError) -> str:
    """One line for a failed file operation: the file(s), then what went wrong. A file of a run directory
    is named where it was going, not in the hidden directory that was being built.

    >>> os_error_message(OSError(28, "No space left on device", "/data/.run.4242.x7_k2m9q.partial/kept.jsonl"))
    '/data/run/kept.jsonl: No space left on device'
    """
    names = [_PARTIAL.sub(r"\1", os.fsdecode(n)) for n in (e.filename, e.filename2) if n is not None]
    what = e.strerror or str(e)
    return f"{' -> '.join(names)}: {what}" if names else what


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike):
    """Yield a temporary path beside `target`; rename it over `target` only if the block succeeds.

    A failed file operation (a full disk, a directory in the way) is raised about `target`."""
    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; outputs get the user's usual permissions
        os.close(fd)
    except OSError as e:
        raise named(e, target) from None
    try:
        yield Path(tmp)
        os.replace(tmp, target)
    except BaseException as e:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(e, OSError) and e.filename in (None, tmp):
            raise named(e, target) from None
        raise


class JsonlWriter:
    """Streams rows to a JSONL file (compressed by suffix) under a temporary name; `close()` renames it."""

    def __init__(self, target: str | os.PathLike):
        self.target = str(target)
        self.count = 0
        if is_stdio(self.target):
            self._tmp = None
            self._fh = sys.stdout.buffer
            return
        self._ctx = atomic_path(self.target)
        self._tmp = self._ctx.__enter__()
        try:
            if self.target.endswith(".gz"):
                self._fh = gzip.open(self._tmp, "wb")
            elif self.target.endswith(".zst"):
                import zstandard

                self._fh = zstandard.open(self._tmp, "wb")
            else:
                self._fh = open(self._tmp, "wb", buffering=1 << 20)
        except OSError as e:
            with contextlib.suppress(OSError):
                self._ctx.__exit__(type(e), e, None)
            raise named(e, self.target) from None

    def write(self, row: dict) -> None:
        self._put(dumps(row) + b"\n", 1)

    def write_many(self, rows: Iterable[dict]) -> None:
        buf = io.BytesIO()
        n = 0
        for row in rows:
            buf.write(dumps(row))
            buf.write(b"\n")
            n += 1
        self._put(buf.getvalue(), n)

    def _put(self, data: bytes, n: int) -> None:
        try:
            self._fh.write(data)
        except OSError as e:
            raise named(e, self.target) from None
        self.count += n

    def close(self) -> None:
        try:
            if self._tmp is None:
                self._fh.flush()
                return
            self._fh.close()
        except OSError as e:
            raise named(e, self.target) from None
        self._ctx.__exit__(None, None, None)

    def abort(self) -> None:
        if self._tmp is None:
            return
        with contextlib.suppress(OSError):  # the error that brought us here may strike again on flush
            self._fh.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._tmp)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_jsonl(target: str | os.PathLike, rows: Iterable[dict]) -> int:
    with JsonlWriter(target) as w:
        w.write_many(rows)
    return w.count


def write_json(target: str | os.PathLike, obj) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(orjson.dumps(obj, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n")


def write_parquet(target: str | os.PathLike, rows: list[dict]) -> None:
    import polars as pl

    with atomic_path(target) as tmp:
        pl.DataFrame(rows).write_parquet(tmp)


def _remove_orphans(target: Path) -> None:
    """Remove what a killed run left beside `target` (its pid is gone): the hidden `.NAME.PID.*.partial`
    directory it was building, or the `.NAME.old-PID` directory it was replacing."""
    for p in target.parent.glob(f".{glob.escape(target.name)}.*"):
        rest = p.name[len(target.name) + 2 :]
        if rest.endswith(".partial"):
            pid = rest.split(".", 1)[0]
        elif rest.startswith("old-"):
            pid = rest[4:]
        else:
            continue
        if not pid.isdigit() or int(pid) == os.getpid() or not p.is_dir():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(p, ignore_errors=True)
        except PermissionError:  # alive, someone else's
            pass


def output_path(target: str | os.PathLike) -> Path:
    """Where `target` really is: its parent resolved (symlinks, `..`), its last component kept as given, since
    that is what a run replaces."""
    p = Path(target)
    if p.name in ("", ".", ".."):
        return p.resolve()
    return p.absolute().parent.resolve() / p.name


class OutputClaim:
    """An exclusive claim on an output path for the life of a run: `.NAME.lock` beside it, held with `flock`.

    A second run to the same path fails at once. The kernel drops the lock when its process dies, however it
    dies, so a killed run never blocks the next one (which takes over its lock file).
    """

    def __init__(self, target: Path):
        self.target = target
        self.path = target.with_name(f".{target.name}.lock")
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
                os.close(fd)
                raise InputError(
                    f"{target}: another run{f' (pid {holder})' if holder.isdigit() else ''} is writing it; "
                    "wait for it to finish, or choose another -o"
                ) from None
            # A run that finished between our open and flock unlinked this file: lock the new one instead.
            try:
                current = os.stat(self.path)
            except FileNotFoundError:
                current = None
            mine = os.fstat(fd)
            if current is not None and (current.st_dev, current.st_ino) == (mine.st_dev, mine.st_ino):
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)  # while still held, so that nobody locks a file that is going away
        os.close(self._fd)
        self._fd = None


class RunDir:
    """A command's output directory, built in a hidden sibling and moved into place when complete.

    An existing directory is replaced only with `overwrite=True`; inputs inside the target are refused,
    because replacing the directory would delete them (paths are compared resolved: symlinks, `..`). The
    target is claimed (`OutputClaim`) from start to commit, so two runs never write one directory.
    """

    def __init__(self, target: str | os.PathLike, *, overwrite: bool = False, inputs: Iterable = ()):
        self.given = target
        self.target = output_path(target)
        self.overwrite = overwrite
        guarded = {self.target, self.target.resolve()}
        for given in inputs:
            if is_stdio(given):
                continue
            src = Path(given).resolve()
            if any(src == t or t in src.parents for t in guarded):
                raise InputError(f"{given}: is inside the output directory {target}; choose another -o")
        self.target.parent.mkdir(parents=True, exist_ok=True)
        self.claim = OutputClaim(self.target)
        try:
            self._check_target()
            _remove_orphans(self.target)
            try:
                self.path = Path(
                    tempfile.mkdtemp(
                        prefix=f".{self.target.name}.{os.getpid()}.",
                        suffix=".partial",
                        dir=self.target.parent,
                    )
                )
            except OSError as e:
                raise named(e, target) from None
            self.path.chmod(0o777 & ~_UMASK)
        except BaseException:
            self.claim.release()
            raise
        self._pid = os.getpid()
        _UNFINISHED[id(self)] = self

    def _check_target(self) -> None:
        if self.target.exists():
            if not self.target.is_dir():
                raise InputError(f"{self.given}: exists and is not a directory")
            if any(self.target.iterdir()) and not self.overwrite:
                raise InputError(f"{self.given}: exists and is not empty; pass --force to replace it")

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    def commit(self) -> Path:
        try:
            self._check_target()  # something else may have put a directory there meanwhile
            old = None
            if self.target.exists():
                old = self.target.with_name(f".{self.target.name}.old-{os.getpid()}")
                os.replace(self.target, old)
            os.replace(self.path, self.target)
        except BaseException:
            self.abort()
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        self.release()
        return self.target

    def release(self) -> None:
        """Give up the claim and leave the hidden directory as it is (a failed training run's checkpoints)."""
        _UNFINISHED.pop(id(self), None)
        self.claim.release()

    def abort(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
        self.release()


# Runs neither committed nor aborted when the interpreter exits (an error on a path that does not abort, a
# SIGTERM turned into SystemExit): their hidden directories go, and their claims with them.
_UNFINISHED: dict[int, RunDir] = {}


@atexit.register
def _abort_unfinished() -> None:
    for run in list(_UNFINISHED.values()):
        if run._pid == os.getpid():  # not in a forked child, whose parent's run it is
            run.abort()

"""Reading and writing datasets: JSONL (plain, .gz, .zst), Parquet, and `-` for stdin/stdout.

Every write goes to a temporary name beside the target and is renamed into place at the end, so a
crashed run leaves either the old file or the new one, never half of one.

>>> from curate.io import iter_lines, write_jsonl
>>> write_jsonl("/tmp/x.jsonl", [{"a": 1}])
1
>>> [rec.data for rec in iter_lines(["/tmp/x.jsonl"])]
[b'{"a":1}']
"""

from __future__ import annotations

import contextlib
import glob
import gzip
import io
import os
import shutil
import sys
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson

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


def _open_binary(path: Path | str):
    if is_stdio(path):
        return contextlib.nullcontext(sys.stdin.buffer)
    name = str(path)
    if name.endswith(".gz"):
        return gzip.open(name, "rb")
    if name.endswith(".zst"):
        import zstandard

        return io.BufferedReader(zstandard.open(name, "rb"))  # its reader cannot iterate lines itself
    return open(name, "rb")


def is_parquet(path: Path | str) -> bool:
    return str(path).endswith(".parquet")


def iter_lines(paths: Iterable[str | os.PathLike]) -> Iterator[RawLine]:
    """Yield every non-blank line of every input, with its file and 1-based line number.

    Parquet rows come as dicts; everything else as raw bytes for the schema layer to parse, so that a
    bad line can be reported (and kept in `invalid.jsonl`) instead of stopping the reader.
    """
    for given in paths:
        for path in resolve_input(given):
            if is_parquet(path):
                yield from _iter_parquet(path)
                continue
            try:
                with _open_binary(path) as fh:
                    for n, line in enumerate(fh, start=1):
                        if not line.strip():
                            continue
                        yield RawLine(str(path), n, line.rstrip(b"\r\n"))
            except (OSError, EOFError, gzip.BadGzipFile) as e:
                raise InputError(f"{path}: cannot read ({e})") from None
            except Exception as e:  # zstandard raises its own error type
                if type(e).__module__.startswith("zstandard"):
                    raise InputError(f"{path}: cannot read ({e})") from None
                raise


def _iter_parquet(path: Path | str) -> Iterator[RawLine]:
    import polars as pl

    try:
        lf = pl.scan_parquet(path)
        n = 0
        for batch in lf.collect_batches():
            for row in batch.iter_rows(named=True):
                n += 1
                yield RawLine(str(path), n, row)
    except pl.exceptions.PolarsError as e:
        raise InputError(f"{path}: cannot read Parquet ({e})") from None


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


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike):
    """Yield a temporary path beside `target`; rename it over `target` only if the block succeeds."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; outputs get the user's usual permissions
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
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
        if self.target.endswith(".gz"):
            self._fh = gzip.open(self._tmp, "wb")
        elif self.target.endswith(".zst"):
            import zstandard

            self._fh = zstandard.open(self._tmp, "wb")
        else:
            self._fh = open(self._tmp, "wb", buffering=1 << 20)

    def write(self, row: dict) -> None:
        self._fh.write(dumps(row) + b"\n")
        self.count += 1

    def write_many(self, rows: Iterable[dict]) -> None:
        buf = io.BytesIO()
        n = 0
        for row in rows:
            buf.write(dumps(row))
            buf.write(b"\n")
            n += 1
        self._fh.write(buf.getvalue())
        self.count += n

    def close(self) -> None:
        if self._tmp is None:
            self._fh.flush()
            return
        self._fh.close()
        self._ctx.__exit__(None, None, None)

    def abort(self) -> None:
        if self._tmp is None:
            return
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
    """Remove hidden `.NAME.PID.*.partial` directories a killed run left beside `target` (its pid is gone)."""
    for p in target.parent.glob(f".{glob.escape(target.name)}.*.partial"):
        pid = p.name[len(target.name) + 2 :].split(".", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(p, ignore_errors=True)
        except PermissionError:  # alive, someone else's
            pass


class RunDir:
    """A command's output directory, built in a hidden sibling and moved into place when complete.

    An existing directory is replaced only with `overwrite=True`; inputs inside the target are refused,
    because replacing the directory would delete them.
    """

    def __init__(self, target: str | os.PathLike, *, overwrite: bool = False, inputs: Iterable = ()):
        self.target = Path(target).absolute()
        for given in inputs:
            if is_stdio(given):
                continue
            src = Path(given).absolute()
            if src == self.target or self.target in src.parents:
                raise InputError(f"{given}: is inside the output directory {target}; choose another -o")
        if self.target.exists():
            if not self.target.is_dir():
                raise InputError(f"{target}: exists and is not a directory")
            if any(self.target.iterdir()) and not overwrite:
                raise InputError(f"{target}: exists and is not empty; pass --force to replace it")
        self.target.parent.mkdir(parents=True, exist_ok=True)
        _remove_orphans(self.target)
        self.path = Path(
            tempfile.mkdtemp(
                prefix=f".{self.target.name}.{os.getpid()}.", suffix=".partial", dir=self.target.parent
            )
        )
        self.path.chmod(0o777 & ~_UMASK)

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    def commit(self) -> Path:
        old = None
        if self.target.exists():
            old = self.target.with_name(f".{self.target.name}.old-{os.getpid()}")
            os.replace(self.target, old)
        os.replace(self.path, self.target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return self.target

    def abort(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)

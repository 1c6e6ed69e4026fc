"""The SQLite response cache: an interrupted run resumes where it stopped, and a re-run costs nothing.

One row per sample, keyed by a hash of (backend, model, sampling settings, messages, sample index). Each
request's answers are committed as soon as the backend reports them (`CachedLLM`; SQLite in WAL mode), so
a process killed at any moment loses only the requests in flight, whatever the batch size. Failed requests
are never stored: they are retried next time.

>>> from synth.cache import ResponseCache, sample_key
>>> from synth.backends import ChatRequest, Completion
>>> cache = ResponseCache("/tmp/doc-cache.sqlite")
>>> req = ChatRequest(messages=[{"role": "user", "content": "Hi"}], temperature=0)
>>> key = sample_key("hf", "tiny", req, 0)
>>> cache.put_many([(key, Completion("Hello!", "stop", 5, 3))])
>>> cache.get_many([key])[key].text
'Hello!'
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path

import orjson
import xxhash

from synth.backends import ChatRequest, Completion

SCHEMA_VERSION = 1


def default_cache_path() -> Path:
    """`$POSTTRAIN_CACHE_DIR/synth.sqlite`, else `$XDG_CACHE_HOME/posttrain/`, else `~/.cache/posttrain/`."""
    base = os.environ.get("POSTTRAIN_CACHE_DIR")
    if not base:
        base = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "posttrain")
    return Path(base) / "synth.sqlite"


def sample_key(backend: str, model: str, request: ChatRequest, sample_index: int) -> str:
    """The cache key of one sample. `n` is not part of it: asking for more samples reuses the first ones."""
    payload = {
        "v": SCHEMA_VERSION,
        "backend": backend,
        "model": model,
        "sampling": request.sampling(),
        "messages": [{"role": m["role"], "content": m["content"]} for m in request.messages],
        "sample": sample_index,
    }
    return xxhash.xxh3_128_hexdigest(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS))


class ResponseCache:
    """A completion store on disk; safe to share between runs and processes (SQLite locking)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path).expanduser()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            # A backend may report answers from its own thread (an event loop run beside a notebook's); the
            # calls never overlap, so one connection serves them.
            self._db = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS completions (key TEXT PRIMARY KEY, text TEXT NOT NULL,"
                " finish_reason TEXT NOT NULL, prompt_tokens INTEGER, completion_tokens INTEGER,"
                " backend TEXT, model TEXT, created REAL NOT NULL)"
            )
        except sqlite3.DatabaseError as e:
            raise OSError(f"{self.path}: cannot open the response cache ({e})") from None
        self.hits = 0
        self.misses = 0

    def get_many(self, keys: Iterable[str]) -> dict[str, Completion]:
        keys = list(keys)
        found: dict[str, Completion] = {}
        for start in range(0, len(keys), 500):  # stay under SQLite's limit on bound parameters
            part = keys[start : start + 500]
            marks = ",".join("?" * len(part))
            for key, text, finish, pt, ct in self._db.execute(
                f"SELECT key, text, finish_reason, prompt_tokens, completion_tokens FROM completions WHERE key IN ({marks})",
                part,
            ):
                found[key] = Completion(text, finish, pt, ct)
        self.hits += len(found)
        self.misses += len(keys) - len(found)
        return found

    def put_many(
        self, items: Iterable[tuple[str, Completion]], *, backend: str = "", model: str = ""
    ) -> None:
        now = time.time()
        rows = [
            (k, c.text, c.finish_reason, c.prompt_tokens, c.completion_tokens, backend, model, now)
            for k, c in items
        ]
        if not rows:
            return
        # One transaction per call: all of it is on disk, or none of it.
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(
                    "INSERT OR REPLACE INTO completions VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows
                )
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        except sqlite3.Error as e:  # a full disk, a read-only file: one line naming the cache
            raise OSError(f"{self.path}: cannot write the response cache ({e})") from None

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM completions").fetchone()[0]

    def close(self) -> None:
        self._db.close()


class NullCache:
    """`--no-cache`: remembers nothing, so every sample is generated."""

    path = None

    def __init__(self):
        self.hits = 0
        self.misses = 0

    def get_many(self, keys: Iterable[str]) -> dict[str, Completion]:
        self.misses += len(list(keys))
        return {}

    def put_many(self, items, *, backend: str = "", model: str = "") -> None:
        pass

    def close(self) -> None:
        pass

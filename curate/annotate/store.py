"""The annotation database, `OUT/annotations.sqlite`: the candidates, and every annotator's work on them.

Every action is one committed transaction (WAL journal, `synchronous=FULL`), so closing the browser or killing
the server loses nothing; opening the same OUT again continues. A judgement is `open` while its annotator
works on it; `ranked` (submitted) and `skipped` are finished, and only finished work is exported. Changing a
finished judgement reopens it until it is submitted again. Every action is also appended to `events`.

>>> import tempfile
>>> rows = [{"id": "p1", "prompt": [{"role": "user", "content": "Hi?"}],
...          "responses": [{"id": "a", "text": "Hello."}, {"id": "b", "text": "Hi!"}]}]
>>> store = Store.open(tempfile.mkdtemp() + "/out", rows, source="demo.jsonl")
>>> store.add_annotator("alice")
'alice'
>>> _ = store.set_ranking("alice", 0, [1])
>>> store.submit("alice", 0)["state"]["ranking"]  # the one response left unranked goes last
[1, 0]
>>> store.next_open("alice") is None
True
"""

from __future__ import annotations

import sqlite3
from datetime import datetime, timezone
from pathlib import Path

import orjson
import xxhash

from curate.annotate.rank import FLAG_REASONS, Judgement, decide
from curate.io import InputError

DB_NAME = "annotations.sqlite"
MAX_NAME = 64
MAX_REASON = 500

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS prompts (pos INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, row BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS annotators (name TEXT PRIMARY KEY, seq INTEGER NOT NULL UNIQUE, created TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS judgements (
  annotator TEXT NOT NULL REFERENCES annotators(name),
  pos INTEGER NOT NULL REFERENCES prompts(pos),
  status TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'ranked', 'skipped')),
  ranking BLOB NOT NULL DEFAULT '[]',
  flags BLOB NOT NULL DEFAULT '{}',
  edit_base INTEGER,
  edit_text TEXT,
  skip_reason TEXT,
  updated TEXT NOT NULL,
  PRIMARY KEY (annotator, pos)
);
CREATE TABLE IF NOT EXISTS events (
  seq INTEGER PRIMARY KEY, at TEXT NOT NULL, annotator TEXT NOT NULL, pos INTEGER, action TEXT NOT NULL,
  detail BLOB
);
"""


class AnnotationError(ValueError):
    """An action the page may not take (a response out of range, an incomplete ranking...): answered with 4xx."""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def candidates_hash(rows: list[dict]) -> str:
    return xxhash.xxh3_128_hexdigest(b"\n".join(orjson.dumps(r, option=orjson.OPT_SORT_KEYS) for r in rows))


def connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


class Store:
    """The database of one annotation directory; the methods the page's API calls, one action each."""

    def __init__(self, conn: sqlite3.Connection, path: Path):
        self.conn, self.path = conn, path
        self.rows = [orjson.loads(r) for (r,) in conn.execute("SELECT row FROM prompts ORDER BY pos")]

    @classmethod
    def open(cls, out: str | Path, rows: list[dict], *, source: str) -> Store:
        """Create OUT with `rows`, or reopen it: then `rows` must be the candidates it was started from."""
        out = Path(out)
        if out.exists() and not out.is_dir():
            raise InputError(f"{out}: exists and is not a directory")
        path = out / DB_NAME
        if out.is_dir() and any(out.iterdir()) and not path.is_file():
            raise InputError(f"{out}: exists, is not empty and holds no {DB_NAME}; choose another -o")
        out.mkdir(parents=True, exist_ok=True)
        conn = connect(path)
        digest = candidates_hash(rows)
        with conn:
            conn.execute("BEGIN IMMEDIATE")
            for stmt in SCHEMA.split(";"):
                if stmt.strip():
                    conn.execute(stmt)
            meta = dict(conn.execute("SELECT key, value FROM meta"))
            if not meta:
                conn.executemany(
                    "INSERT INTO prompts (pos, id, row) VALUES (?, ?, ?)",
                    [(k, r["id"], orjson.dumps(r)) for k, r in enumerate(rows)],
                )
                conn.executemany(
                    "INSERT INTO meta VALUES (?, ?)",
                    [("candidates", source), ("candidates_hash", digest), ("created", _now())],
                )
        if meta and meta["candidates_hash"] != digest:
            conn.close()
            raise InputError(
                f"{out}: was started from other candidates ({meta['candidates']}, {meta['created']}); "
                f"give the same file to continue, or a new -o for {source}"
            )
        return cls(conn, path)

    @classmethod
    def read(cls, out: str | Path) -> Store:
        """An existing annotation directory (for export)."""
        path = Path(out) / DB_NAME
        if not path.is_file():
            raise InputError(
                f"{out}: not an annotation directory (no {DB_NAME}; start one with curate annotate)"
            )
        return cls(connect(path), path)

    def close(self) -> None:
        self.conn.close()

    # -- annotators -------------------------------------------------------------------------------------------

    def add_annotator(self, name: str) -> str:
        """Register a name (idempotent); the order of first registration breaks Borda ties."""
        name = (name or "").strip()
        if not name or len(name) > MAX_NAME or any(not c.isprintable() for c in name):
            raise AnnotationError(f"an annotator name is 1 to {MAX_NAME} printable characters")
        with self.conn:
            self.conn.execute("BEGIN IMMEDIATE")
            self.conn.execute(
                "INSERT OR IGNORE INTO annotators (name, seq, created) "
                "VALUES (?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM annotators), ?)",
                (name, _now()),
            )
        return name

    def annotators(self) -> list[str]:
        return [n for (n,) in self.conn.execute("SELECT name FROM annotators ORDER BY seq")]

    def check_annotator(self, name: str) -> str:
        if self.conn.execute("SELECT 1 FROM annotators WHERE name = ?", (name,)).fetchone() is None:
            raise AnnotationError(f"unknown annotator {name!r}: give your name first")
        return name

    # -- reading ----------------------------------------------------------------------------------------------

    def _pos(self, pos: int) -> int:
        if not 0 <= pos < len(self.rows):
            raise AnnotationError(f"no prompt {pos + 1} (there are {len(self.rows)})")
        return pos

    def judgement(self, annotator: str, pos: int) -> Judgement:
        r = self.conn.execute(
            "SELECT status, ranking, flags, edit_base, edit_text, skip_reason FROM judgements "
            "WHERE annotator = ? AND pos = ?",
            (annotator, pos),
        ).fetchone()
        if r is None:
            return Judgement(annotator, "open")
        return _judgement(annotator, *r)

    def judgements(self, pos: int) -> list[Judgement]:
        """Every annotator's judgement of a prompt, in annotator order."""
        rows = self.conn.execute(
            "SELECT j.annotator, status, ranking, flags, edit_base, edit_text, skip_reason FROM judgements j "
            "JOIN annotators a ON a.name = j.annotator WHERE pos = ? ORDER BY a.seq",
            (pos,),
        )
        return [_judgement(*r) for r in rows]

    def next_open(self, annotator: str, *, after: int = -1) -> int | None:
        """The first prompt after `after` this annotator has not finished, wrapping round; None when all are."""
        done = {
            p
            for (p,) in self.conn.execute(
                "SELECT pos FROM judgements WHERE annotator = ? AND status != 'open'", (annotator,)
            )
        }
        n = len(self.rows)
        return next((p % n for p in range(after + 1, after + 1 + n) if p % n not in done), None)

    def done_count(self, annotator: str) -> int:
        (n,) = self.conn.execute(
            "SELECT COUNT(*) FROM judgements WHERE annotator = ? AND status != 'open'", (annotator,)
        ).fetchone()
        return n

    def view(self, annotator: str, pos: int) -> dict:
        """What the page shows of a prompt: the prompt, the responses' texts (never their sources), this
        annotator's work, and, once they finished it, how the annotators agree."""
        row = self.rows[self._pos(pos)]
        j = self.judgement(annotator, pos)
        out = {
            "pos": pos,
            "total": len(self.rows),
            "done": self.done_count(annotator),
            "id": row["id"],
            "prompt": [{"role": m["role"], "content": m["content"]} for m in row["prompt"]],
            "responses": [{"text": r["text"]} for r in row["responses"]],
            "state": {
                "status": j.status,
                "ranking": j.ranking,
                "flags": {str(k): v for k, v in j.flags.items()},
                "edit": None if j.edit is None else {"base": j.edit[0], "text": j.edit[1]},
                "skip_reason": j.skip_reason,
            },
            "agreement": self.agreement(pos) if j.status != "open" else None,
        }
        return out

    def agreement(self, pos: int) -> dict:
        o = decide(self.judgements(pos), len(self.rows[pos]["responses"]))
        return {**o.agreement, "status": o.status, "ranking": o.ranking, "skipped_by": len(o.skips)}

    def overview(self, annotator: str) -> list[dict]:
        """Per prompt: this annotator's status and the annotators' agreement (for prompts they finished)."""
        mine = dict(self.conn.execute("SELECT pos, status FROM judgements WHERE annotator = ?", (annotator,)))
        out = []
        for pos, row in enumerate(self.rows):
            status = mine.get(pos, "open")
            out.append(
                {
                    "pos": pos,
                    "id": row["id"],
                    "status": status,
                    "agreement": self.agreement(pos) if status != "open" else None,
                }
            )
        return out

    # -- actions ----------------------------------------------------------------------------------------------

    def _save(self, annotator: str, pos: int, j: Judgement, action: str, detail) -> dict:
        with self.conn:
            self.conn.execute("BEGIN IMMEDIATE")
            self.conn.execute(
                "INSERT INTO judgements (annotator, pos, status, ranking, flags, edit_base, edit_text, "
                "skip_reason, updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (annotator, pos) DO UPDATE SET status = excluded.status, ranking = excluded.ranking, "
                "flags = excluded.flags, edit_base = excluded.edit_base, edit_text = excluded.edit_text, "
                "skip_reason = excluded.skip_reason, updated = excluded.updated",
                (
                    annotator,
                    pos,
                    j.status,
                    orjson.dumps(j.ranking),
                    orjson.dumps({str(k): v for k, v in j.flags.items()}),
                    None if j.edit is None else j.edit[0],
                    None if j.edit is None else j.edit[1],
                    j.skip_reason,
                    _now(),
                ),
            )
            self.conn.execute(
                "INSERT INTO events (at, annotator, pos, action, detail) VALUES (?, ?, ?, ?, ?)",
                (_now(), annotator, pos, action, orjson.dumps(detail)),
            )
        return self.view(annotator, pos)

    def _open(self, annotator: str, pos: int) -> Judgement:
        j = self.judgement(self.check_annotator(annotator), self._pos(pos))
        j.status = "open"  # any change reopens a finished prompt until it is submitted again
        j.skip_reason = None
        return j

    def set_ranking(self, annotator: str, pos: int, ranking: list[int]) -> dict:
        """Save a (partial) ranking: distinct response indices, best first, none of them flagged."""
        j = self._open(annotator, pos)
        n = len(self.rows[pos]["responses"])
        if not isinstance(ranking, list) or any(type(k) is not int or not 0 <= k < n for k in ranking):
            raise AnnotationError(f"a ranking is a list of response numbers 0 to {n - 1}")
        if len(set(ranking)) != len(ranking):
            raise AnnotationError("a response appears twice in the ranking")
        if flagged := [k for k in ranking if k in j.flags]:
            raise AnnotationError(f"response {flagged[0] + 1} is flagged: unflag it to rank it")
        j.ranking = ranking
        return self._save(annotator, pos, j, "rank", {"ranking": ranking})

    def set_flag(self, annotator: str, pos: int, response: int, reason: str | None) -> dict:
        """Flag a response (it leaves the ranking) or, with None, unflag it."""
        j = self._open(annotator, pos)
        if type(response) is not int or not 0 <= response < len(self.rows[pos]["responses"]):
            raise AnnotationError(f"no response {response}")
        if reason is None:
            j.flags.pop(response, None)
        elif reason not in FLAG_REASONS:
            raise AnnotationError(f"a flag is one of {', '.join(FLAG_REASONS)}, not {reason!r}")
        else:
            j.flags[response] = reason
            j.ranking = [k for k in j.ranking if k != response]
        return self._save(annotator, pos, j, "flag", {"response": response, "reason": reason})

    def set_edit(self, annotator: str, pos: int, text: str | None) -> dict:
        """Save an edited version of the best-ranked response, or with None (or the unchanged text) drop it."""
        j = self._open(annotator, pos)
        if text is not None and not isinstance(text, str):
            raise AnnotationError("an edit is a string")
        if text is None or not text.strip():
            j.edit = None
        else:
            if not j.ranking:
                raise AnnotationError("rank a response first: the edit is of the best one")
            base = j.ranking[0]
            j.edit = None if text == self.rows[pos]["responses"][base]["text"] else (base, text)
        return self._save(annotator, pos, j, "edit", {"base": j.edit and j.edit[0], "text": text})

    def submit(self, annotator: str, pos: int) -> dict:
        """Finish a prompt: every unflagged response must be ranked, except one that then goes last."""
        j = self._open(annotator, pos)
        rest = [k for k in range(len(self.rows[pos]["responses"])) if k not in j.flags and k not in j.ranking]
        if len(rest) > 1:
            labels = ", ".join(str(k + 1) for k in rest)
            raise AnnotationError(
                f"rank {len(rest) - 1} more of responses {labels} (the last goes last by itself), or flag them"
            )
        j.ranking = j.ranking + rest
        j.status = "ranked"
        return self._save(annotator, pos, j, "submit", {"ranking": j.ranking})

    def skip(self, annotator: str, pos: int, reason: str | None) -> dict:
        j = self._open(annotator, pos)
        reason = (reason or "").strip() or None
        if reason is not None and len(reason) > MAX_REASON:
            raise AnnotationError(f"a skip reason is at most {MAX_REASON} characters")
        j.status, j.skip_reason = "skipped", reason
        return self._save(annotator, pos, j, "skip", {"reason": reason})

    def meta(self) -> dict:
        return dict(self.conn.execute("SELECT key, value FROM meta"))

    def history(self) -> dict:
        """How many actions were saved, and when the last one was: pins the state an export read."""
        events, last = self.conn.execute("SELECT COUNT(*), MAX(at) FROM events").fetchone()
        return {"events": events, "last_event": last}

    def snapshot(self) -> tuple[list[dict], list[str], dict[int, list[Judgement]]]:
        """Rows, annotators and every judgement, read in one transaction (the server may be writing)."""
        with self.conn:
            self.conn.execute("BEGIN")
            names = self.annotators()
            by_pos = {pos: self.judgements(pos) for pos in range(len(self.rows))}
        return self.rows, names, by_pos


def _judgement(annotator, status, ranking, flags, edit_base, edit_text, skip_reason) -> Judgement:
    return Judgement(
        annotator,
        status,
        ranking=orjson.loads(ranking),
        flags={int(k): v for k, v in orjson.loads(flags).items()},
        edit=None if edit_base is None else (edit_base, edit_text),
        skip_reason=skip_reason,
    )

"""What a recipe run directory remembers: `DIR/recipe.json`, the record of every stage it ran.

For each stage (by its run directory, `sft` or `loop/round-2/dpo`): the command, the key it ran with and the
parts of that key, the inputs it took (earlier stages, or files), the argv, its status (`running`, `done`,
`failed`), times, the hash of its `manifest.json` and of each output file. A stage is up to date when its record
is `done` with the key the stage has now and its directory still holds that manifest. `curate report DIR` reads
this file (plain JSON, `curate.report_flow` documents the fields it uses) to draw the run as a flow.

The key of a stage is a hash of three parts: its options as written (`options`), the content of what it reads
(`inputs`: each input file's xxh3_128, an earlier stage's output file's hash, or an earlier stage's key for its
whole directory) and the code it runs (`code`: the source of the packages it imports, and the installed versions
of the libraries that matter).
"""

from __future__ import annotations

import importlib.util
from datetime import datetime, timezone
from functools import cache
from pathlib import Path

import orjson
import xxhash

from curate.io import file_fingerprint, write_json
from curate.report_flow import STATE_FILE

CODE_SUFFIXES = (".py", ".yaml", ".yml", ".json", ".txt", ".html", ".jinja")


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def digest(obj) -> str:
    return xxhash.xxh3_128_hexdigest(orjson.dumps(obj, option=orjson.OPT_SORT_KEYS, default=str))


@cache
def code_version(packages: tuple[str, ...]) -> str:
    """A hash of the source files of `packages` (modules or packages by import name) and of the installed
    versions of the libraries a manifest records."""
    from curate.provenance import versions

    h = xxhash.xxh3_128()
    for name in packages:
        spec = importlib.util.find_spec(name)
        if spec is None:
            continue
        if spec.submodule_search_locations:
            root = Path(next(iter(spec.submodule_search_locations)))
            files = sorted(p for p in root.rglob("*") if p.suffix in CODE_SUFFIXES and p.is_file())
        else:
            root, files = Path(spec.origin).parent, [Path(spec.origin)]
        for f in files:
            if "__pycache__" in f.parts:
                continue
            h.update(f"{name}/{f.relative_to(root)}\0".encode())
            h.update(f.read_bytes())
    h.update(orjson.dumps(versions(), option=orjson.OPT_SORT_KEYS))
    return h.hexdigest()


class RecipeState:
    """`DIR/recipe.json`, read at the start of a run and written (atomically) whenever a stage changes."""

    def __init__(self, out: Path):
        self.out = out
        self.path = out / STATE_FILE
        data = orjson.loads(self.path.read_bytes()) if self.path.is_file() else {}
        self.data = {"format": 1, "stages": {}, "runs": [], "fingerprints": {}, **data}

    @property
    def stages(self) -> dict:
        return self.data["stages"]

    def record(self, stage_id: str) -> dict:
        return self.stages.get(stage_id, {})

    def save(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        write_json(self.path, self.data)

    def is_done(self, stage_id: str, key: str) -> bool:
        """Whether the stage ran to the end with this key, and its directory still holds what it wrote."""
        rec = self.record(stage_id)
        if rec.get("status") != "done" or rec.get("key") != key:
            return False
        return manifest_hash(self.out / stage_id) == rec.get("manifest_xxh3")

    def fingerprint(self, path: str) -> str:
        """The content hash of an input: a file's xxh3_128 (remembered while its size and time are the same), or
        for a directory (a model) the names, sizes and times of its files."""
        p = Path(path)
        st = p.stat()
        if p.is_dir():
            files = sorted(f for f in p.rglob("*") if f.is_file())
            return digest([(str(f.relative_to(p)), f.stat().st_size, f.stat().st_mtime_ns) for f in files])
        known = self.data["fingerprints"].get(str(p))
        stamp = [st.st_size, st.st_mtime_ns]
        if known and known["stamp"] == stamp:
            return known["xxh3_128"]
        value = file_fingerprint(p)["xxh3_128"]
        self.data["fingerprints"][str(p)] = {"stamp": stamp, "xxh3_128": value}
        return value


def manifest_hash(run_dir: Path) -> str | None:
    f = run_dir / "manifest.json"
    if f.is_file():
        return xxhash.xxh3_128_hexdigest(f.read_bytes())
    return "no manifest" if run_dir.is_dir() else None


def output_hashes(run_dir: Path, outputs: dict) -> dict:
    """The xxh3_128 of each output file a stage wrote."""
    return {
        name: file_fingerprint(run_dir / f)["xxh3_128"]
        for name, f in outputs.items()
        if (run_dir / f).is_file()
    }


def relative(path: Path, start: Path) -> str:
    """`path` relative to `start` when it is inside it, else as it is."""
    path = Path(path)
    try:
        return str(path.relative_to(start)) if path.is_absolute() else str(path)
    except ValueError:
        return str(path)

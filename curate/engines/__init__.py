"""Engines run a pipeline of steps; the steps do not change with the engine.

- ``local`` (default): Polars batches in this process and a pool of worker processes (`curate.pipeline`).
- ``ray``: Ray Data over a local Ray instance or an existing cluster (`curate.engines.ray_data`); an optional
  extra, ``pip install 'posttrain[ray]'``, imported only when chosen.

Both write the same run directory from the same input: the same kept, rejected, edited and invalid rows,
in the same order, byte for byte (`tests/test_ray_engine.py` holds them to it).
"""

from __future__ import annotations

ENGINES = ("local", "ray")


class EngineError(Exception):
    """An engine cannot run this pipeline (missing package, unreachable cluster, a step it cannot place)."""

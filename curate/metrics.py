"""Figures that several commands report.

>>> round(pass_at_k(4, 1, 2), 4)  # 1 - C(3,2)/C(4,2)
0.5
>>> round(mean_pass_at_k([(4, 1), (4, 4), (2, 0)], 2), 4)  # the prompt with 2 samples counts too
0.5
"""

from __future__ import annotations

import math
from collections import Counter


def pass_at_k(n: int, c: int, k: int) -> float:
    """The unbiased estimate of pass@k from n samples of which c are correct (Chen et al., 2021)."""
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def mean_pass_at_k(samples: list[tuple[int, int]], k: int) -> float:
    """Mean pass@k over prompts, given (n, c) per prompt; prompts with fewer than k samples are left out.
    Prompts share few distinct (n, c) pairs, so each pair is computed once."""
    pairs = Counter((n, c) for n, c in samples if n >= k)
    total = sum(pairs.values())
    if not total:
        return float("nan")
    return sum(pass_at_k(n, c, k) * w for (n, c), w in pairs.items()) / total

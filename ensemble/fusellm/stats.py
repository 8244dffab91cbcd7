"""Paired bootstrap of a difference in bits per byte (numpy only: the report generator imports it without torch).

Two models scored on the same blocks (per-block nats and the shared byte count) compare pairwise: blocks are
resampled with replacement, the same draw for both, and the percentile interval of the resampled difference
is reported (Efron & Tibshirani 1993, ch. 13). Paired, the block-to-block spread that both models share
(some text is simply harder) cancels; only how differently they fare on the same block counts.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import ConfigError


def paired_bootstrap(nats_a, nats_b, nbytes, resamples: int = 10_000, seed: int = 0,
                     level: float = 0.95) -> tuple[float, float, float]:
    """(Δ, low, high): Δ = bpb(a) − bpb(b) over blocks scored by both (per-block nats [N] each, bytes [N]
    shared), and its percentile interval from `resamples` draws of N blocks with replacement, the same
    draw for a and b (paired). Seeded: the same inputs give the same interval."""
    a, b, w = (np.asarray(x, dtype=np.float64) for x in (nats_a, nats_b, nbytes))
    if not (a.shape == b.shape == w.shape and a.ndim == 1 and len(a) > 0):
        raise ConfigError(f"paired bootstrap needs equal, non-empty per-block arrays: {a.shape} {b.shape} {w.shape}")
    diff = a - b
    delta = diff.sum() / w.sum() / math.log(2)
    idx = np.random.default_rng(seed).integers(0, len(a), size=(resamples, len(a)))
    draws = diff[idx].sum(1) / w[idx].sum(1) / math.log(2)
    low, high = np.quantile(draws, [(1 - level) / 2, (1 + level) / 2])
    return float(delta), float(low), float(high)

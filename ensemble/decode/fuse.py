"""Fusion: the weighted mixture of the members' aligned distributions."""

from __future__ import annotations

import torch


def fuse(probs: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """probs: [N, K] (rows sum to 1, or 0 for absent members); weights: [N], 0 for absent -> [K]."""
    w = weights / weights.sum().clamp_min(1e-30)
    return w @ probs

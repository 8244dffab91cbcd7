"""Token choice over the fused distribution: greedy, or temperature + top-p sampling with a seeded
generator (same seed, same answer)."""

from __future__ import annotations

import torch

from ..config import SamplingConfig


def choose(fused: torch.Tensor, sampling: SamplingConfig, generator: torch.Generator) -> int:
    """fused: [K] probabilities -> index into K."""
    if sampling.temperature == 0:
        return int(fused.argmax())
    logits = fused.clamp_min(1e-30).log() / sampling.temperature
    probs = torch.softmax(logits, -1)
    if sampling.top_p < 1:
        probs = top_p_filter(probs, sampling.top_p)
    return int(torch.multinomial(probs, 1, generator=generator))


def top_p_filter(probs: torch.Tensor, top_p: float) -> torch.Tensor:
    """Keep the smallest set of most likely tokens whose mass reaches top_p (always >= 1 token)."""
    sorted_p, order = probs.sort(descending=True)
    before = sorted_p.cumsum(-1) - sorted_p  # mass strictly above each token
    sorted_p[before >= top_p] = 0
    kept = torch.zeros_like(probs).scatter_(0, order, sorted_p)
    return kept / kept.sum()

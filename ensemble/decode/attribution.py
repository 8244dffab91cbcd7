"""Who drove each token: member i's share of the chosen token is w_i·p_i(t) / Σ_j w_j·p_j(t), in the
aligned space (anchors-methods.md §11). The driver is the largest share."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..align import Aligned


@dataclass(frozen=True)
class Attribution:
    shares: tuple[float, ...]
    agree: tuple[bool, ...]  # whether each member's own argmax was the chosen token

    @property
    def driver(self) -> int:
        return max(range(len(self.shares)), key=self.shares.__getitem__)


def attribute(aligned: Aligned, weights: torch.Tensor, k: int) -> Attribution:
    contrib = weights * aligned.probs[:, k]
    total = float(contrib.sum())
    shares = contrib / total if total > 0 else weights / weights.sum()
    chosen = int(aligned.support[k])
    return Attribution(tuple(round(float(s), 6) for s in shares), tuple(t == chosen for t in aligned.top))


def merge(parts: list[Attribution]) -> Attribution:
    """Several tokens that make one released piece of text (e.g. the bytes of one emoji)."""
    n = len(parts)
    shares = tuple(round(sum(p.shares[i] for p in parts) / n, 6) for i in range(len(parts[0].shares)))
    agree = tuple(all(p.agree[i] for p in parts) for i in range(len(parts[0].agree)))
    return Attribution(shares, agree)

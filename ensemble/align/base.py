"""The one protocol every alignment method implements, and its output."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import torch

from .shared import SharedSpace


@dataclass(frozen=True)
class Aligned:
    support: torch.Tensor  # [K] long: the shared ids the fused distribution is over
    probs: torch.Tensor  # [N, K]: each member's probability of each support token; 0 rows for absent members
    top: tuple[int, ...]  # each member's own argmax as a shared id; -1 when absent
    fused: torch.Tensor | None = None  # [K] the method's own fusion (DeePEn's inverse search); None = the
    # weighted mean of `probs`. `probs` still gives each member's share of the chosen token.


class Method(Protocol):
    space: SharedSpace
    gated: bool  # True: run the primary first, and the others only when consult_all() says so

    def align(self, probs: Sequence[torch.Tensor | None], weights: torch.Tensor, primary: int | None = None) -> Aligned:
        """probs[i]: member i's next-token distribution [V_i], or None when it is absent this step;
        weights: [N] the ensemble's member weights (0 for absent members), the same ones fusion and
        attribution use. Methods that fuse on their own (DeePEn) must use these, never their own copy."""
        ...

    def consult_all(self, primary: torch.Tensor) -> bool:
        """Given the primary member's distribution [V_p], whether the others must be run this step."""
        ...


def own_top(space: SharedSpace, probs: Sequence[torch.Tensor | None]) -> tuple[int, ...]:
    return tuple(-1 if p is None else int(space.to_shared[i][int(p.argmax())]) for i, p in enumerate(probs))


def normalize_rows(rows: torch.Tensor) -> torch.Tensor:
    """[N, K] -> rows summing to 1 (all-zero rows, from absent members, stay zero)."""
    return rows / rows.sum(-1, keepdim=True).clamp_min(1e-30)

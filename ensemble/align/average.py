"""Exact averaging of members that share one vocabulary (same byte string for every id).

Probabilities are averaged id for id in the members' own vocabulary: no union, no re-mapping.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ..errors import ConfigError
from .base import Aligned, normalize_rows, own_top
from .shared import identity_space


@dataclass(frozen=True)
class AverageOptions:
    pass


class Average:
    def __init__(self, members, options: AverageOptions, primary: int):
        self.gated = False
        vocabs = [m.vocab for m in members]
        space = identity_space(vocabs)
        if space is None:
            raise ConfigError("method 'average' needs members with identical vocabularies; "
                              "these tokenizers differ, so use 'gac' or 'unite'")
        self.space = space
        self.support = torch.arange(len(space))
        self.special = space.to_shared[0][: len(space)] < 0  # [V] ids that never appear in an answer

    def align(self, probs: Sequence[torch.Tensor | None], weights: torch.Tensor, primary: int | None = None) -> Aligned:
        width = len(self.space)
        rows = torch.stack([p[:width] if p is not None else torch.zeros(width) for p in probs])
        rows[:, self.special] = 0
        return Aligned(self.support, normalize_rows(rows), own_top(self.space, probs))

    def consult_all(self, primary: torch.Tensor) -> bool:
        return True

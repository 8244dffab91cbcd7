"""GaC, "Breaking the Ceiling of the LLM Community by Treating Token Generation as a Classification for
Ensembling" (Yu et al., EMNLP 2024 Findings, arXiv 2406.12585), with optional key-token gating.

Each member's distribution is mapped onto the union vocabulary with one index tensor (the paper's sparse
mapping matrix), then the weighted average is taken there. Differences from `yaoching0/GaC`: the union is
keyed by exact bytes, so non-ASCII byte-level BPE tokens match SentencePiece ones; ids with equal bytes
take their max instead of their sum (a member's argmax is preserved); gating skips the other members'
forwards entirely, and they catch up lazily from their own KV caches.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ..errors import ConfigError
from .base import Aligned, normalize_rows, own_top
from .shared import union_space


@dataclass(frozen=True)
class GacOptions:
    threshold: float = 0.0  # ensemble only when the primary's top-1 probability is below it; 0 = always

    def __post_init__(self):
        if not 0 <= self.threshold <= 1:
            raise ConfigError(f"gac threshold must be in [0, 1], got {self.threshold}")


class Gac:
    def __init__(self, members, options: GacOptions, primary: int):
        self.gated = options.threshold > 0
        vocabs = [m.vocab for m in members]
        self.space = union_space(vocabs)
        self.support = torch.arange(len(self.space))
        self.threshold = options.threshold

    def align(self, probs: Sequence[torch.Tensor | None], weights: torch.Tensor, primary: int | None = None) -> Aligned:
        width = len(self.space)
        rows = torch.stack([self.space.project(i, p) if p is not None else torch.zeros(width)
                            for i, p in enumerate(probs)])
        return Aligned(self.support, normalize_rows(rows), own_top(self.space, probs))

    def consult_all(self, primary: torch.Tensor) -> bool:
        return self.threshold <= 0 or float(primary.max()) < self.threshold

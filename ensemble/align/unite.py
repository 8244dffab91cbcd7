"""UniTE, "Determine-Then-Ensemble: Necessity of Top-k Union for Large Language Model Ensembling"
(Yao et al., ICLR 2025, arXiv 2410.03777), §3.

Each step the support is the union of every member's top-k tokens (k = 10). A union token missing from a
member's vocabulary takes that member's probability of the first token of its own tokenization of the
string. Each member's distribution is renormalised over the union, then averaged with weights.
Differences from `starrYYxuan/UniTE`: the union is keyed by exact bytes, not by `Ġ`/`▁`-rewritten
strings; the first-token table is computed once at load time (batched in Rust, cached on disk) instead of
calling the tokenizer every step; no hard-coded model names or space-token ids.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ..errors import ConfigError
from .base import Aligned, normalize_rows, own_top
from .shared import SharedSpace, cached, union_space


@dataclass(frozen=True)
class UniteOptions:
    top_k: int = 10

    def __post_init__(self):
        if self.top_k < 1:
            raise ConfigError(f"unite top_k must be >= 1, got {self.top_k}")


class Unite:
    def __init__(self, members, options: UniteOptions, primary: int):
        self.gated = False
        vocabs = [m.vocab for m in members]
        self.space = union_space(vocabs)
        self.k = options.top_k
        self.first = [cached(f"first-{self.space.digest}-{i}", lambda m=m, i=i: first_token_table(m, self.space, i))
                      for i, m in enumerate(members)]

    def align(self, probs: Sequence[torch.Tensor | None], weights: torch.Tensor, primary: int | None = None) -> Aligned:
        present = [(i, p) for i, p in enumerate(probs) if p is not None]
        tops = torch.cat([self.space.to_shared[i][p.topk(min(self.k, p.numel())).indices] for i, p in present])
        support = torch.unique(tops[tops >= 0])
        rows = torch.zeros(len(probs), len(support))
        for i, p in present:
            row = self.space.project(i, p)[support]
            missing = self.first[i][support]
            lacks = missing >= 0
            row[lacks] = p[missing[lacks]]
            rows[i] = row
        return Aligned(support, normalize_rows(rows), own_top(self.space, probs))

    def consult_all(self, primary: torch.Tensor) -> bool:
        return True


def first_token_table(member, space: SharedSpace, i: int) -> torch.Tensor:
    """[S] long: for each shared token member i lacks, the first id of its own tokenization; -1 where it
    has the exact bytes (or for END)."""
    table = torch.full((len(space),), -1, dtype=torch.long)
    have = torch.zeros(len(space), dtype=torch.bool)
    mapped = space.to_shared[i]
    have[mapped[mapped >= 0]] = True
    lacking = [s for s in (~have).nonzero().flatten().tolist() if space.pieces[s]]
    texts, raw = [], []
    for s in lacking:
        try:
            texts.append((s, space.pieces[s].decode()))
        except UnicodeDecodeError:
            raw.append(s)
    encoded = member.encode.texts([t for _, t in texts]) if texts else []
    for (s, _), ids in zip(texts, encoded, strict=True):
        table[s] = ids[0] if ids else -1
    for s in raw:  # half a UTF-8 character: the member's token for its first byte
        table[s] = member.vocab.byte_ids[space.pieces[s][0]]
    return table

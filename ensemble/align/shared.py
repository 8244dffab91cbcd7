"""The shared token space that members' distributions are aligned into.

`union_space`: every distinct byte string of every member, plus one END that all members' end-of-turn
tokens map to (GaC's union vocabulary, keyed by bytes instead of token strings). `identity_space`: one
vocabulary shared as is, for exact averaging. Both are built once per member set, as index tensors, and
the union is cached on disk keyed by the tokenizers' hashes.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..config import cache_root
from .vocab import ByteVocab

END = 0  # shared id of the end of the answer in a union space
FORMAT = "v2"  # bump when a cached table's layout changes


@dataclass(frozen=True)
class SharedSpace:
    pieces: tuple[bytes, ...]  # [S] bytes of each shared token (b"" for END)
    end: frozenset[int]  # shared ids that end the answer
    to_shared: tuple[torch.Tensor, ...]  # per member: [V_i] long, shared id of each member id, -1 = none
    digest: str
    mapped: tuple[tuple[torch.Tensor, torch.Tensor], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        # per member: (member ids that have a shared id [M_i], those shared ids [M_i])
        pairs = tuple(((t >= 0).nonzero().flatten(), t[t >= 0]) for t in self.to_shared)
        object.__setattr__(self, "mapped", pairs)

    def __len__(self) -> int:
        return len(self.pieces)

    def project(self, member: int, probs: torch.Tensor) -> torch.Tensor:
        """probs: [V_i] -> [S]. Several ids with the same bytes (`A` and `<0x41>`) take their max, so a
        member's argmax in the shared space is the bytes of its own argmax."""
        src, dst = self.mapped[member]
        return probs.new_zeros(len(self.pieces)).scatter_reduce_(0, dst, probs[src], reduce="amax")


def cache_dir() -> Path:
    return cache_root() / "align"


def cached(key: str, build: Callable[[], object]):
    """torch.save'd result of build(), stored under the alignment cache; written atomically."""
    path = cache_dir() / f"{FORMAT}-{key}.pt"
    if path.exists():
        try:
            return torch.load(path, weights_only=False)
        except Exception:  # a corrupt or foreign file: rebuild it
            path.unlink(missing_ok=True)
    value = build()
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, delete=False, suffix=".tmp") as f:
        torch.save(value, f)
    os.replace(f.name, path)
    return value


def union_space(vocabs: Sequence[ByteVocab]) -> SharedSpace:
    digest = "union-" + "-".join(v.digest for v in vocabs)
    return cached(digest, lambda: _build_union(vocabs, digest))


def _build_union(vocabs: Sequence[ByteVocab], digest: str) -> SharedSpace:
    index: dict[bytes, int] = {b"": END}
    maps = []
    for v in vocabs:
        ids = [index.setdefault(p, len(index)) if p else -1 for p in v.pieces]
        for e in v.end_ids:
            ids[e] = END
        maps.append(torch.tensor(ids, dtype=torch.long))
    return SharedSpace(tuple(index), frozenset({END}), tuple(maps), digest)


def identity_space(vocabs: Sequence[ByteVocab]) -> SharedSpace | None:
    """The members' common vocabulary, id for id; None unless every member has the same table. The
    tables may differ in length by padding alone: lm_head rows past the tokenizer have no bytes (Qwen2.5-0.5B
    has 151,936 rows, Qwen2.5-7B 152,064, over one tokenizer); the space is the shorter table."""
    width = min(len(v.pieces) for v in vocabs)
    first = vocabs[0]
    if any(v.pieces[:width] != first.pieces[:width] or any(v.pieces[width:]) or v.end_ids != first.end_ids
           for v in vocabs):
        return None
    tables = []
    for v in vocabs:
        ids = torch.arange(len(v.pieces))
        ids[list(v.special - set(v.end_ids))] = -1
        ids[width:] = -1
        tables.append(ids)
    return SharedSpace(first.pieces[:width], frozenset(first.end_ids), tuple(tables), "same-" + first.digest)

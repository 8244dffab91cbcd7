"""DeePEn's relative representation (Huang et al., NeurIPS 2024, arXiv 2404.12715, §3.2).

For member i with input embeddings E_i [V_i, d]: R_i = cos(E_i, E_i[anchors]) [V_i, A], rows
L2-normalised, then P_i = softmax(T · R_i) row by row, T = 100 (`OrangeInSouth/DeePEn`,
`src/transfer_matrix/transfer_matrix.py`). The published code stores P_i dense in fp32: |V_i|·|A|·4 bytes,
66 GB for the three default members over their 38.5k shared byte strings. Two ways around it:
- `Exact`: only the unit-norm anchor embeddings are kept ([A, d] bf16, ~60 MB a member) and a step
  computes the rows of its few candidate tokens (a [m, d] x [d, A] bf16 matmul);
- `Relative`: each row's k largest entries (fp16 values, int32 anchor ids), the rest of its mass spread
  evenly, built once in chunks and cached on disk. Cheaper per step, but the rows are nearly flat
  (T·R stays within a few units because R's rows have unit norm), so the top 64 of 38.5k entries hold
  ~1% of a row's mass and the approximation loses much of the signal (docs/bench-quality.md).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .shared import SharedSpace

CHUNK = 1024  # rows per block while building: a few [CHUNK, A] fp32 temporaries, ~150 MB each


@dataclass(frozen=True)
class Relative:
    values: torch.Tensor  # [V, k] fp16: each row's k largest probabilities over the anchors
    index: torch.Tensor  # [V, k] int32: their anchor ids
    anchors: int  # A

    @property
    def device(self) -> torch.device:
        return self.values.device

    def take(self, ids: torch.Tensor, device: torch.device) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Rows `ids` [m] -> values [m, k] float64 and anchor ids [m, k], on `device`."""
        ids = ids.to(self.device)
        return self.values[ids].to(device, torch.float64), self.index[ids].to(device, torch.long)


@dataclass(frozen=True)
class Exact:
    embeddings: torch.Tensor  # [V, d] the member's input embeddings (the model's own tensor, not a copy)
    anchor_rows: torch.Tensor  # [A, d] unit norm; bf16 (fp32 for the published numbers)
    temperature: float

    @property
    def anchors(self) -> int:
        return len(self.anchor_rows)

    @property
    def device(self) -> torch.device:
        return self.anchor_rows.device

    def take(self, ids: torch.Tensor, device: torch.device) -> tuple[torch.Tensor, None]:
        """Whole rows [m, A] float64 on `device` (None: no index, every anchor). Computed where the
        embeddings live (a member's own GPU), then moved: the step's math runs on one device."""
        with torch.no_grad():
            rows = dense_rows(self.embeddings[ids.to(self.embeddings.device)], self.anchor_rows, self.temperature)
            return rows.to(device, torch.float64), None


@dataclass(frozen=True)
class Rows:
    """One step's candidate rows of one member, over the u anchors any candidate row touches (u <= A);
    every other anchor holds the same floor value, so the step's vectors are [u], not [A]."""

    values: torch.Tensor  # [m, k] float64 (k = u when `local` is None)
    local: torch.Tensor | None  # [m, k] long, in [0, u); None: the columns are the u = A anchors in order


def gather(rels: Sequence, ids: Sequence[torch.Tensor], device: torch.device) -> tuple[int, list[Rows]]:
    """The rows `ids[i]` [m_i] of each member's matrix (`Relative` or `Exact`), all moved to `device`
    (members may sit on different GPUs) -> (u, rows per member)."""
    taken = [r.take(i, device) for r, i in zip(rels, ids, strict=True)]
    if any(index is None for _, index in taken):  # whole rows: every anchor is touched
        return rels[0].anchors, [Rows(v, index) for v, index in taken]
    touched, inverse = torch.unique(torch.cat([index.flatten() for _, index in taken]), return_inverse=True)
    rows, start = [], 0
    for values, index in taken:
        rows.append(Rows(values, inverse[start:start + index.numel()].view_as(index)))
        start += index.numel()
    return len(touched), rows


def mix(rows: Rows, mass: torch.Tensor, u: int, anchors: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Σ_v mass_v · P[v] (differentiable in `mass` [m]). The mass the kept entries miss (left-out tokens,
    the rows' dropped tails) is spread evenly over all A anchors. -> (touched anchors' values [u], the
    floor value of every anchor)."""
    if rows.local is None:
        q = mass @ rows.values
    else:
        q = mass.new_zeros(u).index_add(0, rows.local.flatten(), (mass[:, None] * rows.values).flatten())
    floor = (1 - q.sum()) / anchors
    return q + floor, floor


def kl_mean(t: torch.Tensor, t0: torch.Tensor, r: torch.Tensor, r0: torch.Tensor, anchors: int) -> torch.Tensor:
    """`nn.KLDivLoss()(log r, t)` of the published code (the mean over all A anchors, not the sum), with
    the A - u untouched anchors at their floors t0, r0."""
    inside = (torch.special.xlogy(t, t) - t * r.clamp_min(1e-300).log()).sum()
    outside = (anchors - len(t)) * (torch.special.xlogy(t0, t0) - t0 * r0.clamp_min(1e-300).log())
    return (inside + outside) / anchors


def anchor_ids(space: SharedSpace, vocabs: Sequence) -> list[torch.Tensor]:
    """Anchors: the byte strings every member has (DeePEn's common vocabulary, matched by bytes rather
    than by token strings). -> per member [A] its id for each anchor, anchors in shared-id order."""
    present = torch.ones(len(space), dtype=torch.bool)
    for table in space.to_shared:
        has = torch.zeros(len(space), dtype=torch.bool)
        has[table[table >= 0]] = True
        present &= has
    present[list(space.end)] = False
    shared = present.nonzero().flatten()
    out = []
    for table, vocab in zip(space.to_shared, vocabs, strict=True):
        ids = (table >= 0).nonzero().flatten()
        own = torch.full((len(space),), len(table), dtype=torch.long)
        own.scatter_reduce_(0, table[ids], ids, reduce="amin")  # the lowest id with those bytes
        for i in vocab.byte_ids:  # a single byte: its ordinary token, not <0xNN>
            if i >= 0 and table[i] >= 0 and present[table[i]]:
                own[table[i]] = i
        out.append(own[shared])
    return out


def embedding_digest(weight: torch.Tensor) -> str:
    return hashlib.blake2b(weight.detach().cpu().contiguous().view(torch.uint8).numpy(), digest_size=8).hexdigest()


def dense_rows(embeddings: torch.Tensor, anchor_rows: torch.Tensor, temperature: float) -> torch.Tensor:
    """The published matrix's rows for `embeddings` [c, d] -> [c, A] fp32; the cosines in the dtype of
    `anchor_rows` [A, d] (unit norm)."""
    cos = (F.normalize(embeddings.float(), dim=-1).to(anchor_rows.dtype) @ anchor_rows.T).float()
    return torch.softmax(temperature * F.normalize(cos, dim=-1), dim=-1)


def exact(embeddings: torch.Tensor, anchors: torch.Tensor, temperature: float, dtype=torch.bfloat16) -> Exact:
    return Exact(embeddings, F.normalize(embeddings[anchors].float(), dim=-1).to(dtype), temperature)


def build_relative(embeddings: torch.Tensor, anchors: torch.Tensor, k: int, temperature: float) -> Relative:
    """embeddings [V, d], anchors [A] ids into them -> the top-k sparse P. The cosines come from a bf16
    matmul (fp32 accumulation; 4x faster on CPU than fp32); softmax is monotone, so a row's top-k
    entries are its top-k cosines, and only the row's norm and log-sum-exp need the whole row."""
    anchor_rows = F.normalize(embeddings[anchors].float(), dim=-1).bfloat16()  # [A, d]
    k = min(k, len(anchors))
    values = torch.empty(len(embeddings), k, dtype=torch.float16)
    index = torch.empty(len(embeddings), k, dtype=torch.int32)
    with torch.no_grad():
        for start in range(0, len(embeddings), CHUNK):
            rows = F.normalize(embeddings[start:start + CHUNK].float(), dim=-1).bfloat16()
            cos = (rows @ anchor_rows.T).float()  # [c, A]
            scale = temperature / cos.norm(dim=-1, keepdim=True).clamp_min(1e-12)  # L2-normalised rows, x T
            lse = torch.logsumexp(cos * scale, dim=-1, keepdim=True)
            top = cos.topk(k, dim=-1)
            values[start:start + CHUNK] = (top.values * scale - lse).exp()
            index[start:start + CHUNK] = top.indices
    return Relative(values, index, len(anchors))

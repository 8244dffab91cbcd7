"""DeePEn's relative representation (Huang et al., NeurIPS 2024, arXiv 2404.12715, §3.2), kept sparse.

For member i with input embeddings E_i [V_i, d]: R_i = cos(E_i, E_i[anchors]) [V_i, A], rows
L2-normalised, then P_i = softmax(T · R_i) row by row, T = 100 (`OrangeInSouth/DeePEn`,
`src/transfer_matrix/transfer_matrix.py`). The published code stores P_i dense in fp32: |V_i|·|A|·4 bytes,
about 20 GB for Gemma-3 against a Qwen-sized anchor set. We keep each row's k largest entries (fp16 values,
int32 anchor ids) and spread the rest of the row's mass evenly over the anchors (the rows are flat:
T·R stays within a few units because R's rows have unit norm). Built in chunks of rows, cached on disk.
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
    index: torch.Tensor | None  # [V, k] int32: their anchor ids; None: `values` are whole rows [V, A]
    anchors: int  # A


@dataclass(frozen=True)
class Rows:
    """One step's candidate rows of one member, indexed into the u anchors any candidate row touches
    (u <= A); every other anchor holds the same floor value, so the step's vectors are [u], not [A]."""

    values: torch.Tensor  # [m, k] float64
    local: torch.Tensor  # [m, k] long, in [0, u)


def gather(rels: Sequence[Relative], ids: Sequence[torch.Tensor]) -> tuple[int, list[Rows]]:
    """The rows `ids[i]` [m_i] of each matrix, over their touched anchors -> (u, rows per member)."""
    index = [torch.arange(r.anchors).expand(len(i), -1) if r.index is None else r.index[i].long()
             for r, i in zip(rels, ids, strict=True)]
    touched, inverse = torch.unique(torch.cat([x.flatten() for x in index]), return_inverse=True)
    rows, start = [], 0
    for r, i, x in zip(rels, ids, index, strict=True):
        rows.append(Rows(r.values[i].double(), inverse[start:start + x.numel()].view_as(x)))
        start += x.numel()
    return len(touched), rows


def mix(rows: Rows, mass: torch.Tensor, u: int, anchors: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Σ_v mass_v · P[v] (differentiable in `mass` [m]). The mass the kept entries miss (left-out tokens,
    the rows' dropped tails) is spread evenly over all A anchors. -> (touched anchors' values [u], the
    floor value of every anchor)."""
    part = mass[:, None] * rows.values
    floor = (1 - part.sum()) / anchors
    return mass.new_zeros(u).index_add(0, rows.local.flatten(), part.flatten()) + floor, floor


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
    """The published matrix, for rows `embeddings` [c, d]: [c, A] fp32 (used in chunks, and by tests)."""
    cos = F.normalize(embeddings.float(), dim=-1) @ anchor_rows.T  # anchor_rows [A, d], unit norm
    return torch.softmax(temperature * F.normalize(cos, dim=-1), dim=-1)


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

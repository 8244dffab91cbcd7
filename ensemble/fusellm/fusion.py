"""Stage 3b: turn each source's top-k into a distribution over target ids, then fuse per sequence.

Teachers of one training sequence: the target model itself (FuseLLM's `distill_with_ref_model`) and each
source after alignment. A teacher's row is softmax(top-k logits / T) with T = 1 (`data_collator.py`),
its ids mapped into the target vocabulary; positions without a 1:1 aligned match get a one-hot on the
target's gold token. Fusion (FuseLLM §3.3, anchors-methods.md §5):
  MinCE — the whole sequence takes the distribution of the teacher with the lowest cross-entropy;
  AvgCE — a weighted average, weights ∝ exp(−CE) (the reward FuseLLM's trainer ranks teachers by);
  distill — not a fusion: the first source alone (Qwen-Coder by default), whatever the CEs, so a run can
      separate what fusing several sources adds from plain distillation of the best one.
CE is per byte of the sequence, so tokenizers with longer tokens are not penalised (prepare.py).
Distributions are sparse: ids [T, K] (-1 = unused column) and probs [T, K]; a target id may repeat across
columns, which the loss handles by summing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import ConfigError
from .prepare import SeqRecord
from .seqalign import matched_positions

RULES = ("mince", "avgce", "distill")
DISTILLED = 1  # teacher index of `distill`: 0 is the target itself, 1 the first source


@dataclass(frozen=True)
class Sparse:
    ids: torch.Tensor  # [T, K] int64, -1 = empty
    probs: torch.Tensor  # [T, K] float32, rows sum to 1 where any id is set


@dataclass(frozen=True)
class FusedRecord:
    key: str
    tokens: torch.Tensor  # [T] int32, target ids
    ids: torch.Tensor  # [T, K] int32
    probs: torch.Tensor  # [T, K] fp16
    weights: tuple[float, ...]  # per teacher: target, source 1, source 2, ...
    aligned: tuple[float, ...]  # per source: fraction of target positions carrying its distribution


def top_k_probs(ids: torch.Tensor, values: torch.Tensor, temperature: float = 1.0) -> Sparse:
    ids = ids.long()
    logits = torch.where(ids >= 0, values.float() / temperature, float("-inf"))
    probs = torch.softmax(logits, -1).nan_to_num(0.0)  # an all-empty row stays zero
    return Sparse(ids, probs)


def one_hot(tokens: torch.Tensor) -> Sparse:
    return Sparse(tokens.long()[:, None], torch.ones(len(tokens), 1))


def mapped(sparse: Sparse, vmap: torch.Tensor) -> Sparse:
    """Source ids -> target ids; ids with no target token drop out and the row is renormalised."""
    ids = torch.where(sparse.ids >= 0, vmap[sparse.ids.clamp(min=0)], -1)
    probs = torch.where(ids >= 0, sparse.probs, 0.0)
    total = probs.sum(-1, keepdim=True)
    return Sparse(ids, torch.where(total > 0, probs / total.clamp(min=1e-30), 0.0))


def pad(sparse: Sparse, width: int) -> Sparse:
    extra = width - sparse.ids.shape[1]
    return Sparse(torch.nn.functional.pad(sparse.ids, (0, extra), value=-1),
                  torch.nn.functional.pad(sparse.probs, (0, extra), value=0.0))


def aligned_teacher(src: SeqRecord, tgt: SeqRecord, src_pieces, tgt_pieces, vmap: np.ndarray) -> tuple[Sparse, float]:
    """(the source's distribution on the target's positions, the fraction of positions it covers)."""
    s_tok, t_tok = src.tokens.tolist(), tgt.tokens.tolist()
    pairs = matched_positions(s_tok, t_tok, [src_pieces[i] for i in s_tok], [tgt_pieces[i] for i in t_tok], vmap)
    pairs = {j: i for j, i in pairs.items() if src.ids[i, 0] >= 0}  # the source predicts token i
    src_dist = mapped(top_k_probs(src.ids, src.values), torch.from_numpy(vmap).long())
    out = pad(one_hot(tgt.tokens), src_dist.ids.shape[1])
    if pairs:
        rows = torch.tensor(list(pairs))
        cols = torch.tensor(list(pairs.values()))
        usable = src_dist.probs[cols].sum(-1) > 0
        rows, cols = rows[usable], cols[usable]
        out.ids[rows], out.probs[rows] = src_dist.ids[cols], src_dist.probs[cols]
        return out, len(rows) / len(t_tok)
    return out, 0.0


def fuse(teachers: list[Sparse], ces: list[float], rule: str) -> tuple[Sparse, tuple[float, ...]]:
    """MinCE: the lowest-CE teacher (first on ties); AvgCE: all teachers, weights softmax(−CE);
    distill: teacher DISTILLED (the first source) alone."""
    if rule not in RULES:
        raise ConfigError(f"fusion rule must be one of {RULES}, got {rule!r}")
    ce = torch.tensor(ces, dtype=torch.float64)
    if rule in ("mince", "distill"):
        if rule == "distill" and len(teachers) <= DISTILLED:
            raise ConfigError("distill needs at least one source besides the target")
        weights = torch.zeros_like(ce)
        weights[int(ce.argmin()) if rule == "mince" else DISTILLED] = 1.0
    else:
        weights = torch.softmax(-ce, 0)
    kept = [(w, t) for w, t in zip(weights.tolist(), teachers, strict=True) if w > 0]
    ids = torch.cat([t.ids for _, t in kept], 1)
    probs = torch.cat([w * t.probs for w, t in kept], 1)
    return Sparse(ids, probs), tuple(weights.tolist())


def fuse_sequence(tgt: SeqRecord, sources: list[SeqRecord], pieces: list, vmaps: list[np.ndarray],
                  rule: str) -> FusedRecord:
    """pieces[0] is the target's ByteVocab pieces, pieces[1:] each source's."""
    teachers, aligned = [pad(top_k_probs(tgt.ids, tgt.values), tgt.ids.shape[1])], []
    for src, src_pieces, vmap in zip(sources, pieces[1:], vmaps, strict=True):
        if src.key != tgt.key:
            raise ConfigError(f"source and target records disagree: {src.key} vs {tgt.key}")
        teacher, frac = aligned_teacher(src, tgt, src_pieces, pieces[0], vmap)
        teachers.append(teacher)
        aligned.append(frac)
    dist, weights = fuse(teachers, [tgt.ce_per_byte] + [s.ce_per_byte for s in sources], rule)
    return FusedRecord(tgt.key, tgt.tokens, dist.ids.int(), dist.probs.half(), weights, tuple(aligned))

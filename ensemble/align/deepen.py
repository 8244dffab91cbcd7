"""DeePEn, "Ensemble Learning for Heterogeneous Large Language Models with Deep Parallel Collaboration"
(Huang et al., NeurIPS 2024, arXiv 2404.12715), §3.

Each member's next-token distribution p_i [V_i] is mapped into the relative space, q_i = p_i · P_i [A]
(`ensemble/align/relative.py`), and averaged with the member weights (DeePEn-Avg: equal; DeePEn-Adapt: dev
scores). An inverse search then looks for logits z of the main (primary) member whose relative
projection softmax(z) · P_main matches the average: AdamW, 5 steps, cosine schedule (T_max 10, floor
lr/4), KL loss; the emitted token is argmax z. lr 0 is the main member alone.

Differences from `OrangeInSouth/DeePEn` (anchors-methods.md §1):
- anchors are the byte strings all members share, not `Ġ`→`▁`-rewritten token strings;
- P_i is never stored dense: by default each step computes the rows of its candidate tokens from the
  unit-norm anchor embeddings (bf16 cosines); `rows: sparse` uses cached top-k tables instead;
- each member contributes its `candidates` most likely tokens (the rest of its mass spread evenly), and
  the search moves only the main member's `candidates` most likely logits (the tail stays fixed). With
  Adam each logit moves at most ~lr per step, so a token that the main member gives far less than the
  top token's probability can never become the argmax anyway (5 steps at lr 0.15 move a logit by ~0.67);
- z starts from log-probabilities (the published code: raw logits; equal up to a shift, which only the
  tiny decoupled weight decay sees); the search runs in float64 so that identical members cancel exactly.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ..errors import ConfigError
from .base import Aligned, normalize_rows, own_top
from .relative import (
    Exact,
    Relative,
    Rows,
    anchor_ids,
    build_relative,
    embedding_digest,
    exact,
    gather,
    kl_mean,
    mix,
)
from .shared import cached, union_space


@dataclass(frozen=True)
class DeepenOptions:
    lr: float = 0.15  # 0 = the main member alone (the others are not even run)
    steps: int = 5  # inverse-search iterations
    rows: str = "exact"  # exact: each step computes its candidates' rows; sparse: cached top-k tables
    top_k: int = 64  # relative-matrix entries kept per row (sparse)
    candidates: int = 64  # each member's most likely tokens mapped per step
    temperature: float = 100.0

    def __post_init__(self):
        if self.lr < 0 or self.steps < 0 or self.top_k < 1 or self.candidates < 1 or self.temperature <= 0:
            raise ConfigError(f"deepen options out of range: {self}")
        if self.rows not in ("exact", "sparse"):
            raise ConfigError(f"deepen rows must be 'exact' or 'sparse', got {self.rows!r}")


class Deepen:
    def __init__(self, members, options: DeepenOptions, primary: int):
        self.gated = options.lr == 0
        self.options, self.primary = options, primary
        vocabs = [m.vocab for m in members]
        self.space = union_space(vocabs)
        anchors = anchor_ids(self.space, vocabs)
        if len(anchors[0]) == 0:
            raise ConfigError("deepen needs tokens that every member shares; these vocabularies have none")
        self.relative = [relative_matrix(m, a, options) for m, a in zip(members, anchors, strict=True)]

    def align(self, probs: Sequence[torch.Tensor | None], weights: torch.Tensor, primary: int | None = None) -> Aligned:
        present = [i for i, p in enumerate(probs) if p is not None]
        main = self.primary if primary is None else primary
        main = main if probs[main] is not None else present[0]
        cand = probs[main].topk(min(self.options.candidates, probs[main].numel())).indices  # [m] main ids
        mass = probs[main][cand].double()
        shared = self.space.to_shared[main][cand]
        if self.options.lr > 0 and len(present) > 1 and int(shared[0]) not in self.space.end:
            others = [i for i in present if i != main]
            mass = deepen_step([self.relative[i] for i in [main, *others]], [probs[i] for i in [main, *others]],
                               weights[[main, *others]], self.options)
        keep = shared >= 0
        tops = own_top(self.space, probs)
        owns = torch.tensor([t for t in tops if t >= 0], dtype=torch.long)
        support = torch.unique(torch.cat([shared[keep], owns]))
        fused = torch.zeros(len(support)).scatter_reduce_(
            0, torch.searchsorted(support, shared[keep]), mass[keep].float(), reduce="amax")
        rows = torch.stack([self.space.project(i, p)[support] if p is not None else torch.zeros(len(support))
                            for i, p in enumerate(probs)])
        return Aligned(support, normalize_rows(rows), tops, fused)

    def consult_all(self, primary: torch.Tensor) -> bool:
        return not self.gated


def deepen_step(rels: Sequence[Relative | Exact], probs: Sequence[torch.Tensor], weights: torch.Tensor,
                options: DeepenOptions) -> torch.Tensor:
    """Member 0 is the main member. -> the searched probabilities [m] (CPU) of its `candidates` most
    likely tokens (in the order of `probs[0].topk`).

    All of the step's math runs on one device, the main member's table's: each member's candidate rows
    and probabilities are moved there (members and probabilities may each sit on another device)."""
    device = rels[0].device
    with torch.inference_mode(False), torch.enable_grad():  # plain tensors even if called under inference_mode
        tops = [p.topk(min(options.candidates, p.numel())) for p in probs]
        u, rows = gather(rels, [t.indices.clone() for t in tops], device)
        anchors = rels[0].anchors
        w = weights.to(device, torch.float64)
        w = w / w.sum()
        masses = [t.values.to(device, torch.float64) for t in tops]
        target, floor = 0, 0
        for wi, r, mass in zip(w, rows, masses, strict=True):  # q̄ = Σ w_i p_i P_i
            q, q0 = mix(r, mass, u, anchors)
            target, floor = target + wi * q, floor + wi * q0
        return inverse_search(rows[0], masses[0].clone(), target, floor, u, anchors, options).cpu()


def inverse_search(rows: Rows, mass: torch.Tensor, target: torch.Tensor, floor: torch.Tensor, u: int, anchors: int,
                   options: DeepenOptions) -> torch.Tensor:
    """Main-member probabilities of its candidates [m] whose relative projection matches the target
    ([u] touched anchors, `floor` elsewhere): the published optimiser, schedule and loss. The tail
    outside the candidates keeps its mass. -> [m] float64."""
    tail = (1 - mass.sum()).clamp_min(0)
    z = mass.clamp_min(1e-300).log().requires_grad_(True)
    opt = torch.optim.AdamW([z], lr=options.lr, betas=(0.9, 0.999))
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=10, eta_min=options.lr / 4)

    def probs_of(z: torch.Tensor) -> torch.Tensor:
        e = z.exp()
        return e / (e.sum() + tail)

    for _ in range(options.steps):
        opt.zero_grad()
        r, r0 = mix(rows, probs_of(z), u, anchors)
        kl_mean(target, floor, r, r0, anchors).backward()
        opt.step()
        schedule.step()
    return probs_of(z.detach())


def relative_matrix(member, anchors: torch.Tensor, options: DeepenOptions) -> Relative | Exact:
    """The member's P over these anchors, from its input embeddings (as the authors do); the sparse
    tables are cached under a hash of the embeddings and the anchors."""
    weight = member.model.get_input_embeddings().weight
    if options.rows == "exact":
        return exact(weight.detach(), anchors, options.temperature)
    key = hashlib.blake2b(anchors.numpy().tobytes(), digest_size=8).hexdigest()
    key = f"deepen-{embedding_digest(weight)}-{key}-k{options.top_k}-t{options.temperature:g}"
    return cached(key, lambda: build_relative(weight.detach().cpu(), anchors, options.top_k, options.temperature))

"""The trainable part of a CALM composition (arXiv 2401.02412 §3.2): per connection, a projection of the
augmenting model's hidden states to the anchor's width and a cross-attention block added residually to
the anchor layer's output."""

from __future__ import annotations

import torch
from torch import nn


class CrossAttention(nn.Module):
    """h_anchor [B, T, D] + MHA(RMSNorm(h_anchor), W_proj h_aug, W_proj h_aug) with h_aug [B, S, D_aug].

    The output projection starts at zero (lucidrains/CALM-pytorch `zero_init_output`), so an untrained
    composition returns the anchor's hidden states bit for bit. The official code keeps MHA's default
    init and a post-attention norm; zero init is what makes "composed == anchor at step 0" exact.
    """

    def __init__(self, anchor_dim: int, aug_dim: int, heads: int):
        super().__init__()
        self.proj = nn.Linear(aug_dim, anchor_dim)  # shared for keys and values, as in google-deepmind/calm
        self.norm = nn.RMSNorm(anchor_dim)
        self.attn = nn.MultiheadAttention(anchor_dim, heads, batch_first=True)
        nn.init.zeros_(self.attn.out_proj.weight)
        nn.init.zeros_(self.attn.out_proj.bias)

    def forward(self, hidden: torch.Tensor, aug: torch.Tensor, pad: torch.Tensor | None) -> torch.Tensor:
        """pad [B, S]: True where the augmenting position is padding (masked out)."""
        context = self.proj(aug.to(self.proj.weight.dtype))
        query = self.norm(hidden.to(self.proj.weight.dtype))
        out, _ = self.attn(query, context, context, key_padding_mask=pad, need_weights=False)
        return hidden + out.to(hidden.dtype)

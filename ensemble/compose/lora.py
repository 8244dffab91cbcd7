"""CALM's LoRA baseline (arXiv 2401.02412 §4, Table 1): the anchor alone, fine-tuned on the composition's
training data with low-rank adapters (peft) holding about as many trained parameters as the composition.

It tells what the composition adds beyond training the anchor on the same data: the anchor never sees the
augmenting model, so a key it was not trained on carries no value for it.
"""

from __future__ import annotations

from torch import nn

from ..errors import ConfigError

TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")  # every decoder Linear
TOLERANCE = 0.05  # the adapters' size may differ from the composition's by this share (ranks are whole)


def per_rank(model: nn.Module) -> int:
    """Trained parameters one unit of rank adds: r·(in + out) per adapted Linear (A is r×in, B out×r)."""
    total = sum(m.in_features + m.out_features for name, m in model.named_modules()
                if isinstance(m, nn.Linear) and name.rsplit(".", 1)[-1] in TARGETS)
    if not total:
        raise ConfigError(f"the anchor has none of the Linear layers LoRA adapts: {TARGETS}")
    return total


def matching_rank(model: nn.Module, trained: int) -> int:
    """The rank whose adapters come closest to `trained` parameters (at least 1); ConfigError when even
    that rank misses by more than TOLERANCE."""
    unit = per_rank(model)
    rank = max(1, round(trained / unit))
    if abs(rank * unit - trained) > TOLERANCE * trained:
        raise ConfigError(f"no LoRA rank matches {trained} parameters within {TOLERANCE:.0%} "
                          f"(rank {rank} gives {rank * unit})")
    return rank


def with_lora(model: nn.Module, rank: int):
    """The anchor wrapped with rank-`rank` adapters on every decoder Linear; only the adapters train.
    alpha = rank (scale 1), no dropout; B starts at zero, so the wrapped anchor starts equal to the anchor.
    peft replaces the Linear layers in place: size the adapters (`matching_rank`) before wrapping."""
    from peft import LoraConfig, get_peft_model

    cfg = LoraConfig(r=rank, lora_alpha=rank, lora_dropout=0.0, target_modules=list(TARGETS), bias="none")
    return get_peft_model(model, cfg)


def trained_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)

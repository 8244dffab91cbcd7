"""Held-out bits per byte: summed cross-entropy of the predicted tokens over their bytes, in bits.

Bytes count once whatever the tokenizer, so models with different vocabularies compare; the first token of
a block is not scored for a model without a BOS (nothing predicts it), the same for every model sharing
the target's tokenizer. `per_block` keeps each block's nats and bytes, so two models scored on the same
blocks compare pairwise: `paired_bootstrap` resamples blocks (Efron & Tibshirani 1993, ch. 13, percentile
interval, `stats.paired_bootstrap`) and gives an interval for the difference of their bits per byte.
"""

from __future__ import annotations

import math

from tqdm import tqdm

from ..decode.model import LoadedModel
from .corpus import Block
from .prepare import record


def per_block(lm: LoadedModel, blocks: list[Block]) -> list[dict]:
    """One row per block: {"block", "kind", "nats", "bytes"}."""
    lm.model.eval()
    rows = []
    for block in tqdm(blocks, desc=f"bpb {lm.name}", unit="block"):
        rec = record(lm, block, k=1)
        rows.append({"block": block.key, "kind": block.kind, "nats": rec.nats, "bytes": rec.bytes})
    return rows


def bits(rows: list[dict], kind: str = "all") -> float:
    picked = [r for r in rows if kind in ("all", r["kind"])]
    return sum(r["nats"] for r in picked) / sum(r["bytes"] for r in picked) / math.log(2)


def bits_per_byte(lm: LoadedModel, blocks: list[Block]) -> dict[str, float]:
    """{"all": bpb, "code": ..., "prose": ...} over the given blocks."""
    rows = per_block(lm, blocks)
    return {k: bits(rows, k) for k in ("all", *dict.fromkeys(r["kind"] for r in rows))}

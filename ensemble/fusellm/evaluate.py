"""Held-out bits per byte: summed cross-entropy of the predicted tokens over their bytes, in bits.

Bytes count once whatever the tokenizer, so models with different vocabularies compare; the first token of
a block is not scored for a model without a BOS (nothing predicts it), the same for every model sharing
the target's tokenizer.
"""

from __future__ import annotations

import math

from tqdm import tqdm

from ..decode.model import LoadedModel
from .corpus import Block
from .prepare import record


def bits_per_byte(lm: LoadedModel, blocks: list[Block]) -> dict[str, float]:
    """{"all": bpb, "code": ..., "prose": ...} over the given blocks."""
    nats: dict[str, float] = {}
    nbytes: dict[str, int] = {}
    lm.model.eval()
    for block in tqdm(blocks, desc=f"bpb {lm.name}", unit="block"):
        rec = record(lm, block, k=1)
        for kind in ("all", block.kind):
            nats[kind] = nats.get(kind, 0.0) + rec.nats
            nbytes[kind] = nbytes.get(kind, 0) + rec.bytes
    return {k: nats[k] / nbytes[k] / math.log(2) for k in nats}

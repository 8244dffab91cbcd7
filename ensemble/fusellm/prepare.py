"""Stage 1: run each model (sources and target) over the training blocks; keep the top-k logits per position.

Per model, per shard of blocks, one file `<out>/logits/<model>/shard-NNNNN.pt` holding, for each block:
  tokens [T] int32 — the block's text token ids (no specials);
  ids [T, k] int32, values [T, k] fp16 — top-k logits of the distribution that *predicts* token t
      (row 0 is -1 / 0 when the tokenizer adds no BOS: nothing predicts the first token);
  nats, bytes — summed cross-entropy of the predicted tokens and their byte count, so sequence CE is per
      byte and comparable across tokenizers (FuseLLM's per-token `metric_ce` is not, anchors-methods.md §5).
A shard is written to a temporary name and renamed, so an interrupted run resumes at the first missing shard.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from ..decode.model import LoadedModel
from .corpus import Block

TOP_K = 10  # forward_for_logits.py --top_k_logits 10


@dataclass(frozen=True)
class SeqRecord:
    key: str
    tokens: torch.Tensor  # [T] int32
    ids: torch.Tensor  # [T, k] int32
    values: torch.Tensor  # [T, k] fp16
    nats: float
    bytes: int

    @property
    def ce_per_byte(self) -> float:
        return self.nats / max(self.bytes, 1)


def bos_prefix(tokenizer) -> list[int]:
    """The specials the tokenizer itself puts before any text (Gemma's <bos>; none for Qwen or SmolLM2)."""
    with_specials = tokenizer("x", add_special_tokens=True)["input_ids"]
    bare = tokenizer("x", add_special_tokens=False)["input_ids"]
    return with_specials[:len(with_specials) - len(bare)] if with_specials[-len(bare):] == bare else []


def encode(lm: LoadedModel, text: str) -> tuple[list[int], list[int]]:
    return bos_prefix(lm.tokenizer), lm.tokenizer(text, add_special_tokens=False)["input_ids"]


@torch.inference_mode()
def token_logits(lm: LoadedModel, text: str) -> tuple[list[int], torch.Tensor]:
    """(text ids [T], float logits [T, V] where row t predicts token t; row 0 is NaN without a BOS)."""
    prefix, ids = encode(lm, text)
    inputs = torch.tensor([prefix + ids], device=lm.device)
    logits = lm.model(input_ids=inputs).logits[0].float()  # [P+T, V]
    if prefix:
        return ids, logits[len(prefix) - 1:-1]
    return ids, torch.cat([torch.full_like(logits[:1], float("nan")), logits[:-1]])


def record(lm: LoadedModel, block: Block, k: int = TOP_K) -> SeqRecord:
    ids, logits = token_logits(lm, block.text)
    tokens = torch.tensor(ids)
    valid = ~logits[:, 0].isnan()
    logp = torch.log_softmax(logits[valid], -1)
    nats = -logp.gather(1, tokens[valid, None]).sum().item()
    nbytes = len(lm.vocab.text_bytes(tokens[valid].tolist()))
    top = logits.topk(k, dim=-1)
    top_ids = torch.where(valid[:, None], top.indices, -1).int()
    top_values = torch.where(valid[:, None], top.values, 0.0).half()
    return SeqRecord(block.key, tokens.int(), top_ids, top_values, nats, nbytes)


def shard_path(out: Path, model_name: str, shard: int) -> Path:
    return out / "logits" / model_name / f"shard-{shard:05d}.pt"


def save_records(path: Path, records: list[SeqRecord]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save([r.__dict__ for r in records], tmp)
    os.replace(tmp, path)


def load_records(path: Path) -> list[SeqRecord]:
    return [SeqRecord(**d) for d in torch.load(path)]


def prepare_model(lm: LoadedModel, blocks: list[Block], out: Path, shard_size: int,
                  deadline: float = float("inf")) -> bool:
    """Write the missing shards for one model; stop (returning False) once `deadline` (time.time()) passes."""
    shards = range(0, len(blocks), shard_size)
    todo = [s for s in shards if not shard_path(out, lm.name, s // shard_size).exists()]
    for start in tqdm(todo, desc=f"prepare {lm.name}", unit="shard"):
        if time.time() > deadline:
            return False
        records = [record(lm, b) for b in blocks[start:start + shard_size]]
        save_records(shard_path(out, lm.name, start // shard_size), records)
    return True


def load_model_records(out: Path, model_name: str, n_shards: int) -> list[SeqRecord]:
    records = []
    for s in range(n_shards):
        records.extend(load_records(shard_path(out, model_name, s)))
    return records

"""The stages wired to a work folder; each reads what the previous one wrote.

    <work>/config.json               sources, target, corpus (a second run must agree)
    <work>/logits/<model>/shard-*.pt prepare: top-k logits of every model on the training blocks
    <work>/maps/<source>.npz         map: source id -> target id (+ distances), with timings in maps.json
    <work>/fused/<rule>/shard-*.pt   fuse: the fused soft targets
    <work>/runs/<name>/              train: checkpoint.pt, log.jsonl, and model/ (the save_pretrained folder)
    <work>/eval.jsonl                eval: held-out bits per byte, one row per model
    <work>/eval-blocks.jsonl         eval: the same per held-out block (nats, bytes), for paired intervals
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..config import MemberSpec
from ..decode.model import LoadedModel
from ..errors import ConfigError
from ..models.loading import load_model
from . import corpus, fusion, prepare, vocabmap
from .evaluate import bits, per_block
from .modelcard import write_card
from .train import TrainConfig, train


@dataclass(frozen=True)
class FuseLLMConfig:
    sources: tuple[str, ...] = ("offline:qwen2.5-coder-0.5b-instruct", "offline:gemma-3-270m")
    target: str = "offline:smollm2-135m-instruct"
    corpus: corpus.CorpusConfig = field(default_factory=corpus.CorpusConfig)
    shard_size: int = 8

    def __post_init__(self):
        if not self.sources:
            raise ConfigError("FuseLLM needs at least one source model")
        if self.shard_size < 1:
            raise ConfigError(f"shard_size must be >= 1, got {self.shard_size}")

    @property
    def n_shards(self) -> int:
        return math.ceil(self.corpus.train_blocks / self.shard_size)


def check_config(work: Path, cfg: FuseLLMConfig) -> None:
    """The first run records the config; later runs over the same folder must use the same one."""
    path = work / "config.json"
    mine = json.loads(json.dumps(asdict(cfg)))
    if path.exists():
        theirs = json.loads(path.read_text())
        if theirs != mine:
            raise ConfigError(f"{work} was prepared with {theirs}; this run asks for {mine}")
    else:
        work.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(mine, indent=1))


def load(model: str, dtype: str = "fp32") -> LoadedModel:
    return load_model(MemberSpec(model, dtype=dtype), device="cpu")


def name_of(model: str) -> str:
    return MemberSpec(model).name


def run_prepare(work: Path, cfg: FuseLLMConfig, deadline: float, dtype: str = "bf16") -> bool:
    train_blocks, _ = corpus.sample(cfg.corpus)
    for model in (cfg.target, *cfg.sources):
        if all(prepare.shard_path(work, name_of(model), s).exists() for s in range(cfg.n_shards)):
            continue
        lm = load(model, dtype)
        done = prepare.prepare_model(lm, train_blocks, work, cfg.shard_size, deadline)
        del lm
        if not done:
            return False
    return True


def run_map(work: Path, cfg: FuseLLMConfig) -> dict:
    tgt = load(cfg.target, "bf16").vocab
    stats = {}
    for model in cfg.sources:
        vm = vocabmap.build_map(load(model, "bf16").vocab, tgt)
        (work / "maps").mkdir(parents=True, exist_ok=True)
        np.savez(work / "maps" / f"{name_of(model)}.npz", ids=vm.ids, distance=vm.distance)
        stats[name_of(model)] = {"exact": vm.exact, "mined": vm.mined, "seconds": round(vm.seconds, 2),
                                 "mean_mined_distance": float(vm.distance[vm.distance > 0].mean())}
    (work / "maps.json").write_text(json.dumps(stats, indent=1))
    return stats


def fused_path(work: Path, rule: str, shard: int) -> Path:
    return work / "fused" / rule / f"shard-{shard:05d}.pt"


def run_fuse(work: Path, cfg: FuseLLMConfig, rule: str) -> dict:
    pieces = [load(m, "bf16").vocab.pieces for m in (cfg.target, *cfg.sources)]
    vmaps = [np.load(work / "maps" / f"{name_of(m)}.npz")["ids"] for m in cfg.sources]
    weights, aligned = [], []
    for shard in range(cfg.n_shards):
        tgt = prepare.load_records(prepare.shard_path(work, name_of(cfg.target), shard))
        srcs = [prepare.load_records(prepare.shard_path(work, name_of(m), shard)) for m in cfg.sources]
        out = [fusion.fuse_sequence(t, list(s), pieces, vmaps, rule) for t, *s in zip(tgt, *srcs, strict=True)]
        weights += [r.weights for r in out]
        aligned += [r.aligned for r in out]
        path = fused_path(work, rule, shard)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save([r.__dict__ for r in out], path.with_suffix(".tmp"))
        os.replace(path.with_suffix(".tmp"), path)
    stats = {"rule": rule, "teachers": ["target", *map(name_of, cfg.sources)],
             "mean_weight": np.mean(weights, 0).round(3).tolist(),
             "mean_aligned": np.mean(aligned, 0).round(3).tolist()}
    (work / f"fused-{rule}.json").write_text(json.dumps(stats, indent=1))
    return stats


def load_fused(work: Path, cfg: FuseLLMConfig, rule: str) -> list[fusion.FusedRecord]:
    return [fusion.FusedRecord(**d) for s in range(cfg.n_shards) for d in torch.load(fused_path(work, rule, s))]


def run_train(work: Path, cfg: FuseLLMConfig, tcfg: TrainConfig, rule: str, name: str, deadline: float) -> Path | None:
    """Train (or continue) one run; returns its model folder once finished, else None."""
    run = work / "runs" / name
    folder = run / "model"
    if (folder / "config.json").exists():
        return folder
    lm = load(cfg.target)
    records = load_fused(work, cfg, rule)
    if not train(lm.model, prepare.bos_prefix(lm.tokenizer), records, tcfg, run, deadline):
        return None
    lm.model.eval()
    lm.model.save_pretrained(folder)
    lm.tokenizer.save_pretrained(folder)
    write_card(folder, cfg, tcfg, rule, name, run / "log.jsonl")
    (run / "checkpoint.pt").unlink()
    return folder


def run_eval(work: Path, cfg: FuseLLMConfig, models: list[str], deadline: float = float("inf")) -> bool:
    """Append each model's held-out bits per byte to <work>/eval.jsonl, skipping models already there."""
    _, held_out = corpus.sample(cfg.corpus)
    path = work / "eval.jsonl"
    done = {json.loads(r)["model"] for r in path.read_text().splitlines()} if path.exists() else set()
    for model in models:
        if model in done:
            continue
        if time.time() > deadline:
            return False
        blocks = per_block(load(model), held_out)
        row = {"model": model, "blocks": len(held_out), **{k: bits(blocks, k) for k in ("all", "code", "prose")}}
        with (work / "eval-blocks.jsonl").open("a") as f:
            f.writelines(json.dumps({"model": model, **b}) + "\n" for b in blocks)
        with path.open("a") as f:
            f.write(json.dumps(row) + "\n")
        print(json.dumps(row))
    return True

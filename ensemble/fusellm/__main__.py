"""python -m ensemble.fusellm prepare|map|fuse|train|eval — see docs/fusellm.md.

Long stages stop cleanly after --minutes and exit with 75 ("run me again"); running the same command
again resumes. Every stage takes the same corpus/model flags, checked against <work>/config.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from ..errors import EnsembleError
from . import corpus, fusion, pipeline
from .train import TrainConfig

AGAIN = 75  # EX_TEMPFAIL: the time budget ran out, the command resumes where it stopped


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ensemble.fusellm", description=__doc__.splitlines()[0])
    p.add_argument("stage", choices=("prepare", "map", "fuse", "train", "eval"))
    p.add_argument("--work", type=Path, default=Path("runs/fusellm"))
    p.add_argument("--sources", nargs="+", default=list(pipeline.FuseLLMConfig.sources))
    p.add_argument("--target", default=pipeline.FuseLLMConfig.target)
    p.add_argument("--block-chars", type=int, default=corpus.CorpusConfig.block_chars)
    p.add_argument("--train-blocks", type=int, default=corpus.CorpusConfig.train_blocks)
    p.add_argument("--held-out-blocks", type=int, default=corpus.CorpusConfig.held_out_blocks)
    p.add_argument("--corpus-seed", type=int, default=0, help="which training blocks (seeds share none)")
    p.add_argument("--corpus-sha256", default="", help="refuse a corpus whose content hash differs")
    p.add_argument("--shard-size", type=int, default=pipeline.FuseLLMConfig.shard_size)
    p.add_argument("--minutes", type=float, default=9.0, help="stop cleanly after this long (resumable)")
    p.add_argument("--rule", choices=fusion.RULES, default="mince", help="distill: the first source alone")
    p.add_argument("--lam", type=float, default=TrainConfig.lam, help="1.0 = the CLM-only control")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--lr", type=float, default=TrainConfig.lr)
    p.add_argument("--batch", type=int, default=TrainConfig.batch)
    p.add_argument("--save-every", type=int, default=TrainConfig.save_every)
    p.add_argument("--name", default="", help="train: run name (default fused-<rule>-s<seed> / control-s<seed>)")
    p.add_argument("--models", nargs="+", default=[], help="eval: model folders or ids (default: the target)")
    return p


def run(args) -> int:
    cfg = pipeline.FuseLLMConfig(
        tuple(args.sources), args.target,
        corpus.CorpusConfig(args.block_chars, args.train_blocks, args.held_out_blocks, args.corpus_seed,
                            args.corpus_sha256),
        args.shard_size)
    pipeline.check_config(args.work, cfg)
    deadline = time.time() + 60 * args.minutes
    if args.stage == "prepare":
        return 0 if pipeline.run_prepare(args.work, cfg, deadline) else AGAIN
    if args.stage == "map":
        print(json.dumps(pipeline.run_map(args.work, cfg), indent=1))
    elif args.stage == "fuse":
        print(json.dumps(pipeline.run_fuse(args.work, cfg, args.rule), indent=1))
    elif args.stage == "train":
        tcfg = TrainConfig(lam=args.lam, lr=args.lr, batch=args.batch, seed=args.seed, save_every=args.save_every)
        name = args.name or (f"control-s{args.seed}" if args.lam == 1 else f"fused-{args.rule}-s{args.seed}")
        folder = pipeline.run_train(args.work, cfg, tcfg, args.rule, name, deadline)
        if folder is None:
            return AGAIN
        print(folder)
    else:
        return 0 if pipeline.run_eval(args.work, cfg, args.models or [cfg.target], deadline) else AGAIN
    return 0


def main(argv=None) -> int:
    try:
        return run(parser().parse_args(argv))
    except EnsembleError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

"""python -m ensemble.compose train|eval — train a CALM composition on (prompt, answer) pairs, or score one.

    python -m ensemble.compose train --anchor A --augment B --data train.jsonl --out calm/ [--steps N]
    python -m ensemble.compose eval --model calm/ --data test.jsonl

Data: JSON lines {"prompt": ..., "answer": ...}. Training checkpoints to OUT/checkpoint.pt and resumes
from it; the finished composition is OUT/compose.json + OUT/composition.safetensors, usable as a member
(`MemberSpec(model="calm/")`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..errors import EnsembleError
from .train import Pair, TrainConfig


def read_pairs(path: Path) -> list[Pair]:
    pairs = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            row = json.loads(line)
            if set(row) != {"prompt", "answer"}:
                raise EnsembleError(f"{path}:{n}: expected the keys prompt and answer, got {sorted(row)}")
            pairs.append((row["prompt"], row["answer"]))
    if not pairs:
        raise EnsembleError(f"{path}: no examples")
    return pairs


def parse_connections(text: str):
    """'1:0,3:2' -> augmenting layer 1 feeds anchor layer 0, 3 feeds 2 (first augmenting model);
    'k/1:0' names augmenting model k."""
    from .spec import Connection

    out = []
    for item in filter(None, text.split(",")):
        model, _, pair = item.rpartition("/")
        aug, anchor = pair.split(":")
        out.append(Connection(int(model or 0), int(aug), int(anchor)))
    return tuple(out)


def train(args) -> int:
    import torch

    from .spec import ComposeConfig
    from .store import compose, composition_size, save_composed
    from .train import composition_loss, fit

    cfg = ComposeConfig(args.anchor, tuple(args.augment), parse_connections(args.connections), args.heads)
    model = compose(cfg, dtype=torch.float32, every=args.every, seed=args.seed).train()
    print(f"{len(model.cfg.connections)} connections {model.cfg.connections}; "
          f"{composition_size(model) / 1e6:.2f}M trainable parameters", flush=True)
    tc = TrainConfig(steps=args.steps, batch=args.batch, lr=args.lr, seed=args.seed, max_seconds=args.max_seconds)
    done = fit(list(model.blocks.parameters()), composition_loss(model), read_pairs(args.data),
               args.out / "checkpoint.pt", tc, log=lambda s: print(s, flush=True))
    if done:
        save_composed(model.eval(), args.out)
        print(f"saved {args.out}")
    return 0


def evaluate(args) -> int:
    import torch

    from .evaluate import accuracy
    from .store import load_composed

    tok, model = load_composed(args.model, torch.float32)
    pairs = read_pairs(args.data)[: args.limit or None]
    print(f"exact match {100 * accuracy(model.eval(), tok, pairs, model.encode_augments):.1f}% on {len(pairs)}")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ensemble.compose", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train the composition parameters (members stay frozen)")
    t.add_argument("--anchor", required=True)
    t.add_argument("--augment", action="append", required=True, help="repeat for several augmenting models")
    t.add_argument("--data", type=Path, required=True)
    t.add_argument("--out", type=Path, required=True)
    t.add_argument("--connections", default="", help="AUG:ANCHOR layer pairs, e.g. 1:0,3:2 (default: --every)")
    t.add_argument("--every", type=int, default=4, help="connect every N-th augmenting layer")
    t.add_argument("--heads", type=int, default=4)
    t.add_argument("--steps", type=int, default=2000)
    t.add_argument("--batch", type=int, default=32)
    t.add_argument("--lr", type=float, default=3e-4)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--max-seconds", type=float, default=0.0, help="checkpoint and stop after this long")
    e = sub.add_parser("eval", help="exact-match accuracy of greedy answers")
    e.add_argument("--model", type=Path, required=True)
    e.add_argument("--data", type=Path, required=True)
    e.add_argument("--limit", type=int, default=0)
    args = ap.parse_args(argv)
    try:
        return train(args) if args.command == "train" else evaluate(args)
    except EnsembleError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

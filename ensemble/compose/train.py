"""Training on (prompt, answer) pairs with progress, checkpoints and resume.

One loop serves both the composition (only `ComposedLM.blocks` train; CALM §3.3) and the small members of
the key-value arithmetic bench (all their weights train). The loss is next-token cross-entropy on the
answer ids and the end token; prompts are context only. Batches are drawn from a generator seeded by
(seed, step), so a resumed run sees exactly the batches an uninterrupted one would.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from ..training import Budget, load_checkpoint, run, save_checkpoint, scheduler

Pair = tuple[str, str]  # (prompt, answer)
FREE = ("max_seconds", "log_every", "checkpoint_every")  # settings that may change between chunks


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 2000
    batch: int = 32
    lr: float = 3e-4  # lucidrains/CALM-pytorch FineTuner and google-deepmind/calm defaults
    weight_decay: float = 1e-2
    warmup: int = 100
    clip: float = 0.5
    seed: int = 0
    checkpoint_every: int = 250
    log_every: int = 50
    max_seconds: float = 0.0  # > 0: checkpoint and stop after this long (resume with the same call)


def answer_batch(tokenizer, pairs: Sequence[Pair]) -> tuple[torch.Tensor, torch.Tensor]:
    """ids [B, T] (prompt ids as the tokenizer encodes them, then the answer's continuation ids and the
    end token, right-padded) and labels [B, T] (-100 except on answer and end positions)."""
    end = tokenizer.eos_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else end
    rows, labels = [], []
    for prompt, answer in pairs:
        p = tokenizer(prompt)["input_ids"]
        a = tokenizer(answer, add_special_tokens=False)["input_ids"] + [end]
        rows.append(p + a)
        labels.append([-100] * len(p) + a)
    width = max(map(len, rows))
    ids = torch.tensor([r + [pad] * (width - len(r)) for r in rows])
    return ids, torch.tensor([r + [-100] * (width - len(r)) for r in labels])


def fit(params: list[torch.nn.Parameter], loss_fn: Callable[[list[Pair]], torch.Tensor], data: Sequence[Pair],
        checkpoint: Path, cfg: TrainConfig, log: Callable[[str], None] = print) -> bool:
    """Train `params` on `data`; resume from `checkpoint` if it exists. True when all steps are done.
    The loop, schedule (warm-up, then cosine to 10%) and checkpoints are `ensemble/training.py`."""
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = scheduler(opt, cfg.warmup, cfg.steps, floor=0.1)
    settings = asdict(cfg)
    step, saved = load_checkpoint(checkpoint, opt, sched, settings, free=FREE)
    if saved:
        with torch.no_grad():
            for i, p in enumerate(params):
                p.copy_(saved[str(i)])
    start, losses = time.monotonic(), []

    def one_step(k: int) -> dict:
        g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + k)
        batch = [data[i] for i in torch.randint(len(data), (cfg.batch,), generator=g).tolist()]
        loss = loss_fn(batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, cfg.clip)
        opt.step()
        sched.step()
        return {"loss": loss.item()}

    def report(k: int, row: dict) -> None:
        losses.append(row["loss"])
        if k % cfg.log_every == 0 or k == cfg.steps:
            log(f"step {k}/{cfg.steps}  loss {sum(losses) / len(losses):.4f}  lr {sched.get_last_lr()[0]:.2e}  "
                f"{time.monotonic() - start:.0f}s")
            losses.clear()

    def save(k: int) -> None:
        save_checkpoint(checkpoint, {str(i): p for i, p in enumerate(params)}, opt, sched, k, settings)

    deadline = time.time() + cfg.max_seconds if cfg.max_seconds > 0 else math.inf
    done = run(cfg.steps, step, one_step, save, report, Budget(deadline), cfg.checkpoint_every)
    if not done:
        log(f"stopped after {cfg.max_seconds:.0f}s; run again to resume")
    return done


def composition_loss(model) -> Callable[[list[Pair]], torch.Tensor]:
    """CALM training: the augmenting models read the prompts, the anchor the prompt + answer."""
    def loss(batch: list[Pair]) -> torch.Tensor:
        ids, labels = answer_batch(model.tokenizer, batch)
        context = model.encode_augments([p for p, _ in batch])
        return model(input_ids=ids, labels=labels, augment=context).loss

    return loss


def lm_loss(model, tokenizer) -> Callable[[list[Pair]], torch.Tensor]:
    def loss(batch: list[Pair]) -> torch.Tensor:
        ids, labels = answer_batch(tokenizer, batch)
        return model(input_ids=ids, labels=labels).loss

    return loss

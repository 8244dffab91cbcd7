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

Pair = tuple[str, str]  # (prompt, answer)


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


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up, then cosine decay to 10%."""
    if step < cfg.warmup:
        return (step + 1) / cfg.warmup
    t = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return 0.1 + 0.45 * (1 + math.cos(math.pi * min(1.0, t)))


def fit(params: list[torch.nn.Parameter], loss_fn: Callable[[list[Pair]], torch.Tensor], data: Sequence[Pair],
        checkpoint: Path, cfg: TrainConfig, log: Callable[[str], None] = print) -> bool:
    """Train `params` on `data`; resume from `checkpoint` if it exists. True when all steps are done."""
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_at(s, cfg))
    step = _resume(checkpoint, params, opt, sched, cfg)
    start, losses = time.monotonic(), []
    while step < cfg.steps:
        g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
        batch = [data[i] for i in torch.randint(len(data), (cfg.batch,), generator=g).tolist()]
        loss = loss_fn(batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, cfg.clip)
        opt.step()
        sched.step()
        step, losses = step + 1, losses + [loss.item()]
        if step % cfg.log_every == 0 or step == cfg.steps:
            log(f"step {step}/{cfg.steps}  loss {sum(losses) / len(losses):.4f}  lr {sched.get_last_lr()[0]:.2e}  "
                f"{time.monotonic() - start:.0f}s")
            losses = []
        out_of_time = cfg.max_seconds > 0 and time.monotonic() - start > cfg.max_seconds
        if step % cfg.checkpoint_every == 0 or step == cfg.steps or out_of_time:
            _save(checkpoint, params, opt, sched, step, cfg)
        if out_of_time and step < cfg.steps:
            log(f"stopped at step {step} after {cfg.max_seconds:.0f}s; run again to resume")
            return False
    return True


def _save(path: Path, params, opt, sched, step: int, cfg: TrainConfig) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"params": [p.detach().cpu() for p in params], "opt": opt.state_dict(), "sched": sched.state_dict(),
             "step": step, "config": asdict(cfg)}
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)  # atomic: an interrupted save leaves the previous checkpoint


def _resume(path: Path, params, opt, sched, cfg: TrainConfig) -> int:
    if not path.is_file():
        return 0
    state = torch.load(path, weights_only=False)
    free = ("max_seconds", "log_every", "checkpoint_every")  # may change between chunks
    if {k: v for k, v in state["config"].items() if k not in free} != {
            k: v for k, v in asdict(cfg).items() if k not in free}:
        raise ValueError(f"{path} was written with other settings {state['config']}; delete it to start over")
    with torch.no_grad():
        for p, saved in zip(params, state["params"], strict=True):
            p.copy_(saved)
    opt.load_state_dict(state["opt"])
    sched.load_state_dict(state["sched"])
    return int(state["step"])


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

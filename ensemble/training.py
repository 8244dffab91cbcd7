"""The one training loop FuseLLM (`fusellm/train.py`) and CALM (`compose/train.py`) share: the warm-up +
cosine schedule, atomic checkpoints with exact resume, and a time budget that checkpoints and stops.

Resuming is exact: the checkpoint holds the trained tensors, the optimiser, the scheduler, the step, the
torch RNG and the settings; a checkpoint written with other settings (except the ones in `free`) is refused
rather than silently continued. Each caller draws its batches from the step number alone, so a resumed run
sees exactly the batches an uninterrupted one would.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch


def warmup_cosine(step: int, warmup: int, total: int, floor: float = 0.0) -> float:
    """LR multiplier for optimiser step `step` (0-based). Warm-up is linear from 1/warmup, never 0: the
    first step learns (transformers' get_cosine_schedule_with_warmup gives step 0 a learning rate of 0,
    which wasted the first of FuseLLM's few CPU steps). Then cosine from 1 down to `floor` at `total`."""
    if step < warmup:
        return (step + 1) / warmup
    t = min(1.0, (step - warmup) / max(1, total - warmup))
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t))


def warmup_steps(ratio: float, total: int) -> int:
    """Warm-up length from a ratio of the total steps (FuseLLM's recipe: 0.008), at least one step."""
    return max(1, round(ratio * total))


def scheduler(opt: torch.optim.Optimizer, warmup: int, total: int, floor: float = 0.0):
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda s: warmup_cosine(s, warmup, total, floor))


def save_checkpoint(path: Path, tensors: Mapping[str, torch.Tensor], opt, sched, step: int, settings: dict) -> None:
    """Atomic: an interrupted save leaves the previous checkpoint."""
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"tensors": {k: v.detach().cpu() for k, v in tensors.items()}, "opt": opt.state_dict(),
             "sched": sched.state_dict(), "step": step, "rng": torch.get_rng_state(), "settings": settings}
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path, opt, sched, settings: dict, free: Iterable[str] = ()) -> tuple[int, dict]:
    """(step, saved tensors); (0, {}) when there is no checkpoint. Raises ValueError when the checkpoint
    was written with other settings than `settings` (keys in `free` may differ between chunks)."""
    if not path.is_file():
        return 0, {}
    state = torch.load(path, weights_only=False)
    free = set(free)
    if {k: v for k, v in state["settings"].items() if k not in free} != {
            k: v for k, v in settings.items() if k not in free}:
        raise ValueError(f"{path} was written with other settings {state['settings']}; delete it to start over")
    opt.load_state_dict(state["opt"])
    sched.load_state_dict(state["sched"])
    torch.set_rng_state(state["rng"])
    return int(state["step"]), state["tensors"]


@dataclass(frozen=True)
class Budget:
    """When a chunk of training stops: once `deadline` (time.time()) has passed, or at step `stop_after`."""

    deadline: float = math.inf
    stop_after: int | None = None

    def spent(self, step: int) -> bool:
        return time.time() > self.deadline or (self.stop_after is not None and step >= self.stop_after)


def run(total: int, step: int, one_step: Callable[[int], dict], save: Callable[[int], None],
        log: Callable[[int, dict], None], budget: Budget = Budget(), checkpoint_every: int = 1) -> bool:
    """Optimiser steps `step`..`total`-1. `one_step(step)` does one and returns its log row; `save(step)`
    writes a checkpoint, every `checkpoint_every` steps, at the end, and when the budget is spent (then
    this returns False: run again to resume). A chunk always takes at least one step. True when all steps
    are done."""
    first = step
    while step < total:
        if step > first and budget.spent(step):  # every chunk makes progress, however small its budget
            save(step)
            return False
        row = one_step(step)
        step += 1
        log(step, row)
        if step % checkpoint_every == 0 or step == total:
            save(step)
    return True

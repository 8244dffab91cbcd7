"""Stage 4: continue training the target on λ·CLM + (1−λ)·fusion (FuseLLM `trainer.py`, λ = 0.9).

fusion = cross-entropy of the model against the fused soft targets; λ = 1 is the CLM-only control, which
sees the same sequences in the same order with the same steps and learning rate. The optimiser follows the
authors' recipe (AdamW β = (0.9, 0.95), weight decay 0.1, cosine with warmup ratio 0.008, clip 1.0);
the learning rate is our choice for a short CPU run (the recipe's 1e-5 is for 128 x 2048-token batches).
The loop, schedule and checkpoints are `ensemble/training.py`, shared with CALM: a checkpoint is written
every `save_every` steps and when the time budget runs out, so `train` run again continues exactly.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from ..errors import ConfigError
from ..training import Budget, load_checkpoint, run, save_checkpoint, scheduler, warmup_steps
from .fusion import FusedRecord


@dataclass(frozen=True)
class TrainConfig:
    lam: float = 0.9  # lm_loss_weight; 1.0 = CLM-only control
    lr: float = 5e-5
    batch: int = 4  # sequences per optimiser step (gradient accumulation)
    seed: int = 0  # data order
    epochs: int = 1
    warmup_ratio: float = 0.008
    weight_decay: float = 0.1
    clip: float = 1.0
    save_every: int = 8

    def __post_init__(self):
        if not 0 <= self.lam <= 1:
            raise ConfigError(f"lam must be in [0, 1], got {self.lam}")
        if self.lr <= 0 or self.batch < 1 or self.epochs < 1 or self.save_every < 1:
            raise ConfigError(f"lr, batch, epochs and save_every must be positive: {self}")


def losses(logits: torch.Tensor, tokens: torch.Tensor, ids: torch.Tensor, probs: torch.Tensor,
           lam: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """logits [N, V] predict tokens [N]; soft targets ids/probs [N, K] (id -1 = empty).
    -> (λ·CLM + (1−λ)·fusion, CLM, fusion), each a mean over the N positions."""
    logp = torch.log_softmax(logits.float(), -1)
    clm = -logp.gather(1, tokens.long()[:, None]).mean()
    picked = logp.gather(1, ids.long().clamp(min=0))
    fusion = -(torch.where(ids >= 0, probs.float(), 0.0) * picked).sum(-1).mean()
    return lam * clm + (1 - lam) * fusion, clm, fusion


def sequence_loss(model, prefix: list[int], rec: FusedRecord, lam: float):
    tokens = rec.tokens.long()
    inputs = torch.cat([torch.tensor(prefix, dtype=torch.long), tokens])[None]
    logits = model(input_ids=inputs).logits[0]  # [P+T, V]
    start = 0 if prefix else 1  # without a BOS nothing predicts the first token
    logits = logits[len(prefix) - 1 + start:-1]
    return losses(logits, tokens[start:], rec.ids[start:], rec.probs[start:], lam)


def order(n: int, cfg: TrainConfig) -> list[int]:
    g = torch.Generator().manual_seed(cfg.seed)
    return [i for _ in range(cfg.epochs) for i in torch.randperm(n, generator=g).tolist()]


def optimiser(model, cfg: TrainConfig, total_steps: int):
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=(0.9, 0.95), weight_decay=cfg.weight_decay)
    return opt, scheduler(opt, warmup_steps(cfg.warmup_ratio, total_steps), total_steps)


def train(model, prefix: list[int], records: list[FusedRecord], cfg: TrainConfig, work: Path,
          deadline: float = float("inf"), stop_after: int | None = None) -> bool:
    """Train in place; True when all steps are done. `work` holds checkpoint.pt and log.jsonl."""
    work.mkdir(parents=True, exist_ok=True)
    sequence = order(len(records), cfg)
    steps = math.ceil(len(sequence) / cfg.batch)
    opt, sched = optimiser(model, cfg, steps)
    ckpt = work / "checkpoint.pt"
    step, saved = load_checkpoint(ckpt, opt, sched, settings(cfg))
    if saved:
        model.load_state_dict(saved)
    drop_log_after(work / "log.jsonl", step)
    model.train()
    bar = tqdm(total=steps, initial=step, desc=f"train λ={cfg.lam} seed={cfg.seed}", unit="step")
    with (work / "log.jsonl").open("a") as log:

        def one_step(k: int) -> dict:
            return optimiser_step(model, prefix, [records[i] for i in sequence[k * cfg.batch:][:cfg.batch]],
                                  cfg, opt, sched)

        def write(k: int, row: dict) -> None:
            log.write(json.dumps({"step": k, **row}) + "\n")
            log.flush()
            bar.update(1)
            bar.set_postfix(loss=f"{row['loss']:.3f}")

        def save(k: int) -> None:
            save_checkpoint(ckpt, model.state_dict(), opt, sched, k, settings(cfg))

        return run(steps, step, one_step, save, write, Budget(deadline, stop_after), cfg.save_every)


def optimiser_step(model, prefix, batch: list[FusedRecord], cfg: TrainConfig, opt, sched) -> dict:
    totals = torch.zeros(3)
    for rec in batch:
        loss, clm, fusion = sequence_loss(model, prefix, rec, cfg.lam)
        (loss / len(batch)).backward()
        totals += torch.tensor([loss.item(), clm.item(), fusion.item()]) / len(batch)
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
    opt.step()
    sched.step()
    opt.zero_grad(set_to_none=True)
    return {"loss": totals[0].item(), "clm": totals[1].item(), "fusion": totals[2].item(),
            "grad_norm": float(norm), "lr": sched.get_last_lr()[0]}


def drop_log_after(path: Path, step: int) -> None:
    """Forget log rows of steps a crash lost (they are recomputed from the checkpoint)."""
    if path.exists():
        rows = [r for r in path.read_text().splitlines() if json.loads(r)["step"] <= step]
        path.write_text("".join(r + "\n" for r in rows))


def settings(cfg: TrainConfig) -> dict:
    """What a checkpoint must agree on to be resumed (all of TrainConfig; save_every may change)."""
    return {k: v for k, v in asdict(cfg).items() if k != "save_every"}

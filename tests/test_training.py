"""The training loop FuseLLM and CALM share (ensemble/training.py): schedule and checkpoints."""

import pytest
import torch

from ensemble.fusellm.train import TrainConfig, optimiser
from ensemble.training import load_checkpoint, save_checkpoint, scheduler, warmup_cosine, warmup_steps


def test_the_first_step_learns():
    """FuseLLM's schedule came from get_cosine_schedule_with_warmup, whose step 0 has learning rate 0: with
    6 optimiser steps, a sixth of the run learned nothing."""
    model = torch.nn.Linear(2, 2)
    opt, sched = optimiser(model, TrainConfig(lr=1e-3), total_steps=6)
    rates = []
    for _ in range(6):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert rates[0] > 0 and rates == sorted(rates, reverse=True)  # warm-up of one step, then cosine down


def test_warmup_then_cosine_to_the_floor():
    assert [warmup_cosine(s, 4, 10) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert warmup_cosine(4, 4, 10, floor=0.1) == pytest.approx(1.0)
    assert warmup_cosine(10, 4, 10, floor=0.1) == pytest.approx(0.1)
    assert warmup_cosine(7, 4, 10) == pytest.approx(0.5)
    assert warmup_steps(0.008, 6) == 1 and warmup_steps(0.008, 1000) == 8


def test_a_checkpoint_resumes_exactly_and_refuses_other_settings(tmp_path):
    w = torch.nn.Parameter(torch.ones(3))
    opt = torch.optim.AdamW([w], lr=0.1)
    sched = scheduler(opt, 2, 10)
    w.sum().backward()
    opt.step()
    sched.step()
    torch.manual_seed(5)
    save_checkpoint(tmp_path / "c.pt", {"w": w}, opt, sched, 1, {"lr": 0.1, "chunk": 60})
    expected = torch.rand(2)
    opt2 = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(3))], lr=0.1)
    sched2 = scheduler(opt2, 2, 10)
    step, saved = load_checkpoint(tmp_path / "c.pt", opt2, sched2, {"lr": 0.1, "chunk": 30}, free=("chunk",))
    assert step == 1 and torch.equal(saved["w"], w.detach()) and torch.equal(torch.rand(2), expected)
    assert sched2.get_last_lr() == sched.get_last_lr()
    with pytest.raises(ValueError, match="other settings"):
        load_checkpoint(tmp_path / "c.pt", opt2, sched2, {"lr": 0.2, "chunk": 60})
    assert load_checkpoint(tmp_path / "none.pt", opt2, sched2, {}) == (0, {})

"""The training loss against a hand-computed case, and exact resumption after an interruption."""

import json
import math

import pytest
import torch

from ensemble.errors import ConfigError
from ensemble.fusellm.fusion import FusedRecord
from ensemble.fusellm.train import TrainConfig, losses, train
from ensemble.models.pool import load_models
from tests.helpers import config


def test_loss_matches_the_formula_on_a_hand_computed_case():
    logits = torch.log(torch.tensor([[0.5, 0.25, 0.25], [0.25, 0.5, 0.25]]))
    tokens = torch.tensor([0, 1])
    ids = torch.tensor([[1, 2], [1, -1]])
    probs = torch.tensor([[0.5, 0.5], [1.0, 0.7]])  # the 0.7 sits on an empty column and must not count
    total, clm, fusion = losses(logits, tokens, ids, probs, lam=0.9)
    # CLM: -ln 0.5 at both positions; fusion: -(0.5 ln .25 + 0.5 ln .25) = ln 4, then -ln 0.5 = ln 2
    ln2 = math.log(2)
    assert clm.item() == pytest.approx(ln2)
    assert fusion.item() == pytest.approx(1.5 * ln2)
    assert total.item() == pytest.approx(0.9 * ln2 + 0.1 * 1.5 * ln2)
    control, _, _ = losses(logits, tokens, ids, probs, lam=1.0)
    assert control.item() == pytest.approx(ln2)


def test_bad_settings_are_config_errors():
    with pytest.raises(ConfigError):
        TrainConfig(lam=1.5)
    with pytest.raises(ConfigError):
        TrainConfig(batch=0)


def records(n: int, vocab: int, length: int = 12) -> list[FusedRecord]:
    g = torch.Generator().manual_seed(0)
    out = []
    for k in range(n):
        ids = torch.randint(0, vocab, (length, 3), generator=g).int()
        probs = torch.softmax(torch.randn(length, 3, generator=g), -1).half()
        out.append(FusedRecord(f"doc#{k}", torch.randint(0, vocab, (length,), generator=g).int(), ids, probs,
                               (1.0,), ()))
    return out


def fresh(path):
    (lm,) = load_models(config([path]).members)
    return lm.model


def test_resume_after_interruption_continues_exactly(tiny_bpe, tmp_path):
    cfg = TrainConfig(batch=2, save_every=1, lr=1e-3)
    data = records(7, 1000)
    straight = fresh(tiny_bpe)
    assert train(straight, [], data, cfg, tmp_path / "straight")
    broken = fresh(tiny_bpe)
    assert not train(broken, [], data, cfg, tmp_path / "broken", stop_after=2)
    resumed = fresh(tiny_bpe)  # a new process: weights come back from the checkpoint only
    assert train(resumed, [], data, cfg, tmp_path / "broken")
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    logs = [[json.loads(r) for r in (tmp_path / run / "log.jsonl").read_text().splitlines()]
            for run in ("straight", "broken")]
    assert [r["step"] for r in logs[1]] == [1, 2, 3, 4]
    assert logs[0] == logs[1]
    assert not torch.equal(fresh(tiny_bpe).state_dict()["lm_head.weight"], straight.state_dict()["lm_head.weight"])

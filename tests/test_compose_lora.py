"""CALM's protocol pieces: disjoint train / validation / held-out keys, the LoRA baseline sized like the
composition, and held-out keys only for the setting validation chose."""

import sys
from pathlib import Path

import pytest
import torch

from ensemble.compose import lora
from ensemble.compose.kvarith import anchor_tokenizer, augment_tokenizer, make_task, small_model
from ensemble.compose.model import ComposedLM
from ensemble.compose.spec import ComposeConfig, Connection
from ensemble.compose.store import composition_size
from ensemble.errors import ConfigError

BENCH = Path(__file__).resolve().parents[1] / "bench"


def test_key_splits_are_disjoint_and_cover_every_key():
    task = make_task(n_keys=2000, seed=1)
    splits = [set(task.train_keys), set(task.valid_keys), set(task.held_out)]
    assert [len(s) for s in splits] == [400, 200, 1400]
    assert not (splits[0] & splits[1] or splits[0] & splits[2] or splits[1] & splits[2])
    assert set().union(*splits) == set(task.values)
    assert make_task(n_keys=2000, seed=1) == task and make_task(n_keys=2000, seed=0) != task
    with pytest.raises(ConfigError):
        make_task(n_keys=5, train_frac=0.2, valid_frac=0.0)


@pytest.fixture(scope="module")
def members():
    task = make_task(n_keys=50, seed=0)
    tok, aug_tok = anchor_tokenizer(), augment_tokenizer(task, 300)
    return tok, small_model("llama", tok, 4, 64, 0), aug_tok, small_model("qwen2", aug_tok, 4, 64, 1)


def test_lora_baseline_trains_as_many_parameters_as_the_composition(members):
    tok, anchor, aug_tok, augment = members
    cfg = ComposeConfig("anchor", ("augment",), (Connection(0, 3, 0), Connection(0, 3, 2)), heads=4)
    target = composition_size(ComposedLM(cfg, anchor, tok, [augment], [aug_tok]))
    rank, unit = lora.matching_rank(anchor, target), lora.per_rank(anchor)
    ids = torch.tensor([tok("12+7=")["input_ids"]])
    with torch.no_grad():
        before = anchor(input_ids=ids).logits
    adapted = lora.with_lora(anchor, rank)
    trained = lora.trained_parameters(adapted)
    assert abs(trained - target) <= lora.TOLERANCE * target
    assert trained == rank * unit
    assert all("lora_" in n for n, p in adapted.named_parameters() if p.requires_grad)  # the anchor is frozen
    with torch.no_grad():
        assert torch.equal(adapted(input_ids=ids).logits, before)  # B starts at zero: the anchor unchanged
    with pytest.raises(ConfigError):
        lora.matching_rank(small_model("llama", tok, 4, 64, 0), int(1.5 * unit))  # no whole rank within 5%


@pytest.fixture
def report(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))
    import calm_report

    yield calm_report
    sys.modules.pop("calm_report", None)


def rows(report, scores: dict[str, int]) -> list[dict]:
    return [{"setting": s, "seed": 0, "keys": 2000, "model": "composed", "split": "validation keys", "n": 1000,
             "correct": c, "steps": 30_000, "trained_params": 1} for s, c in scores.items()]


def test_held_out_keys_wait_for_every_candidate_and_go_to_the_best_on_validation(report):
    first, second = report.CANDIDATES
    with pytest.raises(SystemExit, match=second):
        report.choose(rows(report, {first: 500}))
    assert report.choose(rows(report, {first: 500, second: 600})) == second
    assert report.choose(rows(report, {first: 700, second: 600, "pilot": 990})) == first  # the pilot never counts
    assert report.full_size(rows(report, {first: 700, second: 600})) is None  # no held-out rows yet


def test_the_readme_line_claims_full_size_only_with_held_out_rows_for_both_seeds(report):
    first, second = report.CANDIDATES
    data = rows(report, {first: 700, second: 600})
    held = [{**r, "setting": first, "seed": seed, "model": model, "split": "held-out keys", "correct": c}
            for seed in report.SEEDS for model, c in zip(report.MODELS, (10, 20, 600 + seed, 30), strict=True)
            for r in data[:1]]
    assert report.full_size(data + held[:-4]) is None  # seed 1 missing
    assert report.full_size(data + held) == first
    (line,) = report.readme_lines(data + held)
    assert f"setting {first} chosen on validation keys" in line and "composed 60.1%" in line and "LoRA 3.0%" in line

"""Teacher distributions on the target's positions, and the MinCE / AvgCE fusion rules."""

import math

import numpy as np
import pytest
import torch

from ensemble.errors import ConfigError
from ensemble.fusellm.fusion import Sparse, aligned_teacher, fuse, mapped, one_hot, top_k_probs
from ensemble.fusellm.prepare import SeqRecord


def dense(s: Sparse, vocab: int) -> torch.Tensor:
    out = torch.zeros(s.ids.shape[0], vocab)
    return out.scatter_add(1, s.ids.clamp(min=0), torch.where(s.ids >= 0, s.probs, 0.0))


def teacher(rows) -> Sparse:
    """rows: per position a {target id: prob} dict."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), -1)
    probs = torch.zeros(len(rows), width)
    for t, r in enumerate(rows):
        ids[t, :len(r)] = torch.tensor(list(r))
        probs[t, :len(r)] = torch.tensor(list(r.values()))
    return Sparse(ids, probs)


A = teacher([{0: 0.5, 1: 0.5}, {2: 1.0}])
B = teacher([{1: 0.2, 3: 0.8}, {2: 0.4, 0: 0.6}])
C = teacher([{3: 1.0}, {1: 1.0}])


def test_mince_takes_the_lowest_cross_entropy_teacher_whole():
    fused, weights = fuse([A, B, C], [1.2, 0.7, 0.9], "mince")
    assert weights == (0.0, 1.0, 0.0)
    assert torch.equal(dense(fused, 4), dense(B, 4))
    _, tie = fuse([A, B], [0.5, 0.5], "mince")
    assert tie == (1.0, 0.0)


def test_avgce_weights_are_a_softmax_of_minus_ce():
    ces = [1.2, 0.7, 0.9]
    fused, weights = fuse([A, B, C], ces, "avgce")
    expected = [math.exp(-c) / sum(math.exp(-x) for x in ces) for x in [0] for c in ces]
    assert weights == pytest.approx(expected)
    mix = sum(w * dense(t, 4) for w, t in zip(expected, [A, B, C], strict=True))
    assert torch.allclose(dense(fused, 4), mix)
    assert torch.allclose(dense(fused, 4).sum(-1), torch.ones(2))
    assert weights[1] > weights[2] > weights[0]


def test_unknown_rule_is_a_config_error():
    with pytest.raises(ConfigError):
        fuse([A], [1.0], "max")


def test_top_k_softmax_and_mapping_into_the_target_vocabulary():
    ids = torch.tensor([[4, 7, -1], [-1, -1, -1]])
    values = torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    p = top_k_probs(ids, values)
    assert p.probs[0].tolist() == pytest.approx([math.e**2 / (math.e**2 + 1), 1 / (math.e**2 + 1), 0.0])
    assert p.probs[1].sum() == 0  # a row without a prediction stays empty
    vmap = torch.full((8,), -1)
    vmap[4] = 1
    m = mapped(p, vmap)  # 7 has no target token: its mass is dropped and the row renormalised
    assert m.ids[0].tolist() == [1, -1, -1] and m.probs[0].tolist() == pytest.approx([1.0, 0.0, 0.0])
    assert torch.equal(one_hot(torch.tensor([3, 5])).ids, torch.tensor([[3], [5]]))


def record(key, tokens, top_ids, top_values, nats=1.0):
    return SeqRecord(key, torch.tensor(tokens, dtype=torch.int32), torch.tensor(top_ids, dtype=torch.int32),
                     torch.tensor(top_values, dtype=torch.float16), nats, 10)


def test_aligned_teacher_carries_matched_positions_and_falls_back_to_one_hot():
    src_pieces = [b"he", b"llo", b" wor", b"ld", b"!", b"o", b"x"]
    tgt_pieces = [b"hello", b" wor", b"ld", b"!", b"o"]
    # target "hello| wor|ld|!"; source "he|llo| wor|ld|!"
    tgt = record("k", [0, 1, 2, 3], [[-1, -1]] * 4, [[0, 0]] * 4)
    src = record("k", [0, 1, 2, 3, 4], [[-1, -1], [5, 6], [2, 3], [3, 6], [4, 5]],
                 [[0, 0], [1, 0], [3, 0], [0, 3], [5, 5]])
    vmap = np.array([0, 0, 1, 2, 3, 4, -1])  # source 6 ("x") has no target token
    dist, covered = aligned_teacher(src, tgt, src_pieces, tgt_pieces, vmap)
    d = dense(dist, 5)
    assert covered == 0.75
    assert d[0].tolist() == [1, 0, 0, 0, 0]  # 2:1 merge -> one-hot on the gold token
    assert d[1].tolist() == pytest.approx([0, math.e**3 / (1 + math.e**3), 1 / (1 + math.e**3), 0, 0])
    assert d[2].tolist() == [0, 0, 1, 0, 0]  # "ld": source id 6 has no target token, 3 keeps all the mass
    assert d[3].tolist() == pytest.approx([0, 0, 0, 0.5, 0.5])  # "!": source ids 4 and 5 -> 3 and 4


def test_distill_takes_the_first_source_alone_whatever_the_cross_entropies():
    fused, weights = fuse([A, B, C], [0.1, 5.0, 0.2], "distill")  # B, the first source, has the worst CE
    assert weights == (0.0, 1.0, 0.0)
    assert torch.equal(dense(fused, 4), dense(B, 4))
    with pytest.raises(ConfigError):
        fuse([A], [1.0], "distill")  # the target alone: no source to distil


def test_each_arms_training_loss_uses_only_its_own_teachers():
    """The fusion term is the CE against the arm's fused distribution: distill's against the first source
    only, AvgCE's against the softmax(−CE) mixture; the control's loss ignores the soft targets entirely."""
    from ensemble.fusellm.train import losses

    logits = torch.randn(2, 4, generator=torch.Generator().manual_seed(0))
    logp = torch.log_softmax(logits, -1)
    tokens = torch.tensor([0, 2])
    ces = [1.2, 0.7, 0.9]
    for rule, expected in (("distill", dense(B, 4)),
                           ("avgce", sum(w * dense(t, 4) for w, t in zip(torch.softmax(-torch.tensor(ces), 0),
                                                                        [A, B, C], strict=True)))):
        fused, _ = fuse([A, B, C], ces, rule)
        _, _, fusion = losses(logits, tokens, fused.ids, fused.probs, lam=0.9)
        assert fusion.item() == pytest.approx(-(expected * logp).sum(-1).mean().item(), rel=1e-5)
    control = [losses(logits, tokens, t.ids, t.probs, lam=1.0)[0].item() for t in (A, B, C)]
    assert control == pytest.approx([-logp[[0, 1], [0, 2]].mean().item()] * 3)

"""DeePEn on fixture models: lr 0 is the main member, the search moves toward the members' average, and
the sparse relative matrices stay close to the published dense ones on a vocabulary small enough for both."""

import pytest
import torch
import torch.nn.functional as F

from ensemble.align import make_method
from ensemble.align.deepen import DeepenOptions, inverse_search, kl_mean
from ensemble.relative import Relative, anchor_ids, build_relative, dense_rows
from tests.helpers import config, greedy_ids, load, run_fused
from tests.test_engine import prompts_for

PAIR = ["bpe-qwen2", "uni-llama"]


def dense_relative(lm, anchors) -> Relative:
    """The published matrix: dense fp32 [V, A], every entry kept."""
    emb = lm.model.get_input_embeddings().weight.detach()
    rows = dense_rows(emb, F.normalize(emb[anchors].float(), dim=-1), 100.0)
    return Relative(rows, None, len(anchors))


def deepen_choice(rels, probs, candidates) -> int:
    """Member 0 is the main member, equal weights -> the main member's id DeePEn emits."""
    target = 0
    for rel, p in zip(rels, probs, strict=True):
        top = p.topk(min(candidates, len(p)))
        target = target + rel.mix(top.indices, top.values.double()) / len(probs)
    cand = probs[0].topk(min(candidates, len(probs[0]))).indices
    return int(cand[inverse_search(rels[0], cand, probs[0][cand].double(), target, DeepenOptions()).argmax()])


@pytest.mark.parametrize("primary", [0, 1])
def test_lr_zero_is_the_main_member_alone(fixture_dirs, primary):
    paths = [fixture_dirs[n] for n in PAIR]
    models = load(paths)
    prompts = prompts_for(models)
    cfg = config(paths, "deepen", options={"lr": 0}, primary=primary)
    run, events = run_fused(models, cfg, prompts)
    main = models[primary]
    assert run.answer == main.vocab.text_bytes(greedy_ids(main, prompts[primary], 24))
    assert events[-1].stats.consulted[1 - primary] == 0  # the other member never ran


def test_search_moves_toward_the_average(fixture_dirs):
    models = load([fixture_dirs[n] for n in PAIR])
    method = make_method("deepen", models, {"lr": 0.5})
    g = torch.Generator().manual_seed(0)
    moved = 0
    for _ in range(20):
        probs = [torch.softmax(torch.randn(len(m.vocab), generator=g) * 3, -1) for m in models]
        target = method.target(probs, [0, 1])
        cand = probs[0].topk(256).indices
        before = probs[0][cand].double()
        after = inverse_search(method.relative[0], cand, before, target, method.options)
        loss = [float(kl_mean(method.relative[0].mix(cand, m), target)) for m in (before, after)]
        assert loss[1] < loss[0]
        moved += int(after.argmax()) != int(before.argmax())
    assert moved > 0  # the average really changes some choices


def test_sparse_matrices_agree_with_dense(fixture_dirs):
    """Published algorithm (dense P, the whole vocabulary searched) against ours (top-64 rows, 256
    candidates) on 120 random steps: same token nearly always, including where the search changed it."""
    models = load([fixture_dirs[n] for n in PAIR])
    space = make_method("gac", models).space
    anchors = anchor_ids(space, [m.vocab for m in models])
    dense = [dense_relative(m, a) for m, a in zip(models, anchors, strict=True)]
    sparse = [build_relative(m.model.get_input_embeddings().weight.detach(), a, 64, 100.0)
              for m, a in zip(models, anchors, strict=True)]
    g = torch.Generator().manual_seed(0)
    agree, changed, changed_agree = 0, 0, 0
    for _ in range(120):
        probs = [torch.softmax(torch.randn(len(m.vocab), generator=g) * 4, -1) for m in models]
        exact, ours = deepen_choice(dense, probs, 10**9), deepen_choice(sparse, probs, 256)
        agree += exact == ours
        if exact != int(probs[0].argmax()):
            changed += 1
            changed_agree += exact == ours
    assert changed >= 6
    assert agree >= 0.97 * 120 and changed_agree >= 0.9 * changed, (agree, changed, changed_agree)


def test_anchors_are_the_shared_bytes(fixture_dirs):
    models = load([fixture_dirs[n] for n in PAIR])
    space = make_method("gac", models).space
    anchors = anchor_ids(space, [m.vocab for m in models])
    assert len(anchors[0]) == len(anchors[1]) > 100
    for a, b in zip(*anchors, strict=True):
        assert models[0].vocab.pieces[a] == models[1].vocab.pieces[b] != b""

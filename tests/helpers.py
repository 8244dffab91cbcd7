"""Drive the engine on fixture models and compare with plain `model.generate`."""

from __future__ import annotations

import torch

from ensemble.config import EnsembleConfig, MemberSpec, SamplingConfig
from ensemble.decode.engine import Ensemble, start_run, step
from ensemble.decode.events import FUSED, Finished, Piece
from ensemble.models.pool import load_models


def config(paths, method="gac", max_new_tokens=24, **kw) -> EnsembleConfig:
    members = tuple(MemberSpec(str(p), dtype="fp32") for p in paths)
    return EnsembleConfig(members=members, method=method, sampling=SamplingConfig(max_new_tokens=max_new_tokens),
                          **kw)


def run_fused(models, cfg, prompts):
    """Decode to the end; return (run, events)."""
    method = Ensemble(models, cfg).method
    run = start_run(FUSED, models, prompts, method, torch.tensor(cfg.weights), cfg)
    events = []
    while run.done is None:
        events.extend(step(run, cfg.sampling))
    return run, events


def greedy_ids(lm, prompt, n) -> list[int]:
    """The member's own greedy answer ids from `model.generate`, up to its first end token."""
    ids = torch.tensor([prompt])
    with torch.inference_mode():
        out = lm.model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=n, do_sample=False,
                                eos_token_id=list(lm.vocab.end_ids), pad_token_id=lm.vocab.end_ids[0])
    answer = out[0, len(prompt):].tolist()
    for j, t in enumerate(answer):
        if t in lm.vocab.end_ids:
            return answer[:j]
    return answer


def pieces_and_final(events):
    pieces = [e for e in events if isinstance(e, Piece)]
    final = [e for e in events if isinstance(e, Finished)]
    assert len(final) == 1
    return pieces, final[0]


def load(paths):
    return load_models(config(paths).members)

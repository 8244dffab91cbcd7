"""The README.md model card of a trained folder: sources, corpus, settings, and the training log's summary."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

CARD = """---
base_model: {base_model}
tags: [fusellm, knowledge-fusion, ensemble-chat]
---
# {name}

{what}, trained by Ensemble Chat's `python -m ensemble.fusellm train` (FuseLLM, Wan et al., ICLR 2024).

- **Target (initial weights):** `{target}`
- **Sources:** {sources}
- **Fusion:** {fusion}
- **Corpus:** {corpus}
- **Training settings:** `{settings}`
- **Steps:** {steps}; mean loss over the last quarter of steps: {last_loss}

Load it as an Ensemble Chat member with `MemberSpec(model="<this folder>")`, or with
`AutoModelForCausalLM.from_pretrained("<this folder>")`.
"""


def hub_id(model: str) -> str:
    """`offline:NAME` -> the Hub repo its GGUF came from (the card's `base_model` must be a Hub id)."""
    from ..models.offline import MANIFEST

    twins = {f"offline:{m.name}": m.hub_twin for m in MANIFEST}
    return twins.get(model) or model


def write_card(folder: Path, cfg, tcfg, rule: str, name: str, log: Path) -> None:
    rows = [json.loads(r) for r in log.read_text().splitlines()] if log.exists() else []
    tail = rows[-max(1, len(rows) // 4):]
    last = sum(r["loss"] for r in tail) / len(tail) if tail else float("nan")
    control = tcfg.lam == 1.0
    what = ("CLM-only control: continual training on the same tokens, steps and learning rate as the fused run, "
            "without the fusion loss") if control else "The target model after knowledge fusion of the sources"
    if rule == "distill" and not control:
        what = f"The target model distilled from `{cfg.sources[0]}` alone (no fusion; a FuseLLM comparison arm)"
    c = cfg.corpus
    text = CARD.format(
        name=name, what=what, target=cfg.target, base_model=hub_id(cfg.target),
        sources=", ".join(f"`{s}`" for s in cfg.sources),
        fusion="none (λ = 1)" if control else f"{rule}, λ = {tcfg.lam} (λ·CLM + (1−λ)·fusion)",
        corpus=(f"{c.train_blocks} training blocks of ~{c.block_chars} characters, half Python standard-library "
                f"source and half English prose from installed packages' docs; held-out split by document "
                f"(10%), block sample seed {c.seed}"),
        settings=json.dumps(asdict(tcfg)), steps=len(rows), last_loss=f"{last:.4f}")
    (folder / "README.md").write_text(text)

"""Exact-match accuracy of greedy answers, batched: for members and for composed models alike."""

from __future__ import annotations

import torch

from .train import Pair


@torch.no_grad()
def greedy_answers(model, tokenizer, prompts: list[str], augment_fn=None, max_new: int = 5,
                   batch: int = 256) -> list[str]:
    """Greedy answers up to the end token. Prompts are grouped by token length, so no padding is needed;
    `augment_fn(prompts)` gives a composed model its augmenting context."""
    encoded = [tokenizer(p)["input_ids"] for p in prompts]
    out: list[str] = [""] * len(prompts)
    order = sorted(range(len(prompts)), key=lambda i: len(encoded[i]))
    groups: dict[int, list[int]] = {}
    for i in order:
        groups.setdefault(len(encoded[i]), []).append(i)
    for members in groups.values():
        for s in range(0, len(members), batch):
            idx = members[s:s + batch]
            kwargs = {"augment": augment_fn([prompts[i] for i in idx])} if augment_fn else {}
            ids = torch.tensor([encoded[i] for i in idx])
            start = ids.shape[1]
            for _ in range(max_new):
                nxt = model(input_ids=ids, logits_to_keep=1, **kwargs).logits[:, -1].argmax(-1)
                ids = torch.cat([ids, nxt[:, None]], 1)
            for row, i in zip(ids[:, start:].tolist(), idx, strict=True):
                end = row.index(tokenizer.eos_token_id) if tokenizer.eos_token_id in row else len(row)
                out[i] = tokenizer.decode(row[:end], skip_special_tokens=True)
    return out


def accuracy(model, tokenizer, pairs: list[Pair], augment_fn=None) -> float:
    got = greedy_answers(model, tokenizer, [p for p, _ in pairs], augment_fn)
    return sum(g == a for g, (_, a) in zip(got, pairs, strict=True)) / len(pairs)

"""One member's decode state: its ids, its own KV cache, and the logits for its next position.

`Member.apply(plan)` is the only place a cache is cropped. `forward_all` launches every member's forward
before reading any result, so members on different GPUs run concurrently.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import torch
from transformers import DynamicCache

from ..decode.model import LoadedModel
from .resync import ResyncPlan, plan_resync, retokenize_tail


class Member:
    def __init__(self, lm: LoadedModel, prompt: list[int], window: int):
        self.lm = lm
        self.prompt = list(prompt)
        self.answer: list[int] = []  # the member's ids for the fused answer so far
        self.window = window
        # Taken just before the first launch (`forward_all`), not here: a solo answer then reuses the prompt
        # its fused twin just prefilled, since the runs start together and the fused one launches first.
        self.cache: DynamicCache | None = None
        self.cached: list[int] = []  # ids whose keys/values are in the cache
        self.error: str | None = None
        self.forward_s = 0.0
        self.forwards = 0
        self.fed = 0
        self.cropped = 0  # cached positions thrown away by re-syncs
        self.prefilled = 0  # ids fed by the first forward (the prompt, less any reused prefix)
        # The ids of the last launch and the probabilities [V_i] it gave: a solo twin riding along reads them.
        self.last: tuple[list[int], torch.Tensor] | None = None

    @property
    def target(self) -> list[int]:
        return self.prompt + self.answer

    def take_prompt(self) -> None:
        """Start from the longest stored prefix of the prompt (kvcache.py); once, before the first forward."""
        if self.forwards == 0 and self.cache is None:
            self.cache, self.cached = self.lm.prompts.take(self.prompt)

    def launch(self) -> torch.Tensor:
        """Run the ids not yet in the cache; return the next-token logits [V_i] (not synchronised)."""
        self.take_prompt()
        feed = self.target[len(self.cached):]
        start = time.perf_counter()
        ids = torch.tensor([feed], device=self.lm.device)
        out = self.lm.model(input_ids=ids, past_key_values=self.cache, use_cache=True, logits_to_keep=1)
        if self.forwards == 0:
            self.lm.prompts.store(self.prompt, self.cache)
            self.prefilled = len(feed)
        self.cached = self.target
        self.forward_s += time.perf_counter() - start
        self.forwards += 1
        self.fed += len(feed)
        return out.logits[0, -1]

    def advance(self, own: int | None, text: bytes) -> ResyncPlan:
        """The fused answer is now `text`. Append `own` (this member's own argmax was chosen) or
        re-tokenize the tail; then crop the cache to what still matches."""
        if own is not None:
            self.answer.append(own)
        else:
            self.answer = retokenize_tail(self.answer, self.lm.vocab.pieces, text, self.lm.encode, self.window)
        plan = plan_resync(self.cached, self.target)
        self.apply(plan)
        return plan

    def apply(self, plan: ResyncPlan) -> None:
        drop = len(self.cached) - plan.keep
        if drop > 0:
            self.cropped += drop
            try:
                self.cache.crop(-drop)
            except (RuntimeError, ValueError):  # a layer that can't roll back (linear attention): refill
                self.cache = DynamicCache()  # no config: full layers, croppable at any depth
                plan = ResyncPlan(0, tuple(self.target))
            self.cached = self.cached[: plan.keep]

    def release(self) -> None:
        self.cache = None
        self.cached = []
        self.last = None


def forward_all(members: Sequence[Member], needed: Sequence[bool]) -> list[torch.Tensor | None]:
    """Each needed, live member's next-token probabilities [V_i] (fp32, CPU); None for the others.

    Every forward is launched before any result is read. A member that raises is marked failed (its
    `error` is set) and the others carry on.
    """
    for m, need in zip(members, needed, strict=True):
        if need and m.error is None:  # all before any launch: copies of one model in one answer don't
            _safely(m, m.take_prompt)  # reuse each other's prefill, so they stay bit-identical
    with torch.inference_mode():
        launched = [_launch_safely(m) if need else None for m, need in zip(members, needed, strict=True)]
        probs = [None if lg is None else torch.softmax(lg.float(), -1).cpu() for lg in launched]
    for m, p in zip(members, probs, strict=True):
        if p is not None:
            m.last = (m.cached, p)  # m.cached is the launch's own list: apply() rebinds, never mutates it
    return probs


def _launch_safely(m: Member) -> torch.Tensor | None:
    return None if m.error is not None else _safely(m, m.launch)


def _safely(m: Member, call):
    try:
        return call()
    except Exception as e:  # one member failing must not end the answer
        m.error = f"{type(e).__name__}: {e}"
        return None

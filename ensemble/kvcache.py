"""Prefix reuse of prompt keys/values across answers (vLLM's prefix caching, one entry per model)."""

from __future__ import annotations

from copy import deepcopy

from transformers import DynamicCache

from .resync import common_prefix


class PromptCache:
    """The keys/values of the last prompt a model ran. A new answer whose prompt shares a prefix with it
    (the next turn of a chat, another method on the same few-shot question) starts from a copy instead of
    a full prefill. The stored cache is never mutated: it is copied in and copied out."""

    def __init__(self):
        self.ids: list[int] = []
        self.cache: DynamicCache | None = None

    def take(self, prompt: list[int]) -> tuple[DynamicCache, list[int]]:
        ids, cache = self.ids, self.cache  # one read of each, so a concurrent store can't mix them
        keep = min(common_prefix(ids, prompt), len(prompt) - 1)
        if cache is None or keep <= 0:
            return DynamicCache(), []  # no config: full layers (no sliding window), croppable at any depth
        copy = deepcopy(cache)
        if len(ids) > keep:
            copy.crop(-(len(ids) - keep))
        return copy, list(prompt[:keep])

    def store(self, ids: list[int], cache: DynamicCache) -> None:
        self.cache, self.ids = deepcopy(cache), list(ids)

    def clear(self) -> None:
        self.cache, self.ids = None, []

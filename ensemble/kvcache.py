"""Prefix reuse of prompt keys/values across answers (vLLM's prefix caching, one entry per model)."""

from __future__ import annotations

from copy import deepcopy

from transformers import DynamicCache

from .resync import common_prefix


class PromptCache:
    """The keys/values of the last prompt a model ran. A new answer whose prompt shares a prefix with it
    (the next turn of a chat, another method on the same few-shot question) starts from a copy instead of
    a full prefill. The stored cache is never mutated: it is copied in and copied out.

    Invariant: the stored cache holds exactly len(ids) positions. `store` crops its copy to the prompt
    (a member's first forward may come answer tokens in, under GaC gating) and `take` re-checks it, so a
    wrong entry can never leak stale positions into a later answer."""

    def __init__(self):
        self.entry: tuple[tuple[int, ...], DynamicCache] | None = None  # one reference: updated atomically

    @property
    def ids(self) -> list[int]:
        entry = self.entry
        return list(entry[0]) if entry else []

    def take(self, prompt: list[int]) -> tuple[DynamicCache, list[int]]:
        entry = self.entry  # one read, so a concurrent store can't mix two entries
        if entry is None:
            return DynamicCache(), []  # no config: full layers (no sliding window), croppable at any depth
        ids, cache = entry
        keep = min(common_prefix(ids, prompt), len(prompt) - 1)
        if keep <= 0 or cache.get_seq_length() != len(ids):
            return DynamicCache(), []
        copy = deepcopy(cache)
        try:
            if len(ids) > keep:
                copy.crop(-(len(ids) - keep))
        except (RuntimeError, ValueError):  # a layer that can't roll back: prefill from scratch
            return DynamicCache(), []
        return copy, list(prompt[:keep])

    def store(self, ids: list[int], cache: DynamicCache) -> None:
        """Keep `cache`'s first len(ids) positions as the keys/values of `ids`; a cache that does not
        hold them all (or can't be cropped to them) is not stored."""
        held = cache.get_seq_length()
        if held < len(ids) or not ids:
            return
        copy = deepcopy(cache)
        try:
            if held > len(ids):
                copy.crop(len(ids))
        except (RuntimeError, ValueError):
            return
        if copy.get_seq_length() == len(ids):
            self.entry = (tuple(ids), copy)

    def clear(self) -> None:
        self.entry = None

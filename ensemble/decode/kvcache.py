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
        copy = prefix(cache, keep) if keep > 0 and cache.get_seq_length() == len(ids) else None
        if copy is None:
            return DynamicCache(), []
        return copy, list(prompt[:keep])

    def store(self, ids: list[int], cache: DynamicCache) -> None:
        """Keep `cache`'s first len(ids) positions as the keys/values of `ids`; a cache that does not
        hold them all (or can't be cropped to them) is not stored."""
        copy = prefix(cache, len(ids)) if ids else None
        if copy is not None and copy.get_seq_length() == len(ids):
            self.entry = (tuple(ids), copy)

    def clear(self) -> None:
        self.entry = None


def prefix(cache: DynamicCache, n: int) -> DynamicCache | None:
    """A copy of `cache`'s first n positions (all of it when it holds fewer); None when a layer can't be
    rolled back, and the caller prefills from scratch."""
    copy = deepcopy(cache)
    drop = copy.get_seq_length() - n
    try:
        if drop > 0:
            copy.crop(-drop)  # transformers 5: a positive crop (keep n) raises; a negative one drops
    except (RuntimeError, ValueError):
        return None
    return copy

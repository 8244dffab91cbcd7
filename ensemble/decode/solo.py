"""Ride-along: a member's solo answer reads its fused twin's forward while their ids agree (issue 17).

A solo answer's step needs its member's next-token probabilities over its own ids (prompt + solo answer).
While the fused answer keeps to what the member would say, the fused run has just computed exactly that:
the same model over the same ids. So the solo step takes the twin's probabilities instead of running a
forward; everything after (alignment, choice with the solo's own generator, attribution, text) is the
solo step's own, so its events are the ones it would have made alone. `fed` is 0 on a ridden step.

The test, every step, is on ids, not on tokens chosen: ride iff the twin's last launch ran on exactly the
solo's ids and fed exactly one new id since the last ridden step (its first launch is the prompt's
prefill). So it holds for greedy and sampled solo answers alike (a sampled solo answer draws from its own
generator and rides only while its draws happen to match the fused text's ids; in practice a step or two).
What a ridden answer computes differs from a solo run alone only in how ids were grouped into forwards:
the prompt in one prefill (as `model.generate` does; a solo run alone reuses the twin's prompt cache and
feeds the last prompt id apart), then one id per step, as both do.

At the first step that fails the test, the solo answer forks: its member takes a copy of the twin's cache
cropped to their common prefix (transformers 5: a negative crop, `kvcache.prefix`) and goes on alone. It
never rides again. A failed twin, or a copy that fails, leaves the solo member to start from the prompt
cache as it always could: slower, never wrong.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .kvcache import prefix
from .member import Member
from .resync import common_prefix


@dataclass
class Ride:
    twin: Member | None  # the fused run's copy of this member; None once forked
    fed: int = 0  # the twin's `fed` at the last ridden step
    steps: int = 0  # ridden steps: the length of the agreeing prefix, in solo steps


def ridden(ride: Ride | None, me: Member) -> list[torch.Tensor] | None:
    """The twin's probabilities for `me`'s next position when they are exactly `me`'s own; else fork and
    return None (the caller runs `me`'s own forward)."""
    if ride is None or not isinstance(ride.twin, Member):  # forked, or a served twin (no cache to share)
        return None
    twin = ride.twin
    fresh = ride.steps == 0 or twin.fed - ride.fed == 1
    if twin.error is None and twin.last is not None and fresh and twin.last[0] == me.target:
        ride.fed, ride.steps = twin.fed, ride.steps + 1
        return [twin.last[1]]
    fork(ride, me)
    return None


def fork(ride: Ride, me: Member) -> None:
    """`me` takes its own copy of the twin's cache, cropped to the ids they share (always leaving >= 1 id
    to feed, so the next logits exist)."""
    twin, ride.twin = ride.twin, None
    if twin is None or twin.error is not None or twin.cache is None or me.cache is not None:
        return
    keep = min(common_prefix(twin.cached, me.target), len(me.target) - 1)
    try:
        copy = prefix(twin.cache, keep) if keep > 0 else None
    except Exception:  # a copy that fails (memory) must not fail the answer: start from the prompt cache
        return
    if copy is not None and copy.get_seq_length() == keep:
        me.cache, me.cached = copy, me.target[:keep]

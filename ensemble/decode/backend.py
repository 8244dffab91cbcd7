"""The one protocol the decode loop owns for a member's backend: local (transformers + KV cache, member.py)
or served (HTTP + the server's prefix cache, remote.py). Loading builds objects that satisfy it
(ensemble/models/), so nothing in the loop imports the loading stack.

Every model object has `spec`, `name`, `tokenizer`, `vocab`, `encode` and `context`; every member state has
`prompt`, `answer`, `target`, `error`, the Stats counters, `advance(own, text)` and `release()`.
`forward_all` launches every needed member before reading any: served members' calls go out first (their own
threads), then local forwards run here while the servers work, then the servers' replies are read.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import torch

from ..align.vocab import ByteVocab
from ..config import MemberSpec
from .member import Member
from .member import forward_all as forward_local
from .remote import RemoteMember, RemoteModel


class MemberModel(Protocol):
    spec: MemberSpec
    tokenizer: object
    vocab: ByteVocab
    context: int

    @property
    def name(self) -> str: ...


def open_member(model: MemberModel, prompt: list[int], window: int) -> Member | RemoteMember:
    """A fresh decode state for one member of one answer."""
    if isinstance(model, RemoteModel):
        return RemoteMember(model, prompt, window)
    return Member(model, prompt, window)


def forward_all(members: Sequence, needed: Sequence[bool]) -> list[torch.Tensor | None]:
    """Each needed, live member's next-token probabilities [V_i] (fp32, CPU); None for the others."""
    calls = {i: m.submit() for i, (m, need) in enumerate(zip(members, needed, strict=True))
             if need and m.error is None and isinstance(m, RemoteMember)}
    local = [need and not isinstance(m, RemoteMember) for m, need in zip(members, needed, strict=True)]
    probs = forward_local(members, local) if any(local) else [None] * len(members)
    for i, call in calls.items():
        probs[i] = members[i].collect(call)
    return probs

"""Typed, JSON-serialisable events: what the engine streams to the CLI and the UI. No tensors.

`stream` is FUSED (-1) for the ensemble's answer, or a member index for that member's solo answer.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

FUSED = -1


@dataclass(frozen=True)
class Started:
    stream: int
    members: tuple[str, ...]
    method: str
    prompt_tokens: tuple[int, ...]  # per member
    # This answer's plan (decode/demos.py): member weights (0 = sat out), main member, the members that sat
    # out, and each member's bits per byte on the prompt's worked examples (None: not scored).
    weights: tuple[float, ...] = ()
    primary: int = 0
    dropped: tuple[int, ...] = ()
    bits_per_byte: tuple[float | None, ...] = ()


@dataclass(frozen=True)
class Piece:
    stream: int
    text: str  # complete UTF-8 text, never a partial character
    driver: int  # member index with the largest share
    shares: tuple[float, ...]  # one per member, sum to 1
    agree: tuple[bool, ...]  # whether each member's own argmax was this token
    fed: tuple[int, ...]  # ids each member ran through its model this step


@dataclass(frozen=True)
class MemberFailed:
    stream: int
    member: int
    name: str
    error: str


@dataclass(frozen=True)
class Stats:
    steps: int
    prefill_ms: float
    decode_ms: float  # total for all steps after prefill
    ms_per_step: float
    member_ms: tuple[float, ...]  # mean forward time per step, per member
    fed_per_step: tuple[float, ...]  # mean ids fed per step, per member (about 1 with working caches)
    cropped_per_step: tuple[float, ...]  # mean cached positions dropped by re-syncs, per member
    consulted: tuple[float, ...]  # fraction of steps each member's forward ran (GaC gating skips some)
    rode: int = 0  # solo answers: leading steps read from the fused twin's forward (decode/solo.py); fused: 0


@dataclass(frozen=True)
class Finished:
    stream: int
    text: str
    reason: str  # "end" | "stop" | "length" | "cancelled" | "error"
    stats: Stats


Event = Started | Piece | MemberFailed | Finished


def to_dict(event: Event) -> dict:
    return {"type": type(event).__name__, **dataclasses.asdict(event)}

"""Re-sync of each member after a fused piece: a pure plan, then one apply (in member.py).

Every member keeps its own KV cache. After each fused piece a member either appends its own token (when
the piece is exactly its own argmax: the fast path, identical to its solo greedy decode) or re-tokenizes
only the last `window` tokens of its answer plus the new bytes; the cache is then cropped to the longest
common prefix and the rest is fed. Published code re-encodes the whole text for non-primary members every
step (UniTE `unite2.py`) or drops the cache (GaC, when a token maps to several ids).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class ResyncPlan:
    keep: int  # cached positions that stay valid
    feed: tuple[int, ...]  # ids to run through the model next, after cropping the cache to `keep`


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


def plan_resync(cached: Sequence[int], target: Sequence[int]) -> ResyncPlan:
    """Crop to the common prefix, feed the rest; always feed >= 1 id so the next logits exist."""
    if not target:
        raise ValueError("a member's target sequence is empty")
    keep = min(common_prefix(cached, target), len(target) - 1)
    return ResyncPlan(keep, tuple(target[keep:]))


def incomplete_tail(data: bytes) -> int:
    """Number of trailing bytes that begin a UTF-8 character without finishing it (0 if none)."""
    for n in range(1, min(4, len(data)) + 1):
        lead = data[-n]
        if lead & 0xC0 == 0x80:  # continuation byte: keep looking for the lead byte
            continue
        need = 2 if lead >> 5 == 0b110 else 3 if lead >> 4 == 0b1110 else 4 if lead >> 3 == 0b11110 else 1
        return n if need > n else 0
    return 0


def is_char_start(data: bytes, at: int) -> bool:
    return at == 0 or at >= len(data) or (data[at] & 0xC0) != 0x80


def retokenize_tail(
    answer_ids: Sequence[int],
    pieces: Sequence[bytes],
    text: bytes,
    encode: Callable[[bytes], list[int]],
    window: int,
) -> list[int]:
    """New answer ids for the answer `text`, re-encoding from about `window` tokens back.

    answer_ids: the member's ids for the answer so far; their bytes must be a prefix of `text`.
    The re-encoded tail starts on a UTF-8 character boundary; if no consistent boundary exists in the
    window, the whole answer is re-encoded.
    """
    offsets = [0]
    for i in answer_ids:
        offsets.append(offsets[-1] + len(pieces[i]))
    if text.startswith(b"".join(pieces[i] for i in answer_ids)):
        for j in range(max(0, len(answer_ids) - window), -1, -1):
            if is_char_start(text, offsets[j]):
                return list(answer_ids[:j]) + encode(text[offsets[j]:])
    return encode(text)

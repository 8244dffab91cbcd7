"""Stage 2: map every source token id to a target token id — exact byte match first, else MinED.

FuseLLM (`vocab_mapping.py`, anchors-methods.md §5) compares token *strings* after swapping the space marker
and searches all V₂ target tokens for each source token: O(V₁·V₂). We compare exact bytes (ByteVocab), so
`Ġ`/`▁`/`<0xNN>` spellings agree, and search MinED only for the tokens with no exact match, by length bucket:
the edit distance between strings of lengths n and L is at least |n − L|, so buckets are visited in
order of |n − L| and a query stops once its best distance is no larger than the next bucket's bound.
Ties go to the smaller |n − L|, then the shorter target, then the lower target id (deterministic).
Source specials map to the target's first end id when they end a turn, else to -1 (dropped).
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
from rapidfuzz.distance import Levenshtein
from rapidfuzz.process import cdist

from ..align.vocab import ByteVocab

QUERY_CHUNK = 4096  # rows of one cdist call: 4096 x a bucket of ~10k int32 cells stays ~160 MB


@dataclass(frozen=True)
class VocabMap:
    ids: np.ndarray  # [V_src] int32 target id, -1 = no target token
    distance: np.ndarray  # [V_src] int32 edit distance of the match (0 = exact)
    exact: int
    mined: int
    seconds: float


def as_text(piece: bytes) -> str:
    # latin-1 keeps one character per byte, so distances count bytes
    return piece.decode("latin-1")


def target_buckets(tgt: ByteVocab) -> dict[int, tuple[np.ndarray, list[str]]]:
    """length -> (target ids, their strings), ids ascending."""
    by_len: dict[int, list[int]] = defaultdict(list)
    for i, p in enumerate(tgt.pieces):
        if p and i not in tgt.special:
            by_len[len(p)].append(i)
    return {n: (np.array(ids), [as_text(tgt.pieces[i]) for i in ids]) for n, ids in by_len.items()}


def min_edit(queries: list[str], n: int, buckets) -> tuple[np.ndarray, np.ndarray]:
    """Nearest target (id, distance) for queries that all have length n."""
    best_id = np.full(len(queries), -1, dtype=np.int64)
    best_d = np.full(len(queries), np.iinfo(np.int32).max, dtype=np.int64)
    longest = max(buckets)
    for gap in range(max(n, longest) + 1):
        open_rows = np.flatnonzero(best_d > gap)
        if not len(open_rows):
            break
        for length in dict.fromkeys((n - gap, n + gap)):  # shorter first on equal gap
            if length not in buckets:
                continue
            ids, strings = buckets[length]
            for lo in range(0, len(open_rows), QUERY_CHUNK):
                rows = open_rows[lo:lo + QUERY_CHUNK]
                d = cdist([queries[r] for r in rows], strings, scorer=Levenshtein.distance, dtype=np.int32)
                col = d.argmin(1)  # first minimum = lowest id
                dist = d[np.arange(len(rows)), col]
                better = dist < best_d[rows]
                best_d[rows[better]] = dist[better]
                best_id[rows[better]] = ids[col[better]]
    return best_id, best_d


def build_map(src: ByteVocab, tgt: ByteVocab) -> VocabMap:
    start = time.perf_counter()
    exact_of: dict[bytes, int] = {}
    for i, p in enumerate(tgt.pieces):
        if p and i not in tgt.special:
            exact_of.setdefault(p, i)
    ids = np.full(len(src), -1, dtype=np.int32)
    distance = np.zeros(len(src), dtype=np.int32)
    pending: dict[int, list[int]] = defaultdict(list)  # length -> source ids without an exact match
    for i, p in enumerate(src.pieces):
        if i in src.end_ids and tgt.end_ids:
            ids[i] = tgt.end_ids[0]
        elif p and i not in src.special:
            if p in exact_of:
                ids[i] = exact_of[p]
            else:
                pending[len(p)].append(i)
    buckets = target_buckets(tgt)
    for n, rows in sorted(pending.items()):
        found, d = min_edit([as_text(src.pieces[i]) for i in rows], n, buckets)
        ids[rows], distance[rows] = found, d
    mined = sum(len(r) for r in pending.values())
    exact = int((ids >= 0).sum()) - mined
    return VocabMap(ids, distance, exact, mined, time.perf_counter() - start)


def naive_nearest(query: bytes, tgt: ByteVocab) -> int:
    """The O(V₂) reference search for one token (tests, and the bench's cost estimate)."""
    text = as_text(query)
    best, best_d = -1, None
    for i, p in enumerate(tgt.pieces):
        if p and i not in tgt.special:
            d = Levenshtein.distance(text, as_text(p))
            if best_d is None or d < best_d or (d == best_d and _earlier(len(p), i, len(tgt.pieces[best]),
                                                                          best, len(query))):
                best, best_d = i, d
    return best


def _earlier(length: int, i: int, best_length: int, best: int, n: int) -> bool:
    return (abs(length - n), length, i) < (abs(best_length - n), best_length, best)

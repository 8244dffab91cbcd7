"""Stage 3a: align a source token sequence to the target's by dynamic time warping, edit-distance cost.

As `others.py:transform_step_logits` in FuseLLM (anchors-methods.md §5), but on exact bytes: the cost of
pairing source token i with target token j is the Levenshtein distance of their byte strings. Only 1:1
pairs (i and j each appear once on the path) whose tokens agree — same bytes, or the vocabulary map sends
the source token to the target token — carry the source's distribution; every other target position
falls back to a one-hot on the target's gold token.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
from rapidfuzz.distance import Levenshtein
from rapidfuzz.process import cdist

from .vocabmap import as_text


def dtw_path(src: list[bytes], tgt: list[bytes]) -> list[tuple[int, int]]:
    """The minimum-cost monotone path from (0, 0) to (n-1, m-1); on equal cost the backtrack prefers the
    diagonal step, then advancing the source only, then the target only."""
    n, m = len(src), len(tgt)
    if not n or not m:
        return []
    cost = cdist([as_text(p) for p in src], [as_text(p) for p in tgt], scorer=Levenshtein.distance,
                 dtype=np.int64).tolist()
    inf = float("inf")
    acc = [[inf] * (m + 1) for _ in range(n + 1)]  # acc[i+1][j+1]: best cost ending at (i, j)
    acc[0][0] = 0
    for i in range(n):
        row, prev, c = acc[i + 1], acc[i], cost[i]
        for j in range(m):
            row[j + 1] = c[j] + min(prev[j], prev[j + 1], row[j])
    path, i, j = [], n, m
    while i > 0 and j > 0:
        path.append((i - 1, j - 1))
        diag, up, left = acc[i - 1][j - 1], acc[i - 1][j], acc[i][j - 1]
        if diag <= up and diag <= left:
            i, j = i - 1, j - 1
        elif up <= left:
            i -= 1
        else:
            j -= 1
    return path[::-1]


def one_to_one(path: list[tuple[int, int]]) -> dict[int, int]:
    """target position -> source position, for the path's 1:1 pairs only."""
    src_count = Counter(i for i, _ in path)
    tgt_count = Counter(j for _, j in path)
    return {j: i for i, j in path if src_count[i] == 1 and tgt_count[j] == 1}


def matched_positions(src_tokens: list[int], tgt_tokens: list[int], src_pieces: list[bytes],
                      tgt_pieces: list[bytes], vmap: np.ndarray) -> dict[int, int]:
    """target position -> source position where the source distribution may stand in for the target's."""
    pairs = one_to_one(dtw_path(src_pieces, tgt_pieces))
    return {j: i for j, i in pairs.items()
            if src_pieces[i] == tgt_pieces[j] or vmap[src_tokens[i]] == tgt_tokens[j]}

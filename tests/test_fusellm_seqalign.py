"""DTW alignment of token sequences: known alignments, ties, and optimality against brute force."""

import itertools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from rapidfuzz.distance import Levenshtein

from ensemble.fusellm.seqalign import dtw_path, matched_positions, one_to_one
from ensemble.fusellm.vocabmap import as_text
from ensemble.models.pool import load_models
from tests.helpers import config


def cost(src, tgt, path):
    return sum(Levenshtein.distance(as_text(src[i]), as_text(tgt[j])) for i, j in path)


def monotone_paths(n, m):
    """Every path from (0, 0) to (n-1, m-1) with steps (1,1), (1,0), (0,1)."""
    def walk(i, j):
        if (i, j) == (n - 1, m - 1):
            yield [(i, j)]
            return
        for di, dj in ((1, 1), (1, 0), (0, 1)):
            if i + di < n and j + dj < m:
                for rest in walk(i + di, j + dj):
                    yield [(i, j), *rest]
    return walk(0, 0)


def test_known_alignment_splits_and_merges():
    src = [b"hel", b"lo", b" wor", b"ld", b" again"]
    tgt = [b"hello", b" world", b" again"]
    path = dtw_path(src, tgt)
    assert path == [(0, 0), (1, 0), (2, 1), (3, 1), (4, 2)]
    assert one_to_one(path) == {2: 4}


def test_identical_sequences_align_on_the_diagonal():
    toks = [b"def", b" f", b"(x", b"):", b"\n"]
    assert dtw_path(toks, toks) == [(i, i) for i in range(5)]
    assert one_to_one(dtw_path(toks, toks)) == {i: i for i in range(5)}


def test_ties_prefer_the_diagonal_then_the_source_step():
    # every pairing costs 0, so every path ties
    assert dtw_path([b"a", b"a", b"a"], [b"a", b"a"]) == [(0, 0), (1, 0), (2, 1)]
    assert dtw_path([b"a", b"a"], [b"a", b"a", b"a"]) == [(0, 0), (0, 1), (1, 2)]
    # (0,0) then either (1,1) directly or via (1,0)/(0,1); the diagonal costs the least
    assert dtw_path([b"ab", b"cd"], [b"ab", b"cd"]) == [(0, 0), (1, 1)]


tokens = st.lists(st.text(alphabet="ab ", min_size=1, max_size=3).map(str.encode), min_size=1, max_size=4)


@settings(max_examples=80, deadline=None)
@given(tokens, tokens)
def test_path_is_valid_and_optimal(src, tgt):
    path = dtw_path(src, tgt)
    assert path[0] == (0, 0) and path[-1] == (len(src) - 1, len(tgt) - 1)
    assert all((b[0] - a[0], b[1] - a[1]) in {(1, 1), (1, 0), (0, 1)} for a, b in itertools.pairwise(path))
    assert cost(src, tgt, path) == min(cost(src, tgt, p) for p in monotone_paths(len(src), len(tgt)))


def test_matched_positions_need_equal_bytes_or_the_vocabulary_map():
    src_tok, tgt_tok = [0, 1, 2], [5, 6, 7]
    src, tgt = [b"ab", b"cd", b"ef"], [b"ab", b"cx", b"ef"]
    vmap = np.full(3, -1)
    assert matched_positions(src_tok, tgt_tok, src, tgt, vmap) == {0: 0, 2: 2}
    vmap[1] = 6
    assert matched_positions(src_tok, tgt_tok, src, tgt, vmap) == {0: 0, 1: 1, 2: 2}


def test_real_tokenizers_align_mostly_one_to_one(tiny_bpe, tiny_uni):
    bpe, uni = load_models(config([tiny_bpe, tiny_uni]).members)
    text = "def add(a, b):\n    return a + b  # the sum\nThe quick brown fox jumps over the lazy dog."
    pieces = []
    for lm in (uni, bpe):
        ids = lm.tokenizer(text, add_special_tokens=False)["input_ids"]
        pieces.append([lm.vocab.pieces[i] for i in ids])
    # the Unigram tokenizer adds a dummy-prefix space
    assert b"".join(pieces[0]).removeprefix(b" ") == b"".join(pieces[1]) == text.encode()
    pairs = one_to_one(dtw_path(*pieces))
    same = [j for j, i in pairs.items() if pieces[0][i] == pieces[1][j]]
    assert len(same) >= len(pieces[1]) // 4
    assert list(pairs) == sorted(pairs) and list(pairs.values()) == sorted(pairs.values())

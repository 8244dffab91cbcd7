"""Vocabulary map: exact bytes first, MinED over the rest, same answer as the naive O(V₂) search."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from ensemble.align.vocab import ByteVocab
from ensemble.fusellm.vocabmap import build_map, naive_nearest
from ensemble.models.pool import load_models
from tests.helpers import config


def vocab(pieces, special=(), end=()) -> ByteVocab:
    pieces = tuple(b"" if i in special or i in end else p for i, p in enumerate(pieces))
    return ByteVocab(pieces, frozenset(special) | frozenset(end), tuple(end), (-1,) * 256, "test")


TARGET = vocab([b"<eos>", b"hello", b"help", b"world", b" the", b"a", b" wor"], end=[0])


def test_exact_bytes_win_and_nearest_string_otherwise():
    src = vocab([b" the", b"hellp", b" th", b"worlds", b"<end>", b"<pad>"], special=[5], end=[4])
    m = build_map(src, TARGET)
    assert m.ids.tolist() == [4, 1, 4, 3, 0, -1]
    assert m.distance.tolist() == [0, 1, 1, 1, 0, 0]
    assert (m.exact, m.mined) == (2, 3)


def test_tie_prefers_the_same_length_then_the_shorter_then_the_lower_id():
    # "hellp" is one edit from both "hello" (same length) and "help" (one shorter)
    assert build_map(vocab([b"hellp"]), TARGET).ids[0] == 1
    # "b" is one edit from "a" (length 1) only; "wor" is one edit from " wor" only
    assert build_map(vocab([b"b", b"wor"]), TARGET).ids.tolist() == [5, 6]
    same = vocab([b"ab", b"ba"])
    assert build_map(vocab([b"aa"]), same).ids[0] == 0


words = st.text(alphabet="abc ", min_size=1, max_size=6).map(str.encode)


@settings(max_examples=60, deadline=None)
@given(st.lists(words, min_size=1, max_size=25, unique=True), st.lists(words, min_size=1, max_size=12))
def test_bucketed_search_equals_the_naive_search(tgt_pieces, src_pieces):
    tgt = vocab(tgt_pieces)
    m = build_map(vocab(src_pieces), tgt)
    assert m.ids.tolist() == [naive_nearest(p, tgt) for p in src_pieces]


def test_real_fixture_vocabularies_agree_with_naive(tiny_bpe, tiny_uni):
    bpe, uni = (lm.vocab for lm in load_models(config([tiny_bpe, tiny_uni]).members))
    m = build_map(uni, bpe)
    assert m.exact > 100 and m.mined > 100
    rng = np.random.default_rng(0)
    for i in rng.choice(np.flatnonzero(m.distance > 0), 40, replace=False):
        assert m.ids[i] == naive_nearest(uni.pieces[i], bpe)
    for i in np.flatnonzero((m.distance == 0) & (m.ids >= 0)):
        assert uni.pieces[i] == bpe.pieces[m.ids[i]] or i in uni.end_ids

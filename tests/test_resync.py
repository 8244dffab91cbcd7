from ensemble.decode.resync import ResyncPlan, common_prefix, plan_resync, retokenize_tail

PIECES = [b"", b"a", b"b", b"ab", b" ", b"\xe6", b"\x9d\xb1", b"\xe6\x9d\xb1", b"c"]


def encode(data: bytes) -> list[int]:
    """Greedy longest match over PIECES: a stand-in tokenizer."""
    ids, i = [], 0
    while i < len(data):
        best = max((t for t in range(1, len(PIECES)) if data.startswith(PIECES[t], i)), key=lambda t: len(PIECES[t]))
        ids.append(best)
        i += len(PIECES[best])
    return ids


def test_common_prefix():
    assert common_prefix([1, 2, 3], [1, 2, 4]) == 2
    assert common_prefix([1, 2], [1, 2, 3]) == 2
    assert common_prefix([], [1]) == 0


def test_plan_feeds_only_new_tail():
    assert plan_resync([5, 1, 2], [5, 1, 2, 3]) == ResyncPlan(3, (3,))


def test_plan_crops_to_common_prefix():
    assert plan_resync([5, 1, 2], [5, 3]) == ResyncPlan(1, (3,))


def test_plan_always_feeds_one_so_logits_exist():
    assert plan_resync([5, 1, 2], [5, 1, 2]) == ResyncPlan(2, (2,))


def test_retokenize_merges_tail():
    # answer "a" as [1]; new text "ab" re-tokenizes to the merged token 3
    assert retokenize_tail([1], PIECES, b"ab", encode, window=4) == [3]


def test_retokenize_keeps_prefix_outside_window():
    ids = [1, 4, 1, 4, 1]
    new = retokenize_tail(ids, PIECES, b"a a ab", encode, window=1)
    assert new[:4] == [1, 4, 1, 4] and new[4:] == [3]


def test_window_moves_back_to_a_character_boundary():
    # "東" split as [5, 6]; a window of 1 would start mid-character, so it starts at 5
    ids = [1, 5, 6]
    assert retokenize_tail(ids, PIECES, "a東c".encode(), encode, window=1) == [1, 7, 8]


def test_inconsistent_prefix_reencodes_everything():
    assert retokenize_tail([2], PIECES, b"ab", encode, window=4) == [3]


def test_window_zero_only_appends_the_new_bytes():
    # "a" then "b": a full re-encode would merge into 3 ("ab"); window 0 keeps [1] and appends [2]
    assert retokenize_tail([1], PIECES, b"ab", encode, window=0) == [1, 2]
    # ...unless the previous ids end inside a character
    assert retokenize_tail([1, 5], PIECES, "a東".encode(), encode, window=0) == [1, 7]

"""Compatibility check: flags members far below the best, or with a different answer style."""

from ensemble.tune.compat import check, vocabulary_overlap
from ensemble.tune.scoring import MemberScore
from tests.helpers import load


class Vocab:
    def __init__(self, pieces):
        self.pieces = tuple(pieces)


def test_close_members_are_compatible():
    vocabs = [Vocab([b"a", b"b"]), Vocab([b"a", b"c"])]
    report = check([MemberScore("x", 0.50, 3.0), MemberScore("y", 0.45, 4.0)], vocabs)
    assert report.warnings == () and report.drop == () and report.primary == 0
    assert "compatible" in report.text()


def test_weak_member_is_flagged_and_down_weighted():
    vocabs = [Vocab([b"a"])] * 3
    members = [MemberScore("weak", 0.30, 3.0), MemberScore("best", 0.51, 3.0), MemberScore("ok", 0.45, 3.0)]
    report = check(members, vocabs)
    assert report.drop == (0,) and report.primary == 1
    assert "weak scores 21.0 points below best" in report.warnings[0]
    assert report.weights[0] < report.weights[2] < report.weights[1]
    assert "suggest: drop weak" in report.text()


def test_different_answer_styles_are_flagged():
    report = check([MemberScore("terse", 0.5, 2.0), MemberScore("chatty", 0.5, 9.0)], [Vocab([b"a"])] * 2)
    assert any("answer styles differ" in w for w in report.warnings) and report.drop == ()


def test_vocabulary_overlap_on_fixture_tokenizers(fixture_dirs):
    models = load([fixture_dirs["bpe-qwen2"], fixture_dirs["uni-llama"], fixture_dirs["bpe-qwen2"]])
    overlap = vocabulary_overlap([m.vocab for m in models])
    assert overlap[0][0] == 1 and overlap[0][2] == 1
    assert 0 < overlap[0][1] < 1 and 0 < overlap[1][0] < 1


def test_a_gap_within_dev_noise_is_not_flagged():
    vocabs = [Vocab([b"a"])] * 3
    members = [MemberScore("small", 0.42, 1.2, 100), MemberScore("best", 0.55, 1.6, 100),
               MemberScore("far", 0.37, 1.3, 100)]  # the offline trio's qa_wikidata dev scores
    report = check(members, vocabs)
    assert report.drop == (2,) and len(report.warnings) == 1  # 13 points < 2 SE (14.0); 18 points > 2 SE (13.9)
    exact = check([MemberScore(m.name, m.score, m.words) for m in members], vocabs)
    assert exact.drop == (0, 2)  # unknown n: the 10-point rule alone
    assert check([MemberScore(m.name, m.score, m.words, 10_000) for m in members], vocabs).drop == (0, 2)


def test_a_member_under_half_the_best_is_flagged_even_on_a_small_dev_set():
    members = [MemberScore("s", 1 / 30, 22.0, 30), MemberScore("g", 0.0, 40.2, 30), MemberScore("q", 5 / 30, 43.9, 30)]
    report = check(members, [Vocab([b"a"])] * 3)  # the offline trio on 30 GSM8K dev questions
    assert report.drop == (0, 1) and report.primary == 2  # 13.3 points < 2 SE (15.1), but 3.3% < 16.7% / 2

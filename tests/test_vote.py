"""Answer-level voting and MBR."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ensemble.tune.vote import final_answer, mbr, token_f1, vote


@pytest.mark.parametrize(("text", "answer"), [
    ("She makes 9 * 2 = $18 every day.\n#### 18", "18"),
    ("so the total is 1,000.00 dollars", "1000"),
    ("3 apples and 4 pears make 7", "7"),
    ("#### -2.50", "-2.5"),
    ("no number here", None),
])
def test_final_answer(text, answer):
    assert final_answer(text) == answer


def test_majority_wins_and_ties_go_to_the_first():
    assert vote(["... 12", "... 15", "the answer is 15", "#### 3"]) == 1
    assert vote(["#### 4", "#### 5", "#### 6"]) == 0  # no majority: the fused answer (first) stays
    assert vote(["no idea", "#### 5", "so 5"]) == 1  # an answer without a number never gathers votes


@given(st.lists(st.integers(0, 3), min_size=1, max_size=6))
def test_vote_picks_a_most_common_answer(values):
    texts = [f"#### {v}" for v in values]
    chosen = values[vote(texts)]
    assert values.count(chosen) == max(values.count(v) for v in values)


def test_mbr_picks_the_central_text():
    texts = ["the cat sat on the mat", "a cat sat on a mat", "dogs bark loudly"]
    assert mbr(texts, token_f1) in (0, 1)
    assert token_f1("a b", "a b") == 1 and token_f1("a", "b") == 0


def test_generate_vote_flag_adds_the_voted_answer(fixture_dirs, capsys):
    import json

    from ensemble.cli import main

    paths = [str(fixture_dirs["bpe-qwen2"]), str(fixture_dirs["uni-llama"])]
    args = ["generate", "--model", paths[0], "--model", paths[1], "--method", "deepen", "--dtype", "fp32",
            "--vote", "--json", "--max-new-tokens", "6", "--prompt", "1 + 2 = 3, 2 + 2 ="]
    assert main(args) == 0
    result = json.loads(capsys.readouterr().out)
    texts = [result["text"]] + [s["text"] for s in result["solo"]]
    assert result["vote"]["text"] == texts[vote(texts)]
    assert result["vote"]["from"] in ["fused"] + result["members"]

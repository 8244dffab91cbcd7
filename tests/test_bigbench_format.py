"""bench/bigbench.py formats and scores every BIG-bench task one way: the checks that keep that honest."""

import json

import pytest


@pytest.fixture
def bigbench(monkeypatch):
    from pathlib import Path

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "bench"))
    import bigbench

    return bigbench


def test_multiple_choice_needs_the_longest_matching_choice(bigbench):
    ex = {"input": "x", "target_scores": {"plausible": 1, "implausible": 0}}
    assert bigbench.is_hit(" plausible.", ex) and bigbench.is_hit("Plausible, since", ex)
    assert not bigbench.is_hit(" implausible", ex) and not bigbench.is_hit("", ex) and not bigbench.is_hit("maybe", ex)
    ex = {"input": "x", "target_scores": {"Indra": 1, "Indrajit": 0}}
    assert bigbench.is_hit("Indra", ex) and not bigbench.is_hit("Indrajit", ex)


def test_generation_targets_any_of_a_list(bigbench):
    assert bigbench.is_hit(" the parody", {"input": "x", "target": ["comedy", "parody"]})
    assert not bigbench.is_hit(" rock", {"input": "x", "target": ["comedy", "parody"]})


def test_shots_come_from_outside_the_sample_and_prefixes_are_the_tasks(bigbench, tmp_path):
    task = {"task_prefix": "Decide:\n", "example_input_prefix": "\nS: ", "example_output_prefix": "\nP? ",
            "append_choices_to_input": False,
            "examples": [{"input": f"s{i}", "target_scores": {"yes": i % 2, "no": 1 - i % 2}} for i in range(10)]}
    path = tmp_path / "t.json"
    path.write_text(json.dumps(task))
    prefix, sample = bigbench.load_task(path, 5)
    shots = [i for i in range(10) if f"S: s{i}\n" in prefix]
    assert len(shots) == 3 and not set(shots) & {i for i, _ in sample} and len(sample) == 5
    assert prefix.startswith("Decide:\n") and "choice:" not in prefix
    i, ex = sample[0]
    assert ex["prompt"] == prefix + f"\nS: s{i}\nP? "


def test_choices_are_listed_unless_the_task_says_not(bigbench):
    ex = {"input": "Who?", "target_scores": {"A": 1, "B": 0}}
    assert bigbench.render({}, ex, "A") == "\nQ: Who?\n  choice: A\n  choice: B\nA: A\n"

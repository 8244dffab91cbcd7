"""Engine invariants on tiny fixture models (seconds each, no network)."""

import pytest
import torch

from ensemble.decode.events import Finished, Piece
from ensemble.decode.prompting import prompt_ids
from tests.helpers import config, greedy_ids, load, pieces_and_final, run_fused

METHODS = ["average", "deepen", "gac", "unite"]
SINGLE = ["bpe-qwen2", "uni-llama", "uni-gemma3"]
PROMPT = [{"role": "user", "content": "def main(argv):"}]


def prompts_for(models, messages=PROMPT):
    return [prompt_ids(m.tokenizer, messages) for m in models]


@pytest.mark.parametrize("name", SINGLE)
@pytest.mark.parametrize("method", METHODS)
def test_one_member_equals_generate(fixture_dirs, name, method):
    models = load([fixture_dirs[name]])
    prompts = prompts_for(models)
    run, _ = run_fused(models, config([fixture_dirs[name]], method), prompts)
    assert run.members[0].answer == greedy_ids(models[0], prompts[0], 24)


@pytest.mark.parametrize("name", SINGLE)
@pytest.mark.parametrize("method", METHODS)
def test_two_copies_equal_one(fixture_dirs, name, method):
    models = load([fixture_dirs[name]] * 2)
    prompts = prompts_for(models)
    run, events = run_fused(models, config([fixture_dirs[name]] * 2, method), prompts)
    expected = greedy_ids(models[0], prompts[0], 24)
    assert run.members[0].answer == expected and run.members[1].answer == expected
    assert all(p.shares == (0.5, 0.5) for p in events if isinstance(p, Piece))
    _, final = pieces_and_final(events)
    assert final.stats.fed_per_step == (1.0, 1.0) and final.stats.cropped_per_step == (0.0, 0.0)


@pytest.mark.parametrize("name", ["bpe-qwen2", "uni-llama"])
@pytest.mark.parametrize("method", ["deepen", "gac", "unite"])
def test_permuted_copy_equals_original(fixture_dirs, name, method):
    paths = [fixture_dirs[name], fixture_dirs[f"{name}-permuted"]]
    models = load(paths)
    prompts = prompts_for(models)
    assert prompts[0] != prompts[1]  # the permutation really changed the ids
    run, _ = run_fused(models, config(paths, method), prompts)
    expected = greedy_ids(models[0], prompts[0], 24)
    assert run.members[0].answer == expected
    assert models[1].vocab.text_bytes(run.members[1].answer) == models[0].vocab.text_bytes(expected)


def test_average_refuses_different_vocabularies(fixture_dirs):
    from ensemble.errors import ConfigError

    paths = [fixture_dirs["bpe-qwen2"], fixture_dirs["uni-llama"]]
    with pytest.raises(ConfigError, match="identical vocabularies"):
        run_fused(load(paths), config(paths, "average"), prompts_for(load(paths)))


def check_every_launch(monkeypatch) -> list[int]:
    """Make every Member.launch assert that its cached logits equal a fresh forward over the whole sequence;
    returns the list of checked sequence lengths."""
    from ensemble.decode.member import Member

    checked = []
    launch = Member.launch

    def checked_launch(self):
        logits = launch(self)
        with torch.inference_mode():
            full = self.lm.model(input_ids=torch.tensor([self.target])).logits[0, -1]
        torch.testing.assert_close(logits, full, atol=1e-4, rtol=1e-4)
        checked.append(len(self.target))
        return logits

    monkeypatch.setattr(Member, "launch", checked_launch)
    return checked


@pytest.mark.parametrize("method", ["deepen", "gac", "unite"])
def test_cached_steps_equal_full_recompute(fixture_dirs, method, monkeypatch):
    """Every member's logits, after any crop and re-feed, equal a fresh forward over its whole sequence."""

    paths = [fixture_dirs["bpe-qwen2"], fixture_dirs["uni-llama"], fixture_dirs["uni-gemma3"]]
    models = load(paths)
    checked = check_every_launch(monkeypatch)
    run_fused(models, config(paths, method, max_new_tokens=32), prompts_for(models))
    assert max(checked) > 16  # past the gemma fixture's sliding window of 8


@pytest.mark.parametrize("method", ["deepen", "gac", "unite"])
def test_heterogeneous_stream_is_consistent(fixture_dirs, method):
    paths = [fixture_dirs["bpe-qwen2"], fixture_dirs["uni-llama"]]
    models = load(paths)
    messages = [{"role": "user", "content": "naïve café — 東京 🙂\tdef f(x):"}]
    run, events = run_fused(models, config(paths, method, max_new_tokens=40), prompts_for(models, messages))
    pieces, final = pieces_and_final(events)
    assert "".join(p.text for p in pieces) == final.text
    assert all("\ufffd" not in p.text for p in pieces)
    for p in pieces:
        assert len(p.shares) == 2 and abs(sum(p.shares) - 1) < 1e-4
        assert p.driver == max(range(2), key=p.shares.__getitem__)
    for i, m in enumerate(run.members):  # every member's ids spell exactly the fused answer
        assert m.lm.vocab.text_bytes(m.answer) == run.answer, i
    assert final.stats.steps >= 1
    assert all(f < 3 for f in final.stats.fed_per_step), final.stats


def test_prompt_prefix_is_reused_across_answers(fixture_dirs, monkeypatch):
    """A second answer whose prompt shares a prefix starts from a copy of the stored keys/values, feeds
    only the new tail, and still equals a full recompute (and the first answer's cache is untouched)."""
    check_every_launch(monkeypatch)
    paths = [fixture_dirs["uni-gemma3"], fixture_dirs["bpe-qwen2"]]
    models = load(paths)
    shared = "Q: the capital of France?\nA: Paris\n" * 3
    first = prompts_for(models, [{"role": "user", "content": shared + "Q: the colour of snow?"}])
    second = prompts_for(models, [{"role": "user", "content": shared + "Q: the sound of a cat?"}])
    run_fused(models, config(paths, "gac", max_new_tokens=8), first)
    run, events = run_fused(models, config(paths, "gac", max_new_tokens=8), second)
    fed_first_step = next(e for e in events if isinstance(e, Piece)).fed
    for i, p in enumerate(second):
        assert fed_first_step[i] < len(p) - 10, (fed_first_step, [len(p) for p in second])


def test_solo_answers_reuse_the_fused_prefill(fixture_dirs, monkeypatch):
    """With solo columns and no ride-along (test_ride_along.py), each member's solo answer starts from the
    prompt its fused twin just prefilled: it feeds one id at its first step instead of the whole prompt, every
    cached launch equals a full recompute, and the solo text equals that member decoding alone from an empty
    cache."""
    from ensemble.decode.engine import Ensemble

    checked = check_every_launch(monkeypatch)
    paths = [fixture_dirs["uni-gemma3"], fixture_dirs["bpe-qwen2"]]
    models = load(paths)
    messages = [{"role": "user", "content": "Q: the capital of France?\nA: Paris\n" * 3 + "Q: snow?"}]
    events = list(Ensemble(models, config(paths, "gac", max_new_tokens=12)).stream(messages, solo=True,
                                                                           ride_along=False))
    for i, lm in enumerate(models):
        first = next(e for e in events if isinstance(e, Piece) and e.stream == i)
        assert first.fed == (1,), (i, first.fed)
        solo = next(e for e in events if isinstance(e, Finished) and e.stream == i)
        lm.prompts.clear()
        alone = list(Ensemble([lm], config([paths[i]], "average", max_new_tokens=12)).stream(messages))
        assert next(e for e in alone if isinstance(e, Piece)).fed[0] > 20  # a full prefill
        assert solo.text == pieces_and_final(alone)[1].text, i
    assert checked

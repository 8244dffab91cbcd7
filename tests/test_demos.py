"""Per-prompt plans from the prompt's worked examples (decode/demos.py)."""

import dataclasses

import pytest
import torch

from ensemble.decode.demos import answer_positions, decide, demo_spans
from ensemble.decode.engine import Ensemble
from ensemble.decode.events import FUSED, Finished, Piece, Started
from ensemble.decode.prompting import prompt_ids
from tests.helpers import config, greedy_ids, load

DEMOS = "Q: one two\nA: three\n\nQ: four five\nA: six seven\n\n"
FEWSHOT = DEMOS + "Q: eight nine\nA:"


def user(text):
    return [{"role": "user", "content": text}]


@pytest.mark.parametrize(("text", "answers"), [
    (b"S: a\nP? plausible\n\nS: b\nP? implausible\n\nS: c\nP?", [b" plausible", b" implausible"]),
    (b"x\nQ?\nNo\n\ny\nQ?\nYes\n\nz\nQ?\n", [b"No", b"Yes"]),  # the cue is the last full line
    (b"Question: a\nAnswer: l1\nl2\n#### 3\n\nQuestion: b\nAnswer:", [b" l1\nl2\n#### 3"]),  # worked solutions
    (b"Q: a\nA: x\nQ: b\nA: y\nQ: c\nA:", [b" x", b" y"]),  # no blank lines: an answer is one line
    (b"The capital of France is Paris.\nThe capital of Spain is", []),  # no repeated cue: no demonstrations
    (b"Tell me a joke", []),
    (b"A: x\nNotA: y\nA:", [b" x"]),  # the cue must start a line
])
def test_demo_spans(text, answers):
    assert [text[s:e] for s, e in demo_spans(text)] == answers


def test_only_the_last_answers_are_scored():
    text = b"".join(b"Q: q\nA: " + b"x" * 100 + b"\n\n" for _ in range(5)) + b"Q: q\nA:"
    spans = demo_spans(text)
    assert len(spans) == 2 and spans[-1][1] == text.rfind(b"\n\n")


def test_decide():
    plan = decide([1.0, 1.2, 1.3, None], [1.0, 2.0, 1.0, 1.0], primary=3, gap=0.25)
    assert plan.primary == 0 and plan.dropped == (2,) and plan.weights == (1.0, 2.0, 0.0, 1.0)
    assert decide([None, 1.0], [1.0, 1.0], primary=0, gap=0.25).dropped == ()  # one score decides nothing
    assert decide([2.0, 1.0], [1.0, 1.0], primary=0, gap=0.0).primary == 1


@pytest.mark.parametrize("name", ["bpe-qwen2", "uni-gemma3"])
def test_answer_positions_cover_the_answers(fixture_dirs, name):
    lm = load([fixture_dirs[name]])[0]
    text = FEWSHOT.encode()
    ids = prompt_ids(lm.tokenizer, user(FEWSHOT), chat=False)
    positions = answer_positions(lm.vocab.pieces, ids, text, demo_spans(text))
    covered = b"".join(lm.vocab.pieces[ids[j]] for j in positions)
    assert b"three" in covered and b"six seven" in covered and b"Q:" not in covered


def bits_per_byte(lm, text):
    """Independent of the engine: a full forward, every position's log-softmax."""
    ids = prompt_ids(lm.tokenizer, user(text), chat=False)
    spans = demo_spans(text.encode())
    positions = answer_positions(lm.vocab.pieces, ids, text.encode(), spans)
    with torch.inference_mode():
        logp = lm.model(torch.tensor([ids])).logits[0].log_softmax(-1)
    return -sum(float(logp[j - 1, ids[j]]) for j in positions) / torch.log(torch.tensor(2.0)).item() / sum(
        e - s for s, e in spans)


@pytest.mark.parametrize("method", ["unite", "gac", "deepen"])
def test_a_member_far_behind_sits_out_and_the_best_answers_alone(fixture_dirs, method):
    """drop_gap 0: only the member that predicts the demonstrations best answers, so the fused answer is its
    own `generate` (fp32), and the others are never run."""
    paths = [fixture_dirs["bpe-qwen2"], fixture_dirs["uni-llama"]]
    models = load(paths)
    cfg = config(paths, method, max_new_tokens=8, prompt_format="plain", per_prompt="demos", drop_gap=0.0,
                 primary=1, options={"threshold": 0.5} if method == "gac" else {})
    events = list(Ensemble(models, cfg).stream(user(FEWSHOT)))
    started = next(e for e in events if isinstance(e, Started))
    expected = [bits_per_byte(m, FEWSHOT) for m in models]
    assert started.bits_per_byte == pytest.approx(expected, rel=1e-4)
    best = min(range(2), key=expected.__getitem__)
    assert started.primary == best and started.dropped == (1 - best,) and started.weights[1 - best] == 0
    final = next(e for e in events if isinstance(e, Finished))
    assert final.stats.consulted[1 - best] == 0
    lm = models[best]
    own = greedy_ids(lm, prompt_ids(lm.tokenizer, user(FEWSHOT), chat=False), 8)
    assert final.text == lm.vocab.text_bytes(own).decode(errors="ignore")


def test_no_demonstrations_changes_nothing(fixture_dirs):
    paths = [fixture_dirs["bpe-qwen2"], fixture_dirs["uni-llama"]]
    models = load(paths)
    off = config(paths, "unite", max_new_tokens=8, prompt_format="plain")
    on = dataclasses.replace(off, per_prompt="demos")
    prompt = user("def main(argv):")
    a, b = (list(Ensemble(models, c).stream(prompt, solo=True)) for c in (off, on))
    def unfed(events):  # the second run reuses the first one's prompt cache, so only `fed` may differ
        return [dataclasses.replace(e, fed=()) if isinstance(e, Piece) else e for e in events
                if not isinstance(e, Finished)]

    assert unfed(a) == unfed(b)
    assert [e.text for e in a if isinstance(e, Finished)] == [e.text for e in b if isinstance(e, Finished)]
    assert next(e for e in b if isinstance(e, Started) and e.stream == FUSED).bits_per_byte == (None, None)


def test_a_scored_prompt_is_the_prefill_and_is_scored_once(fixture_dirs):
    """The scoring forward fills the prompt cache, so the first step feeds one token; a second question with the
    same worked examples reuses the score."""
    paths = [fixture_dirs["bpe-qwen2"], fixture_dirs["uni-llama"]]
    models = load(paths)
    calls = []
    for m in models:
        m.model.register_forward_hook(lambda mod, args, kw, out, calls=calls: calls.append(kw["input_ids"].shape[1]),
                                      with_kwargs=True)
    cfg = config(paths, "unite", max_new_tokens=2, prompt_format="plain", per_prompt="demos", drop_gap=10.0)
    ensemble = Ensemble(models, cfg)
    list(ensemble.stream(user(FEWSHOT)))
    lengths = [len(prompt_ids(m.tokenizer, user(FEWSHOT), chat=False)) for m in models]
    assert sorted(calls[:2]) == sorted(lengths) and all(n == 1 for n in calls[2:])
    calls.clear()
    list(ensemble.stream(user(DEMOS + "Q: ten eleven\nA:")))
    assert max(calls) < min(lengths)  # no second scoring forward over the whole prompt


@pytest.mark.parametrize("method", ["gac", "deepen"])
def test_a_per_prompt_main_member_is_the_same_as_configuring_it(fixture_dirs, method):
    """Nobody sits out (a wide gap): the answer is the one with the best-scoring member set as primary."""
    paths = [fixture_dirs["bpe-qwen2"], fixture_dirs["uni-llama"]]
    models = load(paths)
    options = {"threshold": 0.5} if method == "gac" else {}
    on = config(paths, method, max_new_tokens=8, prompt_format="plain", per_prompt="demos", drop_gap=100.0,
                options=options)
    events = list(Ensemble(models, on).stream(user(FEWSHOT)))
    best = next(e for e in events if isinstance(e, Started)).primary
    fixed = dataclasses.replace(on, per_prompt="off", primary=best)
    again = list(Ensemble(models, fixed).stream(user(FEWSHOT)))
    text = [next(e.text for e in run if isinstance(e, Finished)) for run in (events, again)]
    assert text[0] == text[1]
    if method == "deepen":  # its main member has the last word, so the choice shows in the answer
        other = dataclasses.replace(fixed, primary=1 - best)
        assert next(e for e in Ensemble(models, other).stream(user(FEWSHOT)) if isinstance(e, Finished)).text != text[0]

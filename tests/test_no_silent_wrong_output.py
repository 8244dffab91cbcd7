"""Each answer that used to be silently wrong (issue 13), on tiny fixture models in fp32: the prompt cache
after a late first forward, a failing prompt-cache copy, DeePEn's weights, devices in DeePEn's step, a
member's own context, padded lm_heads under `average`, and NaN sampling settings."""

import dataclasses

import pytest
import torch

from ensemble.align.relative import Exact
from ensemble.align.shared import identity_space
from ensemble.align.vocab import build_byte_vocab
from ensemble.config import EnsembleConfig, MemberSpec, SamplingConfig
from ensemble.decode.engine import Ensemble
from ensemble.decode.events import Finished, MemberFailed
from ensemble.decode.member import Member, forward_all
from ensemble.errors import ConfigError
from tests.fakedevice import Placed
from tests.helpers import config, greedy_ids, load, run_fused
from tests.test_engine import PROMPT, prompts_for

PAIR = ["bpe-qwen2", "uni-llama"]


def answers(models, cfg, messages=PROMPT):
    events = list(Ensemble(models, cfg).stream(messages, solo=True))
    return {e.stream: e.text for e in events if isinstance(e, Finished)}, events


def test_a_late_first_forward_stores_exactly_the_prompt(fixture_dirs):
    """Under GaC gating a member's first forward may come answer tokens in: its cache then holds prompt +
    answer, and only the prompt's positions may be stored under the prompt's ids."""
    paths = [fixture_dirs[n] for n in PAIR]
    models = load(paths)
    cfg = config(paths, "unite", max_new_tokens=12)
    clean, _ = answers(models, cfg)
    lm = models[1]
    prompt = prompts_for(models)[1]
    member = Member(lm, prompt, window=8)
    member.answer = greedy_ids(lm, prompt, 5)  # five answer tokens in before the member's first forward
    lm.prompts.clear()  # so the entry below can only come from that late forward
    forward_all([member], [True])
    cache, cached = lm.prompts.take(prompt + [0])  # the late forward's cache, cropped to the prompt, reused
    assert cached == prompt and cache.get_seq_length() == len(prompt)
    again, _ = answers(models, cfg)
    assert again == clean  # every later answer that reuses the prompt is unchanged, fused and solo
    ids, cache = lm.prompts.entry
    assert list(ids) == prompt and cache.get_seq_length() == len(prompt)
    for m in models:
        m.prompts.clear()
    assert answers(models, cfg)[0] == clean  # and equal to a full recompute


def test_take_refuses_an_entry_whose_cache_disagrees_with_its_ids(fixture_dirs):
    (lm,) = load([fixture_dirs["bpe-qwen2"]])
    prompt = prompts_for([lm])[0]
    member = Member(lm, prompt + greedy_ids(lm, prompt, 3), window=8)
    forward_all([member], [True])  # a cache of len(prompt) + 3 positions
    lm.prompts.entry = (tuple(prompt), member.cache)  # as the old store filed it
    cache, cached = lm.prompts.take(prompt + [5])
    assert cached == [] and cache.get_seq_length() == 0


def test_a_failing_prompt_cache_fails_that_member_only(fixture_dirs, monkeypatch):
    paths = [fixture_dirs[n] for n in PAIR]
    models = load(paths)
    cfg = config(paths, "unite", max_new_tokens=12)

    def broken(prompt):
        raise RuntimeError("crop failed")

    monkeypatch.setattr(models[1].prompts, "take", broken)
    prompts = prompts_for(models)
    run, events = run_fused(models, cfg, prompts)
    failed = [e for e in events if isinstance(e, MemberFailed)]
    assert [f.member for f in failed] == [1] and "crop failed" in failed[0].error
    assert events[-1].reason == "length"  # the other member finished the answer alone
    assert run.members[0].answer == greedy_ids(models[0], prompts[0], 12)


def test_deepen_fuses_with_the_configs_weights(fixture_dirs):
    """Models loaded once (weight 1 in their specs) and a config with other weights: DeePEn must use the
    config's. With the second member's weight near 0 the answer is the main member's own."""
    paths = [fixture_dirs[n] for n in PAIR]
    models = load(paths)
    prompts = prompts_for(models)
    main = models[0].vocab.text_bytes(greedy_ids(models[0], prompts[0], 24))

    def deepen(weights):
        members = tuple(MemberSpec(str(p), dtype="fp32", weight=w) for p, w in zip(paths, weights, strict=True))
        cfg = EnsembleConfig(members=members, method="deepen", sampling=SamplingConfig(max_new_tokens=24))
        return run_fused(models, cfg, prompts)[0].answer

    assert deepen((1.0, 1.0)) != main  # equal weights move the answer...
    assert deepen((1.0, 1e-12)) == main  # ...a near-zero weight does not


def test_deepen_keeps_its_step_on_one_device(fixture_dirs):
    """Members on two GPUs and probabilities on the CPU (as forward_all returns them): every op of the
    step must see one device. `Placed` tensors raise like CUDA does when an op mixes devices."""
    paths = [fixture_dirs[n] for n in PAIR]
    models = load(paths)
    method = Ensemble(models, config(paths, "deepen")).method
    g = torch.Generator().manual_seed(0)
    probs = [torch.softmax(torch.randn(len(m.vocab), generator=g) * 4, -1) for m in models]
    weights = torch.ones(2)
    expected = method.align(probs, weights)
    method.relative = [Exact(Placed(r.embeddings, f"cuda:{i}"), Placed(r.anchor_rows, f"cuda:{i}"), r.temperature)
                       for i, r in enumerate(method.relative)]
    placed = method.align([Placed(p, "cpu") for p in probs], Placed(weights, "cpu"))
    assert placed.fused.device.type == "cpu"
    assert torch.equal(placed.support, expected.support) and torch.allclose(placed.fused, expected.fused)


def test_no_member_runs_past_its_own_context(fixture_dirs):
    """One fused piece can be several member tokens. uni-llama spells this 24-step answer in 27 tokens, so a
    context of prompt + 24 fits the prompt budget but not the answer: the answer must stop at the limit."""
    paths = [fixture_dirs[n] for n in PAIR]
    models = load(paths)
    prompts = prompts_for(models)
    cfg = config(paths, "unite", max_new_tokens=24)
    free, _ = run_fused(models, cfg, prompts)
    assert len(free.members[1].answer) > free.steps  # the expansion this test is about
    limit = len(prompts[1]) + 24
    models[1] = dataclasses.replace(models[1], context=limit)
    seen = []
    forward = models[1].model.forward

    def spy(*args, **kwargs):
        past = kwargs["past_key_values"].get_seq_length()
        seen.append(past + kwargs["input_ids"].shape[1])
        return forward(*args, **kwargs)

    models[1].model.forward = spy
    try:
        run, events = run_fused(models, cfg, prompts)
    finally:
        del models[1].model.forward
    assert max(seen) <= limit
    assert events[-1].reason == "length" and run.steps < free.steps


def test_average_takes_one_tokenizer_over_padded_heads(fixture_dirs):
    """Qwen2.5-0.5B and -7B share a tokenizer but have 151,936 and 152,064 lm_head rows."""
    (lm,) = load([fixture_dirs["bpe-qwen2"]])
    n = len(lm.vocab)
    padded = build_byte_vocab(lm.tokenizer, n + 64)
    space = identity_space([lm.vocab, padded])
    assert space is not None and len(space) == n
    assert len(space.to_shared[1]) == n + 64 and (space.to_shared[1][n:] == -1).all()
    big = dataclasses.replace(lm, vocab=padded)
    method = Ensemble([lm, big], config([fixture_dirs["bpe-qwen2"]] * 2, "average")).method
    p = torch.softmax(torch.randn(n), -1)
    q = torch.cat([p, torch.zeros(64)])
    aligned = method.align([p, q], torch.ones(2))
    assert torch.allclose(aligned.probs[0], aligned.probs[1]) and aligned.top[0] == aligned.top[1]


@pytest.mark.parametrize("field", ["temperature", "top_p"])
@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_nan_and_inf_sampling_settings_are_config_errors(field, value):
    with pytest.raises(ConfigError, match=field):
        SamplingConfig(**{field: value})


def test_cli_temperature_nan_is_one_line(capsys, monkeypatch):
    import ensemble.models.pool
    from ensemble.cli import main

    monkeypatch.setattr(ensemble.models.pool, "load_models", lambda *a, **k: pytest.fail("loaded models"))
    assert main(["generate", "--model", "a/b", "--temperature", "nan", "--prompt", "hi"]) == 2
    err = capsys.readouterr().err.strip()
    assert "temperature" in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_prompt_cache_entry_is_one_reference(fixture_dirs):
    """A store replaces one attribute, so a concurrent `take` sees the old entry or the new one, never
    the new ids with the old cache."""
    (lm,) = load([fixture_dirs["bpe-qwen2"]])
    prompt = prompts_for([lm])[0]
    member = Member(lm, prompt, window=8)
    forward_all([member], [True])
    lm.prompts.clear()
    lm.prompts.store(prompt, member.cache)
    assert vars(lm.prompts).keys() == {"entry"}
    assert lm.prompts.entry[1].get_seq_length() == len(prompt)

"""Ride-along solo answers (decode/solo.py, issue 17) on tiny fixture models in fp32: the same events as solo
answers that run every forward themselves, solo ids equal to each member's own `model.generate`, forks whose
caches equal a full recompute, every cache freed on stop, a failing member still isolated."""

import dataclasses

import pytest

import ensemble.decode.engine as engine
from ensemble.config import SamplingConfig
from ensemble.decode.engine import Ensemble
from ensemble.decode.events import FUSED, Finished, MemberFailed, Piece
from tests.helpers import config, greedy_ids, load
from tests.test_engine import check_every_launch, prompts_for

TRIO = ["bpe-qwen2", "uni-llama", "uni-gemma3"]
MESSAGES = [{"role": "user", "content": "def main(argv):"}]


def spy_runs(monkeypatch) -> list:
    """Every Run the engine starts, in order (fused first, then the solo answers)."""
    runs = []

    def start_run(*args, **kwargs):
        runs.append(real(*args, **kwargs))
        return runs[-1]

    real = engine.start_run
    monkeypatch.setattr(engine, "start_run", start_run)
    return runs


def comparable(events) -> list:
    """Events as the UI reads them, less what ride-along changes on purpose: `fed` on ridden steps (no forward
    ran) and the timings and counters in Stats."""
    out = []
    for e in events:
        if isinstance(e, Piece):
            e = dataclasses.replace(e, fed=())
        elif isinstance(e, Finished):
            e = (e.stream, e.text, e.reason)
        out.append(e)
    return out


def stream(models, cfg, ride_along, messages=MESSAGES, **kw):
    for lm in models:  # every run prefills in one piece (a reused prompt prefix moves fp32 values by ~1e-6)
        lm.prompts.clear()
    return list(Ensemble(models, cfg).stream(messages, solo=True, ride_along=ride_along, **kw))


def finals(events) -> dict:
    return {e.stream: e for e in events if isinstance(e, Finished)}


@pytest.mark.parametrize("method,options", [("gac", {}), ("unite", {}), ("gac", {"threshold": 0.5})])
def test_solo_answers_ride_along_then_fork_and_still_equal_generate(fixture_dirs, monkeypatch, method, options):
    paths = [fixture_dirs[n] for n in TRIO]
    models = load(paths)
    cfg = config(paths, method, max_new_tokens=24, options=options)
    alone = stream(models, cfg, ride_along=False)
    runs = spy_runs(monkeypatch)
    checked = check_every_launch(monkeypatch)  # every forked cache, re-fed, equals a full recompute
    rode = stream(models, cfg, ride_along=True)
    assert comparable(rode) == comparable(alone)
    prompts = prompts_for(models)
    done = finals(rode)
    for i, lm in enumerate(models):
        solo = runs[1 + i]
        assert solo.stream == i and solo.members[0].answer == greedy_ids(lm, prompts[i], 24), i
        stats = done[i].stats
        assert stats.rode == solo.ride.steps and solo.members[0].forwards == stats.steps - stats.rode, i
    rides = [done[i].stats.rode for i in range(3)]
    assert max(rides) >= 1, rides  # some solo answer did ride...
    assert any(r < done[i].stats.steps for i, r in enumerate(rides)), rides  # ...and some forked
    assert checked
    assert sum(e.fed == (0,) for e in rode if isinstance(e, Piece) and e.stream != FUSED) > 0


def test_a_member_that_always_agrees_rides_the_whole_answer(fixture_dirs, monkeypatch):
    """Two copies of one model: the fused answer is each copy's own greedy answer, so each solo answer runs
    no forward of its own and never copies a cache."""
    paths = [fixture_dirs["bpe-qwen2"]] * 2
    models = load(paths)
    runs = spy_runs(monkeypatch)
    events = stream(models, config(paths, "gac", max_new_tokens=20), ride_along=True)
    expected = greedy_ids(models[0], prompts_for(models)[0], 20)
    for i in (0, 1):
        solo = runs[1 + i]
        stats = finals(events)[i].stats
        assert solo.members[0].answer == expected
        assert stats.rode == stats.steps and solo.members[0].forwards == 0 and stats.consulted == (0.0,)
    assert finals(events)[0].text == finals(events)[FUSED].text


@pytest.mark.parametrize("temperature,top_p", [(0.8, 0.9), (1.5, 1.0)])
def test_sampled_solo_answers_are_unchanged_by_ride_along(fixture_dirs, temperature, top_p):
    """A sampled solo answer draws from its own generator; it rides only while its ids are the fused twin's,
    so the same seed gives the same text with ride-along or without."""
    paths = [fixture_dirs[n] for n in TRIO]
    models = load(paths)
    cfg = dataclasses.replace(config(paths, "unite", max_new_tokens=20),
                              sampling=SamplingConfig(max_new_tokens=20, temperature=temperature, top_p=top_p,
                                                      seed=7))
    assert comparable(stream(models, cfg, ride_along=True)) == comparable(stream(models, cfg, ride_along=False))


@pytest.mark.parametrize("how", ["should_stop", "close"])
def test_every_cache_is_freed_on_stop(fixture_dirs, monkeypatch, how):
    """Stopped mid-answer, after some solo answers forked (their own cache copies) and others still ride."""
    paths = [fixture_dirs[n] for n in TRIO]
    models = load(paths)
    runs = spy_runs(monkeypatch)
    events = []

    def stop() -> bool:
        return how == "should_stop" and sum(isinstance(e, Piece) for e in events) >= 30

    gen = Ensemble(models, config(paths, "gac", max_new_tokens=40)).stream(MESSAGES, solo=True, should_stop=stop)
    for e in gen:
        events.append(e)
        if sum(isinstance(e, Piece) for e in events) == 30:
            assert any(r.ride.twin is None and r.members[0].cache is not None for r in runs[1:])  # a fork's copy
            if how == "close":
                gen.close()
                break
    if how == "should_stop":
        assert "cancelled" in {e.reason for e in finals(events).values()}
    members = [m for r in runs for m in r.members]
    assert len(runs) == 4 and all(m.cache is None and m.last is None and m.cached == [] for m in members)


def test_a_member_failing_mid_answer_is_still_isolated(fixture_dirs):
    """uni-llama raises once its sequence passes a length: its fused twin and its solo answer fail at the
    same step as without ride-along, and every other stream goes on unchanged."""
    paths = [fixture_dirs[n] for n in TRIO]
    models = load(paths)
    limit = len(prompts_for(models)[1]) + 6
    forward = models[1].model.forward

    def failing(*args, **kwargs):
        if kwargs["past_key_values"].get_seq_length() + kwargs["input_ids"].shape[1] > limit:
            raise RuntimeError("device lost")
        return forward(*args, **kwargs)

    models[1].model.forward = failing
    try:
        cfg = config(paths, "unite", max_new_tokens=16)
        rode, alone = stream(models, cfg, ride_along=True), stream(models, cfg, ride_along=False)
    finally:
        del models[1].model.forward
    assert comparable(rode) == comparable(alone)
    failed = [(e.stream, e.member) for e in rode if isinstance(e, MemberFailed)]
    assert sorted(failed) == [(FUSED, 1), (1, 0)]
    done = finals(rode)
    assert done[1].reason == "error" and done[FUSED].reason == "length"
    assert done[0].reason == done[2].reason == "length"


def test_ride_along_off_runs_every_solo_forward(fixture_dirs, monkeypatch):
    paths = [fixture_dirs[n] for n in TRIO[:2]]
    models = load(paths)
    runs = spy_runs(monkeypatch)
    events = stream(models, config(paths, "gac", max_new_tokens=8), ride_along=False)
    for i in (0, 1):
        stats = finals(events)[i].stats
        assert runs[1 + i].ride is None and stats.rode == 0 and runs[1 + i].members[0].forwards == stats.steps

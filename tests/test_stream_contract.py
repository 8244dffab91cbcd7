"""The streaming contract: events, stopping, member failure, sampling, and the CLI's JSON."""

import dataclasses
import json

import pytest
import torch

from ensemble.config import SamplingConfig
from ensemble.decode.choose import choose, top_p_filter
from ensemble.decode.engine import generate_stream
from ensemble.decode.events import FUSED, Finished, MemberFailed, Piece, Started, to_dict
from tests.helpers import config, load

MESSAGES = [{"role": "user", "content": "def main(argv):"}]


@pytest.fixture
def pair(fixture_dirs):
    paths = [fixture_dirs["bpe-qwen2"], fixture_dirs["uni-llama"]]
    return paths, load(paths)


def test_events_are_json_and_carry_no_tensors(pair):
    paths, models = pair
    events = list(generate_stream(models, config(paths, "unite"), MESSAGES, solo=True))
    kinds = {type(e) for e in events}
    assert {Started, Piece, Finished} <= kinds
    for e in events:
        assert dataclasses.is_dataclass(e) and e.__dataclass_params__.frozen
        json.dumps(to_dict(e))
    finished = {e.stream: e for e in events if isinstance(e, Finished)}
    assert set(finished) == {FUSED, 0, 1}
    for stream, fin in finished.items():
        assert "".join(e.text for e in events if isinstance(e, Piece) and e.stream == stream) == fin.text


def test_should_stop_ends_every_stream_and_frees_caches(pair, monkeypatch):
    from ensemble.decode.member import Member

    paths, models = pair
    released = []
    monkeypatch.setattr(Member, "release", lambda self: released.append(self))
    steps = []
    events = []
    for e in generate_stream(models, config(paths, "gac", max_new_tokens=50), MESSAGES, solo=True,
                             should_stop=lambda: len(steps) >= 3):
        events.append(e)
        if isinstance(e, Piece) and e.stream == FUSED:
            steps.append(e)
    reasons = {e.stream: e.reason for e in events if isinstance(e, Finished)}
    assert reasons == {FUSED: "cancelled", 0: "cancelled", 1: "cancelled"}
    assert len(released) == 4  # 2 fused members + 2 solo members


def test_closing_the_generator_frees_caches(pair, monkeypatch):
    from ensemble.decode.member import Member

    paths, models = pair
    release = Member.release
    released = []
    monkeypatch.setattr(Member, "release", lambda self: released.append(self) or release(self))
    stream = generate_stream(models, config(paths, "gac", max_new_tokens=50), MESSAGES)
    next(e for e in stream if isinstance(e, Piece))
    assert not released
    stream.close()
    assert len(released) == 2 and all(m.cache is None for m in released)


def test_member_failing_mid_answer_others_carry_on(pair, monkeypatch):
    from ensemble.decode.member import Member

    paths, models = pair
    launch = Member.launch
    calls = {"n": 0}

    def flaky(self):
        if self.lm is models[1]:
            calls["n"] += 1
            if calls["n"] == 4:
                raise RuntimeError("CUDA error: device lost")
        return launch(self)

    monkeypatch.setattr(Member, "launch", flaky)
    events = list(generate_stream(models, config(paths, "unite", max_new_tokens=12), MESSAGES))
    failed = [e for e in events if isinstance(e, MemberFailed)]
    assert len(failed) == 1 and failed[0].member == 1 and "device lost" in failed[0].error
    final = [e for e in events if isinstance(e, Finished)][0]
    assert final.reason == "length" and final.stats.steps == 12
    after = events.index(failed[0])
    assert all(e.shares == (1.0, 0.0) for e in events[after:] if isinstance(e, Piece))


def test_sampling_is_seeded_and_differs_from_greedy(pair):
    paths, models = pair

    def text(seed, temperature):
        cfg = dataclasses.replace(config(paths, "gac", max_new_tokens=16),
                                  sampling=SamplingConfig(max_new_tokens=16, temperature=temperature, seed=seed))
        return [e for e in generate_stream(models, cfg, MESSAGES) if isinstance(e, Finished)][0].text

    assert text(1, 1.0) == text(1, 1.0)
    assert len({text(s, 1.5) for s in range(4)} | {text(0, 0.0)}) > 1


def test_top_p_keeps_the_smallest_head():
    probs = torch.tensor([0.5, 0.3, 0.15, 0.05])
    assert torch.equal(top_p_filter(probs, 0.7) > 0, torch.tensor([True, True, False, False]))
    assert torch.equal(top_p_filter(probs, 0.01) > 0, torch.tensor([True, False, False, False]))
    assert choose(probs, SamplingConfig(), torch.Generator()) == 0


def test_cli_json_contract(fixture_dirs, capsys):
    from ensemble.cli import main

    a, b = str(fixture_dirs["bpe-qwen2"]), str(fixture_dirs["uni-llama"])
    code = main(["generate", "--model", a, "--model", b, "--method", "unite", "--prompt", "naïve 東京 🙂",
                 "--max-new-tokens", "12", "--dtype", "fp32", "--solo", "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert "".join(p["text"] for p in out["pieces"]) == out["text"]
    assert all(set(p) == {"text", "driver", "shares"} and len(p["shares"]) == 2 for p in out["pieces"])
    assert out["members"] == ["bpe-qwen2", "uni-llama"]
    assert [s["member"] for s in out["solo"]] == out["members"]
    assert out["timing"]["steps"] >= 1


@pytest.mark.parametrize("threshold", [1.0, 1e-9])
def test_gac_gating_consults_others_only_when_primary_is_unsure(pair, threshold):
    paths, models = pair

    def consulted(threshold):
        cfg = dataclasses.replace(config(paths, "gac", max_new_tokens=10), options={"threshold": threshold})
        events = list(generate_stream(models, cfg, MESSAGES))
        return [e for e in events if isinstance(e, Finished)][0].stats.consulted, events

    ungated, _ = consulted(0.0)
    gated, events = consulted(threshold)
    if threshold == 1.0:  # the primary is never sure: gating changes nothing (half-written characters still may)
        assert gated == ungated
    else:
        assert gated[1] == 0.0
        assert all(p.shares == (1.0, 0.0) for p in events if isinstance(p, Piece))


def test_interleaved_streams_on_shared_models_do_not_interfere(pair):
    """Two answers decoded step by step in alternation (as two users would be) equal the same answers
    decoded one after the other: members share weights and the prompt cache, never decode state."""
    from ensemble.decode.engine import Ensemble

    paths, models = pair
    ensemble = Ensemble(models, config(paths, "unite", max_new_tokens=16))
    questions = [[{"role": "user", "content": "def main(argv):"}], [{"role": "user", "content": "class Parser:"}]]

    def final(events):
        return [e.text for e in events if isinstance(e, Finished)]

    alone = [final(ensemble.stream(q, solo=True)) for q in questions]
    streams = [ensemble.stream(q, solo=True) for q in questions]
    together = [[], []]
    while any(s is not None for s in streams):
        for i, s in enumerate(streams):
            if s is not None:
                event = next(s, None)
                if event is None:
                    streams[i] = None
                else:
                    together[i].append(event)
    assert [final(t) for t in together] == alone

"""Served members against a fake llama.cpp-shaped server (tests/remote_fake.py): the decode path, failures
and their time limits, overlap of calls, and the config rules. The real llama.cpp server: test_remote_llamacpp.py."""

from __future__ import annotations

import time

import pytest
import torch

from ensemble.config import EnsembleConfig, MemberSpec, SamplingConfig
from ensemble.decode.engine import Ensemble
from ensemble.decode.events import FUSED, Finished, MemberFailed, Piece
from ensemble.decode.prompting import prompt_ids
from ensemble.decode.remote import RemoteModel
from ensemble.errors import ConfigError, LoadError
from ensemble.models.pool import load_models
from tests.helpers import greedy_ids, load, run_fused
from tests.remote_fake import FakeServer

MESSAGES = [{"role": "user", "content": "Say something about the sea."}]


@pytest.fixture(scope="module")
def local(tiny_bpe, tiny_uni):
    return load([tiny_bpe, tiny_uni])


def served(url: str, tokenizer, timeout: float = 5.0) -> MemberSpec:
    return MemberSpec(url, tokenizer=str(tokenizer), timeout=timeout)


def cfg(members, method="unite", n=12, **kw) -> EnsembleConfig:
    return EnsembleConfig(members=tuple(members), method=method, sampling=SamplingConfig(max_new_tokens=n), **kw)


def test_a_served_member_alone_equals_the_local_greedy_answer(local, tiny_bpe):
    with FakeServer("model", local[0]) as server:
        (remote,) = load_models([served(server.url, tiny_bpe)])
        assert isinstance(remote, RemoteModel) and remote.context == 1024  # llama.cpp's /props n_ctx
        config = cfg([remote.spec], n=16)
        prompt = prompt_ids(remote.tokenizer, MESSAGES)
        run, events = run_fused([remote], config, [prompt])
        assert run.done.reason in ("end", "length") and not [e for e in events if isinstance(e, MemberFailed)]
        assert run.members[0].answer == greedy_ids(local[0], prompt, 16)
        # every request carried the member's exact ids, growing by one: the server's prefix cache is reusable
        sent = [b["prompt"] for b in server.bodies]
        assert sent[0] == prompt and all(b == a + [b[-1]] for a, b in zip(sent, sent[1:], strict=False))
        assert all(b["n_predict"] == 1 and b["n_probs"] == 20 and b["cache_prompt"] for b in server.bodies)
        assert run.members[0].fed - run.members[0].prefilled == len(sent) - 1  # one new id per later step
        events = list(Ensemble([remote], config).stream(MESSAGES, solo=True))  # its solo column: the same answer
    done = {e.stream: e.text for e in events if isinstance(e, Finished)}
    assert done[FUSED] == done[0] != ""


def test_served_plus_local_streams_well_formed_pieces(local, tiny_bpe):
    with FakeServer("model", local[0]) as server:
        (remote,) = load_models([served(server.url, tiny_bpe)])
        models = [remote, local[1]]
        config = cfg([remote.spec, local[1].spec], n=12)
        events = list(Ensemble(models, config).stream(MESSAGES))
    pieces = [e for e in events if isinstance(e, Piece)]
    (done,) = [e for e in events if isinstance(e, Finished)]
    assert done.reason in ("end", "length") and not [e for e in events if isinstance(e, MemberFailed)]
    assert pieces and "".join(p.text for p in pieces) == done.text
    for p in pieces:
        assert p.stream == FUSED and 0 <= p.driver < 2 and len(p.shares) == 2
        assert abs(sum(p.shares) - 1) < 1e-5 and p.shares[p.driver] == max(p.shares)
    assert done.stats.consulted[0] > 0 and done.stats.member_ms[0] > 0


@pytest.mark.parametrize(("mode", "words"), [("garbage", "not JSON"), ("wrong", "malformed reply"),
                                             ("http500", "HTTP 500"), ("hang", "no reply within")])
def test_a_bad_server_fails_its_member_in_time_and_the_other_finishes(local, tiny_bpe, mode, words):
    with FakeServer("model", local[0]) as server:
        (remote,) = load_models([served(server.url, tiny_bpe, timeout=0.5)])
        server.mode = mode
        config = cfg([remote.spec, local[1].spec], n=6)
        start = time.monotonic()
        events = list(Ensemble([remote, local[1]], config).stream(MESSAGES))
        elapsed = time.monotonic() - start
        calls = server.calls
    failed = [e for e in events if isinstance(e, MemberFailed)]
    (done,) = [e for e in events if isinstance(e, Finished)]
    assert len(failed) == 1 and failed[0].member == 0 and words in failed[0].error
    assert "\n" not in failed[0].error and server.url in failed[0].error
    assert done.reason in ("end", "length") and done.stats.steps >= 1  # the local member went on alone
    assert elapsed < remote.budget_s + 5  # one budget for the failing call, then the local member alone
    assert calls == (2 if mode == "http500" else 1)  # a 5xx is retried once; the rest are not; never again after


def test_a_server_that_goes_away_fails_its_member(local, tiny_bpe):
    server = FakeServer("model", local[0]).__enter__()
    (remote,) = load_models([served(server.url, tiny_bpe, timeout=1.0)])
    stream = Ensemble([remote, local[1]], cfg([remote.spec, local[1].spec], n=10)).stream(MESSAGES)
    events = []
    for e in stream:
        events.append(e)
        if isinstance(e, Piece) and server.calls and not server.stopping.is_set():
            server.stop()
    failed = [e for e in events if isinstance(e, MemberFailed)]
    (done,) = [e for e in events if isinstance(e, Finished)]
    assert len(failed) == 1 and "cannot connect" in failed[0].error
    assert done.reason in ("end", "length")


def test_calls_to_served_members_overlap(local, tiny_bpe):
    delay = 0.4
    with FakeServer("model", local[0], delay=delay) as a, FakeServer("model", local[0], delay=delay) as b:
        models = load_models([served(a.url, tiny_bpe), served(b.url, tiny_bpe)])
        config = cfg([m.spec for m in models], n=3)
        start = time.monotonic()
        events = list(Ensemble(models, config).stream(MESSAGES))
        elapsed = time.monotonic() - start
    (done,) = [e for e in events if isinstance(e, Finished)]
    steps = a.calls
    assert steps == b.calls == done.stats.steps
    assert elapsed < steps * delay * 1.6  # about one delay per step, not two


def test_a_dead_address_is_a_clear_load_error(tiny_bpe):
    with FakeServer() as server:
        url = server.url
    with pytest.raises(LoadError, match="cannot reach"):
        load_models([served(url, tiny_bpe, timeout=1.0)])


def test_the_served_id_is_the_default_tokenizer(tiny_bpe):
    with FakeServer() as server, pytest.raises(LoadError, match="tokenizer 'fake.gguf'"):
        load_models([MemberSpec(server.url, timeout=2.0)])


def test_a_tokenizer_that_is_not_the_served_models_is_a_load_error(local, tiny_uni):
    with FakeServer("model", local[0]) as server, pytest.raises(LoadError, match="is not the served model's"):
        load_models([served(server.url, tiny_uni)])


@pytest.mark.parametrize(("method", "options"), [("average", {}), ("deepen", {}), ("gac", {}),
                                                  ("gac", {"threshold": 0})])
def test_methods_needing_full_distributions_refuse_a_served_member(method, options):
    members = (MemberSpec("http://127.0.0.1:9/v1", tokenizer="x/y"), MemberSpec("a/b"))
    with pytest.raises(ConfigError, match="only its top-k; use unite, or gac with a threshold") as e:
        EnsembleConfig(members=members, method=method, options=options)
    assert "\n" not in str(e.value)


def test_served_member_config():
    spec = MemberSpec("http://10.0.0.5:8000/v1/", tokenizer="Qwen/Qwen2.5-7B-Instruct")
    assert spec.remote and spec.name == "10.0.0.5:8000"
    EnsembleConfig(members=(spec, MemberSpec("a/b")), method="gac", options={"threshold": 0.5})
    EnsembleConfig(members=(spec,), method="unite")
    with pytest.raises(ConfigError, match="only for served members"):
        MemberSpec("a/b", tokenizer="c/d")
    with pytest.raises(ConfigError, match="timeout must be > 0"):
        MemberSpec("http://h:1", timeout=0)
    with pytest.raises(ConfigError, match="unknown keys"):
        EnsembleConfig.from_dict({"members": [{"model": "http://h:1", "tokenizr": "a/b"}]})


def test_the_probabilities_are_the_servers_top_k_unrenormalised(local, tiny_bpe):
    with FakeServer("model", local[0], k=5) as server:
        (remote,) = load_models([served(server.url, tiny_bpe)])
        from ensemble.decode.backend import forward_all, open_member

        prompt = prompt_ids(remote.tokenizer, MESSAGES)
        (probs,) = forward_all([open_member(remote, prompt, 8)], [True])
    with torch.inference_mode():
        full = torch.softmax(local[0].model(input_ids=torch.tensor([prompt])).logits[0, -1].float(), -1)
    top = full.topk(5)
    assert (probs > 0).sum() == 5 and torch.equal(probs.topk(5).indices, top.indices)
    assert torch.allclose(probs[top.indices], top.values, atol=1e-5) and float(probs.sum()) < 1


def test_the_picker_takes_server_urls_only_when_the_operator_allows():
    from app import parse_args
    from tests.test_ui_state import METHODS, values
    from ui.picker import settings_from_values
    from ui.state import Limits

    picked = values(model0="http://10.0.0.5:8000/v1", method="unite")
    settings, problems = settings_from_values(picked, METHODS, Limits())
    assert settings is None and any("--allow-remote" in p for p in problems)
    settings, problems = settings_from_values(picked, METHODS, Limits(allow_remote=True))
    assert problems == [] and settings["members"][0]["model"] == "http://10.0.0.5:8000/v1"
    assert not parse_args([]).allow_remote and parse_args(["--allow-remote"]).allow_remote


def test_the_cli_preset_takes_a_yaml_path_with_served_members(tmp_path):
    from ensemble.cli import build_parser, config_from_args

    path = tmp_path / "mine.yaml"
    path.write_text("members:\n  - model: http://127.0.0.1:8000/v1\n    tokenizer: Qwen/Qwen2.5-0.5B-Instruct\n"
                    "  - model: offline:gemma-3-270m\nmethod: unite\n")
    config = config_from_args(build_parser().parse_args(["generate", "--preset", str(path), "--prompt", "hi"]))
    assert config.members[0].remote and config.members[0].tokenizer == "Qwen/Qwen2.5-0.5B-Instruct"
    assert not config.members[1].remote
    path.write_text("members:\n  - model: http://127.0.0.1:8000\nmethod: average\n")
    with pytest.raises(ConfigError, match="needs every member's full distribution"):
        config_from_args(build_parser().parse_args(["generate", "--preset", str(path), "--prompt", "hi"]))


@pytest.mark.parametrize(("threshold", "others"), [(1.0, 1.0), (1e-9, 0.0)])
def test_gac_gating_reads_a_served_primarys_top_1(local, tiny_bpe, threshold, others):
    with FakeServer("model", local[0]) as server:
        (remote,) = load_models([served(server.url, tiny_bpe)])
        config = cfg([remote.spec, local[1].spec], method="gac", n=6, options={"threshold": threshold})
        events = list(Ensemble([remote, local[1]], config).stream(MESSAGES))
    (done,) = [e for e in events if isinstance(e, Finished)]
    assert done.reason in ("end", "length") and not [e for e in events if isinstance(e, MemberFailed)]
    assert done.stats.consulted[0] == 1.0 and done.stats.consulted[1] == others

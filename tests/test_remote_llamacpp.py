"""Served members against llama.cpp's real server, started here by scripts/llama-server.sh (built once from the
pinned llama-cpp-python sdist; scripts/test.sh builds it before pytest)."""

from __future__ import annotations

import httpx
import pytest

from ensemble.config import EnsembleConfig, MemberSpec, SamplingConfig
from ensemble.decode.engine import Ensemble
from ensemble.decode.events import FUSED, Finished, MemberFailed, Piece
from ensemble.decode.prompting import prompt_ids
from ensemble.models.pool import load_models
from tests.helpers import run_fused
from tests.llama_server import NAME, LlamaServer

pytestmark = pytest.mark.slow
MESSAGES = [{"role": "user", "content": "Name three colours of the rainbow."}]
TOKENIZER = f"offline:{NAME}"


@pytest.fixture(scope="module")
def server():
    with LlamaServer() as s:
        yield s


@pytest.fixture(scope="module")
def local():
    (gemma,) = load_models([MemberSpec("offline:gemma-3-270m", dtype="fp32")])
    return gemma


def config(members, n) -> EnsembleConfig:
    return EnsembleConfig(members=tuple(members), method="unite", sampling=SamplingConfig(max_new_tokens=n))


def test_a_served_member_alone_equals_the_servers_own_greedy_completion(server):
    (remote,) = load_models([MemberSpec(server.url, tokenizer=TOKENIZER)])
    assert remote.client.dialect.name == "llama.cpp"
    n = 24
    prompt = prompt_ids(remote.tokenizer, MESSAGES)
    run, events = run_fused([remote], config([remote.spec], n), [prompt])
    assert not [e for e in events if isinstance(e, MemberFailed)]
    ours = run.members[0].answer
    own = httpx.post(server.url + "/completion", timeout=60, json={
        "prompt": prompt, "n_predict": n, "temperature": 0, "cache_prompt": False, "return_tokens": True}).json()
    theirs = [t for t in own["tokens"] if t not in remote.vocab.end_ids]
    assert len(ours) >= 8 and ours == theirs[: len(ours)]
    if run.done.reason == "end":  # we stopped at an end token: so did the server
        assert len(theirs) == len(ours)
    else:
        assert run.done.reason == "length" and len(ours) == n


def test_served_plus_local_stream_well_formed_pieces(server, local):
    (remote,) = load_models([MemberSpec(server.url, tokenizer=TOKENIZER)])
    events = list(Ensemble([remote, local], config([remote.spec, local.spec], 16)).stream(MESSAGES))
    pieces = [e for e in events if isinstance(e, Piece)]
    (done,) = [e for e in events if isinstance(e, Finished)]
    assert not [e for e in events if isinstance(e, MemberFailed)]
    assert done.reason in ("end", "length") and "".join(p.text for p in pieces) == done.text != ""
    for p in pieces:
        assert p.stream == FUSED and len(p.shares) == 2 and abs(sum(p.shares) - 1) < 1e-5
        assert p.shares[p.driver] == max(p.shares) and len(p.fed) == 2
    assert {p.driver for p in pieces} <= {0, 1} and done.stats.member_ms[0] > 0


def test_killing_the_server_mid_answer_fails_its_member_and_the_local_one_finishes(local):
    victim = LlamaServer()
    try:
        (remote,) = load_models([MemberSpec(victim.url, tokenizer=TOKENIZER, timeout=5.0)])
        events = []
        for e in Ensemble([remote, local], config([remote.spec, local.spec], 16)).stream(MESSAGES):
            events.append(e)
            if isinstance(e, Piece) and victim.proc.poll() is None:
                victim.kill()
    finally:
        victim.stop()
    failed = [e for e in events if isinstance(e, MemberFailed)]
    (done,) = [e for e in events if isinstance(e, Finished)]
    assert len(failed) == 1 and failed[0].member == 0 and victim.url in failed[0].error
    assert done.reason in ("end", "length") and done.stats.steps > 1
    later = [p for p in events[events.index(failed[0]):] if isinstance(p, Piece)]
    assert later and later[-1].shares[1] == 1.0  # the local member alone

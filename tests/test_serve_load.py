"""The server under load: one answer on the device at a time, a bounded line (clean 429s beyond it, 503 after
waiting too long), and a client that leaves mid-answer stops it and frees its caches."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pytest

from ensemble.decode.member import Member
from ensemble.serve.gate import Gate, QueueFull
from tests.serve_helpers import serving, tiny_preset, wait_idle

USERS = 20
HI = [{"role": "user", "content": "Tell me about the sea."}]


@pytest.fixture(scope="module")
def preset(fixture_dirs, tmp_path_factory):
    return tiny_preset(tmp_path_factory.mktemp("serve-load"), fixture_dirs)


@pytest.fixture(scope="module")
def server(preset):
    with serving(preset, queue=6) as running:
        yield running


def ask(url: str, i: int):
    """One user with their own client; streams every other time. Returns the answer text or the error."""
    client = openai.OpenAI(base_url=url, api_key="unused", max_retries=0)
    try:
        if i % 2:
            chunks = list(client.chat.completions.create(model="tiny", messages=HI, max_tokens=6, stream=True))
            finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
            assert finish in (["stop"], ["length"])
            return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        answer = client.chat.completions.create(model="tiny", messages=HI, max_tokens=6)
        assert answer.choices[0].finish_reason in ("stop", "length")
        return answer.choices[0].message.content
    except openai.RateLimitError as e:
        return e


def crowd(url: str) -> list:
    with ThreadPoolExecutor(USERS) as pool:
        return list(pool.map(lambda i: ask(url, i), range(USERS)))


def test_twenty_concurrent_clients_complete_or_get_a_clean_429(server):
    reference = openai.OpenAI(base_url=server.url, api_key="unused").chat.completions.create(
        model="tiny", messages=HI, max_tokens=6).choices[0].message.content
    results = crowd(server.url)
    answers = [r for r in results if isinstance(r, str)]
    refused = [r for r in results if not isinstance(r, str)]
    assert answers and all(a == reference for a in answers)  # everyone served got the same greedy answer
    for e in refused:
        assert e.status_code == 429 and e.code == "rate_limit_exceeded" and "waiting" in e.message
    print(f"{len(answers)} answered, {len(refused)} refused with 429")
    assert len(answers) >= 7  # the one running plus the six the line holds, at least
    assert server.service.gate.peak == 1  # one answer on the device at a time
    wait_idle(server.service)


def test_twenty_concurrent_clients_all_complete_when_the_line_is_long_enough(server):
    server.service.gate.queue = USERS
    try:
        results = crowd(server.url)
    finally:
        server.service.gate.queue = 6
    assert all(isinstance(r, str) and r for r in results), [r for r in results if not isinstance(r, str)]
    assert server.service.gate.peak == 1


@pytest.fixture
def slow_members(monkeypatch):
    """Every Member created, with forwards slowed to 20 ms so an answer is still running when its client leaves."""
    created, launch, init = [], Member.launch, Member.__init__

    def track(self, *args, **kw):
        init(self, *args, **kw)
        created.append(self)

    def slow(self):
        time.sleep(0.02)
        return launch(self)

    monkeypatch.setattr(Member, "__init__", track)
    monkeypatch.setattr(Member, "launch", slow)
    return created


def settled(members: list[Member]) -> int:
    """Forwards run so far, once they stop changing."""
    before = -1
    while (now := sum(m.forwards for m in members)) != before:
        before = now
        time.sleep(0.3)
    return now


def test_a_client_leaving_mid_stream_stops_the_answer_and_frees_its_caches(server, slow_members):
    cancelled = server.service.finished["cancelled"]
    client = openai.OpenAI(base_url=server.url, api_key="unused", max_retries=0)
    stream = client.chat.completions.create(model="tiny", messages=HI, max_tokens=400, stream=True)
    texts = []
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            texts.append(chunk.choices[0].delta.content)
        if len(texts) == 3:
            break
    stream.close()
    wait_idle(server.service)
    assert server.service.finished["cancelled"] == cancelled + 1
    assert slow_members and all(m.cache is None and m.cached == [] for m in slow_members)
    assert settled(slow_members) < 2 * 100  # two members; far fewer steps than the 400 asked for
    again = client.chat.completions.create(model="tiny", messages=HI, max_tokens=3)  # the slot is free again
    assert again.choices[0].finish_reason == "length"


def test_a_client_leaving_a_whole_answer_stops_it_too(server, slow_members):
    cancelled = server.service.finished["cancelled"]
    body = {"model": "tiny", "messages": HI, "max_tokens": 400}
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{server.url}/chat/completions", json=body, timeout=httpx.Timeout(10, read=0.5))
    wait_idle(server.service)
    assert server.service.finished["cancelled"] == cancelled + 1, server.service.finished
    assert all(m.cache is None for m in slow_members) and settled(slow_members) < 2 * 100


def test_the_gate_lets_one_in_at_a_time_first_come_first_served():
    gate = Gate(slots=1, queue=2, wait_s=5)
    tickets = [gate.admit() for _ in range(3)]  # one may run, two wait
    with pytest.raises(QueueFull):
        gate.admit()
    order, never = [], lambda: False
    assert tickets[0].enter(never) == "entered"
    threads = [threading.Thread(target=lambda t=t, i=i: order.append((i, t.enter(never)))) for i, t in
               enumerate(tickets[1:], 1)]
    threads[1].start()  # the third ticket asks first, but the second came first
    time.sleep(0.2)
    threads[0].start()
    time.sleep(0.2)
    assert order == [] and gate.state() == {"running": 1, "waiting": 2, "peak": 1}
    tickets[0].leave()
    time.sleep(0.3)
    assert order == [(1, "entered")]
    tickets[1].leave()
    time.sleep(0.3)
    assert order == [(1, "entered"), (2, "entered")] and gate.peak == 1
    tickets[2].leave()
    for t in threads:
        t.join(2)
    assert gate.state()["running"] == 0


def test_a_ticket_gives_up_when_its_client_leaves_or_it_waits_too_long():
    gate = Gate(slots=1, queue=2, wait_s=0.3)
    first, second, third = gate.admit(), gate.admit(), gate.admit()
    assert first.enter(lambda: False) == "entered"
    assert second.enter(lambda: True) == "stopped"
    assert third.enter(lambda: False) == "timeout"
    assert gate.state() == {"running": 1, "waiting": 0, "peak": 1}
    first.leave()
    assert gate.state()["running"] == 0


def test_a_request_that_cannot_start_in_time_gets_a_503(preset, slow_members):
    with serving(preset, wait_s=0.5) as running:
        client = openai.OpenAI(base_url=running.url, api_key="unused", max_retries=0)
        long = client.chat.completions.create(model="tiny", messages=HI, max_tokens=400, stream=True)
        next(iter(long))  # it holds the device now
        with pytest.raises(openai.InternalServerError) as caught:
            client.chat.completions.create(model="tiny", messages=HI, max_tokens=2)
        long.close()
        assert caught.value.status_code == 503 and caught.value.code == "server_busy"
        wait_idle(running.service)

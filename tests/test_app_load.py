"""Twenty concurrent gradio_client users against the app on tiny models: every stream completes, the queue
reports positions, and a full queue refuses politely."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from gradio_client import Client
from gradio_client.utils import Status

from tests.browser.server import launch

USERS = 20
pytestmark = pytest.mark.filterwarnings("ignore::Warning:gradio.queueing")  # pandas 3 deprecations in gradio
FUSED = 2  # /chat outputs: chart, status, fused, solo0..solo3, prompt (the State and buttons are not in the API)


@pytest.fixture(scope="module")
def app(fixture_dirs, tmp_path_factory):
    url, demo, models = launch(fixture_dirs, tmp_path_factory.mktemp("load"), max_new_tokens=12, queue_size=32)
    yield url, models
    demo.close()


def poll_ranks(jobs, ranks: list[int], done: threading.Event):
    while not done.is_set():
        for job in jobs:
            status = job.status()
            if status.code == Status.IN_QUEUE and status.rank is not None:
                ranks.append(status.rank)
        time.sleep(0.02)


def test_twenty_concurrent_users(app):
    url, models = app
    with ThreadPoolExecutor(8) as pool:
        clients = list(pool.map(lambda _: Client(url, verbose=False), range(USERS)))
    jobs = [c.submit(f"user {i} says hi", api_name="/chat") for i, c in enumerate(clients)]
    ranks, done = [], threading.Event()
    watcher = threading.Thread(target=poll_ranks, args=(jobs, ranks, done))
    watcher.start()
    start = time.monotonic()
    try:
        results = [job.result(timeout=240) for job in jobs]
    finally:
        done.set()
        watcher.join()
    elapsed = time.monotonic() - start
    for i, (job, out) in enumerate(zip(jobs, results, strict=True)):
        assert job.status().code == Status.FINISHED
        fused = out[FUSED]["value"]
        assert fused[-2]["content"][0]["text"] == f"user {i} says hi"  # each user got their own conversation
        answer = fused[-1]["content"][0]["text"]
        assert answer.count('class="tok') >= 1 and "failed" not in answer, answer
        solos = [o for o in out if isinstance(o, dict) and o.get("visible") and "alone" in o.get("label", "")]
        assert len(solos) == 3
        for solo in solos:
            assert solo["value"][-1]["content"][0]["text"] not in ("", "…")
    assert ranks and max(ranks) >= USERS // 2, f"queue positions seen: {sorted(set(ranks))}"
    assert len(models.ensembles) == 1  # one shared load for everybody
    print(f"{USERS} users, {elapsed:.1f}s, max queue rank {max(ranks)}")


def test_a_full_queue_says_so(fixture_dirs, tmp_path):
    url, demo, _ = launch(fixture_dirs, tmp_path, max_new_tokens=40, queue_size=2)
    try:
        clients = [Client(url, verbose=False) for _ in range(6)]
        jobs = [c.submit("hello", api_name="/chat") for c in clients]
        errors, finished = [], 0
        for job in jobs:
            try:
                job.result(timeout=120)
                finished += 1
            except Exception as e:  # gradio_client raises its own error type for a refused job
                errors.append(str(e))
        assert finished >= 1 and errors
        assert all("queue is full" in e.lower() for e in errors), errors
    finally:
        demo.close()

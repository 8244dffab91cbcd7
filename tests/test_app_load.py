"""Twenty concurrent gradio_client users against the app on tiny models: every stream completes, the queue
reports positions, and a full queue refuses politely."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from gradio_client import Client
from gradio_client.utils import Status

from tests.browser.server import FIXTURES, launch

USERS = 20
pytestmark = pytest.mark.filterwarnings("ignore::Warning:gradio.queueing")  # pandas 3 deprecations in gradio


@pytest.fixture(scope="module")
def app(fixture_dirs, tmp_path_factory):
    url, demo, models = launch(fixture_dirs, tmp_path_factory.mktemp("load"), max_new_tokens=12, queue_size=32)
    yield url, models, [str(fixture_dirs[n]) for n in FIXTURES]
    demo.close()


def poll_ranks(jobs, ranks: list[int], done: threading.Event):
    while not done.is_set():
        for job in jobs:
            status = job.status()
            if status.code == Status.IN_QUEUE and status.rank is not None:
                ranks.append(status.rank)
        time.sleep(0.02)


def test_twenty_concurrent_users(app):
    url, models, members = app
    with ThreadPoolExecutor(8) as pool:
        clients = list(pool.map(lambda _: Client(url, verbose=False), range(USERS)))
    jobs = [c.submit(members=members, prompt=f"user {i} says hi", max_new_tokens=2 + i % 5, solo=True,
                     api_name="/generate") for i, c in enumerate(clients)]
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
        assert 1 <= len(out["pieces"]) <= 2 + i % 5 and not out["failures"]  # each user got their own request
        assert out["finish_reason"] in ("end", "length") and len(out["solo"]) == 3
    assert ranks and max(ranks) >= USERS // 2, f"queue positions seen: {sorted(set(ranks))}"
    assert len(models.ensembles) == 1  # one shared load for everybody
    print(f"{USERS} users, {elapsed:.1f}s, max queue rank {max(ranks)}")


def test_a_full_queue_says_so(fixture_dirs, tmp_path):
    url, demo, _ = launch(fixture_dirs, tmp_path, max_new_tokens=40, queue_size=2)
    try:
        clients = [Client(url, verbose=False) for _ in range(6)]
        members = [str(fixture_dirs[n]) for n in FIXTURES]
        jobs = [c.submit(members=members, prompt="hello", max_new_tokens=40, api_name="/generate") for c in clients]
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

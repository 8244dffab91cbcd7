"""Limits under abuse, each driven by a real bounded loop: the answer's clock starts at decoding, Share is
rate-limited and de-duplicated, a locked database is one clear line, Export cleans its folders, and one client
cannot fill the queue (on loopback, through gradio_client) while Share and Export skip the queue."""

import asyncio
import contextlib
import os
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import pytest
from gradio_client import Client

from tests.browser.server import FIXTURES, launch
from tests.test_ui_handlers import PRESET, Scripted, values
from ui.handlers import Context, Handlers
from ui.limits import AnswerClock, ClientCap, ExportDir, ShareGuard, client_key
from ui.state import Limits, Session
from ui.store import ComparisonStore

pytestmark = pytest.mark.filterwarnings("ignore::Warning:gradio.queueing")


class Slow(Scripted):
    """Loads in `load_s`, then streams a piece every `step_s`."""

    def __init__(self, load_s=0.0, step_s=0.0, **kw):
        super().__init__(**kw)
        self.load_s, self.step_s = load_s, step_s

    def load(self, config, progress):
        time.sleep(self.load_s)
        super().load(config, progress)

    def stream(self, config, messages, should_stop):
        for event in super().stream(config, messages, should_stop):
            time.sleep(self.step_s)
            yield event


def make(tmp_path, backend=None, shares=None, exports=None, **limits):
    ctx = Context(backend or Scripted(), ComparisonStore(tmp_path), {"p": PRESET}, ["gac", "unite"],
                  Limits(**limits), "p", shares=shares or ShareGuard(),
                  exports=exports or ExportDir(tmp_path / "exports"))
    return Handlers(ctx)


def request(session="s1"):
    return SimpleNamespace(session_hash=session, base_url="http://127.0.0.1:7860/")


def answered(tmp_path, h) -> Session:
    session = Session()
    list(h.respond(session, "hi", *values(), request=request()))
    return session


def test_the_clock_starts_when_decoding_starts(tmp_path):
    clock = AnswerClock(lambda: False, 0.05)
    time.sleep(0.1)
    assert not clock()  # not started: loading does not count
    clock.start()
    time.sleep(0.1)
    assert clock()
    slow_load = make(tmp_path, Slow(load_s=1.0, n=3), answer_seconds=0.5)
    session = answered(tmp_path, slow_load)
    assert session.turns[-1]["columns"]["fused"]["reason"] == "end"  # a 1 s load, a 0.5 s limit: still answered
    slow_answer = make(tmp_path, Slow(step_s=0.05, n=200), answer_seconds=0.5)
    session = answered(tmp_path, slow_answer)
    assert session.turns[-1]["columns"]["fused"]["reason"] == "cancelled"  # 30 s of answer cut at 0.5 s


def test_share_is_rate_limited_and_deduplicated(tmp_path):
    h = make(tmp_path, shares=ShareGuard(per_minute=3, server_factor=2))
    session = answered(tmp_path, h)
    results = [h.share(session, request=request("s1")) for _ in range(20)]
    links = [r["link"]["value"] for r in results if "link" in r]
    refused = [r["status"] for r in results if "link" not in r]
    assert len(links) == 3 and len(set(links)) == 1  # the same comparison: one stored row, one link
    assert len(refused) == 17 and all("too many shares" in s for s in refused)
    with sqlite3.connect(tmp_path / "comparisons.sqlite3") as db:
        assert db.execute("SELECT COUNT(*) FROM comparisons").fetchone() == (1,)
    others = [h.share(session, request=request(f"other{i}")) for i in range(10)]
    assert sum("link" in r for r in others) == 3  # server-wide: 2 x 3 a minute, 3 used by s1
    assert all("many shares right now" in r["status"] for r in others if "link" not in r)


@contextlib.contextmanager
def locked_database(tmp_path, h):
    """Another connection holds the store's write lock; the store gives up waiting after 0.2 s."""
    h.ctx.store._connect = lambda: sqlite3.connect(h.ctx.store.path, timeout=0.2)
    holder = sqlite3.connect(tmp_path / "comparisons.sqlite3", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        yield
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_a_locked_database_is_one_line(tmp_path):
    h = make(tmp_path)
    session = answered(tmp_path, h)
    with locked_database(tmp_path, h):
        out = h.share(session, request=request())
    assert "link" not in out and "storage is busy or full (OperationalError)" in out["status"]
    assert "Traceback" not in out["status"]
    assert "link" in h.share(session, request=request())  # fine again once the lock is gone


def test_export_cleans_old_folders(tmp_path):
    exports = ExportDir(tmp_path / "exports", keep_s=3600, keep=5)
    h = make(tmp_path, exports=exports)
    session = answered(tmp_path, h)
    made = []
    for _ in range(20):
        files = h.export(session)["files"]["value"]
        made.append(os.path.dirname(files[0]))
        assert all(os.path.exists(f) for f in files)  # the one just made is never removed
    left = sorted(p for p in exports.root.iterdir())
    assert len(left) <= 5 and str(left[-1]) in made
    old = time.time() - 7200
    for folder in left:
        os.utime(folder, (old, old))
    h.export(session)
    assert len(list(exports.root.iterdir())) == 1  # an hour old: gone


def test_client_key():
    def req(host, forwarded=""):
        return SimpleNamespace(headers={"x-forwarded-for": forwarded} if forwarded else {},
                               client=SimpleNamespace(host=host))

    assert client_key(req("10.1.1.1"), "s") == client_key(req("10.1.1.1"), "t") == "ip:10.1.1.1"
    assert client_key(req("127.0.0.1"), "s") != client_key(req("127.0.0.1"), "t")  # local use: per session
    assert client_key(req("127.0.0.1", "9.9.9.9, 10.0.0.1"), "s") == "ip:9.9.9.9"


@pytest.fixture
def capped(fixture_dirs, tmp_path):
    url, demo, _ = launch(fixture_dirs, tmp_path, max_new_tokens=48, queue_size=16)
    ClientCap(demo._queue, 2)
    yield url, demo, [str(fixture_dirs[n]) for n in FIXTURES]
    demo.close()


def test_one_client_cannot_fill_the_queue(capped):
    url, demo, members = capped
    greedy = Client(url, verbose=False, headers={"X-Forwarded-For": "203.0.113.7"})
    jobs = [greedy.submit(members=members, prompt=f"hello {i}", max_new_tokens=48, api_name="/generate")
            for i in range(8)]
    outcomes = []
    with ThreadPoolExecutor(8) as pool:
        for outcome in pool.map(lambda j: _outcome(j), jobs):
            outcomes.append(outcome)
    refused = [o for o in outcomes if o != "ok"]
    assert "ok" in outcomes and refused, outcomes
    assert all("queue is full" in o.lower() for o in refused), refused  # HTTP 503; gradio_client's own words
    other = Client(url, verbose=False, headers={"X-Forwarded-For": "198.51.100.2"})
    assert other.predict(members=members, prompt="me too", max_new_tokens=2, api_name="/generate")["text"] is not None
    by_name = {fn.name: fn for fn in demo.fns.values()}
    assert by_name["share"].queue is False and by_name["export"].queue is False  # never behind the queue


def run_alone(coroutine):
    """asyncio.run in its own thread: a browser test earlier in the same process (Playwright's sync API)
    leaves an event loop running in the main thread, where asyncio.run refuses to start."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def test_the_cap_counts_waiting_and_running_events_of_that_client_only():
    def event(host):
        return SimpleNamespace(request=SimpleNamespace(headers={"x-forwarded-for": host}, client=None),
                               session_hash="x")

    pushed = []

    async def push(body, request, username):
        pushed.append(body)
        return True, "id", "success"

    queue = SimpleNamespace(push=push, event_queue_per_concurrency_id={"gpu": SimpleNamespace(
        queue=[event("1.1.1.1"), event("2.2.2.2")])}, active_jobs=[[event("1.1.1.1")], None])
    ClientCap(queue, 2)
    body = SimpleNamespace(session_hash="y")
    refused = run_alone(queue.push(body=body, request=event("1.1.1.1").request, username=None))
    assert refused[0] is False and refused[2] == "queue_full" and "you already have 2 requests" in refused[1]
    assert run_alone(queue.push(body=body, request=event("2.2.2.2").request, username=None))[0] is True
    assert pushed == [body]


def _outcome(job) -> str:
    try:
        job.result(timeout=240)
        return "ok"
    except Exception as e:  # gradio_client's error for a refused job carries the server's message
        return str(e)


def test_a_locked_database_during_a_vote_is_one_line(tmp_path):
    h = make(tmp_path)
    session = answered(tmp_path, h)
    with locked_database(tmp_path, h):
        voted = h.vote(session, "fused")
        results = h.results()
    assert "could not store the vote" in voted["status"] and "storage is busy or full" in voted["status"]
    assert "No votes yet" in results["results"]  # WAL: reading goes on while a writer holds the lock
    assert "vote stored" in h.vote(session, "fused")["status"]  # and it can be tried again

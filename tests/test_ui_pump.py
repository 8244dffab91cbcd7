"""ui.pump: the engine runs in its own thread; the page takes its events in batches and never slows it down."""

import time

import pytest

from ui.pump import Pump


def engine(n, delay=0.0, fail_at=None, log=None):
    def start(stopped):
        def gen():
            try:
                for i in range(n):
                    if stopped():
                        return
                    if i == fail_at:
                        raise RuntimeError("boom")
                    yield i
                    time.sleep(delay)
                log.append(("done", time.monotonic())) if log is not None else None
            finally:
                log.append(("closed", i)) if log is not None else None
        return gen()
    return start


def test_every_event_in_order_and_the_engine_never_waits_for_the_page():
    log = []
    pump = Pump(engine(40, delay=0.005, log=log))
    seen, batches, start = [], 0, time.monotonic()
    for batch in pump.batches(0.05):
        seen += batch
        batches += 1
        time.sleep(0.3)  # a slow page
    pump.close()
    assert seen == list(range(40))
    assert batches < 40  # batched, not one view per event
    assert log[0][0] == "done" and log[0][1] - start < 0.3 * batches  # finished while the page was still busy


def test_an_engine_error_comes_after_the_events_before_it():
    pump = Pump(engine(10, fail_at=3))
    seen = []
    with pytest.raises(RuntimeError, match="boom"):
        for batch in pump.batches(0.0):
            seen += batch
    assert seen == [0, 1, 2]


def test_close_stops_the_engine_and_closes_its_generator():
    log = []
    pump = Pump(engine(10_000, delay=0.001, log=log))
    next(pump.batches(0.0))
    pump.close()
    assert not pump.thread.is_alive() and log[-1][0] == "closed" and log[-1][1] < 9_999

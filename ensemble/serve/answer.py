"""One Job on a worker thread: wait for the device, run the engine, hand Deltas to the event loop.

Items arrive in order on an asyncio queue: Deltas (the first one when the answer has started), at most one
ApiError, then DONE. `stop()` (the client left) reaches the engine as `should_stop`; the engine then ends the
answer and frees every KV cache before the worker gives its slot back.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..decode.events import Finished, MemberFailed, Piece, Started
from ..errors import EnsembleError
from .errors import ApiError, bad_request, server_error
from .gate import Ticket
from .logprobs import Choice, Recorder
from .service import Job

log = logging.getLogger(__name__)
DONE = object()
FINISH = {"end": "stop", "stop": "stop", "length": "length", "cancelled": "length"}  # engine -> OpenAI
POLL_S = 0.5  # how often a request waiting for its answer checks that its client is still there


@dataclass(frozen=True)
class Delta:
    text: str = ""
    driver: int = -1  # member index; -1 when no text
    shares: tuple[float, ...] = ()  # one per member, summing to 1; () when no text
    steps: tuple[Choice, ...] = ()  # chosen tokens since the last Delta (only when logprobs were asked for)
    failed: tuple[tuple[int, str], ...] = ()  # (member, error) for members that just failed
    finish: str | None = None  # OpenAI's finish_reason, on the last Delta
    prompt_tokens: int = 0
    completion_tokens: int = 0


class Convert:
    """Engine events -> Deltas. Started gives the first (empty) Delta; Finished the last."""

    def __init__(self, primary: int, recorder: Recorder | None):
        self.primary, self.recorder, self.prompt_tokens = primary, recorder, 0
        self.reason = ""

    def __call__(self, event) -> Delta | None:
        if isinstance(event, Started):
            self.prompt_tokens = event.prompt_tokens[self.primary]
            return Delta(prompt_tokens=self.prompt_tokens)
        if isinstance(event, MemberFailed):
            return Delta(failed=((event.member, event.error),))
        if isinstance(event, Piece):
            return Delta(event.text, event.driver, event.shares, self.steps())
        if isinstance(event, Finished):
            self.reason = event.reason
            if event.reason == "error":
                raise RuntimeError("every member failed; see the server log")
            return Delta(steps=self.steps(), finish=FINISH[event.reason],
                         prompt_tokens=self.prompt_tokens, completion_tokens=event.stats.steps)
        return None

    def steps(self) -> tuple[Choice, ...]:
        taken = self.recorder.take() if self.recorder else ()
        return tuple(c for c in taken if c.token is not None)  # the end of the answer is no token of the text


class Answer:
    def __init__(self, job: Job, ticket: Ticket, record: Callable[[str], None]):
        self.job, self.ticket, self.record = job, ticket, record
        self.loop = asyncio.get_running_loop()
        self.items: asyncio.Queue = asyncio.Queue()
        self.stopped = threading.Event()
        self.getter: asyncio.Future | None = None
        self.checked = time.monotonic()  # when the client was last seen connected
        self.thread = threading.Thread(target=self.work, name="ensemble-answer", daemon=True)

    def start(self) -> Answer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopped.set()

    async def next(self, request=None):
        """The next item. With `request`, checks at least every POLL_S that the client is still connected
        (also while items keep coming), and stops the answer (returning DONE) when it is not. Streaming
        responses leave that to Starlette, which cancels the stream when the client goes."""
        while True:
            if request is not None and time.monotonic() >= self.checked + POLL_S:
                self.checked = time.monotonic()
                if await request.is_disconnected():
                    self.stop()
                    return DONE
            if self.getter is None:
                self.getter = asyncio.ensure_future(self.items.get())
            done, _ = await asyncio.wait({self.getter}, timeout=POLL_S if request is not None else None)
            if done:
                item, self.getter = self.getter.result(), None
                return item

    def put(self, item) -> None:
        try:
            self.loop.call_soon_threadsafe(self.items.put_nowait, item)
        except RuntimeError:  # the event loop is gone (server shutting down)
            self.stop()

    def work(self) -> None:
        try:
            outcome = self.ticket.enter(self.stopped.is_set)
            if outcome == "entered":
                self.run()
            elif outcome == "timeout":
                self.put(ApiError(503, "the server is busy: no answer could start in time; retry later",
                                  type="server_error", code="server_busy"))
        except EnsembleError as e:
            self.put(bad_request(str(e)))
        except Exception as e:  # the client gets a 500 in OpenAI's shape; the log gets the traceback
            log.exception("answer failed")
            self.put(server_error(f"{type(e).__name__}: {e}"))
        finally:
            self.ticket.leave()
            self.put(DONE)

    def run(self) -> None:
        events, recorder = self.job.events(self.stopped.is_set)
        convert = Convert(self.job.config.primary, recorder)
        try:
            for event in events:
                delta = convert(event)
                if delta is not None:
                    self.put(delta)
        finally:
            events.close()  # frees every cache, also when an exception ends the loop
            self.record(convert.reason or "aborted")

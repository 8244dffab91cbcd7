"""The engine's stream, run in its own thread, handed to the page in batches. Pure; no gradio.

Why: the engine is a generator, so if the page's handler pulled it directly, every streamed update (render,
Gradio's diff, the send) would pause decoding. Here one worker thread owns the generator from start to close (a
generator cannot be closed from another thread while it runs), puts each event in a queue, and the handler takes
everything that arrived at most `period` seconds apart: decoding never waits for the page.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator

END = object()


class Pump:
    """start(stopped) -> the engine's event iterator; `stopped()` turns true once the page no longer wants it."""

    JOIN_S = 10.0  # close() waits this long for the engine to notice (it checks between forward passes)

    def __init__(self, start: Callable[[Callable[[], bool]], Iterator]):
        self.queue: queue.SimpleQueue = queue.SimpleQueue()
        self.cancel = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(start,), daemon=True, name="engine-stream")
        self.thread.start()

    def _run(self, start) -> None:
        events = None
        try:
            events = start(self.cancel.is_set)
            for event in events:
                self.queue.put(event)
                if self.cancel.is_set():
                    break
        except BaseException as e:  # handed to the handler's thread, raised there
            self.queue.put(e)
        finally:
            if events is not None and hasattr(events, "close"):
                events.close()  # stop decoding, free the caches
            self.queue.put(END)

    def batches(self, period: float) -> Iterator[list]:
        """Lists of events, at most one list per `period` seconds; ends when the stream does (an engine exception
        is raised here, after the events before it)."""
        last = float("-inf")
        while True:
            batch = [self.queue.get()]
            deadline = last + period
            while batch[-1] is not END and not isinstance(batch[-1], BaseException):
                try:
                    left = deadline - time.monotonic()
                    batch.append(self.queue.get(timeout=left) if left > 0 else self.queue.get_nowait())
                except queue.Empty:
                    break
            last = time.monotonic()
            tail = batch[-1]
            events = batch[:-1] if tail is END or isinstance(tail, BaseException) else batch
            if events:
                yield events
            if isinstance(tail, BaseException):
                raise tail
            if tail is END:
                return

    def close(self) -> None:
        """Stop the engine (when the page closed the handler, or the stream ended) and wait for its close."""
        self.cancel.set()
        self.thread.join(self.JOIN_S)

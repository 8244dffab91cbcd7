"""Limits that hold when the app is open to the public: the answer's clock, Share's rate, Export's temp files,
and a per-client cap on the queue. No Gradio components here; ClientCap wraps Gradio's queue.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from pathlib import Path

LOOPBACK = ("127.", "::1", "localhost")


class AnswerClock:
    """A should_stop for one answer: Stop was pressed, or `seconds` have passed since `start()` (called when
    decoding starts, after the models are loaded; never before, so a long first download does not eat it)."""

    def __init__(self, stopped: Callable[[], bool], seconds: float):
        self.stopped, self.seconds, self.deadline = stopped, seconds, None

    def start(self) -> None:
        self.deadline = time.monotonic() + self.seconds

    def __call__(self) -> bool:
        return self.stopped() or (self.deadline is not None and time.monotonic() > self.deadline)


class ShareGuard:
    """Share presses per browser session in a sliding minute, and a server-wide ceiling of `server_factor`
    times that (a script can open new sessions). `check` returns a message when refused, else ''."""

    def __init__(self, per_minute: float | None = None, server_factor: int = 10):
        self.per_minute, self.factor = per_minute, server_factor  # per_minute None: what check() is given
        self.lock = threading.Lock()
        self.times: dict[str, deque] = defaultdict(deque)

    def check(self, session: str, per_minute: float = 6.0) -> str:
        per_minute = self.per_minute or per_minute
        now = time.monotonic()
        with self.lock:
            for key in list(self.times):
                while self.times[key] and now - self.times[key][0] > 60:
                    self.times[key].popleft()
                if not self.times[key]:
                    del self.times[key]
            everyone = sum(len(t) for t in self.times.values())
            if len(self.times.get(session, ())) >= per_minute:
                return f"too many shares: at most {per_minute:g} a minute; try again shortly"
            if everyone >= per_minute * self.factor:
                return "the server is storing many shares right now; try again in a minute"
            self.times[session].append(now)
            return ""


class ExportDir:
    """Export folders under one root; each `new()` first deletes folders older than `keep_s` and the oldest
    beyond `keep`. (Gradio keeps its own copy of served files; build_app's delete_cache clears those.)"""

    def __init__(self, root: Path | None = None, keep_s: float = 3600.0, keep: int = 200):
        self.root = Path(root or tempfile.mkdtemp(prefix="ensemble-exports-"))
        self.root.mkdir(parents=True, exist_ok=True)
        self.keep_s, self.keep, self.lock = keep_s, keep, threading.Lock()

    def new(self) -> Path:
        with self.lock:
            folders = sorted((p for p in self.root.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime)
            now = time.time()
            for n, folder in enumerate(folders):
                if now - folder.stat().st_mtime > self.keep_s or len(folders) - n >= self.keep:
                    shutil.rmtree(folder, ignore_errors=True)
            return Path(tempfile.mkdtemp(prefix="export-", dir=self.root))


def client_key(request, session_hash: str | None) -> str:
    """Who a queued request comes from: the first X-Forwarded-For address (a Space's proxy sets it), else the
    peer address; a loopback peer with no proxy header is told apart by its session (local use, tests)."""
    forwarded = request.headers.get("x-forwarded-for", "") if request is not None else ""
    host = forwarded.split(",")[0].strip() or (request.client.host if request is not None and request.client else "")
    if not forwarded and (not host or host.startswith(LOOPBACK)):
        return f"session:{session_hash}"
    return f"ip:{host}"


class ClientCap:
    """At most `cap` of one client's events waiting or running in Gradio's queue; more are refused at the door
    (HTTP 503 with this class's message), so one client cannot take every slot."""

    def __init__(self, queue, cap: int):
        self.queue, self.cap, self.push = queue, cap, queue.push
        queue.push = self.checked_push

    def events(self) -> list:
        waiting = [e for q in self.queue.event_queue_per_concurrency_id.values() for e in q.queue]
        running = [e for job in self.queue.active_jobs if job for e in job]
        return waiting + running

    async def checked_push(self, body, request, username):
        key = client_key(request, body.session_hash)
        mine = sum(client_key(e.request, e.session_hash) == key for e in self.events())
        if mine >= self.cap:
            return False, (f"you already have {mine} requests waiting or running (the limit is {self.cap}); "
                           "wait for one to finish"), "queue_full"
        return await self.push(body=body, request=request, username=username)

"""At most `slots` answers on the device at once, and a bounded first-come line of requests waiting for one.

`admit` refuses at once when the line is full (the route answers 429); a ticket that waits longer than
`wait_s` gives up (503). An answer holds its ticket from before its first forward until its caches are freed,
so a stopped answer's memory is back before the next one starts.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable


class QueueFull(Exception):
    pass


class Gate:
    def __init__(self, slots: int = 1, queue: int = 16, wait_s: float = 300.0):
        if slots < 1 or queue < 0 or wait_s <= 0:
            raise ValueError(f"slots must be >= 1, queue >= 0 and wait_s > 0; got {slots}, {queue}, {wait_s}")
        self.slots, self.queue, self.wait_s = slots, queue, wait_s
        self.cond = threading.Condition()
        self.line: deque[Ticket] = deque()  # waiting, first come first served
        self.running = 0
        self.peak = 0  # most answers seen running at once

    def admit(self) -> Ticket:
        with self.cond:
            if len(self.line) >= self.queue + max(self.slots - self.running, 0):
                raise QueueFull(f"{len(self.line)} requests are already waiting (limit {self.queue}); retry later")
            ticket = Ticket(self)
            self.line.append(ticket)
            return ticket

    def state(self) -> dict:
        with self.cond:
            return {"running": self.running, "waiting": len(self.line), "peak": self.peak}


class Ticket:
    def __init__(self, gate: Gate):
        self.gate = gate
        self.inside = False

    def enter(self, stopped: Callable[[], bool]) -> str:
        """Wait for a slot: "entered", "stopped" (the client left) or "timeout" (waited `wait_s`)."""
        gate = self.gate
        deadline = time.monotonic() + gate.wait_s
        with gate.cond:
            while not (gate.line[0] is self and gate.running < gate.slots):
                outcome = "stopped" if stopped() else "timeout" if time.monotonic() > deadline else None
                if outcome:
                    gate.line.remove(self)
                    gate.cond.notify_all()
                    return outcome
                gate.cond.wait(0.1)
            gate.line.popleft()
            gate.running += 1
            gate.peak = max(gate.peak, gate.running)
            self.inside = True
            gate.cond.notify_all()
            return "entered"

    def leave(self) -> None:
        with self.gate.cond:
            if self.inside:
                self.inside = False
                self.gate.running -= 1
            elif self in self.gate.line:
                self.gate.line.remove(self)
            self.gate.cond.notify_all()

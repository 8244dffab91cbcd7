"""The per-session state kept in `gr.State`, the server's limits, and how engine events fill a turn.

A turn is plain JSON-ready data, so it can be rendered, exported and stored as it is:
    {"id": str, "prompt": str, "columns": {"fused": Column, "0": Column, ...}, "order": [key, ...] (blind turns),
     "vote": {"winner", "blind"} (after a vote)}
    Column = {"text": str, "pieces": [{"text", "driver", "shares", "agree"}], "reason": str, "error": str,
              "plan": {"primary", "dropped", "bits_per_byte"} (the fused column, when the prompt was scored)}
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field

from ensemble.decode.events import FUSED, Finished, MemberFailed, Piece, Started

from .render import FUSED_KEY


@dataclass(frozen=True)
class Limits:
    """Server limits, all configurable from app.py flags."""

    max_prompt_chars: int = 4000
    max_turns: int = 8
    max_new_tokens: int = 512  # cap on the decoding accordion's slider
    queue_size: int = 16  # waiting events beyond this are refused ("queue is full")
    answer_seconds: float = 180.0  # one answer is cut off after this long
    updates_per_second: float = 15.0  # streaming UI refresh rate
    max_per_client: int = 4  # requests one client may have waiting or running (ui/limits.py ClientCap)
    shares_per_minute: float = 6.0  # Share presses per browser session (ui/limits.py ShareGuard)
    allow_remote: bool = False  # members served at http:// URLs (docs/remote.md); off unless the operator allows


@dataclass
class Session:
    """What one browser tab holds: the settings its turns ran with, and the turns."""

    settings: dict | None = None  # ui.picker settings dict the conversation runs with
    names: list[str] = field(default_factory=list)  # member display names, slot order
    turns: list[dict] = field(default_factory=list)
    shared_id: str = ""  # set while viewing a stored comparison (read-only until re-run)
    blind: bool = False  # blind vote: columns shuffled (order) and named Answer A, B, ... until a vote (revealed)
    order: list[str] = field(default_factory=list)  # turn column keys in page order (ui.voting.slots)
    revealed: bool = False
    system: str = ""  # the system prompt every turn of this conversation was answered with
    cache: dict = field(default_factory=dict, repr=False)  # rendered finished turns (ui.columns)

    def settle(self) -> None:
        """Columns left open by a cancelled event (Stop, closed tab) are marked stopped."""
        for turn in self.turns:
            for column in turn["columns"].values():
                column["reason"] = column["reason"] or "cancelled"

    def history(self) -> list[dict]:
        """The conversation so far as engine messages: the system prompt, then each turn's prompt and fused
        answer."""
        out = [{"role": "system", "content": self.system}] if self.system else []
        for turn in self.turns:
            fused = turn["columns"].get(FUSED_KEY, {})
            out += [{"role": "user", "content": turn["prompt"]},
                    {"role": "assistant", "content": fused.get("text", "")}]
        return out

    def record(self) -> dict:
        """The whole comparison, as stored by share and written by export."""
        return {"version": 1, "settings": self.settings, "members": self.names, "turns": self.turns,
                "system": self.system}


class StopSignals:
    """When each browser session (Gradio's session_hash) last asked for an answer and last pressed Stop.

    Stop is a flag the answer polls, not an event cancel, so a stopped answer ends cleanly and keeps its text.
    A request is stopped by a press after it was sent, so Stop also drops a request still waiting in the queue.
    """

    KEEP_S = 3600.0

    def __init__(self):
        self.lock = threading.Lock()
        self.times: dict[tuple[str, str], float] = {}  # (kind "sent" | "stop", session_hash) -> time.monotonic()

    def mark(self, kind: str, session_hash: str) -> None:
        now = time.monotonic()
        with self.lock:
            self.times = {k: t for k, t in self.times.items() if now - t < self.KEEP_S}
            self.times[kind, session_hash] = now

    def sent_at(self, session_hash: str) -> float:
        """When this session last pressed Send (now if it never did, e.g. an API client)."""
        return self.times.get(("sent", session_hash), time.monotonic())

    def stopped_since(self, session_hash: str, start: float) -> bool:
        return self.times.get(("stop", session_hash), float("-inf")) >= start


def new_turn(prompt: str, n_members: int) -> dict:
    keys = [FUSED_KEY, *map(str, range(n_members))]
    columns = {k: {"text": "", "pieces": [], "reason": "", "error": ""} for k in keys}
    return {"id": secrets.token_hex(8), "prompt": prompt, "columns": columns}


def column_key(stream: int) -> str:
    return FUSED_KEY if stream == FUSED else str(stream)


def apply_event(turn: dict, event) -> None:
    """Fold one engine event into the turn."""
    column = turn["columns"].get(column_key(getattr(event, "stream", FUSED)))
    if column is None:
        return
    if isinstance(event, Piece):
        column["text"] += event.text
        if event.stream == FUSED:
            column["pieces"].append({"text": event.text, "driver": event.driver,
                                     "shares": [round(s, 4) for s in event.shares], "agree": list(event.agree)})
    elif isinstance(event, Started) and any(b is not None for b in event.bits_per_byte):
        column["plan"] = {"primary": event.primary, "dropped": list(event.dropped),
                          "bits_per_byte": [None if b is None else round(b, 3) for b in event.bits_per_byte]}
    elif isinstance(event, MemberFailed):
        column["error"] = f"{event.name} failed: {event.error}"
    elif isinstance(event, Finished):
        column["reason"] = event.reason
        column["text"] = event.text


def fail_turn(turn: dict, message: str) -> None:
    for column in turn["columns"].values():
        if not column["reason"]:
            column["reason"], column["error"] = "error", message

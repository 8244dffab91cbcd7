"""Shared comparisons and votes in SQLite (WAL): id -> the whole comparison as JSON; one row per vote.
Survives restarts.

One short-lived connection per call, so any thread (Gradio's worker pool) may use one store.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from contextlib import closing, contextmanager
from pathlib import Path

from .links import new_id, valid_id

SCHEMA = """CREATE TABLE IF NOT EXISTS comparisons (
    id TEXT PRIMARY KEY, created REAL NOT NULL, record TEXT NOT NULL)"""
VOTES = """CREATE TABLE IF NOT EXISTS votes (
    id INTEGER PRIMARY KEY, created REAL NOT NULL, members TEXT NOT NULL, method TEXT NOT NULL,
    winner TEXT NOT NULL, blind INTEGER NOT NULL)"""
DIGESTS = """CREATE TABLE IF NOT EXISTS digests (digest TEXT PRIMARY KEY, id TEXT NOT NULL)"""  # Share twice: one row
WINNERS = ("fused", "tie", "0", "1", "2", "3")
MAX_RECORD_BYTES = 4_000_000


class UnknownComparison(KeyError):
    """No stored comparison has this id."""


class StoreError(ValueError):
    """The database refused (disk full, locked past the timeout, read-only): one line for the page."""


@contextmanager
def storage(action: str):
    try:
        yield
    except sqlite3.Error as e:
        raise StoreError(f"could not {action}: the server's storage is busy or full ({type(e).__name__}); "
                         "try again later") from e


def default_data_dir() -> Path:
    """$ENSEMBLE_DATA_DIR, else /data/ensemble-chat on a Space with persistent storage, else ~/.local/share."""
    if os.environ.get("ENSEMBLE_DATA_DIR"):
        return Path(os.environ["ENSEMBLE_DATA_DIR"])
    if Path("/data").is_dir() and os.access("/data", os.W_OK):
        return Path("/data/ensemble-chat")
    return Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share")) / "ensemble-chat"


class ComparisonStore:
    def __init__(self, data_dir: Path | str):
        self.path = Path(data_dir) / "comparisons.sqlite3"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as db, db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(SCHEMA)
            db.execute(VOTES)
            db.execute(DIGESTS)

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=10)

    def create(self, record: dict) -> str:
        """Store a comparison; returns its new unguessable id."""
        text = json.dumps(record, ensure_ascii=False)
        if len(text.encode()) > MAX_RECORD_BYTES:
            raise ValueError(f"comparison is over {MAX_RECORD_BYTES // 1_000_000} MB; not stored")
        digest = hashlib.sha256(text.encode()).hexdigest()
        with storage("store the comparison"), closing(self._connect()) as db, db:
            db.execute("BEGIN IMMEDIATE")  # one writer from the digest look-up to the insert
            row = db.execute("SELECT id FROM digests WHERE digest = ?", (digest,)).fetchone()
            if row is not None:
                return row[0]  # the same comparison shared again: its link, no new row
            comparison = new_id()
            db.execute("INSERT INTO comparisons VALUES (?, ?, ?)", (comparison, time.time(), text))
            db.execute("INSERT INTO digests VALUES (?, ?)", (digest, comparison))
        return comparison

    def get(self, comparison: str) -> dict:
        if not valid_id(comparison):
            raise UnknownComparison(comparison)
        with closing(self._connect()) as db:
            row = db.execute("SELECT record FROM comparisons WHERE id = ?", (comparison,)).fetchone()
        if row is None:
            raise UnknownComparison(comparison)
        return json.loads(row[0])

    def add_vote(self, members: list[str], method: str, winner: str, blind: bool) -> None:
        """One vote (ui.voting): the best column for one answer of `members` with `method`."""
        if winner not in WINNERS or (winner.isdigit() and int(winner) >= len(members)):
            raise ValueError(f"not a column to vote for: {winner!r}")
        with storage("store the vote"), closing(self._connect()) as db, db:
            db.execute("INSERT INTO votes (created, members, method, winner, blind) VALUES (?, ?, ?, ?, ?)",
                       (time.time(), json.dumps(list(members), ensure_ascii=False), method, winner, int(blind)))

    def votes(self) -> list[dict]:
        with storage("read the votes"), closing(self._connect()) as db:
            rows = db.execute("SELECT members, method, winner, blind FROM votes ORDER BY id").fetchall()
        return [{"members": json.loads(m), "method": method, "winner": w, "blind": bool(b)} for m, method, w, b in rows]

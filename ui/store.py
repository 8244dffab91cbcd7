"""Shared comparisons in SQLite (WAL): id -> the whole comparison as JSON. Survives restarts.

One short-lived connection per call, so any thread (Gradio's worker pool) may use one store.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from contextlib import closing
from pathlib import Path

from .links import new_id, valid_id

SCHEMA = """CREATE TABLE IF NOT EXISTS comparisons (
    id TEXT PRIMARY KEY, created REAL NOT NULL, record TEXT NOT NULL)"""
MAX_RECORD_BYTES = 4_000_000


class UnknownComparison(KeyError):
    """No stored comparison has this id."""


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

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=10)

    def create(self, record: dict) -> str:
        """Store a comparison; returns its new unguessable id."""
        text = json.dumps(record, ensure_ascii=False)
        if len(text.encode()) > MAX_RECORD_BYTES:
            raise ValueError(f"comparison is over {MAX_RECORD_BYTES // 1_000_000} MB; not stored")
        comparison = new_id()
        with closing(self._connect()) as db, db:
            db.execute("INSERT INTO comparisons VALUES (?, ?, ?)", (comparison, time.time(), text))
        return comparison

    def get(self, comparison: str) -> dict:
        if not valid_id(comparison):
            raise UnknownComparison(comparison)
        with closing(self._connect()) as db:
            row = db.execute("SELECT record FROM comparisons WHERE id = ?", (comparison,)).fetchone()
        if row is None:
            raise UnknownComparison(comparison)
        return json.loads(row[0])

"""ui.store: shared comparisons in SQLite (WAL) survive a reopen; unknown ids are refused."""

import sqlite3
import threading

import pytest

from ui.links import new_id
from ui.store import ComparisonStore, UnknownComparison

RECORD = {"version": 1, "members": ["a", "b"], "settings": {"method": "unite"},
          "turns": [{"prompt": "héllo <b>", "columns": {"fused": {"text": "x", "pieces": [], "reason": "end"}}}]}


def test_create_read_and_survive_reopen(tmp_path):
    store = ComparisonStore(tmp_path)
    comparison = store.create(RECORD)
    assert store.get(comparison) == RECORD
    del store
    assert ComparisonStore(tmp_path).get(comparison) == RECORD  # a new process would do the same


def test_wal_mode(tmp_path):
    ComparisonStore(tmp_path)
    with sqlite3.connect(tmp_path / "comparisons.sqlite3") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


@pytest.mark.parametrize("bad", ["", "nope", "x' OR '1'='1", new_id()])
def test_unknown_id_is_refused(tmp_path, bad):
    store = ComparisonStore(tmp_path)
    store.create(RECORD)
    with pytest.raises(UnknownComparison):
        store.get(bad)


def test_ids_differ_and_threads_can_write(tmp_path):
    store = ComparisonStore(tmp_path)
    ids = []
    records = [{**RECORD, "n": n} for n in range(8)]
    threads = [threading.Thread(target=lambda r=r: ids.append((store.create(r), r))) for r in records * 2]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({i for i, _ in ids}) == 8 and all(store.get(i) == r for i, r in ids)  # the same record: one id


def test_oversized_record_is_refused(tmp_path):
    with pytest.raises(ValueError, match="not stored"):
        ComparisonStore(tmp_path).create({"turns": ["x" * 5_000_000]})

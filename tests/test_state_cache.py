"""A state connection reads through a page cache sized for millions of people (state.CACHE_KIB), not SQLite's
default 2 MB, which re-reads the same pages with a system call each (measured figures: state.py)."""

from __future__ import annotations

from pathlib import Path

from connector.state import CACHE_KIB, StateStore


def test_a_state_connection_keeps_a_large_page_cache(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.sqlite")
    try:
        assert store.db.execute("PRAGMA cache_size").fetchone()[0] == -CACHE_KIB
        assert CACHE_KIB * 1024 > 2_000 * 1024  # more than the default (2,000 KiB)
    finally:
        store.close()

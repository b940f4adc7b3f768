"""Two servers opening a new SQLite journal at the same instant (two hosts started together, on the
default journal) both open it: switching a new file to WAL fails at once for the one that comes
second, unless it waits and asks again (`sqlite._switch_to_wal`).

Each attempt lines up two threads on a fresh file and opens it from both. Without the wait about
one attempt in a hundred failed here, so the 300 catch it in most runs (a flaky pass is
possible, a flaky failure is not).
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from apimp_video_mcp import defaults
from apimp_video_mcp.store.sqlite import _connect

ATTEMPTS = 300


def test_two_servers_opening_a_new_journal_at_once_both_open_it(tmp_path: Path) -> None:
    failures: list[sqlite3.Error] = []

    def open_at_once(path: Path, start: threading.Barrier) -> None:
        start.wait()
        try:
            _connect(str(path), busy_timeout_seconds=defaults.JOURNAL_BUSY_TIMEOUT_SECONDS).close()
        except sqlite3.Error as exc:
            failures.append(exc)

    for attempt in range(ATTEMPTS):
        start = threading.Barrier(2)
        servers = [
            threading.Thread(target=open_at_once, args=(tmp_path / f"{attempt}.sqlite3", start))
            for _ in range(2)
        ]
        for server in servers:
            server.start()
        for server in servers:
            server.join()

    assert failures == []

"""File-backed limit store: one SQLite file shared by every gateway process on a host.

Each operation is one ``BEGIN IMMEDIATE`` transaction: SQLite's write lock is
taken before the buckets are read, so two processes can never both read the
same level and both take the last token. WAL mode lets the lock be handed over
without a full fsync; ``synchronous=NORMAL`` may lose the last few charges on a
power cut (never on a process crash), which a rate limiter can afford.

SQLite calls block, so they run in a worker thread (``asyncio.to_thread``); one
connection per store, used by one thread at a time under a lock.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from functions.ratelimit.store import (
    BucketRequest,
    Decision,
    LimitStoreError,
    charged,
    decide,
    refill,
)

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS buckets (
    key TEXT PRIMARY KEY,
    tokens REAL NOT NULL,
    updated_at REAL NOT NULL,  -- Unix seconds
    expires_at REAL NOT NULL
) WITHOUT ROWID
"""
_UPSERT = """
INSERT INTO buckets (key, tokens, updated_at, expires_at) VALUES (?, ?, ?, ?)
ON CONFLICT (key) DO UPDATE SET
    tokens = excluded.tokens, updated_at = excluded.updated_at, expires_at = excluded.expires_at
"""
# expired rows are deleted every this many transactions that wrote
_SWEEP_EVERY = 1024


class FileStore:
    """Buckets in a SQLite file (created, with its directory, on first use).

    ``timeout_s`` bounds how long a call waits for another process's transaction
    (SQLite's busy timeout); past it the call fails with :class:`LimitStoreError`.
    """

    def __init__(self, path: Path, timeout_s: float = 2.0) -> None:
        self.path = path
        self._timeout_s = timeout_s
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._writes = 0

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self.path, timeout=self._timeout_s, isolation_level=None, check_same_thread=False
            )
            try:
                self._setup(conn)
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def _setup(self, conn: sqlite3.Connection) -> None:
        """Pragmas and schema. Switching to WAL needs the file to itself and does not wait
        on the busy timeout, so connections opening at once retry until ``timeout_s``."""
        conn.execute(f"PRAGMA busy_timeout = {int(self._timeout_s * 1000)}")
        deadline = time.monotonic() + self._timeout_s
        while True:
            try:
                if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                    conn.execute("PRAGMA journal_mode = WAL")  # persists in the file
                conn.execute("PRAGMA synchronous = NORMAL")
                conn.execute(_SCHEMA)
                return
            except sqlite3.OperationalError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.01)

    def _levels(
        self, conn: sqlite3.Connection, requests: Sequence[BucketRequest], now: float
    ) -> list[tuple[float, float]]:
        """Each bucket's level at ``now``, and the timestamp to write with it."""
        keys = [r.key for r in requests]
        marks = ",".join("?" * len(keys))
        rows = conn.execute(
            f"SELECT key, tokens, updated_at FROM buckets"
            f" WHERE key IN ({marks}) AND expires_at > ?",
            [*keys, now],
        ).fetchall()
        found = {key: (tokens, updated_at) for key, tokens, updated_at in rows}
        return [
            (refill(*found[r.key], r, now), max(now, found[r.key][1]))
            if r.key in found
            else (r.capacity, now)
            for r in requests
        ]

    def _write(
        self,
        conn: sqlite3.Connection,
        requests: Sequence[BucketRequest],
        levels: list[tuple[float, float]],
        now: float,
    ) -> None:
        rows = []
        for r, (level, stamp) in zip(requests, levels, strict=True):
            left = charged(level, r)
            rows.append((r.key, left, stamp, stamp + r.ttl_for(left)))
        conn.executemany(_UPSERT, rows)
        self._writes += 1
        if self._writes % _SWEEP_EVERY == 0:
            conn.execute("DELETE FROM buckets WHERE expires_at <= ?", (now,))

    def _transaction(self, work: Callable[[sqlite3.Connection], T]) -> T:
        with self._lock:
            try:
                conn = self._connect()
                conn.execute("BEGIN IMMEDIATE")
                try:
                    result = work(conn)
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                return result
            except (sqlite3.Error, OSError) as exc:
                self._close()  # reconnect next time: the file may be back
                raise LimitStoreError(f"rate-limit file {self.path}: {exc}") from exc

    def _acquire(
        self, conn: sqlite3.Connection, requests: Sequence[BucketRequest], now: float
    ) -> Decision:
        levels = self._levels(conn, requests, now)
        decision = decide(requests, [level for level, _ in levels])
        if decision.allowed:
            self._write(conn, requests, levels, now)
        return decision

    def _charge(
        self, conn: sqlite3.Connection, requests: Sequence[BucketRequest], now: float
    ) -> None:
        self._write(conn, requests, self._levels(conn, requests, now), now)

    async def acquire(self, requests: Sequence[BucketRequest], now: float) -> Decision:
        return await asyncio.to_thread(self._transaction, lambda c: self._acquire(c, requests, now))

    async def charge(self, requests: Sequence[BucketRequest], now: float) -> None:
        await asyncio.to_thread(self._transaction, lambda c: self._charge(c, requests, now))

    def _close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            conn.close()

    async def aclose(self) -> None:
        def close() -> None:
            with self._lock:
                self._close()

        await asyncio.to_thread(close)

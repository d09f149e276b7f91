"""Feedback in one SQLite file beside the audit log, for gateways on one host.

``<audit directory>/../feedback.sqlite3`` is shared by every gateway process on the
host (SQLite locks the file), in WAL mode. Two tables:

- ``requests`` (tenant, request id) → experiment, variant, time: an O(log n) B-tree
  look-up per rating. Written with ``synchronous=NORMAL``: a crash can forget the
  last few requests (rating them is then a 404), never a rating. Rows older than
  the window are pruned every :data:`_PRUNE_EVERY` requests.
- ``feedback`` (tenant, request id, rater) → rating, comment, experiment, variant,
  time, written with ``synchronous=FULL``: a rating is on disk (fsynced) before its
  200, and a second rating by the same rater replaces the first.

Every answered chat is remembered before its last byte leaves, so remembering is on
the hot path: group commit, as in the audit writer. While one transaction is being
written, the requests that arrive queue behind it and the next transaction takes
them all (one thread hop, one commit); an idle store commits at once, no timer.

The connection is used from worker threads in turn (``asyncio.to_thread``), never on
the event loop. A database locked past its timeout, or unwritable, is a
:class:`~functions.errors.StorageUnavailableError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import ParamSpec, TypeVar

from functions.errors import StorageUnavailableError
from functions.feedback.model import DAY_S, FeedbackRequest, Rating

P = ParamSpec("P")
T = TypeVar("T")
_PRUNE_EVERY = 1_024  # remembered requests between two prunes of the index
_Row = tuple[str, str, str | None, str | None, float]  # tenant, request id, experiment, variant, ts

_SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    tenant TEXT NOT NULL, request_id TEXT NOT NULL, experiment TEXT, variant TEXT,
    ts REAL NOT NULL, PRIMARY KEY (tenant, request_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS requests_ts ON requests (ts);
CREATE TABLE IF NOT EXISTS feedback (
    tenant TEXT NOT NULL, request_id TEXT NOT NULL, rater TEXT NOT NULL,
    rating INTEGER NOT NULL, comment TEXT, experiment TEXT, variant TEXT, ts REAL NOT NULL,
    PRIMARY KEY (tenant, request_id, rater)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS feedback_experiment ON feedback (experiment);
"""


def store_path(audit_directory: Path) -> Path:
    """Where the feedback of the gateway whose audit log is ``audit_directory`` lives."""
    return audit_directory.parent / "feedback.sqlite3"


class SQLiteFeedback:
    """A :class:`~functions.feedback.model.FeedbackStore` and a ratings reader in one file."""

    def __init__(self, path: Path, window_days: int = 90) -> None:
        self.path = path
        self.window_s = window_days * DAY_S
        self._lock = threading.Lock()  # one connection, used from worker threads in turn
        self._db: sqlite3.Connection | None = None
        self._remembered = 0
        self._pending: list[tuple[_Row, asyncio.Future[None]]] = []  # group commit's queue
        self._committing: asyncio.Task[None] | None = None

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=10, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)
            self._db = db
        return self._db

    @contextlib.contextmanager
    def _transaction(self, synchronous: str) -> Iterator[sqlite3.Connection]:
        with self._lock:
            db = self._conn()
            db.execute(f"PRAGMA synchronous={synchronous}")  # per commit: FULL fsyncs the WAL
            with db:
                yield db

    async def remember(
        self, tenant: str, request_id: str, experiment: str | None, variant: str | None
    ) -> None:
        """Remembered (in the database) when this returns; the caller's cancellation
        does not undo it. Concurrent calls share one transaction (group commit)."""
        done = asyncio.get_running_loop().create_future()
        self._pending.append(((tenant, request_id, experiment, variant, time.time()), done))
        if self._committing is None or self._committing.done():
            self._committing = asyncio.create_task(self._commit_pending())
        await asyncio.shield(done)

    async def _commit_pending(self) -> None:
        while self._pending:
            taken, self._pending = self._pending, []
            waiters = [done for _, done in taken]
            try:
                await _unblocked(self._remember_rows, [row for row, _ in taken])
            except Exception as exc:  # a storage error, or anything else: each caller hears it
                _settle(waiters, exc)
            else:
                _settle(waiters, None)
            finally:  # only those not told yet: the commit was cancelled (shutdown)
                _settle(waiters, StorageUnavailableError("feedback index: commit interrupted"))

    async def rate(
        self, tenant: str, rater: str, body: FeedbackRequest, comment: str | None
    ) -> bool:
        return await _unblocked(self.rate_now, tenant, rater, body, comment)

    def remember_now(
        self, tenant: str, request_id: str, experiment: str | None, variant: str | None
    ) -> None:
        """One :meth:`remember`, blocking (from a worker thread)."""
        self._remember_rows([(tenant, request_id, experiment, variant, time.time())])

    def _remember_rows(self, rows: list[_Row]) -> None:
        """Remember ``rows`` in one transaction (blocking, from a worker thread)."""
        with self._transaction("NORMAL") as db:
            db.executemany("INSERT OR REPLACE INTO requests VALUES (?, ?, ?, ?, ?)", rows)
            before, self._remembered = self._remembered, self._remembered + len(rows)
            if before // _PRUNE_EVERY != self._remembered // _PRUNE_EVERY or before == 0:
                db.execute("DELETE FROM requests WHERE ts < ?", (time.time() - self.window_s,))

    def rate_now(self, tenant: str, rater: str, body: FeedbackRequest, comment: str | None) -> bool:
        """:meth:`rate`, blocking (from a worker thread)."""
        with self._transaction("FULL") as db:
            found = db.execute(
                "SELECT experiment, variant FROM requests WHERE tenant = ? AND request_id = ?",
                (tenant, body.request_id),
            ).fetchone()
            if found is None:
                return False
            db.execute(
                "INSERT OR REPLACE INTO feedback VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (tenant, body.request_id, rater, body.rating, comment, *found, time.time()),
            )
        return True

    def ratings(self, *, experiment: str | None = None, tenant: str | None = None) -> list[Rating]:
        query, args = "SELECT * FROM feedback WHERE 1 = 1", list[str]()
        if experiment is not None:
            query, args = query + " AND experiment = ?", [*args, experiment]
        if tenant is not None:
            query, args = query + " AND tenant = ?", [*args, tenant]
        with self._lock:
            rows = self._conn().execute(query + " ORDER BY ts", args).fetchall()
        return [Rating(*row) for row in rows]

    async def aclose(self) -> None:
        if self._committing is not None:
            await asyncio.gather(self._committing, return_exceptions=True)
        self.close()

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None


def _settle(waiters: list[asyncio.Future[None]], failure: BaseException | None) -> None:
    """Tell each waiter not yet told how its commit went."""
    for done in waiters:
        if not done.done():
            if failure is None:
                done.set_result(None)
            else:
                done.set_exception(failure)


async def _unblocked(call: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``call`` in a worker thread; a locked or unwritable database is a 503."""
    try:
        return await asyncio.to_thread(call, *args, **kwargs)
    except (sqlite3.Error, OSError) as exc:  # locked past its timeout, or unwritable
        raise StorageUnavailableError(f"feedback database: {exc}") from exc

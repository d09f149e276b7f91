"""User feedback: ``POST /v1/feedback`` rates an answer by its ``x-request-id``.

    {"request_id": "…", "rating": 1 | -1, "comment": "…"}   → 200 {"object": "feedback", …}

Decisions:

- **Where.** One SQLite file beside the audit log (``<audit directory>/../feedback.sqlite3``),
  shared by every gateway process on the host (SQLite locks the file), written with
  ``synchronous=FULL`` in WAL mode: a rating is on disk (fsynced) before its 200.
- **Which requests can be rated.** Request ids are the caller's to choose (a valid
  ``x-request-id`` or ``traceparent`` is kept), so they are not unique: two tenants
  may send the same one. Every answered chat is remembered under (tenant, request id)
  before its last byte leaves (:meth:`FeedbackStore.remember`, the lifecycle's
  ``answered`` hook); a rating looks up (caller's tenant, request id), an O(log n)
  B-tree lookup. Another tenant's request is then simply not found: 404, the same
  answer as an id nobody used, so a caller learns nothing of other tenants. Within
  a tenant, a reused id names the latest answer given under it.
- **Bounded.** The index keeps ``gateway.feedback_window_days`` of requests (older
  rows are pruned as new ones come); ratings themselves are kept. The index is
  written with ``synchronous=NORMAL``: a crash can forget the last few requests
  (rating them is then a 404), never a rating; each request's audit record is
  durable regardless.
- **Once per request and caller.** (tenant, request id, rater) is the key: a second
  rating by the same key replaces the first. The rater is the key id (a token's
  subject).
- **Comments are text like any other**: bounded (:data:`MAX_COMMENT_CHARS`), scanned
  by the tenant's input filter, stored masked; a comment the policy blocks is refused.

Each POST leaves its own audit record (route ``/v1/feedback``), refused or not.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from loguru import logger
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, field_validator
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from functions import rbac
from functions.audit.local import RequestAudit
from functions.auth import caller
from functions.context import Step
from functions.edge import json_response, read_json
from functions.errors import InvalidRequestError, ServiceUnavailableError
from functions.filtering.scanner import Scanner
from functions.lifecycle import Call

ROUTE = "/v1/feedback"
MAX_COMMENT_CHARS = 2_000
BODY_LIMIT = 16_384  # bytes: a request id, a rating and a comment of 2,000 characters
REQUEST_ID = r"^[A-Za-z0-9._:-]{1,128}$"  # what the edge accepts as a request id
_PRUNE_EVERY = 1_024  # remembered requests between two prunes of the index
_DAY_S = 86_400


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    request_id: StrictStr = Field(pattern=REQUEST_ID, max_length=128)
    rating: StrictInt  # not true, not 1.0: a JSON integer, 1 or -1
    comment: StrictStr | None = Field(default=None, max_length=MAX_COMMENT_CHARS)

    @field_validator("rating")
    @classmethod
    def _up_or_down(cls, rating: int) -> int:
        if rating not in (1, -1):
            raise ValueError("rating is 1 (up) or -1 (down)")
        return rating


class RatedRequestNotFoundError(InvalidRequestError):
    """No answer under this id in the caller's tenant (another tenant's looks the same)."""

    status = 404
    code = "request_not_found"


@dataclass(frozen=True, slots=True)
class Rating:
    """One stored rating, as the report and the export read it."""

    tenant: str
    request_id: str
    rater: str
    rating: int
    comment: str | None
    experiment: str | None
    variant: str | None
    ts: float


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


class FeedbackStore:
    """The request index and the ratings, in one SQLite file (see the module doc)."""

    def __init__(self, path: Path, window_days: int = 90) -> None:
        self.path = path
        self.window_s = window_days * _DAY_S
        self._lock = threading.Lock()  # one connection, used from worker threads in turn
        self._db: sqlite3.Connection | None = None
        self._remembered = 0

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

    def remember(
        self, tenant: str, request_id: str, experiment: str | None, variant: str | None
    ) -> None:
        """An answered chat can be rated from now on (the latest under its id)."""
        now = time.time()
        with self._transaction("NORMAL") as db:
            db.execute(
                "INSERT OR REPLACE INTO requests VALUES (?, ?, ?, ?, ?)",
                (tenant, request_id, experiment, variant, now),
            )
            self._remembered += 1
            if self._remembered % _PRUNE_EVERY == 1:
                db.execute("DELETE FROM requests WHERE ts < ?", (now - self.window_s,))

    def rate(self, tenant: str, rater: str, body: FeedbackRequest, comment: str | None) -> bool:
        """Store (or replace) ``rater``'s rating; False when the tenant has no such request."""
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
        """Every stored rating, optionally of one experiment and one tenant."""
        query, args = "SELECT * FROM feedback WHERE 1 = 1", list[str]()
        if experiment is not None:
            query, args = query + " AND experiment = ?", [*args, experiment]
        if tenant is not None:
            query, args = query + " AND tenant = ?", [*args, tenant]
        with self._lock:
            rows = self._conn().execute(query + " ORDER BY ts", args).fetchall()
        return [Rating(*row) for row in rows]

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None


def make_remember(store: FeedbackStore) -> Callable[[Call], Awaitable[None]]:
    """The lifecycle's ``answered`` hook: index each answered chat for rating. A failure
    is logged and the answer goes on: feedback is worth less than the answer."""

    async def remember(owner: Call) -> None:
        ctx = owner.ctx
        if ctx is None or ctx.principal is None:
            return
        tenant, request_id = ctx.principal.tenant, ctx.request_id
        try:
            await asyncio.to_thread(
                store.remember, tenant, request_id, owner.experiment or None, owner.variant or None
            )
        except sqlite3.Error as exc:
            logger.warning("feedback index", error=str(exc), request_id=request_id)

    return remember


def feedback_route(
    store: FeedbackStore, authenticate: Step, scanner: Scanner, audit: RequestAudit
) -> Route:
    """``POST /v1/feedback``: rate an answer of the caller's own tenant (audited)."""

    async def endpoint(request: Request) -> Response:
        async with audit.opened_durable(ROUTE) as call:
            call.principal = principal = await caller(authenticate, request)
            rbac.require(principal, rbac.CHAT)  # who may not ask (an auditor) may not rate
            body = FeedbackRequest.model_validate(await read_json(request, BODY_LIMIT))
            comment = body.comment
            if comment:
                result = await scanner.scan(principal.tenant, comment, "input")
                call.decisions.update(result.log_fields())
                result.raise_if_blocked()
                comment = result.masked_text
            call.decisions["rating"] = str(body.rating)
            tenant, rater = principal.tenant, principal.key_id
            try:
                stored = await asyncio.to_thread(store.rate, tenant, rater, body, comment)
            except sqlite3.Error as exc:  # locked past its timeout, or unwritable: retry later
                logger.error("feedback store", error=str(exc))
                raise ServiceUnavailableError(
                    "Ratings cannot be stored right now; retry shortly.",
                    headers={"retry-after": "5"},
                ) from None
            if not stored:
                raise RatedRequestNotFoundError(
                    f"No answer with the id `{body.request_id}` to rate.", param="request_id"
                )
            answer = {"object": "feedback", "request_id": body.request_id, "rating": body.rating}
            return json_response({**answer, "comment": comment})

    return Route(ROUTE, endpoint, methods=["POST"])

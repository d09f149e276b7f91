"""User feedback: ``POST /v1/feedback`` rates an answer by its ``x-request-id``.

    {"request_id": "…", "rating": 1 | -1, "comment": "…"}   → 200 {"object": "feedback", …}

Decisions:

- **Which requests can be rated.** Request ids are the caller's to choose (a valid
  ``x-request-id`` or ``traceparent`` is kept), so they are not unique: two tenants
  may send the same one. Every answered chat is remembered under (tenant, request id)
  before its last byte leaves (:meth:`FeedbackStore.remember`, the lifecycle's
  ``answered`` hook); a rating looks up (caller's tenant, request id). Another
  tenant's request is then simply not found: 404, the same answer as an id nobody
  used, so a caller learns nothing of other tenants. Within a tenant, a reused id
  names the latest answer given under it.
- **Bounded.** The index keeps ``gateway.feedback_window_days`` of requests; ratings
  themselves are kept. Losing part of the index only makes a rating a 404, never
  loses a rating; each request's audit record is durable regardless.
- **Once per request and caller.** (tenant, request id, rater) is the key: a second
  rating by the same key replaces the first. The rater is the key id (a token's
  subject).
- **Comments are text like any other**: bounded (:data:`MAX_COMMENT_CHARS`), scanned
  by the tenant's input filter, stored masked; a comment the policy blocks is refused.
- **Where** follows ``ENCLAVE_STORAGE_URI`` (:func:`feedback_store`):

  ============  ===========================================  ==============================
  storage       ratings                                      index of answered requests
  ============  ===========================================  ==============================
  a directory   SQLite beside the audit log (:mod:`.sqlite`)  the same file
  a bucket      one object per rating (:mod:`.bucket`)       Redis when the rate limits use
                                                             it, else this process's memory
  ============  ===========================================  ==============================

  With a bucket the gateway writes nothing to its local disk, and a rating may
  reach any container, whichever one answered.
- **Fail closed.** A store that cannot be reached answers a rating with 503 and
  ``Retry-After``; an answer whose indexing fails is still given (logged).

Each POST leaves its own audit record (route ``/v1/feedback``), refused or not.
"""

from functions.feedback.factory import feedback_store, ratings_reader
from functions.feedback.model import (
    MAX_COMMENT_CHARS,
    REQUEST_ID,
    FeedbackRequest,
    FeedbackStore,
    Rating,
    RatingsReader,
)
from functions.feedback.route import (
    BODY_LIMIT,
    ROUTE,
    RatedRequestNotFoundError,
    feedback_route,
    make_remember,
)
from functions.feedback.sqlite import SQLiteFeedback, store_path

__all__ = [
    "BODY_LIMIT",
    "MAX_COMMENT_CHARS",
    "REQUEST_ID",
    "ROUTE",
    "FeedbackRequest",
    "FeedbackStore",
    "RatedRequestNotFoundError",
    "Rating",
    "RatingsReader",
    "SQLiteFeedback",
    "feedback_route",
    "feedback_store",
    "make_remember",
    "ratings_reader",
    "store_path",
]

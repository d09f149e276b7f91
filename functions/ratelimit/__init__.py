"""Rate limits and budgets, per key and per tenant, shared by every gateway process.

Semantics
---------
- **Requests per minute** (``rpm``): a token bucket of capacity ``rpm`` refilled at
  ``rpm / 60`` per second, continuously. Each request costs 1. A fresh bucket is
  full, so up to ``rpm`` requests may come in a burst, then one every ``60 / rpm`` s.
- **Tokens per minute** (``tpm``): the same, capacity ``tpm``, refill ``tpm / 60``
  per second. A request costs its *estimate* at admission (prompt characters / 4,
  plus ``max_tokens`` or ``assumed_completion_tokens``, times ``n``);
  :meth:`Admission.settle` then refunds or charges the difference to the real
  usage. A charge past empty leaves a debt that later requests wait out.
- **Daily token budget** (``daily_tokens``): a fixed window per UTC day (a bucket
  that gains ``daily_tokens`` at each 00:00 UTC, never above it); the estimate is
  reserved at admission and reconciled at settlement like TPM.
- **Debt is never forgiven.** A request that used more than its estimate leaves its
  buckets below zero; a TPM bucket refills the debt first, a budget carries it into
  the next day (a debt of two days' budget takes two midnights to repay). Idle
  buckets are kept until they would be full again, debt included, so a bucket
  expiring in the store changes nothing.
- Bucket keys: ``{<tenant>}:key:<key_id>:<rpm|tpm|budget>``,
  ``{<tenant>}:tenant:<…>`` and, for an end user of a frontend key,
  ``{<tenant>}:user:<key_id>:<pseudonym>:<…>`` (``{tenant}`` is a Redis Cluster
  hash tag; the pseudonym is keyed, so the store holds no user id or address).
- Every limit exists for the key and for its tenant, and for each end user a
  frontend key names (``user_limits``, ``tenant_user_limits``, or the key's own
  ``user_*``); ``None`` is unlimited. One admission takes from all of them
  **atomically, all or nothing**: a refused request charges nothing anywhere, so
  user A's 429 costs the key nothing and user B is still let in.
- **Refusal** is a 429 (:class:`~functions.errors.RateLimitError`) worded like
  OpenAI's, with ``retry-after`` (whole seconds ≥ 1: until *every* bucket holds the
  cost, absent other traffic; for a budget, until midnight UTC), ``retry-after-ms``
  and the ``x-ratelimit-*`` headers (:mod:`functions.ratelimit.headers`), which
  admitted answers carry too. A request that could never fit (estimate above a
  TPM or daily limit) is a 429 with ``x-should-retry: false`` and no retry-after.

Stores (:class:`LimitStore`): :class:`MemoryStore` for one process,
:class:`FileStore` (SQLite, ``BEGIN IMMEDIATE``) for several processes on one host,
:class:`~functions.ratelimit.redis.RedisStore` (one Lua script; imported only when
chosen) for several hosts. Each is exact under
concurrency: the check and the take are one atomic step in the store.

When the store cannot be reached, ``on_store_error`` decides: ``fail_closed``
(default) answers 503 (:class:`~functions.errors.ServiceUnavailableError`) to any
request that has a limit; ``fail_open`` admits it unlimited. Either way an ERROR
line is logged at most once per ``error_log_interval_s``. A failed settlement is
logged and dropped: its answer has already been sent.
"""

from functions.ratelimit.file import FileStore
from functions.ratelimit.limiter import Admission, RateLimiter, build_store, estimate_tokens
from functions.ratelimit.memory import MemoryStore
from functions.ratelimit.settings import Limits, RateLimitSettings
from functions.ratelimit.store import BucketRequest, Decision, LimitStore, LimitStoreError

__all__ = [
    "Admission",
    "BucketRequest",
    "Decision",
    "FileStore",
    "LimitStore",
    "LimitStoreError",
    "Limits",
    "MemoryStore",
    "RateLimitSettings",
    "RateLimiter",
    "build_store",
    "estimate_tokens",
]

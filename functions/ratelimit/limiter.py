"""The rate limiter: one atomic store call per admission, one (optional) per settlement."""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from loguru import logger
from prometheus_client import CollectorRegistry, Counter

from functions.errors import RateLimitError, ServiceUnavailableError
from functions.ratelimit.file import FileStore
from functions.ratelimit.headers import format_duration, limit_headers, retry_headers
from functions.ratelimit.memory import MemoryStore
from functions.ratelimit.settings import Limits, RateLimitSettings
from functions.ratelimit.store import (
    BucketRequest,
    BucketState,
    Decision,
    LimitStore,
    LimitStoreError,
)
from functions.wire import ChatCompletionRequest

Kind = Literal["requests", "tokens", "budget"]
DAY_S = 86_400  # Unix time has no leap seconds: multiples of a day are UTC midnights
_WHAT = {"requests": "requests per min (RPM)", "tokens": "tokens per min (TPM)"}


def build_store(settings: RateLimitSettings, data_dir: Path) -> LimitStore:
    """The store ``settings.backend`` names; nothing is connected until first use."""
    if settings.backend == "file":
        path = settings.file_path or data_dir / "ratelimit.sqlite3"
        return FileStore(path, timeout_s=settings.store_timeout_s)
    if settings.backend == "redis":
        # redis.asyncio takes ~0.2 s to import: only deployments that use it pay for it
        from functions.ratelimit.redis import RedisStore

        url = settings.redis_url.get_secret_value()
        return RedisStore(url, prefix=settings.redis_prefix, timeout_s=settings.store_timeout_s)
    return MemoryStore()


def prompt_tokens(request: ChatCompletionRequest) -> int:
    """The prompt's tokens as the limiter counts them: characters / 4."""
    return math.ceil(sum(len(m.text()) for m in request.messages) / 4)


def estimate_tokens(request: ChatCompletionRequest, assumed_completion_tokens: int) -> int:
    """Tokens charged at admission: the prompt, plus the completion budget."""
    completion = request.token_limit or assumed_completion_tokens
    return prompt_tokens(request) + completion * (request.n or 1)


def utc_day(now: float) -> tuple[str, float]:
    """The UTC date of ``now`` (``yyyy-mm-dd``) and the seconds left until it ends."""
    moment = datetime.fromtimestamp(now, UTC)
    midnight = datetime.combine(moment.date() + timedelta(days=1), datetime.min.time(), UTC)
    return moment.date().isoformat(), midnight.timestamp() - now


@dataclass(frozen=True, slots=True)
class _Bucket:
    kind: Kind
    scope: str  # for messages: "key 3f2a…" or "tenant acme"
    limit: int
    request: BucketRequest


def _scope_names(key_id: str, tenant: str, user: str | None, scope: str) -> tuple[str, str]:
    """A scope's bucket key prefix and its name in messages."""
    # "{tenant}" is a Redis Cluster hash tag: every key of one call in one slot
    if scope == "key":
        return f"{{{tenant}}}:key:{key_id}", f"key {key_id}"
    if scope == "user":  # an end user of this key: a pseudonym, never an address
        return f"{{{tenant}}}:user:{key_id}:{user}", f"user {user}"
    return f"{{{tenant}}}:tenant", f"tenant {tenant}"


def _buckets(
    key_id: str,
    tenant: str,
    scopes: Sequence[tuple[str, Limits]],
    cost: int,
    user: str | None = None,
) -> list[_Bucket]:
    out: list[_Bucket] = []
    for scope, limits in scopes:
        name, label = _scope_names(key_id, tenant, user, scope)
        if limits.rpm:
            bucket = BucketRequest(f"{name}:rpm", limits.rpm, limits.rpm / 60, 1)
            out.append(_Bucket("requests", label, limits.rpm, bucket))
        if limits.tpm:
            bucket = BucketRequest(f"{name}:tpm", limits.tpm, limits.tpm / 60, cost)
            out.append(_Bucket("tokens", label, limits.tpm, bucket))
        if limits.daily_tokens:
            # one key across days: a UTC day's window refills it, a debt carries over
            bucket = BucketRequest(f"{name}:budget", limits.daily_tokens, 0, cost, DAY_S)
            out.append(_Bucket("budget", label, limits.daily_tokens, bucket))
    return out


def _headers(buckets: Sequence[_Bucket], states: Sequence[BucketState]) -> dict[str, str]:
    """OpenAI's headers for the binding (least remaining) requests and tokens buckets."""
    headers: dict[str, str] = {}
    for kind in ("requests", "tokens"):
        pairs = [(b, s) for b, s in zip(buckets, states, strict=True) if b.kind == kind]
        if pairs:
            bucket, state = min(pairs, key=lambda p: (p[1].remaining, p[0].limit))
            headers |= limit_headers(kind, bucket.limit, state.remaining, state.reset_s)
    return headers


class Admission:
    """A request let in: the headers to answer with, and :meth:`settle` to call once it is done."""

    __slots__ = ("_settle", "estimated_tokens", "headers")

    def __init__(
        self,
        headers: dict[str, str],
        estimated_tokens: int,
        settle: Callable[[int], Awaitable[None]] | None = None,
    ) -> None:
        self.headers = headers
        self.estimated_tokens = estimated_tokens
        self._settle = settle

    async def settle(self, actual_tokens: int) -> None:
        """Correct the token charges from the estimate to ``actual_tokens`` (usage's total).

        Call it once the answer is complete, with 0 if nothing was generated (the
        request still counts against RPM); for a client that went away mid-answer,
        with the prompt and the tokens generated until then. More than the estimate
        leaves a debt that later requests repay (never forgiven, not even by a new
        day). Later calls do nothing. It never raises: a store failure here is
        logged, since the answer has already gone out.
        """
        settle, self._settle = self._settle, None
        if settle is not None:
            await settle(max(0, actual_tokens))


class LimiterMetrics:
    """Refusals by the bucket that was short, and failed store calls; every series from 0."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.refusals = Counter(
            "enclave_gateway_ratelimit_refusals",
            "429s, once for each bucket that could not hold the request (budget: daily tokens)",
            ["kind", "scope"],
            registry=registry,
        )
        self.store_errors = Counter(
            "enclave_gateway_ratelimit_store_errors",
            "Failed rate-limit store calls (admit: 503 or unlimited; settle: usage not reconciled)",
            ["operation"],
            registry=registry,
        )
        for kind in ("requests", "tokens", "budget"):
            for scope in ("key", "tenant", "user"):
                self.refusals.labels(kind, scope)
        for operation in ("admit", "settle"):
            self.store_errors.labels(operation)

    def refused(self, buckets: Sequence[_Bucket], decision: Decision) -> None:
        for bucket, state in zip(buckets, decision.buckets, strict=True):
            if state.wait_s > 0:
                self.refusals.labels(bucket.kind, bucket.scope.split(" ", 1)[0]).inc()


class RateLimiter:
    """Admits requests against per-key and per-tenant limits held in a shared store."""

    def __init__(
        self,
        settings: RateLimitSettings,
        store: LimitStore,
        clock: Callable[[], float] = time.time,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.settings = settings
        self._store = store
        self._clock = clock  # Unix seconds; shared stores need one clock across processes
        self._last_error_log = -math.inf
        self._metrics = LimiterMetrics(registry) if registry is not None else None

    @classmethod
    def from_settings(
        cls, settings: RateLimitSettings, data_dir: Path, registry: CollectorRegistry | None = None
    ) -> RateLimiter:
        return cls(settings, build_store(settings, data_dir), registry=registry)

    def estimate_tokens(self, request: ChatCompletionRequest) -> int:
        return estimate_tokens(request, self.settings.assumed_completion_tokens)

    async def admit(
        self,
        key_id: str,
        tenant: str,
        limits: Limits | None = None,
        estimated_tokens: int = 0,
        user: str | None = None,
        user_limits: Limits | None = None,
    ) -> Admission:
        """Let one request in, or raise 429 (:class:`RateLimitError`) with OpenAI's headers.

        ``limits`` are the key's (default: from settings); the tenant's come from
        settings. With ``user`` (an end user's pseudonym, for a frontend key) the
        user's own buckets under this key are charged as well, with ``user_limits``
        (default: the tenant's per-user limits from settings). Each RPM bucket is
        charged 1, each TPM bucket and daily budget ``estimated_tokens``, all at
        once or not at all. An unreachable store is a 503
        (:class:`ServiceUnavailableError`) or an unlimited admission, per
        ``settings.on_store_error``.
        """
        key_limits = limits if limits is not None else self.settings.limits_for_key(key_id)
        scopes = [("key", key_limits), ("tenant", self.settings.limits_for_tenant(tenant))]
        if user is not None:
            per_user = user_limits or self.settings.limits_for_user(tenant)
            scopes.insert(0, ("user", per_user))  # the narrowest first: the user's 429
        now = self._clock()
        until_midnight = utc_day(now)[1]
        buckets = _buckets(key_id, tenant, scopes, estimated_tokens, user)
        if not buckets:
            return Admission({}, estimated_tokens)
        try:
            decision = await self._store.acquire([b.request for b in buckets], now)
        except LimitStoreError as exc:
            if self._metrics is not None:
                self._metrics.store_errors.labels("admit").inc()
            return self._store_down(exc, now, estimated_tokens)
        headers = _headers(buckets, decision.buckets)
        if not decision.allowed:
            if self._metrics is not None:
                self._metrics.refused(buckets, decision)
            raise _refusal(buckets, decision, headers, until_midnight)

        async def settle(actual_tokens: int) -> None:
            await self._settle(buckets, actual_tokens - estimated_tokens)

        return Admission(headers, estimated_tokens, settle)

    async def _settle(self, buckets: Sequence[_Bucket], delta: int) -> None:
        charges = [b.request.with_cost(delta) for b in buckets if b.kind != "requests"]
        if delta == 0 or not charges:
            return
        try:
            await self._store.charge(charges, self._clock())
        except LimitStoreError as exc:
            if self._metrics is not None:
                self._metrics.store_errors.labels("settle").inc()
            self._log_store_error(exc, self._clock(), "token usage not reconciled")

    def _store_down(self, exc: LimitStoreError, now: float, estimated_tokens: int) -> Admission:
        if self.settings.on_store_error == "fail_open":
            self._log_store_error(exc, now, "admitting without limits (fail_open)")
            return Admission({}, estimated_tokens)
        self._log_store_error(exc, now, "refusing limited requests with 503 (fail_closed)")
        raise ServiceUnavailableError(
            "Rate limits cannot be checked right now (the limit store is unreachable). "
            "Please retry shortly.",
            headers={"retry-after": "1"},
        ) from exc

    def _log_store_error(self, exc: LimitStoreError, now: float, consequence: str) -> None:
        if now - self._last_error_log >= self.settings.error_log_interval_s:
            self._last_error_log = now
            logger.error(
                f"rate-limit store unreachable: {consequence}",
                backend=self.settings.backend,
                error=str(exc),
            )

    async def aclose(self) -> None:
        await self._store.aclose()


def _budget_wait(bucket: _Bucket, state: BucketState, until_midnight: float) -> float:
    """Until a daily budget holds the cost: the next midnight, or more while in debt."""
    if state.wait_s != math.inf or bucket.request.cost > bucket.limit:
        return state.wait_s
    days = math.ceil((bucket.request.cost - state.remaining) / bucket.limit)
    return until_midnight + (max(1, days) - 1) * DAY_S


def _refusal(
    buckets: Sequence[_Bucket], decision: Decision, headers: dict[str, str], until_midnight: float
) -> RateLimitError:
    """The 429 for a refused decision, worded as OpenAI words them."""
    waits = [
        _budget_wait(b, s, until_midnight) if b.kind == "budget" else s.wait_s
        for b, s in zip(buckets, decision.buckets, strict=True)
    ]
    index = max(range(len(buckets)), key=waits.__getitem__)
    bucket, state, wait = buckets[index], decision.buckets[index], waits[index]
    cost = math.ceil(bucket.request.cost)
    what = _WHAT.get(bucket.kind, "tokens per day")
    if wait == math.inf:
        message = (
            f"Request too large for {bucket.scope} on {what}: Limit {bucket.limit}, "
            f"Requested {cost}. The input or output tokens must be reduced in order to run "
            "successfully."
        )
        return RateLimitError(message, headers={**headers, "x-should-retry": "false"})
    used = max(0, math.ceil(bucket.limit - state.remaining))
    figures = f"Limit {bucket.limit}, Used {used}, Requested {cost}."
    if bucket.kind == "budget":
        message = (
            f"Daily token budget exhausted for {bucket.scope}: {figures} It resets at 00:00 UTC."
        )
    else:
        message = f"Rate limit reached for {bucket.scope} on {what}: {figures}"
    message += f" Please try again in {format_duration(wait)}."
    return RateLimitError(message, headers={**headers, **retry_headers(wait)})

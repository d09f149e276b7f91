"""The gateway's rate-limit step: admit the request against its key's and tenant's buckets.

A key's own limits (``rpm``, ``tpm``, ``daily_tokens`` on its record) win over
the settings' defaults; the tenant's come from settings. The end user a frontend
key names is limited too, per (key, user): by the key's ``user_*`` limits, else
the settings' ``tenant_user_limits`` or ``user_limits``. The admission rides on
the context so the answer can carry the ``x-ratelimit-*`` headers and settle the
token estimate against the real usage.
"""

from __future__ import annotations

from functions.context import ChatContext, ChatStep, Principal
from functions.ratelimit.limiter import RateLimiter
from functions.ratelimit.settings import Limits
from functions.wire import ChatCompletionRequest


def limits_of(principal: Principal) -> Limits | None:
    if principal.rpm is None and principal.tpm is None and principal.daily_tokens is None:
        return None  # the settings decide (defaults and per-key overrides)
    return Limits(rpm=principal.rpm, tpm=principal.tpm, daily_tokens=principal.daily_tokens)


def _as_asked(ctx: ChatContext) -> ChatCompletionRequest:
    """The request as the caller asked it: a ``max_tokens`` the context window filled in
    (up to half a large context) is room, not an ask, so the limiter's assumed completion
    applies instead, as for any request without one."""
    if ctx.window is not None and ctx.window.max_tokens is not None:
        return ctx.body.model_copy(update={"max_tokens": None})
    return ctx.body


def make_rate_limit(limiter: RateLimiter) -> ChatStep:
    async def rate_limit(ctx: ChatContext) -> ChatContext:
        hit = ctx.cache is not None and ctx.cache.result == "hit"
        admission = await limiter.admit(
            ctx.principal.key_id,
            ctx.principal.tenant,
            limits_of(ctx.principal),
            # a cached answer costs no model tokens: it counts as a request only
            estimated_tokens=0 if hit else limiter.estimate_tokens(_as_asked(ctx)),
            # a frontend key's end user has buckets of their own, as well as the key's
            user=user.pseudonym if (user := ctx.principal.end_user) is not None else None,
            user_limits=ctx.principal.user_limits,
        )
        return ctx.decided("rate_limit", "admitted", admission=admission)

    return rate_limit

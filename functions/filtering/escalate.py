"""The step before the input filter that runs injection stage 2 off the event loop.

The input filter masks small requests inline, on the event loop (see
:mod:`.scanner`): fine for stage 1 (~0.15 ms a message), not for an e5 embedding
(50-200 ms, invariant I4). So this step asks stage 1, in a worker thread, which of
the request's messages it is unsure of, and embeds those there, in one batch; the
scan then finds their vectors in the shared cache. A large request is scanned in
the scanner's worker process, which computes what it needs itself: it is skipped
here, so as not to embed twice.
"""

from __future__ import annotations

import asyncio

from functions.context import ChatContext, ChatStep
from functions.filtering.engine import FilterSet

INLINE_BYTES = 16_384  # the scanner's default: larger requests are scanned elsewhere


def make_prepare_injection(filters: FilterSet, inline_bytes: int = INLINE_BYTES) -> ChatStep:
    async def prepare_injection(ctx: ChatContext) -> ChatContext:
        cf = filters.for_tenant(ctx.principal.tenant)
        policy = cf.policy
        if policy.enabled and policy.injection_model and ctx.size <= inline_bytes:
            tenant = ctx.principal.tenant  # texts the scan memo has scored are skipped
            await asyncio.to_thread(cf.prepare_request, ctx.body, ctx.retrieved, tenant)
        return ctx

    return prepare_injection

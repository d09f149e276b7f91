"""The step before the input filter that runs injection stage 2 off the event loop.

The input filter masks small requests inline, on the event loop (see
:mod:`.scanner`): fine for stage 1 (~0.15 ms a message), not for an e5 embedding
(50-200 ms, invariant I4). So this step asks stage 1 which of the request's messages
it is unsure of, and embeds those in a worker thread, in one batch; the scan then
finds their vectors in the shared cache. Stage 1 runs here on the event loop for a
request of up to :data:`LOOP_BYTES`, as the scan after it does: most requests
escalate nothing, and a thread hop each (60 µs of CPU) was a thirtieth of a plain
request's. A larger one asks stage 1 in the thread too. A request over the scanner's
limit is scanned in the scanner's worker process, which computes what it needs
itself: it is skipped here, so as not to embed twice.
"""

from __future__ import annotations

import asyncio

from functions.context import ChatContext, ChatStep
from functions.filtering.engine import FilterSet

INLINE_BYTES = 16_384  # the scanner's default: larger requests are scanned elsewhere
LOOP_BYTES = 4_096  # up to this, stage 1 asks on the loop (about 0.1-0.5 ms) before a hop


def make_prepare_injection(filters: FilterSet, inline_bytes: int = INLINE_BYTES) -> ChatStep:
    async def prepare_injection(ctx: ChatContext) -> ChatContext:
        cf = filters.for_tenant(ctx.principal.tenant)
        policy = cf.policy
        if not (policy.enabled and policy.injection_model and ctx.size <= inline_bytes):
            return ctx
        tenant = ctx.principal.tenant  # texts the scan memo has scored are skipped
        if ctx.size > LOOP_BYTES:
            await asyncio.to_thread(cf.prepare_request, ctx.body, ctx.retrieved, tenant)
        elif inputs := cf.unembedded(ctx.body, ctx.retrieved, tenant):
            await asyncio.to_thread(cf.embed_for_stage_two, inputs)
        return ctx

    return prepare_injection

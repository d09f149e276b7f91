"""The context window in the chat pipeline: the fitting step, and one retry on refusal.

    window   after routing (the plan is known and compliant), before the cache
             lookup (which keys the conversation as sent) and the rate limit
             (which charges it): fit the conversation into the smallest known
             context of the planned deployments (:mod:`.fit`); decision ``window``
    refit    when a deployment still refuses the prompt as too long
             (``context_length_exceeded``) under ``truncate``: fit again with
             twice the safety margin and send that once; decision ``window``
             gains ``retried``

With no known context (an external provider, a node that does not say), the
request goes as it came and the decision is ``window: unknown``.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping

from functions import lifecycle
from functions.context import ChatContext, ChatStep
from functions.errors import UpstreamError
from functions.window.fit import Window, fit
from functions.window.lengths import ContextLengths
from functions.window.settings import Policy, WindowSettings
from functions.wire import ChatCompletionRequest

HEADER = "x-enclave-context-dropped"  # how many of the caller's messages were left out


def make_window(
    settings: WindowSettings, lengths: ContextLengths, aliases: Mapping[str, Policy | None]
) -> ChatStep:
    """``aliases``: each model alias's own policy (None: the tenant's or the gateway's)."""

    async def window(ctx: ChatContext) -> ChatContext:
        found = await asyncio.gather(*(lengths.of(d) for d in ctx.plan))
        known = [length for length in found if length is not None]
        if not known:
            return ctx.decided("window", "unknown")
        alias = aliases.get(ctx.alias) if ctx.alias is not None else None
        policy = settings.policy_for(ctx.principal.tenant, alias)
        start = Window(policy, min(known), settings.reserve_tokens, settings.safety_margin)
        body, fitted = fit(ctx.body, ctx.retrieved, start)
        return ctx.decided("window", fitted.decision, body=body, window=fitted)

    return window


def refit(ctx: ChatContext, error: UpstreamError) -> ChatCompletionRequest | None:
    """A smaller request, after ``ctx.body`` was refused as too long; None: none is sent."""
    window = ctx.window
    if error.upstream_code != "context_length_exceeded" or window is None:
        return None
    if window.policy != "truncate" or window.retried:
        return None
    harder = dataclasses.replace(window, margin=window.margin * 2, retried=True)
    body, again = fit(ctx.body, ctx.retrieved, harder)
    if len(body.messages) == len(ctx.body.messages):
        return None  # nothing more to leave out: the refusal stands
    lifecycle.call().verdict(window=again.decision)
    return body


def headers(ctx: ChatContext) -> dict[str, str]:
    return {HEADER: str(len(ctx.window.dropped))} if ctx.window is not None else {}

"""The chat step that answers: try the planned deployments in order, relay the first that works.

Fail over only before the first byte reaches the client: a refused connection,
a timeout, a 5xx or a 429 moves on to the next deployment at once (no retries,
no backoff) and is reported to the router so its cooldown state stays
true. After the first byte a failure is a final ``data: {"error": …}`` event. A cold
deployment is woken, and waited for only when no warm one may serve (a stream keeps
its connection alive with SSE comments meanwhile). The upstream is always asked for
usage so tokens are counted; the usage chunk is dropped again if the client did not
ask for it. What was opened reaches the caller through :mod:`functions.delivery`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from loguru import logger
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from functions import lifecycle
from functions.context import ChatContext
from functions.delivery import Delivery
from functions.edge import unless_disconnected
from functions.errors import (
    EnclaveError,
    NoDeploymentError,
    ServiceUnavailableError,
    UpstreamError,
    UpstreamRateLimitedError,
    UpstreamUnavailableError,
    map_exception,
)
from functions.experiments import variant_headers
from functions.metrics import Metrics
from functions.ratelimit.limiter import prompt_tokens
from functions.relay import Opened, Relay
from functions.routing import DeploymentRouter
from functions.settings import Deployment
from functions.warmth import Warmth, down_error, unreachable
from functions.window.steps import headers as window_headers
from functions.window.steps import refit
from functions.wire import SSE_DONE, ChatCompletionRequest, sse_event

ROUTE = "/v1/chat/completions"


def upstream_payload(body: ChatCompletionRequest, deployment: Deployment) -> dict[str, Any]:
    """What the upstream receives: the modelled fields only (the allow-list), our model name."""
    payload = body.upstream_fields()
    payload["model"] = deployment.target_model
    if body.stream:
        payload["stream_options"] = {**payload.get("stream_options", {}), "include_usage": True}
    return payload


@dataclass
class Chat:
    router: DeploymentRouter
    relay: Relay
    metrics: Metrics
    warmth: Warmth
    delivery: Delivery
    cold_wait_s: float
    keepalive_s: float

    async def __call__(self, request: Request, ctx: ChatContext) -> Response:
        try:
            return await self._answer(request, ctx)
        except BaseException as exc:  # no answer at all: refund the estimate (the edge records)
            status = map_exception(exc).status_code if isinstance(exc, Exception) else 499
            if ctx.admission is not None:
                # a caller who hung up after the model took the prompt pays for the prompt
                gone = status == 499
                await ctx.admission.settle(prompt_tokens(ctx.body) if gone else 0)
            raise

    async def _answer(self, request: Request, ctx: ChatContext) -> Response:
        """Answer from a warm deployment, waking cold ones; wait only if no other may serve."""
        if ctx.cache is not None and ctx.cache.answer is not None:
            return await self.delivery.replay(ctx, ctx.cache.answer)
        # a deployment that is down is still tried, last: a restarted node serves at once
        warm = tuple(
            sorted((d for d in ctx.plan if not self.warmth.is_cold(d)), key=self.warmth.is_down)
        )
        cold = tuple(d for d in ctx.plan if self.warmth.is_cold(d))
        for deployment in cold:
            self.warmth.wake(deployment)
        if warm or not cold:
            try:
                deployment, opened = await unless_disconnected(request, self._open(ctx, warm))
                return await self.delivery.respond(ctx, deployment.name, opened)
            except NoDeploymentError:
                cold = tuple(d for d in ctx.plan if self.warmth.is_cold(d))
                if not cold:
                    raise
        if self.cold_wait_s <= 0:
            raise self._still_cold(ctx)
        if ctx.body.stream:
            return StreamingResponse(
                self._wait_then_stream(ctx, cold),
                media_type="text/event-stream",
                headers={
                    **Delivery.cache_headers(ctx),
                    **variant_headers(ctx),
                    **window_headers(ctx),
                },
            )
        ready = await unless_disconnected(request, self.warmth.wait_warm(cold, self.cold_wait_s))
        if ready is None:
            raise self._still_cold(ctx)
        deployment, opened = await unless_disconnected(request, self._open(ctx, (ready,)))
        return await self.delivery.respond(ctx, deployment.name, opened)

    def _still_cold(self, ctx: ChatContext) -> NoDeploymentError:
        return NoDeploymentError(
            f"The model `{ctx.body.model}` is starting up and did not become ready within "
            f"{self.cold_wait_s:.0f} s; no other deployment may serve this request.",
            headers={"retry-after": "10"},
        )

    async def _wait_then_stream(
        self, ctx: ChatContext, cold: tuple[Deployment, ...]
    ) -> AsyncIterator[bytes]:
        """SSE comments keep the connection alive while a cold deployment starts."""
        waiter = asyncio.ensure_future(self.warmth.wait_warm(cold, self.cold_wait_s))
        try:
            while True:
                yield b": waiting for the model to start\n\n"
                done, _ = await asyncio.wait({waiter}, timeout=self.keepalive_s)
                if done:
                    break
        finally:
            waiter.cancel()
        ready = waiter.result()
        try:
            if ready is None:
                raise self._still_cold(ctx)
            deployment, opened = await self._open(ctx, (ready,))
        except EnclaveError as exc:  # the stream has started: the error is its last event
            if ctx.admission is not None:
                await ctx.admission.settle(0)
            outcome = lifecycle.call()
            outcome.status, outcome.error = exc.status_code, exc.message
            yield sse_event(exc.body())
            yield SSE_DONE
            return
        assert opened.events is not None
        async for event in self.delivery.stream(ctx, deployment.name, opened.events):
            yield event

    async def _open(
        self, ctx: ChatContext, plan: tuple[Deployment, ...]
    ) -> tuple[Deployment, Opened]:
        last: ServiceUnavailableError | None = None
        down = 0  # deployments found down (refusing, and none can be woken)
        for attempt, deployment in enumerate(plan):
            started = self.router.attempt_started()
            try:
                opened = await self._send(ctx, deployment)
            except UpstreamUnavailableError as exc:
                last = exc
                if unreachable(deployment, exc):
                    self.warmth.mark_unreachable(deployment)
                    self.warmth.wake(deployment)
                    down += not deployment.scale_to_zero
                self.router.record_failure(deployment, isinstance(exc, UpstreamRateLimitedError))
                self.metrics.upstream_errors.labels(deployment.name, exc.code or "").inc()
                logger.warning("deployment failed", deployment=deployment.name, error=exc.message)
                continue
            self.router.record_success(deployment, started)
            if deployment is not ctx.plan[0]:
                self.metrics.fallbacks.labels(
                    ctx.body.model, ctx.plan[0].name, deployment.name
                ).inc()
                logger.info(
                    "fell back",
                    model=ctx.body.model,
                    deployment=deployment.name,
                    attempt=attempt + 1,
                )
            return deployment, opened
        if plan and down == len(plan):
            raise down_error(ctx.body.model)
        raise NoDeploymentError(
            f"No deployment of `{ctx.body.model}` is available: "
            f"{last.message if last else 'none is ready'}",
            headers=(last.headers if last else {}) or {"retry-after": "1"},
        )

    async def _send(self, ctx: ChatContext, deployment: Deployment) -> Opened:
        """Open ``deployment``; if it refuses the prompt as too long, once more with fewer
        turns (:func:`functions.window.refit`)."""
        try:
            return await self.relay.open(
                deployment, upstream_payload(ctx.body, deployment), ctx.request_id, ctx.priority
            )
        except UpstreamError as exc:
            smaller = refit(ctx, exc)
            if smaller is None:
                raise
        payload = upstream_payload(smaller, deployment)
        return await self.relay.open(deployment, payload, ctx.request_id, ctx.priority)

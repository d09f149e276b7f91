"""The chat step that answers: try the planned deployments in order, relay the first that works.

Fail over only before the first byte reaches the client: a refused connection,
a timeout, a 5xx or a 429 moves on to the next deployment at once (no retries,
no backoff) and is reported to the router so litellm's cooldown state stays
true. After the first byte a failure is a final ``data: {"error": …}`` event.
Streams are relayed event by event as they arrive; the upstream is always asked
for usage so tokens are counted, and the usage chunk is dropped again if the
client did not ask for it.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson
from loguru import logger
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from functions.context import RequestContext
from functions.edge import unless_disconnected
from functions.errors import (
    NoDeploymentError,
    ServiceUnavailableError,
    UpstreamUnavailableError,
    map_exception,
)
from functions.metrics import Metrics
from functions.relay import Opened, Relay
from functions.routing import DeploymentRouter
from functions.settings import Deployment
from functions.wire import SSE_DONE, ChatCompletionRequest, sse_event

ROUTE = "/v1/chat/completions"


def upstream_payload(body: ChatCompletionRequest, deployment: Deployment) -> dict[str, Any]:
    payload = body.model_dump(exclude_unset=True, exclude_none=True)
    payload["model"] = deployment.target_model
    if body.stream:
        payload["stream_options"] = {**payload.get("stream_options", {}), "include_usage": True}
    return payload


@dataclass
class Chat:
    router: DeploymentRouter
    relay: Relay
    metrics: Metrics

    async def __call__(self, request: Request, ctx: RequestContext) -> Response:
        assert ctx.body is not None
        started = time.perf_counter()
        deployment, opened = await unless_disconnected(request, self._open(ctx))
        if opened.events is not None:
            return StreamingResponse(
                self._relay_stream(ctx, deployment, opened.events, started),
                media_type="text/event-stream",
                headers={"x-enclave-deployment": deployment.name},
            )
        assert opened.body is not None
        self._account(ctx.body.model, deployment, _usage_of(opened.body))
        self._finish(ctx, deployment, "200", started)
        return Response(
            opened.body,
            media_type="application/json",
            headers={"x-enclave-deployment": deployment.name},
        )

    async def _open(self, ctx: RequestContext) -> tuple[Deployment, Opened]:
        assert ctx.body is not None
        last: ServiceUnavailableError | None = None
        for attempt, deployment in enumerate(ctx.plan):
            try:
                opened = await self.relay.open(
                    deployment, upstream_payload(ctx.body, deployment), ctx.request_id
                )
            except UpstreamUnavailableError as exc:
                last = exc
                self.router.record_failure(deployment, exc.status_code, exc.message)
                self.metrics.upstream_errors.labels(deployment.name, exc.code or "").inc()
                logger.warning("deployment failed", deployment=deployment.name, error=exc.message)
                continue
            self.router.record_success(deployment)
            if attempt:
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
        self.metrics.requests.labels(ROUTE, ctx.body.model, "", "503").inc()
        raise NoDeploymentError(
            f"No deployment of `{ctx.body.model}` is available: "
            f"{last.message if last else 'none configured'}",
            headers=(last.headers if last else {}) or {"retry-after": "1"},
        )

    async def _relay_stream(
        self,
        ctx: RequestContext,
        deployment: Deployment,
        events: AsyncIterator[bytes],
        started: float,
    ) -> AsyncIterator[bytes]:
        assert ctx.body is not None
        model, wants_usage, status = ctx.body.model, ctx.body.wants_usage_in_stream, "200"
        first = True
        try:
            async for payload in events:
                if payload == b"[DONE]":
                    continue  # read on to the end, so the upstream connection is reused
                chunk = orjson.loads(payload)
                if first and _has_content(chunk):
                    self.metrics.ttft.labels(model, deployment.name).observe(
                        time.perf_counter() - started
                    )
                    first = False
                if "error" in chunk:
                    status = "502"
                if chunk.get("usage"):
                    self._account(model, deployment, chunk["usage"])
                    if not wants_usage and not chunk.get("choices"):
                        continue
                yield b"data: " + payload + b"\n\n"
        except Exception as exc:  # after the first byte: report in-band, then end the stream
            error = map_exception(exc)
            status = str(error.status_code)
            logger.warning("stream relay failed", deployment=deployment.name, error=error.message)
            yield sse_event(error.body())
        finally:
            self._finish(ctx, deployment, status, started)
        yield SSE_DONE

    def _account(self, model: str, deployment: Deployment, usage: dict[str, Any] | None) -> None:
        if not usage:
            return
        tokens = self.metrics.tokens
        tokens.labels(model, deployment.name, "in").inc(usage.get("prompt_tokens") or 0)
        tokens.labels(model, deployment.name, "out").inc(usage.get("completion_tokens") or 0)

    def _finish(
        self, ctx: RequestContext, deployment: Deployment, status: str, started: float
    ) -> None:
        assert ctx.body is not None
        elapsed = time.perf_counter() - started
        self.metrics.requests.labels(ROUTE, ctx.body.model, deployment.name, status).inc()
        self.metrics.latency.labels(ROUTE, ctx.body.model).observe(elapsed)
        logger.info(
            "chat",
            model=ctx.body.model,
            deployment=deployment.name,
            status=status,
            stream=bool(ctx.body.stream),
            decisions=dict(ctx.decisions),
            ms=round(elapsed * 1000, 2),
        )


def _has_content(chunk: dict[str, Any]) -> bool:
    choices = chunk.get("choices") or []
    return bool(choices and (choices[0].get("delta") or {}).get("content"))


def _usage_of(body: bytes) -> dict[str, Any] | None:
    try:
        usage = orjson.loads(body).get("usage")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    return usage if isinstance(usage, dict) else None

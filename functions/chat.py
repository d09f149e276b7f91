"""The chat step that answers: try the planned deployments in order, relay the first that works.

Fail over only before the first byte reaches the client: a refused connection,
a timeout, a 5xx or a 429 moves on to the next deployment at once (no retries,
no backoff) and is reported to the router so its cooldown state stays
true. After the first byte a failure is a final ``data: {"error": …}`` event.
Streams are relayed event by event as they arrive; the upstream is always asked
for usage so tokens are counted, and the usage chunk is dropped again if the
client did not ask for it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson
from loguru import logger
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from functions import lifecycle
from functions.answering import AnswerChain, Cited
from functions.audit.local import RequestAudit
from functions.cache.answers import as_chunks, complete
from functions.cache.cache import ResponseCache
from functions.context import ChatContext
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
from functions.filtering.answer import AnswerFilter
from functions.filtering.engine import FilterSet, Stage
from functions.metrics import Metrics
from functions.ratelimit.limiter import prompt_tokens
from functions.relay import Opened, Relay
from functions.routing import DeploymentRouter
from functions.settings import Deployment
from functions.sse import Event, coalesced
from functions.warmth import Warmth, down_error, unreachable
from functions.window.steps import headers as window_headers
from functions.window.steps import refit
from functions.wire import SSE_DONE, ChatCompletionRequest, CitationStyle, now, sse_event

ROUTE = "/v1/chat/completions"
CACHE = "cache"  # the deployment name of an answer that came from the response cache


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
    filters: FilterSet
    audit: RequestAudit
    cold_wait_s: float
    keepalive_s: float
    cache: ResponseCache | None = None

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
            return await self._replay(ctx, ctx.cache.answer)
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
                return await self._respond(ctx, deployment.name, opened)
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
                    **self._cache_headers(ctx),
                    **variant_headers(ctx),
                    **window_headers(ctx),
                },
            )
        ready = await unless_disconnected(request, self.warmth.wait_warm(cold, self.cold_wait_s))
        if ready is None:
            raise self._still_cold(ctx)
        deployment, opened = await unless_disconnected(request, self._open(ctx, (ready,)))
        return await self._respond(ctx, deployment.name, opened)

    async def _replay(self, ctx: ChatContext, cached: dict[str, Any]) -> Response:
        """A cache hit, as if the model had just answered: guarded and restored for this
        caller, streamed if asked; it costs no model tokens."""
        cached.update(id=f"chatcmpl-{ctx.request_id}", created=now())
        if ctx.body.stream:
            chunks = as_chunks(cached, usage=True)
            return await self._respond(ctx, CACHE, Opened(events=_replayed(chunks)))
        return await self._respond(ctx, CACHE, Opened(body=orjson.dumps(cached)))

    async def _respond(self, ctx: ChatContext, deployment: str, opened: Opened) -> Response:
        headers = {
            "x-enclave-deployment": deployment,
            **self._limit_headers(ctx),
            **self._cache_headers(ctx),
            **variant_headers(ctx),
            **window_headers(ctx),
        }
        if opened.events is not None:
            return StreamingResponse(
                self._relay_stream(ctx, deployment, opened.events),
                media_type="text/event-stream",
                headers=headers,
            )
        assert opened.body is not None
        chain = self._chain(ctx, deployment, whole=True)
        parsed, body = _parsed(opened.body), opened.body  # parsed once: the chain reads it
        if parsed is None:
            if not chain.transparent or ctx.citations:  # never pass on what was not checked
                raise UpstreamUnavailableError("The model server sent an unreadable answer.")
        elif sent := chain(parsed):  # the whole answer is one chunk
            (answer,) = sent
            if not (answer is parsed and chain.transparent):
                body = orjson.dumps(answer)
            await self._fill(ctx, chain)
        text = "".join(chain.emitted) if chain.emitted is not None else None
        usage = None if deployment == CACHE else chain.usage
        await self._finish(ctx, deployment, "200", usage, text)
        return Response(body, media_type="application/json", headers=headers)

    def _chain(self, ctx: ChatContext, deployment: str, *, whole: bool) -> AnswerChain:
        """The answer's transforms for this request (see :mod:`functions.answering`)."""
        cached = deployment == CACHE
        answer = self._answer_filter(ctx)
        # filling the cache (a miss, never a hit): the guard alone first, then the restore
        keep = self._answer_filter(ctx, "guard") if answer and self._fills(ctx) else None
        if keep is not None:
            answer = self._answer_filter(ctx, "restore")
        model = ctx.body.model
        cited = (
            Cited(ctx.citations, _citing(ctx), self._answer_filter(ctx)) if ctx.citations else None
        )
        return AnswerChain(
            whole=whole,
            answer=answer,
            keep=keep,
            citations=cited,
            wants_usage=ctx.body.wants_usage_in_stream,
            account=None if cached else lambda usage: self._account(model, deployment, usage),
            capture=self.audit.capturing,
        )

    def _fills(self, ctx: ChatContext) -> bool:
        return self.cache is not None and ctx.cache is not None and ctx.cache.fill

    async def _fill(self, ctx: ChatContext, chain: AnswerChain) -> None:
        """Keep the guarded answer the chain kept, if it has all its choices and each
        ended by itself."""
        kept = chain.kept()
        if kept is None or not complete(kept, ctx.body.n or 1):
            return
        assert self.cache is not None and ctx.cache is not None  # chain.kept(): _fills held
        if await self.cache.fill(ctx.principal.tenant, ctx.cache, kept):
            logger.debug("cached", key=ctx.cache.key)

    @staticmethod
    def _cache_headers(ctx: ChatContext) -> dict[str, str]:
        lookup = ctx.cache
        headers: dict[str, str] = {
            "x-enclave-cache": lookup.result if lookup is not None else "bypass"
        }
        if lookup is not None and lookup.similarity is not None:
            headers["x-enclave-cache-similarity"] = f"{lookup.similarity:.4f}"
        return headers

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
        async for event in self._relay_stream(ctx, deployment.name, opened.events):
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

    async def _relay_stream(
        self,
        ctx: ChatContext,
        deployment: str,
        events: AsyncGenerator[list[bytes]],
    ) -> AsyncIterator[bytes]:
        outcome = lifecycle.call()
        chain, status = self._chain(ctx, deployment, whole=False), "200"
        first, generated = True, 0  # generated: chunks with text, about a token each
        try:
            async for batch in events:
                read: list[Event] = []
                for payload in batch:
                    if payload == b"[DONE]":
                        continue  # read on to the end, so the upstream connection is reused
                    chunk = orjson.loads(payload)
                    generated += _carries_text(chunk)
                    if "error" in chunk:
                        status = "502"
                    read.append((chunk, payload))
                for chunk, raw in coalesced(read) if len(read) > 1 else read:
                    if first and _has_content(chunk):
                        outcome.first_token()
                        first = False
                    for out in chain(chunk):
                        as_read = out is chunk and chain.transparent
                        data = raw if as_read and raw is not None else orjson.dumps(out)
                        yield b"data: " + data + b"\n\n"
            if status == "200":
                await self._fill(ctx, chain)
        except Exception as exc:  # after the first byte: report in-band, then end the stream
            error = map_exception(exc)
            status = str(error.status_code)
            logger.warning("stream ended early", deployment=deployment, error=error.message)
            yield sse_event(error.body())
        finally:
            await events.aclose()
            usage = chain.usage
            if deployment == CACHE:
                usage = None  # an answer from the cache costs no model tokens
            elif usage is None and generated:  # the client left, or no usage came: what ran
                prompt = prompt_tokens(ctx.body)
                usage = {
                    "prompt_tokens": prompt,
                    "completion_tokens": generated,
                    "total_tokens": prompt + generated,
                    "estimated": True,
                }
            text = "".join(chain.emitted) if chain.emitted is not None else None
            await self._finish(ctx, deployment, status, usage, text)
        yield SSE_DONE

    def _answer_filter(self, ctx: ChatContext, stage: Stage = "both") -> AnswerFilter | None:
        if ctx.conversation is None:
            return None
        cf = self.filters.for_tenant(ctx.principal.tenant)
        return AnswerFilter(cf, ctx.conversation, stage)

    @staticmethod
    def _limit_headers(ctx: ChatContext) -> dict[str, str]:
        return ctx.admission.headers if ctx.admission is not None else {}

    def _account(self, model: str, deployment: str, usage: dict[str, Any] | None) -> None:
        if not usage:
            return
        tokens = self.metrics.tokens
        tokens.labels(model, deployment, "in").inc(usage.get("prompt_tokens") or 0)
        tokens.labels(model, deployment, "out").inc(usage.get("completion_tokens") or 0)

    async def _finish(
        self,
        ctx: ChatContext,
        deployment: str,
        status: str,
        usage: dict[str, Any] | None,
        answer: str | None,
    ) -> None:
        """Settle the rate-limit estimate with the real usage; tell the lifecycle how the
        answer went (the edge records it as the last byte leaves)."""
        if ctx.admission is not None:
            await ctx.admission.settle(int((usage or {}).get("total_tokens") or 0))
        outcome = lifecycle.call()
        outcome.model = ctx.body.model
        outcome.deployment, outcome.usage, outcome.answer = deployment, usage, answer
        if status != "200":
            outcome.status = int(status)


async def _replayed(chunks: list[dict[str, Any]]) -> AsyncGenerator[list[bytes]]:
    """A cached answer's chunks, as the relay reads an upstream's events."""
    for chunk in chunks:
        yield [orjson.dumps(chunk)]


def _carries_text(chunk: dict[str, Any]) -> bool:
    for choice in chunk.get("choices") or []:
        delta = choice.get("delta") if isinstance(choice, dict) else None
        if isinstance(delta, dict) and (delta.get("content") or delta.get("tool_calls")):
            return True
    return False


def _has_content(chunk: dict[str, Any]) -> bool:
    choices = chunk.get("choices") or []
    return bool(choices and (choices[0].get("delta") or {}).get("content"))


def _parsed(body: bytes) -> dict[str, Any] | None:
    try:
        answer = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return answer if isinstance(answer, dict) else None


def _citing(ctx: ChatContext) -> CitationStyle:
    """How this answer shows its sources: a Sources block would break an answer whose
    format is fixed (JSON mode, a JSON schema) or a frontend's bookkeeping task (a title,
    tags: parsed by the frontend), so those carry the citations field only."""
    fixed = ctx.body.response_format is not None and ctx.body.response_format.type != "text"
    task = ctx.priority == "background" or "openwebui:" in str(ctx.decisions.get("priority", ""))
    if ctx.citing != "field" and (fixed or task):
        return "field"
    return ctx.citing

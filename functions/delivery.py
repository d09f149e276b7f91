"""Delivering an answer that a deployment (or the response cache) opened: one chain.

Whole or streamed, an answer passes through the same :class:`~functions.answering.AnswerChain`
(guard, restore, cite, account, capture); a whole answer is one chunk. A stream is
relayed as the upstream's reads arrive: the text-only chunks of one read are merged
before the guard (:func:`functions.sse.coalesced`), so a gateway that falls behind does
one scan and one write per read, not per token. After the first byte a failure is the
stream's last event. Either way the answer's end settles the rate-limit estimate with
the real usage and tells the lifecycle how it went (:meth:`Delivery.finish`); a stream
cut short is charged what ran. What to send where, and failing over before the first
byte, is :mod:`functions.chat`'s.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson
from loguru import logger
from starlette.responses import Response, StreamingResponse

from functions import lifecycle
from functions.answering import AnswerChain, Cited
from functions.audit.local import RequestAudit
from functions.cache.answers import as_chunks, complete
from functions.cache.cache import ResponseCache
from functions.context import ChatContext
from functions.errors import UpstreamUnavailableError, map_exception
from functions.experiments import variant_headers
from functions.filtering.answer import AnswerFilter
from functions.filtering.engine import FilterSet, Stage
from functions.metrics import Metrics
from functions.ratelimit.limiter import prompt_tokens
from functions.relay import Opened
from functions.sse import Event, coalesced
from functions.window.steps import headers as window_headers
from functions.wire import SSE_DONE, CitationStyle, now, sse_event

CACHE = "cache"  # the deployment name of an answer that came from the response cache


@dataclass
class Delivery:
    """Turns an opened answer into the caller's response, for every deployment."""

    metrics: Metrics
    filters: FilterSet
    audit: RequestAudit
    cache: ResponseCache | None = None

    async def replay(self, ctx: ChatContext, cached: dict[str, Any]) -> Response:
        """A cache hit, as if the model had just answered: guarded and restored for this
        caller, streamed if asked; it costs no model tokens."""
        cached.update(id=f"chatcmpl-{ctx.request_id}", created=now())
        if ctx.body.stream:
            chunks = as_chunks(cached, usage=True)
            return await self.respond(ctx, CACHE, Opened(events=_replayed(chunks)))
        return await self.respond(ctx, CACHE, Opened(body=orjson.dumps(cached)))

    async def respond(self, ctx: ChatContext, deployment: str, opened: Opened) -> Response:
        headers = {
            "x-enclave-deployment": deployment,
            **self.limit_headers(ctx),
            **self.cache_headers(ctx),
            **variant_headers(ctx),
            **window_headers(ctx),
        }
        if opened.events is not None:
            return StreamingResponse(
                self.stream(ctx, deployment, opened.events),
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
            Cited(ctx.citations, citing(ctx), self._answer_filter(ctx)) if ctx.citations else None
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
    def cache_headers(ctx: ChatContext) -> dict[str, str]:
        lookup = ctx.cache
        headers: dict[str, str] = {
            "x-enclave-cache": lookup.result if lookup is not None else "bypass"
        }
        if lookup is not None and lookup.similarity is not None:
            headers["x-enclave-cache-similarity"] = f"{lookup.similarity:.4f}"
        return headers

    async def stream(
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
    def limit_headers(ctx: ChatContext) -> dict[str, str]:
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


def citing(ctx: ChatContext) -> CitationStyle:
    """How this answer shows its sources: a Sources block would break an answer whose
    format is fixed (JSON mode, a JSON schema) or a frontend's bookkeeping task (a title,
    tags: parsed by the frontend), so those carry the citations field only."""
    fixed = ctx.body.response_format is not None and ctx.body.response_format.type != "text"
    task = ctx.priority == "background" or "openwebui:" in str(ctx.decisions.get("priority", ""))
    if ctx.citing != "field" and (fixed or task):
        return "field"
    return ctx.citing

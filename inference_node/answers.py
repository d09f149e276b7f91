"""The chat route's answer once an engine slot is held: one JSON completion, or an SSE stream.

Why a module of its own: :mod:`.server` authorises, parses and queues a request; what
follows is the answer's lifecycle, the same for both shapes: generate, frame, and end
once (the slot released, the outcome observed, the tokens counted: :class:`~.state.NodeState`)
however it ends. A stream starts its 200 only once the first piece is out, so a prompt
the engine refuses (too long for the context...) is a plain error answer; after the first
byte a failure is a final ``data: {"error": ...}`` event and ``data: [DONE]``, and a
client gone cancels generation (STYLE habit 8).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterator

from loguru import logger
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from functions.edge import unless_disconnected
from functions.errors import map_exception
from functions.wire import (
    SSE_DONE,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    Choice,
    ChunkChoice,
    Delta,
    ResponseMessage,
    Usage,
    completion_id,
    now,
    sse_event,
)
from inference_node.admission import Slot
from inference_node.engine import Engine, GenerationParams, Piece
from inference_node.state import NodeState


async def _collect(engine: Engine, params: GenerationParams) -> tuple[str, Piece]:
    parts: list[str] = []
    last = Piece("")
    async for piece in engine.generate(params):
        parts.append(piece.text)
        last = piece
    return "".join(parts), last


def _usage(piece: Piece) -> Usage:
    prompt, completion = piece.prompt_tokens or 0, piece.completion_tokens or 0
    return Usage(
        prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion
    )


async def whole_answer(
    state: NodeState,
    request: Request,
    engine: Engine,
    params: GenerationParams,
    started: float,
    slot: Slot,
) -> Response:
    """Generate to the end, then answer one JSON completion; the slot is released and the
    outcome observed however generation ends (a client gone mid-way: 499)."""
    status = "200"
    try:
        text, last = await unless_disconnected(request, _collect(engine, params))
    except BaseException as exc:
        status = str(map_exception(exc).status_code) if isinstance(exc, Exception) else "499"
        raise
    finally:
        state.admission.release(slot)
        state.observe(engine.model_id, status, started)
    state.count_tokens(engine, last)
    answer = ChatCompletion(
        id=completion_id(),
        choices=[
            Choice(
                finish_reason=last.finish_reason or "stop",  # type: ignore[arg-type]
                index=0,
                message=ResponseMessage(content=text),
            )
        ],
        created=now(),
        model=engine.model_id,
        usage=_usage(last),
    )
    return Response(answer.model_dump_json(), media_type="application/json")


class _Stream(StreamingResponse):
    """A streamed answer whose generation is closed and slot freed however it ends,
    even if the client is gone before the body starts (the generator never runs)."""

    def __init__(self, body: AsyncIterator[bytes], finish: Callable[[], Awaitable[None]]) -> None:
        super().__init__(body, media_type="text/event-stream")
        self._finish = finish

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self._finish()


async def _close(pieces: AsyncIterator[Piece]) -> None:
    """Stop a generation early: engines generate with async generators, closed explicitly."""
    if isinstance(pieces, AsyncGenerator):
        await pieces.aclose()


async def _first_piece(request: Request, pieces: AsyncIterator[Piece]) -> Piece | None:
    """The first piece of a generation: what fails before it is an ordinary error answer."""

    async def first() -> Piece | None:
        return await anext(pieces, None)

    return await unless_disconnected(request, first())


def _streamed(
    state: NodeState,
    engine: Engine,
    body: ChatCompletionRequest,
    pieces: AsyncIterator[Piece],
    first: Piece | None,
    started: float,
    slot: Slot,
) -> _Stream:
    ident, created = completion_id(), now()
    status = "200"
    finished = False

    def chunk(delta: Delta, finish: str | None = None) -> ChatCompletionChunk:
        choice = ChunkChoice(delta=delta, finish_reason=finish)  # type: ignore[arg-type]
        return ChatCompletionChunk(
            id=ident, choices=[choice], created=created, model=engine.model_id
        )

    async def finish() -> None:
        nonlocal finished
        if finished:
            return
        finished = True
        try:
            await _close(pieces)
        finally:
            state.admission.release(slot)
            state.observe(engine.model_id, status, started)

    def framed(piece: Piece) -> Iterator[bytes]:
        if piece.text:
            yield sse_event(chunk(Delta(content=piece.text)))
        if piece.finish_reason is not None:
            yield sse_event(chunk(Delta(), piece.finish_reason))
            state.count_tokens(engine, piece)
            if body.wants_usage_in_stream:
                usage = ChatCompletionChunk(
                    id=ident,
                    choices=[],
                    created=created,
                    model=engine.model_id,
                    usage=_usage(piece),
                )
                yield sse_event(usage)

    async def events() -> AsyncIterator[bytes]:
        nonlocal status
        try:
            yield sse_event(chunk(Delta(role="assistant", content="")))
            piece = first
            while piece is not None:
                for event in framed(piece):
                    yield event
                piece = await anext(pieces, None)
        except Exception as exc:  # after the first byte: a final error event, then [DONE]
            error = map_exception(exc)
            status = str(error.status_code)
            logger.opt(exception=exc).warning("stream failed")
            yield sse_event(error.body())
        except asyncio.CancelledError:
            status = "499"
            logger.info("stream cancelled: the client went away", status=499)
            raise
        finally:
            await finish()
        yield SSE_DONE

    return _Stream(events(), finish)


async def open_stream(
    state: NodeState,
    request: Request,
    engine: Engine,
    params: GenerationParams,
    body: ChatCompletionRequest,
    started: float,
    slot: Slot,
) -> Response:
    """Start generating; only once the first piece is out does the 200 and its stream begin,
    so a prompt refused by the engine (too long for the context…) is a plain error answer."""
    pieces = engine.generate(params)
    try:
        first = await _first_piece(request, pieces)
    except BaseException as exc:
        try:
            await _close(pieces)
        finally:
            state.admission.release(slot)
            status = str(map_exception(exc).status_code) if isinstance(exc, Exception) else "499"
            state.observe(engine.model_id, status, started)
        raise
    if first is not None and first.text:
        state.metrics.ttft.labels(engine.model_id, "").observe(time.perf_counter() - started)
    return _streamed(state, engine, body, pieces, first, started, slot)

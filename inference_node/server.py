"""The inference node: an OpenAI-compatible server over one engine.

Routes: ``POST /v1/chat/completions`` (plain and SSE), ``GET /v1/models``,
``GET /health`` (200 only once the model is loaded), ``GET /metrics``.

The engine is loaded in a worker thread after the server starts, so ``/health``
can say "loading" instead of the port being closed. Requests wait in the
admission queue for a free engine slot, interactive requests first (the gateway marks
background ones with ``x-enclave-priority``); past its bound they get 503 at once.
Parameters a request leaves unset are sampled with the model's recommended defaults.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field

from loguru import logger
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from functions.bearer import check_key
from functions.edge import (
    Edge,
    http_exception_handler,
    json_response,
    read_json,
    unless_disconnected,
)
from functions.errors import (
    EnclaveError,
    ModelNotFoundError,
    ServiceUnavailableError,
    map_exception,
)
from functions.metrics import Metrics
from functions.settings import Settings
from functions.wire import (
    SSE_DONE,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    Choice,
    ChunkChoice,
    Delta,
    ModelCard,
    ModelList,
    ResponseMessage,
    Usage,
    completion_id,
    now,
    sse_event,
)
from inference_node.admission import PRIORITY_HEADER, Admission, Priority, Slot
from inference_node.engine import Engine, GenerationParams, Piece
from inference_node.exposure import require_node_key
from inference_node.sampling import (
    SamplingDefaults,
    generation_params,
    layers_of,
    resolve,
    settings_layer,
)
from inference_node.weights import ModelIdentity

ROUTE = "/v1/chat/completions"


@dataclass
class NodeState:
    """What the routes share: the engine once loaded, or why it is not."""

    settings: Settings
    metrics: Metrics
    admission: Admission
    sampling: SamplingDefaults  # for requests that leave a parameter unset
    engine: Engine | None = None
    load_error: str | None = None
    loader: asyncio.Task[None] | None = field(default=None, repr=False)

    def attach(self, engine: Engine) -> None:
        """Serve ``engine``; sample by default as the settings, else its weights, recommend."""
        self.sampling = resolve(settings_layer(self.settings.node), *layers_of(engine))
        self.engine = engine

    def authorise(self, request: Request) -> None:
        key = self.settings.node.api_key
        if key is not None:
            check_key(request.headers, key.get_secret_value().encode())

    def ready_engine(self) -> Engine:
        if self.engine is None:
            reason = self.load_error or "The model is still loading."
            raise ServiceUnavailableError(reason, headers={"retry-after": "2"})
        return self.engine


def identity_of(engine: Engine) -> ModelIdentity | None:
    """The weights' identity, for engines that know it (every built-in one does)."""
    identity = getattr(engine, "identity", None)
    return identity if isinstance(identity, ModelIdentity) else None


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
            _observe(state, engine.model_id, status, started)

    def framed(piece: Piece) -> Iterator[bytes]:
        if piece.text:
            yield sse_event(chunk(Delta(content=piece.text)))
        if piece.finish_reason is not None:
            yield sse_event(chunk(Delta(), piece.finish_reason))
            _count_tokens(state, engine, piece)
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


def _count_tokens(state: NodeState, engine: Engine, piece: Piece) -> None:
    tokens = state.metrics.tokens
    tokens.labels(engine.model_id, "", "in").inc(piece.prompt_tokens or 0)
    tokens.labels(engine.model_id, "", "out").inc(piece.completion_tokens or 0)


def _observe(state: NodeState, model: str, status: str, started: float) -> None:
    state.metrics.requests.labels(ROUTE, model, "", status).inc()
    state.metrics.latency.labels(ROUTE, model).observe(time.perf_counter() - started)


async def _open_stream(
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
            _observe(state, engine.model_id, status, started)
        raise
    if first is not None and first.text:
        state.metrics.ttft.labels(engine.model_id, "").observe(time.perf_counter() - started)
    return _streamed(state, engine, body, pieces, first, started, slot)


def _chat_endpoint(state: NodeState) -> Callable[[Request], object]:
    async def chat(request: Request) -> Response:
        state.authorise(request)
        body = ChatCompletionRequest.model_validate(
            await read_json(request, state.settings.node.max_body_bytes)
        )
        engine = state.ready_engine()
        if body.model != engine.model_id:
            raise ModelNotFoundError(
                f"The model `{body.model}` does not exist on this node.", param="model"
            )
        params = generation_params(body, state.sampling)
        # trusted as sent: the request passed the node's key check above (or the node is
        # loopback-only), and the header can only lower a request's priority
        priority = Priority.of(request.headers.get(PRIORITY_HEADER))
        queued = time.perf_counter()  # a client gone while queued leaves the queue
        slot = await unless_disconnected(request, state.admission.acquire(priority))
        started = time.perf_counter()
        waited = round((started - queued) * 1000, 1)
        logger.info("generation started", priority=priority.value, queued_ms=waited)
        if body.stream:
            return await _open_stream(state, request, engine, params, body, started, slot)
        status = "200"
        try:
            text, last = await unless_disconnected(request, _collect(engine, params))
        except BaseException as exc:
            status = str(map_exception(exc).status_code) if isinstance(exc, Exception) else "499"
            raise
        finally:
            state.admission.release(slot)
            _observe(state, engine.model_id, status, started)
        _count_tokens(state, engine, last)
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

    return chat


def create_app(
    settings: Settings,
    load: Callable[[], Engine] | None = None,
    engine: Engine | None = None,
) -> Starlette:
    """The node app. Give ``engine`` (loaded; the caller closes it) or ``load`` (run in a
    thread at start-up; the app closes what it loaded).

    Raises :class:`~inference_node.exposure.NodeKeyMissingError` for a node bound off
    loopback without a key: it fails closed rather than serve anyone who finds it.
    """
    require_node_key(settings.node)
    metrics = Metrics("node")
    state = NodeState(
        settings=settings,
        metrics=metrics,
        admission=Admission(settings.node.max_concurrency, settings.node.max_queue, metrics),
        sampling=resolve(settings_layer(settings.node)),
    )
    if engine is not None:
        state.attach(engine)

    async def load_engine() -> None:
        assert load is not None
        started = time.perf_counter()
        try:
            loaded = await asyncio.to_thread(load)
        except Exception as exc:
            state.load_error = f"The model failed to load: {map_exception(exc).message}"
            logger.opt(exception=exc).error("engine failed to load")
            return
        state.attach(loaded)
        identity = identity_of(loaded)
        logger.info(
            "engine ready",
            weights=identity.as_dict() if identity else None,
            model=loaded.model_id,
            sampling=state.sampling.as_dict(),
            seconds=round(time.perf_counter() - started, 2),
        )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if state.engine is None and load is not None:
            state.loader = asyncio.create_task(load_engine())
        yield
        if state.loader is not None:  # the app loaded the engine, so the app closes it;
            await state.loader  # an engine passed in belongs to the caller (Modal's @exit)
            if state.engine is not None:
                await state.engine.aclose()

    async def health(request: Request) -> Response:
        if state.engine is None or not await state.engine.health():
            status = "failed" if state.load_error else "loading"
            return json_response({"status": status, "detail": state.load_error}, 503)
        return json_response(
            {"status": "ok", "model": state.engine.model_id, "queue": state.admission.waiting}
        )

    async def models(request: Request) -> Response:
        state.authorise(request)
        engine = state.ready_engine()
        identity = identity_of(engine)
        extension = {
            **(identity.as_dict() if identity else {}),
            "sampling_defaults": state.sampling.as_dict(),
        }
        card = ModelCard(
            id=engine.model_id,
            created=now(),
            owned_by="enclave",
            enclave=extension,
            # what every built-in engine is configured with; the gateway fits prompts to it
            context_length=state.settings.node.context_tokens,
        )
        return Response(ModelList(data=[card]).model_dump_json(), media_type="application/json")

    async def prometheus(request: Request) -> Response:
        state.authorise(request)
        payload, content_type = metrics.render()
        return Response(payload, media_type=content_type)

    app = Starlette(
        routes=[
            Route(ROUTE, _chat_endpoint(state), methods=["POST"]),
            Route("/v1/models", models),
            Route("/health", health),
            Route("/metrics", prometheus),
        ],
        middleware=[Middleware(Edge)],
        exception_handlers={HTTPException: http_exception_handler},
        lifespan=lifespan,
    )
    app.state.node = state
    return app


__all__ = ["EnclaveError", "NodeState", "create_app"]

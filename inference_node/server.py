"""The inference node: an OpenAI-compatible server over one engine.

Routes: ``POST /v1/chat/completions`` (plain and SSE), ``GET /v1/models``,
``GET /health`` (200 only once the model is loaded), ``GET /metrics``.

The engine is loaded in a worker thread after the server starts, so ``/health``
can say "loading" instead of the port being closed. Requests wait in the
admission queue for a free engine slot, interactive requests first (the gateway marks
background ones with ``x-enclave-priority``); past its bound they get 503 at once.
Parameters a request leaves unset are sampled with the model's recommended defaults.
What the routes share is :mod:`.state`'s; a chat answer, plain or streamed, once its
slot is held, is :mod:`.answers`'.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable

from loguru import logger
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from functions.edge import (
    Edge,
    http_exception_handler,
    json_response,
    read_json,
    unless_disconnected,
)
from functions.errors import EnclaveError, ModelNotFoundError, map_exception
from functions.metrics import Metrics
from functions.settings import Settings
from functions.wire import ChatCompletionRequest, ModelCard, ModelList, now
from inference_node.admission import PRIORITY_HEADER, Admission, Priority
from inference_node.answers import open_stream, whole_answer
from inference_node.engine import Engine
from inference_node.exposure import require_node_key
from inference_node.sampling import generation_params, resolve, settings_layer
from inference_node.state import ROUTE, NodeState
from inference_node.weights import ModelIdentity


def identity_of(engine: Engine) -> ModelIdentity | None:
    """The weights' identity, for engines that know it (every built-in one does)."""
    identity = getattr(engine, "identity", None)
    return identity if isinstance(identity, ModelIdentity) else None


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
            return await open_stream(state, request, engine, params, body, started, slot)
        return await whole_answer(state, request, engine, params, started, slot)

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

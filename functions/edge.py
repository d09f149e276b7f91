"""The HTTP edge shared by the gateway and the node.

It is the one place where exceptions become OpenAI error JSON: :class:`Edge`
wraps an ASGI app, gives every request a trace id and echoes it back, writes one
access log line, and turns anything raised before the response started into an
error body — never a stack trace. Failures after the first byte of a stream are
the stream's own business (a final ``data: {"error": …}`` event).

The trace id is the trace-id of a valid W3C ``traceparent`` header, else the
caller's ``x-request-id`` when well-formed, else a fresh W3C-shaped one. Headers
that fail validation are ignored, never trusted. The response carries
``x-request-id`` (the trace id) and, for a W3C trace id, a ``traceparent`` naming
this service's span, which the relay also sends upstream as the parent.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
import uuid
from collections.abc import Awaitable
from typing import Any, TypeVar

import orjson
from loguru import logger
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from functions import lifecycle
from functions.errors import (
    ClientClosedError,
    EnclaveError,
    MethodNotAllowedError,
    RequestTimeoutError,
    RequestTooLargeError,
    RouteNotFoundError,
    map_exception,
)
from functions.lifecycle import Lifecycle
from functions.logs import child_traceparent, parse_traceparent, trace_id, traceparent
from functions.wire import SSE_DONE

T = TypeVar("T")
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")


def error_response(exc: EnclaveError) -> Response:
    return Response(
        orjson.dumps(exc.body()),
        status_code=exc.status_code,
        headers=exc.headers,
        media_type="application/json",
    )


def json_response(payload: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(payload), status_code=status, media_type="application/json")


async def read_json(request: Request, limit: int) -> Any:
    """The request body parsed as JSON, refused with 413 past ``limit`` bytes."""
    return orjson.loads(await read_body(request, limit))


async def read_body(request: Request, limit: int, timeout_s: float = 30.0) -> bytes:
    """The request body, refused with 413 past ``limit`` bytes (declared or streamed), and
    with 408 when it has not all arrived within ``timeout_s`` (a slow-body attack)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise RequestTooLargeError(f"Request body exceeds the limit of {limit} bytes.")
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout_s):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise RequestTooLargeError(f"Request body exceeds the limit of {limit} bytes.")
                chunks.append(chunk)
    except TimeoutError:
        raise RequestTimeoutError(
            f"The request body did not arrive within {timeout_s:g} s."
        ) from None
    return b"".join(chunks)


def _map_http_exception(exc: HTTPException) -> EnclaveError:
    if exc.status_code == 405:
        return MethodNotAllowedError(
            "Method not allowed for this route.", headers=dict(exc.headers or {})
        )
    return RouteNotFoundError("No such route.")


async def http_exception_handler(request: Request, exc: Exception) -> Response:
    """Starlette's own 404/405 (unknown route, wrong method) in OpenAI's error shape."""
    assert isinstance(exc, HTTPException)
    return error_response(_map_http_exception(exc))


class Edge:
    """Pure ASGI middleware (no per-request task or body copy, unlike BaseHTTPMiddleware).

    With a :class:`~functions.lifecycle.Lifecycle` (the gateway), each request is a
    :class:`~functions.lifecycle.Call` closed exactly once: just before the last
    byte of the answer leaves, or as the client goes away. Without one (the node),
    one access log line per request.
    """

    def __init__(self, app: ASGIApp, lifecycle: Lifecycle | None = None) -> None:
        self.app = app
        self.lifecycle = lifecycle

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id, flags = _trace(scope)
        parent = child_traceparent(request_id, flags)
        token, parent_token = trace_id.set(request_id), traceparent.set(parent)
        started = time.perf_counter()
        state: dict[str, Any] = {"status": 0, "error": None}
        echoed = [(b"x-request-id", request_id.encode())]
        if parent is not None:
            echoed.append((b"traceparent", parent.encode()))
        owner = self.lifecycle.open() if self.lifecycle is not None else None
        call_token = lifecycle.current.set(owner)

        async def close(status: int) -> None:
            if self.lifecycle is not None and owner is not None and not owner.closed:
                route = scope.get("route")
                owner.route = owner.route or str(getattr(route, "path", "") or "")
                await self.lifecycle.close(
                    owner, status, scope["method"], scope["path"], state["error"]
                )

        held: list[Message] = []  # the response's start, until its first body message

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
                message["headers"] = [*message.get("headers", []), *echoed]
                if owner is not None:  # held: a whole answer may still become a refusal
                    held.append(message)
                    return
            elif message["type"] == "http.response.body" and (
                not message.get("more_body") or message.get("body", b"").endswith(SSE_DONE)
            ):
                # recorded before the last byte leaves: for a stream that is its [DONE], which
                # clients read as the end (they don't wait for the empty closing message), so
                # a rating or a second request right after it finds the answer recorded
                try:
                    await close(state["status"])
                except EnclaveError as exc:
                    if not held:  # a stream already under way: its status has left
                        logger.error("answer sent without its audit record", error=exc.message)
                    else:  # nothing has left yet: the refusal replaces the answer
                        held.clear()
                        state["status"] = exc.status_code
                        await _send_error(send, exc, echoed)
                        return
            if held:
                await send(held.pop())
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except asyncio.CancelledError:
            # the server cancelled the request (uvicorn past its graceful shutdown); a
            # client that hangs up is a ClientClosedError or a stream that just ends
            state["error"] = "The gateway shut down before the answer was complete."
            state["shut_down"] = True
            raise
        except Exception as exc:  # the one place foreign exceptions are caught
            if state["status"] and not held:
                logger.opt(exception=exc).error("failed after the response started")
                return
            held.clear()  # a start that never left: the error replaces it
            error = map_exception(exc)
            state["error"] = error.message
            if error.status_code >= 500 and not isinstance(exc, EnclaveError):
                logger.opt(exception=exc).error("unhandled error")
            await error_response(error)(scope, receive, send_with_id)
        finally:
            if owner is None:
                logger.info(
                    "request",
                    method=scope["method"],
                    path=scope["path"],
                    status=state["status"],
                    ms=round((time.perf_counter() - started) * 1000, 2),
                )
            elif not owner.closed:
                # the last byte never left: the client went away, or the server is shutting
                # down; either way the record is written, and the lifespan waits for it
                # (Lifecycle.drain) before the audit log closes
                status = lifecycle.SHUT_DOWN if state.get("shut_down") else lifecycle.CLIENT_CLOSED
                state["error"] = state["error"] or "The client closed the request."
                await asyncio.shield(close(status))
            lifecycle.current.reset(call_token)
            trace_id.reset(token)
            traceparent.reset(parent_token)


async def _send_error(send: Send, exc: EnclaveError, echoed: list[tuple[bytes, bytes]]) -> None:
    body = orjson.dumps(exc.body())
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in exc.headers.items()),
        *echoed,
    ]
    await send({"type": "http.response.start", "status": exc.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def _trace(scope: Scope) -> tuple[str, str]:
    """The request's trace id and W3C trace flags, from its headers or fresh.

    Only a lone ``traceparent`` counts (two are ambiguous), and only the first
    ``x-request-id``.
    """
    parents = [value for name, value in scope["headers"] if name == b"traceparent"]
    if len(parents) == 1 and (parsed := parse_traceparent(parents[0].decode("latin-1"))):
        return parsed
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            candidate: str = value.decode("latin-1")
            if _REQUEST_ID.fullmatch(candidate):
                return candidate, "01"
            break
    return uuid.uuid4().hex, "01"


async def _disconnected(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def unless_disconnected(request: Request, work: Awaitable[T]) -> T:
    """Await ``work``, cancelling it if the client disconnects first."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            raise ClientClosedError("The client closed the request.")
    return task.result()

"""W3C trace context: a valid ``traceparent`` names the trace, a malformed one is ignored,
``x-request-id`` keeps working, and the relay passes this service's span upstream.

Each test runs its requests in one ``asyncio.run`` through ``httpx.ASGITransport``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import orjson
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from functions.edge import Edge
from functions.logs import parse_traceparent, trace_id, traceparent
from functions.relay import Relay
from functions.settings import Deployment

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = f"00-{TRACE}-00f067aa0ba902b7-01"


async def seen(request: Request) -> Response:
    return JSONResponse({"trace_id": trace_id.get(), "traceparent": traceparent.get()})


def call(headers: list[tuple[str, str]]) -> httpx.Response:
    app = Starlette(routes=[Route("/", seen)], middleware=[Middleware(Edge)])

    async def main() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://edge") as client:
            return await client.get("/", headers=headers)

    return asyncio.run(main())


@pytest.mark.parametrize(
    "value",
    [
        PARENT,
        f"00-{TRACE}-00f067aa0ba902b7-00",  # not sampled: still a valid parent
        f"01-{TRACE}-00f067aa0ba902b7-01-extra",  # a later version may append fields
    ],
)
def test_valid_traceparents_parse(value: str) -> None:
    assert parse_traceparent(value) == (TRACE, value[53:55])


@pytest.mark.parametrize(
    "value",
    [
        "",
        PARENT.upper(),  # lower-case hex only
        PARENT + "-extra",  # version 00 is exactly 55 characters
        PARENT + "\n",
        f"ff-{TRACE}-00f067aa0ba902b7-01",  # version ff is forbidden
        f"00-{'0' * 32}-00f067aa0ba902b7-01",  # all-zero trace id
        f"00-{TRACE}-{'0' * 16}-01",  # all-zero parent id
        f"00-{TRACE[:-1]}-00f067aa0ba902b7-01",
        f"00-{TRACE}-00f067aa0ba902b7-1",
        f"00_{TRACE}_00f067aa0ba902b7_01",
        f"0-{TRACE}-00f067aa0ba902b7-01",
    ],
)
def test_malformed_traceparents_are_refused(value: str) -> None:
    assert parse_traceparent(value) is None


def test_a_valid_traceparent_names_the_trace_and_is_echoed_with_our_span() -> None:
    response = call([("traceparent", PARENT), ("x-request-id", "caller-id")])
    inside = response.json()
    assert inside["trace_id"] == TRACE and response.headers["x-request-id"] == TRACE
    echoed = response.headers["traceparent"]
    assert echoed == inside["traceparent"]
    assert parse_traceparent(echoed) == (TRACE, "01")
    assert echoed.split("-")[2] != "00f067aa0ba902b7"  # a span of our own, child of theirs


def test_the_callers_sampling_flag_is_kept() -> None:
    response = call([("traceparent", f"00-{TRACE}-00f067aa0ba902b7-00")])
    assert parse_traceparent(response.headers["traceparent"]) == (TRACE, "00")


@pytest.mark.parametrize(
    "headers",
    [
        [("traceparent", PARENT.upper())],
        [("traceparent", f"00-{'0' * 32}-00f067aa0ba902b7-01")],
        [("traceparent", PARENT), ("traceparent", f"00-{'a' * 32}-00f067aa0ba902b7-01")],
    ],
)
def test_a_malformed_or_ambiguous_traceparent_is_ignored(headers: list[tuple[str, str]]) -> None:
    response = call(headers)
    fresh = response.json()["trace_id"]
    assert fresh not in (TRACE, "a" * 32) and len(fresh) == 32
    assert response.headers["x-request-id"] == fresh
    assert parse_traceparent(response.headers["traceparent"]) == (fresh, "01")


def test_x_request_id_alone_still_names_the_trace() -> None:
    response = call([("x-request-id", "trace-e2e-42")])
    assert response.json() == {"trace_id": "trace-e2e-42", "traceparent": None}
    assert response.headers["x-request-id"] == "trace-e2e-42"
    assert "traceparent" not in response.headers  # not a W3C trace id: nothing to propagate


def test_with_a_malformed_traceparent_x_request_id_still_counts() -> None:
    response = call([("traceparent", "garbage"), ("x-request-id", TRACE)])
    assert response.json()["trace_id"] == TRACE


def test_the_relay_sends_this_services_span_upstream() -> None:
    received: list[httpx.Request] = []

    def upstream(request: httpx.Request) -> httpx.Response:
        received.append(request)
        answer: dict[str, Any] = {"id": "x", "object": "chat.completion", "choices": []}
        return httpx.Response(200, content=orjson.dumps(answer))

    async def main() -> None:
        relay = Relay(max_connections=1)
        relay._http = httpx.MockTransport(upstream)
        deployment = Deployment(name="d", model="m", api_base="http://upstream/v1")
        token, parent = trace_id.set(TRACE), traceparent.set(PARENT)
        try:
            await relay.open(deployment, {"model": "m", "messages": []}, TRACE)
        finally:
            trace_id.reset(token)
            traceparent.reset(parent)
        await relay.open(deployment, {"model": "m", "messages": []}, "not-w3c")
        await relay.aclose()

    asyncio.run(main())
    assert received[0].headers["traceparent"] == PARENT
    assert received[0].headers["x-request-id"] == TRACE
    assert "traceparent" not in received[1].headers

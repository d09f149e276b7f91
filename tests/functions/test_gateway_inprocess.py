"""The gateway app in-process, through httpx.ASGITransport: every refusal in OpenAI's shape.

The one deployment points at 127.0.0.1:9, where nothing listens, so a request
that passes every step ends in a refused connection and a 503. What the gateway
relays from a real upstream is covered by tests/e2e.

There is no pytest-asyncio here: each test runs its requests in one
``asyncio.run``, inside the app's lifespan so the relay's client is closed.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import orjson
import pytest
from starlette.applications import Starlette

from functions.gateway import create_app  # imports litellm (seconds): once, here
from functions.settings import Deployment, GatewaySettings, Settings
from tests.openapi import validate

KEY = "sk-test-" + "g" * 24
AUTH = {"authorization": f"Bearer {KEY}"}
CHAT = "/v1/chat/completions"
LIMIT = 2048
UNREACHABLE = "http://127.0.0.1:9/v1"  # the discard port: connection refused
WELL_FORMED_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
HELLO = {"model": "m1", "messages": [{"role": "user", "content": "hi"}]}

Client = httpx.AsyncClient


def make_app() -> Starlette:
    return create_app(
        Settings(
            gateway=GatewaySettings(
                api_keys=[KEY],
                deployments=[Deployment(name="d1", model="m1", api_base=UNREACHABLE)],
                max_body_bytes=LIMIT,
                cold_wait_s=0,  # an unreachable node is refused at once, not awaited
            )
        )
    )


def drive(scenario: Callable[[Client], Awaitable[Any]]) -> Any:
    """Run ``scenario`` against a fresh gateway, lifespan included."""
    app = make_app()

    async def main() -> Any:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
                return await scenario(client)

    return asyncio.run(main())


def request(method: str, path: str, **kwargs: Any) -> httpx.Response:
    async def scenario(client: Client) -> httpx.Response:
        return await client.request(method, path, **kwargs)

    response: httpx.Response = drive(scenario)
    return response


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    validate("ErrorResponse", body)
    if code is not None:
        assert body["error"]["code"] == code
    error: dict[str, Any] = body["error"]
    return error


def test_malformed_json_is_400() -> None:
    response = request("POST", CHAT, content=b'{"model": "m1", "messages": [', headers=AUTH)
    error = assert_error(response, 400)
    assert error["type"] == "invalid_request_error"


def test_a_body_that_is_not_utf8_is_400() -> None:
    assert_error(request("POST", CHAT, content=b'{"model": "\xff"}', headers=AUTH), 400)


def test_missing_messages_is_400_naming_messages() -> None:
    response = request("POST", CHAT, json={"model": "m1"}, headers=AUTH)
    assert assert_error(response, 400)["param"] == "messages"


@pytest.mark.parametrize(
    ("payload", "param"),
    [
        ({**HELLO, "temperature": "hot"}, "temperature"),
        ({**HELLO, "messages": "hi"}, "messages"),
        ({**HELLO, "messages": []}, "messages"),
        ({**HELLO, "temperature": 3}, "temperature"),
        ({"messages": HELLO["messages"]}, "model"),
    ],
    ids=["temperature-hot", "messages-string", "messages-empty", "temperature-3", "no-model"],
)
def test_wrong_types_and_values_are_400(payload: dict[str, Any], param: str) -> None:
    error = assert_error(request("POST", CHAT, json=payload, headers=AUTH), 400)
    assert error["param"] == param


def test_a_json_array_body_is_400() -> None:
    assert_error(request("POST", CHAT, json=[HELLO], headers=AUTH), 400)


def test_no_key_is_401() -> None:
    response = request("POST", CHAT, json=HELLO)
    assert assert_error(response, 401, "invalid_api_key")["type"] == "invalid_request_error"


def test_wrong_key_is_401() -> None:
    response = request("POST", CHAT, json=HELLO, headers={"authorization": "Bearer sk-wrong"})
    error = assert_error(response, 401, "invalid_api_key")
    assert "sk-wrong" not in error["message"]


def test_auth_is_checked_before_the_model() -> None:
    # an unknown model without a key must not tell the caller which models exist
    assert_error(request("POST", CHAT, json={**HELLO, "model": "ghost"}), 401)


@pytest.mark.parametrize("body", [b"{not json", b"x" * (LIMIT * 4)], ids=["malformed", "oversize"])
def test_without_a_key_the_body_is_never_read(body: bytes) -> None:
    # authentication comes first: an anonymous caller learns nothing from the body's fate
    assert_error(request("POST", CHAT, content=body), 401, "invalid_api_key")


def test_the_503_says_when_to_retry() -> None:
    response = request("POST", CHAT, json=HELLO, headers=AUTH)
    assert response.status_code == 503
    assert int(response.headers["retry-after"]) >= 1


def test_unknown_model_is_404_model_not_found() -> None:
    response = request("POST", CHAT, json={**HELLO, "model": "ghost"}, headers=AUTH)
    error = assert_error(response, 404, "model_not_found")
    assert error["param"] == "model"
    assert error["type"] == "invalid_request_error"


def test_a_declared_body_over_the_limit_is_413() -> None:
    payload = {**HELLO, "user": "x" * LIMIT}
    response = request("POST", CHAT, json=payload, headers=AUTH)
    assert "content-length" in response.request.headers
    assert_error(response, 413, "request_too_large")


def test_a_chunked_body_over_the_limit_is_413() -> None:
    async def body() -> AsyncIterator[bytes]:
        yield b'{"model": "m1", "user": "'
        for _ in range(LIMIT // 256 + 2):
            yield b"x" * 256
        yield b'", "messages": [{"role": "user", "content": "hi"}]}'

    response = request("POST", CHAT, content=body(), headers=AUTH)
    assert "content-length" not in response.request.headers
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert_error(response, 413, "request_too_large")


def test_a_body_of_exactly_the_limit_is_read() -> None:
    compact = orjson.dumps({**HELLO, "model": "ghost"})
    padded = compact + b" " * (LIMIT - len(compact))
    assert len(padded) == LIMIT
    response = request("POST", CHAT, content=padded, headers=AUTH)
    assert_error(response, 404, "model_not_found")  # past the size gate, refused later


def test_unknown_route_is_404_json() -> None:
    assert_error(request("GET", "/v1/nope", headers=AUTH), 404, "not_found")


def test_get_on_the_chat_route_is_405_json() -> None:
    response = request("GET", CHAT, headers=AUTH)
    assert_error(response, 405, "method_not_allowed")


def test_a_405_says_which_methods_are_allowed() -> None:
    # RFC 9110 §15.5.6: a 405 response MUST carry an Allow header (Starlette's own does)
    response = request("GET", CHAT, headers=AUTH)
    assert response.status_code == 405
    assert "POST" in response.headers.get("allow", "")


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_the_only_deployment_unreachable_is_503(stream: bool) -> None:
    response = request("POST", CHAT, json={**HELLO, "stream": stream}, headers=AUTH)
    # it does not scale to zero: down, said at once (JSON, even for a stream)
    error = assert_error(response, 503, "deployment_unavailable")
    assert error["type"] == "server_error"
    assert "127.0.0.1" not in error["message"]  # no internal addresses in what callers see


def test_a_request_id_sent_is_echoed() -> None:
    response = request("POST", CHAT, json=HELLO, headers={"x-request-id": "req-42.a:b_c"})
    assert response.status_code == 401
    assert response.headers["x-request-id"] == "req-42.a:b_c"


@pytest.mark.parametrize(
    "sent",
    ["has spaces", "x" * 200, "semi;colon", "new\tline", ""],
    ids=["spaces", "200-chars", "semicolon", "tab", "empty"],
)
def test_a_malformed_request_id_is_replaced(sent: str) -> None:
    response = request("GET", "/health", headers={"x-request-id": sent})
    echoed = response.headers["x-request-id"]
    assert echoed != sent
    assert WELL_FORMED_ID.fullmatch(echoed)


def test_without_a_request_id_each_request_gets_its_own() -> None:
    async def scenario(client: Client) -> list[str]:
        responses = [await client.get("/health") for _ in range(2)]
        return [r.headers["x-request-id"] for r in responses]

    first, second = drive(scenario)
    assert first != second
    assert WELL_FORMED_ID.fullmatch(first)


def test_error_responses_carry_the_request_id_too() -> None:
    response = request("GET", "/v1/nope", headers={"x-request-id": "trace-1"})
    assert response.status_code == 404
    assert response.headers["x-request-id"] == "trace-1"


def test_models_with_a_key_lists_m1() -> None:
    response = request("GET", "/v1/models", headers=AUTH)
    assert response.status_code == 200
    body = response.json()
    validate("ListModelsResponse", body)
    assert [m["id"] for m in body["data"]] == ["m1"]


def test_models_without_a_key_is_401() -> None:
    assert_error(request("GET", "/v1/models"), 401, "invalid_api_key")


def test_health_needs_no_key() -> None:
    response = request("GET", "/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}  # liveness only: nothing about the setup


def test_health_details_and_metrics_are_for_operators() -> None:
    detailed = request("GET", "/health", headers=AUTH).json()
    assert detailed["models"] == ["m1"] and "deployments" in detailed and "audit" in detailed
    assert_error(request("GET", "/metrics"), 401)
    assert_error(request("GET", "/health", headers={"authorization": "Bearer sk-wrong"}), 401)


def test_metrics_count_the_requests_answered() -> None:
    async def scenario(client: Client) -> str:
        await client.post(CHAT, json=HELLO, headers=AUTH)
        return (await client.get("/metrics", headers=AUTH)).text

    text = drive(scenario)
    assert "# TYPE enclave_gateway_requests_total counter" in text
    failed = re.search(
        r'^enclave_gateway_requests_total\{[^}]*status="503"[^}]*\} (\S+)$', text, re.MULTILINE
    )
    assert failed is not None and float(failed.group(1)) == 1.0
    # the background probe found d1 down before the request: it was not even tried
    assert "enclave_gateway_upstream_errors_total" in text

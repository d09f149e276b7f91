"""The exception tree: each class carries what its docstring says; foreign errors map by type."""

from __future__ import annotations

import asyncio
import errno
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import httpx
import openai
import orjson
import pydantic
import pytest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from functions import errors
from functions.edge import Edge, http_exception_handler
from functions.errors import (
    AuthenticationError,
    ClientClosedError,
    CollectionNotFoundError,
    ContentBlockedError,
    ContextLengthExceededError,
    DeploymentDownError,
    EmbeddingMismatchError,
    EnclaveError,
    InvalidRequestError,
    KeyRevokedError,
    MethodNotAllowedError,
    ModelNotFoundError,
    NoCompliantDeploymentError,
    NoDeploymentError,
    PermissionDeniedError,
    QueueFullError,
    RateLimitError,
    RequestTimeoutError,
    RequestTooLargeError,
    RouteNotFoundError,
    ServiceUnavailableError,
    StorageUnavailableError,
    TooManyFailedLoginsError,
    UpstreamError,
    UpstreamRateLimitedError,
    UpstreamRefusedError,
    UpstreamUnavailableError,
    UpstreamUnreachableError,
    map_exception,
    map_upstream_exception,
)
from functions.filtering.classify import Level
from functions.filtering.results import Detection
from functions.llm import load
from functions.relay import Relay
from functions.settings import Deployment
from tests.openapi import validate

litellm = load()  # seconds: the provider errors below are litellm's

# (class, parent, status, type, code) as drawn in the functions.errors docstring
TREE = [
    (EnclaveError, Exception, 500, "server_error", None),
    (InvalidRequestError, EnclaveError, 400, "invalid_request_error", None),
    (ModelNotFoundError, InvalidRequestError, 404, "invalid_request_error", "model_not_found"),
    (RouteNotFoundError, InvalidRequestError, 404, "invalid_request_error", "not_found"),
    (
        MethodNotAllowedError,
        InvalidRequestError,
        405,
        "invalid_request_error",
        "method_not_allowed",
    ),
    (RequestTooLargeError, InvalidRequestError, 413, "invalid_request_error", "request_too_large"),
    (KeyRevokedError, InvalidRequestError, 409, "invalid_request_error", "key_revoked"),
    (ContentBlockedError, InvalidRequestError, 400, "invalid_request_error", "content_filter"),
    (
        CollectionNotFoundError,
        InvalidRequestError,
        404,
        "invalid_request_error",
        "collection_not_found",
    ),
    (
        EmbeddingMismatchError,
        InvalidRequestError,
        400,
        "invalid_request_error",
        "embedding_mismatch",
    ),
    (RequestTimeoutError, InvalidRequestError, 408, "invalid_request_error", "request_timeout"),
    (
        ContextLengthExceededError,
        InvalidRequestError,
        400,
        "invalid_request_error",
        "context_length_exceeded",
    ),
    (AuthenticationError, EnclaveError, 401, "invalid_request_error", "invalid_api_key"),
    (PermissionDeniedError, EnclaveError, 403, "permission_error", "permission_denied"),
    (RateLimitError, EnclaveError, 429, "rate_limit_error", "rate_limit_exceeded"),
    (
        TooManyFailedLoginsError,
        RateLimitError,
        429,
        "rate_limit_error",
        "too_many_failed_logins",
    ),
    (ClientClosedError, EnclaveError, 499, "client_closed_request", None),
    (ServiceUnavailableError, EnclaveError, 503, "server_error", "service_unavailable"),
    (QueueFullError, ServiceUnavailableError, 503, "server_error", "queue_full"),
    (StorageUnavailableError, ServiceUnavailableError, 503, "server_error", "storage_unavailable"),
    (
        UpstreamUnavailableError,
        ServiceUnavailableError,
        503,
        "server_error",
        "upstream_unavailable",
    ),
    (
        UpstreamRateLimitedError,
        UpstreamUnavailableError,
        503,
        "server_error",
        "upstream_unavailable",
    ),
    (
        UpstreamUnreachableError,
        UpstreamUnavailableError,
        503,
        "server_error",
        "upstream_unreachable",
    ),
    (
        UpstreamRefusedError,
        UpstreamUnreachableError,
        503,
        "server_error",
        "upstream_refused",
    ),
    (NoDeploymentError, ServiceUnavailableError, 503, "server_error", "no_deployment_available"),
    (
        DeploymentDownError,
        NoDeploymentError,
        503,
        "server_error",
        "deployment_unavailable",
    ),
    (
        NoCompliantDeploymentError,
        NoDeploymentError,
        503,
        "server_error",
        "no_compliant_deployment",
    ),
]


@pytest.mark.parametrize(("cls", "parent", "status", "type_", "code"), TREE)
def test_each_class_has_its_documented_status_type_and_code(
    cls: type[EnclaveError], parent: type[Exception], status: int, type_: str, code: str | None
) -> None:
    error = cls("something went wrong", param="messages")
    assert cls.__bases__ == (parent,)
    assert (error.status_code, error.type, error.code) == (status, type_, code)
    body = error.body()
    assert set(body) == {"error"}
    assert body["error"] == {
        "message": "something went wrong",
        "type": type_,
        "param": "messages",
        "code": code,
    }
    validate("ErrorResponse", body)


def test_the_table_covers_every_class_in_the_module() -> None:
    declared = {
        obj
        for obj in vars(errors).values()
        if isinstance(obj, type) and issubclass(obj, EnclaveError)
    }
    assert declared == {row[0] for row in TREE} | {UpstreamError}


def test_upstream_error_relays_the_upstream_status() -> None:
    error = UpstreamError("bad temperature", upstream_status=422, param="temperature")
    assert error.status_code == 422
    assert error.body()["error"]["param"] == "temperature"
    validate("ErrorResponse", error.body())


def test_body_without_param_has_null_param_and_validates() -> None:
    body = InvalidRequestError("nope").body()
    assert body["error"]["param"] is None
    validate("ErrorResponse", body)


def test_headers_are_carried() -> None:
    assert QueueFullError("busy", headers={"retry-after": "1"}).headers == {"retry-after": "1"}
    assert QueueFullError("busy").headers == {}


def test_an_enclave_error_maps_to_itself() -> None:
    error = ModelNotFoundError("no such model", param="model")
    assert map_exception(error) is error


def _json_error() -> orjson.JSONDecodeError:
    try:
        orjson.loads(b"{")
    except orjson.JSONDecodeError as exc:
        return exc
    raise AssertionError("orjson accepted '{'")


def _unicode_error() -> UnicodeDecodeError:
    try:
        b"\xff".decode()
    except UnicodeDecodeError as exc:
        return exc
    raise AssertionError("decoded invalid UTF-8")


class _Body(pydantic.BaseModel):
    messages: list[int]


def _validation_error() -> pydantic.ValidationError:
    try:
        _Body.model_validate({"messages": [1, "two"]})
    except pydantic.ValidationError as exc:
        return exc
    raise AssertionError("pydantic accepted a string as an int")


@pytest.mark.parametrize("make", [_json_error, _unicode_error], ids=["json", "unicode"])
def test_undecodable_bodies_map_to_invalid_request(make: Callable[[], Exception]) -> None:
    mapped = map_exception(make())
    assert type(mapped) is InvalidRequestError
    assert mapped.status_code == 400
    assert "JSON" in mapped.message


def test_a_validation_error_maps_to_400_naming_the_field_path() -> None:
    mapped = map_exception(_validation_error())
    assert type(mapped) is InvalidRequestError
    assert mapped.status_code == 400
    assert mapped.param == "messages.1"
    assert "messages.1" in mapped.message


REQUEST = httpx.Request("POST", "http://upstream/v1/chat/completions")


@pytest.mark.parametrize(
    "exc",
    [
        httpx.ConnectTimeout("slow", request=REQUEST),
        httpx.ReadTimeout("slow", request=REQUEST),
        httpx.RemoteProtocolError("peer closed", request=REQUEST),
    ],
    ids=lambda e: type(e).__name__,
)
def test_transport_failures_map_to_upstream_unreachable(exc: httpx.TransportError) -> None:
    mapped = map_exception(exc)
    assert type(mapped) is UpstreamUnreachableError  # a subclass of UpstreamUnavailableError
    assert (mapped.status_code, mapped.code) == (503, "upstream_unreachable")


def test_a_refused_connection_is_its_own_kind_of_unreachable() -> None:
    """Refused or reset while connecting: nothing listens (down, or cold if it scales to zero)."""
    mapped = map_exception(httpx.ConnectError("refused", request=REQUEST))
    assert type(mapped) is UpstreamRefusedError
    assert isinstance(mapped, UpstreamUnreachableError)
    assert (mapped.status_code, mapped.code) == (503, "upstream_refused")


def test_a_timeout_says_so() -> None:
    timeout = map_exception(httpx.ReadTimeout("slow", request=REQUEST))
    refused = map_exception(httpx.ConnectError("refused", request=REQUEST))
    assert timeout.message != refused.message


def test_anything_else_is_a_500_that_does_not_leak_its_text() -> None:
    secret = "password=hunter2 at /srv/enclave/secret.py line 12"
    mapped = map_exception(RuntimeError(secret))
    assert type(mapped) is EnclaveError
    assert mapped.status_code == 500
    assert mapped.type == "server_error"
    assert "hunter2" not in mapped.message
    assert secret not in str(mapped.body())
    validate("ErrorResponse", mapped.body())


def test_mapping_is_by_type_not_by_message() -> None:
    # a RuntimeError that *says* it timed out is still an internal error
    mapped = map_exception(RuntimeError("ReadTimeout: connection refused, invalid JSON"))
    assert type(mapped) is EnclaveError


def test_the_moved_classes_are_the_same_objects_at_their_old_addresses() -> None:
    from functions import filtering, keys, knowledge

    assert filtering.ContentBlockedError is ContentBlockedError
    assert filtering.NoCompliantDeploymentError is NoCompliantDeploymentError
    assert knowledge.CollectionNotFoundError is CollectionNotFoundError
    assert knowledge.EmbeddingMismatchError is EmbeddingMismatchError
    assert keys.KeyRevokedError is KeyRevokedError


def test_a_block_names_the_kinds_blocked_never_the_values() -> None:
    def found(kind: str, action: Any) -> Detection:
        return Detection(
            type=kind, start=0, end=4, action=action, source="pii", rule="r", level=Level.INTERNAL
        )

    error = ContentBlockedError.of([found("secret", "block"), found("email", "mask")])
    assert error.message == "The content was blocked by the content policy (secret)."


# -- every foreign exception, mapped by type ------------------------------------------


def _status(code: int) -> httpx.Response:
    return httpx.Response(code, request=REQUEST)


def _os_error() -> OSError:
    return OSError(errno.ENOSPC, "No space left on device", "/srv/enclave/keys.json")


# (id, make the foreign exception, class, status, type, code) as in functions.errors' table
FOREIGN: list[tuple[str, Callable[[], BaseException], type[EnclaveError], int, str, str | None]] = [
    ("orjson", _json_error, InvalidRequestError, 400, "invalid_request_error", None),
    ("unicode", _unicode_error, InvalidRequestError, 400, "invalid_request_error", None),
    ("pydantic", _validation_error, InvalidRequestError, 400, "invalid_request_error", None),
    (
        "httpx-timeout",
        lambda: httpx.ReadTimeout("slow", request=REQUEST),
        UpstreamUnreachableError,
        503,
        "server_error",
        "upstream_unreachable",
    ),
    (
        "httpx-connect",
        lambda: httpx.ConnectError("refused", request=REQUEST),
        UpstreamRefusedError,
        503,
        "server_error",
        "upstream_refused",
    ),
    (
        "litellm-connection",
        lambda: litellm.exceptions.APIConnectionError(
            "refused", model="m", llm_provider="anthropic"
        ),
        UpstreamUnreachableError,
        503,
        "server_error",
        "upstream_unreachable",
    ),
    (
        "litellm-timeout",
        lambda: litellm.exceptions.Timeout("slow", model="m", llm_provider="anthropic"),
        UpstreamUnreachableError,
        503,
        "server_error",
        "upstream_unreachable",
    ),
    (
        "litellm-context-window",
        lambda: litellm.exceptions.ContextWindowExceededError(
            "too long", model="m", llm_provider="anthropic"
        ),
        UpstreamError,
        400,
        "invalid_request_error",
        "context_length_exceeded",
    ),
    (
        "litellm-bad-request",
        lambda: litellm.exceptions.BadRequestError(
            "bad temperature", model="m", llm_provider="anthropic"
        ),
        UpstreamError,
        400,
        "invalid_request_error",
        None,
    ),
    (
        "litellm-content-policy",
        lambda: litellm.exceptions.ContentPolicyViolationError(
            "no", model="m", llm_provider="anthropic"
        ),
        UpstreamError,
        400,
        "invalid_request_error",
        None,
    ),
    (
        "litellm-unprocessable",
        lambda: litellm.exceptions.UnprocessableEntityError(
            "no", response=_status(422), model="m", llm_provider="anthropic"
        ),
        UpstreamError,
        422,
        "invalid_request_error",
        None,
    ),
    (
        "litellm-authentication",
        lambda: litellm.exceptions.AuthenticationError(
            "bad key", model="m", llm_provider="anthropic"
        ),
        UpstreamUnavailableError,
        503,
        "server_error",
        "upstream_unavailable",
    ),
    (
        "litellm-permission",
        lambda: litellm.exceptions.PermissionDeniedError(
            "no", response=_status(403), model="m", llm_provider="anthropic"
        ),
        UpstreamUnavailableError,
        503,
        "server_error",
        "upstream_unavailable",
    ),
    (
        "litellm-not-found",
        lambda: litellm.exceptions.NotFoundError("no model", model="m", llm_provider="anthropic"),
        UpstreamUnavailableError,
        503,
        "server_error",
        "upstream_unavailable",
    ),
    (
        "litellm-rate-limit",
        lambda: litellm.exceptions.RateLimitError("slow down", model="m", llm_provider="anthropic"),
        UpstreamRateLimitedError,
        503,
        "server_error",
        "upstream_unavailable",
    ),
    (
        "litellm-service-unavailable",
        lambda: litellm.exceptions.ServiceUnavailableError(
            "down", model="m", llm_provider="anthropic"
        ),
        UpstreamUnavailableError,
        503,
        "server_error",
        "upstream_unavailable",
    ),
    (
        "litellm-internal",
        lambda: litellm.exceptions.InternalServerError("oops", model="m", llm_provider="anthropic"),
        UpstreamUnavailableError,
        503,
        "server_error",
        "upstream_unavailable",
    ),
    (
        "litellm-budget",
        # a 429: the deployment's budget is spent, so it rests at once
        lambda: litellm.exceptions.BudgetExceededError(current_cost=2.0, max_budget=1.0),
        UpstreamRateLimitedError,
        503,
        "server_error",
        "upstream_unavailable",
    ),
    (
        "openai-connection",
        lambda: openai.APIConnectionError(request=REQUEST),
        UpstreamUnavailableError,
        503,
        "server_error",
        "upstream_unavailable",
    ),
    (
        "content-blocked",
        lambda: ContentBlockedError("blocked (secret)."),
        ContentBlockedError,
        400,
        "invalid_request_error",
        "content_filter",
    ),
    ("os-error", _os_error, EnclaveError, 500, "server_error", None),
    ("runtime-error", lambda: RuntimeError("bug"), EnclaveError, 500, "server_error", None),
]
FOREIGN_IDS = [row[0] for row in FOREIGN]
ROW = ("name", "make", "cls", "status", "type_", "code")


@pytest.mark.parametrize(
    ("name", "make", "cls", "status", "type_", "code"), FOREIGN, ids=FOREIGN_IDS
)
def test_each_foreign_exception_maps_by_type(
    name: str,
    make: Callable[[], BaseException],
    cls: type[EnclaveError],
    status: int,
    type_: str,
    code: str | None,
) -> None:
    mapped = map_exception(make())
    assert type(mapped) is cls
    assert (mapped.status_code, mapped.type, mapped.body()["error"]["code"]) == (
        status,
        type_,
        code,
    )
    assert mapped.headers == {}  # only an upstream's HTTP answer carries retry-after
    validate("ErrorResponse", mapped.body())


@pytest.mark.parametrize(
    ("name", "make", "cls", "status", "type_", "code"), FOREIGN, ids=FOREIGN_IDS
)
def test_talking_to_a_deployment_anything_not_the_requests_fault_is_the_deployments(
    name: str,
    make: Callable[[], BaseException],
    cls: type[EnclaveError],
    status: int,
    type_: str,
    code: str | None,
) -> None:
    mapped = map_upstream_exception(make())
    if issubclass(cls, UpstreamError | UpstreamUnavailableError):
        assert (type(mapped), mapped.status_code) == (cls, status)
    else:  # a bug or a bad answer while relaying: fail over, never blame the caller
        assert type(mapped) is UpstreamUnavailableError
        assert mapped.message == "The model server failed."


def test_provider_errors_never_show_the_providers_text() -> None:
    leaky = litellm.exceptions.BadRequestError(
        "sk-live-abcdef0123456789 is wrong", model="m", llm_provider="anthropic"
    )
    assert "sk-live" not in str(map_exception(leaky).body())


def test_importing_the_tree_does_not_import_litellm() -> None:
    code = "import sys, functions.errors; print('litellm' in sys.modules, 'openai' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["False", "False"]


# -- the edge renders each as OpenAI's error JSON ----------------------------------------


def _edge_with(exc: BaseException) -> Starlette:
    """An app wired as the gateway and the node are: the edge outermost but for
    Starlette's own last-resort handler, which it must never let answer."""

    async def fail(request: Request) -> Response:
        raise exc

    return Starlette(
        routes=[Route("/fail", fail, methods=["POST"])],
        middleware=[Middleware(Edge)],
        exception_handlers={HTTPException: http_exception_handler},
    )


def _post(app: Starlette) -> httpx.Response:
    async def main() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://edge") as client:
            return await client.post("/fail", json={})

    return asyncio.run(main())


@pytest.mark.parametrize(
    ("name", "make", "cls", "status", "type_", "code"), FOREIGN, ids=FOREIGN_IDS
)
def test_the_edge_answers_each_in_openais_error_shape(
    name: str,
    make: Callable[[], BaseException],
    cls: type[EnclaveError],
    status: int,
    type_: str,
    code: str | None,
) -> None:
    exc = make()
    response = _post(_edge_with(exc))
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    validate("ErrorResponse", body)
    assert (body["error"]["type"], body["error"]["code"]) == (type_, code)
    assert body == map_exception(exc).body()
    assert "Traceback" not in response.text
    assert "/srv/enclave" not in response.text


def test_the_edge_passes_an_upstreams_retry_after_on() -> None:
    error = UpstreamUnavailableError("busy", headers={"retry-after": "7"})
    response = _post(_edge_with(error))
    assert (response.status_code, response.headers["retry-after"]) == (503, "7")


# -- the relay classifies through the same mapping ----------------------------------------


def _open(deployment: Deployment, relay: Relay) -> Any:
    async def main() -> Any:
        try:
            return await relay.open(deployment, {"model": "m", "messages": []}, "trace-1")
        finally:
            await relay.aclose()

    return asyncio.run(main())


@pytest.mark.parametrize(
    ("status", "headers", "cls", "expected_headers"),
    [
        (429, {"retry-after": "7"}, UpstreamRateLimitedError, {"retry-after": "7"}),
        (503, {"retry-after": "2"}, UpstreamUnavailableError, {"retry-after": "2"}),
        (401, {}, UpstreamUnavailableError, {}),
        (422, {}, UpstreamError, {}),
    ],
)
def test_an_upstreams_http_refusal(
    status: int, headers: dict[str, str], cls: type[EnclaveError], expected_headers: dict[str, str]
) -> None:
    def upstream(request: httpx.Request) -> httpx.Response:
        error = {"error": {"message": "no", "type": "x", "code": "bad_value"}}
        return httpx.Response(status, content=orjson.dumps(error), headers=headers)

    relay = Relay(max_connections=1)
    relay._http = httpx.MockTransport(upstream)
    with pytest.raises(cls) as raised:
        _open(Deployment(name="d", model="m", api_base="http://upstream/v1"), relay)
    assert type(raised.value) is cls  # only a 429 rests its deployment at once
    assert raised.value.headers == expected_headers
    assert raised.value.status_code == (status if cls is UpstreamError else 503)
    if cls is not UpstreamError:  # the caller cannot tell a 429 from any other failure
        assert raised.value.body()["error"]["code"] == "upstream_unavailable"


@pytest.mark.parametrize(
    ("name", "make", "cls", "status", "type_", "code"), FOREIGN, ids=FOREIGN_IDS
)
def test_what_litellm_raises_is_classified_by_the_one_mapping(
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    make: Callable[[], BaseException],
    cls: type[EnclaveError],
    status: int,
    type_: str,
    code: str | None,
) -> None:
    exc = make()

    async def acompletion(**kwargs: Any) -> Any:
        raise exc

    monkeypatch.setattr(litellm, "acompletion", acompletion)
    deployment = Deployment(name="d", model="m", api_base="http://x/v1", provider="anthropic")
    with pytest.raises((UpstreamError, UpstreamUnavailableError)) as raised:
        _open(deployment, Relay(max_connections=1))
    expected = map_upstream_exception(exc)
    assert (type(raised.value), raised.value.body()) == (type(expected), expected.body())
    assert raised.value.__cause__ is exc

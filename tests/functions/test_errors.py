"""The exception tree: each class carries what its docstring says; foreign errors map by type."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import orjson
import pydantic
import pytest

from functions import errors
from functions.errors import (
    AuthenticationError,
    ClientClosedError,
    ContextLengthExceededError,
    EnclaveError,
    InvalidRequestError,
    MethodNotAllowedError,
    ModelNotFoundError,
    NoDeploymentError,
    PermissionDeniedError,
    QueueFullError,
    RateLimitError,
    RequestTimeoutError,
    RequestTooLargeError,
    RouteNotFoundError,
    ServiceUnavailableError,
    TooManyFailedLoginsError,
    UpstreamError,
    UpstreamUnavailableError,
    UpstreamUnreachableError,
    map_exception,
)
from tests.openapi import validate

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
    (
        UpstreamUnavailableError,
        ServiceUnavailableError,
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
    (NoDeploymentError, ServiceUnavailableError, 503, "server_error", "no_deployment_available"),
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
        httpx.ConnectError("refused", request=REQUEST),
        httpx.RemoteProtocolError("peer closed", request=REQUEST),
    ],
    ids=lambda e: type(e).__name__,
)
def test_transport_failures_map_to_upstream_unreachable(exc: httpx.TransportError) -> None:
    mapped = map_exception(exc)
    assert type(mapped) is UpstreamUnreachableError  # a subclass of UpstreamUnavailableError
    assert (mapped.status_code, mapped.code) == (503, "upstream_unreachable")


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

"""One exception tree for the gateway and the node, turned into OpenAI error JSON at the edge.

    EnclaveError                      500 server_error          (base; not raised directly)
    ├── InvalidRequestError           400 invalid_request_error
    │   ├── ModelNotFoundError        404 invalid_request_error  model_not_found
    │   ├── RouteNotFoundError        404 invalid_request_error  not_found
    │   ├── MethodNotAllowedError     405 invalid_request_error  method_not_allowed
    │   ├── RequestTimeoutError       408 invalid_request_error  request_timeout
    │   ├── KeyRevokedError           409 invalid_request_error  key_revoked
    │   ├── RequestTooLargeError      413 invalid_request_error  request_too_large
    │   ├── ContextLengthExceededError 400 invalid_request_error context_length_exceeded
    │   ├── ContentBlockedError       400 invalid_request_error  content_filter
    │   ├── CollectionNotFoundError   404 invalid_request_error  collection_not_found
    │   └── EmbeddingMismatchError    400 invalid_request_error  embedding_mismatch
    ├── AuthenticationError           401 invalid_request_error  invalid_api_key
    ├── PermissionDeniedError         403 permission_error
    ├── RateLimitError                429 rate_limit_error       rate_limit_exceeded
    │   └── TooManyFailedLoginsError  429 rate_limit_error       too_many_failed_logins
    ├── UpstreamError                 4xx invalid_request_error  (the upstream's status and
    │                                                            code, e.g. context_length_exceeded)
    ├── ClientClosedError             499 (logged only: the caller is gone)
    └── ServiceUnavailableError       503 server_error          service_unavailable
        ├── QueueFullError            503                        queue_full
        ├── StorageUnavailableError   503                        storage_unavailable
        ├── UpstreamUnavailableError  503                        upstream_unavailable
        │   ├── UpstreamRateLimitedError 503                     upstream_unavailable (a 429:
        │   │                                                    its deployment rests at once)
        │   └── UpstreamUnreachableError 503                     upstream_unreachable
        │       └── UpstreamRefusedError 503                     upstream_refused
        └── NoDeploymentError         503                        no_deployment_available
            ├── NoCompliantDeploymentError 503                   no_compliant_deployment
            └── DeploymentDownError   503                        deployment_unavailable

Each class carries its HTTP status and OpenAI error ``type``/``code``. Exceptions
from libraries are mapped by type in :func:`map_exception`, the only place that
knows about them; nothing here ever looks at message text:

    EnclaveError (any of the above)           itself
    orjson.JSONDecodeError, UnicodeDecodeError 400 InvalidRequestError  (not valid JSON)
    pydantic.ValidationError                  400 InvalidRequestError  (param: the field path)
    httpx.TimeoutException                    503 UpstreamUnreachableError (did not answer in time)
    httpx.ConnectError                        503 UpstreamRefusedError (refused or reset: no
                                                  server listens; down unless it scales to zero)
    httpx.TransportError                      503 UpstreamUnreachableError (could not be reached)
    litellm APIConnectionError, Timeout       503 UpstreamUnreachableError (could not be reached)
    litellm ContextWindowExceededError        400 UpstreamError  context_length_exceeded
    litellm/openai error, other 4xx status    4xx UpstreamError  (the status; the request's fault)
    litellm/openai error, status 429          503 UpstreamRateLimitedError
    litellm/openai error, any other status    503 UpstreamUnavailableError (the deployment's fault:
                                                  401, 403, 404, 408, 5xx, …)
    anything else (OSError from a store, …)   500 EnclaveError  (logged; its text never shown)

:func:`map_upstream_exception` is the same mapping for a failure while talking to a
deployment, where anything unknown is the deployment's fault (503, so the caller fails
over). litellm takes seconds to import and the node never imports it: its classes are
looked up in ``sys.modules``, since an exception of a class never imported cannot exist.

Error classes that stay where they are, because they never reach a caller: a store's
own failure (``LimitStoreError``, ``CacheStoreError``: the limiter and the cache catch
it and decide), an issuer's bad answer (``JWKSError``: the JWKS cache turns it into a
503 ``ServiceUnavailableError``), an ingestion file's (``ParseError``: a per-file
failure in the ingestion summary), start-up errors (``UnknownEngineError``,
``UnknownEmbedderError``, ``NodeKeyMissingError``, ``AuditConfigError`` and
``AuditKeyError``, which stop a start-up or a CLI command) and an engine's child
process (``ChildExitedError``, a 500 like any engine fault). ``AuditUnavailableError``
(503) does reach callers and belongs here; it subclasses ``ServiceUnavailableError``
from ``functions/audit/errors.py`` until the audit package moves it.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable
from typing import Any, ClassVar, Protocol

import httpx
import orjson
import pydantic

_CODE = re.compile(r"[a-z][a-z0-9_]{0,63}")
# statuses that mean "this deployment cannot serve now", not "this request is wrong"
DEPLOYMENT_FAULTS = frozenset({401, 403, 404, 408, 429})


class EnclaveError(Exception):
    """Base of every error Enclave answers with. Subclasses set status, type and code."""

    status: ClassVar[int] = 500
    type: ClassVar[str] = "server_error"
    code: ClassVar[str | None] = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.headers = headers or {}

    @property
    def status_code(self) -> int:
        return self.status

    def body(self) -> dict[str, Any]:
        """The OpenAI ``ErrorResponse`` object."""
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }


class InvalidRequestError(EnclaveError):
    status = 400
    type = "invalid_request_error"


class ModelNotFoundError(InvalidRequestError):
    status = 404
    code = "model_not_found"


class RouteNotFoundError(InvalidRequestError):
    status = 404
    code = "not_found"


class MethodNotAllowedError(InvalidRequestError):
    status = 405
    code = "method_not_allowed"


class RequestTimeoutError(InvalidRequestError):
    """The body did not arrive in time: the client's fault, never the deployment's."""

    status = 408
    code = "request_timeout"


class KeyRevokedError(InvalidRequestError):
    """Rotating a revoked key would bring it back to life under a new secret."""

    status = 409
    code = "key_revoked"


class RequestTooLargeError(InvalidRequestError):
    status = 413
    code = "request_too_large"


class ContextLengthExceededError(InvalidRequestError):
    """A prompt that leaves no room in the model's context: 400, as OpenAI answers it.

    Engines raise it before their first piece, so a streamed request gets it as an
    ordinary 400 before any byte of the stream.
    """

    code = "context_length_exceeded"

    @classmethod
    def of(cls, prompt_tokens: int, context_tokens: int) -> ContextLengthExceededError:
        return cls(
            f"This model's maximum context length is {context_tokens} tokens. However, your "
            f"messages resulted in {prompt_tokens} tokens. Please reduce the length of the "
            "messages.",
            param="messages",
        )


class _Detected(Protocol):
    """What :meth:`ContentBlockedError.of` reads of a filter's detection."""

    @property
    def type(self) -> str: ...

    @property
    def action(self) -> str: ...


class ContentBlockedError(InvalidRequestError):
    """The content policy refused a request, or stopped an answer mid-stream."""

    code = "content_filter"

    @classmethod
    def of(cls, detections: Iterable[_Detected]) -> ContentBlockedError:
        kinds = sorted({d.type for d in detections if d.action == "block"})
        return cls(f"The content was blocked by the content policy ({', '.join(kinds)}).")


class CollectionNotFoundError(InvalidRequestError):
    status = 404
    code = "collection_not_found"


class EmbeddingMismatchError(InvalidRequestError):
    """The collection was built with another embedding model or dimension."""

    code = "embedding_mismatch"


class AuthenticationError(EnclaveError):
    """``reason`` labels the refusal in metrics (functions/logins.py): a word from a fixed
    set, never the credential."""

    status = 401
    type = "invalid_request_error"
    code = "invalid_api_key"

    def __init__(self, message: str, *, reason: str = "other", **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.reason = reason


class PermissionDeniedError(EnclaveError):
    status = 403
    type = "permission_error"
    code = "permission_denied"


class RateLimitError(EnclaveError):
    status = 429
    type = "rate_limit_error"
    code = "rate_limit_exceeded"


class TooManyFailedLoginsError(RateLimitError):
    """An address that failed to log in too often, refused before its credential is read."""

    code = "too_many_failed_logins"


class UpstreamError(EnclaveError):
    """An upstream refused the request itself (4xx): the client's error, relayed with the
    upstream's status and, when it is a plain identifier, its code."""

    type = "invalid_request_error"

    def __init__(
        self, message: str, *, upstream_status: int, code: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(message, **kwargs)
        self.upstream_status = upstream_status
        self.upstream_code = code if code and _CODE.fullmatch(code) else None
        if self.upstream_code == ContextLengthExceededError.code and self.param is None:
            self.param = "messages"  # as the gateway's own refusal names it

    @property
    def status_code(self) -> int:
        return self.upstream_status

    def body(self) -> dict[str, Any]:
        body = super().body()
        body["error"]["code"] = self.upstream_code
        return body


class ClientClosedError(EnclaveError):
    status = 499
    type = "client_closed_request"


class ServiceUnavailableError(EnclaveError):
    status = 503
    type = "server_error"
    code = "service_unavailable"


class QueueFullError(ServiceUnavailableError):
    code = "queue_full"


class StorageUnavailableError(ServiceUnavailableError):
    """Operator storage (the bucket) did not answer, or refused us: nothing was changed."""

    code = "storage_unavailable"


class UpstreamUnavailableError(ServiceUnavailableError):
    code = "upstream_unavailable"


class UpstreamRateLimitedError(UpstreamUnavailableError):
    """The deployment answered 429: it is overloaded, so it rests at once (as litellm's
    Router does); the caller sees the same 503 as for any other deployment failure."""


class UpstreamUnreachableError(UpstreamUnavailableError):
    """No answer at all (refused, timed out): the deployment may be cold or gone."""

    code = "upstream_unreachable"


class UpstreamRefusedError(UpstreamUnreachableError):
    """The connection was refused or reset: nothing listens there (down, or cold)."""

    code = "upstream_refused"


class NoDeploymentError(ServiceUnavailableError):
    code = "no_deployment_available"


class NoCompliantDeploymentError(NoDeploymentError):
    """Every deployment this request may use is down or excluded by its classification."""

    code = "no_compliant_deployment"


class DeploymentDownError(NoDeploymentError):
    """Every deployment that may serve is down (refuses connections) and none can be woken."""

    code = "deployment_unavailable"


def _validation_error(exc: pydantic.ValidationError) -> EnclaveError:
    first = exc.errors(include_url=False)[0]
    loc = ".".join(str(part) for part in first["loc"])
    if len(loc) > 128:  # a location names dict keys, and a key may be a megabyte long
        loc = loc[:125] + "..."
    return InvalidRequestError(f"Invalid value for '{loc}': {first['msg']}", param=loc or None)


def _provider_error(exc: BaseException) -> EnclaveError | None:
    """A litellm (or openai SDK) exception: whose fault, by its class and the upstream's status.

    Looked up in ``sys.modules``: importing litellm costs seconds, and if it was never
    imported none of its exceptions can have been raised.
    """
    exceptions = sys.modules.get("litellm.exceptions")
    if exceptions is not None:
        if isinstance(exc, exceptions.APIConnectionError | exceptions.Timeout):
            return UpstreamUnreachableError("The model server could not be reached.")
        if isinstance(exc, exceptions.ContextWindowExceededError):
            return UpstreamError(
                "The prompt does not fit the model's context.",
                upstream_status=400,
                code="context_length_exceeded",
            )
    if type(exc).__module__.partition(".")[0] not in {"litellm", "openai"}:
        return None
    status = getattr(exc, "status_code", None)
    if isinstance(status, int) and 400 <= status < 500 and status not in DEPLOYMENT_FAULTS:
        return UpstreamError("The model server refused the request.", upstream_status=status)
    if status == 429:
        return UpstreamRateLimitedError("The model server is rate limiting requests.")
    return UpstreamUnavailableError("The model server failed.")


def map_exception(exc: BaseException) -> EnclaveError:
    """Turn any exception into an :class:`EnclaveError`, by type only (table: module docstring)."""
    if isinstance(exc, EnclaveError):
        return exc
    if isinstance(exc, orjson.JSONDecodeError | UnicodeDecodeError):
        return InvalidRequestError("The request body is not valid JSON.")
    if isinstance(exc, pydantic.ValidationError):
        return _validation_error(exc)
    if isinstance(exc, httpx.TimeoutException):
        return UpstreamUnreachableError("The model server did not answer in time.")
    if isinstance(exc, httpx.ConnectError):
        return UpstreamRefusedError("The model server refused the connection.")
    if isinstance(exc, httpx.TransportError):
        return UpstreamUnreachableError("The model server could not be reached.")
    if (provider := _provider_error(exc)) is not None:
        return provider
    return EnclaveError("The server had an internal error while processing the request.")


def map_upstream_exception(exc: BaseException) -> UpstreamError | UpstreamUnavailableError:
    """A failure while sending a request to a deployment: :class:`UpstreamError` when the
    upstream refused the request itself, else :class:`UpstreamUnavailableError` (the
    deployment failed: the caller may fail over), whatever was raised."""
    mapped = map_exception(exc)
    if isinstance(mapped, UpstreamError | UpstreamUnavailableError):
        return mapped
    return UpstreamUnavailableError("The model server failed.")

"""The gateway's own OpenAPI 3.1 document: exactly the routes it serves, at ``GET /openapi.json``.

Written here rather than loaded: the official OpenAI description
(``../shared/openai-openapi/openapi.yaml``) is 3 MB and 182 paths, nearly all of
which Enclave does not serve. The chat request is the spec's
``CreateChatCompletionRequest`` cut down to the parameters Enclave supports (the
allow-list of :class:`functions.wire.ChatCompletionRequest`) with the spec's names,
types and ranges, plus the bounds Enclave adds (``functions.wire.MAX_*``) and our
extension ``enclave``. Answers are the spec's schemas, trimmed to what the gateway
emits; every refusal is OpenAI's ``ErrorResponse``. ``tests/functions/test_openapi_doc.py``
checks the document against the spec and against the app's routes, and
``tests/security/test_schemathesis.py`` holds a running gateway to it.

The document names no model, deployment, tenant or collection: it carries no
operator data, so it is served without a key. The building blocks are in
:mod:`.schema`, the chat wire in :mod:`.chat`, Enclave's own routes in :mod:`.service`;
this module lays out the paths.
"""

from __future__ import annotations

import functools
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from functions.admin import ADMIN_BODY_LIMIT
from functions.feedback import BODY_LIMIT as FEEDBACK_BODY_LIMIT
from functions.filtering.steps import FILTER_BODY_LIMIT
from functions.openapi.chat import ANSWER_SCHEMAS, CHAT_REQUEST, CHAT_SCHEMAS, ERROR_SCHEMAS
from functions.openapi.schema import (
    API_VERSION,
    COLLECTION,
    FILENAME,
    JSON_OBJECT,
    STRING,
    Schema,
    ref,
)
from functions.openapi.service import ERRORS, SERVICE_SCHEMAS

__all__ = ["document", "openapi_route"]


def _json(schema: Schema) -> Schema:
    return {"application/json": {"schema": schema}}


def _responses(ok: dict[str, Schema], *errors: int) -> Schema:
    return {
        **ok,
        **{str(status): {"$ref": f"#/components/responses/{status}"} for status in errors},
    }


def _ok(description: str, content: Schema, status: int = 200) -> dict[str, Schema]:
    return {str(status): {"description": description, "content": content}}


def _body(schema: Schema, limit: int | None = None) -> Schema:
    description = f"At most {limit} bytes." if limit else "JSON."
    return {"required": True, "description": description, "content": _json(schema)}


_AUTHED = (401, 403, 429, 503)  # 429: too many failed logins from the address
_PUBLIC: list[Schema] = []  # no key needed
_KEY_OPTIONAL: list[Schema] = [{}, {"bearer": []}]
_TENANT = {
    "name": "tenant",
    "in": "query",
    "required": False,
    "description": "One tenant (default: the caller's; every tenant for the bootstrap admin).",
    "schema": STRING,
}
_KEY_ID = {"name": "key_id", "in": "path", "required": True, "schema": STRING}


def _operation(summary: str, responses: Schema, **extra: Any) -> Schema:
    return {"summary": summary, "operationId": summary_id(summary), "responses": responses, **extra}


def summary_id(summary: str) -> str:
    words = "".join(c if c.isalnum() else " " for c in summary).split()
    return words[0].lower() + "".join(w.capitalize() for w in words[1:])


def _paths() -> Schema:
    chat_ok = {
        "application/json": {"schema": ref("ChatCompletion")},
        "text/event-stream": {"schema": ref("ChatStreamEvent")},
    }
    return {
        "/v1/chat/completions": {
            "post": _operation(
                "Create a chat completion",
                _responses(
                    _ok("The answer, whole or as server-sent events.", chat_ok),
                    400,
                    *_AUTHED,
                    404,
                    413,
                    422,
                    429,
                ),
                requestBody=_body(ref("ChatCompletionRequest")),
            )
        },
        "/v1/models": {
            "get": _operation(
                "List models",
                _responses(_ok("The models this key may use.", _json(ref("ModelList"))), *_AUTHED),
            )
        },
        "/v1/filter": {
            "post": _operation(
                "Filter a text",
                _responses(
                    _ok("What the filter makes of the text.", _json(ref("FilterResult"))),
                    400,
                    *_AUTHED,
                    413,
                    429,
                ),
                requestBody=_body(ref("FilterRequest"), FILTER_BODY_LIMIT),
            )
        },
        "/v1/feedback": {
            "post": _operation(
                "Rate an answer",
                _responses(
                    _ok("The rating as stored (a second one replaces it).", _json(ref("Feedback"))),
                    400,
                    *_AUTHED,
                    404,
                    413,
                ),
                requestBody=_body(ref("FeedbackRequest"), FEEDBACK_BODY_LIMIT),
            )
        },
        "/v1/retrieve": {
            "post": _operation(
                "Retrieve passages",
                _responses(
                    _ok("Passages, best first.", _json(ref("RetrieveResponse"))),
                    400,
                    *_AUTHED,
                    404,
                    413,
                    429,
                ),
                requestBody=_body(ref("RetrieveRequest")),
            )
        },
        "/v1/embeddings": {
            "post": _operation(
                "Create embeddings",
                _responses(
                    _ok("One vector per input.", _json(ref("EmbeddingResponse"))),
                    400,
                    *_AUTHED,
                    404,
                    413,
                    429,
                ),
                requestBody=_body(ref("EmbeddingRequest")),
            )
        },
        "/v1/admin/collections/{collection}/documents": {
            "put": _operation(
                "Upload a document",
                _responses(
                    {
                        **_ok(
                            "Ingested: something was added or replaced.",
                            _json(ref("UploadSummary")),
                            201,
                        ),
                        **_ok(
                            "Read, nothing changed (or the document failed to parse).",
                            _json(ref("UploadSummary")),
                        ),
                    },
                    400,
                    *_AUTHED,
                    404,
                    413,
                    429,
                ),
                parameters=[
                    {
                        "name": "collection",
                        "in": "path",
                        "required": True,
                        "schema": COLLECTION,
                    },
                    {
                        "name": "filename",
                        "in": "query",
                        "required": True,
                        "schema": FILENAME,
                    },
                ],
                requestBody={
                    "required": False,
                    "description": "The file's bytes; none is an empty file, reported as failed.",
                    "content": {
                        "application/octet-stream": {
                            "schema": {"type": "string", "format": "binary"}
                        }
                    },
                },
            )
        },
        "/v1/admin/keys": {
            "post": _operation(
                "Create a key",
                _responses(
                    _ok("The key, shown once, and its record.", _json(ref("NewKey")), 201),
                    400,
                    *_AUTHED,
                    413,
                ),
                requestBody=_body(ref("KeySpec"), ADMIN_BODY_LIMIT),
            ),
            "get": _operation(
                "List keys",
                _responses(
                    _ok("The caller's tenant's keys; never a key.", _json(ref("KeyList"))), *_AUTHED
                ),
            ),
        },
        "/v1/admin/keys/{key_id}/revoke": {
            "post": _operation(
                "Revoke a key",
                _responses(_ok("The revoked record.", _json(ref("KeyRecord"))), *_AUTHED, 404),
                parameters=[_KEY_ID],
            )
        },
        "/v1/admin/keys/{key_id}/rotate": {
            "post": _operation(
                "Rotate a key",
                _responses(
                    _ok("The new key, shown once; the old one is revoked.", _json(ref("NewKey"))),
                    *_AUTHED,
                    404,
                    409,
                ),
                parameters=[_KEY_ID],
            )
        },
        "/v1/admin/cache": {
            "get": _operation(
                "Response-cache statistics",
                _responses(_ok("Entries and results.", _json(ref("CacheStats"))), *_AUTHED),
                parameters=[_TENANT],
            ),
            "delete": _operation(
                "Clear the response cache",
                _responses(_ok("How many entries went.", _json(ref("CacheCleared"))), *_AUTHED),
                parameters=[_TENANT],
            ),
        },
        "/health": {
            "get": _operation(
                "Health",
                _responses(
                    _ok(
                        "Liveness; with an admin's or auditor's key, the details.",
                        _json(ref("Health")),
                    ),
                    *_AUTHED,
                ),
                security=_KEY_OPTIONAL,
            )
        },
        "/metrics": {
            "get": _operation(
                "Metrics",
                _responses(
                    _ok("Prometheus text format.", {"text/plain": {"schema": STRING}}), *_AUTHED
                ),
            )
        },
        "/openapi.json": {
            "get": _operation(
                "This document",
                _responses(_ok("OpenAPI 3.1.", _json(JSON_OBJECT))),
                security=_PUBLIC,
            )
        },
    }


@functools.cache
def document() -> dict[str, Any]:
    """The OpenAPI document (built once; treat it as read-only)."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Enclave gateway",
            "version": API_VERSION,
            "description": "OpenAI-compatible chat, the content filter, the knowledge base "
            "and key management. Errors are OpenAI's ErrorResponse.",
        },
        "security": [{"bearer": []}],
        "paths": _paths(),
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An Enclave key (sk-enc-…), a bootstrap key, or an OIDC token.",
                }
            },
            "schemas": {
                "ChatCompletionRequest": CHAT_REQUEST,
                **CHAT_SCHEMAS,
                **ANSWER_SCHEMAS,
                **ERROR_SCHEMAS,
                **SERVICE_SCHEMAS,
            },
            "responses": {
                str(status): {"description": text, "content": _json(ref("ErrorResponse"))}
                for status, text in ERRORS.items()
            },
        },
    }


def openapi_route() -> Route:
    """``GET /openapi.json``: this document, for anyone (it holds no operator data)."""
    body = orjson.dumps(document())

    async def endpoint(request: Request) -> Response:
        return Response(body, media_type="application/json")

    return Route("/openapi.json", endpoint, methods=["GET"])

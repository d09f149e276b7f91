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
operator data, so it is served without a key. It is longer than most modules
because it is one literal description of the wire, kept in one place.
"""

from __future__ import annotations

import functools
from typing import Any

import annotated_types
import orjson
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from functions import wire
from functions.admin import ADMIN_BODY_LIMIT
from functions.filtering.steps import FILTER_BODY_LIMIT
from functions.keys import KeySpec
from functions.knowledge.api import MAX_INPUTS, EmbeddingRequest, RetrieveRequest
from functions.knowledge.parsers import PARSERS
from functions.knowledge.store import MAX_NAME, NAME

API_VERSION = "1.0.0"  # the version of this document's contract, not of the package
Schema = dict[str, Any]


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


def obj(required: tuple[str, ...] = (), **properties: Schema) -> Schema:
    schema: Schema = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    return schema


STRING: Schema = {"type": "string"}
SHORT: Schema = {"type": "string", "maxLength": wire.MAX_NAME_CHARS}
INTEGER: Schema = {"type": "integer"}
BOOLEAN: Schema = {"type": "boolean"}
JSON_OBJECT: Schema = {"type": "object"}  # free-form JSON (tool parameters, response schemas)
COLLECTION: Schema = {"type": "string", "maxLength": MAX_NAME, "pattern": NAME.pattern}


def _any_case(suffix: str) -> str:
    """``suffix`` as an ECMA-262 pattern matching it in any case (no inline flags there)."""
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else c for c in suffix)


# a file name the knowledge base can parse: its last path segment has a supported suffix
FILENAME: Schema = {
    "type": "string",
    "pattern": r"^(?:.*[/\\])?[^/\\]+\.(?:"
    + "|".join(_any_case(suffix.lstrip(".")) for suffix in sorted(PARSERS))
    + ")$",
    "description": "Supported: " + ", ".join(sorted(PARSERS)) + ".",
}


_SIZE_KEYWORDS = {
    "string": ("minLength", "maxLength"),
    "array": ("minItems", "maxItems"),
    "object": ("minProperties", "maxProperties"),
}


def bounded(model: type[BaseModel], field: str, schema: Schema) -> Schema:
    """``schema`` with the length and range bounds ``model`` enforces on ``field``, so the
    document follows the code: a bound changed there is a bound changed here."""
    bounds = dict(schema)
    smallest, largest = _SIZE_KEYWORDS.get(schema.get("type", ""), ("", ""))
    for rule in model.model_fields[field].metadata:
        if isinstance(rule, annotated_types.MinLen) and smallest:
            bounds[smallest] = rule.min_length
        elif isinstance(rule, annotated_types.MaxLen) and largest:
            bounds[largest] = rule.max_length
        elif isinstance(rule, annotated_types.Ge):
            bounds["minimum"] = rule.ge
        elif isinstance(rule, annotated_types.Le):
            bounds["maximum"] = rule.le
    return bounds


def chat(field: str, schema: Schema) -> Schema:
    return bounded(wire.ChatCompletionRequest, field, schema)


def _number(field: str) -> Schema:
    return nullable(chat(field, {"type": "number"}))


def _part(kind: str, field: str, value: Schema) -> Schema:
    return obj(("type", field), type={"type": "string", "enum": [kind]}, **{field: value})


def _message(
    role: str, content: Schema | None, required: tuple[str, ...], **extra: Schema
) -> Schema:
    fields: dict[str, Schema] = {"role": {"type": "string", "enum": [role]}, **extra}
    if content is not None:
        fields["content"] = content
    return obj(("role", *required), **fields)


def _content(part: Schema) -> Schema:
    return {"oneOf": [STRING, {"type": "array", "minItems": 1, "items": part}]}


FUNCTION_CALL = obj(("name", "arguments"), name=SHORT, arguments=STRING)

CHAT_SCHEMAS: dict[str, Schema] = {
    "TextPart": _part("text", "text", STRING),
    "RefusalPart": _part("refusal", "refusal", STRING),
    "ImagePart": _part(
        "image_url",
        "image_url",
        obj(("url",), url=STRING, detail={"type": "string", "enum": ["auto", "low", "high"]}),
    ),
    "AudioPart": _part(
        "input_audio",
        "input_audio",
        obj(("data", "format"), data=STRING, format={"type": "string", "enum": ["wav", "mp3"]}),
    ),
    "FilePart": _part("file", "file", obj(file_data=STRING, file_id=STRING, filename=STRING)),
    "ToolCall": obj(
        ("id", "type", "function"),
        id=SHORT,
        type={"type": "string", "enum": ["function"]},
        function=FUNCTION_CALL,
    ),
    "SystemMessage": _message("system", _content(ref("TextPart")), ("content",), name=SHORT),
    "DeveloperMessage": _message("developer", _content(ref("TextPart")), ("content",), name=SHORT),
    "UserMessage": _message(
        "user",
        _content(
            {
                "oneOf": [
                    ref("TextPart"),
                    ref("ImagePart"),
                    ref("AudioPart"),
                    ref("FilePart"),
                ]
            }
        ),
        ("content",),
        name=SHORT,
    ),
    "AssistantMessage": _message(
        "assistant",
        nullable(_content({"oneOf": [ref("TextPart"), ref("RefusalPart")]})),
        (),
        name=SHORT,
        refusal=nullable(STRING),
        tool_calls={"type": "array", "maxItems": wire.MAX_TOOLS, "items": ref("ToolCall")},
        function_call=nullable(FUNCTION_CALL),
    ),
    "ToolMessage": _message(
        "tool", _content(ref("TextPart")), ("content", "tool_call_id"), tool_call_id=SHORT
    ),
    "FunctionMessage": _message("function", nullable(STRING), ("content", "name"), name=SHORT),
    "ChatMessage": {
        "oneOf": [
            ref(name)
            for name in (
                "DeveloperMessage",
                "SystemMessage",
                "UserMessage",
                "AssistantMessage",
                "ToolMessage",
                "FunctionMessage",
            )
        ]
    },
    "Tool": obj(
        ("type", "function"),
        type={"type": "string", "enum": ["function"]},
        function=obj(
            ("name",),
            name={"type": "string", "minLength": 1, "maxLength": 64},
            description=STRING,
            parameters=JSON_OBJECT,
            strict=nullable(BOOLEAN),
        ),
    ),
    "ResponseFormat": {
        "oneOf": [
            obj(("type",), type={"type": "string", "enum": ["text"]}),
            obj(("type",), type={"type": "string", "enum": ["json_object"]}),
            obj(
                ("type", "json_schema"),
                type={"type": "string", "enum": ["json_schema"]},
                json_schema=obj(
                    ("name",),
                    name={"type": "string", "minLength": 1, "maxLength": 64},
                    description=STRING,
                    schema=JSON_OBJECT,
                    strict=nullable(BOOLEAN),
                ),
            ),
        ]
    },
}

_STOP: Schema = {"type": "string", "minLength": 1, "maxLength": wire.MAX_STOP_CHARS}

CHAT_REQUEST: Schema = {
    "type": "object",
    "description": "OpenAI's CreateChatCompletionRequest, the parameters Enclave supports. "
    "Other fields are ignored: they never reach an upstream.",
    "required": ["messages", "model"],
    "properties": {
        "messages": chat("messages", {"type": "array", "items": ref("ChatMessage")}),
        "model": chat("model", {"type": "string"}),
        "frequency_penalty": _number("frequency_penalty"),
        "logit_bias": nullable(
            chat(
                "logit_bias",
                {
                    "type": "object",
                    "additionalProperties": {"type": "integer", "minimum": -100, "maximum": 100},
                },
            )
        ),
        "logprobs": nullable(BOOLEAN),
        "top_logprobs": nullable(chat("top_logprobs", INTEGER)),
        "max_completion_tokens": nullable(chat("max_completion_tokens", INTEGER)),
        "max_tokens": nullable(chat("max_tokens", INTEGER)),
        "metadata": nullable(
            {
                "type": "object",
                "maxProperties": wire.MAX_METADATA,
                "propertyNames": {"maxLength": 64},
                "additionalProperties": {"type": "string", "maxLength": 512},
            }
        ),
        "n": nullable(chat("n", INTEGER)),
        "parallel_tool_calls": nullable(BOOLEAN),
        "presence_penalty": _number("presence_penalty"),
        "reasoning_effort": nullable(
            {"type": "string", "enum": ["none", "minimal", "low", "medium", "high"]}
        ),
        "response_format": nullable(ref("ResponseFormat")),
        "seed": nullable(INTEGER),
        "stop": nullable(
            {"oneOf": [_STOP, {"type": "array", "maxItems": wire.MAX_STOP, "items": _STOP}]}
        ),
        "stream": nullable(BOOLEAN),
        "stream_options": nullable(obj(include_usage=nullable(BOOLEAN))),
        "temperature": _number("temperature"),
        "tool_choice": nullable(
            {
                "oneOf": [
                    {"type": "string", "enum": ["none", "auto", "required"]},
                    obj(
                        ("type", "function"),
                        type={"type": "string", "enum": ["function"]},
                        function=obj(("name",), name={"type": "string", "maxLength": 64}),
                    ),
                ]
            }
        ),
        "tools": nullable(chat("tools", {"type": "array", "items": ref("Tool")})),
        "top_p": _number("top_p"),
        "user": nullable(chat("user", STRING)),
        "enclave": nullable(
            obj(
                collections={
                    "type": "array",
                    "maxItems": wire.MAX_COLLECTIONS,
                    "items": COLLECTION,
                }
            )
        ),
    },
}

_FINISH = {
    "type": "string",
    "enum": ["stop", "length", "tool_calls", "content_filter", "function_call"],
}
_USAGE = obj(
    ("prompt_tokens", "completion_tokens", "total_tokens"),
    prompt_tokens=INTEGER,
    completion_tokens=INTEGER,
    total_tokens=INTEGER,
)
_ANSWER_TOOL_CALLS: Schema = {"type": "array", "items": ref("ToolCall")}

ANSWER_SCHEMAS: dict[str, Schema] = {
    "Usage": _USAGE,
    "ChatCompletion": obj(
        ("id", "object", "created", "model", "choices"),
        id=STRING,
        object={"type": "string", "enum": ["chat.completion"]},
        created=INTEGER,
        model=STRING,
        choices={
            "type": "array",
            "items": obj(
                ("index", "message", "finish_reason"),
                index=INTEGER,
                finish_reason=_FINISH,
                logprobs=nullable(JSON_OBJECT),
                message=obj(
                    ("role", "content"),
                    role={"type": "string", "enum": ["assistant"]},
                    content=nullable(STRING),
                    refusal=nullable(STRING),
                    tool_calls=_ANSWER_TOOL_CALLS,
                ),
            ),
        },
        usage=nullable(ref("Usage")),
    ),
    "ChatCompletionChunk": obj(
        ("id", "object", "created", "model", "choices"),
        id=STRING,
        object={"type": "string", "enum": ["chat.completion.chunk"]},
        created=INTEGER,
        model=STRING,
        choices={
            "type": "array",
            "items": obj(
                ("index", "delta"),
                index=INTEGER,
                finish_reason=nullable(_FINISH),
                logprobs=nullable(JSON_OBJECT),
                delta=obj(
                    role={"type": "string", "enum": ["assistant"]},
                    content=nullable(STRING),
                    refusal=nullable(STRING),
                    tool_calls={"type": "array"},
                ),
            ),
        },
        usage=nullable(ref("Usage")),
    ),
    # one server-sent event of a chat stream: a chunk, an in-band error, or the end
    "ChatStreamEvent": obj(
        ("data",),
        data={
            "anyOf": [
                {"type": "string", "enum": ["[DONE]"]},
                {
                    "type": "string",
                    "contentMediaType": "application/json",
                    "contentSchema": {"oneOf": [ref("ChatCompletionChunk"), ref("ErrorResponse")]},
                },
            ]
        },
    ),
    "ModelList": obj(
        ("object", "data"),
        object={"type": "string", "enum": ["list"]},
        data={
            "type": "array",
            "items": obj(
                ("id", "object", "created", "owned_by"),
                id=STRING,
                object={"type": "string", "enum": ["model"]},
                created=INTEGER,
                owned_by=STRING,
            ),
        },
    ),
}

ERROR_SCHEMAS: dict[str, Schema] = {
    "Error": obj(
        ("message", "type", "param", "code"),
        message=STRING,
        type=STRING,
        param=nullable(STRING),
        code=nullable(STRING),
    ),
    "ErrorResponse": obj(("error",), error=ref("Error")),
}

_LEVEL = {"type": "string"}
_KEY_RIGHTS: dict[str, Schema] = {
    "tenant": bounded(KeySpec, "tenant", {"type": "string", "pattern": "^[A-Za-z0-9_.-]+$"}),
    "role": {"type": "string", "enum": ["admin", "member", "auditor"]},
    "name": nullable(bounded(KeySpec, "name", STRING)),
    "models": nullable(bounded(KeySpec, "models", {"type": "array", "items": STRING})),
    "collections": nullable(bounded(KeySpec, "collections", {"type": "array", "items": STRING})),
    **{
        limit: nullable(bounded(KeySpec, limit, INTEGER))
        for limit in ("rpm", "tpm", "daily_tokens")
    },
}
_TIME = {"type": "string", "format": "date-time"}
_KEY_RECORD: dict[str, Schema] = {
    "id": STRING,
    **_KEY_RIGHTS,
    "created_at": _TIME,
    "expires_at": nullable(_TIME),
    "revoked_at": nullable(_TIME),
    "display": STRING,
}
_RECORD_REQUIRED = ("id", "tenant", "role", "created_at", "display")

SERVICE_SCHEMAS: dict[str, Schema] = {
    "FilterRequest": obj(
        ("text",),
        text=STRING,
        direction={"type": "string", "enum": ["input", "output"], "default": "input"},
    ),
    "FilterResult": obj(
        ("verdict", "masked_text", "level", "detections"),
        verdict=STRING,
        masked_text=STRING,
        level=_LEVEL,
        detections={"type": "array", "items": JSON_OBJECT},
        injection_score={"type": "number"},
        reasons={"type": "array", "items": STRING},
    ),
    "RetrieveRequest": {
        **obj(
            ("query", "collections"),
            query=bounded(RetrieveRequest, "query", STRING),
            collections=bounded(
                RetrieveRequest, "collections", {"type": "array", "items": COLLECTION}
            ),
            top_k=bounded(RetrieveRequest, "top_k", {**INTEGER, "default": 5}),
        ),
        "additionalProperties": False,
    },
    "RetrieveResponse": obj(
        ("object", "data"),
        object={"type": "string", "enum": ["list"]},
        data={
            "type": "array",
            "items": obj(
                ("text", "source", "title", "location", "score", "collection", "chunk_id"),
                text=STRING,
                source=STRING,
                title=STRING,
                location=STRING,
                score={"type": "number"},
                collection=STRING,
                chunk_id=STRING,
            ),
        },
    ),
    "EmbeddingRequest": obj(
        ("input", "model"),
        input={
            "description": "Text to embed; token arrays are not supported.",
            "oneOf": [
                {"type": "string", "minLength": 1},
                {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": MAX_INPUTS,
                    "items": {"type": "string", "minLength": 1},
                },
            ],
        },
        model=bounded(EmbeddingRequest, "model", STRING),
        encoding_format={"type": "string", "enum": ["float", "base64"], "default": "float"},
        dimensions=nullable(
            bounded(
                EmbeddingRequest,
                "dimensions",
                {**INTEGER, "description": "Only the embedder's own dimension is accepted."},
            )
        ),
        user=nullable(bounded(EmbeddingRequest, "user", STRING)),
        input_type={"type": "string", "enum": ["query", "passage"], "default": "query"},
    ),
    "EmbeddingResponse": obj(
        ("object", "data", "model", "usage"),
        object={"type": "string", "enum": ["list"]},
        data={
            "type": "array",
            "items": obj(
                ("object", "index", "embedding"),
                object={"type": "string", "enum": ["embedding"]},
                index=INTEGER,
                embedding={"oneOf": [{"type": "array", "items": {"type": "number"}}, STRING]},
            ),
        },
        model=STRING,
        usage=obj(("prompt_tokens", "total_tokens"), prompt_tokens=INTEGER, total_tokens=INTEGER),
    ),
    "UploadSummary": obj(
        ("files", "chunks", "added", "replaced", "unchanged", "failed"),
        files=INTEGER,
        chunks=INTEGER,
        added=INTEGER,
        replaced=INTEGER,
        unchanged=INTEGER,
        failed={
            "type": "array",
            "items": obj(("source", "reason"), source=STRING, reason=STRING),
        },
    ),
    "KeySpec": obj(
        ("tenant",),
        **_KEY_RIGHTS,
        expires=nullable(
            {
                "type": "string",
                "pattern": "^[1-9][0-9]{0,3}[dhm]$",
                "description": "A lifetime such as 30d, 12h or 90m.",
            }
        ),
    ),
    "KeyRecord": obj(_RECORD_REQUIRED, **_KEY_RECORD),
    "NewKey": obj(
        ("key", *_RECORD_REQUIRED),
        key={"type": "string", "description": "The key itself: shown this once."},
        **_KEY_RECORD,
    ),
    "KeyList": obj(
        ("object", "data"),
        object={"type": "string", "enum": ["list"]},
        data={"type": "array", "items": ref("KeyRecord")},
    ),
    "Health": obj(
        ("status",),
        status={"type": "string", "enum": ["ok"]},
        models={"type": "array", "items": STRING},
        deployments=JSON_OBJECT,
        audit=JSON_OBJECT,
    ),
}

ERRORS: dict[int, str] = {
    400: "The request is malformed or refused by policy (invalid_request_error).",
    401: "No key, or not a valid one.",
    403: "The key may not do this.",
    404: "No such model, key or collection.",
    409: "The key is revoked: it cannot be rotated.",
    413: "The body is larger than this route accepts.",
    422: "The model server refused the request as sent (relayed).",
    429: "A rate limit or budget is exhausted; Retry-After says when to try again.",
    503: "No deployment, store or audit log can serve the request now; try again later.",
}


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


_AUTHED = (401, 403, 503)
_PUBLIC: list[Schema] = []  # no key needed
_KEY_OPTIONAL: list[Schema] = [{}, {"bearer": []}]
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

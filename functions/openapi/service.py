"""Schemas of Enclave's own routes: keys, the filter, retrieval, embeddings, uploads,
health; and what each error status means."""

from __future__ import annotations

from functions.feedback import REQUEST_ID, FeedbackRequest
from functions.keys import KeySpec
from functions.knowledge.api import MAX_INPUTS, EmbeddingRequest, RetrieveRequest
from functions.openapi.schema import (
    BOOLEAN,
    COLLECTION,
    INTEGER,
    JSON_OBJECT,
    STRING,
    Schema,
    bounded,
    nullable,
    obj,
    ref,
)

_LEVEL = {"type": "string"}
_KEY_RIGHTS: dict[str, Schema] = {
    "tenant": bounded(KeySpec, "tenant", {"type": "string", "pattern": "^[A-Za-z0-9_.-]+$"}),
    "role": {"type": "string", "enum": ["admin", "member", "auditor"]},
    "name": nullable(bounded(KeySpec, "name", STRING)),
    "models": nullable(bounded(KeySpec, "models", {"type": "array", "items": STRING})),
    "collections": nullable(bounded(KeySpec, "collections", {"type": "array", "items": STRING})),
    **{
        limit: nullable(bounded(KeySpec, limit, INTEGER))
        for limit in ("rpm", "tpm", "daily_tokens", "user_rpm", "user_tpm", "user_daily_tokens")
    },
    "trust_user_headers": {
        **BOOLEAN,
        "default": False,
        "description": "A frontend key: it may name its end users (X-OpenWebUI-User-Id, "
        "x-enclave-user, the body's user), each limited by the user_* limits.",
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
    "FeedbackRequest": {
        **obj(
            ("request_id", "rating"),
            request_id={
                **bounded(FeedbackRequest, "request_id", STRING),
                "pattern": REQUEST_ID,
                "description": "The rated answer's x-request-id.",
            },
            rating={"type": "integer", "enum": [1, -1]},
            comment=nullable(bounded(FeedbackRequest, "comment", STRING)),
        ),
        "additionalProperties": False,
    },
    "Feedback": obj(
        ("object", "request_id", "rating"),
        object={"type": "string", "enum": ["feedback"]},
        request_id=STRING,
        rating={"type": "integer", "enum": [1, -1]},
        comment=nullable({**STRING, "description": "As stored: masked by the input filter."}),
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
    "CacheStats": obj(
        ("backend", "entries", "requests"),
        backend={"type": "string", "enum": ["memory", "redis", "off"]},
        tenant=nullable(STRING),
        entries={"type": "integer", "minimum": 0},
        bytes=nullable({"type": "integer", "minimum": 0}),
        requests={
            "type": "object",
            "description": "This gateway process's hits, misses and bypasses since it started.",
            "additionalProperties": {"type": "integer", "minimum": 0},
        },
    ),
    "CacheCleared": obj(
        ("deleted",),
        deleted={"type": "integer", "minimum": 0},
        tenant=nullable(STRING),
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
    404: "No such model, key, collection, or answer to rate.",
    409: "The key is revoked: it cannot be rotated.",
    413: "The body is larger than this route accepts.",
    422: "The model server refused the request as sent (relayed).",
    429: "A rate limit or budget is exhausted, or the address failed to log in too often; "
    "Retry-After says when to try again.",
    503: "No deployment, store or audit log can serve the request now; try again later.",
}

"""Validate what Enclave emits against the official OpenAI OpenAPI description.

The spec lives beside the repository in ``shared/openai-openapi/openapi.yaml``
(CI clones the repo with ``shared/`` next to it). It is OpenAPI 3.1, whose
schemas are JSON Schema 2020-12, except that 111 fields still carry the 3.0-style
``nullable: true``; a plain validator would reject a real chunk with
``"finish_reason": null``, so those are rewritten into JSON-Schema null types
once, when the spec is loaded.

    validate("ErrorResponse", body)      # raises jsonschema.ValidationError
    chunks = validate_stream(lines)      # every data: payload, then [DONE] last
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SPEC_PATH = Path(__file__).resolve().parents[2] / "shared" / "openai-openapi" / "openapi.yaml"
_BASE = "urn:openai-openapi"
_COMPOSITE = ("$ref", "allOf", "anyOf", "oneOf")
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` (already without ``nullable``) that also accepts ``null``."""
    if any(key in schema for key in _COMPOSITE):
        return {"anyOf": [schema, {"type": "null"}]}
    if "type" not in schema:
        return schema  # no type and no composition: it accepts null already
    types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    result = {**schema, "type": types if "null" in types else [*types, "null"]}
    if "enum" in result and None not in result["enum"]:
        result["enum"] = [*result["enum"], None]  # a nullable enum must list null too
    return result


def translate_nullable(node: Any) -> Any:
    """A copy of ``node`` with every ``nullable: true`` turned into a JSON-Schema null type."""
    if isinstance(node, list):
        return [translate_nullable(item) for item in node]
    if not isinstance(node, dict):
        return node
    nullable = node.get("nullable") is True
    schema = {k: translate_nullable(v) for k, v in node.items() if k != "nullable"}
    return _nullable(schema) if nullable else schema


def _components_text(text: str) -> str:
    """Just the top-level ``components:`` block: two thirds of the file, no paths to parse.

    Every ``$ref`` in the spec points into ``#/components``, and the file uses no
    YAML anchors, so the block parses on its own; if it cannot be found, all of it.
    """
    start = re.search(r"^components:[ \t]*$", text, re.MULTILINE)
    if start is None:
        return text
    end = re.compile(r"^\S", re.MULTILINE).search(text, start.end() + 1)
    return text[start.start() : end.start() if end else None]


@functools.cache
def spec() -> dict[str, Any]:
    """The spec's ``components``, loaded once, with ``nullable`` translated."""
    document = yaml.load(_components_text(SPEC_PATH.read_text()), Loader=_Loader)
    translated: dict[str, Any] = translate_nullable(document)
    return translated


@functools.cache
def _registry() -> Registry[Any]:
    resource = Resource.from_contents(spec(), default_specification=DRAFT202012)
    return Registry().with_resource(_BASE, resource)


@functools.cache
def validator(schema_name: str) -> Draft202012Validator:
    """A validator for ``#/components/schemas/<schema_name>``, built once per name."""
    if schema_name not in spec()["components"]["schemas"]:
        raise KeyError(f"no schema {schema_name!r} in {SPEC_PATH}")
    schema = {"$ref": f"{_BASE}#/components/schemas/{schema_name}"}
    return Draft202012Validator(schema, registry=_registry())


def validate(schema_name: str, instance: Any) -> None:
    """Raise :class:`jsonschema.ValidationError` unless ``instance`` matches the schema."""
    error = jsonschema.exceptions.best_match(validator(schema_name).iter_errors(instance))
    if error is not None:
        raise error


def _payloads(lines: list[str]) -> list[str]:
    payloads = []
    for line in lines:
        if line.startswith("data:"):
            payloads.append(line[5:].strip())
        elif line and not line.startswith(":"):
            raise jsonschema.ValidationError(f"not a data: line in an OpenAI stream: {line!r}")
    return payloads


def validate_stream(lines: list[str]) -> list[dict[str, Any]]:
    """Check the SSE lines of a chat stream and return its parsed JSON payloads.

    Every ``data:`` payload but the last must be a ``CreateChatCompletionStreamResponse``
    (or an ``ErrorResponse``, for the in-band error after the first byte), and
    the last must be ``[DONE]``.
    """
    payloads = _payloads(lines)
    if not payloads or payloads[-1] != "[DONE]":
        raise jsonschema.ValidationError("the stream does not end with data: [DONE]")
    chunks = []
    for payload in payloads[:-1]:
        if payload == "[DONE]":
            raise jsonschema.ValidationError("data: [DONE] is not the last event")
        chunk = orjson.loads(payload)
        is_error = isinstance(chunk, dict) and "error" in chunk
        validate("ErrorResponse" if is_error else "CreateChatCompletionStreamResponse", chunk)
        chunks.append(chunk)
    return chunks

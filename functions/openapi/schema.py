"""Building blocks of the gateway's OpenAPI document: references, objects, bounds.

A bound is read from the pydantic field that enforces it (:func:`bounded`), so the
document changes when the code does.
"""

from __future__ import annotations

from typing import Any

import annotated_types
from pydantic import BaseModel

from functions import wire
from functions.knowledge.names import MAX_NAME, NAME
from functions.knowledge.parsers import PARSERS

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

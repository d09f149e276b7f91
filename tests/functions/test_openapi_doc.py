"""The gateway's OpenAPI document: valid OpenAPI 3.1, exactly the app's routes, true to the spec.

Validity is checked with jsonschema against the OpenAPI 3.1 meta-schema (the copy
schemathesis ships; openapi-spec-validator is not a dependency), every component
schema against JSON Schema 2020-12, and every ``$ref`` for a target.
"""

from __future__ import annotations

import asyncio
import copy
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import orjson
import pytest
from jsonschema import Draft202012Validator
from pydantic import ValidationError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from schemathesis.specs.openapi.definitions import OPENAPI_31
from starlette.applications import Starlette
from starlette.routing import Route

from functions.gateway import create_app
from functions.openapi import document, openapi_route
from functions.settings import Deployment, GatewaySettings, Settings
from functions.wire import ChatCompletionRequest
from tests.openapi import spec, validate
from tests.test_openapi_helper import CHUNK, COMPLETION

METHODS = {"get", "put", "post", "delete", "patch"}
_BASE = "urn:enclave-openapi"


def _refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        own = {node["$ref"]} if isinstance(node.get("$ref"), str) else set()
        return own.union(*(_refs(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_refs(v) for v in node))
    return set()


def ours(schema_name: str) -> Draft202012Validator:
    """A validator for one of the document's component schemas."""
    resource = Resource.from_contents(document(), default_specification=DRAFT202012)
    registry: Registry[Any] = Registry().with_resource(_BASE, resource)
    return Draft202012Validator(
        {"$ref": f"{_BASE}#/components/schemas/{schema_name}"}, registry=registry
    )


def _spec_properties(schema_name: str) -> set[str]:
    """The property names of a spec schema, through its ``allOf`` and ``$ref`` parts."""
    schema = spec()["components"]["schemas"][schema_name]
    names = set(schema.get("properties", {}))
    for part in schema.get("allOf", []):
        if "$ref" in part:
            names |= _spec_properties(part["$ref"].rsplit("/", 1)[-1])
        names |= set(part.get("properties", {}))
    return names


def test_the_document_is_openapi_3_1() -> None:
    Draft202012Validator(OPENAPI_31).validate(document())


def test_a_broken_document_fails_the_same_check() -> None:
    broken = copy.deepcopy(document())
    del broken["paths"]["/v1/admin/keys/{key_id}/revoke"]["post"]["parameters"][0]["in"]
    with pytest.raises(jsonschema.ValidationError):
        Draft202012Validator(OPENAPI_31).validate(broken)


def test_every_component_is_json_schema_2020_12() -> None:
    for schema in document()["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)


def test_every_ref_resolves() -> None:
    doc = document()
    refs = _refs(doc)
    assert refs
    for target in refs:
        node: Any = doc
        for part in target.removeprefix("#/").split("/"):
            node = node[part]  # KeyError names the dangling ref


def test_every_operation_says_how_it_fails_in_openais_error_shape() -> None:
    for path, item in document()["paths"].items():
        for method, operation in item.items():
            errors = {s: r for s, r in operation["responses"].items() if s.startswith(("4", "5"))}
            if path == "/openapi.json":
                assert not errors and operation["security"] == []
                continue
            assert {"401", "503"} <= set(errors), f"{method} {path}"
            assert all(r == {"$ref": f"#/components/responses/{s}"} for s, r in errors.items())
    for response in document()["components"]["responses"].values():
        assert response["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/ErrorResponse"
        }


def _served(app: Starlette) -> set[tuple[str, str]]:
    served = set()
    for route in [*app.routes, openapi_route()]:
        assert isinstance(route, Route)
        for method in route.methods or ():
            if method != "HEAD":  # starlette answers HEAD wherever GET is served
                served.add((route.path, method.lower()))
    return served


def test_the_document_lists_exactly_the_routes_the_gateway_serves(tmp_path: Path) -> None:
    deployments = [Deployment(name="d1", model="m1", api_base="http://127.0.0.1:9/v1")]
    settings = Settings(
        data_dir=tmp_path,
        gateway=GatewaySettings(api_keys=["sk-" + "t" * 24], deployments=deployments),
    )
    documented = {
        (path, method)
        for path, item in document()["paths"].items()
        for method in item
        if method in METHODS
    }
    assert documented == _served(create_app(settings))


def test_the_chat_request_documents_exactly_the_modelled_fields() -> None:
    documented = set(document()["components"]["schemas"]["ChatCompletionRequest"]["properties"])
    modelled = {f.alias or name for name, f in ChatCompletionRequest.model_fields.items()}
    assert documented == modelled


def test_the_chat_request_is_a_subset_of_openais() -> None:
    documented = set(document()["components"]["schemas"]["ChatCompletionRequest"]["properties"])
    assert documented - _spec_properties("CreateChatCompletionRequest") == {"enclave"}


def test_what_the_spec_accepts_we_document_and_what_we_document_the_spec_accepts() -> None:
    validate("CreateChatCompletionResponse", COMPLETION)
    ours("ChatCompletion").validate(COMPLETION)
    validate("CreateChatCompletionStreamResponse", CHUNK)
    ours("ChatCompletionChunk").validate(CHUNK)
    error = {
        "error": {"message": "no", "type": "invalid_request_error", "param": None, "code": None}
    }
    validate("ErrorResponse", error)
    ours("ErrorResponse").validate(error)


@pytest.mark.parametrize(
    ("schema_name", "instance"),
    [
        ("ErrorResponse", {"error": {"message": "no type", "param": None, "code": None}}),
        ("ErrorResponse", {"detail": "Not Found"}),
        ("ChatCompletion", {**COMPLETION, "object": "chat.completion.chunk"}),
        ("ChatCompletionRequest", {"model": "m", "messages": []}),
        ("ChatCompletionRequest", {"model": "m", "messages": [{"role": "user"}]}),
        ("ChatCompletionRequest", {"model": "m", "messages": [{"role": "robot", "content": "x"}]}),
        (
            "ChatCompletionRequest",
            {"model": "m", "messages": [{"role": "user", "content": "x"}], "n": "1"},
        ),
    ],
)
def test_our_schemas_refuse_what_they_should(schema_name: str, instance: Any) -> None:
    with pytest.raises(jsonschema.ValidationError):
        ours(schema_name).validate(instance)


def test_a_whole_stream_event_validates_its_json_payload() -> None:
    event = ours("ChatStreamEvent")
    event.validate({"data": "[DONE]"})
    event.validate({"data": orjson.dumps(CHUNK).decode()})
    schema = document()["components"]["schemas"]["ChatStreamEvent"]["properties"]["data"]
    assert schema["anyOf"][1]["contentSchema"]  # each data: payload is a chunk or an error


def test_openapi_json_is_served_without_a_key() -> None:
    async def fetch() -> httpx.Response:
        transport = httpx.ASGITransport(app=Starlette(routes=[openapi_route()]))
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            return await client.get("/openapi.json")

    response = asyncio.run(fetch())
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == document()


HI = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize(
    "body",
    [
        {"model": "m", "messages": HI},
        {"model": "", "messages": HI},
        {"model": "m" * 256, "messages": HI},
        {"model": "m" * 257, "messages": HI},
        {"model": "m", "messages": []},
        {"model": "m", "messages": HI, "n": 0},
        {"model": "m", "messages": HI, "n": 16},
        {"model": "m", "messages": HI, "n": 17},
        {"model": "m", "messages": HI, "n": "1"},
        {"model": "m", "messages": HI, "max_tokens": "100"},
        {"model": "m", "messages": HI, "stream": "yes"},
        {"model": "m", "messages": HI, "temperature": 2},
        {"model": "m", "messages": HI, "temperature": 2.5},
        {"model": "m", "messages": HI, "top_p": -0.1},
        {"model": "m", "messages": HI, "top_logprobs": 21},
        {"model": "m", "messages": HI, "stop": ["a", "b", "c", "d"]},
        {"model": "m", "messages": HI, "stop": ["a", "b", "c", "d", "e"]},
        {"model": "m", "messages": HI, "stop": ""},
        {"model": "m", "messages": HI, "tool_choice": "sometimes"},
        {"model": "m", "messages": HI, "response_format": {"type": "xml"}},
        {"model": "m", "messages": HI, "metadata": {f"k{i}": "v" for i in range(17)}},
        {"model": "m", "messages": HI, "user": "u" * 513},
        {"model": "m", "messages": HI, "base_url": "http://attacker/v1"},  # ignored, both
        {"model": "m", "messages": [{"role": "robot", "content": "hi"}]},
    ],
)
def test_the_document_and_the_parser_agree_on_a_chat_request(body: dict[str, Any]) -> None:
    try:
        ChatCompletionRequest.model_validate(body)
        parsed = True
    except ValidationError:
        parsed = False
    assert ours("ChatCompletionRequest").is_valid(body) == parsed

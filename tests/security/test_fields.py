"""I2: nothing raw leaves for an external deployment above its clearance.

Reproduction 2 of the trust-boundary issue: ID and phone numbers in tool-call
arguments, tool definitions (descriptions, defaults, enums), ``name``,
``response_format`` schemas and ``metadata`` reached an external deployment
unmasked and did not raise the request's level; image, audio and file parts were
not looked at.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Server, gateway_env, start
from tests.security.conftest import AUTH, Recorder, rec

PHONE, ID_CARD, EMAIL = "13812345678", "11010519491231002X", "zhang.wei@example.cn"
IMAGE = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}


def everywhere(value: str) -> dict[str, Any]:
    """A chat request carrying ``value`` in every field that can carry text but content."""
    call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "crm", "arguments": json.dumps({"who": {"phone": value}})},
    }
    parameters = {
        "type": "object",
        "description": f"the customer, e.g. {value}",
        "properties": {
            "phone": {"type": "string", "default": value, "enum": [value, "none"]},
        },
    }
    return {
        "messages": [
            {"role": "user", "content": "look the customer up", "name": value},
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "call_1", "content": f"found {value}"},
            {"role": "user", "content": "ECHO thanks"},
        ],
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "crm",
                    "description": f"Looks up {value} in the CRM",
                    "parameters": parameters,
                },
            }
        ],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "r", "schema": {"type": "object", "description": value}},
        },
        "user": f"user-{value}",
        "metadata": {"customer": value},
    }


def post(gateway: Server, body: dict[str, Any], **headers: str) -> httpx.Response:
    return httpx.post(
        f"{gateway.url}/v1/chat/completions",
        json=body,
        headers={**AUTH, **headers},
        timeout=30,
    )


def test_every_text_field_is_masked_before_it_leaves(
    rec_gateway: Server, rec_upstream: Recorder
) -> None:
    rec_upstream.clear()
    answer = post(rec_gateway, {"model": "external", **everywhere(PHONE)})
    assert answer.status_code == 200, answer.text
    (received,) = rec_upstream.requests()
    assert PHONE not in received["body"]
    assert "<PHONE_1>" in received["body"]
    sent = json.loads(received["body"])
    arguments = json.loads(sent["messages"][1]["tool_calls"][0]["function"]["arguments"])
    assert arguments == {"who": {"phone": "<PHONE_1>"}}  # still JSON, masked value by value
    assert sent["tools"][0]["function"]["parameters"]["properties"]["phone"]["enum"][0] == (
        "<PHONE_1>"
    )
    assert sent["metadata"] == {"customer": "<PHONE_1>"}


@pytest.mark.parametrize("stream", [False, True])
def test_confidential_data_in_any_field_keeps_the_request_home(
    stream: bool, rec_gateway: Server, rec_upstream: Recorder
) -> None:
    """An ID number is confidential wherever it is: the external deployment is refused."""
    body = everywhere(ID_CARD)
    for field in ("tools", "response_format", "user", "metadata"):
        rec_upstream.clear()
        request = {
            "model": "external",
            "messages": [{"role": "user", "content": "ECHO hi"}],
            field: body[field],
            "stream": stream,
        }
        answer = post(rec_gateway, request)
        assert answer.status_code == 503, (field, answer.text)
        assert answer.json()["error"]["code"] == "no_compliant_deployment"
        assert rec_upstream.requests() == []


def test_unreadable_content_is_confidential_by_default(
    rec_gateway: Server, rec_upstream: Recorder
) -> None:
    rec_upstream.clear()
    parts = [{"type": "text", "text": "ECHO what is this?"}, IMAGE]
    request = {"model": "external", "messages": [{"role": "user", "content": parts}]}
    answer = post(rec_gateway, request)
    assert answer.status_code == 503
    assert answer.json()["error"]["code"] == "no_compliant_deployment"
    assert rec_upstream.requests() == []
    on_prem = post(rec_gateway, {**request, "model": "relay"})
    assert on_prem.status_code == 200, on_prem.text
    assert rec_upstream.last()["messages"][0]["content"][1] == IMAGE


@pytest.fixture(scope="module")
def unfiltered(rec_upstream: Recorder, log_dir: Path) -> Iterator[Server]:
    """Filtering switched off; a tenant override that blocks unreadable content is absent."""
    env = gateway_env(
        [rec("external", "external", rec_upstream.url, location="external")],
        ENCLAVE_FILTERING_ENABLED="false",
    )
    server = start("gateway", env, log_dir)
    yield server
    server.stop()


def test_filtering_off_still_classifies_and_routes(
    unfiltered: Server, rec_upstream: Recorder
) -> None:
    rec_upstream.clear()
    plain = {"model": "external", "messages": [{"role": "user", "content": "ECHO hi"}]}
    assert post(unfiltered, plain).status_code == 200
    secret = post(unfiltered, plain, **{"x-enclave-classification": "confidential"})
    assert secret.status_code == 503
    image = {"role": "user", "content": [{"type": "text", "text": "ECHO"}, IMAGE]}
    assert post(unfiltered, {**plain, "messages": [image]}).status_code == 503
    assert len(rec_upstream.requests()) == 1


@pytest.fixture(scope="module")
def blocking(rec_upstream: Recorder, log_dir: Path) -> Iterator[Server]:
    env = gateway_env(
        [rec("relay", "relay", rec_upstream.url)],
        ENCLAVE_FILTERING_UNREADABLE_CONTENT="block",
    )
    server = start("gateway", env, log_dir)
    yield server
    server.stop()


def test_a_policy_may_refuse_unreadable_content(blocking: Server, rec_upstream: Recorder) -> None:
    rec_upstream.clear()
    image = {"role": "user", "content": [{"type": "text", "text": "ECHO"}, IMAGE]}
    answer = post(blocking, {"model": "relay", "messages": [image]})
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "content_filter"
    assert rec_upstream.requests() == []

"""I1: destination and credentials come only from Settings; no request field changes
where a request goes, which credentials it carries, or a deployment's health state.

Reproduction 1 of the trust-boundary issue: ``"base_url": "http://attacker…"`` on a
litellm deployment delivered the request, with the operator's key, to the attacker;
on the relay path such fields were forwarded as JSON; ``api_key`` put the deployment
into cooldown for every tenant.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.conftest import Server
from tests.security.conftest import AUTH, OPERATOR_KEY, Recorder

KINDS = ["relay", "litellm", "vllm"]  # our relay, litellm's openai, litellm's hosted_vllm


def hostile(attacker: Recorder) -> dict[str, Any]:
    """Every field we know that litellm or an OpenAI-compatible server acts on."""
    url = f"{attacker.url}/v1"
    return {
        "base_url": url,
        "api_base": url,
        "api_key": "sk-attacker",
        "custom_llm_provider": "openai",
        "api_version": "2099-01-01",
        "extra_headers": {"x-evil": "1"},
        "headers": {"authorization": "Bearer sk-attacker"},
        "model_list": [{"model_name": "x", "litellm_params": {"api_base": url}}],
        "mock_response": "pwned",
        "metadata": {"api_base": url},
        "litellm_params": {"api_base": url},
        "timeout": 0.001,
        "num_retries": 50,
        "fallbacks": ["external"],
        "deployment_id": "external",
        "proxy": url,
        "organization": "attacker",
    }


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("stream", [False, True])
def test_no_field_redirects_or_borrows_the_key(
    kind: str, stream: bool, rec_gateway: Server, rec_upstream: Recorder, rec_attacker: Recorder
) -> None:
    rec_upstream.clear()
    body = {"model": kind, "messages": [{"role": "user", "content": "ECHO hi"}], "stream": stream}
    answer = httpx.post(
        f"{rec_gateway.url}/v1/chat/completions",
        json={**body, **hostile(rec_attacker)},
        headers=AUTH,
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["x-enclave-deployment"] == kind
    assert rec_attacker.requests() == []
    (received,) = rec_upstream.requests()
    assert received["headers"]["authorization"] == f"Bearer {OPERATOR_KEY}"
    assert "x-evil" not in received["headers"]
    sent = set(json.loads(received["body"]))
    forbidden = set(hostile(rec_attacker)) - {"metadata"}
    assert not sent & forbidden, sent & forbidden


@pytest.mark.parametrize("kind", KINDS)
def test_hostile_fields_leave_the_deployment_healthy(
    kind: str, rec_gateway: Server, rec_attacker: Recorder
) -> None:
    """With no retries and no allowed failures, one failure would cool the deployment
    down and send the next request to its spare."""
    url = f"{rec_gateway.url}/v1/chat/completions"
    for _ in range(3):
        body = {"model": kind, "messages": [{"role": "user", "content": "ECHO hi"}]}
        httpx.post(url, json={**body, **hostile(rec_attacker)}, headers=AUTH, timeout=30)
    normal = {"model": kind, "messages": [{"role": "user", "content": "ECHO hi"}]}
    answer = httpx.post(url, json=normal, headers=AUTH, timeout=30)
    assert answer.status_code == 200
    assert answer.headers["x-enclave-deployment"] == kind


def test_only_the_allow_list_reaches_the_upstream(
    rec_gateway: Server, rec_upstream: Recorder
) -> None:
    """Supported parameters go through, typed; the extension and unknown fields stop here."""
    rec_upstream.clear()
    body = {
        "model": "relay",
        "messages": [{"role": "user", "content": "ECHO hi", "secret_field": 1}],
        "temperature": 0.2,
        "seed": 7,
        "stop": ["\n\n"],
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}],
        "tool_choice": "auto",
        "response_format": {"type": "json_object"},
        "enclave": {"collections": []},
        "unknown": {"nested": [1, 2, 3]},
    }
    answer = httpx.post(
        f"{rec_gateway.url}/v1/chat/completions", json=body, headers=AUTH, timeout=30
    )
    assert answer.status_code == 200, answer.text
    sent = rec_upstream.last()
    assert set(sent) == {
        "model",
        "messages",
        "temperature",
        "seed",
        "stop",
        "tools",
        "tool_choice",
        "response_format",
    }
    assert sent["model"] == "rec"
    assert sent["messages"] == [{"role": "user", "content": "ECHO hi"}]


def test_upstream_errors_carry_no_credential(rec_gateway: Server) -> None:
    """I9: a provider's error that quotes the key is passed on without it, in every form."""
    url = f"{rec_gateway.url}/v1/chat/completions"
    for word, status in (("BADREQ", 400), ("KEYERR", 503)):
        body = {"model": "relay-spare", "messages": [{"role": "user", "content": word}]}
        answer = httpx.post(url, json=body, headers=AUTH, timeout=30)
        assert answer.status_code == status, answer.text
        text = answer.text
        assert OPERATOR_KEY not in text
        for i in range(len(OPERATOR_KEY) - 7):
            assert OPERATOR_KEY[i : i + 8] not in text, OPERATOR_KEY[i : i + 8]
        assert answer.json()["error"]["type"] in ("invalid_request_error", "server_error")

"""A bounded schemathesis run: a real gateway keeps the contract its OpenAPI document states.

The gateway runs as ``enclave serve`` runs it, on 127.0.0.1, in front of the echo
upstream (``tests/e2e/echo_upstream.py``: a test double standing in for the model
server, answering with the last user message). Schemathesis draws requests from
``functions.openapi.document()``, valid ones and deliberately invalid ones, for every
operation, sends them with the bootstrap (admin) key, and checks each answer:

- no 5xx, except a 503 where the operation documents one;
- the status is one the operation documents, and its body matches that status's
  schema and media type (a chat stream event by event, each ``data:`` a chunk);
- every 4xx and 5xx is JSON in OpenAI's ``ErrorResponse`` shape, held to the
  official spec (``tests/openapi.py``), not only to our own document;
- a request that breaks the schema is refused with a 4xx; one without a key, or
  with a wrong one, is a 401; a method the route does not serve is a 405.

Bounded and repeatable: ``MAX_EXAMPLES`` drawn cases per operation (``CHAT_EXAMPLES``
for chat) plus schemathesis' boundary-value cases, about 600 requests in all,
derandomised so every run sends the same ones.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from functions.openapi import document
from tests.conftest import API_KEY, Server, free_port, gateway_env, launch, start
from tests.openapi import validate

MAX_EXAMPLES = 20  # drawn cases per operation, chat aside; boundary cases come on top
CHAT_EXAMPLES = 100
MODEL = "echo"  # the one deployed model: the echo upstream
COLLECTION = "handbook"  # seeded with one document before the run
CHAT = "/v1/chat/completions"
UPLOAD = "/v1/admin/collections/{collection}/documents"

CONFIG = schemathesis.Config.from_dict(
    {
        "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True},
        "phases": {"examples": {"enabled": False}, "stateful": {"enabled": False}},
        "checks": {
            # 5xx is a failure, except 503 where the document says so (status_code_conformance)
            "not_a_server_error": {"expected-statuses": ["2xx", "3xx", "4xx", "503"]},
            # Valid by the document yet refused (400) by what no schema states: an embedding
            # size other than the embedder's own. On for chat (below).
            "positive_data_acceptance": {"enabled": False},
        },
        "operations": [
            {
                # boundary cases for each of ~25 chat parameters are ~850 requests alone:
                # chat gets more drawn cases instead
                "include-path": CHAT,
                "phases": {"coverage": {"enabled": False}},
                "generation": {"max-examples": CHAT_EXAMPLES},
                "checks": {"positive_data_acceptance": {"enabled": True}},
            },
        ],
        "auth": {"openapi": {"bearer": {"bearer": API_KEY}}},
        "request-timeout": 60,
    }
)
schema = schemathesis.openapi.from_dict(document(), config=CONFIG)


@schema.hook
def map_case(context: schemathesis.HookContext, case: schemathesis.Case) -> schemathesis.Case:
    """About half the valid cases name the deployed model and the seeded collection, so they
    get past routing and retrieval to an answer, half of those chats as streams. A valid
    value replaces a valid value: a case stays valid (negative ones are left alone)."""
    meta = case.meta
    coin = len(repr(case.body)) % 4  # deterministic, as the case itself
    if meta is None or not meta.generation.mode.is_positive or coin % 2:
        return case
    path, body = case.operation.path, case.body
    if path == CHAT and isinstance(body, dict):
        case.body = {**body, "model": MODEL, "stream": coin == 0}
    elif path == "/v1/retrieve" and isinstance(body, dict):
        case.body = {**body, "collections": [COLLECTION]}
    elif path == UPLOAD:
        case.path_parameters = {**(case.path_parameters or {}), "collection": COLLECTION}
        case.query = {**(case.query or {}), "filename": "notes.txt"}
    return case


def openai_error_shape(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: Any
) -> None:
    """Every refusal and failure is JSON in the shape of OpenAI's ErrorResponse."""
    if response.status_code < 400:
        return
    content_type = (response.headers.get("content-type") or [""])[0]
    assert content_type.startswith("application/json"), f"error as {content_type!r}"
    try:
        validate("ErrorResponse", response.json())
    except jsonschema.ValidationError as exc:
        raise AssertionError(f"not an OpenAI ErrorResponse: {exc.message}") from exc


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory, log_dir: Path) -> Iterator[Server]:
    """A gateway whose one deployment is the echo upstream, with one collection to search."""
    record = tmp_path_factory.mktemp("fuzz-echo") / "requests.jsonl"
    record.touch()
    port = free_port()
    env = {**os.environ, "ECHO_RECORD": str(record)}
    echo = launch("echo", ["tests.e2e.echo_upstream", str(port)], env, log_dir, port)
    deployment = {
        "name": "echo",
        "model": MODEL,
        "api_base": f"{echo.url}/v1",
        "upstream_model": "echo",
    }
    # every case comes from 127.0.0.1, dozens of them without a key or with a wrong one on
    # purpose: failed logins are counted but never throttled here (the throttle's own
    # tests: tests/functions/test_login_throttle.py)
    throttle = {"ENCLAVE_GATEWAY_LOGIN_THROTTLE": '{"failures": 0}'}
    gateway = start("gateway", gateway_env([deployment], **throttle), log_dir)
    try:
        seeded = httpx.put(
            f"{gateway.url}{UPLOAD.format(collection=COLLECTION)}",
            params={"filename": "travel.txt"},
            content=b"Hotel costs are reimbursed up to 600 yuan a night.\n\nTaxis need a receipt.",
            headers={"authorization": f"Bearer {API_KEY}"},
            timeout=120,
        )
        assert seeded.status_code == 201, seeded.text
        yield gateway
    finally:
        gateway.stop()
        echo.stop()


@schema.parametrize()
@settings(
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_every_answer_keeps_the_documented_contract(
    case: schemathesis.Case, fuzzed: Server
) -> None:
    case.call_and_validate(base_url=fuzzed.url, additional_checks=[openai_error_shape])

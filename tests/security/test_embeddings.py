"""I2 and I4 on the knowledge routes: bounded embeddings, work that stops, masked text out.

Through a real gateway process whose external embedder is a recording test double
(:class:`~tests.security.embedder_double.RecordingEmbedder` on 127.0.0.1, standing
in for an OpenAI-compatible provider outside the boundary).

- ``/v1/embeddings`` bounds its input as OpenAI does (2048 inputs, none empty, each
  within the token bound; token arrays refused) with 400s that name the input,
  before anything reaches the embedder.
- A client that goes away stops the work between two batches: before, one request
  held the shared embedder until all of its inputs were embedded.
- The external embedder only ever receives masked text: uploads (chunks),
  retrieval queries and embeddings inputs alike.
- Each request to ``/v1/retrieve`` and ``/v1/embeddings`` leaves one audit record,
  answered or refused (I5).
"""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest

from functions.knowledge.api import MAX_INPUTS, MAX_UNTOKENISED_CHARS
from tests.security import embedder_double
from tests.security.embedder_double import AUTH, Gateway

external_gateway = embedder_double.external_gateway  # the fixture, used here

PHONE = "13812345678"
ID_CARD = "11010519491231002X"
EMAIL = "zhang.san@example.com"
PII = (PHONE, ID_CARD, EMAIL)


def letters() -> str:
    """A fresh tag with no digits, so no PII detector ever mistakes it for a number."""
    return "".join(chr(ord("a") + int(c, 16)) for c in uuid.uuid4().hex[:10])


def embed(gateway: Gateway, body: dict[str, Any], **headers: str) -> httpx.Response:
    return httpx.post(
        f"{gateway.url}/v1/embeddings", headers={**AUTH, **headers}, json=body, timeout=120
    )


def wait_for(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 60  # the audit writer flushes in the background
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


@pytest.mark.parametrize(
    ("payload", "names"),
    [
        ({"input": ["a"] * (MAX_INPUTS + 1)}, str(MAX_INPUTS)),
        ({"input": ""}, "input[0]"),
        ({"input": ["fine", ""]}, "input[1]"),
        ({"input": [[101, 102], [103]]}, "token arrays"),
        ({"input": ["fine", "x" * (MAX_UNTOKENISED_CHARS + 1)]}, "input[1]"),
        ({"input": "fine", "model": "m" * 300}, "model"),
    ],
)
def test_embeddings_input_is_bounded_with_clear_400s(
    external_gateway: Gateway, payload: dict[str, Any], names: str
) -> None:
    before = len(external_gateway.embedder.texts)
    response = embed(external_gateway, {"model": "recorded", **payload})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and names in error["message"]
    assert "m" * 300 not in response.text
    assert len(external_gateway.embedder.texts) == before  # nothing reached the embedder


def test_a_client_that_goes_away_stops_the_work(external_gateway: Gateway) -> None:
    embedder, tag = external_gateway.embedder, letters()
    inputs = [f"passage {tag} {i:03d} " + "about the travel policy " * 16 for i in range(100)]
    body = orjson.dumps({"model": "recorded", "input": inputs})
    trace = f"gone-{tag}"
    head = (
        f"POST /v1/embeddings HTTP/1.1\r\nhost: 127.0.0.1\r\n"
        f"authorization: {AUTH['authorization']}\r\ncontent-type: application/json\r\n"
        f"x-request-id: {trace}\r\ncontent-length: {len(body)}\r\n\r\n"
    ).encode()
    embedder.arrived.clear()
    embedder.release.clear()  # the first batch is held at the "provider"
    try:
        with socket.create_connection(("127.0.0.1", external_gateway.server.port)) as client:
            client.sendall(head + body)
            assert embedder.arrived.wait(timeout=120), "no batch reached the embedder"
        # the client is gone; the gateway notices and records it while the batch is held
        wait_for(
            lambda: any(r.get("trace_id") == trace for r in external_gateway.audit_records()),
            "the abandoned request was not audited",
        )
    finally:
        embedder.release.set()
    [record] = [r for r in external_gateway.audit_records() if r.get("trace_id") == trace]
    assert (record["route"], record["status"]) == ("/v1/embeddings", 499)
    follow_up = embed(external_gateway, {"model": "recorded", "input": f"after {tag}"})
    assert follow_up.status_code == 200, follow_up.text
    sent = [t for t in embedder.texts if tag in t and not t.startswith("after")]
    assert 0 < len(sent) < len(inputs)  # the batch in flight, and no batch after it
    assert sent == inputs[: len(sent)]


def test_an_external_embedder_only_ever_receives_masked_text(external_gateway: Gateway) -> None:
    tag = letters()
    document = (
        f"# Expenses {tag}\n\nClaims go to Zhang San, phone {PHONE}, e-mail {EMAIL}, "
        f"ID card {ID_CARD}. Hotel costs are capped at 180 euros per night.\n"
    ).encode()
    uploaded = httpx.put(
        f"{external_gateway.url}/v1/admin/collections/expenses/documents?filename=claims.md",
        headers=AUTH,
        content=document,
        timeout=120,
    )
    assert uploaded.status_code == 201, uploaded.text
    found = httpx.post(
        f"{external_gateway.url}/v1/retrieve",
        headers=AUTH,
        json={"query": f"who handles claims, {PHONE} or {EMAIL}?", "collections": ["expenses"]},
        timeout=120,
    )
    assert found.status_code == 200, found.text
    assert PHONE in found.json()["data"][0]["text"]  # stored as written; only what leaves is masked
    vectors = embed(external_gateway, {"model": "recorded", "input": [f"{tag} ID {ID_CARD}"]})
    assert vectors.status_code == 200, vectors.text
    texts = external_gateway.embedder.texts
    assert any(f"Expenses {tag}" in t for t in texts)  # the chunk went out…
    assert any("who handles claims" in t for t in texts)  # …and the query…
    assert any(t.startswith(tag) for t in texts)  # …and the input,
    for text in texts:  # but never a raw phone, ID or e-mail
        assert not any(value in text for value in PII), text


def test_retrieve_and_embeddings_leave_one_record_each(external_gateway: Gateway) -> None:
    tag = letters()
    put = httpx.put(
        f"{external_gateway.url}/v1/admin/collections/audited/documents?filename=a.md",
        headers=AUTH,
        content=f"# Audited {tag}\n\nMeals are reimbursed up to 45 euros per day.\n".encode(),
        timeout=120,
    )
    assert put.status_code == 201, put.text
    calls = {
        f"e-ok-{tag}": ("/v1/embeddings", AUTH, {"model": "recorded", "input": "meals"}, 200),
        f"e-bad-{tag}": ("/v1/embeddings", AUTH, {"model": "recorded", "input": ""}, 400),
        f"e-nokey-{tag}": ("/v1/embeddings", {}, {"model": "recorded", "input": "x"}, 401),
        f"r-ok-{tag}": ("/v1/retrieve", AUTH, {"query": "meals", "collections": ["audited"]}, 200),
        f"r-no-{tag}": ("/v1/retrieve", AUTH, {"query": "x", "collections": ["o/audited"]}, 403),
    }
    for trace, (route, auth, body, status) in calls.items():
        response = httpx.post(
            f"{external_gateway.url}{route}",
            headers={**auth, "x-request-id": trace},
            json=body,
            timeout=120,
        )
        assert response.status_code == status, response.text

    def recorded() -> list[dict[str, Any]]:
        return [r for r in external_gateway.audit_records() if r.get("trace_id") in calls]

    wait_for(lambda: len(recorded()) >= len(calls), "not every request was audited")
    records = {r["trace_id"]: r for r in recorded()}
    assert len(recorded()) == len(records) == len(calls)  # one each
    for trace, (route, auth, _, status) in calls.items():
        record = records[trace]
        assert (record["route"], record["status"]) == (route, status)
        assert (record["principal"] is None) == (not auth)
        assert ("error" in record) == (status != 200)

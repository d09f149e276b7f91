"""Uploads respect the key's collection list and are refused before the body is read (I4, I6).

Through a real gateway process (its embedder a recording test double on 127.0.0.1,
see :mod:`tests.security.embedder_double`). An admin key limited to some collections
could upload into any collection of its tenant; and every refusal came only after
the whole upload (up to 20 MB) had been read. Now the decision comes from the
headers: the test sends only them, with a ``content-length`` of megabytes, and
the 403 arrives without a byte of the body. (Another tenant's collection cannot
even be named in the path: a name there is always in the caller's own tenant.)
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

import httpx

from tests.conftest import API_KEY, create_key
from tests.security import embedder_double
from tests.security.embedder_double import Gateway

external_gateway = embedder_double.external_gateway  # the fixture, used here

DOCUMENT = b"# Remote work\n\nStaff may work remotely two days a week.\n"


def headers_only(gateway: Gateway, key: str, collection: str, trace: str) -> int:
    """Send an upload's headers (declaring 10 MB) and no body; the response's status."""
    head = (
        f"PUT /v1/admin/collections/{collection}/documents?filename=big.md HTTP/1.1\r\n"
        f"host: 127.0.0.1\r\nauthorization: Bearer {key}\r\nx-request-id: {trace}\r\n"
        f"content-type: text/markdown\r\ncontent-length: {10 * 1024 * 1024}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", gateway.server.port), timeout=120) as client:
        client.sendall(head)
        # a gateway that read the body first would wait here for 10 MB that never come
        return int(client.recv(4096).split(b" ", 2)[1])


def put(gateway: Gateway, key: str, collection: str) -> httpx.Response:
    return httpx.put(
        f"{gateway.url}/v1/admin/collections/{collection}/documents?filename=remote.md",
        headers={"authorization": f"Bearer {key}"},
        content=DOCUMENT,
        timeout=120,
    )


def test_an_upload_outside_the_key_collection_list_is_refused_before_its_body(
    external_gateway: Gateway,
) -> None:
    data: Path = external_gateway.data
    limited = create_key(data, "default", "--role", "admin", "--collections", "allowed")
    assert headers_only(external_gateway, limited, "elsewhere", "up-limited") == 403
    assert put(external_gateway, limited, "elsewhere").status_code == 403
    assert put(external_gateway, limited, "allowed").status_code == 201
    assert put(external_gateway, API_KEY, "elsewhere").status_code == 201  # unlimited admin


def test_members_and_strangers_are_refused_before_the_body(external_gateway: Gateway) -> None:
    member = create_key(external_gateway.data, "default")
    assert headers_only(external_gateway, member, "allowed", "up-member") == 403
    wrong = "sk-wrong-" + "x" * 24
    assert headers_only(external_gateway, wrong, "allowed", "up-anon") == 401
    traces = {"up-member": 403, "up-anon": 401}
    deadline = time.monotonic() + 60  # refusals are audited too, in the background
    while not traces.keys() <= {r.get("trace_id") for r in external_gateway.audit_records()}:
        assert time.monotonic() < deadline, "the refused uploads were not audited"
        time.sleep(0.05)
    for record in external_gateway.audit_records():
        if record.get("trace_id") in traces:
            assert record["status"] == traces[record["trace_id"]]

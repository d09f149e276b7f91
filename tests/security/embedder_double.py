"""A recording embeddings API and a gateway that uses it as its external embedder.

:class:`RecordingEmbedder` is a **test double**: it stands in for an external
OpenAI-compatible ``/v1/embeddings`` provider (``ENCLAVE_KNOWLEDGE_EMBEDDER=openai``
pointing outside), on 127.0.0.1. It records every text it is sent and answers
deterministic unit vectors, and it can hold requests until the test releases them.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import API_KEY, Server, free_port, gateway_env, start

DIM = 8


def vector(text: str) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest()
    return [b / 255 + 0.01 for b in digest[:DIM]]


class RecordingEmbedder:
    """The external embedder's stand-in: what it received, request by request."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.arrived = threading.Event()  # set when a request comes in
        self.release = threading.Event()  # requests wait for it; set unless a test holds them
        self.release.set()
        self._server = ThreadingHTTPServer(("127.0.0.1", free_port()), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    @property
    def texts(self) -> list[str]:
        return [text for batch in self.batches for text in batch]

    def start(self) -> RecordingEmbedder:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body: dict[str, Any] = json.loads(
                    self.rfile.read(int(self.headers["content-length"]))
                )
                texts = [body["input"]] if isinstance(body["input"], str) else body["input"]
                recorder.batches.append(list(texts))
                recorder.arrived.set()
                recorder.release.wait(timeout=120)
                data = [
                    {"object": "embedding", "index": i, "embedding": vector(t)}
                    for i, t in enumerate(texts)
                ]
                payload = json.dumps({"object": "list", "data": data, "model": body["model"]})
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload.encode())

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


@dataclass
class Gateway:
    server: Server
    data: Path
    embedder: RecordingEmbedder

    @property
    def url(self) -> str:
        return self.server.url

    def audit_records(self) -> list[dict[str, Any]]:
        return [
            json.loads(line)
            for path in sorted((self.data / "audit").rglob("*.jsonl"))
            for line in path.read_text().splitlines()
            if line.strip()
        ]


AUTH = {"authorization": f"Bearer {API_KEY}"}


@pytest.fixture(scope="module")
def external_gateway(tmp_path_factory: pytest.TempPathFactory, log_dir: Path) -> Iterator[Gateway]:
    """A gateway whose knowledge base embeds through :class:`RecordingEmbedder`.

    Its one deployment points at a closed port: these tests never chat.
    """
    embedder = RecordingEmbedder().start()
    data = tmp_path_factory.mktemp("data")
    nowhere = {"name": "none", "model": "none", "api_base": f"http://127.0.0.1:{free_port()}/v1"}
    env = gateway_env(
        [nowhere],
        ENCLAVE_DATA_DIR=str(data),
        ENCLAVE_KNOWLEDGE_EMBEDDER="openai",
        ENCLAVE_KNOWLEDGE_EMBEDDING_API_BASE=embedder.url,
        ENCLAVE_KNOWLEDGE_EMBEDDING_MODEL="recorded",
        ENCLAVE_KNOWLEDGE_EMBEDDING_DIM=str(DIM),
        ENCLAVE_KNOWLEDGE_EMBEDDING_BATCH_SIZE="64",
    )
    server = start("gateway", env, log_dir)
    try:
        yield Gateway(server, data, embedder)
    finally:
        server.stop()
        embedder.stop()

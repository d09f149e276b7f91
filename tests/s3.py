"""A real S3-compatible server on 127.0.0.1 for the tests: moto's server mode.

moto answers the S3 HTTP API (conditional writes included: ``If-None-Match: *``,
``If-Match``, and 304s for unchanged reads) from a thread of the test process, so
gateway processes started by a test reach it over HTTP exactly as they would reach
MinIO, Ceph or AWS. Each test gets its own bucket.

Where moto is not yet the real thing: it checks a write's condition and then writes,
with nothing between, on one thread per request; two conditional writes racing on one
key can both pass (seen: one of eight gateways' key writes lost, now and then). S3
makes each write atomic, so here writes (PUT, POST, DELETE) take one lock in turn;
reads still run side by side.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server

from functions.storage import StorageSettings
from tests.conftest import free_port

CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
_buckets = itertools.count()
_SIGNING_KEY = Ed25519PrivateKey.generate().private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
)
# What an operator's secret holds for gateways on a bucket: a gateway there writes nothing
# to its disk, so neither the key pepper nor the audit keys can be generated into it.
BUCKET_SECRETS = {
    "ENCLAVE_GATEWAY_KEY_PEPPER": "pepper-for-the-shared-key-store-0123456789",
    "ENCLAVE_AUDIT_HMAC_KEY": "h" * 64,
    "ENCLAVE_AUDIT_SIGNING_KEY": _SIGNING_KEY.decode(),
}


_WRITES = frozenset({"PUT", "POST", "DELETE"})


def _atomic_writes(app: Any) -> Any:
    """``app`` (moto's WSGI app) with one write at a time, as S3 makes each write atomic."""
    lock = threading.Lock()

    def serve(environ: dict[str, Any], start_response: Any) -> Any:
        if environ["REQUEST_METHOD"] not in _WRITES:
            return app(environ, start_response)
        with lock:  # the condition's check and the write, with no other write between
            return list(app(environ, start_response))

    return serve


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """The endpoint URL of one moto server for the whole session."""
    port = free_port()
    app = _atomic_writes(DomainDispatcherApplication(create_backend_app))
    server = make_server("127.0.0.1", port, app, True, request_handler=MotoRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    server.shutdown()
    thread.join()


def s3_client(endpoint: str) -> Any:
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **CREDENTIALS)


def new_bucket(endpoint: str, name: str) -> StorageSettings:
    """Bucket ``name`` created on ``endpoint``; storage settings for its ``state`` prefix."""
    s3_client(endpoint).create_bucket(Bucket=name)
    return StorageSettings(
        uri=f"s3://{name}/state",
        s3_endpoint=endpoint,
        s3_allow_http=True,
        s3_access_key_id=CREDENTIALS["aws_access_key_id"],
        s3_secret_access_key=CREDENTIALS["aws_secret_access_key"],
    )


@pytest.fixture
def s3_storage(s3_server: str) -> StorageSettings:
    """Storage settings for a new, empty bucket of the session's server."""
    return new_bucket(s3_server, f"enclave-test-{next(_buckets)}")


def storage_env(storage: StorageSettings) -> dict[str, str]:
    """The ENCLAVE_STORAGE_* variables a gateway process needs for ``storage``."""
    assert storage.uri and storage.s3_endpoint
    return {
        "ENCLAVE_STORAGE_URI": storage.uri,
        "ENCLAVE_STORAGE_S3_ENDPOINT": storage.s3_endpoint,
        "ENCLAVE_STORAGE_S3_ALLOW_HTTP": "true",
        "AWS_ACCESS_KEY_ID": CREDENTIALS["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": CREDENTIALS["aws_secret_access_key"],
        "AWS_DEFAULT_REGION": "us-east-1",
    }

"""An identity provider for the OIDC tests: real keys, and a real JWKS server on 127.0.0.1.

:class:`Issuer` holds an RSA, an EC P-256 and an Ed25519 key, signs tokens with
them and forges the attacks. :class:`JWKSServer` serves its JWKS (and an
openid-configuration) over HTTP from a thread; it counts fetches and can be told
to fail, to serve garbage or to publish other keys.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

AUDIENCE = "enclave"
ROLE_MAP = {"enclave-admins": "admin", "enclave-auditors": "auditor", "enclave-users": "member"}
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64_json(obj: object) -> str:
    return b64(json.dumps(obj, separators=(",", ":")).encode())


def public_jwk(key: PrivateKey, kid: str, **members: Any) -> dict[str, Any]:
    public = key.public_key()
    if isinstance(public, rsa.RSAPublicKey):
        jwk = RSAAlgorithm.to_jwk(public, as_dict=True)
    elif isinstance(public, ec.EllipticCurvePublicKey):
        jwk = ECAlgorithm.to_jwk(public, as_dict=True)
    else:
        jwk = OKPAlgorithm.to_jwk(public, as_dict=True)
    return {**jwk, "kid": kid, "use": "sig", **members}


@dataclass
class Issuer:
    """Signing keys by kid, and the JWKS that publishes them."""

    url: str = "http://127.0.0.1"
    keys: dict[str, PrivateKey] = field(default_factory=dict)
    algs: dict[str, str] = field(default_factory=dict)

    @classmethod
    def generate(cls) -> Issuer:
        issuer = cls()
        issuer.add("rsa-1", rsa.generate_private_key(public_exponent=65537, key_size=2048), "RS256")
        issuer.add("ec-1", ec.generate_private_key(ec.SECP256R1()), "ES256")
        issuer.add("ed-1", ed25519.Ed25519PrivateKey.generate(), "EdDSA")
        return issuer

    def add(self, kid: str, key: PrivateKey, alg: str) -> None:
        self.keys[kid] = key
        self.algs[kid] = alg

    def jwks(self) -> dict[str, Any]:
        return {"keys": [public_jwk(key, kid) for kid, key in self.keys.items()]}

    def claims(self, **changes: Any) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.url,
            "aud": AUDIENCE,
            "sub": "user-42",
            "iat": now,
            "exp": now + 600,
            "tenant": "acme",
            "groups": ["enclave-users"],
        }
        claims.update(changes)
        return {k: v for k, v in claims.items() if v is not None}  # None: drop the claim

    def token(self, kid: str = "rsa-1", alg: str | None = None, **changes: Any) -> str:
        """A token signed with ``kid``'s key; ``changes`` edit the default claims."""
        headers = {"kid": kid, "typ": "JWT"}
        return jwt.encode(self.claims(**changes), self.keys[kid], alg or self.algs[kid], headers)

    def rsa_public_pem(self) -> bytes:
        return (
            self.keys["rsa-1"]
            .public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )


def forge(header: dict[str, Any], claims: dict[str, Any], secret: bytes | None = None) -> str:
    """A compact JWS with any header; HMAC-SHA256 signed with ``secret``, or unsigned."""
    signing_input = f"{b64_json(header)}.{b64_json(claims)}"
    if secret is None:
        return signing_input + "."
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(mac)}"


class JWKSServer:
    """Serves ``/jwks.json`` and ``/.well-known/openid-configuration`` on 127.0.0.1."""

    def __init__(self, issuer: Issuer) -> None:
        self.issuer = issuer
        self.mode = "ok"  # "ok", "error" (500), "garbage" (not JSON), "nokeys", or "slow" (1 s)
        self.discovery_issuer: str | None = None  # None: the issuer's own URL
        self.fetches = 0
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        issuer.url = self.url
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def reset(self) -> None:
        self.mode, self.discovery_issuer, self.fetches = "ok", None, 0

    def _answer(self, path: str) -> tuple[int, bytes]:
        if path == "/.well-known/openid-configuration":
            config = {
                "issuer": self.discovery_issuer or self.url,
                "jwks_uri": self.url + "/jwks.json",
            }
            return 200, json.dumps(config).encode()
        if path != "/jwks.json":
            return 404, b"{}"
        with self._lock:
            self.fetches += 1
        if self.mode == "slow":
            time.sleep(1)
        if self.mode == "error":
            return 500, b'{"error": "boom"}'
        if self.mode == "garbage":
            return 200, b"<html>not a key set</html>"
        if self.mode == "nokeys":
            return 200, b'{"keys": []}'
        return 200, json.dumps(self.issuer.jwks()).encode()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status, body = server._answer(self.path)
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler

    @contextmanager
    def running(self) -> Iterator[JWKSServer]:
        self._thread.start()
        try:
            yield self
        finally:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._thread.join(timeout=5)


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

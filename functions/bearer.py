"""The bearer credential of a request, and the one-key check the node uses.

Light on purpose (starlette and the error tree only): the inference node imports
it, and must not pull in the gateway's authentication (key store, OIDC, rate
limits) to compare one header with one key.
"""

from __future__ import annotations

import hmac

from starlette.datastructures import Headers

from functions.errors import AuthenticationError


def bearer_token(values: list[str]) -> bytes:
    """The token of exactly one ``Authorization: Bearer <token>`` header, else 401."""
    if not values:
        raise AuthenticationError(
            "You didn't provide an API key (Authorization: Bearer …).", reason="missing"
        )
    if len(values) > 1:
        raise AuthenticationError("Send exactly one Authorization header.", reason="malformed")
    scheme, _, token = values[0].partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationError(
            "The Authorization header must be 'Bearer <key>'.", reason="malformed"
        )
    return token.strip().encode()


def check_key(headers: Headers, key: bytes) -> None:
    """Raise 401 unless ``headers`` carry exactly one bearer ``key`` (constant time)."""
    if not hmac.compare_digest(bearer_token(headers.getlist("authorization")), key):
        raise AuthenticationError("Incorrect API key provided.", reason="unknown")

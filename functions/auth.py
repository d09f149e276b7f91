"""Authentication: a bearer key compared in constant time with the keys in Settings.

A missing, malformed, repeated or unknown credential is a 401 in OpenAI's error
shape. With no keys configured every request is refused: security fails closed.
"""

from __future__ import annotations

import hashlib
import hmac

from starlette.datastructures import Headers

from functions.context import Principal, RequestContext, Step
from functions.errors import AuthenticationError
from functions.settings import GatewaySettings


def key_fingerprint(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:12]


def bearer_token(values: list[str]) -> bytes:
    if not values:
        raise AuthenticationError("You didn't provide an API key (Authorization: Bearer …).")
    if len(values) > 1:
        raise AuthenticationError("Send exactly one Authorization header.")
    scheme, _, token = values[0].partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationError("The Authorization header must be 'Bearer <key>'.")
    return token.strip().encode()


def check_key(headers: Headers, key: bytes) -> None:
    """Raise 401 unless ``headers`` carry exactly one bearer ``key``."""
    if not hmac.compare_digest(bearer_token(headers.getlist("authorization")), key):
        raise AuthenticationError("Incorrect API key provided.")


def make_authenticate(settings: GatewaySettings) -> Step:
    keys = [k.get_secret_value().encode() for k in settings.api_keys]
    principals = [Principal(key_id=key_fingerprint(k)) for k in keys]

    async def authenticate(ctx: RequestContext) -> RequestContext:
        token = bearer_token(ctx.headers.getlist("authorization"))
        match = None
        for key, principal in zip(keys, principals, strict=True):
            # every key is compared, so the time taken does not say which one matched
            if hmac.compare_digest(token, key):
                match = principal
        if match is None:
            raise AuthenticationError("Incorrect API key provided.")
        return ctx.decided("auth", "key", principal=match)

    return authenticate

"""Whether a bearer token has the shape of a JWT, and its unverified header.

Apart from :mod:`.verifier` so that the auth step can tell a JWT from an API key on
every request without importing PyJWT and cryptography's X.509 (30 ms of a gateway's
start) when no issuer is configured.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

import orjson

MAX_HEADER_CHARS = 2048  # base64url of a JOSE header; real ones are under 400
_SEGMENT = re.compile(r"[A-Za-z0-9_-]+")


def _b64_json(segment: str) -> object:
    try:
        return orjson.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (binascii.Error, orjson.JSONDecodeError):
        return None


def unverified_header(token: str) -> dict[str, Any] | None:
    """The JOSE header of a compact JWS, if ``token`` has the shape of one; else None.

    Nothing in it is trusted: it only says which key and algorithm to try.
    """
    parts = token.split(".")
    if len(parts) != 3 or len(parts[0]) > MAX_HEADER_CHARS:
        return None
    if not (_SEGMENT.fullmatch(parts[0]) and _SEGMENT.fullmatch(parts[1])):
        return None
    if parts[2] and not _SEGMENT.fullmatch(parts[2]):
        return None
    header = _b64_json(parts[0])
    return header if isinstance(header, dict) and isinstance(header.get("alg"), str) else None


def looks_like_jwt(token: str) -> bool:
    """Whether a bearer token is a JWT (for OIDC) rather than an API key.

    True for three base64url segments whose first decodes to a JSON object with an
    ``alg``: API keys (``sk-…``) never contain dots. Says nothing about validity.
    """
    return unverified_header(token) is not None

"""Bearer JWTs from one OpenID Connect issuer: verified against its JWKS, mapped to a caller.

    settings.py  OIDCSettings: issuer, audience, algorithms, claims → tenant/role
    jwks.py      JWKSCache: the issuer's keys, fetched over httpx, cached, fail closed
    verifier.py  OIDCVerifier.verify(token) -> Identity
    shape.py     looks_like_jwt(token): no PyJWT, for every request
    claims.py    Identity; claims → subject, tenant, role

Errors: 401 :class:`~functions.errors.AuthenticationError` for any token that is
not valid; 403 :class:`~functions.errors.PermissionDeniedError` for a valid token
that maps to no tenant or role; 503 :class:`~functions.errors.ServiceUnavailableError`
when the issuer's keys cannot be fetched. No failure ever accepts a token.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from functions.lazy import exports

if TYPE_CHECKING:
    from functions.oidc.claims import Identity
    from functions.oidc.jwks import JWKSCache
    from functions.oidc.settings import OIDCSettings
    from functions.oidc.shape import looks_like_jwt
    from functions.oidc.verifier import OIDCVerifier

# The public names, each imported from its module on first use: Settings holds an
# OIDCSettings, so ``functions.oidc.settings`` is imported wherever Settings is (the
# inference node too), and must not load the verifier, JWKS fetching and cryptography.
_LAZY = {
    "Identity": "claims",
    "JWKSCache": "jwks",
    "OIDCSettings": "settings",
    "OIDCVerifier": "verifier",
    "looks_like_jwt": "shape",
}


__getattr__ = exports(__name__, _LAZY, globals())


__all__ = ["Identity", "JWKSCache", "OIDCSettings", "OIDCVerifier", "looks_like_jwt"]

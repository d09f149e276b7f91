"""Bearer JWTs from one OpenID Connect issuer: verified against its JWKS, mapped to a caller.

    settings.py  OIDCSettings: issuer, audience, algorithms, claims → tenant/role
    jwks.py      JWKSCache: the issuer's keys, fetched over httpx, cached, fail closed
    verifier.py  OIDCVerifier.verify(token) -> Identity; looks_like_jwt(token)
    claims.py    Identity; claims → subject, tenant, role

Errors: 401 :class:`~functions.errors.AuthenticationError` for any token that is
not valid; 403 :class:`~functions.errors.PermissionDeniedError` for a valid token
that maps to no tenant or role; 503 :class:`~functions.errors.ServiceUnavailableError`
when the issuer's keys cannot be fetched. No failure ever accepts a token.
"""

from functions.oidc.claims import Identity
from functions.oidc.jwks import JWKSCache
from functions.oidc.settings import OIDCSettings
from functions.oidc.verifier import OIDCVerifier, looks_like_jwt

__all__ = ["Identity", "JWKSCache", "OIDCSettings", "OIDCVerifier", "looks_like_jwt"]

"""Verifying a bearer JWT from the configured issuer.

The checks, in order; each failure is a 401 whose message never repeats token content:

1. size (``max_token_bytes``) and shape: three base64url segments;
2. header: a JSON object; ``alg`` in the allow-list, *before* any key is looked up
   (``none`` and ``HS*`` can never be in it); a ``kid``; no ``crit``/``b64``
   extension; ``typ``, if present, a JWT type. Key material in the header
   (``jwk``, ``jku``, ``x5u``, ``x5c``) is never used;
3. the key named by ``kid``, from :class:`~functions.oidc.jwks.JWKSCache` (503 when
   the issuer's keys cannot be had: fail closed);
4. ``alg`` must be one that key may verify (RSA for RS*/PS*, EC on the matching
   curve for ES*, Ed25519/Ed448 for EdDSA): no algorithm/key-type confusion;
5. signature, then ``iss`` (exact), ``aud`` (one of ours), ``exp`` (required),
   ``nbf``, ``iat`` (not in the future), with ``leeway_s`` of clock skew, by PyJWT
   with the key's algorithms (never the token's) as its allow-list;
6. subject, tenant and role from the claims (:mod:`functions.oidc.claims`).

Duplicated ``Authorization`` headers never get here: the auth step refuses them.
"""

from __future__ import annotations

from typing import Any

import jwt

from functions.errors import AuthenticationError
from functions.oidc.claims import Identity, identity_from
from functions.oidc.jwks import JWKSCache, VerificationKey
from functions.oidc.settings import OIDCSettings
from functions.oidc.shape import looks_like_jwt, unverified_header

__all__ = ["OIDCVerifier", "looks_like_jwt", "refusal", "unverified_header"]

MAX_KID_CHARS = 256
_TYPES = {"jwt", "at+jwt", "application/jwt", "application/at+jwt"}

# PyJWT's exceptions, most specific first, to what the caller is told
_REFUSALS: tuple[tuple[type[jwt.PyJWTError], str], ...] = (
    (jwt.ExpiredSignatureError, "The token has expired."),
    (jwt.ImmatureSignatureError, "The token is not valid yet."),
    (jwt.InvalidAudienceError, "The token was not issued for this service."),
    (jwt.InvalidIssuerError, "The token was not issued by the trusted issuer."),
    (jwt.MissingRequiredClaimError, "The token lacks a required claim (exp, iss, aud, sub)."),
    (jwt.InvalidSignatureError, "The token's signature is invalid."),
    (jwt.InvalidAlgorithmError, "The token's algorithm is not allowed."),
    (jwt.InvalidKeyError, "The token's signing key is not acceptable."),
)


def refusal(exc: jwt.PyJWTError) -> AuthenticationError:
    """The 401 for a PyJWT exception, chosen by its type; its message is never passed on."""
    for kind, message in _REFUSALS:
        if isinstance(exc, kind):
            return AuthenticationError(message)
    return AuthenticationError("The token is malformed.")


class OIDCVerifier:
    """Verifies bearer JWTs of one issuer, with its keys from ``jwks``.

    One per gateway, built at start-up; :meth:`verify` is safe to call concurrently.
    """

    def __init__(self, settings: OIDCSettings, jwks: JWKSCache) -> None:
        self._settings = settings
        self._jwks = jwks
        self._jwt = jwt.PyJWT(
            options={
                "require": ["exp", "iss", "aud", "sub"],
                "enforce_minimum_key_length": True,
                "strict_aud": False,
            }
        )

    async def verify(self, token: str) -> Identity:
        """The caller ``token`` proves, or AuthenticationError (401),
        PermissionDeniedError (403: valid, but no tenant/role here) or
        ServiceUnavailableError (503: the issuer's keys cannot be fetched).
        """
        header = self._checked_header(token)
        key = await self._jwks.get(header["kid"])
        if key is None:
            raise AuthenticationError("The token's signing key is not one the issuer publishes.")
        if header["alg"] not in key.algorithms:
            raise AuthenticationError("The token's algorithm does not fit its signing key.")
        return identity_from(self._decode(token, key), self._settings)

    def _checked_header(self, token: str) -> dict[str, Any]:
        if len(token) > self._settings.max_token_bytes:
            raise AuthenticationError("The token is too large.")
        header = unverified_header(token)
        if header is None:
            raise AuthenticationError("The token is malformed.")
        if header["alg"] not in self._settings.algorithms:
            raise AuthenticationError("The token's algorithm is not allowed.")
        kid = header.get("kid")
        if not isinstance(kid, str) or not 0 < len(kid) <= MAX_KID_CHARS:
            raise AuthenticationError("The token does not name its signing key (kid).")
        if "crit" in header or "b64" in header:
            raise AuthenticationError("The token uses JWS extensions this service does not.")
        typ = header.get("typ", "JWT")
        if not isinstance(typ, str) or typ.lower() not in _TYPES:
            raise AuthenticationError("The token is not a JWT.")
        return header

    def _decode(self, token: str, key: VerificationKey) -> dict[str, Any]:
        settings = self._settings
        try:
            claims: dict[str, Any] = self._jwt.decode(
                token,
                key.key,
                algorithms=list(key.algorithms),
                audience=settings.audiences,
                issuer=settings.issuer,
                leeway=settings.leeway_s,
            )
        except jwt.PyJWTError as exc:
            raise refusal(exc) from None
        return claims

"""The issuer's signing keys: fetched over httpx, parsed strictly, cached, refreshed.

Policy, in one place:

* Keys are cached for ``jwks_cache_s``. Past that they are refetched before use;
  if that fetch fails every token is refused with 503 (fail closed: a stale key
  set is never used, so a key the issuer withdrew stops working on time).
* A token whose ``kid`` is unknown triggers one refetch (key rotation), at most
  once per ``jwks_min_refresh_s`` whatever the kids asked for, so random kids
  cannot make us hammer the issuer. Concurrent callers share one fetch.
* A failed fetch, a non-200 answer, a body that is not a JWKS, or a JWKS with no
  usable key is a 503 (:class:`~functions.errors.ServiceUnavailableError`), never
  an acceptance. A failed *refetch* keeps the previous, still fresh, keys.
* A key is usable only if it is public, for signatures, of a known type, and
  one of the allowed algorithms fits it: RSA of 2048 bits or more for RS*/PS*,
  EC on the curve of its ES* algorithm, Ed25519/Ed448 for EdDSA, and the JWK's
  own ``alg`` when it names one. A ``kid`` listed twice is ambiguous and dropped.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from jwt import PyJWK
from loguru import logger

from functions.errors import ServiceUnavailableError
from functions.oidc.settings import ALGORITHM_KEY_TYPES, OIDCSettings, check_url

PublicKey = (
    rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | ed448.Ed448PublicKey
)

MAX_JWKS_BYTES = 256 * 1024
MIN_RSA_BITS = 2048
_EC_ALGORITHMS = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}
_PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "k"}


class JWKSError(Exception):
    """The issuer's answer is not a usable JWKS (or openid-configuration)."""


@dataclass(frozen=True, slots=True)
class VerificationKey:
    kid: str
    key: PublicKey
    algorithms: tuple[str, ...]  # those of the allow-list that this key may verify


def _fitting_algorithms(key: object, jwk: dict[str, Any], allowed: Sequence[str]) -> list[str]:
    if isinstance(key, rsa.RSAPublicKey) and key.key_size >= MIN_RSA_BITS:
        fits = [a for a in allowed if ALGORITHM_KEY_TYPES[a] == "RSA"]
    elif isinstance(key, ec.EllipticCurvePublicKey):
        fits = [a for a in allowed if a == _EC_ALGORITHMS.get(key.curve.name)]
    elif isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        fits = [a for a in allowed if a == "EdDSA"]
    else:
        fits = []
    if "alg" in jwk:
        fits = [a for a in fits if a == jwk["alg"]]
    return fits


def _parse_key(jwk: object, allowed: Sequence[str]) -> VerificationKey | None:
    if not isinstance(jwk, dict) or not isinstance(jwk.get("kid"), str) or not jwk["kid"]:
        return None
    if jwk.get("use", "sig") != "sig" or _PRIVATE_MEMBERS & jwk.keys():
        return None
    ops = jwk.get("key_ops", ["verify"])
    if not isinstance(ops, list) or "verify" not in ops:
        return None
    alg = jwk.get("alg")
    if alg is not None and (
        not isinstance(alg, str) or ALGORITHM_KEY_TYPES.get(alg) != jwk.get("kty")
    ):
        return None  # an algorithm we do not verify, or one not of the key's type
    try:
        key = PyJWK(jwk).key
    except Exception:  # any member that does not parse drops this key, not the whole set
        return None
    fits = _fitting_algorithms(key, jwk, allowed)
    return VerificationKey(jwk["kid"], key, tuple(fits)) if fits else None


def parse_jwks(document: bytes, allowed: Sequence[str]) -> dict[str, VerificationKey]:
    """The usable keys of a JWKS document, by kid. Raises :class:`JWKSError` if none."""
    try:
        data = orjson.loads(document)
    except orjson.JSONDecodeError as exc:
        raise JWKSError("not JSON") from exc
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
        raise JWKSError("no 'keys' list")
    parsed = [k for k in (_parse_key(jwk, allowed) for jwk in data["keys"]) if k is not None]
    counts = Counter(k.kid for k in parsed)
    keys = {k.kid: k for k in parsed if counts[k.kid] == 1}
    if not keys:
        raise JWKSError("no usable signing key")
    return keys


class JWKSCache:
    """The issuer's keys by kid, for one :class:`OIDCSettings`; see the module docstring.

    ``client`` is owned by the caller (the gateway's pooled client will do);
    ``clock`` is monotonic seconds, injectable for tests.
    """

    def __init__(
        self,
        settings: OIDCSettings,
        client: httpx.AsyncClient,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._client = client
        self._clock = clock
        self._lock = asyncio.Lock()
        self._jwks_url = settings.jwks_url
        self._keys: dict[str, VerificationKey] = {}
        self._fetched_at: float | None = None  # last successful fetch
        self._attempted_at: float | None = None  # last fetch, successful or not

    async def get(self, kid: str) -> VerificationKey | None:
        """The key named ``kid``, or None if the issuer does not publish it (after one refetch)."""
        keys = await self._fresh_keys()
        if kid in keys:
            return keys[kid]
        seen = self._attempted_at
        async with self._lock:
            if self._attempted_at == seen and self._may_refetch():
                await self._fetch()  # nobody refetched while we waited
        return self._keys.get(kid)

    async def _fresh_keys(self) -> dict[str, VerificationKey]:
        if self._is_fresh():
            return self._keys
        async with self._lock:
            if self._is_fresh():  # another caller refreshed them while we waited
                return self._keys
            if not self._may_refetch():
                raise _unavailable()  # the last attempt, moments ago, failed
            await self._fetch()
            return self._keys

    def _is_fresh(self) -> bool:
        age = None if self._fetched_at is None else self._clock() - self._fetched_at
        return age is not None and age < self._settings.jwks_cache_s

    def _may_refetch(self) -> bool:
        since = None if self._attempted_at is None else self._clock() - self._attempted_at
        return since is None or since >= self._settings.jwks_min_refresh_s

    async def _fetch(self) -> None:
        self._attempted_at = self._clock()
        try:
            async with asyncio.timeout(self._settings.fetch_timeout_s):  # the whole fetch
                url = self._jwks_url or await self._discover()
                keys = parse_jwks(await self._download(url), self._settings.algorithms)
        except (httpx.HTTPError, JWKSError, TimeoutError) as exc:
            logger.warning("JWKS fetch failed", issuer=self._settings.issuer, error=repr(exc))
            raise _unavailable() from exc
        self._jwks_url, self._keys, self._fetched_at = url, keys, self._attempted_at
        logger.info("JWKS fetched", issuer=self._settings.issuer, kids=sorted(keys))

    async def _discover(self) -> str:
        url = self._settings.issuer.rstrip("/") + "/.well-known/openid-configuration"
        try:
            config = orjson.loads(await self._download(url))
        except orjson.JSONDecodeError as exc:
            raise JWKSError("openid-configuration is not JSON") from exc
        if not isinstance(config, dict) or config.get("issuer") != self._settings.issuer:
            raise JWKSError("openid-configuration names another issuer")
        jwks_uri = config.get("jwks_uri")
        if not isinstance(jwks_uri, str):
            raise JWKSError("openid-configuration has no jwks_uri")
        try:
            return check_url(jwks_uri)
        except ValueError as exc:
            raise JWKSError(str(exc)) from exc

    async def _download(self, url: str) -> bytes:
        request = self._client.stream(
            "GET",
            url,
            headers={"accept": "application/json"},
            follow_redirects=False,  # whatever the client's default: the URL is the trust anchor
        )
        async with request as response:
            if response.status_code != 200:
                raise JWKSError(f"HTTP {response.status_code} from {url}")
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_JWKS_BYTES:
                    raise JWKSError(f"more than {MAX_JWKS_BYTES} bytes from {url}")
        return bytes(body)


def _unavailable() -> ServiceUnavailableError:
    return ServiceUnavailableError(
        "The identity provider's signing keys are unavailable; try again shortly."
    )

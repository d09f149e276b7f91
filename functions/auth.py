"""Authentication: every request is tied to a principal, or refused with 401.

A bearer credential is one of:

- a key from the key store (:mod:`functions.keys`), looked up by its HMAC;
- a bootstrap key from Settings (``ENCLAVE_GATEWAY_API_KEYS``), compared in
  constant time; it acts as an admin of tenant ``default`` (local emulation
  prints one; production deployments create store keys with it and can drop it);
- a JWT from the configured OIDC issuer, when one is configured.

A missing, malformed, repeated, unknown, revoked or expired credential is a 401
in OpenAI's error shape, counted by that reason; an address that keeps failing is
refused with 429 before its credential is looked at (:mod:`functions.logins`). With
nothing configured every request is refused: security fails closed.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from starlette.requests import Request

from functions import lifecycle, scope
from functions.bearer import bearer_token as bearer_token
from functions.bearer import check_key as check_key
from functions.context import Principal, RequestContext, Step
from functions.errors import AuthenticationError
from functions.keys import KeyRecord, KeyStore
from functions.logins import LoginThrottle
from functions.logs import trace_id
from functions.oidc import looks_like_jwt
from functions.ratelimit.settings import Limits
from functions.settings import GatewaySettings

if TYPE_CHECKING:  # PyJWT is imported only where an issuer is configured
    from functions.oidc import OIDCVerifier

# a verifier for bearer JWTs: returns the principal, or raises (401, 403 or 503)
TokenVerifier = Callable[[str], Awaitable[Principal]]


def oidc_token_verifier(verifier: OIDCVerifier) -> TokenVerifier:
    async def verify_token(token: str) -> Principal:
        identity = await verifier.verify(token)
        return Principal(key_id=identity.key_id, tenant=identity.tenant, role=identity.role)

    return verify_token


def key_fingerprint(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:12]


def principal_of(record: KeyRecord) -> Principal:
    return Principal(
        key_id=record.id,
        tenant=record.tenant,
        role=record.role,
        models=frozenset(record.models) if record.models is not None else None,
        collections=frozenset(record.collections) if record.collections is not None else None,
        rpm=record.rpm,
        tpm=record.tpm,
        daily_tokens=record.daily_tokens,
        trust_user_headers=record.trust_user_headers,
        user_limits=user_limits_of(record),
    )


def user_limits_of(record: KeyRecord) -> Limits | None:
    """A frontend key's limits for each of its end users; None: the settings decide."""
    if record.user_rpm is None and record.user_tpm is None and record.user_daily_tokens is None:
        return None
    return Limits(rpm=record.user_rpm, tpm=record.user_tpm, daily_tokens=record.user_daily_tokens)


async def caller(authenticate: Step, request: Request) -> Principal:
    """The principal behind a request that is not a chat (admin, filter, knowledge URLs)."""
    ctx = await authenticate(
        RequestContext(request_id=trace_id.get(), headers=request.headers, client=peer(request))
    )
    assert ctx.principal is not None, "authenticate sets a principal or raises"
    lifecycle.call().ctx = ctx  # the request's log line names its caller
    return ctx.principal


def peer(request: Request) -> str | None:
    """The socket peer's address (what X-Forwarded-For says is judged by the throttle)."""
    return request.client.host if request.client else None


def refusal(record: KeyRecord | None) -> AuthenticationError:
    reason = "unknown" if record is None else "revoked" if record.revoked_at else "expired"
    return AuthenticationError("Incorrect API key provided.", reason=reason)


def make_authenticate(
    settings: GatewaySettings,
    keys: KeyStore | None = None,
    verify_token: TokenVerifier | None = None,
    logins: LoginThrottle | None = None,
) -> Step:
    """The authentication step; with ``logins``, failures are counted and throttled."""
    static = [k.get_secret_value().encode() for k in settings.api_keys]
    bootstrap = [Principal(key_id=f"bootstrap-{key_fingerprint(k)}", role="admin") for k in static]

    def from_static(token: bytes) -> Principal | None:
        match = None
        for key, principal in zip(static, bootstrap, strict=True):
            # every key is compared, so the time taken does not say which one matched
            if hmac.compare_digest(token, key):
                match = principal
        return match

    async def from_token(verify: TokenVerifier, text: str) -> Principal:
        try:
            return await verify(text)
        except AuthenticationError as exc:  # the issuer's many reasons: one label
            raise AuthenticationError(exc.message, reason="token_invalid") from None

    async def identify(ctx: RequestContext) -> RequestContext:
        token = bearer_token(ctx.headers.getlist("authorization"))
        text = token.decode("ascii", "replace")
        if verify_token is not None and looks_like_jwt(text):
            # a JWT is judged by the issuer alone: its errors propagate, no key fallback
            return ctx.decided("auth", "oidc", principal=await from_token(verify_token, text))
        principal = from_static(token)
        if principal is not None:
            return ctx.decided("auth", "bootstrap-key", principal=principal)
        record = await keys.resolve(token) if keys is not None else None
        if record is None or not record.usable(datetime.now(UTC)):
            raise refusal(record)
        return ctx.decided("auth", "key", principal=principal_of(record))

    async def authenticate(ctx: RequestContext) -> RequestContext:
        if logins is None:
            known = await identify(ctx)
        else:
            address = logins.address(ctx.client, ctx.headers)
            logins.check(address)  # a throttled address is refused before its key is read
            try:
                known = await identify(ctx)
            except AuthenticationError as exc:
                logins.failed(address, exc.reason)
                raise
        if known.principal is not None:  # per-tenant caches below the steps: scope.py
            scope.tenant.set(known.principal.tenant)
        return known

    return authenticate

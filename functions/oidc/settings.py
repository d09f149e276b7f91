"""Settings for bearer JWTs from one OpenID Connect issuer.

Self-contained (pydantic only), so it can be nested in
:class:`functions.settings.GatewaySettings` without an import cycle. Decisions
taken here, once, at start-up:

* Only asymmetric algorithms verified against the issuer's published JWKS are
  allowed. ``none`` and every ``HS*`` are refused at configuration time: an HMAC
  secret cannot come from a public JWKS, and mixing HMAC with public keys is the
  classic algorithm-confusion hole.
* URLs must be ``https``, except to a loopback host (local tests, sidecars).
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, field_validator, model_validator

Role = Literal["admin", "auditor", "member"]

#: every algorithm this module can verify, by the key type it needs
ALGORITHM_KEY_TYPES: dict[str, str] = {
    "RS256": "RSA",
    "RS384": "RSA",
    "RS512": "RSA",
    "PS256": "RSA",
    "PS384": "RSA",
    "PS512": "RSA",
    "ES256": "EC",
    "ES384": "EC",
    "ES512": "EC",
    "EdDSA": "OKP",
}

#: a tenant id as Enclave stores it: it ends up in logs, metrics and paths
TENANT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"

_LOOPBACK = {"127.0.0.1", "::1", "localhost"}


def check_url(url: str) -> str:
    """``url``, if it is absolute and https (or http to a loopback host); else ValueError."""
    parts = urlsplit(url)
    if not parts.hostname:
        raise ValueError(f"not an absolute URL: {url!r}")
    if parts.scheme != "https" and not (parts.scheme == "http" and parts.hostname in _LOOPBACK):
        raise ValueError(f"must be https (http only to a loopback host): {url!r}")
    return url


class OIDCSettings(BaseModel):
    """One trusted issuer, its JWKS, and how its claims become a tenant and a role."""

    issuer: str = Field(min_length=1, description="exact 'iss' value; discovery base URL")
    audience: str | list[str] = Field(description="'aud' must contain one of these")
    jwks_url: str | None = Field(
        default=None,
        description="JWKS endpoint; default: jwks_uri from the issuer's openid-configuration",
    )
    algorithms: list[str] = Field(default_factory=lambda: ["RS256", "ES256", "EdDSA"])
    leeway_s: int = Field(default=30, ge=0, le=300, description="clock skew for exp/nbf/iat")
    roles_claim: str = Field(default="groups", min_length=1, description="dotted path")
    tenant_claim: str = Field(default="tenant", min_length=1, description="dotted path")
    # claim value -> Enclave role; the strongest match wins: admin > auditor > member
    role_map: dict[str, Role] = Field(default_factory=dict)
    # role of a token none of whose values is in role_map; None: such a token gets 403
    default_role: Role | None = None
    # tenant of a token without the tenant claim; None: such a token gets 403
    default_tenant: str | None = Field(default=None, pattern=TENANT_PATTERN)
    jwks_cache_s: int = Field(default=300, gt=0, description="keys are refetched after this")
    jwks_min_refresh_s: int = Field(
        default=10, ge=0, description="at most one refetch per this many seconds (unknown kid)"
    )
    fetch_timeout_s: float = Field(default=3.0, gt=0, le=30, description="whole JWKS fetch")
    max_token_bytes: int = Field(default=8192, ge=512, le=65536)

    @property
    def audiences(self) -> list[str]:
        return [self.audience] if isinstance(self.audience, str) else list(self.audience)

    @field_validator("issuer")
    @classmethod
    def _issuer_is_a_url(cls, value: str) -> str:
        return check_url(value)

    @field_validator("jwks_url")
    @classmethod
    def _jwks_url_is_a_url(cls, value: str | None) -> str | None:
        return None if value is None else check_url(value)

    @field_validator("audience")
    @classmethod
    def _audience_not_empty(cls, value: str | list[str]) -> str | list[str]:
        values = [value] if isinstance(value, str) else value
        if not values or not all(values):
            raise ValueError("audience must name at least one non-empty audience")
        return value

    @field_validator("algorithms")
    @classmethod
    def _only_asymmetric(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("allow at least one algorithm")
        refused = [a for a in value if a.lower() == "none" or a.upper().startswith("HS")]
        if refused:
            raise ValueError(
                f"{refused} refused: only asymmetric algorithms verified against the JWKS"
            )
        unknown = sorted(set(value) - ALGORITHM_KEY_TYPES.keys())
        if unknown:
            known = sorted(ALGORITHM_KEY_TYPES)
            raise ValueError(f"unsupported algorithms {unknown}; choose from {known}")
        return list(dict.fromkeys(value))

    @model_validator(mode="after")
    def _refresh_within_cache(self) -> OIDCSettings:
        if self.jwks_min_refresh_s > self.jwks_cache_s:
            raise ValueError("jwks_min_refresh_s must not exceed jwks_cache_s")
        return self

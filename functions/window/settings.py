"""Context-window settings: ``settings.window`` (``ENCLAVE_WINDOW_*``).

Pure pydantic, importing nothing else of Enclave, so :mod:`functions.settings` can
nest it::

    ENCLAVE_WINDOW_POLICY=error               # every tenant: refuse what does not fit
    ENCLAVE_WINDOW_RESERVE_TOKENS=512         # room kept for the answer
    ENCLAVE_WINDOW_TENANTS='{"acme": {"policy": "error"}}'

An alias may set its own policy (``ENCLAVE_GATEWAY_ALIASES``, ``"context": "error"``);
it wins over the tenant's, which wins over the gateway's.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

# "truncate": drop the oldest turns until the conversation fits; "error": refuse it (400)
Policy = Literal["truncate", "error"]


class TenantWindowPolicy(BaseModel):
    """What one tenant overrides; unset fields keep the gateway's defaults."""

    model_config = ConfigDict(extra="forbid")

    policy: Policy | None = None


class WindowSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    policy: Policy = "truncate"
    # tokens kept free for the answer (at most half the context; fewer if the request's
    # max_tokens asks for fewer)
    reserve_tokens: int = Field(default=512, ge=1)
    # the estimate (4 ASCII characters or 2 UTF-8 bytes of other text a token) times this:
    # SmolLM2's tokenizer makes about 3.1 characters of English prose a token
    safety_margin: float = Field(default=1.35, ge=1.0, le=4.0)
    # a deployment's context length read from its /v1/models is trusted this long
    lookup_ttl_s: float = Field(default=300.0, gt=0)
    lookup_retry_s: float = Field(default=10.0, gt=0, description="after a failed lookup")
    lookup_timeout_s: float = Field(default=2.0, gt=0)
    tenants: dict[str, TenantWindowPolicy] = Field(default_factory=dict)

    def policy_for(self, tenant: str, alias: Policy | None = None) -> Policy:
        """The alias's policy, else the tenant's, else the gateway's."""
        override = self.tenants.get(tenant)
        return alias or (override.policy if override is not None else None) or self.policy

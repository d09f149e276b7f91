"""Policy merging, classification levels and compliance-aware routing."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from pydantic import ValidationError

from functions.errors import InvalidRequestError, NoDeploymentError, ServiceUnavailableError
from functions.filtering import (
    FilterPolicy,
    Level,
    NoCompliantDeploymentError,
    compliant_plan,
    parse_level,
    raise_level,
    route_allowed,
)
from functions.filtering.classify import highest


def test_levels_order_by_rank_not_alphabet() -> None:
    assert Level.PUBLIC < Level.INTERNAL < Level.CONFIDENTIAL < Level.SECRET
    assert max(Level.SECRET, Level.CONFIDENTIAL) is Level.SECRET
    assert highest([Level.INTERNAL], floor=Level.CONFIDENTIAL) is Level.CONFIDENTIAL


def test_the_header_can_only_raise_the_level() -> None:
    assert raise_level(Level.CONFIDENTIAL, "public") is Level.CONFIDENTIAL
    assert raise_level(Level.INTERNAL, " Secret ") is Level.SECRET
    assert raise_level(Level.INTERNAL, None) is Level.INTERNAL
    with pytest.raises(InvalidRequestError) as info:
        parse_level("top")
    assert info.value.param == "x-enclave-classification"


def test_entity_tables_merge_over_the_defaults_and_unknown_types_are_refused() -> None:
    policy = FilterPolicy(entities={"EMAIL": "allow"})
    assert policy.entities["EMAIL"] == "allow"
    assert policy.entities["PHONE"] == "mask"
    assert policy.output_entities["SECRET"] == "block"
    with pytest.raises(ValidationError):
        FilterPolicy(entities={"FAX": "mask"})


def test_a_tenant_override_is_merged_and_others_are_untouched() -> None:
    policy = FilterPolicy.model_validate(
        {
            "tenants": {
                "bank": {
                    "entities": {"BANK_CARD": "block"},
                    "extra_lexicons": ["/etc/enclave/bank.txt"],
                    "injection_threshold": 0.3,
                    "default_level": "confidential",
                }
            }
        }
    )
    bank = policy.for_tenant("bank")
    assert bank.entities["BANK_CARD"] == "block" and bank.entities["PHONE"] == "mask"
    assert bank.lexicons[-1] == "/etc/enclave/bank.txt"
    assert bank.injection_threshold == 0.3 and bank.default_level is Level.CONFIDENTIAL
    assert policy.for_tenant("other") is policy


@dataclass
class Dep:
    name: str
    location: str


def test_route_allowed_keeps_classified_requests_on_prem() -> None:
    policy = FilterPolicy()  # on-prem only from "confidential"
    assert route_allowed(Level.INTERNAL, "external", policy)
    assert not route_allowed(Level.CONFIDENTIAL, "external", policy)
    assert not route_allowed(Level.SECRET, "extrenal", policy)  # unknown location: external
    assert route_allowed(Level.SECRET, "on_prem", policy)


def test_compliant_plan_drops_external_fallbacks_and_fails_closed() -> None:
    plan = [Dep("cloud", "external"), Dep("local", "on_prem"), Dep("cloud-2", "external")]
    policy = FilterPolicy()
    assert [
        d.name for d in compliant_plan(plan, Level.CONFIDENTIAL, policy, lambda d: d.location)
    ] == ["local"]
    assert len(compliant_plan(plan, Level.PUBLIC, policy, lambda d: d.location)) == 3
    # the on-prem deployment is down (not in the plan): a clear 503, never the cloud
    with pytest.raises(NoCompliantDeploymentError) as info:
        compliant_plan(plan[::2], Level.SECRET, policy, lambda d: d.location)
    assert isinstance(info.value, NoDeploymentError | ServiceUnavailableError)
    assert info.value.status_code == 503 and info.value.code == "no_compliant_deployment"

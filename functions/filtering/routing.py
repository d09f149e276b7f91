"""Compliance-aware routing: classified requests never leave the premises.

A deployment is ``on_prem`` or ``external``; anything else (a missing or
misspelt location) counts as external, so a configuration mistake fails closed.
A request at or above ``policy.on_prem_only_at`` may only use on-prem
deployments, as its first choice *and* as a fallback: the plan is filtered before
the first attempt, and an empty plan is a 503, never a quiet leak.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Literal, TypeVar

from functions.filtering.classify import Level
from functions.filtering.policy import FilterPolicy
from functions.filtering.results import NoCompliantDeploymentError

Location = Literal["on_prem", "external"]
T = TypeVar("T")


def route_allowed(level: Level, location: str, policy: FilterPolicy) -> bool:
    """Whether a request classified ``level`` may go to a deployment at ``location``."""
    return location == "on_prem" or level < policy.on_prem_only_at


def compliant_plan(
    plan: Iterable[T], level: Level, policy: FilterPolicy, location_of: Callable[[T], str]
) -> tuple[T, ...]:
    """The deployments of ``plan`` (in order) that this request may use; 503 if none."""
    allowed = tuple(d for d in plan if route_allowed(level, location_of(d), policy))
    if not allowed:
        raise NoCompliantDeploymentError(
            f"No deployment cleared for {level.value} data is available; "
            "the request was not sent to an external provider."
        )
    return allowed

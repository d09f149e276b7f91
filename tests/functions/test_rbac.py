"""Rights only shrink: what one set of rights may grant, field by field."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from functions.errors import PermissionDeniedError
from functions.rbac import Rights, require_within

SOON = datetime(2030, 1, 1, tzinfo=UTC)
LIMITED = Rights(
    role="admin",
    models=["m1", "m2"],
    collections=["handbook"],
    rpm=10,
    tpm=100,
    daily_tokens=1000,
    expires_at=SOON,
)


@pytest.mark.parametrize(
    "granted",
    [
        Rights(
            role="member",
            models=["m1"],
            collections=[],
            rpm=1,
            tpm=100,
            daily_tokens=1,
            expires_at=SOON,
        ),
        LIMITED,
    ],
)
def test_equal_or_smaller_rights_are_granted(granted: Rights) -> None:
    require_within(LIMITED, granted)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("models", None),
        ("models", ["m3"]),
        ("collections", None),
        ("collections", ["handbook", "hr"]),
        ("rpm", None),
        ("rpm", 11),
        ("tpm", 101),
        ("daily_tokens", None),
        ("expires_at", None),
        ("expires_at", SOON + timedelta(seconds=1)),
    ],
)
def test_wider_rights_are_refused_naming_the_field(field: str, value: Any) -> None:
    granted = dataclasses.replace(LIMITED, **{field: value})
    with pytest.raises(PermissionDeniedError) as refused:
        require_within(LIMITED, granted)
    assert refused.value.param == ("expires" if field == "expires_at" else field)


@pytest.mark.parametrize(
    ("mine", "theirs", "ok"),
    [
        ("admin", "admin", True),
        ("admin", "member", True),
        ("admin", "auditor", True),
        ("member", "member", True),
        ("member", "admin", False),
        ("member", "auditor", False),
        ("auditor", "member", False),
        ("auditor", "admin", False),
        ("owner", "member", False),
    ],
)
def test_roles_are_granted_downwards_only(mine: str, theirs: str, ok: bool) -> None:
    if ok:
        require_within(Rights(role=mine), Rights(role=theirs))
    else:
        with pytest.raises(PermissionDeniedError):
            require_within(Rights(role=mine), Rights(role=theirs))


def test_an_unlimited_granter_grants_any_limit() -> None:
    require_within(Rights(role="admin"), LIMITED)
    require_within(Rights(role="admin"), Rights(role="admin"))


@pytest.mark.parametrize(
    ("granter", "ok"),
    [
        (Rights(role="admin"), True),  # an admin makes its tenant's frontend keys
        (Rights(role="member", trust_user_headers=True), True),  # a frontend, its own kind
        (Rights(role="member"), False),
        (Rights(role="auditor"), False),
    ],
)
def test_only_an_admin_or_a_frontend_grants_the_frontend_flag(granter: Rights, ok: bool) -> None:
    frontend = Rights(role=granter.role, trust_user_headers=True)
    if ok:
        require_within(granter, frontend)
    else:
        with pytest.raises(PermissionDeniedError) as refused:
            require_within(granter, frontend)
        assert refused.value.param == "trust_user_headers"


@pytest.mark.parametrize("field", ["user_rpm", "user_tpm", "user_daily_tokens"])
def test_end_user_limits_only_shrink(field: str) -> None:
    granter = Rights(role="admin", trust_user_headers=True, **{field: 10})
    require_within(granter, dataclasses.replace(granter, **{field: 10}))
    for wider in (11, None):
        with pytest.raises(PermissionDeniedError) as refused:
            require_within(granter, dataclasses.replace(granter, **{field: wider}))
        assert refused.value.param == field

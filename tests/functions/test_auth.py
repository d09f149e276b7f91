"""The authenticate step, driven with a hand-made context: the cheapest boundary."""

from __future__ import annotations

import asyncio

import pytest
from starlette.datastructures import Headers

from functions.auth import make_authenticate
from functions.context import RequestContext
from functions.errors import AuthenticationError
from functions.settings import GatewaySettings

KEY = "sk-test-" + "a" * 24
OTHER = "sk-test-" + "b" * 24


def context(*authorization: str) -> RequestContext:
    raw = [(b"authorization", value.encode()) for value in authorization]
    return RequestContext(request_id="t", headers=Headers(raw=[(b"host", b"gw"), *raw]))


def authenticate(ctx: RequestContext, keys: list[str]) -> RequestContext:
    step = make_authenticate(GatewaySettings(api_keys=keys))
    return asyncio.run(step(ctx))


@pytest.mark.parametrize("key", [KEY, OTHER])
def test_a_configured_key_sets_the_principal(key: str) -> None:
    before = context(f"Bearer {key}")
    after = authenticate(before, [KEY, OTHER])
    assert after.principal is not None
    assert after.decisions == {"auth": "bootstrap-key"}
    assert after.principal.role == "admin" and after.principal.tenant == "default"
    assert before.principal is None  # the context is frozen: a new one is returned
    key_id = after.principal.key_id
    assert key_id and key not in key_id and key_id not in key


def test_each_key_has_its_own_stable_fingerprint() -> None:
    first = authenticate(context(f"Bearer {KEY}"), [KEY, OTHER]).principal
    again = authenticate(context(f"Bearer {KEY}"), [KEY, OTHER]).principal
    other = authenticate(context(f"Bearer {OTHER}"), [KEY, OTHER]).principal
    assert first is not None and again is not None and other is not None
    assert first.key_id == again.key_id != other.key_id


def test_the_scheme_is_case_insensitive() -> None:
    assert authenticate(context(f"bearer {KEY}"), [KEY]).principal is not None


@pytest.mark.parametrize(
    "headers",
    [
        (f"Bearer {OTHER}",),
        (f"Bearer {KEY}x",),
        (f"Bearer {KEY[:-1]}",),
        (),
        (f"Basic {KEY}",),
        (KEY,),
        ("Bearer",),
        ("Bearer ",),
        ("Bearer    ",),
        ("",),
        (f"Bearer {KEY}", f"Bearer {KEY}"),
        (f"Bearer {KEY}", f"Bearer {OTHER}"),
    ],
    ids=[
        "wrong-key",
        "key-plus-char",
        "key-prefix",
        "missing",
        "basic",
        "no-scheme",
        "bearer-alone",
        "empty-bearer",
        "blank-bearer",
        "empty-header",
        "twice-same",
        "twice-diff",
    ],
)
def test_bad_credentials_are_401(headers: tuple[str, ...]) -> None:
    with pytest.raises(AuthenticationError) as caught:
        authenticate(context(*headers), [KEY])
    assert caught.value.status_code == 401
    assert caught.value.code == "invalid_api_key"
    assert KEY not in caught.value.message


def test_two_authorization_headers_are_refused_even_when_both_are_right() -> None:
    ctx = RequestContext(
        request_id="t",
        headers=Headers(raw=[(b"authorization", b"Bearer k"), (b"authorization", b"Bearer k")]),
    )
    with pytest.raises(AuthenticationError):
        authenticate(ctx, ["k"])


@pytest.mark.parametrize("token", [KEY, "", "none", "null"])
def test_with_no_keys_configured_everything_is_refused(token: str) -> None:
    with pytest.raises(AuthenticationError):
        authenticate(context(f"Bearer {token}"), [])

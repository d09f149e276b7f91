"""Failed logins, step by step: the reason each refusal is counted under, the address it
counts against, and the throttle's window, cool-off and bounded table (a fake clock)."""

from __future__ import annotations

import asyncio
import base64
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from loguru import logger
from prometheus_client import CollectorRegistry
from starlette.datastructures import Headers

from functions.auth import make_authenticate
from functions.context import Principal, RequestContext
from functions.errors import AuthenticationError, TooManyFailedLoginsError
from functions.keys import KeyRecord, KeySpec, KeyStore, LocalKeys
from functions.logins import REASONS, LoginThrottle, LoginThrottleSettings, client_address
from functions.settings import GatewaySettings

KEY = "sk-test-" + "a" * 24


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def headers(*pairs: tuple[str, str]) -> Headers:
    return Headers(raw=[(k.encode(), v.encode()) for k, v in pairs])


def jwt_like() -> str:
    head = base64.urlsafe_b64encode(orjson.dumps({"alg": "RS256", "kid": "k"})).rstrip(b"=")
    return f"{head.decode()}.e30.c2ln"


def throttle(clock: Clock | None = None, **settings: object) -> LoginThrottle:
    config = LoginThrottleSettings.model_validate(settings)
    return LoginThrottle(config, CollectorRegistry(), clock or Clock())


def failures(logins: LoginThrottle, reason: str) -> float:
    return logins.failures.labels(reason)._value.get()


def refused_reason(logins: LoginThrottle, step_headers: Headers, keys: KeyStore | None) -> str:
    async def verify(token: str) -> Principal:
        raise AuthenticationError("The token is malformed.")  # an issuer's own refusal

    step = make_authenticate(GatewaySettings(api_keys=[KEY]), keys, verify, logins)
    ctx = RequestContext(request_id="t", headers=step_headers, client="192.0.2.7")
    before = {r: failures(logins, r) for r in REASONS}
    with pytest.raises(AuthenticationError) as refused:
        asyncio.run(step(ctx))
    assert refused.value.status_code == 401
    (counted,) = [r for r in REASONS if failures(logins, r) == before[r] + 1]
    assert counted == refused.value.reason
    return counted


def test_each_refusal_is_counted_under_its_reason(tmp_path: Path) -> None:
    keys = KeyStore(LocalKeys(tmp_path), b"p" * 32, reload_s=1)
    revoked, record = keys.create(KeySpec(tenant="acme"))
    keys.revoke(record.id)
    expired, record = keys.create(KeySpec(tenant="acme", expires="1m"))

    def its_minute_has_passed(records: list[KeyRecord]) -> None:
        past = datetime.now(UTC) - timedelta(minutes=1)
        records[-1] = records[-1].model_copy(update={"expires_at": past})

    keys.update(its_minute_has_passed)
    logins = throttle(failures=0)  # counting only
    cases = {
        "missing": headers(),
        "malformed": headers(("authorization", f"Basic {KEY}")),
        "unknown": headers(("authorization", "Bearer sk-enc-guess")),
        "revoked": headers(("authorization", f"Bearer {revoked}")),
        "expired": headers(("authorization", f"Bearer {expired}")),
        "token_invalid": headers(("authorization", f"Bearer {jwt_like()}")),
    }
    for reason, sent in cases.items():
        assert refused_reason(logins, sent, keys) == reason
    two = headers(("authorization", f"Bearer {KEY}"), ("authorization", f"Bearer {KEY}"))
    assert refused_reason(logins, two, keys) == "malformed"
    assert logins.tracked == 0  # failures=0: counted, never throttled


def test_the_reason_label_set_is_fixed() -> None:
    logins = throttle()
    logins.failed("192.0.2.1", "sk-enc-something-a-caller-sent")
    assert failures(logins, "other") == 1
    labels = {s.labels["reason"] for m in logins.failures.collect() for s in m.samples}
    assert labels == set(REASONS)


def test_ten_failures_within_the_window_throttle_the_address() -> None:
    clock = Clock()
    logins = throttle(clock, failures=10, window_s=60, cooloff_s=30)
    for _ in range(9):
        logins.failed("192.0.2.1", "unknown")
        clock.now += 6
    logins.check("192.0.2.1")  # nine: still welcome
    logins.failed("192.0.2.1", "unknown")  # the tenth, 54 s after the first
    with pytest.raises(TooManyFailedLoginsError) as refused:
        logins.check("192.0.2.1")
    error = refused.value
    assert (error.status_code, error.type, error.code) == (
        429,
        "rate_limit_error",
        "too_many_failed_logins",
    )
    assert error.headers == {"retry-after": "30"}
    logins.check("192.0.2.2")  # another address is not touched
    clock.now += 29.5
    with pytest.raises(TooManyFailedLoginsError) as refused:
        logins.check("192.0.2.1")
    assert refused.value.headers == {"retry-after": "1"}
    assert logins.throttled._value.get() == 2
    clock.now += 1
    logins.check("192.0.2.1")  # cooled off: may try again, with a fresh count
    logins.failed("192.0.2.1", "unknown")
    logins.check("192.0.2.1")


def test_failures_spread_wider_than_the_window_are_not_throttled() -> None:
    clock = Clock()
    logins = throttle(clock, failures=3, window_s=10)
    for _ in range(10):
        logins.failed("192.0.2.1", "unknown")
        clock.now += 5.01  # three failures span 10.02 s
        logins.check("192.0.2.1")


def test_the_table_is_bounded_and_forgets_the_least_recently_failing() -> None:
    logins = throttle(failures=2, max_addresses=3)
    logins.failed("192.0.2.1", "unknown")
    for n in range(2, 1000):  # an attacker rotating addresses
        logins.failed(f"198.51.100.{n % 250}", "unknown")
        assert logins.tracked <= 3
    assert logins.tracked == 3
    logins.failed("192.0.2.1", "unknown")  # forgotten: its first failure again
    logins.check("192.0.2.1")


def test_throttling_starts_with_one_warning() -> None:
    records: list[dict[str, object]] = []
    sink = logger.add(lambda m: records.append(dict(m.record)), level="WARNING")
    try:
        logins = throttle(failures=2)
        for _ in range(2):
            logins.failed("192.0.2.1", "unknown")
        for _ in range(5):
            with pytest.raises(TooManyFailedLoginsError):
                logins.check("192.0.2.1")
    finally:
        logger.remove(sink)
    assert [r["message"] for r in records] == [
        "login: 192.0.2.1 throttled for 60 s after 2 failed logins"
    ]
    assert records[0]["extra"] == {"client": "192.0.2.1", "cooloff_s": 60.0, "failures": 2}


PROXIES = LoginThrottleSettings.model_validate(
    {"trusted_proxies": ["10.0.0.1", "10.1.0.0/16"]}
).trusted_proxies


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        ("192.0.2.7", [], "192.0.2.7"),
        ("192.0.2.7", ["198.51.100.1"], "192.0.2.7"),  # an untrusted peer: header ignored
        ("10.0.0.1", [], "10.0.0.1"),
        ("10.0.0.1", ["198.51.100.1"], "198.51.100.1"),
        ("10.0.0.1", ["6.6.6.6, 198.51.100.1"], "198.51.100.1"),  # the left is the caller's
        ("10.0.0.1", ["6.6.6.6, 198.51.100.1, 10.1.2.3"], "198.51.100.1"),  # proxies skipped
        ("10.0.0.1", ["6.6.6.6", "198.51.100.1"], "198.51.100.1"),  # two headers, one list
        ("10.0.0.1", ["10.1.0.9, 10.1.0.8"], "10.1.0.9"),  # proxies all the way
        ("10.0.0.1", ["not-an-ip"], "not-an-ip"),
        ("2001:db8:1:2:3:4:5:6", [], "2001:db8:1:2::/64"),  # one host's /64
        ("::ffff:192.0.2.9", [], "192.0.2.9"),
        (None, [], "unknown"),
    ],
)
def test_the_client_address(peer: str | None, forwarded: list[str], expected: str) -> None:
    sent = headers(*[("x-forwarded-for", value) for value in forwarded])
    assert client_address(peer, sent, PROXIES) == expected

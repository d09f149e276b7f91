"""Failed logins against a real gateway (``enclave serve gateway`` on 127.0.0.1).

Each caller is its own loopback address (127.0.0.x: Linux routes the whole /8 to
``lo``), so one can be throttled while another carries on. The one deployment points
at the discard port: every route used here answers without a model server.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from openai import OpenAI

from tests.conftest import API_KEY, Server, gateway_env, start
from tests.openapi import validate

UNREACHABLE = {"name": "d1", "model": "m1", "api_base": "http://127.0.0.1:9/v1"}
WRONG = "sk-enc-" + "x" * 43
COOLOFF_S = 2


def throttled_gateway(log_dir: Path, **throttle: object) -> Iterator[Server]:
    env = gateway_env([UNREACHABLE], ENCLAVE_GATEWAY_LOGIN_THROTTLE=json.dumps(throttle))
    server = start("gateway", env, log_dir)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def gateway(log_dir: Path) -> Iterator[Server]:
    """The default thresholds (10 failures within 60 s), a short cool-off."""
    yield from throttled_gateway(log_dir, cooloff_s=COOLOFF_S)


@pytest.fixture(scope="module")
def proxied(log_dir: Path) -> Iterator[Server]:
    """Behind a trusted proxy at 127.0.0.1; three failures, four addresses tracked."""
    yield from throttled_gateway(
        log_dir, failures=3, cooloff_s=60, max_addresses=4, trusted_proxies=["127.0.0.1"]
    )


def http(source: str) -> httpx.Client:
    return httpx.Client(transport=httpx.HTTPTransport(local_address=source), timeout=30)


def sdk(server: Server, source: str, key: str) -> OpenAI:
    return OpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0, http_client=http(source))


def get(server: Server, source: str, key: str, **headers: str) -> httpx.Response:
    with http(source) as client:
        return client.get(
            f"{server.url}/v1/models", headers={"authorization": f"Bearer {key}", **headers}
        )


def metric(server: Server, name: str) -> float:
    """One sample from /metrics, scraped as Prometheus would, with the admin's key."""
    with http("127.0.0.9") as client:
        text = client.get(f"{server.url}/metrics", headers={"authorization": f"Bearer {API_KEY}"})
    match = re.search(rf"^{re.escape(name)} (\S+)$", text.text, re.MULTILINE)
    assert match, f"{name} not in /metrics"
    return float(match[1])


def assert_throttled(response: httpx.Response) -> int:
    assert response.status_code == 429, response.text
    validate("ErrorResponse", response.json())
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("rate_limit_error", "too_many_failed_logins")
    retry_after = int(response.headers["retry-after"])
    assert retry_after >= 1
    return retry_after


def test_wrong_keys_from_one_address_are_throttled_and_counted(gateway: Server) -> None:
    unknown = metric(gateway, 'enclave_gateway_auth_failures_total{reason="unknown"}')
    with sdk(gateway, "127.0.0.2", WRONG) as attacker, sdk(gateway, "127.0.0.3", API_KEY) as good:
        for _ in range(10):
            with pytest.raises(openai.AuthenticationError):
                attacker.models.list()
            assert [m.id for m in good.models.list()] == ["m1"]  # meanwhile, unaffected
        with pytest.raises(openai.RateLimitError) as refused:
            attacker.models.list()
        retry_after = assert_throttled(refused.value.response)
        assert retry_after <= COOLOFF_S
        # refused before the key is read: the right key does not help either
        assert_throttled(get(gateway, "127.0.0.2", API_KEY))
        chat = {"model": "m1", "messages": [{"role": "user", "content": "hi"}]}
        with http("127.0.0.2") as client:
            posted = client.post(
                f"{gateway.url}/v1/chat/completions",
                json=chat,
                headers={"authorization": f"Bearer {API_KEY}"},
            )
        assert_throttled(posted)
        assert [m.id for m in good.models.list()] == ["m1"]
    assert metric(gateway, 'enclave_gateway_auth_failures_total{reason="unknown"}') == unknown + 10
    assert metric(gateway, "enclave_gateway_auth_throttled_total") >= 3
    assert gateway.logged(lambda line: "127.0.0.2 throttled" in line.get("message", ""))
    warnings = [line for line in gateway.logs() if "127.0.0.2 throttled" in line["message"]]
    assert len(warnings) == 1  # when throttling starts, not once per refusal

    time.sleep(retry_after)  # the cool-off: the address may try again
    assert get(gateway, "127.0.0.2", API_KEY).status_code == 200


def test_reasons_are_labelled_and_process_figures_exported(gateway: Server) -> None:
    missing = metric(gateway, 'enclave_gateway_auth_failures_total{reason="missing"}')
    with http("127.0.0.4") as client:
        assert client.get(f"{gateway.url}/v1/models").status_code == 401
        assert client.get(f"{gateway.url}/health").status_code == 200  # liveness: no key
    assert metric(gateway, 'enclave_gateway_auth_failures_total{reason="missing"}') == missing + 1
    assert metric(gateway, "process_cpu_seconds_total") > 0
    assert metric(gateway, "process_resident_memory_bytes") > 0


def test_forwarded_for_is_ignored_from_an_untrusted_peer(gateway: Server) -> None:
    for n in range(10):  # a new X-Forwarded-For each time: the socket's address counts
        forwarded = {"x-forwarded-for": f"6.6.6.{n}"}
        assert get(gateway, "127.0.0.5", WRONG, **forwarded).status_code == 401
    assert_throttled(get(gateway, "127.0.0.5", API_KEY, **{"x-forwarded-for": "6.6.6.99"}))


def test_forwarded_for_is_honoured_from_a_trusted_proxy(proxied: Server) -> None:
    proxy = "127.0.0.1"
    for _ in range(3):  # the proxy appends what it saw; the left entry is the caller's own
        forwarded = {"x-forwarded-for": "1.2.3.4, 203.0.113.1"}
        assert get(proxied, proxy, WRONG, **forwarded).status_code == 401
    throttled = {"x-forwarded-for": "9.9.9.9, 203.0.113.1"}
    assert_throttled(get(proxied, proxy, API_KEY, **throttled))
    # the proxy itself, and every other client behind it, carry on
    assert get(proxied, proxy, API_KEY).status_code == 200
    other = {"x-forwarded-for": "203.0.113.2"}
    assert get(proxied, proxy, API_KEY, **other).status_code == 200
    # a peer that is not the proxy cannot borrow (or blame) a throttled address
    assert get(proxied, "127.0.0.6", API_KEY, **{"x-forwarded-for": "203.0.113.1"}).is_success


def test_the_tracked_addresses_stay_bounded(proxied: Server) -> None:
    for n in range(40):  # an attacker rotating addresses behind the proxy
        forwarded = {"x-forwarded-for": f"198.51.100.{n}"}
        assert get(proxied, "127.0.0.1", WRONG, **forwarded).status_code == 401
    assert metric(proxied, "enclave_gateway_auth_tracked_addresses") == 4

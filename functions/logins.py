"""Failed logins: counted by reason, and an address that keeps failing is refused a while.

Every refused credential counts in ``enclave_gateway_auth_failures_total{reason}``,
``reason`` one of :data:`REASONS` (never the key). An address with ``failures``
failed logins within ``window_s`` seconds is throttled: for ``cooloff_s`` seconds
each of its requests is a 429 ``too_many_failed_logins`` with ``Retry-After``, given
*before* its credential is looked at, so it cannot keep guessing; each counts in
``enclave_gateway_auth_throttled_total``, and one warning is logged when the
throttling starts. A good key from the address does not reset its count: an attacker
holding one key of their own could otherwise interleave it to guess for ever.

The address is the socket peer's; ``X-Forwarded-For`` is believed only when the peer
is one of ``trusted_proxies``, and then the right-most entry that is not itself a
trusted proxy is the client. IPv6 addresses count by their /64 (one host's usual
share), so an attacker cannot walk through its own prefix.

Cost: a dict look-up per request, a deque append per failure. Memory: at most
``max_addresses`` addresses, each with at most ``failures`` timestamps; past that the
address that failed least recently is forgotten first (gauge
``enclave_gateway_auth_tracked_addresses``).
"""

from __future__ import annotations

import functools
import ipaddress
import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from loguru import logger
from prometheus_client import CollectorRegistry, Counter, Gauge
from pydantic import BaseModel, Field, IPvAnyNetwork
from starlette.datastructures import Headers

from functions.errors import TooManyFailedLoginsError

# why a credential was refused; a fixed set, so the metric's label set stays bounded
REASONS = ("missing", "malformed", "unknown", "revoked", "expired", "token_invalid", "other")

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class LoginThrottleSettings(BaseModel):
    """``ENCLAVE_GATEWAY_LOGIN_THROTTLE='{"failures": 10, "window_s": 60, …}'``."""

    failures: int = Field(default=10, ge=0, description="within window_s; 0: never throttle")
    window_s: float = Field(default=60.0, gt=0)
    cooloff_s: float = Field(default=60.0, gt=0, description="how long an address is refused")
    max_addresses: int = Field(default=10_000, ge=1, description="addresses tracked at once")
    # peers whose X-Forwarded-For is believed (a load balancer's IPs or CIDRs); empty: none
    trusted_proxies: list[IPvAnyNetwork] = Field(default_factory=list)


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        ip = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def client_address(peer: str | None, headers: Headers, trusted: Sequence[IPNetwork]) -> str:
    """The address a login counts against (IPv6: its /64), as text."""
    if not trusted:  # no proxy believed: the peer alone decides, and a peer comes again
        return _peer_address(peer)
    return _address(peer, headers, trusted)


@functools.lru_cache(maxsize=4096)
def _peer_address(peer: str | None) -> str:
    """Parsing an address costs more than the rest of authentication: once per peer."""
    return _address(peer, Headers(), ())


def _address(peer: str | None, headers: Headers, trusted: Sequence[IPNetwork]) -> str:
    ip = _ip(peer) if peer else None
    if ip is None:
        return (peer or "unknown")[:64]
    if any(ip in net for net in trusted):
        hops = [h for v in headers.getlist("x-forwarded-for") for h in v.split(",")]
        for hop in reversed(hops):
            hop_ip = _ip(hop)
            if hop_ip is None:  # not an address: what the proxy says the client is
                return hop.strip()[:64] or str(ip)
            ip = hop_ip
            if not any(hop_ip in net for net in trusted):
                break
    if isinstance(ip, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


@dataclass(slots=True)
class _Tracked:
    times: deque[float]  # the latest failures, at most `failures` of them
    blocked_until: float = field(default=0.0)


class LoginThrottle:
    """Counts failed logins per address and refuses an address that failed too often."""

    def __init__(
        self,
        settings: LoginThrottleSettings,
        registry: CollectorRegistry,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self._clock = clock
        self._trusted: tuple[IPNetwork, ...] = tuple(settings.trusted_proxies)
        self._tracked: OrderedDict[str, _Tracked] = OrderedDict()
        self.failures = Counter(
            "enclave_gateway_auth_failures",
            "Refused credentials, by reason",
            ["reason"],
            registry=registry,
        )
        for reason in REASONS:  # every series exists from the start (rate() needs a zero)
            self.failures.labels(reason)
        self.throttled = Counter(
            "enclave_gateway_auth_throttled",
            "Requests refused because their address failed to log in too often",
            registry=registry,
        )
        tracked = Gauge(
            "enclave_gateway_auth_tracked_addresses",
            "Addresses with recent failed logins",
            registry=registry,
        )
        tracked.set_function(lambda: len(self._tracked))

    def address(self, peer: str | None, headers: Headers) -> str:
        return client_address(peer, headers, self._trusted)

    def check(self, address: str) -> None:
        """Raise 429 while ``address`` is cooling off."""
        entry = self._tracked.get(address)
        if entry is None or not entry.blocked_until:
            return
        wait = entry.blocked_until - self._clock()
        if wait <= 0:
            entry.blocked_until = 0.0
            return
        self.throttled.inc()
        raise TooManyFailedLoginsError(
            "Too many failed logins from this address; try again later.",
            headers={"retry-after": str(max(1, math.ceil(wait)))},
        )

    def failed(self, address: str, reason: str) -> None:
        """Count one refused credential from ``address``."""
        self.failures.labels(reason if reason in REASONS else "other").inc()
        limit = self.settings.failures
        if limit == 0:
            return
        entry = self._tracked.get(address)
        if entry is None:
            if len(self._tracked) >= self.settings.max_addresses:
                self._tracked.popitem(last=False)  # the least recently failing
            entry = self._tracked[address] = _Tracked(deque(maxlen=limit))
        else:
            self._tracked.move_to_end(address)
        now = self._clock()
        entry.times.append(now)
        if len(entry.times) == limit and now - entry.times[0] <= self.settings.window_s:
            entry.times.clear()
            entry.blocked_until = now + self.settings.cooloff_s
            logger.warning(
                "login: {client} throttled for {cooloff_s:g} s after {failures} failed logins",
                client=address,
                cooloff_s=self.settings.cooloff_s,
                failures=limit,
            )

    @property
    def tracked(self) -> int:
        return len(self._tracked)

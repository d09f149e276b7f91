"""Prometheus metrics, one registry per app (no process-global registry).

The gateway and the node share one set of names under their own prefix
(``enclave_gateway_…``, ``enclave_node_…``); later steps add their own counters
to the same registry through :attr:`Metrics.registry`. Each registry also carries
the process's own figures (``process_cpu_seconds_total``,
``process_resident_memory_bytes``, … and ``python_info``), so CPU and memory alerts
need no extra exporter.
"""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

# seconds; from a cache hit on a warm node to a long CPU generation (2: the latency alert)
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 2.5, 5, 10, 30, 60, 120)


class Metrics:
    def __init__(self, service: str) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        p = f"enclave_{service}"
        r = self.registry
        ProcessCollector(registry=r)  # from /proc: Linux only, absent (no error) elsewhere
        PlatformCollector(registry=r)
        self.requests = Counter(
            f"{p}_requests",
            "Requests answered",
            ["route", "model", "deployment", "status"],
            registry=r,
        )
        self.latency = Histogram(
            f"{p}_request_seconds",
            "Time to the last byte",
            ["route", "model"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.ttft = Histogram(
            f"{p}_time_to_first_token_seconds",
            "Time to the first streamed token",
            ["model", "deployment"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.tokens = Counter(
            f"{p}_tokens",
            "Tokens in (prompt) and out (completion)",
            ["model", "deployment", "direction"],
            registry=r,
        )
        self.upstream_errors = Counter(
            f"{p}_upstream_errors",
            "Failed upstream attempts",
            ["deployment", "reason"],
            registry=r,
        )
        self.fallbacks = Counter(
            f"{p}_fallbacks",
            "Requests answered by a later deployment than planned first",
            ["model", "from_deployment", "to_deployment"],
            registry=r,
        )
        self.queue_depth = Gauge(f"{p}_queue_depth", "Requests waiting for capacity", registry=r)
        self.in_flight = Gauge(f"{p}_in_flight", "Requests being generated", registry=r)

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

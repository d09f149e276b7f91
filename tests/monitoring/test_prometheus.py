"""The dashboard and the alert rules, proven against a real Prometheus scraping a real gateway
and a real node (llama.cpp, the session's node fixture).

Prometheus (Debian package ``prometheus``; ``just test`` installs it) runs on 127.0.0.1 with
the shipped ``infra/monitoring/prometheus.yml`` — only the targets and a one-second scrape
interval changed — and the shipped rules; the gateway is scraped with a stored auditor's
key. Traffic: answered chats (plain and streamed), one answered by a fallback (its first
deployment is a path the node does not serve), wrong keys, a malformed body and an
unknown model. Then every dashboard query and every alert expression goes through
``/api/v1/query``: each must parse, and return at least one series.

An alert expression is naturally empty while nothing is wrong (``x > 0.85``), so what must
return series is its left-hand side: the expression with its final comparison cut off
(:func:`left_hand_side`), or the probe named in :data:`PROBES`. Prometheus' own evaluation
of every rule must also be healthy (a vector-matching error shows only on real data).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.conftest import (
    API_KEY,
    NODE_MODEL,
    ROOT,
    Server,
    create_key,
    deployment,
    free_port,
    gateway_env,
    start,
)

MONITORING = ROOT / "infra" / "monitoring"
DASHBOARD = MONITORING / "grafana" / "enclave.json"
RULES = MONITORING / "alerts.yml"
CHAT = "/v1/chat/completions"
QUESTION = [{"role": "user", "content": "Say hi."}]
# what Grafana substitutes into the queries
GRAFANA_VARIABLES = {
    "$__rate_interval": "1m",
    "$__range": "1h",
    "$model": ".*",
    "$job": "enclave.*",
}

# Alerts whose left-hand side is not the expression minus its last comparison.
PROBES = {
    # "rate > 0.85 and on (…) group by (…)": the rate, restricted to Enclave's processes
    "EnclaveHighCpu": (
        "rate(process_cpu_seconds_total[1m]) and on (job, instance)"
        ' group by (job, instance) ({__name__=~"enclave_(gateway|node)_in_flight"})'
    ),
    # "increase(x) > 0 or new(x) > 0": the counter has no series until the first loss, so the
    # probe is that the gateway exposes its family (HELP and TYPE, in Prometheus' metadata)
    "EnclaveAuditRecordsLost": "metadata:enclave_gateway_audit_failures_total",
}

# Metrics the rules and dashboard use that the services do not export yet, and why; a
# query that finds no series because of one is an expected failure, not a pass.
PENDING: dict[str, str] = {}

_COMPARISON = re.compile(r"\s*(?:>=|<=|==|!=|>|<)\s*[0-9.]+\s*$")
_METRIC = re.compile(r"\b(?:enclave|process)_[a-z_]+\b|\bup\b")


def left_hand_side(alert: str, expr: str) -> str:
    if alert in PROBES:
        return PROBES[alert]
    lhs = _COMPARISON.sub("", expr.strip())
    assert lhs != expr.strip(), f"{alert}: no final comparison to cut; add it to PROBES"
    return lhs


def alert_rules() -> dict[str, str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return {r["alert"]: r["expr"] for g in groups for r in g["rules"] if "alert" in r}


def dashboard_queries() -> dict[str, str]:
    queries = {}
    for panel in json.loads(DASHBOARD.read_text())["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for variable, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(variable, value)
            assert "$" not in expr, f"unsubstituted variable in {panel['title']!r}: {expr}"
            queries[f"{panel['title']} [{target['refId']}]"] = expr
    return queries


@dataclass
class Prometheus:
    url: str
    proc: subprocess.Popen[bytes]
    log: Path

    def api(self, path: str, **params: str) -> Any:
        response = httpx.get(f"{self.url}/api/v1/{path}", params=params, timeout=30)
        body = response.json()
        assert body["status"] == "success", (path, params, body)
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        data = self.api("query", query=expr)
        result: list[dict[str, Any]] = data["result"]
        return result

    def known(self, metric: str) -> bool:
        """Whether a target exposes ``metric``: a series, or its family's HELP and TYPE."""
        if self.api("series", **{"match[]": metric}):
            return True
        family = re.sub(r"_(bucket|count|sum)$", "", metric)
        return any(self.api("targets/metadata", metric=name) for name in {metric, family})

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    assert binary, "promtool is needed: sudo apt-get install prometheus (or `just test`)"
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=60, cwd=cwd)


def poll(what: str, check: Any, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def layout(root: Path, gateway_key: str, gateway: Server, node: Server) -> Path:
    """The shipped config and rules under ``root`` as in the repository, keys where they point,
    scraping ``gateway`` and ``node`` every second. Returns the config's path."""
    config = yaml.safe_load((MONITORING / "prometheus.yml").read_text())
    config["global"] = {"scrape_interval": "1s", "scrape_timeout": "1s"}
    config["global"]["evaluation_interval"] = "1s"
    targets = {"enclave-gateway": gateway, "enclave-node": node}
    for job in config["scrape_configs"]:
        job["static_configs"] = [{"targets": [f"127.0.0.1:{targets[job['job_name']].port}"]}]
    here = root / "infra" / "monitoring"
    here.mkdir(parents=True)
    (root / ".enclave").mkdir()
    (root / ".enclave" / "metrics_key").write_text(gateway_key)
    (root / ".enclave" / "node_key").write_text("unused: this node takes no key")
    shutil.copy(RULES, here / "alerts.yml")
    shutil.copy(MONITORING / "prometheus.yml", here / "shipped.yml")
    (here / "prometheus.yml").write_text(yaml.safe_dump(config))
    return here / "prometheus.yml"


def launch_prometheus(config: Path, storage: Path, log: Path) -> Prometheus:
    binary = shutil.which("prometheus")
    assert binary, "prometheus is needed: sudo apt-get install prometheus (or `just test`)"
    port = free_port()
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={storage}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    server = Prometheus(f"http://127.0.0.1:{port}", proc, log)

    def ready() -> bool:
        assert proc.poll() is None, log.read_text()[-3000:]
        try:
            return httpx.get(f"{server.url}/-/ready", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    try:
        poll("prometheus to start", ready, timeout=60)
    except BaseException:
        server.stop()
        raise
    return server


def drive(gateway: Server) -> None:
    """Answered chats (one by a fallback, one streamed), a 503 (the only deployment fails),
    wrong keys, a 400 and a 404."""
    url, auth = f"{gateway.url}{CHAT}", {"authorization": f"Bearer {API_KEY}"}
    with httpx.Client(timeout=120) as client:
        for model in ("smollm2", "primary"):
            body = {"model": model, "messages": QUESTION, "max_tokens": 2}
            assert client.post(url, json=body, headers=auth).status_code == 200
        streamed = {"model": "smollm2", "messages": QUESTION, "max_tokens": 4, "stream": True}
        with client.stream("POST", url, json=streamed, headers=auth) as response:
            assert response.status_code == 200
            response.read()
        broken = {"model": "broken", "messages": QUESTION, "max_tokens": 2}
        assert client.post(url, json=broken, headers=auth).status_code == 503
        for n in range(3):
            wrong = {"authorization": f"Bearer sk-wrong-{n}-" + "x" * 24}
            assert client.post(url, json=body, headers=wrong).status_code == 401
        assert client.post(url, content=b"{not json", headers=auth).status_code == 400
        unknown = {"model": "no-such-model", "messages": QUESTION}
        assert client.post(url, json=unknown, headers=auth).status_code == 404


@pytest.fixture(scope="module")
def prometheus(
    node: Server, log_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Prometheus]:
    port = free_port()
    auditor = create_key(log_dir / f"data-gateway-{port}", "ops", "--role", "auditor")
    # answers 404 (a path the node does not serve) but its health probe says it is warm
    flaky = {"model": "primary", "health_url": f"{node.url}/health"}
    env = gateway_env(
        [
            deployment("local-cpu", node),
            deployment("flaky", f"{node.url}/nowhere", **flaky),
            deployment("dead", f"{node.url}/nowhere", **{**flaky, "model": "broken"}),
        ],
        ENCLAVE_GATEWAY_FALLBACKS=json.dumps({"primary": ["smollm2"]}),
    )
    gateway = start("gateway", env, log_dir, port=port)
    root = tmp_path_factory.mktemp("prometheus")
    server: Prometheus | None = None
    try:
        config = layout(root, auditor, gateway, node)
        for checked in ("shipped.yml", "prometheus.yml"):
            done = promtool("check", "config", checked, cwd=config.parent)
            assert done.returncode == 0, done.stdout + done.stderr
        server = launch_prometheus(config, root / "tsdb", log_dir / "prometheus.log")
        drive(gateway)
        wait_for_scrapes(server)
        yield server
    finally:
        if server is not None:
            server.stop()
        gateway.stop()


def wait_for_scrapes(server: Prometheus) -> None:
    """Both targets up with the key, the traffic's series seen over several scrapes, and
    every rule evaluated since."""

    def up() -> bool:
        return sorted(float(s["value"][1]) for s in server.query('up{job=~"enclave.*"}')) == [
            1.0,
            1.0,
        ]

    poll("both targets to be scraped", up)
    poll(
        "several scrapes of the traffic",
        lambda: bool(server.query("count_over_time(enclave_gateway_fallbacks_total[1m]) >= 5")),
    )
    after = time.time() + 1  # whole seconds below

    def evaluated() -> bool:
        rules = [r for g in server.api("rules")["groups"] for r in g["rules"]]
        return bool(rules) and all(
            r["lastEvaluation"] and _seconds(r["lastEvaluation"]) > after for r in rules
        )

    poll("every rule to be evaluated", evaluated)


def _seconds(rfc3339: str) -> float:
    """Whole seconds of Prometheus' timestamps (nanosecond fractions are beyond Python's)."""
    return datetime.fromisoformat(re.sub(r"\.\d+", "", rfc3339).replace("Z", "+00:00")).timestamp()


def expect_series(server: Prometheus, expr: str) -> None:
    """``expr`` parses and returns at least one series (a pending metric: expected failure)."""
    if expr.startswith("metadata:"):
        metric = expr.removeprefix("metadata:")
        assert server.known(metric), f"no target exposes {metric}"
        return
    if server.query(expr):
        return
    missing = sorted({m for m in _METRIC.findall(expr) if m in PENDING and not server.known(m)})
    if missing:
        pytest.xfail("; ".join(f"{m} not exported yet: {PENDING[m]}" for m in missing))
    raise AssertionError(f"no series for: {expr}")


@pytest.mark.parametrize("expr", dashboard_queries().values(), ids=dashboard_queries().keys())
def test_dashboard_query_returns_series(prometheus: Prometheus, expr: str) -> None:
    expect_series(prometheus, expr)


@pytest.mark.parametrize("alert", alert_rules())
def test_alert_expression_parses_and_its_measure_returns_series(
    prometheus: Prometheus, alert: str
) -> None:
    expr = alert_rules()[alert]
    prometheus.query(expr)  # the whole rule parses and evaluates (empty while all is well)
    expect_series(prometheus, left_hand_side(alert, expr))


def test_prometheus_evaluates_every_rule_cleanly(prometheus: Prometheus) -> None:
    rules = [r for g in prometheus.api("rules")["groups"] for r in g["rules"]]
    assert {r["name"] for r in rules} == set(alert_rules())
    assert [(r["name"], r["lastError"]) for r in rules if r["health"] != "ok"] == []


def test_every_metric_named_is_exported_or_pending(prometheus: Prometheus) -> None:
    exprs = [*dashboard_queries().values(), *alert_rules().values()]
    names = {m for expr in exprs for m in _METRIC.findall(expr)}
    unknown = sorted(m for m in names if m not in PENDING and not prometheus.known(m))
    assert unknown == []


def test_the_gateway_was_scraped_with_the_auditors_key(prometheus: Prometheus) -> None:
    targets = prometheus.api("targets")["activeTargets"]
    [target] = [t for t in targets if t["labels"]["job"] == "enclave-gateway"]
    assert target["health"] == "up" and not target["lastError"]
    assert prometheus.query('enclave_gateway_requests_total{model="smollm2", status="200"}')
    assert prometheus.query(f'enclave_node_tokens_total{{model="{NODE_MODEL}"}}')

"""The node's /metrics carries its process's own figures: CPU alerts need no other exporter."""

from __future__ import annotations

import httpx

from functions.settings import Settings
from inference_node.server import create_app
from tests.inference_node.test_server_inprocess import Client, EchoEngine, drive


def test_metrics_carry_process_and_platform_figures() -> None:
    app = create_app(Settings(), engine=EchoEngine())

    async def scenario(client: Client) -> httpx.Response:
        return await client.get("/metrics")

    metrics: httpx.Response = drive(app, scenario)
    assert metrics.status_code == 200
    names = {line.split("{")[0].split(" ")[0] for line in metrics.text.splitlines()}
    assert {"process_cpu_seconds_total", "process_resident_memory_bytes", "python_info"} <= names

"""Key writes never block the event loop: with 2,000 keys in the local store, ``/health``
answers while a key is being created (the write held in its worker thread until then)."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import httpx
import pytest

from functions.gateway import create_app
from functions.keys import LocalKeys, Snapshot
from functions.keys.backend import Change, Seen, T
from functions.settings import Deployment, GatewaySettings, Settings
from tests.functions.keys.conftest import many_keys

BOOT = "sk-boot-" + "b" * 24


def test_health_answers_while_a_create_writes_2000_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    LocalKeys(tmp_path).update(lambda records: records.extend(many_keys(2000)), Snapshot((), None))
    entered, release = threading.Event(), threading.Event()
    writers: list[tuple[bool, bool]] = []  # (off the main thread, released by the test)
    real_update = LocalKeys.update

    def held(
        self: LocalKeys, change: Change[T], current: Snapshot, seen: Seen | None = None
    ) -> tuple[T, Snapshot]:
        entered.set()
        writers.append((threading.current_thread() is not threading.main_thread(), False))
        writers[-1] = (writers[-1][0], release.wait(30))
        return real_update(self, change, current, seen)

    monkeypatch.setattr(LocalKeys, "update", held)
    settings = Settings(
        data_dir=tmp_path,
        gateway=GatewaySettings(
            api_keys=[BOOT],
            deployments=[Deployment(name="d1", model="m1", api_base="http://127.0.0.1:9/v1")],
            cold_wait_s=0,
        ),
    )
    app = create_app(settings)
    boot = {"authorization": f"Bearer {BOOT}"}

    async def scenario() -> tuple[int, int, int]:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://gw") as gw:
                creating = asyncio.create_task(
                    gw.post("/v1/admin/keys", headers=boot, json={"tenant": "acme"})
                )
                assert await asyncio.to_thread(entered.wait, 30)
                health = await gw.get("/health", headers=boot)  # while the write is held
                release.set()
                made = await creating
                return health.status_code, health.json()["keys"]["keys"], made.status_code

    assert asyncio.run(scenario()) == (200, 2000, 201)
    assert writers == [(True, True)]  # in a worker thread, and released only after /health
    assert len(LocalKeys(tmp_path).load(None).records) == 2001  # type: ignore[union-attr]

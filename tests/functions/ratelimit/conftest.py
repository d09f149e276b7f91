"""Fixtures: a real redis-server on 127.0.0.1, one fresh store per backend, a hand-moved clock.

The Redis tests need the ``redis-server`` binary (Debian package ``redis-server``).
Without it they fail, loudly: CI must install it, and a skipped test would hide
that the distributed backend went untested.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from functions.ratelimit import FileStore, LimitStore, MemoryStore
from functions.ratelimit.redis import RedisStore
from tests.conftest import free_port

BACKENDS = ["memory", "file", "redis"]
SHARED_BACKENDS = ["file", "redis"]  # those several processes can share
MIDNIGHT = 1_767_225_600.0  # 2026-01-01T00:00:00Z


class Clock:
    """A clock that moves only when told to."""

    def __init__(self, now: float = MIDNIGHT + 12 * 3600) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def _pong(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail(
            "redis-server is not installed; the Redis rate-limit tests need a real one. "
            "Install it: apt-get install -y redis-server (CI does this in .ci/run).",
            pytrace=False,
        )
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis")
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    proc = subprocess.Popen(
        [*args, "--dir", str(workdir)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 10
        while not _pong(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"redis-server did not start on port {port}", pytrace=False)
            time.sleep(0.02)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


StoreFactory = Callable[[], LimitStore]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_store(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    """A factory for one store of ``backend``; call it inside the test's event loop.

    Stores made by one factory share their buckets (same file, same Redis prefix).
    """
    if backend == "memory":
        shared = MemoryStore()
        return lambda: shared
    if backend == "file":
        return lambda: FileStore(tmp_path / "data" / "ratelimit.sqlite3")
    url = request.getfixturevalue("redis_url")
    prefix = f"test:{uuid.uuid4().hex}:"
    return lambda: RedisStore(url, prefix=prefix)

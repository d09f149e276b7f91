"""functions.lazy.Background: a value made once in its own thread, awaited off the event loop."""

from __future__ import annotations

import asyncio
import threading

import pytest

from functions.lazy import Background


def test_the_value_is_made_once_in_another_thread() -> None:
    made: list[str] = []

    def make() -> str:
        made.append(threading.current_thread().name)
        return "value"

    background = Background(make, "test-make")
    background.start()
    background.start()

    async def main() -> list[str]:
        return list(await asyncio.gather(*(background.get() for _ in range(5))))

    assert asyncio.run(main()) == ["value"] * 5
    assert made == ["test-make"]


def test_the_event_loop_keeps_running_while_it_is_made() -> None:
    release = threading.Event()
    background = Background(lambda: release.wait(10) and "value", "test-slow")

    async def main() -> str:
        waiting = asyncio.create_task(background.get())
        await asyncio.sleep(0.05)
        assert not waiting.done()  # still being made, and this coroutine ran meanwhile
        release.set()
        return await waiting

    assert asyncio.run(main()) == "value"


def test_a_failure_is_raised_by_every_get() -> None:
    calls: list[int] = []

    def make() -> str:
        calls.append(1)
        raise ImportError("no such module")

    background = Background(make, "test-failing")

    async def main() -> None:
        for _ in range(2):
            with pytest.raises(ImportError, match="no such module"):
                await background.get()

    asyncio.run(main())
    assert calls == [1]

"""Packages whose public names load on first use, and values made in the background.

Settings nests each section's settings model, so a section's package is imported
wherever Settings is, the inference node included; its ``__init__`` must not load
the heavy modules beside it (LanceDB, the audit writer, JWKS fetching). Such a
package lists its names and their modules and sets ``__getattr__ = exports(...)``.
"""

from __future__ import annotations

import asyncio
import importlib
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from typing import Any, Generic, TypeVar

T = TypeVar("T")


def exports(
    package: str, names: Mapping[str, str], namespace: dict[str, Any]
) -> Callable[[str], object]:
    """A module ``__getattr__`` that imports ``names[name]`` from ``package`` once."""

    def __getattr__(name: str) -> object:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        namespace[name] = value  # the next lookup finds it without coming here
        return value

    return __getattr__


class Background(Generic[T]):
    """A value made once in its own thread: started early, awaited where it is needed.

    For imports that take seconds (litellm): :meth:`start` at start-up lets the
    gateway answer what does not need the value meanwhile, and :meth:`get` waits
    for it without blocking the event loop (an ``import`` on the loop would stall
    every request behind it, and would block on the import lock while another
    thread imports the same module). A failure is kept and raised by every
    :meth:`get`, so it is never lost in a thread.
    """

    def __init__(self, make: Callable[[], T], name: str) -> None:
        self._make = make
        self._name = name
        self._future: Future[T] | None = None
        self._lock = threading.Lock()

    def start(self) -> Future[T]:
        with self._lock:
            if self._future is None:
                self._future = Future()
                threading.Thread(target=self._run, name=self._name, daemon=True).start()
            return self._future

    def _run(self) -> None:
        assert self._future is not None
        try:
            self._future.set_result(self._make())
        except BaseException as exc:  # kept for get(), raised there
            self._future.set_exception(exc)

    async def get(self) -> T:
        future = self.start()
        if future.done():  # the common case once started: no thread hop
            return future.result()
        # shielded: a caller cancelled while it waits (a client gone) must not cancel the
        # one shared future, which would leave every later get() a CancelledError
        return await asyncio.shield(asyncio.wrap_future(future))

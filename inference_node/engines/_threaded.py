"""From a worker thread to the event loop: the streaming pattern GPU and CPU engines share.

Inference libraries block (llama.cpp's token loop, exllamav2's ``generator.iterate()``),
so they run in a thread, and what they produce crosses to the event loop through a
:class:`Channel`: ``send`` and ``close`` may be called from any thread, the items are
received in order with ``async for`` on the loop that made the channel.
:class:`GeneratorLoop` is that thread for a batching generator that many requests
share (continuous batching): one owner thread, results routed to each request's channel.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from loguru import logger

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class _End:
    error: BaseException | None


class Channel(Generic[T]):
    """A one-way, unbounded stream of items from any thread into one event loop.

    Create it on the event loop (it remembers the running loop). The producer calls
    :meth:`send` for each item and :meth:`close` once, with the exception that ended
    production if any; the consumer's ``async for`` then ends, or raises that exception.
    """

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[T | _End] = asyncio.Queue()

    def send(self, item: T) -> None:
        self._put(item)

    def close(self, error: BaseException | None = None) -> None:
        self._put(_End(error))

    def _put(self, item: T | _End) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is left
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)

    async def __aiter__(self) -> AsyncIterator[T]:
        while True:
            item = await self._queue.get()
            if isinstance(item, _End):
                if item.error is not None:
                    raise item.error
                return
            yield item


class BatchGenerator(Protocol):
    """A batching generator in the shape of exllamav2's dynamic generator.

    ``enqueue`` adds a job (which has an ``identifier``), ``cancel`` drops one and frees
    what it held, ``iterate`` advances every live job by a step and returns result
    dicts, each naming its job's ``identifier`` and saying whether it ended (``eos``).
    """

    def enqueue(self, job: Any) -> Any: ...

    def cancel(self, job: Any) -> Any: ...

    def iterate(self) -> list[dict[str, Any]]: ...


Result = dict[str, Any]


class GeneratorLoop:
    """The one thread that owns a batching generator: submits, cancels, iterates, routes.

    Callers on the event loop :meth:`submit` a job with the :class:`Channel` its results
    go to, and :meth:`cancel` it if they stop listening. Only this thread touches the
    generator, so N concurrent requests share one batched loop without locks. It blocks
    while no job is live. If ``enqueue`` refuses a job, that job's stream gets the
    exception. If ``iterate`` raises (a CUDA error is sticky), every live stream gets
    it, :attr:`error` keeps it, and the thread ends; later submits fail at once.
    """

    def __init__(self, generator: BatchGenerator, name: str) -> None:
        self._generator = generator
        self._commands: queue.SimpleQueue[tuple[str, Any, Channel[Result] | None]] = (
            queue.SimpleQueue()
        )
        self._live: dict[Any, Channel[Result]] = {}
        self.error: BaseException | None = None
        self._accepting = True
        self._stop_reason: BaseException = RuntimeError(f"{name} has stopped")
        self._lock = threading.Lock()  # no submit slips in after the thread's last drain
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    @property
    def running(self) -> bool:
        """Taking jobs: neither failed (set before any stream hears of it) nor stopped."""
        return self.error is None and self._accepting

    def submit(self, job: Any, channel: Channel[Result]) -> None:
        """Queue a job; once the thread has ended, its channel is closed with the reason."""
        with self._lock:
            if self._accepting:
                self._commands.put(("submit", job, channel))
                return
        channel.close(self.error or self._stop_reason)

    def cancel(self, job: Any) -> None:
        self._commands.put(("cancel", job, None))

    def stop(self, reason: BaseException) -> None:
        """End the thread; streams still live get ``reason``. Blocks until it has ended."""
        self._commands.put(("stop", reason, None))
        self._thread.join()

    def _run(self) -> None:
        try:
            while self._apply_commands(wait=not self._live):
                if self._live:
                    self._step()
        except BaseException as exc:
            self.error = exc
            logger.opt(exception=exc).error("generator failed", thread=self._thread.name)
        finally:
            reason = self.error or self._stop_reason
            self._close_all(reason)
            with self._lock:
                self._accepting = False
                self._drain(reason)

    def _drain(self, reason: BaseException) -> None:
        """Jobs submitted but never started get ``reason`` too."""
        while True:
            try:
                verb, _, channel = self._commands.get_nowait()
            except queue.Empty:
                return
            if verb == "submit" and channel is not None:
                channel.close(reason)

    def _apply_commands(self, wait: bool) -> bool:
        """Run queued commands, blocking for one when idle; False once asked to stop."""
        while True:
            try:
                verb, job, channel = self._commands.get(block=wait)
            except queue.Empty:
                return True
            wait = False
            if verb == "stop":
                self._stop_reason = job
                return False
            if verb == "submit" and channel is not None:
                try:
                    self._generator.enqueue(job)
                except Exception as exc:  # this job is unacceptable; the others go on
                    channel.close(exc)
                    continue
                self._live[job.identifier] = channel
            elif verb == "cancel" and self._live.pop(job.identifier, None) is not None:
                self._generator.cancel(job)

    def _step(self) -> None:
        for result in self._generator.iterate():
            channel = self._live.get(result.get("identifier"))
            if channel is None:
                continue
            channel.send(result)
            if result.get("eos"):
                del self._live[result["identifier"]]
                channel.close()

    def _close_all(self, error: BaseException) -> None:
        for channel in self._live.values():
            channel.close(error)
        self._live.clear()


__all__ = ["BatchGenerator", "Channel", "GeneratorLoop"]

"""The gateway's audit writer: ``record()`` on the request path, writes in the background.

``record(event)`` costs a dict copy and a ``put_nowait`` on a bounded queue: it never
waits. A background task takes what is queued in batches of up to ``batch_size``
and hands each batch to a thread (:func:`asyncio.to_thread`) that seals, writes,
fsyncs and re-signs the chain head. Call ``record`` from the event loop's thread.

Losing a record is never silent. A full queue, a failed write or a writer that is
not running: each is logged at ERROR with the number of records lost, added to
:attr:`AuditLog.failures`, and passed to ``on_failure(reason, count)`` (the lead maps
it to a Prometheus counter). With ``fail_closed``, :attr:`AuditLog.healthy` is False
from such a failure until the next batch is written, so the gateway can refuse
requests it could not audit.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import time
from collections.abc import Callable, Mapping
from typing import Any

from loguru import logger

from functions.audit.chain import ChainWriter, HeadWriteError
from functions.audit.errors import AuditConfigError
from functions.audit.settings import AuditSettings, load_keys

OnFailure = Callable[[str, int], None]


def default_instance_id() -> str:
    """``<host>-<pid>-<random>``: a fresh chain per process, safe on shared volumes."""
    host = "".join(c if c.isalnum() or c in "-_." else "-" for c in socket.gethostname())
    return f"{host[:60] or 'host'}-{os.getpid()}-{secrets.token_hex(3)}"


class AuditLog:
    """Tamper-evident audit records for one writer instance (one chain)."""

    def __init__(self, settings: AuditSettings, *, on_failure: OnFailure | None = None) -> None:
        if settings.hmac_key is None:
            raise AuditConfigError("audit is enabled but audit.hmac_key is not set")
        self.settings = settings
        self.instance_id = settings.instance_id or default_instance_id()
        self.failures = 0  # records lost, all causes
        self.written = 0
        self._on_failure = on_failure
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(settings.queue_size)
        self._chain: ChainWriter | None = None
        self._task: asyncio.Task[None] | None = None
        self._failing = False
        self._unreported = 0  # queue-full losses not yet logged with their total

    @property
    def healthy(self) -> bool:
        """False only with ``fail_closed``, from a lost record until the next good write."""
        return not (self.settings.fail_closed and self._failing)

    async def start(self) -> None:
        """Open (or resume) the chain and start the background writer."""
        s = self.settings
        keys = load_keys(s)
        self._chain = await asyncio.to_thread(
            ChainWriter, s.directory, s.heads_dir, self.instance_id, keys, s.capture_content
        )
        self._task = asyncio.create_task(self._run(), name=f"audit-{self.instance_id}")

    def record(self, event: Mapping[str, Any]) -> None:
        """Queue ``event`` (see :mod:`functions.audit.records`); returns at once."""
        if self._task is None or self._task.done():
            self._lost("writer_not_running", 1)
            return
        queued = dict(event)
        if "ts" not in queued:
            queued["ts"] = time.time()  # the request's time; formatted by the writer
        try:
            self._queue.put_nowait(queued)
        except asyncio.QueueFull:
            self._unreported += 1
            self._lost("queue_full", 1, log=self._unreported == 1)

    async def flush(self) -> None:
        """Wait until everything recorded so far has been written (or counted lost)."""
        if self._task is not None and not self._task.done():
            await self._queue.join()

    async def aclose(self) -> None:
        """Write what is queued, then stop and close the chain."""
        await self.flush()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._report_queue_losses()
        pending = self._queue.qsize()
        if pending:
            self._lost("closed_with_records_queued", pending)
        if self._chain is not None:
            await asyncio.to_thread(self._chain.close)
            self._chain = None

    def _lost(self, reason: str, count: int, *, log: bool = True) -> None:
        self.failures += count
        self._failing = True
        if log:
            logger.error(
                "audit: {} record(s) lost ({}); {} lost so far", count, reason, self.failures
            )
        if self._on_failure is not None:
            self._on_failure(reason, count)

    def _report_queue_losses(self) -> None:
        if self._unreported:
            logger.error("audit: {} record(s) lost (queue_full) in all", self._unreported)
            self._unreported = 0

    async def _run(self) -> None:
        assert self._chain is not None
        chain, size = self._chain, self.settings.batch_size
        while True:
            batch = [await self._queue.get()]
            while len(batch) < size and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._write(chain, batch)
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _write(self, chain: ChainWriter, batch: list[dict[str, Any]]) -> None:
        try:
            await asyncio.to_thread(chain.append, batch)
        except HeadWriteError as exc:
            self.written += len(batch)
            logger.error("audit: {} record(s) written, head not re-signed: {}", len(batch), exc)
            if self._on_failure is not None:
                self._on_failure("head_write_failed", 0)
            return
        except Exception as exc:
            logger.opt(exception=exc).error("audit: write failed")
            self._lost(f"write_failed: {type(exc).__name__}", len(batch))
            return
        self.written += len(batch)
        self._failing = False
        self._report_queue_losses()

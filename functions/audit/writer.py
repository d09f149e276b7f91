"""The gateway's audit writer: ``record()`` and ``durable()`` on the request path.

``record(event)`` costs a dict copy and a ``put_nowait`` on a bounded queue: it never
waits. A background task takes what is queued in batches of up to ``batch_size``
and hands each batch to a thread (:func:`asyncio.to_thread`) that seals, writes,
fsyncs and re-signs the chain head. Call both from the event loop's thread. The
storage is a directory (``settings.directory``) unless a bucket is given (see
:mod:`functions.audit.bucket`): there each batch is one new object.

``await durable(event)`` queues the same way and returns once the batch holding
the record is written, fsynced (with the directories of new files) and covered by
the signed head written after it: call it before the last byte of an answer
leaves, so a crash loses no record of an answer anyone received. Group commit:
while one batch is being written every caller that arrives queues behind it,
and the next batch takes them all, with one write, one fsync and one head; no
timer, so an idle writer commits at once. A record that could not be made
durable raises :class:`AuditUnavailableError` (already counted as below); the
write goes on if the caller is cancelled meanwhile.

Losing a record is never silent. A full queue, a failed write or a writer that is
not running: each is logged at ERROR with the number of records lost, added to
:attr:`AuditLog.failures`, and passed to ``on_failure(reason, count)`` (the lead maps
it to a Prometheus counter). With ``fail_closed``, :attr:`AuditLog.healthy` is False
from such a failure until the next batch is written, so the gateway can refuse
requests it could not audit.

Unauthenticated traffic cannot crowd real records out. ``record(event,
anonymous=True)`` (a request refused before any key was known) takes a place from
a budget of its own, ``anonymous_queue_size``, never from the ``queue_size``
places of authenticated records. Past that budget such refusals are summed by
route and status into one ``"refusals"`` record, written with the next batch: not
lost (and not a failure), just not one line each.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import time
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from loguru import logger

from functions.audit.chain import ChainWriter, HeadWriteError
from functions.audit.errors import AuditConfigError, AuditUnavailableError
from functions.audit.files import LocalStorage
from functions.audit.records import build_refusals_record
from functions.audit.settings import AuditSettings, load_keys
from functions.audit.store import AuditStorage

OnFailure = Callable[[str, int], None]
Waiter = asyncio.Future[str | None]  # resolved with None once durable, else with why not
Queued = tuple[dict[str, Any] | None, bool, Waiter | None]  # event (None: a wake-up), anonymous
MAX_SUMMARY_KEYS = 64  # distinct "<route> <status>" in one refusals record; others: "other"


def default_instance_id() -> str:
    """``<host>-<pid>-<random>``: a fresh chain per process, safe on shared volumes."""
    host = "".join(c if c.isalnum() or c in "-_." else "-" for c in socket.gethostname())
    return f"{host[:60] or 'host'}-{os.getpid()}-{secrets.token_hex(3)}"


class AuditLog:
    """Tamper-evident audit records for one writer instance (one chain)."""

    def __init__(
        self,
        settings: AuditSettings,
        *,
        on_failure: OnFailure | None = None,
        storage: AuditStorage | None = None,
    ) -> None:
        if settings.hmac_key is None:
            raise AuditConfigError("audit is enabled but audit.hmac_key is not set")
        self.settings = settings
        self.storage = storage or LocalStorage(settings.directory, settings.heads_dir)
        self.instance_id = settings.instance_id or default_instance_id()
        self.failures = 0  # records lost, all causes
        self.written = 0
        self._on_failure = on_failure
        self._queue: asyncio.Queue[Queued] = asyncio.Queue()
        self._queued = {False: 0, True: 0}  # records queued, by ``anonymous``
        self._room = {False: settings.queue_size, True: settings.anonymous_queue_size}
        self._summed: Counter[str] = Counter()  # anonymous refusals past their budget
        self._summed_since = 0.0
        self.summed = 0  # anonymous refusals written as counts, all told
        self._summed_waiters: list[Waiter] = []  # durable() callers whose refusal was summed
        self.commits = 0  # batches written (records per fsync: written / commits)
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
            ChainWriter, self.storage, self.instance_id, keys, s.capture_content
        )
        self._task = asyncio.create_task(self._run(), name=f"audit-{self.instance_id}")

    def record(self, event: Mapping[str, Any], *, anonymous: bool = False) -> None:
        """Queue ``event`` (see :mod:`functions.audit.records`); returns at once.

        ``anonymous``: a request refused before any principal was known; it never
        takes the place of an authenticated record (see the module's docstring).
        """
        self._enqueue(event, anonymous, None)

    async def durable(self, event: Mapping[str, Any], *, anonymous: bool = False) -> None:
        """Queue ``event`` and return once it is written, fsynced and under a signed head.

        Raises :class:`AuditUnavailableError` when it is not (queue full, writer not
        running, write or head failed); the loss is counted as for :meth:`record`.
        An anonymous refusal past its budget returns once the ``"refusals"`` record
        counting it is durable. Cancelling the caller does not cancel the write.
        """
        waiter: Waiter = asyncio.get_running_loop().create_future()
        failure = self._enqueue(event, anonymous, waiter)
        if failure is None:
            failure = await asyncio.shield(waiter)
        if failure is not None:
            raise AuditUnavailableError(failure)

    def _enqueue(
        self, event: Mapping[str, Any], anonymous: bool, waiter: Waiter | None
    ) -> str | None:
        """Queue ``event``; why it was not (already counted), or None."""
        if self._task is None or self._task.done():
            self._lost("writer_not_running", 1)
            return "writer_not_running"
        queued = dict(event)
        if "ts" not in queued:
            queued["ts"] = time.time()  # the request's time; formatted by the writer
        if self._queued[anonymous] >= self._room[anonymous]:
            if anonymous:
                self._sum(queued, waiter)
                return None
            self._unreported += 1
            self._lost("queue_full", 1, log=self._unreported == 1)
            return "queue_full"
        self._queued[anonymous] += 1
        self._queue.put_nowait((queued, anonymous, waiter))
        return None

    def _sum(self, event: dict[str, Any], waiter: Waiter | None) -> None:
        key = f"{event.get('route', '-')} {event.get('status', '-')}"
        if key not in self._summed and len(self._summed) >= MAX_SUMMARY_KEYS:
            key = "other"
        if not self._summed:
            self._summed_since = time.time()
        self._summed[key] += 1
        if waiter is not None:
            self._summed_waiters.append(waiter)
            if len(self._summed_waiters) == 1:  # one wake-up, so the summary is written soon
                self._queue.put_nowait((None, True, None))

    def _take_summary(self, waiters: list[Waiter]) -> dict[str, Any] | None:
        """The refusals summed so far as one record; their waiters join ``waiters``."""
        if not self._summed:
            return None
        waiters += self._summed_waiters
        self._summed_waiters = []
        counts, self._summed = dict(self._summed), Counter()
        self.summed += sum(counts.values())
        logger.warning(
            "audit: {} unauthenticated refusal(s) recorded as counts", sum(counts.values())
        )
        return build_refusals_record(counts, self._summed_since, time.time())

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
        pending = 0
        while not self._queue.empty():
            event, _, waiter = self._queue.get_nowait()
            pending += event is not None
            _resolve([waiter] if waiter else [], "closed_with_records_queued")
        if pending:
            self._lost("closed_with_records_queued", pending)
        waiters: list[Waiter] = []
        if self._chain is not None:
            summary = self._take_summary(waiters)
            failure = await self._write(self._chain, [summary]) if summary else None
            _resolve(waiters, failure)
            await asyncio.to_thread(self._chain.close)
            self._chain = None
        _resolve([*waiters, *self._summed_waiters], "writer_stopped")

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
            taken = [await self._queue.get()]
            while len(taken) < size and not self._queue.empty():
                taken.append(self._queue.get_nowait())
            batch: list[dict[str, Any]] = []
            waiters: list[Waiter] = []
            for event, anonymous, waiter in taken:
                if event is not None:
                    self._queued[anonymous] -= 1
                    batch.append(event)
                if waiter is not None:
                    waiters.append(waiter)
            summary = self._take_summary(waiters)
            try:
                failure = await self._write(chain, [*batch, summary] if summary else batch)
                _resolve(waiters, failure)
            finally:
                _resolve(waiters, "writer_stopped")  # only those left: cancelled mid-write
                for _ in taken:
                    self._queue.task_done()

    async def _write(self, chain: ChainWriter, batch: list[dict[str, Any]]) -> str | None:
        """Write ``batch`` as one commit; None, or why it is not durable (counted)."""
        if not batch:
            return None
        try:
            await asyncio.to_thread(chain.append, batch)
        except HeadWriteError as exc:
            self.written += len(batch)
            logger.error("audit: {} record(s) written, head not re-signed: {}", len(batch), exc)
            if self._on_failure is not None:
                self._on_failure("head_write_failed", 0)
            return "head_write_failed"
        except Exception as exc:
            logger.opt(exception=exc).error("audit: write failed")
            reason = f"write_failed: {type(exc).__name__}"
            self._lost(reason, len(batch))
            return reason
        self.written += len(batch)
        self.commits += 1
        self._failing = False
        self._report_queue_losses()
        return None


def _resolve(waiters: list[Waiter], failure: str | None) -> None:
    """Tell each waiter not yet told (and not cancelled) how its commit went."""
    for waiter in waiters:
        if not waiter.done():
            waiter.set_result(failure)

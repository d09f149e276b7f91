"""Injection scoring in two stages: stage 1 decides the clear cases, stage 2 the grey ones.

Why a module of its own: the engine (:class:`~.engine.ContentFilter`) decides *whether*
a text is scored and under which policy (the rules alone, or the learned model); how
the learned model reads it is this: stage 1 (:func:`~.injection.stage_one`, rules and
n-grams, ~0.15 ms) scores every text, and a text it is unsure of
(:func:`~.injection.escalates`) is read again by stage 2, the e5 head of :mod:`.semantic`,
whose embedding costs 50-200 ms. That embedding must never run on the event loop
(invariant I4): the step of :mod:`.escalate` embeds the escalated texts of a request in
a worker thread, in one batch (:meth:`TwoStage.prepare`), before the scan on the loop
finds their vectors cached; a vector not found there leaves stage 1's score standing.

A frontend's background request (:mod:`.frontend`) is scored without its known template
lines, by stage 1 alone; a long text's most suspicious segment (:mod:`.segments`) is what
stage 2 embeds.
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

from loguru import logger

from functions.filtering.classifier import InjectionModel
from functions.filtering.frontend import task_content
from functions.filtering.injection import (
    InjectionScore,
    StageOne,
    combine_semantic,
    escalates,
    stage_one,
)
from functions.filtering.semantic import EMBED_BYTES, SecondStage, scoped_digest, stage2_input

Stages = tuple[StageOne, str | None]  # stage 1's view, and what stage 2 embeds (None: none)
RECENT = 32  # stage-1 readings kept: the injection step's, for the scan right after it


@dataclass(frozen=True, slots=True)
class TwoStage:
    """Stage 1, and stage 2 (``second``: the e5 head and its vector cache, shared by every
    tenant's filter of a :class:`~.engine.FilterSet`) for what stage 1 escalates.

    A message is read by stage 1 twice in a request, by the injection step (what to
    embed) and by the scan (its score): the last :data:`RECENT` readings are kept, so
    the second is a look-up (0.2-0.35 ms of CPU a message, on a slow core). Keyed as
    the vector cache is, by a SHA-256 of the tenant and the text: no text is held, and
    no tenant can time another's (I6)."""

    second: SecondStage
    _recent: OrderedDict[bytes, Stages] = field(default_factory=OrderedDict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def stages(self, text: str, folded: str | None = None) -> Stages:
        """Stage 1's view of ``text`` and what stage 2 embeds for it (None: stage 1 decides).
        A frontend's background request (:mod:`.frontend`) is scored without its known
        template lines, by stage 1 alone; so is a short text (:func:`escalates`)."""
        key = scoped_digest(text)
        with self._lock:
            found = self._recent.get(key)
        if found is None:
            found = self._read(text, folded)
            with self._lock:
                self._recent[key] = found
                if len(self._recent) > RECENT:
                    self._recent.popitem(last=False)
        return found

    def _read(self, text: str, folded: str | None) -> Stages:
        task = task_content(text)
        if task is not None:
            return stage_one(task), None
        first = stage_one(text, folded)
        if not escalates(first, self.second.head, text):
            return first, None
        # a long text's most suspicious segment (read by stage 1 alone), else the text
        return first, stage2_input(first.focus or text, InjectionModel.load(), EMBED_BYTES)

    def score(self, text: str, folded: str | None = None) -> InjectionScore:
        """The learned model's score of ``text``: stage 1 decides clear cases, stage 2 reads
        the ones it is unsure of (on the event loop, only with a prepared vector)."""
        first, wanted = self.stages(text, folded)
        if wanted is None:
            return first.score
        vector = self.second.vectors.get(wanted)
        if vector is None:
            if _on_event_loop():  # not prepared, or evicted since: never 100 ms on the loop
                logger.warning("injection stage 2: vector not prepared; stage 1's score stands")
                return first.score
            vector = self.second.vectors.embed([wanted])[0]
        return combine_semantic(first, self.second.head.logit(vector), self.second.head)

    def prepare(self, texts: Sequence[str]) -> int:
        """Embed, in one batch, the texts among ``texts`` that stage 1 escalates (blocking:
        in a worker thread); how many were escalated."""
        inputs = [e for e in (self.stages(t)[1] for t in texts) if e is not None]
        if inputs:
            self.embed(inputs)
        return len(inputs)

    def unembedded(self, texts: Sequence[str]) -> list[str]:
        """What stage 2 would embed for ``texts`` and finds no vector for: stage 1 alone,
        cheap enough for the event loop on a short request (the scan runs it there too)."""
        inputs = (self.stages(t)[1] for t in texts)
        return [e for e in inputs if e is not None and self.second.vectors.get(e) is None]

    def embed(self, inputs: Sequence[str]) -> None:
        """Embed :meth:`unembedded`'s ``inputs`` in one batch (blocking: a worker thread)."""
        self.second.vectors.embed(inputs)


def _on_event_loop() -> bool:
    """Whether this thread runs an event loop (the gateway's), where nothing may block."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True

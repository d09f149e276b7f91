"""Turn retrieved passages into a context message with numbered sources, and citations.

The chat retrieval step prepends :func:`context_message` to the conversation and
returns :func:`citations` with the response. Numbers match: source ``[2]`` in the
prompt is the citation with ``"index": 2``. The context block looks like::

    Answer using the numbered sources below when they are relevant, and cite them
    inline as [1], [2]. If they do not contain the answer, say so.

    [1] Employee handbook (docs/handbook.md, Leave > Annual leave)
    Employees receive 25 days of paid annual leave…

    [2] …
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypedDict

from functions.knowledge.retrieve import Passage

INSTRUCTION = (
    "Answer using the numbered sources below when they are relevant, and cite them "
    "inline as [1], [2]. If they do not contain the answer, say so."
)


class Citation(TypedDict):
    """One entry of the response's citations; ``index`` is the number in the prompt."""

    index: int
    source: str
    title: str
    location: str
    score: float


def source_line(index: int, passage: Passage) -> str:
    where = ", ".join(part for part in (passage.source, passage.location) if part)
    return f"[{index}] {passage.title or passage.source} ({where})"


def _entry(index: int, passage: Passage) -> str:
    return f"\n\n{source_line(index, passage)}\n{passage.text}"


def fitting(passages: Sequence[Passage], max_chars: int | None) -> list[Passage]:
    """The leading passages whose context block stays within ``max_chars``."""
    kept: list[Passage] = []
    length = len(INSTRUCTION)
    for index, passage in enumerate(passages, start=1):
        length += len(_entry(index, passage))
        if max_chars is not None and length > max_chars:
            break
        kept.append(passage)
    return kept


def context_block(passages: Sequence[Passage], *, max_chars: int | None = None) -> str:
    """The instruction and the numbered passages; stops before exceeding ``max_chars``."""
    kept = fitting(passages, max_chars)
    return INSTRUCTION + "".join(_entry(i, p) for i, p in enumerate(kept, start=1))


def context_message(passages: Sequence[Passage], *, max_chars: int | None = None) -> dict[str, Any]:
    """A system message to put before the conversation's messages."""
    return {"role": "system", "content": context_block(passages, max_chars=max_chars)}


def citations(passages: Sequence[Passage], *, max_chars: int | None = None) -> list[Citation]:
    """The citations for the passages that :func:`context_block` kept, in prompt order."""
    return [
        Citation(
            index=index,
            source=p.source,
            title=p.title,
            location=p.location,
            score=round(p.score, 6),
        )
        for index, p in enumerate(fitting(passages, max_chars), start=1)
    ]

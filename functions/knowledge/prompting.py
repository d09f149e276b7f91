"""Turn retrieved passages into a context message with numbered sources, and citations.

The chat retrieval step prepends :func:`context_message` to the conversation and
returns :func:`citations` with the response (the ``enclave.citations`` field, or
:func:`sources_block` appended to the answer, or both). Numbers match: source
``[2]`` in the prompt is the citation with ``"index": 2`` and the line ``[2]`` of the
Sources block. The context block looks like::

    Answer using the numbered sources below when they are relevant, and cite them
    inline as [1], [2]. If they do not contain the answer, say so.

    [1] Employee handbook (docs/handbook.md, Leave > Annual leave)
    Employees receive 25 days of paid annual leave…

    [2] …
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypedDict

if TYPE_CHECKING:  # retrieve imports LanceDB, which only retrieval needs
    from functions.knowledge.retrieve import Passage


INSTRUCTION = (
    "Answer using the numbered sources below when they are relevant, and cite them "
    "inline as [1], [2]. If they do not contain the answer, say so."
)


MAX_SOURCE_LINE = 240  # characters of one Sources line's title and place, at most
_MARKDOWN = re.compile(r"([\\`*\[\]()!<>])")  # what makes links, images, HTML, code
_SPACE = re.compile(r"\s+")


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


def _plain(text: str) -> str:
    """``text`` as one inert line of Markdown: whitespace collapsed, Markdown escaped.

    A title is a document author's text: escaped, it cannot become a link, an image
    (a URL the reader's browser would fetch) or a heading in the reader's frontend.
    """
    line = _SPACE.sub(" ", text).strip()[:MAX_SOURCE_LINE]
    return _MARKDOWN.sub(r"\\\1", line)


def sources_block(cited: Sequence[Mapping[str, Any]]) -> str:
    """The Markdown block appended to an answer: a rule, then one line per citation::

    ---
    Sources:
    [1] Travel policy (docs/travel.md, Meals)
    """
    lines = []
    for c in cited:
        where = ", ".join(part for part in (c["source"], c["location"]) if part)
        title = str(c["title"] or c["source"])
        lines.append(f"[{c['index']}] {_plain(title)} ({_plain(where)})")
    return "\n\n---\nSources:\n" + "\n".join(lines) if lines else ""

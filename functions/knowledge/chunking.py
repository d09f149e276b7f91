"""Structure-aware chunking: sections, then paragraphs, then sentences, then characters.

A chunk never spans two sections or two pages, so its location stays exact. Inside
a section, whole paragraphs are packed up to ``size`` characters; a paragraph that
is too long is split at sentence ends (``. ! ? ;`` followed by a space, and the
Chinese full-width full stop, exclamation and question marks and semicolon, which
need no space after them), and a sentence that is still
too long is cut every ``size`` characters. Consecutive chunks of a section share up
to ``overlap`` characters: the trailing sentences of one chunk start the next.

Sizes are characters (see :mod:`functions.knowledge.settings` for why).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from functions.knowledge.parsers import ParsedDocument


@dataclass(frozen=True, slots=True)
class Chunk:
    """A piece of a document to embed; ``position`` is its index within the document."""

    text: str
    section: str
    page: int | None
    position: int

    @property
    def location(self) -> str:
        """Where a reader finds it: "p. 3", "Leave > Annual leave", or both."""
        parts = [f"p. {self.page}"] if self.page is not None else []
        return ", ".join([*parts, *([self.section] if self.section else [])])


# A sentence ends after CJK end punctuation (no space follows in Chinese), or after
# Latin end punctuation that is followed by whitespace; closing quotes stay attached.
_CJK_ENDS = "\u3002\uff01\uff1f\uff1b"  # full stop, !, ?, ; (full width)
_CLOSERS = "\u201d\u2019\u300d\u300f\uff09"  # closing quotes and brackets
_SENTENCE_END = re.compile(
    rf"(?<=[{_CJK_ENDS}!?;])(?![{_CLOSERS})\"'])|(?<=[.!?][{_CLOSERS}\"')])\s+|(?<=[.!?])\s+"
)


def split_sentences(text: str) -> list[str]:
    return [s for s in (part.strip() for part in _SENTENCE_END.split(text)) if s]


def _pieces(paragraph: str, size: int) -> Iterator[str]:
    """The paragraph whole if it fits, else its sentences, cut to ``size`` if needed."""
    if len(paragraph) <= size:
        yield paragraph
        return
    for sentence in split_sentences(paragraph):
        for start in range(0, len(sentence), size):
            yield sentence[start : start + size]


_CJK = re.compile(r"[\u3000-\u9fff\uff00-\uffef]")


def _joiner(left: str, right: str) -> str:
    return "" if _CJK.match(right[:1]) and _CJK.match(left[-1:]) else " "


def _pack(pieces: Iterable[str], size: int, overlap: int) -> Iterator[str]:
    current: list[str] = []
    length = 0
    for piece in pieces:
        if current and length + 1 + len(piece) > size:
            yield _join(current)
            carry: list[str] = []
            for prev in reversed(current):  # trailing pieces that fit the overlap
                if sum(map(len, carry)) + len(prev) > overlap:
                    break
                carry.insert(0, prev)
            current, length = carry, sum(len(c) + 1 for c in carry)
            if length + len(piece) > size:
                current, length = [], 0
        current.append(piece)
        length += len(piece) + 1
    if current:
        yield _join(current)


def _join(pieces: list[str]) -> str:
    out = pieces[0]
    for piece in pieces[1:]:
        out += _joiner(out, piece) + piece
    return out


def chunk_document(document: ParsedDocument, size: int, overlap: int) -> list[Chunk]:
    """Split ``document`` into chunks of at most ``size`` characters."""
    if not 0 <= overlap < size:
        raise ValueError("need 0 <= overlap < size")
    chunks: list[Chunk] = []
    runs = itertools.groupby(document.blocks, key=lambda b: (b.section, b.page))
    for (section, page), blocks in runs:
        pieces = itertools.chain.from_iterable(_pieces(b.text, size) for b in blocks)
        for text in _pack(pieces, size, overlap):
            chunks.append(Chunk(text, section, page, len(chunks)))
    return chunks

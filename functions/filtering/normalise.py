"""Text normalised against evasion, with every character mapped back to the original.

Every check in :mod:`functions.filtering` runs on :class:`Normalised` text, never on
the raw string:

* NFKC, so full-width digits and letters (U+FF10 to U+FF5A) and other
  compatibility forms read as their plain ASCII twins;
* invisible characters removed: format characters (category ``Cf``: zero-width
  space and joiners, BOM, bidi controls, soft hyphen), variation selectors and
  combining marks (``Mn``), so ``1<U+200B>38`` and ``ig<U+0308>nore`` read as
  ``138`` and ``ignore``;
* case folded;
* the many Unicode dashes read as ``-``.

Separators *inside numbers* (``138 1234 5678``, ``138-1234-5678``) are kept here
and tolerated by the detectors' patterns instead: removing them would fuse
unrelated neighbouring numbers into one.

Normalisation is per character, so ``normalise(a + b).text == normalise(a).text +
normalise(b).text``: a stream can be normalised chunk by chunk. Each normalised
character comes from exactly one original character, recorded in ``origin``, so a
normalised span maps back to the exact original span (:meth:`Normalised.span`).
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

# Characters that NFKC and case folding leave alone and that are never invisible:
# ASCII (lowered separately, one to one), CJK ideographs and CJK punctuation.
_SPECIAL = re.compile(r"[^\x00-\x7f\u4e00-\u9fff\u3001-\u3035]")
_DASHES = str.maketrans(dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58", "-"))
_INVISIBLE_CATEGORIES = frozenset({"Cf", "Mn", "Me"})


def fold(char: str) -> str:
    """One original character as the detectors read it ("" when it is invisible)."""
    if unicodedata.category(char) in _INVISIBLE_CATEGORIES or "\ufe00" <= char <= "\ufe0f":
        return ""
    folded = unicodedata.normalize("NFKC", char).casefold().translate(_DASHES)
    # NFKC may itself produce combining marks (e.g. from precomposed compatibility forms)
    return "".join(c for c in folded if unicodedata.category(c) not in _INVISIBLE_CATEGORIES)


@dataclass(frozen=True, slots=True)
class Normalised:
    """``text`` as the detectors read it; ``origin[i]`` is the original index of ``text[i]``.

    ``origin`` is ``None`` when the mapping is the identity (the common ASCII case).
    """

    text: str
    original: str
    origin: Sequence[int] | None = None

    def span(self, start: int, end: int) -> tuple[int, int]:
        """The original span of the normalised span ``[start, end)``."""
        if self.origin is None:
            return start, end
        if start >= end:
            at = self.origin[start] if start < len(self.origin) else len(self.original)
            return at, at
        return self.origin[start], self.origin[end - 1] + 1

    def index(self, original_index: int) -> int:
        """The first normalised index whose character comes at or after ``original_index``."""
        if self.origin is None:
            return original_index
        return bisect.bisect_left(self.origin, original_index)


def normalise(text: str) -> Normalised:
    """``text`` normalised for evasion, with its offset map (see the module docstring)."""
    if text.isascii():
        return Normalised(text.lower(), text)
    parts: list[str] = []
    origin: list[int] = []
    last = 0
    for match in _SPECIAL.finditer(text):
        i = match.start()
        if i > last:
            parts.append(text[last:i].lower())
            origin.extend(range(last, i))
        replacement = fold(text[i])
        parts.append(replacement)
        origin.extend([i] * len(replacement))
        last = i + 1
    if last == 0:
        return Normalised(text.lower(), text)
    parts.append(text[last:].lower())
    origin.extend(range(last, len(text)))
    return Normalised("".join(parts), text, origin)

"""Data classification: four ordered levels and how a request's level is decided.

    public < internal < confidential < secret

A request's level is the highest of: the tenant's default, the level of every
detection in it (per entity type, or per lexicon entry), and the level the
caller asks for in the :data:`CLASSIFICATION_HEADER` header. The header can only
*raise* the level: asking for ``public`` on a request that carries an ID number
changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from functions.errors import InvalidRequestError

CLASSIFICATION_HEADER = "x-enclave-classification"


class Level(StrEnum):
    """A classification level. Compares by rank, not alphabetically."""

    PUBLIC = "public"
    INTERNAL = "internal"
    CONFIDENTIAL = "confidential"
    SECRET = "secret"

    @property
    def rank(self) -> int:
        return _RANKS[self]

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Level):
            return NotImplemented
        return self.rank < other.rank

    def __le__(self, other: object) -> bool:
        if not isinstance(other, Level):
            return NotImplemented
        return self.rank <= other.rank

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, Level):
            return NotImplemented
        return self.rank > other.rank

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, Level):
            return NotImplemented
        return self.rank >= other.rank

    __hash__ = StrEnum.__hash__


_RANKS = {level: rank for rank, level in enumerate(Level)}


def highest(levels: Iterable[Level], floor: Level = Level.PUBLIC) -> Level:
    """The highest of ``levels``, and at least ``floor``."""
    return max((floor, *levels))


def parse_level(value: str, *, param: str = CLASSIFICATION_HEADER) -> Level:
    """``value`` as a :class:`Level` (case and blanks ignored); 400 if it names none."""
    try:
        return Level(value.strip().lower())
    except ValueError:
        names = ", ".join(level.value for level in Level)
        raise InvalidRequestError(
            f"Unknown classification level {value.strip()[:32]!r}; expected one of {names}.",
            param=param,
        ) from None


def raise_level(level: Level, requested: str | None) -> Level:
    """``level`` raised to the caller's ``requested`` level, never lowered."""
    if requested is None or not requested.strip():
        return level
    return max(level, parse_level(requested))

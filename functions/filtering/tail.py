"""The live tail of a streamed answer: what could still become, or change, a finding.

:class:`~functions.filtering.output.OutputGuard` releases everything before the live
tail at once and holds the tail until more text settles it. This module answers for
the personal-data and secret patterns of :mod:`functions.filtering.pii` (the lexicon
answers for its terms and rules). Everything those patterns match is a *token* of a
few ASCII characters (a number with single spaces, an email, a key, an address),
except the shapes handled one by one below: an open private key block, an assignment
or a bearer token whose value is still coming, and a long number whose context words
may still follow it.

Over-approximates on purpose: a tail held for nothing costs a few milliseconds, one
released too early leaks.
"""

from __future__ import annotations

import re

from functions.filtering.pii import DETECTORS, SECRET_KEYS

_DIGIT = re.compile(r"\d")
MAX_TOKEN = 256  # a longer run is split, as the whole answer's scan would not be
_TOKEN_CHARS = frozenset("0123456789abcdefghijklmnopqrstuvwxyz@._%+-:/=~()_")
# a number whose check reads the 16 characters after it (context words) is live until
# they are in: any run of 7 or more digits (passport, SSN, landline, card)
_AFTER = 16
# names and addresses (when an output policy acts on them) are read from their context
# on both sides and may chain several parts: a streamed answer holds this many
# characters whole; findings up to this long are guaranteed the same as the whole
# answer's
PROSE_WINDOW = 96
_WEAK_DIGITS = 7
_KEY_HEADER = re.compile(r"-----begin [a-z0-9 ]*(?:private key-{0,4})?\Z")
_BY_RULE = {d.rule: d for d in DETECTORS}
_KEY_BLOCK = _BY_RULE["private_key"].pattern
_KEY_END = re.compile(r"-----end [a-z0-9 ]*private key-----")
_ASSIGNMENT_TAIL = re.compile(
    rf"(?:{SECRET_KEYS})[\"']?\s*(?:i|(?:[:=]|is|是|为)\s*[\"']?"
    r"[^\s\"'`,;。、<>{}()\[\]]{0,128})?"
)
_ASSIGNMENT_KEYS = re.compile(SECRET_KEYS)
_BEARER_TAIL = re.compile(r"bearer\s+[a-z0-9\-._~+/]*=*")
_ASSIGNMENT = _BY_RULE["assignment"]
_PREFIXED = (_BY_RULE["bearer"], _ASSIGNMENT)
_TAIL_REACH = 384  # how far back a key word or "bearer" may start a live assignment
# CJK key words (two characters), whose first one a tail may end with (ASCII ones are
# tokens already)
KEY_WORDS: tuple[str, ...] = ("密码", "口令", "密钥", "令牌")


def _in_token(text: str, i: int) -> bool:
    char = text[i]
    if char in _TOKEN_CHARS:
        return True
    # one space inside a number (138 1234 5678, +86 138, (010) 6234): part of it, and at
    # the very end one that the next digit may follow
    if not char.isspace() or i == 0:
        return False
    before = text[i - 1]
    return (before.isdigit() or before == ")") and (i + 1 == len(text) or text[i + 1].isdigit())


def token_start(text: str, end: int, floor: int) -> int:
    """Where the token that ends just before ``end`` starts (``end`` if none; at most
    ``MAX_TOKEN`` back, never before ``floor``)."""
    start = end
    while start > floor and end - start < MAX_TOKEN and _in_token(text, start - 1):
        start -= 1
    return start


def live_start(text: str, pos: int = 0) -> int:
    """The start of the shortest tail of ``text[pos:]`` outside which no personal-data or
    secret finding can appear or change whatever follows (``len(text)``: none).

    Over-approximates: a tail held for nothing costs a few milliseconds, one released too
    early leaks. Prose that ends in a space or punctuation, and CJK text without digits,
    key words or an open key block, has no live tail.
    """
    n = len(text)
    live = token_start(text, n, pos)
    begin = text.find("-----begin", pos)
    if begin >= 0:
        for m in _KEY_BLOCK.finditer(text, begin):  # an open private key block runs to the end
            if m.end() == n and _KEY_END.search(m.group()) is None:
                live = min(live, m.start())
                break
        begin = text.rfind("-----begin", pos)
        if _KEY_HEADER.match(text, begin):
            live = min(live, begin)
    low = max(pos, n - _TAIL_REACH)
    if _ASSIGNMENT.applies(text):
        for m in _ASSIGNMENT_KEYS.finditer(text, low):
            if m.start() < live and _ASSIGNMENT_TAIL.fullmatch(text, m.start()):
                live = m.start()
                break
    for word in KEY_WORDS:  # the first character of 密码 could be the start of one
        if text.endswith(word[0], pos):
            live = min(live, n - 1)
    bearer = text.rfind("bearer", low)
    if 0 <= bearer < live and _BEARER_TAIL.fullmatch(text, bearer):
        live = bearer
    return min(live, _weak_number_start(text, pos))


def keyed_spans(text: str, pos: int = 0) -> list[tuple[int, int]]:
    """The matches of ``text[pos:]`` whose finding starts after a key word (a bearer
    token, an assignment's value): a later scan that started between the two would miss
    the finding, so a stream is never cut inside one."""
    return [m.span() for d in _PREFIXED if d.applies(text) for m in d.pattern.finditer(text, pos)]


def _weak_number_start(text: str, pos: int) -> int:
    """The start of a long number whose context words may still come after it."""
    n = len(text)
    at = max(pos, n - _AFTER - 1)
    while (m := _DIGIT.search(text, at)) is not None:
        start = token_start(text, m.start() + 1, pos)
        end = m.start() + 1
        while end < n and end - start < MAX_TOKEN and _in_token(text, end):
            end += 1
        if sum(c.isdigit() for c in text[start:end]) >= _WEAK_DIGITS:
            return start
        at = end
    return n

"""Operator lexicons: sensitive terms and regex rules, each with an action.

File format (UTF-8, one entry per line, fields separated by a TAB)::

    # a comment; blank lines are ignored
    term<TAB>action<TAB>category[<TAB>level]
    re:pattern<TAB>action<TAB>category[<TAB>level]

* ``term`` is matched on normalised text (:mod:`~functions.filtering.normalise`),
  so full-width ``CONFIDENTIAL`` and ``Confi<U+200B>dential`` hit the entry ``confidential``.
  A term that starts or ends with an ASCII letter or digit only matches at a word
  boundary on that side (``secret`` does not hit ``secretary``); CJK terms match
  anywhere. Terms shorter than two characters are refused.
* ``re:`` entries are Python regular expressions, run on the normalised
  (case-folded) text.
* ``action`` is ``block``, ``mask`` or ``flag``; ``category`` is a short name
  (``codeword``) that becomes the placeholder type of a masked term
  (``<CODEWORD_1>``); ``level`` is ``public``/``internal``/``confidential``/``secret``
  (default ``internal``) and feeds the request's classification.
* When files repeat a term, the later file wins, so a tenant's file (loaded after
  the organisation's) can change an entry's action.

Terms are matched with ``ahocorasick_rs`` in *overlapping* mode: every occurrence
of every term is reported, nested ones included (``内部`` inside ``内部资料``).
Leftmost-longest would be faster by a hair but hides a short ``block`` term nested
in a longer ``flag`` term; the engine instead resolves overlaps by severity first,
then length (:func:`functions.filtering.results.resolve`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import ahocorasick_rs

from functions.filtering.classify import Level
from functions.filtering.normalise import Normalised, normalise
from functions.filtering.policy import EntityAction
from functions.filtering.results import Hit

_ACTIONS: frozenset[str] = frozenset({"block", "mask", "flag"})
_WORD = re.compile(r"[0-9a-z]")
_WORD_CHARS = frozenset("0123456789abcdefghijklmnopqrstuvwxyz")


@dataclass(frozen=True, slots=True)
class LexiconEntry:
    pattern: str  # the normalised term, or the regex source for a rule
    action: EntityAction
    category: str
    level: Level
    is_regex: bool
    where: str  # "file:line", for error messages and detections

    @property
    def type(self) -> str:
        name = re.sub(r"[^A-Z0-9]+", "_", self.category.upper()).strip("_")[:40]
        return name if name[:1].isalpha() else "TERM"


def parse_lexicon(text: str, where: str = "<lexicon>") -> list[LexiconEntry]:
    """The entries of one lexicon file's ``text``; ``ValueError`` names the bad line."""
    entries = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        entries.append(_entry(line.rstrip("\r\n"), f"{where}:{number}"))
    return entries


def _entry(line: str, where: str) -> LexiconEntry:
    fields = line.split("\t")
    if len(fields) not in (3, 4):
        raise ValueError(f"{where}: expected term<TAB>action<TAB>category[<TAB>level]")
    term, action, category = (field.strip() for field in fields[:3])
    if action not in _ACTIONS:
        raise ValueError(f"{where}: action must be block, mask or flag, not {action!r}")
    try:
        level = Level(fields[3].strip()) if len(fields) == 4 else Level.INTERNAL
    except ValueError:
        raise ValueError(f"{where}: unknown level {fields[3].strip()!r}") from None
    is_regex = term.startswith("re:")
    pattern = term[3:] if is_regex else normalise(term).text
    if is_regex:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"{where}: bad regex: {exc}") from None
    elif len(pattern) < 2:
        raise ValueError(f"{where}: terms must have at least two characters")
    return LexiconEntry(pattern, action, category, level, is_regex, where)  # type: ignore[arg-type]


def load_lexicon(ref: str) -> list[LexiconEntry]:
    """Entries from ``builtin:NAME`` (a shipped sample, ``data/lexicon_NAME.txt``) or a path."""
    if ref.startswith("builtin:"):
        name = f"lexicon_{ref.removeprefix('builtin:')}.txt"
        text = resources.files("functions.filtering").joinpath("data", name).read_text("utf-8")
        return parse_lexicon(text, ref)
    return parse_lexicon(Path(ref).read_text("utf-8"), ref)


class Lexicon:
    """Compiled terms and rules; :meth:`find` reports every boundary-respecting hit."""

    def __init__(self, entries: Iterable[LexiconEntry]) -> None:
        terms: dict[str, LexiconEntry] = {}
        rules: dict[str, LexiconEntry] = {}
        for entry in entries:  # later entries win
            (rules if entry.is_regex else terms)[entry.pattern] = entry
        self._terms = list(terms.values())
        self._matcher = (
            ahocorasick_rs.AhoCorasick([e.pattern for e in self._terms]) if self._terms else None
        )
        self._rules = [(re.compile(e.pattern), e) for e in rules.values()]
        self.max_term_chars = max((len(e.pattern) for e in self._terms), default=0)
        self._live = _LiveTerms(
            [e.pattern for e in self._terms], [e.pattern for e in rules.values()]
        )

    @classmethod
    def load(cls, refs: Iterable[str]) -> Lexicon:
        return cls(entry for ref in refs for entry in load_lexicon(ref))

    def __len__(self) -> int:
        return len(self._terms) + len(self._rules)

    def find(self, norm: Normalised, start: int = 0) -> list[Hit]:
        """Hits in ``norm``, with offsets in the original text (``start``: the first
        normalised index a hit may start at; the text before it is context only)."""
        text = norm.text
        found: list[tuple[LexiconEntry, int, int]] = []
        if self._matcher is not None:
            for index, begin, end in self._matcher.find_matches_as_indexes(text, overlapping=True):
                entry = self._terms[index]
                if begin >= start and _bounded(text, begin, end):
                    found.append((entry, begin, end))
        for rule, entry in self._rules:
            found.extend(
                (entry, m.start(), m.end())
                for m in rule.finditer(text, start)
                if m.end() > m.start()
            )
        return [_hit(norm, entry, begin, end) for entry, begin, end in found]

    def live_start(self, text: str, pos: int, reach: int) -> int:
        """Where a tail of normalised ``text[pos:]`` starts that could still become a hit
        (``len(text)``: none); ``reach``: how long a rule's match may run (see
        :class:`_LiveTerms`)."""
        return self._live.start(text, pos, reach)


def _bounded(text: str, start: int, end: int) -> bool:
    if _WORD.match(text, start) and start > 0 and _WORD.match(text, start - 1):
        return False
    return not (_WORD.match(text, end - 1) and end < len(text) and _WORD.match(text, end))


def _hit(norm: Normalised, entry: LexiconEntry, start: int, end: int) -> Hit:
    o_start, o_end = norm.span(start, end)
    canonical = norm.text[start:end]
    return Hit(
        entry.type, o_start, o_end, entry.action, "lexicon", entry.where, entry.level, canonical
    )


class _LiveTerms:
    """Which tail of a stream could still grow into a term or rule match.

    A term is live while the text ends with one of its proper prefixes, or with the
    whole term when it ends with a letter or digit (the next character decides its word
    boundary): the state of an Aho-Corasick automaton, found here by looking the last
    ``max_term_chars`` suffixes up in a set. A ``re:`` rule is live from an occurrence of
    its literal prefix (``mrn``, ``工号``) in the last ``reach`` characters, or while
    the text ends with a prefix of it; a rule with no literal prefix keeps the last
    ``reach`` characters live, the fixed window of old.
    """

    def __init__(self, terms: list[str], rules: list[str]) -> None:
        literals = [_literal_prefix(rule) for rule in rules]
        self._triggers = [literal for literal in literals if literal]
        self._windowed = any(not literal for literal in literals)
        self._prefixes = {term[:k] for term in terms for k in range(1, len(term))}
        self._prefixes |= {term for term in terms if _WORD.match(term[-1])}
        self._firsts = {prefix[0] for prefix in self._prefixes}
        self._longest = max((len(term) for term in terms), default=0)
        # a rule's literal need not start a word: each of its prefixes, checked as such
        self._trigger_prefixes = {t[:k] for t in self._triggers for k in range(1, len(t))}

    def start(self, text: str, pos: int, reach: int) -> int:
        n = len(text)
        # a rule with no literal prefix keeps the fixed window; terms longer than that
        # window are still held from their first character (the scan below)
        live = max(pos, n - reach) if self._windowed else n
        for at in range(max(pos, n - self._longest), n):
            char = text[at]
            # a term that starts with a letter or digit starts a word: skip the middle of one
            if char in _WORD_CHARS and at > 0 and text[at - 1] in _WORD_CHARS:
                continue
            if char in self._firsts and text[at:] in self._prefixes:
                live = at
                break
        for prefix in self._trigger_prefixes:
            if n - len(prefix) < live and text.endswith(prefix, pos):
                live = n - len(prefix)
        low = max(pos, n - reach)
        for trigger in self._triggers:
            at = text.find(trigger, low)
            if 0 <= at < live:
                live = at
        return live


def _literal_prefix(pattern: str) -> str:
    """The text every match of ``pattern`` starts with ("" when unsure)."""
    depth, escaped, in_class = 0, False, False
    for char in pattern:  # an alternation at the top level: no common prefix
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char in "()":
            depth += 1 if char == "(" else -1
        elif char == "|" and depth == 0:
            return ""
    body = pattern.removeprefix("\\b")
    literal = re.match(r"[^.^$*+?{}\[\]|()\\]*", body)
    prefix = literal.group() if literal else ""
    if prefix and body[len(prefix) : len(prefix) + 1] in ("*", "?", "{"):
        prefix = prefix[:-1]  # the last character is optional or repeated
    return prefix

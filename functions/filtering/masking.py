"""Reversible masking: typed placeholders per conversation, and their exact restoration.

A :class:`Vault` hands out ``<TYPE_n>`` placeholders (``<PHONE_1>``, ``<EMAIL_2>``):
the same value (by canonical form: ``138-1234-5678`` and ``13812345678`` are one
phone) gets the same placeholder throughout a conversation, numbered per type in
order of first appearance. Restoration gives back the first surface form seen.

The gateway is stateless, so the vault is *rebuilt on every request* by masking
the conversation's messages again, in order, from the raw text the client sends
back; the same messages always give the same numbering. A vault only resolves
placeholders it issued itself. Placeholder-shaped text already present in the
conversation (a user typing ``<PHONE_1>``) is *reserved*: the vault never issues
that name, so neither the text a user injects nor a placeholder the model invents
can be resolved to anyone's data; both stay as they are.

:class:`StreamRestorer` restores an answer streamed in chunks, holding back a
possible partial placeholder (``<PHO``) until it is complete or cannot be one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

PLACEHOLDER = re.compile(r"<([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*)_([1-9][0-9]{0,5})>")
# the longest placeholder we issue or resolve: "<" + type (≤ 40) + "_" + 6 digits + ">"
_MAX_PLACEHOLDER = 49
_PARTIAL = re.compile(r"<(?:[A-Z][A-Z0-9_]{0,46})?$")


class Vault:
    """Placeholders issued in one conversation, and the values behind them."""

    def __init__(self, reserved: Iterable[str] = ()) -> None:
        self._reserved = frozenset(reserved)
        self._by_value: dict[tuple[str, str], str] = {}
        self._values: dict[str, str] = {}
        self._counts: dict[str, int] = {}
        self._restorable: set[str] = set()  # placeholders of values the caller itself sent

    @classmethod
    def for_texts(cls, texts: Iterable[str]) -> Vault:
        """An empty vault that will not issue any placeholder already written in ``texts``."""
        return cls(m.group() for text in texts for m in PLACEHOLDER.finditer(text))

    def placeholder(
        self, type_: str, canonical: str, original: str, *, restorable: bool = True
    ) -> str:
        """The placeholder of this value, issuing the next free one on first sight.

        Only values seen at least once with ``restorable`` (sent by the caller) are ever
        restored into an answer; values from the operator's system prompt or from
        retrieved documents are masked all the same, but stay placeholders.
        """
        key = (type_, canonical)
        issued = self._by_value.get(key)
        if issued is not None:
            if restorable:
                self._restorable.add(issued)
            return issued
        count = self._counts.get(type_, 0)
        while True:
            count += 1
            issued = f"<{type_}_{count}>"
            if issued not in self._reserved:
                break
        self._counts[type_] = count
        self._by_value[key] = issued
        self._values[issued] = original
        if restorable:
            self._restorable.add(issued)
        return issued

    def resolve(self, placeholder: str) -> str | None:
        """The caller's value behind ``placeholder`` if this vault issued it, else ``None``."""
        return self._values.get(placeholder) if placeholder in self._restorable else None

    def restore(self, text: str, escape: Callable[[str], str] | None = None) -> str:
        """``text`` with every placeholder of a caller's value replaced by that value
        (passed through ``escape`` first: inside a JSON string, say)."""
        if "<" not in text:
            return text

        def value(m: re.Match[str]) -> str:
            found = self.resolve(m.group())
            if found is None:
                return m.group()
            return escape(found) if escape is not None else found

        return PLACEHOLDER.sub(value, text)

    def __len__(self) -> int:
        return len(self._values)

    def __contains__(self, placeholder: object) -> bool:
        return placeholder in self._values


class StreamRestorer:
    """Restores placeholders in a streamed answer; see the module docstring.

    ``feed`` returns the text that is safe to emit now; ``finish`` the rest.
    Concatenating every return value equals ``vault.restore(whole answer)``.
    """

    def __init__(self, vault: Vault, escape: Callable[[str], str] | None = None) -> None:
        self._vault = vault
        self._escape = escape
        self._pending = ""

    def feed(self, chunk: str) -> str:
        text = self._pending + chunk
        if "<" not in text:
            self._pending = ""
            return text
        cut = _hold_from(text)
        self._pending = text[cut:]
        return self._vault.restore(text[:cut], self._escape)

    def finish(self) -> str:
        text, self._pending = self._pending, ""
        return self._vault.restore(text, self._escape)


def _hold_from(text: str) -> int:
    """Where a possible, still incomplete placeholder starts at the end of ``text``."""
    start = text.rfind("<", max(0, len(text) - _MAX_PLACEHOLDER))
    if start >= 0 and _PARTIAL.match(text, start):
        return start
    return len(text)

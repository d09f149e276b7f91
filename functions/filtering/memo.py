"""What scanning a text found, remembered for the next request that carries it again.

Why: a chat frontend sends the whole conversation with every turn, so without this
the gateway scans the first message once per turn, and a long conversation's scans
grow with the square of its length. Remembered per (tenant, direction, text): the
lexicon and PII hits (offsets in the text, so any request carrying the same text can
mask it with its own placeholders) and, once computed, the injection score.

The memo holds no text a user wrote. Its key is a BLAKE2b digest of tenant, direction
and text; a finding keeps where it is in the text and what it is, and, for the vault
(one placeholder per value, whatever its surface form), its canonical value only as a
digest keyed with a secret made afresh in each process. The tenant is in the key so
that one tenant cannot tell, from how fast its request is answered, whether another
tenant sent the same text (invariant I6).
Bounded: :data:`ENTRIES` digests, least recently used dropped first; a text with
more than :data:`MAX_HITS` findings (a paste of a phone book) is not remembered, so
its hits never pin much memory. One lock: ``/v1/filter`` may scan from a thread.
"""

from __future__ import annotations

import dataclasses
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass
from hashlib import blake2b
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from functions.filtering.injection import InjectionScore
    from functions.filtering.results import Hit

ENTRIES = 8_192
MAX_HITS = 64


@dataclass(slots=True)
class Memo:
    hits: tuple[Hit, ...]
    injection: InjectionScore | None = None  # set by the first scan that scores it


class ScanMemo:
    """An LRU of :class:`Memo` by digest; thread-safe."""

    def __init__(self, entries: int = ENTRIES) -> None:
        self._entries: OrderedDict[bytes, Memo] = OrderedDict()
        self._secret = secrets.token_bytes(32)  # keys the canonical values' digests
        self._size = entries
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    @staticmethod
    def key(tenant: str, direction: str, text: str) -> bytes:
        digest = blake2b(digest_size=16, person=b"enclave-scan")
        digest.update(f"{tenant}\0{direction}\0".encode())
        digest.update(text.encode("utf-8", "surrogatepass"))
        return digest.digest()

    def get(self, key: bytes) -> Memo | None:
        with self._lock:
            memo = self._entries.get(key)
            if memo is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return memo

    def scored(self, key: bytes) -> bool:
        """Whether the text of ``key`` has its injection score remembered (no statistics
        counted: injection stage 2's preparation asks before the scan does)."""
        with self._lock:
            memo = self._entries.get(key)
            return memo is not None and memo.injection is not None

    def put(self, key: bytes, hits: list[Hit]) -> Memo:
        """Remember ``hits``; the memo to use, remembered or not (canonical values
        digested either way, so that every text of a request keys the vault alike)."""
        memo = Memo(tuple(dataclasses.replace(h, canonical=self._seal(h.canonical)) for h in hits))
        if len(hits) > MAX_HITS:
            return memo
        with self._lock:
            self._entries[key] = memo
            self._entries.move_to_end(key)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)
        return memo

    def _seal(self, canonical: str) -> str:
        return blake2b(canonical.encode("utf-8", "surrogatepass"), key=self._secret).hexdigest()

    def __len__(self) -> int:
        return len(self._entries)

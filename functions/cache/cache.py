"""The response cache: answers kept at the masked layer, restored for each caller.

What is kept is the answer *as the model gave it to a masked conversation*, after
the output guard and before the restore: placeholders (``<PHONE_1>``) stay
placeholders, so no caller's value is ever written to the cache. A hit is
guarded and restored again with the current caller's own vault; two callers who
send different phone numbers in the same sentence share one entry and each gets
their own number back.

The key covers the tenant and the whole request as masked (every message,
system prompt included, retrieved passages, tools, response format, the model and
every generation parameter), minus what does not change the answer (``stream``,
``stream_options``, ``user``, ``metadata``): a plain and a streamed request share
an entry. What is looked up and kept, per tenant policy (:class:`CacheSettings`):

- ``deterministic`` (default): requests with ``temperature`` 0 or a ``seed``;
  ``all``: every request; ``off``: none. Requests whose input filtering is off are
  never cached (their text is not masked);
- answers that ended by themselves (``stop``/``length`` on every choice): never a
  filtered, cut, failed or tool-calling answer;
- conversations classified at ``sensitive_at`` or above: sealed with AES-256-GCM
  under a key derived per tenant (HKDF-SHA256) from the audit log's active KEK,
  bound to the entry's key, or not kept at all (``sensitive: skip``, or no KEK);
- ``Cache-Control: no-cache`` skips the lookup (the fresh answer is kept);
  ``no-store`` skips both.

Semantic matching (off unless ``semantic_threshold`` is set) lets a single-turn
question share the answer of a cached one whose embedding lies within the
threshold, in the same tenant and model with the same system prompt and
parameters. It trades exactness for hits: at a loose threshold "What is my
balance?" and "What was my balance last year?" can share an answer. Only
operators who have measured their own traffic should turn it on.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import os
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from loguru import logger
from starlette.datastructures import Headers

from functions.cache.settings import CacheSettings
from functions.cache.store import (
    CacheStore,
    CacheStoreError,
    MemoryStore,
    StoreStats,
    tenant_prefix,
)
from functions.filtering.classify import Level
from functions.wire import ChatCompletionRequest

Result = Literal["hit", "miss", "bypass"]
# what does not change an answer: left out of the key
_NOT_IN_KEY = frozenset({"stream", "stream_options", "user", "metadata"})
_ENTRY_VERSION = 1

# a question's embedding, computed off the event loop (semantic matching only)
Embed = Callable[[str], Awaitable[npt.NDArray[np.float32]]]


@dataclass(frozen=True, slots=True)
class Lookup:
    """What the cache made of one request; rides on the request context."""

    result: Result
    reason: str = ""  # why a bypass: "no-store", "not deterministic", "sensitive"…
    key: str | None = None  # where the answer is (hit) or will be (fill) kept
    answer: dict[str, Any] | None = None  # a hit: the masked answer, to guard and restore
    fill: bool = False  # keep the answer when it completes
    sealed: bool = False  # keep it encrypted
    ttl_s: float = 0.0
    similarity: float | None = None  # a semantic hit: how close the question was
    question: tuple[str, npt.NDArray[np.float32]] | None = None  # semantic: where to index

    @property
    def decision(self) -> str:
        if self.result == "bypass" and self.reason:
            return f"bypass:{self.reason}"
        if self.similarity is not None:
            return f"hit:semantic:{self.similarity:.3f}"
        return self.result


def request_key(tenant: str, body: ChatCompletionRequest) -> str:
    """The entry's key: the tenant and a digest of everything that shapes the answer."""
    fields = {k: v for k, v in body.upstream_fields().items() if k not in _NOT_IN_KEY}
    digest = hashlib.sha256(orjson.dumps(fields, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return tenant_prefix(tenant) + digest


def _single_turn(body: ChatCompletionRequest) -> tuple[str, str] | None:
    """(namespace, question) of a single-turn request: one user message, no other turns."""
    users = [m for m in body.messages if m.role == "user"]
    if len(users) != 1 or any(m.role not in ("system", "developer", "user") for m in body.messages):
        return None
    fields = {k: v for k, v in body.upstream_fields().items() if k not in _NOT_IN_KEY}
    fields["messages"] = [
        m.model_dump(exclude_none=True) for m in body.messages if m.role != "user"
    ]
    namespace = hashlib.sha256(orjson.dumps(fields, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return namespace, users[0].text()


def cache_control(headers: Headers) -> tuple[bool, bool]:
    """(may read, may write) from the client's ``Cache-Control``."""
    directives = {
        d.strip().split("=")[0].lower() for d in headers.get("cache-control", "").split(",")
    }
    if "no-store" in directives:
        return False, False
    return "no-cache" not in directives, True


class Sealer:
    """AES-256-GCM per tenant, keyed by HKDF-SHA256 from the audit log's KEKs."""

    def __init__(self, keks: Mapping[str, bytes], active: str | None) -> None:
        self._keks, self.active = dict(keks), active
        self._derived: dict[tuple[str, str], AESGCM] = {}

    def _aead(self, kek_id: str, tenant: str) -> AESGCM | None:
        aead = self._derived.get((kek_id, tenant))
        if aead is None:
            kek = self._keks.get(kek_id)
            if kek is None:
                return None
            info = b"enclave/response-cache/v1/" + tenant.encode()
            key = HKDF(hashes.SHA256(), length=32, salt=None, info=info).derive(kek)
            aead = self._derived[(kek_id, tenant)] = AESGCM(key)
        return aead

    def seal(self, tenant: str, key: str, plain: bytes) -> bytes | None:
        aead = self._aead(self.active, tenant) if self.active else None
        if aead is None:
            return None
        nonce = os.urandom(12)
        box = aead.encrypt(nonce, plain, key.encode())  # the key is the AAD: no swapping
        return orjson.dumps({"kek": self.active, "nonce": _b64(nonce), "box": _b64(box)})

    def open(self, tenant: str, key: str, sealed: dict[str, Any]) -> bytes | None:
        aead = self._aead(str(sealed.get("kek")), tenant)
        if aead is None:
            return None  # the KEK is gone: the entry is unreadable, so a miss
        try:
            nonce, box = base64.b64decode(sealed["nonce"]), base64.b64decode(sealed["box"])
            return aead.decrypt(nonce, box, key.encode())
        except (InvalidTag, KeyError, ValueError, TypeError):
            return None


class ResponseCache:
    def __init__(
        self,
        settings: CacheSettings,
        store: CacheStore,
        sealer: Sealer,
        embed: Embed | None = None,
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self._sealer = sealer
        self._embed = embed
        self._on_error = on_error or (lambda op: None)
        # semantic index: (tenant, namespace) -> entry key -> question vector (LRU)
        self._questions: dict[tuple[str, str], OrderedDict[str, npt.NDArray[np.float32]]] = {}

    @classmethod
    def from_settings(
        cls,
        settings: CacheSettings,
        keks: Mapping[str, bytes],
        active_kek: str | None,
        embed: Embed | None = None,
        on_error: Callable[[str], None] | None = None,
    ) -> ResponseCache:
        store: CacheStore
        if settings.backend == "redis":
            from functions.cache.redis import RedisStore  # redis-py: only when configured

            store = RedisStore(settings.redis_url.get_secret_value(), settings.redis_prefix)
        else:
            store = MemoryStore(settings.max_entries, settings.max_bytes)
        return cls(settings, store, Sealer(keks, active_kek), embed, on_error)

    async def lookup(
        self,
        tenant: str,
        body: ChatCompletionRequest,
        level: Level | None,
        headers: Headers,
        filtered: bool,
    ) -> Lookup:
        """Hit, miss or bypass for ``body`` (already masked) of ``tenant``."""
        policy = self.settings.for_tenant(tenant)
        may_read, may_write = cache_control(headers)
        reason = _bypass_reason(policy, body, level, filtered, may_read or may_write)
        sealed = level is not None and level >= policy.sensitive_at
        if reason is None and sealed and (policy.sensitive == "skip" or not self._sealer.active):
            reason = "sensitive"  # too sensitive to keep, or no key to seal it with
        if reason is not None:
            return Lookup("bypass", reason)
        try:
            key = request_key(tenant, body)
        except orjson.JSONEncodeError:  # cannot happen for a validated body; never a 500
            return Lookup("bypass", "unkeyable")
        fill = Lookup("miss", key=key, fill=may_write, sealed=sealed, ttl_s=policy.ttl_s)
        if not may_read:
            return Lookup(
                "bypass", "no-cache", key=key, fill=True, sealed=sealed, ttl_s=policy.ttl_s
            )
        answer = await self._read(tenant, key)
        if answer is not None:
            return Lookup("hit", key=key, answer=answer)
        if policy.semantic_threshold is None or self._embed is None:
            return fill
        return await self._semantic(tenant, body, policy.semantic_threshold, fill)

    async def _semantic(
        self, tenant: str, body: ChatCompletionRequest, threshold: float, fill: Lookup
    ) -> Lookup:
        turn = _single_turn(body)
        if turn is None or self._embed is None:  # (checked again for the type checker)
            return fill
        namespace, question = turn
        vector = (await self._embed(question)).reshape(-1)
        index = self._questions.get((tenant, namespace))
        asked = (namespace, vector)
        if index:
            keys = list(index)
            scores = np.stack([index[k] for k in keys]) @ vector
            best = int(np.argmax(scores))
            if float(scores[best]) >= threshold:
                answer = await self._read(tenant, keys[best])
                if answer is not None:
                    index.move_to_end(keys[best])
                    return Lookup(
                        "hit", key=keys[best], answer=answer, similarity=float(scores[best])
                    )
                del index[keys[best]]  # expired or evicted: forget the question too
        return dataclasses.replace(fill, question=asked)

    async def _read(self, tenant: str, key: str) -> dict[str, Any] | None:
        try:
            raw = await self.store.get(key)
        except CacheStoreError as exc:
            self._error("read", exc)
            return None
        if raw is None:
            return None
        try:
            entry = orjson.loads(raw)
            if entry.get("v") != _ENTRY_VERSION:
                return None
            if "sealed" in entry:
                plain = self._sealer.open(tenant, key, entry["sealed"])
                if plain is None:
                    return None
                entry = orjson.loads(plain)
            answer = entry.get("answer")
        except (orjson.JSONDecodeError, AttributeError, TypeError):
            return None
        return answer if isinstance(answer, dict) else None

    async def fill(self, tenant: str, lookup: Lookup, answer: dict[str, Any]) -> bool:
        """Keep ``answer`` (guarded, not restored) under ``lookup``'s key; whether it was."""
        if not lookup.fill or lookup.key is None:
            return False
        kept = {k: v for k, v in answer.items() if k != "enclave"}
        plain = orjson.dumps({"v": _ENTRY_VERSION, "answer": kept, "at": int(time.time())})
        if lookup.sealed:
            box = self._sealer.seal(tenant, lookup.key, plain)
            if box is None:
                return False
            plain = orjson.dumps({"v": _ENTRY_VERSION, "sealed": orjson.loads(box)})
        try:
            await self.store.put(lookup.key, plain, lookup.ttl_s)
        except CacheStoreError as exc:
            self._error("write", exc)
            return False
        if lookup.question is not None:
            self._remember(tenant, lookup.key, *lookup.question)
        return True

    def _remember(
        self, tenant: str, key: str, namespace: str, vector: npt.NDArray[np.float32]
    ) -> None:
        index = self._questions.setdefault((tenant, namespace), OrderedDict())
        index[key] = vector
        index.move_to_end(key)
        while len(index) > self.settings.semantic_max_entries:
            index.popitem(last=False)

    async def clear(self, tenant: str | None = None) -> int:
        if tenant is None:
            self._questions.clear()
        else:
            for slot in [s for s in self._questions if s[0] == tenant]:
                del self._questions[slot]
        return await self.store.clear(tenant)

    async def stats(self, tenant: str | None = None) -> StoreStats:
        return await self.store.stats(tenant)

    def _error(self, op: str, exc: Exception) -> None:
        self._on_error(op)
        logger.warning("response cache unavailable", op=op, error=str(exc))

    async def aclose(self) -> None:
        await self.store.aclose()


def _bypass_reason(
    policy: CacheSettings,
    body: ChatCompletionRequest,
    level: Level | None,
    filtered: bool,
    allowed: bool,
) -> str | None:
    if policy.backend == "off" or policy.mode == "off":
        return "off"
    if not allowed:
        return "no-store"
    if not filtered:
        return "unfiltered"  # not masked: its text and answer may hold raw values
    if policy.mode == "deterministic" and body.temperature != 0 and body.seed is None:
        return "not-deterministic"
    return None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()

"""Content capture: envelope encryption of prompt and answer, and KEK rotation.

Each record's content is encrypted with AES-256-GCM under a fresh random 256-bit
data key (96-bit random nonce, AAD ``"<chain>/<seq>/<trace_id>"`` so a ciphertext
cannot be moved to another record). The data key is wrapped (RFC 3394 AES key
wrap) by the active key-encryption key (KEK).

Decision: the wrapped data keys live in a sidecar, ``<chain>.keys.jsonl`` beside the
day's log, not in the record. The record keeps ``encrypted_content`` = {alg, nonce,
ciphertext}, all under the chain's MAC; rotating the KEK rewrites only sidecars, so
log files stay append-only and byte-for-byte unchanged, and ``verify`` passes after
a rotation without any MAC carve-out. A tampered sidecar cannot forge content: a
wrong data key fails the GCM tag. Its loss makes content unreadable, never
undetected. Rotation rewrites each sidecar atomically under the same flock the
writer appends under (in a bucket: replaced with ``If-Match``, and no writer ever
touches a sidecar again once its commit is written); old wrapped keys are gone
afterwards, so the old KEK is no longer needed (nor useful to whoever holds it).
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import (
    InvalidUnwrap,
    aes_key_unwrap,
    aes_key_wrap,
)

from functions.audit.errors import AuditKeyError
from functions.audit.store import AuditStorage, keys_path

ALG = "AES-256-GCM"
NONCE_BYTES = 12  # 96-bit GCM nonce


@dataclass(frozen=True, slots=True)
class WrappedKey:
    """One record's data key, wrapped by the KEK ``kek_id``."""

    seq: int
    kek_id: str
    wrapped: bytes

    def line(self) -> bytes:
        entry = {"seq": self.seq, "kek_id": self.kek_id, "wrapped": _b64(self.wrapped)}
        return orjson.dumps(entry) + b"\n"


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def aad_of(record: Mapping[str, Any]) -> bytes:
    return f"{record['chain']}/{record['seq']}/{record.get('trace_id')}".encode()


def encrypt_content(
    record: Mapping[str, Any], content: Any, kek_id: str, kek: bytes
) -> tuple[dict[str, str], WrappedKey]:
    """``(encrypted_content, wrapped data key)`` for ``content`` of a sealed-to-be record."""
    data_key = AESGCM.generate_key(bit_length=256)
    nonce = secrets.token_bytes(NONCE_BYTES)
    ciphertext = AESGCM(data_key).encrypt(nonce, orjson.dumps(content), aad_of(record))
    sealed = {"alg": ALG, "nonce": _b64(nonce), "ciphertext": _b64(ciphertext)}
    return sealed, WrappedKey(record["seq"], kek_id, aes_key_wrap(kek, data_key))


def _unwrap(wrapped: WrappedKey, keks: Mapping[str, bytes]) -> bytes:
    kek = keks.get(wrapped.kek_id)
    if kek is None:
        raise AuditKeyError(f"KEK {wrapped.kek_id!r} is not configured")
    try:
        return aes_key_unwrap(kek, wrapped.wrapped)
    except InvalidUnwrap as exc:
        raise AuditKeyError(f"KEK {wrapped.kek_id!r} does not unwrap seq {wrapped.seq}") from exc


def decrypt_content(
    record: Mapping[str, Any], wrapped: WrappedKey, keks: Mapping[str, bytes]
) -> Any:
    """The captured ``{"prompt": …, "answer": …}`` of ``record``; needs its KEK."""
    sealed = record.get("encrypted_content")
    if not isinstance(sealed, dict) or sealed.get("alg") != ALG:
        raise AuditKeyError(f"seq {record.get('seq')} has no encrypted content")
    nonce, ciphertext = base64.b64decode(sealed["nonce"]), base64.b64decode(sealed["ciphertext"])
    try:
        plain = AESGCM(_unwrap(wrapped, keks)).decrypt(nonce, ciphertext, aad_of(record))
    except InvalidTag as exc:
        raise AuditKeyError(f"seq {record.get('seq')}: content fails authentication") from exc
    return orjson.loads(plain)


def parse_keyring(data: bytes) -> dict[int, WrappedKey]:
    keys: dict[int, WrappedKey] = {}
    for line in data.splitlines():
        if line.strip():
            entry = orjson.loads(line)
            seq = int(entry["seq"])
            keys[seq] = WrappedKey(seq, entry["kek_id"], base64.b64decode(entry["wrapped"]))
    return keys


def load_keyring(log: Path) -> dict[int, WrappedKey]:
    """The wrapped data keys of the records in log file ``log``, by seq."""
    path = keys_path(log)
    return parse_keyring(path.read_bytes()) if path.exists() else {}


@dataclass(frozen=True, slots=True)
class RotateReport:
    files: int  # sidecars rewritten
    rewrapped: int  # data keys moved to the new KEK
    unchanged: int  # already under the new KEK


def _rewrapped(
    data: bytes, old_keys: Mapping[str, bytes], kek_id: str, kek: bytes, counts: list[int]
) -> bytes | None:
    """A sidecar's content with every key under ``kek_id``; None when none had to move."""
    keys = parse_keyring(data)
    moved = [k for k in keys.values() if k.kek_id != kek_id]
    counts[:] = [len(moved), len(keys) - len(moved)]
    if not moved:
        return None
    rewrapped = {
        k.seq: WrappedKey(k.seq, kek_id, aes_key_wrap(kek, _unwrap(k, old_keys))) for k in moved
    }
    merged = {**keys, **rewrapped}
    return b"".join(merged[seq].line() for seq in sorted(merged))


def rotate_kek(
    storage: AuditStorage, old_keys: Mapping[str, bytes], new_kek: tuple[str, bytes]
) -> RotateReport:
    """Re-wrap every data key in ``storage`` with ``new_kek`` = ``(kek_id, key)``.

    Ciphertexts and log files are not touched. A sidecar is replaced only once every
    key in it has been unwrapped; a key no KEK in ``old_keys`` opens raises
    :class:`AuditKeyError`, leaving that sidecar as it was.
    """
    kek_id, kek = new_kek
    files = rewrapped = unchanged = 0
    for name in storage.keyrings():
        counts = [0, 0]  # moved, kept: of the last read of the sidecar
        change = partial(_rewrapped, old_keys=old_keys, kek_id=kek_id, kek=kek, counts=counts)
        storage.rewrite_keyring(name, change)
        files += counts[0] > 0
        rewrapped += counts[0]
        unchanged += counts[1]
    return RotateReport(files=files, rewrapped=rewrapped, unchanged=unchanged)

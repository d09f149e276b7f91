"""API keys on operator-owned storage, stored only as HMAC-SHA256 under a server-side pepper.

    records.py       KeyRecord (what is stored), KeySpec (what is asked for), lifetimes, pruning
    store.py         KeyStore: the in-memory view for lookups, writes, freshness, fail-closed
    revalidation.py  the lifespan task that keeps a view fresh from the event loop
    backend.py       KeyBackend: the narrow interface of where records live
    local.py         LocalKeys: ``keys.json`` in a directory, under ``flock``
    bucket.py        BucketKeys: one index object in a bucket, replaced with ``If-Match``

:func:`key_store` picks the backend from ``ENCLAVE_STORAGE_URI``: a local directory
(the default, the data directory) or ``s3://BUCKET/PREFIX`` (under ``PREFIX/keys/``).
"""

from __future__ import annotations

from datetime import timedelta

from functions.errors import KeyRevokedError as KeyRevokedError
from functions.keys.backend import KeyBackend, Snapshot
from functions.keys.bucket import BucketKeys
from functions.keys.local import LocalKeys, load_pepper
from functions.keys.records import (
    KEY_PREFIX,
    MAX_LIFETIME,
    KeyRecord,
    KeySpec,
    Role,
    expiry,
    parse_duration,
    pruned,
)
from functions.keys.store import KeyStore
from functions.settings import Settings
from functions.storage.objects import S3Objects

__all__ = [
    "KEY_PREFIX",
    "MAX_LIFETIME",
    "BucketKeys",
    "KeyBackend",
    "KeyRecord",
    "KeyRevokedError",
    "KeySpec",
    "KeyStore",
    "KeyStoreConfigError",
    "LocalKeys",
    "Role",
    "Snapshot",
    "expiry",
    "key_store",
    "load_pepper",
    "parse_duration",
    "pruned",
]


class KeyStoreConfigError(ValueError):
    """The settings cannot make a key store (a start-up error: it stops the gateway or the CLI)."""


def key_store(settings: Settings) -> KeyStore:
    """The key store the settings describe: its backend, its pepper, its timings.

    In a bucket the pepper must come from settings (``ENCLAVE_GATEWAY_KEY_PEPPER``):
    every gateway needs the same one, and kept next to the digests it would make
    a stolen copy of the bucket as good as the keys. Nothing is written locally.
    """
    gateway = settings.gateway
    configured = gateway.key_pepper.get_secret_value().encode() if gateway.key_pepper else None
    reload_s, retention = gateway.key_reload_s, timedelta(days=gateway.key_retention_days)
    if settings.storage.remote:
        if not configured:
            raise KeyStoreConfigError(
                "keys in a bucket (ENCLAVE_STORAGE_URI=s3://…) need ENCLAVE_GATEWAY_KEY_PEPPER: "
                "the same secret of at least 16 bytes for every gateway and the CLI (for "
                "example `openssl rand -hex 32`); it is never stored in the bucket"
            )
        objects = S3Objects.from_settings(settings.storage).scoped("keys")
        return KeyStore(BucketKeys(objects), configured, reload_s=reload_s, retention=retention)
    directory = settings.state_dir
    pepper = load_pepper(directory, configured)
    return KeyStore(LocalKeys(directory), pepper, reload_s=reload_s, retention=retention)

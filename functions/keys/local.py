"""Keys in a local directory: ``keys.json``, written under ``flock`` and replaced atomically.

Processes sharing one disk (the CLI, several gateway processes) share the file:
writers take an exclusive lock on ``keys.lock``, read, change, write a temporary
file, fsync it and rename it over ``keys.json``. Readers revalidate with one
``fstat``: the file's inode, mtime and size are its version (a rename always
makes a new inode, so no write goes unseen even within one mtime tick).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
from pathlib import Path
from typing import Literal

from functions.errors import StorageUnavailableError
from functions.keys.backend import EMPTY, UNCHANGED, Change, Seen, Snapshot, T, Unchanged
from functions.keys.records import dump_records, load_records


def _version(stat: os.stat_result) -> str:
    return f"{stat.st_ino}:{stat.st_mtime_ns}:{stat.st_size}"


class LocalKeys:
    kind: Literal["local", "s3"] = "local"

    def __init__(self, directory: Path) -> None:
        self._path = directory / "keys.json"
        self._lock_path = directory / "keys.lock"

    def load(self, version: str | None) -> Snapshot | Unchanged:
        try:
            with open(self._path, "rb") as file:
                seen = _version(os.fstat(file.fileno()))
                if seen == version:
                    return UNCHANGED
                return Snapshot(tuple(load_records(file.read())), seen)
        except FileNotFoundError:
            return UNCHANGED if version is None else EMPTY
        except (OSError, ValueError, TypeError) as exc:
            raise StorageUnavailableError(f"The key store {self._path} cannot be read.") from exc

    def update(
        self, change: Change[T], current: Snapshot, seen: Seen | None = None
    ) -> tuple[T, Snapshot]:
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            with open(self._lock_path, "a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                loaded = self.load(current.version)
                latest = current if loaded is UNCHANGED else loaded
                if seen is not None:
                    seen(latest)
                records = list(latest.records)
                result = change(records)
                self._replace(dump_records(records))
                return result, Snapshot(tuple(records), _version(self._path.stat()))
        except OSError as exc:
            raise StorageUnavailableError(f"The key store {self._path} cannot be written.") from exc

    def _replace(self, data: bytes) -> None:
        tmp = self._path.with_suffix(f".{os.getpid()}.{secrets.token_hex(4)}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self._path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()


def load_pepper(directory: Path, configured: bytes | None) -> bytes:
    """The configured pepper, or one generated once into ``directory/key_pepper`` (mode 0600).

    Several hosts sharing one key store must be given the same pepper through
    settings rather than rely on the file; a bucket's store insists on it.
    """
    if configured:
        return configured
    path = directory / "key_pepper"
    if not path.exists():
        directory.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_hex(32))
    return path.read_text().strip().encode()

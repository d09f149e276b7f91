"""Which weights a node serves: their path, their format and a revision, read from local storage.

Weights live on operator-owned storage that the node sees as a local path: a
directory on the machine, a Modal Volume, or an S3-compatible bucket mounted with
``modal.CloudBucketMount``. Nothing is fetched from a model hub at run time; this
module only reads files that are already there.

The revision is the operator's own when the weights carry one (a ``REVISION`` or
``.enclave-revision`` file: a commit hash, a release tag). Otherwise it is a
*fingerprint*, ``fp-`` and 16 hex digits: SHA-256 over, for each file, its relative
path, its size, its first MiB and its last MiB. A full hash would read every byte of
multi-GB weights — minutes over a network volume, at every cold start — while the
fingerprint reads at most 2 MiB a file and still changes when a file is replaced,
re-quantised, truncated or renamed. It is not a tamper-proof digest: two files with
equal size, head and tail but different middles share a fingerprint.
"""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from inference_node.adapter import AdapterIdentity, adapter_identity

Kind = Literal["gguf", "exl2", "safetensors", "trt-engine"]

MIB = 1 << 20
REVISION_FILES = ("REVISION", ".enclave-revision")
# beside the weights, what else decides the model's output
CONFIG_FILES = frozenset(
    {
        "config.json",
        "generation_config.json",
        "tokenizer.json",
        "tokenizer.model",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "chat_template.jinja",
    }
)
WEIGHT_SUFFIXES = frozenset({".safetensors", ".gguf", ".bin", ".engine", ".pt"})


@dataclass(frozen=True, slots=True)
class ModelIdentity:
    """The weights behind a model id: where they are, what format, which revision, and the
    LoRA adapter applied over them, if any."""

    path: Path
    kind: Kind
    revision: str
    adapter: AdapterIdentity | None = None

    def as_dict(self) -> dict[str, str]:
        weights = {"path": str(self.path), "kind": self.kind, "revision": self.revision}
        return weights | (self.adapter.as_dict() if self.adapter else {})


def model_identity(path: Path, adapter: Path | None = None) -> ModelIdentity:
    """Identify the weights at ``path`` (a file or a model directory) without reading them whole,
    and the adapter at ``adapter`` (read whole: it is small)."""
    path = path.resolve()
    if not path.exists():
        raise FileNotFoundError(f"No weights at {path}")
    files = [path] if path.is_file() else weight_files(path)
    if not files:
        raise FileNotFoundError(f"{path} holds no weight files")
    root = path.parent if path.is_file() else path
    revision = _declared_revision(root) or fingerprint(files, root=root)
    served = adapter_identity(adapter) if adapter is not None else None
    return ModelIdentity(path=path, kind=detect_kind(path), revision=revision, adapter=served)


def weight_files(directory: Path) -> list[Path]:
    """The files that make up a model directory, sorted by relative path; hidden ones skipped."""
    found = [
        p
        for p in directory.rglob("*")
        if p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(directory).parts)
        and (p.suffix in WEIGHT_SUFFIXES or p.name in CONFIG_FILES)
    ]
    return sorted(found, key=lambda p: p.relative_to(directory).as_posix())


def fingerprint(files: list[Path], root: Path) -> str:
    """``fp-`` + 16 hex digits of SHA-256 over each file's name, size, first and last MiB."""
    digest = hashlib.sha256()
    for file in files:
        size = file.stat().st_size
        digest.update(file.relative_to(root).as_posix().encode() + b"\0")
        digest.update(size.to_bytes(8, "little"))
        with file.open("rb") as handle:
            digest.update(handle.read(MIB))
            if size > MIB:
                handle.seek(max(MIB, size - MIB))
                digest.update(handle.read(MIB))
    return "fp-" + digest.hexdigest()[:16]


def detect_kind(path: Path) -> Kind:
    if path.is_file():
        with path.open("rb") as handle:
            magic = handle.read(4)
        if path.suffix == ".gguf" or magic == b"GGUF":
            return "gguf"
        if path.suffix == ".engine":
            return "trt-engine"
        return "safetensors"
    if any(path.glob("*.engine")):
        return "trt-engine"
    if any(path.glob("*.gguf")):
        return "gguf"
    return "exl2" if _is_exl2(path) else "safetensors"


def _is_exl2(directory: Path) -> bool:
    config = directory / "config.json"
    if config.is_file():
        quant = json.loads(config.read_text()).get("quantization_config") or {}
        if quant.get("quant_method") == "exl2":
            return True
    shards = sorted(directory.glob("*.safetensors"))
    # older EXL2 conversions say nothing in config.json; their tensors are named *.q_weight
    return bool(shards) and any(k.endswith(".q_weight") for k in safetensors_keys(shards[0]))


def safetensors_keys(file: Path) -> list[str]:
    """Tensor names from a safetensors header (8-byte length, then JSON), no tensor read."""
    with file.open("rb") as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
        if length > 100 * MIB:
            raise ValueError(f"{file} is not a safetensors file")
        header = json.loads(handle.read(length))
    return [k for k in header if k != "__metadata__"]


def _declared_revision(directory: Path) -> str | None:
    for name in REVISION_FILES:
        candidate = directory / name
        if candidate.is_file():
            text = candidate.read_text().strip()
            if text:
                return text
    return None


__all__ = ["ModelIdentity", "fingerprint", "model_identity", "safetensors_keys", "weight_files"]

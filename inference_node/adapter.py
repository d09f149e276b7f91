"""A LoRA adapter served on top of the base weights: what it is, read and checked at start.

``ENCLAVE_NODE_ADAPTER_PATH`` names either a PEFT adapter directory (what
``enclave finetune`` writes: ``adapter_config.json`` + ``adapter_model.safetensors``)
or a GGUF LoRA file (``general.type = adapter``). exllamav2 loads the directory;
llama.cpp loads GGUF, so the llama.cpp engine converts a directory first
(:mod:`inference_node.lora_gguf`).

Everything here only reads small files (an adapter is megabytes, not gigabytes), so
its identity is a full SHA-256 of its files, not the weights' sampled fingerprint.
An adapter that cannot be read is an :class:`AdapterError` at start-up: the node
fails closed, it never serves the base model alone when an adapter was asked for.
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from functions.settings import NodeSettings

CONFIG = "adapter_config.json"
TENSORS = "adapter_model.safetensors"
MAX_HEADER_BYTES = 100 << 20  # a safetensors header is JSON; past this it is not one
ENGINES_WITH_ADAPTERS = ("llama_cpp", "exllamav2")


class AdapterError(ValueError):
    """The configured adapter cannot be served: a start-up error, never a request error."""


@dataclass(frozen=True, slots=True)
class AdapterIdentity:
    """Which adapter a node applies: its path, format, content hash, rank and alpha."""

    path: Path
    kind: Literal["peft", "gguf"]
    sha256: str
    rank: int
    alpha: float

    @property
    def name(self) -> str:
        return self.path.stem if self.path.is_file() else self.path.name

    def as_dict(self) -> dict[str, str]:
        """Flat string fields, beside the weights' own in ``/v1/models``."""
        return {
            "adapter": self.name,
            "adapter_path": str(self.path),
            "adapter_kind": self.kind,
            "adapter_sha256": self.sha256,
            "adapter_rank": str(self.rank),
            "adapter_alpha": f"{self.alpha:g}",
        }


@dataclass(frozen=True, slots=True)
class PeftAdapter:
    """A PEFT LoRA directory, checked: its config and its tensors' names, dtypes and shapes."""

    directory: Path
    rank: int
    alpha: float
    config: dict[str, Any]
    header: dict[str, Any]  # safetensors header: name -> {dtype, shape, data_offsets}

    def pairs(self) -> dict[str, tuple[str, str]]:
        """Module name (``…layers.0.self_attn.q_proj``) -> its (lora_A, lora_B) tensor names."""
        found: dict[str, dict[str, str]] = {}
        for name in self.header:
            for side in ("lora_A", "lora_B"):
                suffix = f".{side}.weight"
                if name.endswith(suffix):
                    found.setdefault(name.removesuffix(suffix), {})[side] = name
        return {m: (s["lora_A"], s["lora_B"]) for m, s in found.items() if len(s) == 2}


def adapter_identity(path: Path) -> AdapterIdentity:
    """Read and check the adapter at ``path`` (directory or .gguf); :class:`AdapterError` if bad."""
    path = path.resolve()
    if not path.exists():
        raise AdapterError(f"No adapter at {path}")
    if path.is_dir():
        peft = read_peft(path)
        files = [path / CONFIG, path / TENSORS]
        return AdapterIdentity(path, "peft", _sha256(files, path), peft.rank, peft.alpha)
    from inference_node.lora_gguf import read_gguf_adapter  # needs the gguf package

    rank, alpha = read_gguf_adapter(path)
    with path.open("rb") as handle:  # one file: its plain SHA-256, as `sha256sum` prints it
        digest = hashlib.file_digest(handle, "sha256").hexdigest()
    return AdapterIdentity(path, "gguf", digest, rank, alpha)


def read_peft(directory: Path) -> PeftAdapter:
    """Check a PEFT LoRA directory: plain LoRA (no DoRA, no per-module ranks), A/B in pairs."""
    config = _json(directory / CONFIG)
    if config.get("peft_type") != "LORA":
        raise AdapterError(
            f"{directory / CONFIG}: peft_type is {config.get('peft_type')!r}, not LORA"
        )
    rank, alpha = config.get("r"), config.get("lora_alpha")
    if not isinstance(rank, int) or isinstance(rank, bool) or rank < 1:
        raise AdapterError(f"{directory / CONFIG}: r must be a positive integer, not {rank!r}")
    if not isinstance(alpha, int | float) or isinstance(alpha, bool) or alpha <= 0:
        raise AdapterError(f"{directory / CONFIG}: lora_alpha must be positive, not {alpha!r}")
    for unsupported in ("use_dora", "use_rslora"):
        if config.get(unsupported):
            raise AdapterError(f"{directory / CONFIG}: {unsupported} adapters are not supported")
    for pattern in ("rank_pattern", "alpha_pattern"):
        if config.get(pattern):
            raise AdapterError(f"{directory / CONFIG}: per-module {pattern} is not supported")
    header = safetensors_header(directory / TENSORS)
    peft = PeftAdapter(directory, rank, float(alpha), config, header)
    _check_tensors(peft)
    return peft


def _check_tensors(peft: PeftAdapter) -> None:
    where = peft.directory / TENSORS
    pairs = peft.pairs()
    if not pairs:
        raise AdapterError(f"{where} holds no lora_A/lora_B tensors")
    paired = {name for pair in pairs.values() for name in pair}
    stray = sorted(set(peft.header) - paired)
    if stray:
        raise AdapterError(f"{where}: unpaired or unsupported tensor {stray[0]!r}")
    for module, (a, b) in pairs.items():
        a_shape, b_shape = peft.header[a]["shape"], peft.header[b]["shape"]
        if len(a_shape) != 2 or len(b_shape) != 2 or a_shape[0] != b_shape[1]:
            raise AdapterError(f"{where}: {module} has lora_A {a_shape} and lora_B {b_shape}")


def safetensors_header(file: Path) -> dict[str, Any]:
    """The tensors of a safetensors file (8-byte length, JSON), checked against its size."""
    if not file.is_file():
        raise AdapterError(f"Missing {file}")
    size = file.stat().st_size
    try:
        with file.open("rb") as handle:
            (length,) = struct.unpack("<Q", handle.read(8))
            if length > min(MAX_HEADER_BYTES, size - 8):
                raise ValueError("header length past the end of the file")
            header: dict[str, Any] = json.loads(handle.read(length))
        header.pop("__metadata__", None)
        end = max((int(t["data_offsets"][1]) for t in header.values()), default=0)
        if 8 + length + end > size:
            raise ValueError("tensor data past the end of the file")
        for name, tensor in header.items():
            width = {"F32": 4, "F16": 2, "BF16": 2}.get(tensor["dtype"])
            if width is None:
                raise ValueError(f"{name} has the unsupported dtype {tensor['dtype']}")
            begin, end = (int(offset) for offset in tensor["data_offsets"])
            if end - begin != width * math.prod(int(n) for n in tensor["shape"]):
                raise ValueError(f"{name}: its data does not match its shape")
    except (struct.error, ValueError, KeyError, TypeError, IndexError) as exc:
        raise AdapterError(f"{file} is not a readable safetensors file: {exc}") from None
    return header


def check_adapter(node: NodeSettings) -> AdapterIdentity | None:
    """At start-up, before the port opens: the configured adapter, read and checked."""
    if node.adapter_path is None:
        return None
    if node.engine not in ENGINES_WITH_ADAPTERS:
        raise AdapterError(
            f"The {node.engine} engine does not load adapters: merge the adapter into the "
            "weights, or serve it with llama_cpp or exllamav2"
        )
    identity = adapter_identity(node.adapter_path)
    if node.engine == "exllamav2" and identity.kind != "peft":
        raise AdapterError("exllamav2 loads PEFT adapter directories, not GGUF files")
    return identity


def _json(file: Path) -> dict[str, Any]:
    if not file.is_file():
        raise AdapterError(f"Missing {file}")
    try:
        loaded = json.loads(file.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise AdapterError(f"{file} is not valid JSON: {exc}") from None
    if not isinstance(loaded, dict):
        raise AdapterError(f"{file} is not a JSON object")
    return loaded


def _sha256(files: list[Path], root: Path) -> str:
    digest = hashlib.sha256()
    for file in files:
        digest.update(file.relative_to(root).as_posix().encode() + b"\0")
        with file.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()


__all__ = [
    "AdapterError",
    "AdapterIdentity",
    "PeftAdapter",
    "adapter_identity",
    "check_adapter",
    "read_peft",
    "safetensors_header",
]

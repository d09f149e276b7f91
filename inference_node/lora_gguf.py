"""PEFT LoRA (safetensors) -> GGUF LoRA, the form llama.cpp loads with ``lora_path``.

The layout follows llama.cpp's own ``convert_lora_to_gguf.py``:

* metadata ``general.type = "adapter"``, ``adapter.type = "lora"`` and
  ``adapter.lora.alpha``; ``general.architecture`` is the base model's, which
  llama.cpp checks against the model it applies the adapter to;
* each adapted weight ``blk.N.attn_q.weight`` gets two tensors,
  ``blk.N.attn_q.weight.lora_a`` (PEFT's ``lora_A``, ``[rank, in]``) and
  ``….lora_b`` (``lora_B``, ``[out, rank]``), stored untransposed: llama.cpp
  multiplies ``b @ (a @ x)`` and scales by ``alpha / rank`` as PEFT does;
* Hugging Face module names map to GGUF names with gguf's own tensor map
  (``model.layers.N.self_attn.q_proj`` -> ``blk.N.attn_q``);
* for the ``llama`` architecture the GGUF converter permutes the rows of the q and k
  projections (rotary halves interleaved); a LoRA update ``B @ A`` has the same
  rows as ``B``, so ``lora_b`` of q and k gets the same permutation.

Only ``llama``-architecture bases are converted (Llama, Mistral, SmolLM2…): other
architectures need their own converter rules; serve those with exllamav2 or merge
the adapter into the weights. The base's head counts and tensor shapes are read
from its GGUF header, so a mismatched adapter is refused here with the tensor
named, not by llama.cpp with a bare failure.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import gguf
import numpy as np
import numpy.typing as npt

from inference_node.adapter import (
    TENSORS,
    AdapterError,
    PeftAdapter,
    adapter_identity,
    read_peft,
)

SUPPORTED_ARCHITECTURES = ("llama",)
DTYPES = {"F32": np.float32, "F16": np.float16}


@dataclass(frozen=True, slots=True)
class BaseModel:
    """What conversion needs of the base: architecture, heads, layers, tensor shapes."""

    architecture: str
    n_head: int
    n_head_kv: int
    n_layer: int
    # GGUF tensor name -> ggml shape ([in, out] for a matrix); empty when unknown
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)

    def key(self) -> str:
        return f"{self.architecture}-{self.n_head}-{self.n_head_kv}-{self.n_layer}"


def base_model(path: Path) -> BaseModel:
    """The base read from a GGUF file, or from a Hugging Face directory's ``config.json``."""
    if path.is_dir():
        return _from_hf_config(path / "config.json")
    try:
        with path.open("rb") as handle:
            meta, shapes = _gguf_header(handle)
    except (OSError, ValueError, KeyError, struct.error) as exc:
        raise AdapterError(f"The base model {path} is not a readable GGUF file: {exc}") from None
    arch = str(meta.get("general.architecture", ""))

    def number(key: str) -> int:
        value = meta.get(f"{arch}.{key}")
        return int(value) if isinstance(value, int) else 0

    n_head = number("attention.head_count")
    kv_heads = number("attention.head_count_kv") or n_head
    return BaseModel(arch, n_head, kv_heads, number("block_count"), shapes)


# GGUF value types: fixed widths (struct format), 8 = string, 9 = array
_SCALARS = {
    0: "B",
    1: "b",
    2: "H",
    3: "h",
    4: "I",
    5: "i",
    6: "f",
    7: "?",
    10: "Q",
    11: "q",
    12: "d",
}


def _gguf_header(handle: BinaryIO) -> tuple[dict[str, object], dict[str, tuple[int, ...]]]:
    """Scalar metadata and tensor shapes from a GGUF header, skipping arrays unread.

    gguf's ``GGUFReader`` parses every array element (a 49k-token vocabulary: seconds);
    this reads only what conversion needs, in milliseconds.
    """

    def unpack(fmt: str) -> Any:
        return struct.unpack("<" + fmt, handle.read(struct.calcsize(fmt)))[0]

    def string() -> str:
        return handle.read(unpack("Q")).decode("utf-8", errors="replace")

    def value(kind: int) -> object:
        if kind in _SCALARS:
            return unpack(_SCALARS[kind])
        if kind == 8:
            return string()
        if kind != 9:
            raise ValueError(f"unknown GGUF value type {kind}")
        item, count = unpack("I"), unpack("Q")
        if item in _SCALARS:
            handle.seek(count * struct.calcsize(_SCALARS[item]), os.SEEK_CUR)
        else:
            for _ in range(count):
                value(item)
        return None

    if handle.read(4) != b"GGUF" or unpack("I") < 2:
        raise ValueError("not GGUF version 2 or later")
    tensors, fields = unpack("Q"), unpack("Q")
    meta = {}
    for _ in range(fields):
        key = string()
        meta[key] = value(unpack("I"))
    shapes = {}
    for _ in range(tensors):
        name = string()
        shapes[name] = tuple(int(unpack("Q")) for _ in range(unpack("I")))
        handle.seek(12, os.SEEK_CUR)  # type (u32) and data offset (u64)
    return meta, shapes


def _from_hf_config(file: Path) -> BaseModel:
    try:
        config = json.loads(file.read_text(encoding="utf-8"))
        heads = int(config["num_attention_heads"])
        return BaseModel(
            "llama" if config.get("model_type") in ("llama", "mistral") else config["model_type"],
            heads,
            int(config.get("num_key_value_heads") or heads),
            int(config["num_hidden_layers"]),
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise AdapterError(f"Cannot read the base model's {file}: {exc!r}") from None


def convert(adapter_dir: Path, base: BaseModel, out: Path) -> Path:
    """Write the PEFT adapter in ``adapter_dir`` as a GGUF LoRA at ``out`` (atomically)."""
    if base.architecture not in SUPPORTED_ARCHITECTURES:
        raise AdapterError(
            f"LoRA conversion supports {', '.join(SUPPORTED_ARCHITECTURES)} bases, not "
            f"{base.architecture!r}: serve the adapter with exllamav2, or merge it"
        )
    peft = read_peft(adapter_dir)
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, base.n_layer)
    tensors = _tensors(peft)
    writer_path = out.with_name(f".{out.name}.{os.getpid()}.partial")
    writer = gguf.GGUFWriter(writer_path, base.architecture)
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, peft.alpha)
    for module, (a_name, b_name) in sorted(peft.pairs().items()):
        target = _gguf_name(module, names)
        a, b = tensors[a_name], tensors[b_name]
        _check_shape(target, a, b, base)
        writer.add_tensor(f"{target}.weight.lora_a", np.ascontiguousarray(a))
        writer.add_tensor(
            f"{target}.weight.lora_b", np.ascontiguousarray(_permuted(target, b, base))
        )
    try:
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
    finally:
        writer.close()
    os.replace(writer_path, out)
    return out


def gguf_adapter(adapter: Path, base_path: Path) -> Path:
    """The GGUF file llama.cpp should load for ``adapter`` over the base at ``base_path``.

    A ``.gguf`` adapter is used as it is, once its architecture is checked. A PEFT
    directory is converted once and cached beside it (``.enclave/lora-<hash>.gguf``,
    keyed by the adapter's content and the base's shape), or, where that directory is
    read-only, into a private temporary directory for this process.
    """
    identity = adapter_identity(adapter)
    base = base_model(base_path)
    if identity.kind == "gguf":
        arch = str(gguf.GGUFReader(identity.path).fields["general.architecture"].contents())
        if arch != base.architecture:
            raise AdapterError(
                f"{identity.path} is a {arch} adapter; the base is {base.architecture}"
            )
        return identity.path
    key = hashlib.sha256(f"{identity.sha256}:{base.key()}".encode()).hexdigest()[:16]
    cached = identity.path / ".enclave" / f"lora-{key}.gguf"
    if cached.is_file():
        return cached
    try:
        cached.parent.mkdir(exist_ok=True)
        return convert(identity.path, base, cached)
    except OSError:  # a read-only mount (EROFS) or directory (EACCES)
        private = Path(tempfile.mkdtemp(prefix="enclave-lora-"))
        return convert(identity.path, base, private / cached.name)


def read_gguf_adapter(path: Path) -> tuple[int, float]:
    """Rank and alpha of a GGUF LoRA file; :class:`AdapterError` if it is not one."""
    try:
        reader = gguf.GGUFReader(path)
        kind = reader.fields.get(gguf.Keys.General.TYPE)
        lora = reader.fields.get(gguf.Keys.Adapter.TYPE)
        alpha = reader.fields.get(gguf.Keys.Adapter.LORA_ALPHA)
    except (OSError, ValueError, IndexError) as exc:
        raise AdapterError(f"{path} is not a readable GGUF file: {exc}") from None
    if kind is None or kind.contents() != "adapter" or lora is None or lora.contents() != "lora":
        raise AdapterError(f"{path} is not a GGUF LoRA adapter (general.type, adapter.type)")
    ranks = {int(t.shape[1]) for t in reader.tensors if t.name.endswith(".lora_a")}
    if len(ranks) != 1:
        raise AdapterError(f"{path}: expected lora_a tensors of one rank, found {sorted(ranks)}")
    return ranks.pop(), float(alpha.contents()) if alpha is not None else 0.0


def _tensors(peft: PeftAdapter) -> dict[str, npt.NDArray[np.float32]]:
    """Every tensor of the adapter as float32, read with numpy from the safetensors layout."""
    raw = (peft.directory / TENSORS).read_bytes()
    start = 8 + int.from_bytes(raw[:8], "little")
    out: dict[str, npt.NDArray[np.float32]] = {}
    for name, info in peft.header.items():
        begin, end = (start + int(o) for o in info["data_offsets"])
        if info["dtype"] == "BF16":  # the top half of a float32
            halves = np.frombuffer(raw[begin:end], dtype="<u2").astype(np.uint32) << 16
            values = halves.view(np.float32)
        else:
            values = np.frombuffer(raw[begin:end], dtype=DTYPES[info["dtype"]]).astype(np.float32)
        out[name] = values.reshape(info["shape"])
    return out


def _gguf_name(module: str, names: gguf.TensorNameMap) -> str:
    hf_name = module.removeprefix("base_model.model.")
    mapped = names.get_name(hf_name)
    if mapped is None:
        raise AdapterError(f"No llama.cpp tensor for the adapted module {hf_name!r}")
    return mapped


def _check_shape(
    target: str, a: npt.NDArray[np.float32], b: npt.NDArray[np.float32], base: BaseModel
) -> None:
    shape = base.shapes.get(f"{target}.weight")
    if shape is None:
        if base.shapes:
            raise AdapterError(f"The base model has no tensor {target}.weight for the adapter")
        return
    if (a.shape[1], b.shape[0]) != (shape[0], shape[1]):
        raise AdapterError(
            f"{target}: the adapter maps {a.shape[1]} -> {b.shape[0]} features, "
            f"the base tensor {shape[0]} -> {shape[1]}: trained on another base model?"
        )


def _permuted(target: str, b: npt.NDArray[np.float32], base: BaseModel) -> npt.NDArray[np.float32]:
    """Rows of q (by heads) and k (by kv heads) reordered as the GGUF converter reorders them."""
    heads = {"attn_q": base.n_head, "attn_k": base.n_head_kv}.get(target.rsplit(".", 1)[-1])
    if heads is None:
        return b
    rows = b.shape[0]
    if rows % (2 * heads):
        raise AdapterError(f"{target}: {rows} rows do not split into {heads} heads")
    return b.reshape(heads, 2, rows // heads // 2, *b.shape[1:]).swapaxes(1, 2).reshape(b.shape)


__all__ = ["BaseModel", "base_model", "convert", "gguf_adapter", "read_gguf_adapter"]

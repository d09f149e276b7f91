"""Model identity: format detection and a cheap, deterministic revision, on tmp files."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from inference_node.weights import MIB, model_identity, safetensors_keys

TWO_MIB_AND_A_BIT = 2 * MIB + 4096


def safetensors(path: Path, names: list[str], padding: int = 0) -> Path:
    header = json.dumps(
        {
            n: {"dtype": "F16", "shape": [1], "data_offsets": [2 * i, 2 * i + 2]}
            for i, n in enumerate(names)
        }
    ).encode()
    path.write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * (2 * len(names) + padding))
    return path


def big_file(path: Path, fill: bytes = b"w") -> Path:
    path.write_bytes(b"GGUF" + fill * (TWO_MIB_AND_A_BIT - 4))
    return path


def poke(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def test_a_gguf_file_gets_a_fingerprint_from_its_ends(tmp_path: Path) -> None:
    weights = big_file(tmp_path / "model.gguf")
    first = model_identity(weights)
    assert first.kind == "gguf" and first.path == weights.resolve()
    assert first.revision.startswith("fp-") and len(first.revision) == 19
    assert model_identity(weights) == first  # deterministic
    poke(weights, TWO_MIB_AND_A_BIT // 2)
    assert model_identity(weights).revision == first.revision  # the middle is not read
    poke(weights, TWO_MIB_AND_A_BIT - 1)
    tail_changed = model_identity(weights).revision
    assert tail_changed != first.revision
    weights.write_bytes(weights.read_bytes() + b"x")
    assert model_identity(weights).revision not in {first.revision, tail_changed}


def test_gguf_is_known_by_its_magic_too(tmp_path: Path) -> None:
    assert model_identity(big_file(tmp_path / "weights.bin")).kind == "gguf"


def test_a_directory_fingerprint_covers_weights_config_and_tokenizer(tmp_path: Path) -> None:
    safetensors(tmp_path / "model-00001-of-00002.safetensors", ["a.weight"])
    safetensors(tmp_path / "model-00002-of-00002.safetensors", ["b.weight"])
    (tmp_path / "config.json").write_text('{"model_type": "llama"}')
    (tmp_path / "tokenizer.json").write_text("{}")
    (tmp_path / "README.md").write_text("not part of the model")
    (tmp_path / ".cache").mkdir()
    (tmp_path / ".cache" / "x.safetensors").write_text("hidden")
    identity = model_identity(tmp_path)
    assert identity.kind == "safetensors"
    (tmp_path / "README.md").write_text("edited")
    (tmp_path / ".cache" / "x.safetensors").write_text("edited")
    assert model_identity(tmp_path) == identity
    (tmp_path / "tokenizer.json").write_text('{"changed": 1}')
    changed = model_identity(tmp_path).revision
    assert changed != identity.revision
    (tmp_path / "config.json").rename(tmp_path / "generation_config.json")
    assert model_identity(tmp_path).revision != changed
    assert identity.as_dict() == {
        "path": str(tmp_path.resolve()),
        "kind": "safetensors",
        "revision": identity.revision,
    }


def test_exl2_is_known_by_its_config_or_its_tensor_names(tmp_path: Path) -> None:
    declared = tmp_path / "declared"
    declared.mkdir()
    safetensors(declared / "output.safetensors", ["model.layers.0.mlp.up_proj.weight"])
    config = {"quantization_config": {"quant_method": "exl2", "bits": 4.0}}
    (declared / "config.json").write_text(json.dumps(config))
    assert model_identity(declared).kind == "exl2"
    older = tmp_path / "older"
    older.mkdir()
    safetensors(older / "output.safetensors", ["model.layers.0.mlp.up_proj.q_weight"])
    (older / "config.json").write_text("{}")
    assert model_identity(older).kind == "exl2"


def test_a_trt_engine_directory(tmp_path: Path) -> None:
    (tmp_path / "rank0.engine").write_bytes(b"\0" * 64)
    (tmp_path / "config.json").write_text('{"build_config": {}}')
    assert model_identity(tmp_path).kind == "trt-engine"


@pytest.mark.parametrize("name", ["REVISION", ".enclave-revision"])
def test_an_operator_revision_file_wins(tmp_path: Path, name: str) -> None:
    big_file(tmp_path / "model.gguf")
    (tmp_path / name).write_text("")
    assert model_identity(tmp_path).revision.startswith("fp-")  # an empty file says nothing
    (tmp_path / name).write_text("v2024-06-01 a1b2c3d\n")
    assert model_identity(tmp_path).revision == "v2024-06-01 a1b2c3d"
    assert model_identity(tmp_path / "model.gguf").revision == "v2024-06-01 a1b2c3d"


def test_missing_weights_are_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="No weights"):
        model_identity(tmp_path / "absent")
    (tmp_path / "notes.txt").write_text("nothing here")
    with pytest.raises(FileNotFoundError, match="no weight files"):
        model_identity(tmp_path)


def test_safetensors_keys_reads_only_the_header(tmp_path: Path) -> None:
    path = safetensors(tmp_path / "m.safetensors", ["x", "y"], padding=MIB)
    assert safetensors_keys(path) == ["x", "y"]
    (tmp_path / "bad.safetensors").write_bytes(struct.pack("<Q", 1 << 40))
    with pytest.raises(ValueError, match="not a safetensors file"):
        safetensors_keys(tmp_path / "bad.safetensors")

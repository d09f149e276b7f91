"""A node serving SmolLM2 with a LoRA adapter (``ENCLAVE_NODE_ADAPTER_PATH``), for real.

The adapter is written here with SmolLM2-135M's shapes (30 layers, hidden 576,
q_proj 576 -> 576 and v_proj 576 -> 192, rank 8) and random, non-zero ``lora_B``,
so it must change what the model says. Real node processes with llama.cpp serve it:
as the PEFT directory ``enclave finetune`` writes (converted to GGUF at start) and as
the GGUF file ``enclave finetune export-gguf`` writes. A broken adapter never lets the
base model answer in its place.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import gguf
import httpx
import numpy as np
import pytest
from openai import OpenAI
from safetensors.numpy import load_file, save_file

from functions.settings import NodeSettings
from inference_node.adapter import AdapterError, check_adapter
from inference_node.engines.exllamav2 import ExLlamaV2Options
from inference_node.engines.llama_cpp import LlamaCppEngine, bundled_smollm2
from inference_node.lora_gguf import base_model, convert
from tests.conftest import NODE_MODEL, ROOT, Server, child_env, free_port, start

RANK, ALPHA, LAYERS, HIDDEN = 8, 16, 30, 576
OUT = {"q_proj": 576, "v_proj": 192}  # 9 query heads and 3 key/value heads of 64
PROMPT = [{"role": "user", "content": "Name three colours."}]


def write_adapter(directory: Path, hidden: int = HIDDEN, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    tensors = {}
    for layer in range(LAYERS):
        for module, out in OUT.items():
            name = f"base_model.model.model.layers.{layer}.self_attn.{module}"
            tensors[f"{name}.lora_A.weight"] = rng.normal(0, hidden**-0.5, (RANK, hidden))
            tensors[f"{name}.lora_B.weight"] = rng.normal(0, 0.1, (out, RANK))
    directory.mkdir(parents=True)
    as_f32 = {name: t.astype(np.float32) for name, t in tensors.items()}
    save_file(as_f32, str(directory / "adapter_model.safetensors"))
    config = {"peft_type": "LORA", "r": RANK, "lora_alpha": ALPHA, "target_modules": list(OUT)}
    (directory / "adapter_config.json").write_text(json.dumps(config))
    return directory


def sha256_of(*files: Path) -> str:
    digest = hashlib.sha256()
    for file in files:
        digest.update(file.name.encode() + b"\0" + file.read_bytes())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def adapter(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_adapter(tmp_path_factory.mktemp("lora") / "colours")


@pytest.fixture(scope="module")
def adapted(adapter: Path, log_dir: Path) -> Iterator[Server]:
    server = start("node", {"ENCLAVE_NODE_ADAPTER_PATH": str(adapter)}, log_dir)
    yield server
    server.stop()


def card(server: Server) -> dict[str, str]:
    models = httpx.get(f"{server.url}/v1/models", timeout=10).json()
    [model] = models["data"]
    assert model["id"] == NODE_MODEL
    enclave: dict[str, str] = model["enclave"]
    return enclave


def answer(server: Server) -> str:
    with OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0) as client:
        completion = client.chat.completions.create(
            model=NODE_MODEL,
            messages=PROMPT,
            temperature=0,
            max_tokens=24,  # type: ignore[arg-type]
        )
    return completion.choices[0].message.content or ""


def test_the_adapter_shows_beside_the_weights(adapter: Path, adapted: Server, node: Server) -> None:
    shown = card(adapted)
    files = (adapter / "adapter_config.json", adapter / "adapter_model.safetensors")
    assert shown["adapter"] == "colours"
    assert shown["adapter_kind"] == "peft"
    assert shown["adapter_path"] == str(adapter.resolve())
    assert shown["adapter_sha256"] == sha256_of(*files)
    assert (shown["adapter_rank"], shown["adapter_alpha"]) == ("8", "16")
    base = card(node)
    assert {k: shown[k] for k in base} == base  # the same weights, same revision
    assert not any(key.startswith("adapter") for key in base)


def test_the_adapter_changes_the_answer(adapter: Path, adapted: Server, node: Server) -> None:
    tuned = answer(adapted)
    assert tuned and tuned != answer(node)
    assert answer(adapted) == tuned  # temperature 0: the adapter, not chance
    [cached] = (adapter / ".enclave").glob("lora-*.gguf")  # converted once, kept beside it
    assert cached.read_bytes()[:4] == b"GGUF"


def test_a_gguf_adapter_is_served_as_it_is(adapter: Path, adapted: Server, log_dir: Path) -> None:
    exported = adapter.parent / "colours.gguf"
    convert(adapter, base_model(bundled_smollm2()), exported)
    server = start("node", {"ENCLAVE_NODE_ADAPTER_PATH": str(exported)}, log_dir)
    try:
        shown = card(server)
        assert (shown["adapter"], shown["adapter_kind"]) == ("colours", "gguf")
        assert shown["adapter_sha256"] == hashlib.sha256(exported.read_bytes()).hexdigest()
        assert (shown["adapter_rank"], shown["adapter_alpha"]) == ("8", "16")
        assert answer(server) == answer(adapted)  # the same adapter, by either road
    finally:
        server.stop()


def break_config(directory: Path) -> str:
    (directory / "adapter_config.json").unlink()
    return "Missing"


def break_tensors(directory: Path) -> str:
    file = directory / "adapter_model.safetensors"
    file.write_bytes(file.read_bytes()[:1000])
    return "is not a readable safetensors file"


def break_pairs(directory: Path) -> str:
    file = directory / "adapter_model.safetensors"
    tensors = load_file(str(file))
    del tensors["base_model.model.model.layers.7.self_attn.v_proj.lora_B.weight"]
    save_file(tensors, str(file))
    return "unpaired or unsupported tensor 'base_model.model.model.layers.7.self_attn.v_proj"


def break_rank(directory: Path) -> str:
    (directory / "adapter_config.json").write_text(
        '{"peft_type": "LORA", "r": 0, "lora_alpha": 16}'
    )
    return "r must be a positive integer"


def break_shape(directory: Path) -> str:
    file = directory / "adapter_model.safetensors"
    raw = bytearray(file.read_bytes())
    length = int.from_bytes(raw[:8], "little")
    header = raw[8 : 8 + length].replace(b'"shape":[8,576]', b'"shape":[8,577]', 1)
    file.write_bytes(bytes(raw[:8] + header + raw[8 + length :]))
    return "its data does not match its shape"


@pytest.mark.parametrize(
    "damage", [break_config, break_tensors, break_pairs, break_rank, break_shape]
)
def test_a_malformed_adapter_is_refused_at_start(tmp_path: Path, damage: object) -> None:
    directory = write_adapter(tmp_path / "broken")
    problem = damage(directory)  # type: ignore[operator]
    with pytest.raises(AdapterError, match=problem):
        check_adapter(NodeSettings(adapter_path=directory))


def test_engines_that_cannot_apply_an_adapter_refuse_it(adapter: Path, tmp_path: Path) -> None:
    with pytest.raises(AdapterError, match="tensorrt_llm engine does not load adapters"):
        check_adapter(NodeSettings(engine="tensorrt_llm", adapter_path=adapter))
    gguf_file = tmp_path / "a.gguf"
    convert(adapter, base_model(bundled_smollm2()), gguf_file)
    with pytest.raises(AdapterError, match="exllamav2 loads PEFT adapter directories"):
        check_adapter(NodeSettings(engine="exllamav2", adapter_path=gguf_file))
    with pytest.raises(AdapterError, match="No adapter at"):
        check_adapter(NodeSettings(adapter_path=tmp_path / "nothing"))


def test_the_node_does_not_start_on_a_malformed_adapter(tmp_path: Path) -> None:
    directory = write_adapter(tmp_path / "broken")
    break_tensors(directory)
    env = child_env(ENCLAVE_NODE_ADAPTER_PATH=str(directory), ENCLAVE_NODE_PORT=str(free_port()))
    refused = subprocess.run(
        [sys.executable, "-m", "infra.cli", "serve", "node"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert refused.returncode == 2
    assert refused.stderr.startswith(f"enclave: {directory / 'adapter_model.safetensors'} is not")
    assert "Traceback" not in refused.stderr


def test_an_adapter_for_another_base_is_refused_with_the_tensor_named(tmp_path: Path) -> None:
    directory = write_adapter(tmp_path / "other", hidden=512)  # well-formed, for another model
    check_adapter(NodeSettings(adapter_path=directory))  # passes the start-up check, but
    with pytest.raises(
        AdapterError, match=re.escape("blk.0.attn_q: the adapter maps 512 -> 576 features")
    ):
        LlamaCppEngine(NodeSettings(adapter_path=directory))  # the engine never loads: the
    # node's /health then says "failed" and every chat is a 503, never the base's answer


def test_exllamav2_is_given_the_peft_directory(adapter: Path) -> None:
    settings = NodeSettings(engine="exllamav2", model_path=adapter.parent, adapter_path=adapter)
    assert check_adapter(settings) is not None
    assert ExLlamaV2Options.from_settings(settings).adapter_dir == adapter


def test_the_base_header_reads_as_ggufs_own_reader_reads_it() -> None:
    base = base_model(bundled_smollm2())
    reader = gguf.GGUFReader(bundled_smollm2())
    assert base.shapes == {t.name: tuple(int(n) for n in t.shape) for t in reader.tensors}
    assert (base.architecture, base.n_head, base.n_head_kv, base.n_layer) == ("llama", 9, 3, 30)

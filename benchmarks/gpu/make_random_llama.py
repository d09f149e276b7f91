"""Random weights in a real architecture (default: Llama-3-8B), as an FP16 safetensors directory.

Decode speed depends on the shapes and bytes of the weights, not on their values, so
a random-weight model of the right architecture measures what the real one would —
without downloading gated weights (nothing is fetched from a hub; this script needs
only numpy and, for the tokenizer, the ``tokenizers`` package). What it writes:

* ``config.json`` / ``generation_config.json`` — LlamaForCausalLM, FP16;
* ``model-0000N-of-0000M.safetensors`` + ``model.safetensors.index.json`` — written by
  hand (an 8-byte header length, a JSON header, raw little-endian bytes), so the
  ``safetensors`` package is not needed;
* ``tokenizer.json`` — byte-level BPE with no merges, so **one byte is one token**
  (a 512-token prompt is easy to make), padded with filler tokens (`` tok123``) and
  Llama-3's special tokens to the architecture's vocabulary size;
* ``tokenizer_config.json`` — bos/eos tokens and a Llama-3-style chat template.

Values are drawn from one pool of N(0, 0.02) numbers, tiled from a random offset per
tensor (fast: writing 16 GB is bounded by the disk), with output projections scaled
down by sqrt(2 * layers) as GPT-2 initialises them, and norms at 1.

    python -m benchmarks.gpu.make_random_llama /tmp/llama3-8b-random
    python -m benchmarks.gpu.make_random_llama /tmp/tiny --preset tiny
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import struct
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

SPECIAL = [
    "<|begin_of_text|>",
    "<|end_of_text|>",
    "<|reserved_special_token_0|>",
    "<|reserved_special_token_1|>",
    "<|finetune_right_pad_id|>",
    "<|reserved_special_token_2|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eom_id|>",
    "<|eot_id|>",
    "<|python_tag|>",
]
SPECIAL_COUNT = 256  # Llama-3 reserves the last 256 ids for special tokens
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'"
    " + message['content'] | trim + '<|eot_id|>' }}{% endfor %}"
    "{% if add_generation_prompt %}"
    "{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"
)
POOL = 1 << 24  # random values drawn once, then tiled


@dataclass(frozen=True)
class Arch:
    hidden: int = 4096
    layers: int = 32
    heads: int = 32
    kv_heads: int = 8
    intermediate: int = 14336
    vocab: int = 128256
    rope_theta: float = 500000.0
    max_positions: int = 8192

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads


PRESETS = {
    "llama3-8b": Arch(),
    "tiny": Arch(hidden=256, layers=2, heads=4, kv_heads=2, intermediate=512, vocab=512),
}


def tensor_shapes(arch: Arch) -> Iterator[tuple[str, tuple[int, ...]]]:
    """Hugging Face Llama tensor names and shapes, in file order."""
    h, kv = arch.hidden, arch.kv_heads * arch.head_dim
    yield "model.embed_tokens.weight", (arch.vocab, h)
    for i in range(arch.layers):
        p = f"model.layers.{i}."
        yield p + "input_layernorm.weight", (h,)
        yield p + "self_attn.q_proj.weight", (h, h)
        yield p + "self_attn.k_proj.weight", (kv, h)
        yield p + "self_attn.v_proj.weight", (kv, h)
        yield p + "self_attn.o_proj.weight", (h, h)
        yield p + "post_attention_layernorm.weight", (h,)
        yield p + "mlp.gate_proj.weight", (arch.intermediate, h)
        yield p + "mlp.up_proj.weight", (arch.intermediate, h)
        yield p + "mlp.down_proj.weight", (h, arch.intermediate)
    yield "model.norm.weight", (h,)
    yield "lm_head.weight", (arch.vocab, h)


def config(arch: Arch) -> dict[str, object]:
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": arch.hidden,
        "intermediate_size": arch.intermediate,
        "num_hidden_layers": arch.layers,
        "num_attention_heads": arch.heads,
        "num_key_value_heads": arch.kv_heads,
        "head_dim": arch.head_dim,
        "vocab_size": arch.vocab,
        "max_position_embeddings": arch.max_positions,
        "rope_theta": arch.rope_theta,
        "rms_norm_eps": 1e-5,
        "hidden_act": "silu",
        "attention_bias": False,
        "tie_word_embeddings": False,
        "torch_dtype": "float16",
        "bos_token_id": special_id(arch, "<|begin_of_text|>"),
        "eos_token_id": special_id(arch, "<|eot_id|>"),
    }


def special_id(arch: Arch, token: str) -> int:
    return arch.vocab - SPECIAL_COUNT + SPECIAL.index(token)


def special_tokens(arch: Arch) -> list[str]:
    extra = [f"<|reserved_special_token_{i}|>" for i in range(3, SPECIAL_COUNT - len(SPECIAL) + 3)]
    return SPECIAL + extra


def _byte_chars() -> list[str]:
    """GPT-2's byte-to-unicode table: the character that stands for each byte value."""
    printable = [*range(33, 127), *range(161, 173), *range(174, 256)]
    chars, extra = {}, 0
    for b in range(256):
        if b in printable:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + extra)
            extra += 1
    return [chars[b] for b in range(256)]


def write_tokenizer(arch: Arch, out: Path) -> None:
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

    regular = arch.vocab - SPECIAL_COUNT
    if regular < 256:
        raise ValueError("the vocabulary needs 256 byte tokens + 256 special tokens")
    byte_chars = _byte_chars()
    vocab = {c: i for i, c in enumerate(byte_chars)}
    space = byte_chars[ord(" ")]
    vocab.update({f"{space}tok{i}": i for i in range(256, regular)})  # unreachable fillers
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.add_special_tokens([AddedToken(t, special=True) for t in special_tokens(arch)])
    tokenizer.save(str(out / "tokenizer.json"))
    decoder = {
        str(regular + i): {
            "content": t,
            "special": True,
            "lstrip": False,
            "rstrip": False,
            "normalized": False,
            "single_word": False,
        }
        for i, t in enumerate(special_tokens(arch))
    }
    tokenizer_config = {
        "bos_token": "<|begin_of_text|>",
        "eos_token": "<|eot_id|>",
        "chat_template": CHAT_TEMPLATE,
        "model_max_length": arch.max_positions,
        "tokenizer_class": "PreTrainedTokenizerFast",
        "added_tokens_decoder": decoder,
    }
    (out / "tokenizer_config.json").write_text(json.dumps(tokenizer_config, indent=1))


def _header(tensors: list[tuple[str, tuple[int, ...]]]) -> bytes:
    entries: dict[str, object] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, shape in tensors:
        size = math.prod(shape) * 2
        entries[name] = {
            "dtype": "F16",
            "shape": list(shape),
            "data_offsets": [offset, offset + size],
        }
        offset += size
    header = json.dumps(entries, separators=(",", ":")).encode()
    return header + b" " * (-len(header) % 8)  # the data starts 8-byte aligned


def _values(
    name: str, shape: tuple[int, ...], arch: Arch, pool: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    count = math.prod(shape)
    if name.endswith("norm.weight"):
        return np.ones(count, dtype=np.float16)
    start = int(rng.integers(0, POOL))
    values = np.resize(np.roll(pool, -start), count)
    if name.endswith(("o_proj.weight", "down_proj.weight")):
        values = (values / math.sqrt(2 * arch.layers)).astype(np.float16)
    return values


def write_weights(arch: Arch, out: Path, shard_bytes: int, seed: int) -> int:
    """Write the shards and their index; return the total bytes of weights."""
    rng = np.random.default_rng(seed)
    pool = (rng.standard_normal(POOL, dtype=np.float32) * 0.02).astype(np.float16)
    shards: list[list[tuple[str, tuple[int, ...]]]] = [[]]
    size = 0
    for name, shape in tensor_shapes(arch):
        tensor_bytes = math.prod(shape) * 2
        if shards[-1] and size + tensor_bytes > shard_bytes:
            shards.append([])
            size = 0
        shards[-1].append((name, shape))
        size += tensor_bytes
    weight_map, total = {}, 0
    for n, tensors in enumerate(shards, start=1):
        file = f"model-{n:05d}-of-{len(shards):05d}.safetensors"
        header = _header(tensors)
        with (out / file).open("wb") as sink:
            sink.write(struct.pack("<Q", len(header)) + header)
            for name, shape in tensors:
                sink.write(_values(name, shape, arch, pool, rng).astype("<f2").tobytes())
                weight_map[name] = file
                total += math.prod(shape) * 2
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (out / "model.safetensors.index.json").write_text(json.dumps(index, indent=1))
    return total


def make(out: Path, arch: Arch, shard_bytes: int = 5 << 30, seed: int = 0) -> int:
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(config(arch), indent=1))
    eos = [
        special_id(arch, "<|end_of_text|>"),
        special_id(arch, "<|eom_id|>"),
        special_id(arch, "<|eot_id|>"),
    ]
    generation = {"bos_token_id": special_id(arch, "<|begin_of_text|>"), "eos_token_id": eos}
    (out / "generation_config.json").write_text(json.dumps(generation, indent=1))
    shape_hash = hashlib.sha256(json.dumps(asdict(arch), sort_keys=True).encode()).hexdigest()
    (out / "REVISION").write_text(f"random-seed{seed}-{shape_hash[:12]}\n")
    write_tokenizer(arch, out)
    return write_weights(arch, out, shard_bytes, seed)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--preset", choices=sorted(PRESETS), default="llama3-8b")
    for field in ("hidden", "layers", "heads", "kv_heads", "intermediate", "vocab"):
        parser.add_argument(f"--{field.replace('_', '-')}", type=int, dest=field)
    parser.add_argument("--shard-gb", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    overrides = {
        k: getattr(args, k)
        for k in ("hidden", "layers", "heads", "kv_heads", "intermediate", "vocab")
        if getattr(args, k)
    }
    arch = replace(PRESETS[args.preset], **overrides)
    total = make(args.out, arch, int(args.shard_gb * (1 << 30)), args.seed)
    print(f"wrote {args.out}: {total / 1e9:.2f} GB of FP16 weights, {arch}")


if __name__ == "__main__":
    main()

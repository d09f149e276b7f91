"""exllamav2 speed on one GPU, measured through Enclave's engine, against the bandwidth bound.

Not collected by pytest (no ``test_`` prefix); run it on a CUDA machine with exllamav2
installed (see README.md beside it)::

    python -m benchmarks.gpu.bench_exllamav2 --model /tmp/llama3-8b-random --make

Figures, each through ``ExLlamaV2Engine.generate`` exactly as the node serves them:

* **batch-1 decode tok/s** — one stream, (completion tokens - 1) / (last - first piece);
* **TTFT, 512-token prompt** — median of 5, from the call to the first piece;
* **aggregate tok/s at 8/32/64 streams** — that many concurrent requests
  (128-token prompts, 256 new tokens), all completion tokens ÷ wall time, prefill
  included. In batch-1 mode (no flash-attn) the streams are served one at a time.

The model is random weights of the Llama-3-8B architecture (``make_random_llama``):
decode speed depends on the weights' shapes and bytes, not their values, and the
byte-level tokenizer makes prompt lengths exact. Bound: a decode step reads every
weight once (the embedding table excepted: one row per token) plus each stream's KV
cache, so at B streams ``B * bandwidth / (weight bytes + B * KV bytes per stream)``
tokens/s; batch 1 is the classic ``bandwidth / weight bytes``. Prints a table;
writes ``bench_exllamav2.json`` to ``$OUT`` when set.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import struct
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchmarks.gpu.make_random_llama import PRESETS, make
from inference_node.engine import GenerationParams
from inference_node.engines.exllamav2 import ExLlamaV2Engine, ExLlamaV2Options

BANDWIDTH = {"H100": 3.35e12, "H200": 4.8e12}  # bytes/s, HBM3 / HBM3e, spec sheets
TTFT_PROMPT, AGG_PROMPT, AGG_NEW = 512, 128, 256


@dataclass
class Run:
    prompt_tokens: int
    completion_tokens: int
    ttft_s: float
    decode_s: float  # first piece to last
    total_s: float


@dataclass
class Row:
    figure: str
    value: float
    unit: str
    bound: float | None
    mode: str

    @property
    def of_bound(self) -> str:
        return f"{100 * self.value / self.bound:.0f}%" if self.bound else "-"


def weight_bytes_per_token(model_dir: Path) -> int:
    """Bytes a decode step reads: every tensor, but one row of the embedding table."""
    total = 0
    for shard in sorted(model_dir.glob("*.safetensors")):
        with shard.open("rb") as handle:
            (length,) = struct.unpack("<Q", handle.read(8))
            header = json.loads(handle.read(length))
        for name, entry in header.items():
            if name == "__metadata__":
                continue
            start, end = entry["data_offsets"]
            size = end - start
            total += size // entry["shape"][0] if "embed_tokens" in name else size
    return total


def kv_bytes_per_token(config: dict[str, Any]) -> int:
    head_dim = config.get("head_dim") or config["hidden_size"] // config["num_attention_heads"]
    layers, kv_heads = config["num_hidden_layers"], config["num_key_value_heads"]
    return int(2 * layers * kv_heads * head_dim * 2)  # K and V, 2 bytes each (FP16 cache)


async def one(engine: ExLlamaV2Engine, content: str, max_tokens: int) -> Run:
    params = GenerationParams([{"role": "user", "content": content}], max_tokens=max_tokens)
    started = time.perf_counter()
    first = last = 0.0
    async for piece in engine.generate(params):
        last = time.perf_counter()
        first = first or last
        if piece.finish_reason is not None:
            return Run(
                piece.prompt_tokens or 0,
                piece.completion_tokens or 0,
                first - started,
                last - first,
                last - started,
            )
    raise RuntimeError("the stream ended without a finish piece")


async def prompt_of(engine: ExLlamaV2Engine, tokens: int) -> str:
    """User text whose chat prompt is exactly ``tokens`` tokens (one byte, one token)."""
    overhead = (await one(engine, "x", 1)).prompt_tokens - 1
    return "x" * (tokens - overhead)


async def measure(
    engine: ExLlamaV2Engine, streams: list[int], bw: float, model_dir: Path
) -> list[Row]:
    config = json.loads((model_dir / "config.json").read_text())
    weights, kv = weight_bytes_per_token(model_dir), kv_bytes_per_token(config)
    mode = "paged" if engine.paged else "batch-1"
    await one(engine, "warm up", 16)
    short = await prompt_of(engine, 32)
    solo = await one(engine, short, 256)
    rows = [
        Row(
            "batch-1 decode",
            (solo.completion_tokens - 1) / solo.decode_s,
            "tok/s",
            bw / (weights + kv * (32 + 128)),
            mode,
        )
    ]
    long = await prompt_of(engine, TTFT_PROMPT)
    ttfts = [(await one(engine, long, 1)).ttft_s for _ in range(5)]
    rows.append(
        Row(f"TTFT, {TTFT_PROMPT}-token prompt", 1000 * statistics.median(ttfts), "ms", None, mode)
    )
    prompt = await prompt_of(engine, AGG_PROMPT)
    for n in streams:
        started = time.perf_counter()
        runs = await asyncio.gather(*(one(engine, prompt, AGG_NEW) for _ in range(n)))
        wall = time.perf_counter() - started
        produced = sum(r.completion_tokens for r in runs)
        per_stream_kv = kv * (AGG_PROMPT + AGG_NEW // 2)
        bound = n * bw / (weights + n * per_stream_kv)
        rows.append(Row(f"aggregate, {n} streams", produced / wall, "tok/s", bound, mode))
    return rows


def gpu_bandwidth(override: float | None) -> tuple[str, float]:
    import torch  # type: ignore[import-not-found]  # present wherever exllamav2 runs

    name = str(torch.cuda.get_device_name(0))
    if override:
        return name, override
    for key, value in BANDWIDTH.items():
        if key in name:
            return name, value
    raise SystemExit(f"unknown GPU {name!r}: pass --bandwidth in bytes/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=Path("/tmp/llama3-8b-random"))
    parser.add_argument("--make", action="store_true", help="create the model if missing")
    parser.add_argument("--streams", default="8,32,64")
    parser.add_argument("--context", type=int, default=2048)
    parser.add_argument("--bandwidth", type=float, help="bytes/s; default from the GPU's name")
    parser.add_argument("--paged", choices=["auto", "on", "off"], default="auto")
    args = parser.parse_args()
    streams = [int(n) for n in args.streams.split(",")]
    if args.make and not (args.model / "config.json").exists():
        started = time.perf_counter()
        make(args.model, PRESETS["llama3-8b"])
        print(f"made {args.model} in {time.perf_counter() - started:.0f}s")
    gpu, bw = gpu_bandwidth(args.bandwidth)
    options = ExLlamaV2Options(
        model_id="llama3-8b-random",
        model_dir=args.model,
        context_tokens=args.context,
        max_batch=max(streams),
        cache_tokens=max(streams) * (AGG_PROMPT + AGG_NEW + 256) + args.context,
        paged={"auto": None, "on": True, "off": False}[args.paged],
    )
    started = time.perf_counter()
    engine = ExLlamaV2Engine.from_options(options)
    load_s = time.perf_counter() - started
    rows = asyncio.run(run(engine, streams, bw, args.model))
    print(f"\n{gpu}, {bw / 1e12:.2f} TB/s; model {engine.identity}; loaded in {load_s:.0f}s")
    print("random weights of Llama-3-8B's architecture: speed does not depend on the values\n")
    print(f"{'figure':32} {'value':>10} {'unit':6} {'bound':>10} {'of bound':>9}  mode")
    for row in rows:
        bound = f"{row.bound:10.0f}" if row.bound else f"{'-':>10}"
        print(
            f"{row.figure:32} {row.value:10.1f} {row.unit:6} {bound} {row.of_bound:>9}  {row.mode}"
        )
    if os.environ.get("OUT"):
        report = {
            "gpu": gpu,
            "bandwidth": bw,
            "load_s": load_s,
            "model": str(engine.identity),
            "rows": [asdict(r) for r in rows],
        }
        (Path(os.environ["OUT"]) / "bench_exllamav2.json").write_text(json.dumps(report, indent=1))


async def run(engine: ExLlamaV2Engine, streams: list[int], bw: float, model_dir: Path) -> list[Row]:
    try:
        return await measure(engine, streams, bw, model_dir)
    finally:
        await engine.aclose()


if __name__ == "__main__":
    main()

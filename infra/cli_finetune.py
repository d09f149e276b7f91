"""``enclave finetune``: train a LoRA adapter here or on a Modal GPU; export it as GGUF.

    enclave finetune --base MODEL_DIR --data train.jsonl --out ADAPTER_DIR [--rank 16 …]
    enclave finetune --modal --base models/llama --data datasets/train.jsonl --out adapters/a1
    enclave finetune export-gguf ADAPTER_DIR --base model.gguf [--out adapter.gguf]

With ``--modal`` the paths are on the operator's weights storage (the
``enclave-weights`` Volume, or the bucket), where the deployed app's ``finetune``
function reads the base and the dataset and writes the adapter back. The node
converts an adapter directory to GGUF itself; ``export-gguf`` does it ahead of time.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
from dataclasses import asdict
from pathlib import Path, PurePosixPath
from typing import Any

from inference_node.adapter import AdapterError
from infra.finetune import FinetuneError, Hyper, train

EXTRA = ("torch", "transformers", "peft")


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    finetune = commands.add_parser("finetune", help="train a LoRA adapter on chat JSONL")
    finetune.add_argument("--base", type=Path, help="a Hugging Face causal-LM directory")
    finetune.add_argument("--data", type=Path, help="chat fine-tuning JSONL")
    finetune.add_argument("--out", type=Path, help="the adapter directory to write")
    defaults = Hyper()
    finetune.add_argument("--rank", type=int, default=defaults.rank)
    finetune.add_argument("--alpha", type=int, default=defaults.alpha)
    finetune.add_argument("--epochs", type=int, default=defaults.epochs)
    finetune.add_argument("--lr", type=float, default=defaults.lr)
    finetune.add_argument("--batch-size", type=int, default=defaults.batch_size)
    finetune.add_argument("--max-seq-len", type=int, default=defaults.max_seq_len)
    finetune.add_argument("--seed", type=int, default=defaults.seed)
    finetune.add_argument(
        "--modal", action="store_true", help="train on a Modal GPU; paths are on its weights"
    )
    actions = finetune.add_subparsers(dest="finetune_command")
    export = actions.add_parser("export-gguf", help="convert an adapter to GGUF for llama.cpp")
    export.add_argument("adapter", type=Path, help="a PEFT adapter directory")
    export.add_argument(
        "--base", dest="export_base", type=Path, required=True, help="the base: GGUF or HF dir"
    )
    export.add_argument(
        "--out", dest="export_out", type=Path, default=None, help="default: ADAPTER/adapter.gguf"
    )


def run(args: argparse.Namespace) -> int:
    """Run the command; bad input is one line on stderr and status 1, never a traceback."""
    try:
        if args.finetune_command == "export-gguf":
            return _export(args.adapter, args.export_base, args.export_out)
        missing = [f"--{name}" for name in ("base", "data", "out") if getattr(args, name) is None]
        if missing:
            raise FinetuneError(f"missing {', '.join(missing)}")
        hyper = Hyper(
            rank=args.rank,
            alpha=args.alpha,
            epochs=args.epochs,
            lr=args.lr,
            batch_size=args.batch_size,
            max_seq_len=args.max_seq_len,
            seed=args.seed,
        )
        if args.modal:
            return _remote(args.base, args.data, args.out, hyper)
        absent = [name for name in EXTRA if importlib.util.find_spec(name) is None]
        if absent:
            raise FinetuneError(
                f"fine-tuning needs {', '.join(absent)}: pip install -e '.[finetune]'"
            )
        manifest = train(args.base, args.data, args.out, hyper)
    except (FinetuneError, AdapterError, OSError) as exc:  # OSError: an --out it cannot write
        raise SystemExit(f"enclave: {exc}") from None
    _report(args.out, asdict(manifest))
    return 0


def _export(adapter: Path, base: Path, out: Path | None) -> int:
    from inference_node.lora_gguf import base_model, convert  # numpy and gguf

    if not base.exists():
        raise FinetuneError(f"No base model at {base}")
    written = convert(adapter, base_model(base), out or adapter / "adapter.gguf")
    print(written)
    return 0


def _remote(base: Path, data: Path, out: Path, hyper: Hyper) -> int:
    """Call the deployed app's ``finetune`` function (``modal deploy -m infra.modal_app``)."""
    for path in (base, data, out):
        if path.is_absolute() or ".." in PurePosixPath(path).parts:
            raise FinetuneError(f"with --modal, {path} must be relative to the weights storage")
    if importlib.util.find_spec("modal") is None:
        raise FinetuneError("--modal needs the modal extra: pip install -e '.[modal]'")
    import modal  # the modal extra: only for --modal

    from infra.modal_app import APP_NAME

    try:
        function = modal.Function.from_name(APP_NAME, "finetune")
        manifest: dict[str, Any] = function.remote(str(base), str(data), str(out), asdict(hyper))
    except Exception as exc:  # the remote run's own errors arrive re-raised here
        raise SystemExit(f"enclave: the Modal fine-tuning run failed: {exc}") from None
    _report(out, manifest)
    return 0


def _report(out: Path, manifest: dict[str, Any]) -> None:
    losses = manifest["losses"]
    print(json.dumps(manifest, indent=2))
    print(f"adapter written to {out}: loss {losses[0]:.4f} -> {losses[-1]:.4f}")


__all__ = ["add_parser", "run"]

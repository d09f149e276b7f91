"""LoRA fine-tuning of a Hugging Face causal LM on chat JSONL: ``enclave finetune``.

The dataset is OpenAI's chat fine-tuning format, one conversation a line:
``{"messages": [{"role": "system" | "user" | "assistant", "content": "…"}, …]}``
ending with an assistant answer (what ``enclave dataset export`` writes, personal
data still as the gateway's ``<PERSON_1>``-style placeholders, learnt as text).

Each conversation is rendered with the base model's own chat template (a plain
fallback when it has none) and the loss counts only the assistant's tokens: the
model learns to answer, not to predict the user. A turn's tokens are found by
rendering the conversation up to it with and without the answer; a template that
re-renders earlier turns differently is refused rather than mislabelled.

Training is a plain PyTorch loop over ``peft`` LoRA weights (no ``Trainer``): the
same function runs on a laptop's CPU and, through ``--modal``, on a Modal GPU. The
adapter directory holds what PEFT writes (``adapter_config.json``,
``adapter_model.safetensors``) and ``enclave-finetune.json``: the base's identity,
the data's SHA-256, the hyper-parameters and the losses. It is written to a
temporary sibling and renamed, so a failed run leaves no half adapter behind.

torch, transformers and peft (the ``finetune`` extra) are imported only by
:func:`train`; reading and checking the dataset needs none of them.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from inference_node.weights import model_identity

MANIFEST = "enclave-finetune.json"
ROLES = frozenset({"system", "user", "assistant"})
MAX_LINE_BYTES = 1 << 20  # one conversation; a longer line is a broken export
DEFAULT_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
# for bases without a chat template: role-tagged turns, the answer closed by EOS
FALLBACK_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}"
    "{% if m['role'] == 'assistant' %}{{ eos_token }}{% endif %}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)

Conversation = list[dict[str, str]]


class FinetuneError(ValueError):
    """Bad input to a fine-tuning run (paths, dataset lines, template): one clear line."""


@dataclass(frozen=True, slots=True)
class Hyper:
    """The run's hyper-parameters, recorded in the manifest."""

    rank: int = 16
    alpha: int = 16
    epochs: int = 3
    lr: float = 2e-4
    batch_size: int = 4
    max_seq_len: int = 1024
    seed: int = 0
    dropout: float = 0.05
    targets: tuple[str, ...] = DEFAULT_TARGETS

    def __post_init__(self) -> None:
        for name in ("rank", "epochs", "batch_size", "max_seq_len"):
            if getattr(self, name) < 1:
                raise FinetuneError(f"--{name.replace('_', '-')} must be at least 1")
        if self.alpha <= 0 or self.lr <= 0 or not 0 <= self.dropout < 1:
            raise FinetuneError("--alpha and --lr must be positive, the dropout within [0, 1)")


@dataclass
class Manifest:
    base: dict[str, str]
    data: dict[str, Any]
    hyper: dict[str, Any]
    losses: list[float] = field(default_factory=list)  # mean loss of each epoch
    chat_template: str = "model"
    seconds: float = 0.0


def read_dataset(path: Path) -> list[Conversation]:
    """Every conversation in ``path``, checked; :class:`FinetuneError` naming the bad line."""
    if not path.is_file():
        raise FinetuneError(f"No dataset at {path}")
    conversations = []
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, 1):
            if len(raw) > MAX_LINE_BYTES:
                raise FinetuneError(f"{path}:{number}: longer than {MAX_LINE_BYTES} bytes")
            conversations.append(_conversation(raw, f"{path}:{number}"))
    if not conversations:
        raise FinetuneError(f"{path} holds no conversations")
    return conversations


def _conversation(raw: bytes, where: str) -> Conversation:
    if not raw.strip():
        raise FinetuneError(f"{where}: empty line")
    try:
        line = json.loads(raw)
    except ValueError as exc:
        raise FinetuneError(f"{where}: not JSON ({exc})") from None
    messages = line.get("messages") if isinstance(line, dict) else None
    if not isinstance(messages, list) or not messages:
        raise FinetuneError(f'{where}: expected {{"messages": [...]}} with at least one message')
    for index, message in enumerate(messages):
        if (
            not isinstance(message, dict)
            or message.get("role") not in ROLES
            or not isinstance(message.get("content"), str)
        ):
            raise FinetuneError(
                f"{where}: message {index} needs a role (system, user, assistant) and text content"
            )
    if messages[-1]["role"] != "assistant":
        raise FinetuneError(f"{where}: the last message must be the assistant's answer")
    return [{"role": m["role"], "content": m["content"]} for m in messages]


def train(base: Path, data: Path, out: Path, hyper: Hyper) -> Manifest:
    """Train a LoRA adapter for ``base`` on ``data`` into ``out``; the manifest it wrote."""
    conversations = read_dataset(data)
    if not (base / "config.json").is_file():
        raise FinetuneError(f"{base} is not a Hugging Face model directory (no config.json)")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FinetuneError(f"{out} already exists and is not empty")
    started = time.monotonic()
    from infra import finetune_torch  # torch, transformers, peft: only now

    model, tokenizer, template = finetune_torch.load(base, hyper)
    examples = finetune_torch.tokenise(tokenizer, conversations, hyper.max_seq_len)
    losses = finetune_torch.fit(model, examples, hyper, pad_id=finetune_torch.pad_id(tokenizer))
    manifest = Manifest(
        base={"path": str(base.resolve()), "revision": model_identity(base).revision},
        data={
            "path": str(data.resolve()),
            "sha256": hashlib.sha256(data.read_bytes()).hexdigest(),
            "conversations": len(conversations),
            "examples": len(examples),
        },
        hyper=asdict(hyper),
        losses=losses,
        chat_template=template,
        seconds=round(time.monotonic() - started, 1),
    )
    partial = out.with_name(f".{out.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    model.save_pretrained(str(partial))
    (partial / MANIFEST).write_text(json.dumps(asdict(manifest), indent=2) + "\n")
    if out.exists():
        out.rmdir()  # checked empty above
    try:
        os.replace(partial, out)
    except OSError:  # an S3 bucket mount (Modal's, mountpoint-s3) cannot rename: copy instead
        _copy_manifest_last(partial, out)
    return manifest


def _copy_manifest_last(partial: Path, out: Path) -> None:
    """Publish ``partial`` as ``out`` where rename is impossible; the manifest is written
    last, so an adapter directory with a manifest is a complete one."""
    out.mkdir(parents=True, exist_ok=True)
    for item in sorted(partial.iterdir(), key=lambda p: p.name == MANIFEST):
        if item.is_dir():
            shutil.copytree(item, out / item.name)
        else:
            shutil.copyfile(item, out / item.name)
    shutil.rmtree(partial, ignore_errors=True)


__all__ = ["FinetuneError", "Hyper", "Manifest", "read_dataset", "train"]

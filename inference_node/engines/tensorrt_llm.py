"""TensorRT-LLM, by supervising ``trtllm-serve`` as a child process.

**Decision: a supervised child, not the in-process LLM API** (``LLM.generate_async``).

* *Isolation.* TensorRT-LLM brings its own CUDA runtime, MPI and a multi-minute
  import; a fatal CUDA error or an MPI abort kills its process. In a child, the node
  survives it, answers ``/health`` with 503 (so the gateway fails over), and restarts
  the child. In-process, the node would die with it.
* *It already is what we need.* ``trtllm-serve`` is OpenAI-compatible: chat templates,
  in-flight batching, streaming, ``stream_options.include_usage``, and aborting a
  request when its client disconnects. This module is a thin, testable relay.
* *Dependencies.* ``tensorrt_llm`` pins torch, CUDA and Python versions of its own;
  as a separate program it can live in its own image layer or virtualenv, and the node
  never imports it (``command`` names the executable).
* *Cost.* One loopback HTTP hop and an SSE re-parse per chunk — tens of
  microseconds against tens of milliseconds per decode step — and a second port,
  bound to 127.0.0.1 only. In-process would save that hop and expose token ids; we
  do not need them: usage comes from the server's usage chunk.

Lifecycle: :meth:`TRTLLMEngine.open` checks the weights are a local directory (no hub:
``HF_HUB_OFFLINE=1`` in the child's environment), starts ``trtllm-serve MODEL --host
127.0.0.1 --port P …`` in its own process group, waits for ``GET /health`` to answer
200 (failing early if the child exits) and reads the served model name from
``/v1/models``. :meth:`~TRTLLMEngine.generate` streams ``/v1/chat/completions``
into pieces; closing it early closes the connection, which makes trtllm-serve abort
the request. When the child has died, ``health()`` is False and ``generate`` answers
503 while a restart runs in the background (at most ``max_restarts`` times).
:meth:`~TRTLLMEngine.aclose` sends SIGTERM to the process group, SIGKILL after a grace
(a restart under way gives up first).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Literal

import httpx
import orjson
from loguru import logger
from pydantic import BaseModel, ConfigDict, Field

from functions.errors import InvalidRequestError, ServiceUnavailableError
from functions.settings import NodeSettings
from inference_node.engine import GenerationParams, Piece
from inference_node.sampling import model_layers
from inference_node.weights import ModelIdentity, model_identity


class TRTLLMOptions(BaseModel):
    """How to run trtllm-serve, from NodeSettings (``ENCLAVE_NODE_TRT_*``)."""

    model_config = ConfigDict(frozen=True)

    model_id: str
    model_path: Path = Field(description="HF checkpoint dir (pytorch) or engine dir (tensorrt)")
    context_tokens: int = Field(ge=128)
    max_batch: int = Field(default=8, ge=1)
    backend: Literal["pytorch", "tensorrt"] = "pytorch"
    tokenizer_path: Path | None = Field(default=None, description="for an engine dir")
    command: list[str] = Field(default_factory=lambda: ["trtllm-serve"], min_length=1)
    extra_args: list[str] = Field(default_factory=list)
    startup_timeout_s: float = Field(default=1800.0, gt=0, description="load + warm-up")
    stop_grace_s: float = Field(default=30.0, ge=0)
    max_restarts: int = Field(default=3, ge=0)

    @classmethod
    def from_settings(cls, settings: NodeSettings) -> TRTLLMOptions:
        if settings.model_path is None:
            raise ValueError("tensorrt_llm needs ENCLAVE_NODE_MODEL_PATH: a model directory")
        return cls(
            model_id=settings.model_id,
            model_path=settings.model_path,
            context_tokens=settings.context_tokens,
            max_batch=settings.max_concurrency,
            backend=settings.trt_backend,
            tokenizer_path=settings.trt_tokenizer_path,
            command=settings.trt_command,
            extra_args=settings.trt_extra_args,
            startup_timeout_s=settings.trt_startup_timeout_s,
            stop_grace_s=settings.trt_stop_grace_s,
            max_restarts=settings.trt_max_restarts,
        )

    def argv(self, port: int) -> list[str]:
        args = [
            *self.command,
            str(self.model_path),
            *("--host", "127.0.0.1", "--port", str(port), "--backend", self.backend),
            *("--max_batch_size", str(self.max_batch), "--max_seq_len", str(self.context_tokens)),
        ]
        if self.tokenizer_path is not None:
            args += ["--tokenizer", str(self.tokenizer_path)]
        return args + self.extra_args


class ChildExitedError(RuntimeError):
    """trtllm-serve exited while it was starting."""


class Child:
    """One supervised trtllm-serve process on a fixed loopback port."""

    def __init__(self, options: TRTLLMOptions) -> None:
        self.options = options
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.closed = False

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        """Spawn the server and block until ``/health`` answers 200."""
        if self.closed:
            raise ChildExitedError("trtllm-serve is closed")
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        argv = self.options.argv(self.port)
        logger.info("starting trtllm-serve", argv=argv)
        self.proc = subprocess.Popen(argv, env=env, start_new_session=True)
        self.starts += 1
        self._wait_healthy(self.proc)

    def _wait_healthy(self, proc: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + self.options.startup_timeout_s
        with httpx.Client(base_url=self.url, timeout=2.0) as client:
            while time.monotonic() < deadline and not self.closed:
                if proc.poll() is not None:
                    raise ChildExitedError(f"trtllm-serve exited with {proc.returncode}")
                try:
                    if client.get("/health").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                time.sleep(0.2)
        self.stop()
        if self.closed:
            raise ChildExitedError("trtllm-serve was closed while starting")
        raise TimeoutError(f"trtllm-serve not healthy in {self.options.startup_timeout_s}s")

    def served_model(self) -> str:
        answer = httpx.get(f"{self.url}/v1/models", timeout=10.0).raise_for_status()
        return str(answer.json()["data"][0]["id"])

    def close(self) -> None:
        """Stop the server for good: a start under way gives up within 0.2 s."""
        self.closed = True
        self.stop()

    def stop(self) -> None:
        """SIGTERM to the whole process group (MPI workers too), SIGKILL after the grace."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        _signal_group(proc, signal.SIGTERM)
        try:
            proc.wait(timeout=self.options.stop_grace_s)
        except subprocess.TimeoutExpired:
            _signal_group(proc, signal.SIGKILL)
            proc.wait()


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class TRTLLMEngine:
    """The :class:`~inference_node.engine.Engine` over a supervised trtllm-serve."""

    def __init__(self, child: Child, served_model: str, identity: ModelIdentity | None) -> None:
        self.model_id = child.options.model_id
        self.identity = identity
        options = child.options
        dirs = [d for d in (options.model_path, options.tokenizer_path) if d is not None]
        self.sampling = model_layers((options.model_path.name, options.model_id), model_dirs=dirs)
        self.child = child
        self._served_model = served_model
        self._client: httpx.AsyncClient | None = None
        self._restart: asyncio.Task[None] | None = None

    @classmethod
    def open(cls, settings: NodeSettings, options: TRTLLMOptions | None = None) -> TRTLLMEngine:
        """Start trtllm-serve on the configured weights and wait for it: the registry's factory."""
        options = options or TRTLLMOptions.from_settings(settings)
        if shutil.which(options.command[0]) is None:
            raise FileNotFoundError(
                f"{options.command[0]} is not installed: pip install tensorrt_llm on a CUDA "
                "machine (it provides trtllm-serve)"
            )
        if not options.model_path.is_dir():
            raise FileNotFoundError(f"{options.model_path} is not a local model directory")
        identity = model_identity(options.model_path)
        child = Child(options)
        child.start()
        return cls(child, child.served_model(), identity)

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(base_url=self.child.url, timeout=None)
        return self._client

    async def health(self) -> bool:
        if not self.child.alive:
            self._restart_soon()
            return False
        try:
            answer = await self._http().get("/health", timeout=5.0)
        except httpx.TransportError:
            return False
        return answer.status_code == 200

    def _restart_soon(self) -> None:
        """Restart a dead child in the background, at most ``max_restarts`` times."""
        if self._restart is not None and not self._restart.done():
            return
        if self.child.starts > self.child.options.max_restarts:
            return
        code = self.child.proc.returncode if self.child.proc else None
        logger.error("trtllm-serve exited; restarting", returncode=code, starts=self.child.starts)
        self._restart = asyncio.create_task(self._restart_child())

    async def _restart_child(self) -> None:
        try:
            await asyncio.to_thread(self.child.start)
        except Exception as exc:
            if not self.child.closed:
                logger.opt(exception=exc).error("trtllm-serve failed to restart")
                await asyncio.to_thread(self.child.stop)
        else:
            logger.info("trtllm-serve restarted", starts=self.child.starts)

    async def aclose(self) -> None:
        await asyncio.to_thread(self.child.close)
        if self._restart is not None:
            await asyncio.gather(self._restart, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()

    async def generate(self, params: GenerationParams) -> AsyncIterator[Piece]:
        if not self.child.alive:
            self._restart_soon()
            raise ServiceUnavailableError(
                "The TensorRT-LLM server is restarting.", headers={"retry-after": "5"}
            )
        request = self._http().build_request(
            "POST", "/v1/chat/completions", content=orjson.dumps(self._payload(params))
        )
        response = await self._http().send(request, stream=True)
        try:
            if response.status_code >= 400:
                raise _refusal(response.status_code, await response.aread())
            async for piece in _pieces(response):
                yield piece
        finally:
            await response.aclose()  # early close: trtllm-serve sees the disconnect, aborts

    def _payload(self, params: GenerationParams) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "model": self._served_model,
            "messages": params.messages,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "frequency_penalty": params.frequency_penalty,
            "presence_penalty": params.presence_penalty,
            # trtllm-serve's own extensions of the OpenAI request (0 / 1.0: off)
            "top_k": params.top_k,
            "min_p": params.min_p,
            "repetition_penalty": params.repeat_penalty,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if params.max_tokens is not None:
            payload["max_tokens"] = params.max_tokens
        if params.stop:
            payload["stop"] = params.stop
        if params.seed is not None:
            payload["seed"] = params.seed
        return payload


async def _pieces(response: httpx.Response) -> AsyncIterator[Piece]:
    """OpenAI chat chunks as pieces; the last one carries finish reason and usage."""
    finish: str | None = None
    usage: dict[str, Any] = {}
    async for line in response.aiter_lines():
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            break
        chunk = orjson.loads(data)
        if "error" in chunk:
            raise ServiceUnavailableError(f"trtllm-serve failed mid-stream: {chunk['error']}")
        usage = chunk.get("usage") or usage
        for choice in chunk.get("choices") or []:
            text = (choice.get("delta") or {}).get("content")
            if text:
                yield Piece(text)
            finish = choice.get("finish_reason") or finish
    yield Piece(
        "",
        finish or "stop",
        prompt_tokens=usage.get("prompt_tokens"),
        completion_tokens=usage.get("completion_tokens"),
    )


def _refusal(status: int, content: bytes) -> Exception:
    try:
        error = orjson.loads(content)
        message = str(error.get("message") or error.get("error", {}).get("message") or error)
    except (orjson.JSONDecodeError, AttributeError):
        message = f"trtllm-serve answered {status}."
    if 400 <= status < 500:
        return InvalidRequestError(message)
    return ServiceUnavailableError(message)


__all__ = ["TRTLLMEngine", "TRTLLMOptions"]

"""The GPU engines' CPU-side logic, with test doubles where the GPU would be.

exllamav2: :class:`FakeDynamicGenerator` stands in for ``ExLlamaV2DynamicGenerator``
and emits the result dicts its ``iterate()`` documents; the engine is built from a
:class:`Backend` of such doubles (the seam that ``_load`` fills on a GPU machine).
The fake model answers with the words of the last user message (one token each),
then an end-of-sequence token; a message starting with "forever" never ends.

TensorRT-LLM: the real supervisor runs ``tests/inference_node/fake_trtllm_serve.py``
(same command line and routes as trtllm-serve) as its child on 127.0.0.1.

Nothing here needs CUDA, exllamav2 or tensorrt_llm: what does was not run here.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import subprocess
import sys
import threading
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from loguru import logger

from benchmarks.gpu.bench_exllamav2 import kv_bytes_per_token, weight_bytes_per_token
from benchmarks.gpu.make_random_llama import PRESETS, make, special_id, tensor_shapes
from functions.errors import (
    ContextLengthExceededError,
    InvalidRequestError,
    ServiceUnavailableError,
)
from functions.settings import NodeSettings
from inference_node.engine import (
    Engine,
    EngineRegistry,
    GenerationParams,
    Piece,
)
from inference_node.engines import register_builtins
from inference_node.engines._threaded import Channel
from inference_node.engines.exllamav2 import (
    Backend,
    ChatTemplate,
    ExLlamaV2Engine,
    ExLlamaV2Options,
    _piece,
    chat_template,
    choose_mode,
)
from inference_node.engines.tensorrt_llm import (
    Child,
    ChildExitedError,
    TRTLLMEngine,
    TRTLLMOptions,
)
from inference_node.sampling import Layer, Sampling
from inference_node.weights import safetensors_keys

EOS_ID = 2
TEMPLATE = "{% for m in messages %}[{{ m.role }}] {{ m.content }}\n{% endfor %}[assistant]"
FAKE_SERVE = Path(__file__).with_name("fake_trtllm_serve.py")


# --- exllamav2 test doubles ---------------------------------------------------------


@dataclass
class FakeIds:
    """A (1, n) token tensor: one token per whitespace-separated word."""

    text: str

    @property
    def shape(self) -> tuple[int, int]:
        return (1, len(self.text.split()))


class FakeTokenizer:
    def encode(self, text: str, add_bos: bool, encode_special_tokens: bool) -> FakeIds:
        assert not add_bos and encode_special_tokens  # BOS comes from the chat template
        return FakeIds(text)


@dataclass
class FakeJob:
    """Takes ExLlamaV2DynamicJob's keyword arguments; answers the last user message."""

    input_ids: FakeIds
    max_new_tokens: int
    gen_settings: dict[str, Any]
    seed: int | None
    stop_conditions: list[int | str]
    identifier: int
    serial: int = -1
    new_tokens: int = 0
    completion: str = ""
    emitted: int = 0
    words: Iterator[str] = field(init=False)

    def __post_init__(self) -> None:
        last = [line for line in self.input_ids.text.splitlines() if line.startswith("[user]")]
        said = last[-1].removeprefix("[user] ").split()
        forever = bool(said) and said[0] == "forever"
        self.words = itertools.repeat("la") if forever else iter([*said, "<eos>"])

    def step(self) -> dict[str, Any]:
        word = next(self.words)
        self.new_tokens += 1
        base = {"job": self, "stage": "streaming", "serial": self.serial}
        base["identifier"] = self.identifier
        if word == "<eos>" and EOS_ID in self.stop_conditions:
            return {
                **base,
                "eos": True,
                "eos_reason": "stop_token",
                "new_tokens": self.new_tokens,
                "eos_triggering_token_str": "",
                "held": {},
            }
        self.completion += word if not self.completion else f" {word}"
        stops = [s for s in self.stop_conditions if isinstance(s, str)]
        at = min((self.completion.find(s) for s in stops if s in self.completion), default=-1)
        if at >= 0:
            text = self.completion[self.emitted : at]
            return {
                **base,
                "eos": True,
                "eos_reason": "stop_string",
                "text": text,
                "new_tokens": self.new_tokens,
            }
        text = self.completion[self.emitted :]
        self.emitted = len(self.completion)
        if self.new_tokens >= self.max_new_tokens:
            return {
                **base,
                "eos": True,
                "eos_reason": "max_new_tokens",
                "text": text,
                "new_tokens": self.new_tokens,
            }
        return {**base, "eos": False, "text": text}


class FakeDynamicGenerator:
    """Emulates ExLlamaV2DynamicGenerator: enqueue, cancel, and iterate()'s result dicts."""

    def __init__(self, max_batch: int = 8, gate: threading.Event | None = None) -> None:
        self.max_batch = max_batch
        self.gate = gate  # while unset, iterate() starts nothing (lets requests pile up)
        self.pending: list[FakeJob] = []
        self.active: list[FakeJob] = []
        self.cancelled: list[FakeJob] = []
        self.batch_sizes: list[int] = []
        self.fail_with: BaseException | None = None
        self._serials = itertools.count()

    def enqueue(self, job: FakeJob) -> int:
        job.serial = next(self._serials)
        self.pending.append(job)
        return job.serial

    def cancel(self, job: FakeJob) -> None:
        self.cancelled.append(job)
        for jobs in (self.pending, self.active):
            if job in jobs:
                jobs.remove(job)

    def iterate(self) -> list[dict[str, Any]]:
        time.sleep(0.0005)
        if self.fail_with is not None:
            raise self.fail_with
        if self.gate is not None and not self.gate.is_set():
            return []
        results: list[dict[str, Any]] = []
        while self.pending and len(self.active) < self.max_batch:
            job = self.pending.pop(0)
            self.active.append(job)
            results.append(
                {
                    "job": job,
                    "stage": "started",
                    "eos": False,
                    "serial": job.serial,
                    "identifier": job.identifier,
                }
            )
        if self.active:
            self.batch_sizes.append(len(self.active))
        for job in list(self.active):
            result = job.step()
            results.append(result)
            if result["eos"]:
                self.active.remove(job)
        return results


@dataclass
class Fakes:
    generator: FakeDynamicGenerator
    unloaded: list[bool] = field(default_factory=list)

    def backend(self, paged: bool = True) -> Backend:
        return Backend(
            generator=self.generator,
            tokenizer=FakeTokenizer(),
            new_job=FakeJob,
            new_sampler=lambda **settings: settings,
            template=ChatTemplate(TEMPLATE),
            stop_token_ids=[EOS_ID],
            paged=paged,
            unload=lambda: self.unloaded.append(True),
        )


def options(**overrides: Any) -> ExLlamaV2Options:
    fields: dict[str, Any] = {
        "model_id": "exl2-test",
        "model_dir": Path("/nowhere"),
        "context_tokens": 128,
        "max_batch": 8,
    }
    return ExLlamaV2Options(**(fields | overrides))


def run_exl2(
    scenario: Callable[[ExLlamaV2Engine, FakeDynamicGenerator], Awaitable[Any]],
    generator: FakeDynamicGenerator | None = None,
    **option_fields: Any,
) -> Fakes:
    fakes = Fakes(generator or FakeDynamicGenerator())

    async def main() -> None:
        engine = ExLlamaV2Engine(options(**option_fields), fakes.backend())
        try:
            await scenario(engine, fakes.generator)
        finally:
            await engine.aclose()

    asyncio.run(main())
    return fakes


def ask(content: str, **fields: Any) -> GenerationParams:
    return GenerationParams(messages=[{"role": "user", "content": content}], **fields)


async def collect(engine: Engine, params: GenerationParams) -> list[Piece]:
    return [piece async for piece in engine.generate(params)]


def text(pieces: list[Piece]) -> str:
    return "".join(p.text for p in pieces)


# --- exllamav2 ----------------------------------------------------------------------


def test_exl2_streams_pieces_then_finish_and_exact_usage() -> None:
    async def scenario(engine: ExLlamaV2Engine, gen: FakeDynamicGenerator) -> None:
        assert isinstance(engine, Engine)
        pieces = await collect(engine, ask("hello brave new world"))
        assert text(pieces) == "hello brave new world"
        assert [p.finish_reason for p in pieces[:-1]] == [None] * (len(pieces) - 1)
        last = pieces[-1]
        assert last.finish_reason == "stop"
        # "[user] hello brave new world" + "[assistant]": 6 prompt tokens
        assert (last.prompt_tokens, last.completion_tokens) == (6, 4)  # EOS not counted
        assert await engine.health()

    run_exl2(scenario)


def test_exl2_job_carries_sampling_stops_seed_and_budget() -> None:
    jobs: list[FakeJob] = []

    class Recording(FakeDynamicGenerator):
        def enqueue(self, job: FakeJob) -> int:
            jobs.append(job)
            return super().enqueue(job)

    penalties = {"repeat_penalty": 1.1, "frequency_penalty": 0.5, "presence_penalty": -0.5}

    async def scenario(engine: ExLlamaV2Engine, gen: FakeDynamicGenerator) -> None:
        sampling = {"temperature": 0.7, "top_p": 0.9, "top_k": 40, "min_p": 0.05}
        await collect(engine, ask("a b", stop=["X", ""], seed=7, **sampling, **penalties))
        await collect(engine, ask("a b", temperature=0.0, **penalties))
        await collect(engine, ask("a b", max_tokens=1000))

    run_exl2(scenario, Recording())
    sampled, greedy, long = jobs
    assert sampled.gen_settings == {
        "temperature": 0.7,
        "top_p": 0.9,
        "top_k": 40,
        "min_p": 0.05,
        "token_repetition_penalty": 1.1,
        "token_frequency_penalty": 0.5,
        "token_presence_penalty": -0.5,
    }
    assert greedy.gen_settings["top_k"] == 1 and greedy.gen_settings["top_p"] == 0.0
    assert greedy.gen_settings["token_frequency_penalty"] == 0.5  # penalties apply when greedy
    neutral = {"token_repetition_penalty": 1.0, "token_frequency_penalty": 0.0}
    assert neutral.items() <= long.gen_settings.items()  # unset: off, not exllamav2's own
    assert sampled.stop_conditions == [EOS_ID, "X"] and sampled.seed == 7
    assert sampled.max_new_tokens == 128 - 4  # the context left after the prompt
    assert long.max_new_tokens == 128 - 4  # max_tokens never past the context


def test_exl2_stop_string_ends_with_stop_and_is_not_emitted() -> None:
    async def scenario(engine: ExLlamaV2Engine, gen: FakeDynamicGenerator) -> None:
        pieces = await collect(engine, ask("one two END three", stop=["END"]))
        assert text(pieces) == "one two "
        assert pieces[-1].finish_reason == "stop"
        assert pieces[-1].completion_tokens == 3

    run_exl2(scenario)


def test_exl2_max_tokens_ends_with_length() -> None:
    async def scenario(engine: ExLlamaV2Engine, gen: FakeDynamicGenerator) -> None:
        pieces = await collect(engine, ask("forever", max_tokens=5))
        assert text(pieces) == "la la la la la"
        assert (pieces[-1].finish_reason, pieces[-1].completion_tokens) == ("length", 5)

    run_exl2(scenario)


def test_exl2_a_prompt_past_the_context_is_refused() -> None:
    async def scenario(engine: ExLlamaV2Engine, gen: FakeDynamicGenerator) -> None:
        with pytest.raises(ContextLengthExceededError, match="context length is 128 tokens") as e:
            await collect(engine, ask("w " * 200))
        assert (e.value.status_code, e.value.code) == (400, "context_length_exceeded")
        assert gen.pending == [] and gen.active == []

    run_exl2(scenario)


def test_exl2_closing_the_stream_cancels_the_job_and_frees_the_slot() -> None:
    async def scenario(engine: ExLlamaV2Engine, gen: FakeDynamicGenerator) -> None:
        stream = engine.generate(ask("forever"))
        assert isinstance(stream, AsyncGenerator)
        assert (await anext(stream)).text == "la"
        await anext(stream)
        await stream.aclose()  # the client went away
        for _ in range(200):
            if gen.cancelled:
                break
            await asyncio.sleep(0.005)
        assert [job.identifier for job in gen.cancelled] == [0]
        assert gen.active == []
        assert text(await collect(engine, ask("next please"))) == "next please"

    run_exl2(scenario)


def test_exl2_concurrent_requests_share_one_batched_loop() -> None:
    gate = threading.Event()

    async def scenario(engine: ExLlamaV2Engine, gen: FakeDynamicGenerator) -> None:
        prompts = [f"request {i} says {'hi ' * i}".strip() for i in range(8)]
        tasks = [asyncio.create_task(collect(engine, ask(p))) for p in prompts]
        for _ in range(400):
            if len(gen.pending) == 8:
                break
            await asyncio.sleep(0.005)
        gate.set()
        answers = await asyncio.gather(*tasks)
        assert [text(a) for a in answers] == prompts  # each stream got its own tokens
        assert [a[-1].completion_tokens for a in answers] == [len(p.split()) for p in prompts]
        assert max(gen.batch_sizes) == 8  # all eight decoded in the same steps

    run_exl2(scenario, FakeDynamicGenerator(max_batch=8, gate=gate))


def test_exl2_generator_failure_fails_streams_and_health() -> None:
    async def scenario(engine: ExLlamaV2Engine, gen: FakeDynamicGenerator) -> None:
        stream = engine.generate(ask("forever"))
        await anext(stream)
        gen.fail_with = RuntimeError("CUDA error: an illegal memory access")
        with pytest.raises(RuntimeError, match="illegal memory access"):
            async for _ in stream:
                pass
        assert not await engine.health()
        with pytest.raises(ServiceUnavailableError, match="failed"):
            await collect(engine, ask("hello"))

    run_exl2(scenario)


def test_exl2_aclose_ends_live_streams_and_unloads() -> None:
    seen: list[BaseException] = []

    async def scenario(engine: ExLlamaV2Engine, gen: FakeDynamicGenerator) -> None:
        stream = engine.generate(ask("forever"))
        await anext(stream)
        await engine.aclose()
        try:
            async for _ in stream:
                pass
        except ServiceUnavailableError as exc:
            seen.append(exc)
        assert not await engine.health()

    fakes = run_exl2(scenario)  # which closes it again: a no-op
    assert fakes.unloaded == [True] and len(seen) == 1


def test_exl2_text_held_before_an_eos_token_is_emitted_without_the_eos() -> None:
    result = {
        "stage": "streaming",
        "eos": True,
        "eos_reason": "stop_token",
        "new_tokens": 3,
        "held": {"text": "EN<|eot_id|>"},
        "eos_triggering_token_str": "<|eot_id|>",
    }
    assert _piece(result, 5) == Piece("EN", "stop", prompt_tokens=5, completion_tokens=2)
    assert _piece({"stage": "prefill", "eos": False}, 5) is None
    assert _piece({"stage": "streaming", "eos": False, "text": ""}, 5) is None


def test_exl2_mode_is_paged_only_with_paged_flash_attn_and_is_logged() -> None:
    lines: list[str] = []
    sink = logger.add(lambda message: lines.append(str(message)), level="INFO")
    try:
        paged = choose_mode(options(max_batch=64, context_tokens=1000), flash_attn_paged=True)
        single = choose_mode(options(max_batch=64, context_tokens=1000), flash_attn_paged=False)
    finally:
        logger.remove(sink)
    assert (paged.paged, paged.max_batch, paged.cache_tokens) == (True, 64, 64000)
    assert (single.paged, single.max_batch, single.cache_tokens) == (False, 1, 1024)
    assert any("batching mode" in line for line in lines)
    assert not choose_mode(options(paged=False), flash_attn_paged=True).paged
    with pytest.raises(ValueError, match="flash-attn"):
        choose_mode(options(paged=True), flash_attn_paged=False)


def test_chat_template_comes_from_the_model_directory(tmp_path: Path) -> None:
    config = {
        "chat_template": [
            {"name": "tool_use", "template": "no"},
            {"name": "default", "template": "{{ bos_token }}{{ messages[0].content }}"},
        ],
        "bos_token": {"content": "<s>"},
        "eos_token": "</s>",
    }
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config))
    template = chat_template(tmp_path)
    assert template.render([{"role": "user", "content": "hi"}]) == "<s>hi"
    (tmp_path / "chat_template.jinja").write_text("{{ raise_exception('no system role') }}")
    with pytest.raises(InvalidRequestError, match="no system role"):
        chat_template(tmp_path).render([])
    with pytest.raises(ValueError, match="no chat template"):
        chat_template(tmp_path / "missing")


# --- registry, lazy imports, the random-weight model ------------------------------


def test_heavy_engines_are_registered_and_imported_lazily() -> None:
    registry = EngineRegistry()
    register_builtins(registry.register)
    assert {"exllamav2", "tensorrt_llm"} <= set(registry.names())
    code = (
        "import sys, inference_node.engines, inference_node.engines.exllamav2\n"
        "import inference_node.engines.tensorrt_llm\n"
        "heavy = sorted({'exllamav2', 'tensorrt_llm', 'torch'} & set(sys.modules))\n"
        "assert not heavy, heavy\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr


def test_the_exllamav2_factory_says_what_to_install(tmp_path: Path) -> None:
    make(tmp_path, PRESETS["tiny"])
    registry = EngineRegistry()
    register_builtins(registry.register)
    settings = NodeSettings(engine="exllamav2", model_path=tmp_path)
    with pytest.raises(ModuleNotFoundError, match="exllamav2 is not installed: pip install"):
        registry.create(settings)
    with pytest.raises(ValueError, match="ENCLAVE_NODE_MODEL_PATH"):
        registry.create(NodeSettings(engine="exllamav2"))
    with pytest.raises(FileNotFoundError, match="trtllm-serve is not installed"):
        registry.create(NodeSettings(engine="tensorrt_llm", model_path=tmp_path))


def test_the_random_llama_has_the_architecture_and_a_byte_tokenizer(tmp_path: Path) -> None:
    from tokenizers import Tokenizer

    arch = PRESETS["tiny"]
    total = make(tmp_path, arch, shard_bytes=1 << 20)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["num_key_value_heads"] == 2 and config["vocab_size"] == 512
    shards = sorted(tmp_path.glob("*.safetensors"))
    assert len(shards) > 1
    keys = [k for shard in shards for k in safetensors_keys(shard)]
    assert keys == [name for name, _ in tensor_shapes(arch)]
    params = sum(int(math.prod(shape)) for _, shape in tensor_shapes(arch))
    assert total == 2 * params
    assert sum(s.stat().st_size for s in shards) > total
    tokenizer = Tokenizer.from_file(str(tmp_path / "tokenizer.json"))
    assert tokenizer.get_vocab_size() == 512
    prompt = chat_template(tmp_path).render([{"role": "user", "content": "hi"}])
    ids = tokenizer.encode(prompt).ids
    assert ids[0] == special_id(arch, "<|begin_of_text|>")
    assert special_id(arch, "<|eot_id|>") in ids and len(tokenizer.encode("x" * 512).ids) == 512
    # the benchmark's bound: every tensor once per step, one row of the embedding table
    assert (
        weight_bytes_per_token(tmp_path) == total - 2 * arch.vocab * arch.hidden + 2 * arch.hidden
    )
    assert kv_bytes_per_token(config) == 2 * 2 * 2 * 64 * 2  # K+V x layers x kv heads x dim x FP16
    llama3 = PRESETS["llama3-8b"]
    params_8b = sum(int(math.prod(s)) for _, s in tensor_shapes(llama3))
    assert 8.0e9 < params_8b < 8.1e9  # Llama-3-8B: 8.03 B parameters
    assert special_id(llama3, "<|eot_id|>") == 128009


# --- TensorRT-LLM through a supervised trtllm-serve ------------------------------


def trt_options(model_dir: Path, **overrides: Any) -> TRTLLMOptions:
    (model_dir / "config.json").write_text("{}")
    fields: dict[str, Any] = {
        "model_id": "trt-test",
        "model_path": model_dir,
        "context_tokens": 4096,
        "max_batch": 16,
        "command": [sys.executable, str(FAKE_SERVE)],
        "startup_timeout_s": 30,
        "stop_grace_s": 5,
    }
    return TRTLLMOptions(**(fields | overrides))


def events(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def run_trt(
    opts: TRTLLMOptions, scenario: Callable[[TRTLLMEngine], Awaitable[None]]
) -> TRTLLMEngine:
    async def main() -> TRTLLMEngine:
        engine = await asyncio.to_thread(TRTLLMEngine.open, NodeSettings(), opts)
        try:
            await scenario(engine)
        finally:
            await engine.aclose()
        return engine

    return asyncio.run(main())


def test_trtllm_serve_is_started_relayed_cancelled_and_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "events.jsonl"
    monkeypatch.setenv("FAKE_TRTLLM_LOG", str(log))
    opts = trt_options(tmp_path)

    async def scenario(engine: TRTLLMEngine) -> None:
        assert isinstance(engine, Engine) and await engine.health()
        pieces = await collect(engine, ask("hello brave new world"))
        assert text(pieces) == "hello brave new world"
        assert pieces[-1] == Piece("", "stop", prompt_tokens=10, completion_tokens=4)
        pieces = await collect(engine, ask("a b c d", max_tokens=2))
        assert (text(pieces), pieces[-1].finish_reason) == ("a b", "length")
        with pytest.raises(InvalidRequestError, match="prompt too long"):
            await collect(engine, ask("too long"))
        stream = engine.generate(ask("one two three four five six seven eight nine ten"))
        assert isinstance(stream, AsyncGenerator)
        await anext(stream)
        await stream.aclose()
        for _ in range(200):
            if any("cancelled" in e for e in events(log)):
                break
            await asyncio.sleep(0.01)
        assert any("cancelled" in e for e in events(log))

    engine = run_trt(opts, scenario)
    argv = events(log)[0]["argv"]
    assert argv[0] == str(tmp_path) and argv[argv.index("--host") + 1] == "127.0.0.1"
    assert argv[argv.index("--max_batch_size") + 1] == "16"
    assert argv[argv.index("--backend") + 1] == "pytorch"
    assert engine.identity is not None and engine.identity.path == tmp_path.resolve()
    assert engine.child.proc is not None and engine.child.proc.poll() is not None  # stopped


def test_trtllm_requests_carry_every_sampling_parameter(tmp_path: Path) -> None:
    engine = TRTLLMEngine(Child(trt_options(tmp_path)), "served", None)  # never started
    params = ask("hi", temperature=0.2, top_p=0.9, top_k=40, min_p=0.05, repeat_penalty=1.1)
    payload = engine._payload(replace(params, frequency_penalty=0.5, presence_penalty=-1.0))
    sampling = {k: payload[k] for k in ("temperature", "top_p", "top_k", "min_p")}
    assert sampling == {"temperature": 0.2, "top_p": 0.9, "top_k": 40, "min_p": 0.05}
    assert (payload["repetition_penalty"], payload["frequency_penalty"]) == (1.1, 0.5)
    assert payload["presence_penalty"] == -1.0


def test_gpu_engines_take_sampling_defaults_from_generation_config(tmp_path: Path) -> None:
    config = {"temperature": 0.6, "top_p": 0.95, "top_k": 20, "repetition_penalty": 1.05}
    (tmp_path / "generation_config.json").write_text(json.dumps(config))
    expected = Layer(
        "generation_config.json",
        Sampling(temperature=0.6, top_p=0.95, top_k=20, repeat_penalty=1.05),
    )
    trt = TRTLLMEngine(Child(trt_options(tmp_path)), "served", None)
    exl2 = ExLlamaV2Engine(options(model_dir=tmp_path), Fakes(FakeDynamicGenerator()).backend())
    try:
        assert trt.sampling == (expected,)
        assert exl2.sampling == (expected,)
    finally:
        asyncio.run(exl2.aclose())


def test_a_dead_trtllm_serve_is_unhealthy_then_restarted(tmp_path: Path) -> None:
    async def scenario(engine: TRTLLMEngine) -> None:
        assert engine.child.proc is not None
        engine.child.proc.kill()
        engine.child.proc.wait()
        assert not await engine.health()
        with pytest.raises(ServiceUnavailableError, match="restarting"):
            await collect(engine, ask("hello"))
        for _ in range(300):
            if await engine.health():
                break
            await asyncio.sleep(0.05)
        assert engine.child.starts == 2
        assert text(await collect(engine, ask("back again"))) == "back again"

    run_trt(trt_options(tmp_path), scenario)


def test_trtllm_serve_that_exits_or_never_gets_healthy_fails_the_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_TRTLLM_MODE", "exit")
    with pytest.raises(ChildExitedError, match="exited with 3"):
        TRTLLMEngine.open(NodeSettings(), trt_options(tmp_path))
    monkeypatch.setenv("FAKE_TRTLLM_MODE", "unhealthy")
    with pytest.raises(TimeoutError, match="not healthy"):
        TRTLLMEngine.open(NodeSettings(), trt_options(tmp_path, startup_timeout_s=2))


def test_aclose_during_a_restart_leaves_no_child(tmp_path: Path) -> None:
    procs: list[subprocess.Popen[bytes]] = []

    async def scenario(engine: TRTLLMEngine) -> None:
        assert engine.child.proc is not None
        procs.append(engine.child.proc)
        engine.child.proc.kill()
        engine.child.proc.wait()
        assert not await engine.health()  # the restart begins in the background
        for _ in range(200):
            if engine.child.proc is not procs[0]:
                break
            await asyncio.sleep(0.005)
        procs.append(engine.child.proc)

    engine = run_trt(trt_options(tmp_path), scenario)  # aclose while it starts
    assert engine.child.closed and len(procs) == 2
    assert all(proc.poll() is not None for proc in procs)


def test_exl2_a_refused_job_fails_alone_and_a_closed_engine_refuses_at_once() -> None:
    class Picky(FakeDynamicGenerator):
        def enqueue(self, job: FakeJob) -> int:
            if "huge" in job.input_ids.text:
                raise AssertionError("job too large for the cache")
            return super().enqueue(job)

    async def scenario(engine: ExLlamaV2Engine, gen: FakeDynamicGenerator) -> None:
        with pytest.raises(AssertionError, match="too large"):
            await collect(engine, ask("huge prompt"))
        assert text(await collect(engine, ask("small one"))) == "small one"
        await engine.aclose()
        with pytest.raises(ServiceUnavailableError, match="closed"):
            await collect(engine, ask("after close"))
        channel: Channel[dict[str, Any]] = Channel()
        engine._loop.submit(FakeJob(FakeIds("[user] x"), 1, {}, None, [], 99), channel)
        with pytest.raises(ServiceUnavailableError, match="shutting down"):
            async for _ in channel:
                pass

    run_exl2(scenario, Picky())

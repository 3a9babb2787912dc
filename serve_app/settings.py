"""One typed settings object: `AppArgs` from serve_config.yaml `args:` (the spine's sections here, the models'
sections from the catalogue), `Secrets` from the environment.

Both are read once, by the app builder, and handed to each deployment's constructor.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from ipaddress import IPv4Network, IPv6Network
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    SecretStr,
    create_model,
)

from deployments.contract import ModelArgs


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)  # a YAML typo fails the deploy and names the key


class StorageArgs(_Args):
    backend: Literal["local", "s3"] = Field("local", description="local = a directory; s3 = any S3 API.")
    local_dir: str = Field("./data", description="Root directory of the local backend.")
    bucket: str | None = Field(None, description="S3 bucket (s3 backend).")
    prefix: str = Field("", description="Key prefix inside the bucket, e.g. `video-api/prod`.")
    endpoint_url: str | None = Field(None, description="R2 / MinIO / GCS endpoint; empty for AWS S3.")
    region: str | None = Field(None, description="Region; `auto` for Cloudflare R2.")
    public_base_url: str = Field(
        "http://127.0.0.1:8000", description="Base URL of the gateway, for the local backend's signed links."
    )
    presign_expires_s: PositiveInt = Field(3600, le=7 * 24 * 3600, description="Lifetime of signed URLs.")
    multipart_threshold_mb: PositiveInt = Field(64, description="Files above this upload in parts (s3).")
    retry_window_s: PositiveFloat = Field(
        90.0,
        description="How long a job's output and result writes, and the queue's record writes, are retried "
        "through a storage outage (backoff 0.5 s doubling to 10 s) before they fail.",
    )
    connect_timeout_s: PositiveFloat = Field(5.0, description="Time allowed to open a connection to S3 (s3).")


class InputArgs(_Args):
    max_input_mb: PositiveFloat = Field(200.0, description="Largest input file (URL, upload or base64).")
    fetch_timeout_s: PositiveFloat = Field(30.0, description="Total time allowed to fetch one URL input.")
    max_redirects: int = Field(3, ge=0, le=10, description="Redirect hops followed, each one re-checked.")
    allow_networks: tuple[IPv4Network | IPv6Network, ...] = Field(
        (), description="Private/loopback networks URL inputs may reach anyway (tests, an internal CDN)."
    )


class QueueArgs(_Args):
    max_attempts: PositiveInt = Field(3, description="Runs of one job before it fails (crashes count).")
    retry_backoff_s: PositiveFloat = Field(5.0, description="First retry delay; doubles each attempt.")
    retry_backoff_max_s: PositiveFloat = Field(300.0, description="Ceiling of the retry delay.")
    heartbeat_timeout_s: PositiveFloat = Field(
        120.0,
        description="A running job whose replica has not reported for this long (a frozen or vanished replica, "
        "or a run lost in a queue restart) is run again.",
    )
    dispatch_window: PositiveInt | None = Field(
        None, description="Jobs sent to the model at once; default max_replicas x 2."
    )
    max_queued_jobs: PositiveInt = Field(1000, description="Unfinished jobs per model before 429.")
    retry_after_s: PositiveInt = Field(30, description="Retry-After sent with a 429.")
    record_flush_s: PositiveFloat = Field(2.0, description="Progress is written to storage at most this often.")
    retention_days: PositiveFloat | None = Field(
        None,
        description="Delete finished jobs (record, inputs, output) after this many days; None keeps them.",
    )


class WebhookArgs(_Args):
    max_attempts: int = Field(6, ge=1, le=20, description="Deliveries tried per terminal event.")
    backoff_s: PositiveFloat = Field(10.0, description="First retry delay; doubles each attempt.")
    backoff_max_s: PositiveFloat = Field(300.0, description="Ceiling of the retry delay.")
    timeout_s: PositiveFloat = Field(10.0, description="Time a receiver has to answer one delivery.")
    max_concurrent: PositiveInt = Field(
        16,
        description="Deliveries one model's queue has in flight at once; the rest wait for a slot (a queue "
        "restarted after a long receiver outage may hold thousands, and a receiver resets what it cannot accept).",
    )
    allow_networks: tuple[IPv4Network | IPv6Network, ...] = Field(
        (), description="Private/loopback networks webhooks may reach anyway (tests, in-cluster receivers)."
    )


class GatewayArgs(_Args):
    num_replicas: PositiveInt = Field(1, description="Gateway replicas (stateless).")
    num_cpus: float = Field(0.5, ge=0, description="CPUs reserved per gateway replica.")
    require_auth: bool = Field(True, description="Require a Bearer key from API_KEYS on /api routes.")
    max_ongoing_requests: PositiveInt = Field(
        1000, description="Requests one gateway replica holds at once; each open event stream is one."
    )
    keepalive_s: PositiveFloat = Field(15, description="Comment sent on an idle event stream this often.")
    graceful_shutdown_timeout_s: PositiveFloat = Field(
        75,
        description="A gateway replica being replaced or removed finishes its requests in flight for up to this "
        "long (a `Prefer: wait` hold lasts up to 60 s); event streams still open then are cut, and clients resume "
        "them with Last-Event-ID.",
    )


class TenantLimits(_Args):
    """What one tenant may do. In `tenants.overrides`, only the fields a tenant's entry names replace the
    defaults; the others stay as `tenants.defaults` sets them."""

    weight: PositiveFloat = Field(
        1.0, description="Share of the GPUs under contention: a tenant of weight 2 gets twice the GPU time of one of 1."
    )
    max_queued: NonNegativeInt | dict[str, NonNegativeInt] | None = Field(
        None,
        description="Jobs of this tenant waiting to run, per model, before 429 rate_limited: one number for every "
        "model, or `{model: number}` (models not named have no limit); None = no limit. 0 with `max_running`: "
        "a job is taken only if it can run at once (a concurrency limit; the 429 names max_running); 0 without "
        "it bars the tenant from the model.",
    )
    max_running: PositiveInt | dict[str, PositiveInt] | None = Field(
        None,
        description="Jobs of this tenant a model runs at once; the rest wait even when GPUs are free: one number "
        "for every model, or `{model: number}` (models not named have no cap); None = no cap.",
    )
    submissions_per_minute: PositiveInt | None = Field(
        None, description="POST /api/v1/generate calls per sliding minute, across models; None = no limit."
    )
    daily_gpu_seconds: PositiveFloat | None = Field(
        None,
        description="Billable GPU-seconds per UTC day (jobs count on the day they were submitted); past it, new "
        "jobs get 429 budget_exhausted until the next UTC day. None = no budget.",
    )

    def max_queued_for(self, model: str) -> int | None:
        """The waiting-jobs limit on `model`, or None."""
        return _per_model(self.max_queued, model)

    def max_running_for(self, model: str) -> int | None:
        """The running-jobs cap on `model`, or None."""
        return _per_model(self.max_running, model)


def _per_model(value: int | dict[str, int] | None, model: str) -> int | None:
    return value.get(model) if isinstance(value, dict) else value


DEFAULT_TENANT = "default"  # the tenant of every key configured without a name


class TenantsArgs(_Args):
    """Tenants are the names of the keys in API_KEYS (`name:key`); keys without a name share `default`."""

    defaults: TenantLimits = Field(default_factory=TenantLimits)
    overrides: dict[str, TenantLimits] = Field(
        default_factory=dict, description="Per tenant name: the limits that differ from `defaults`."
    )
    admin_exempt: bool = Field(True, description="Admin keys (ADMIN_API_KEYS) skip every tenant limit.")
    gpu_hour_price: dict[str, NonNegativeFloat] = Field(
        default_factory=lambda: {"cpu": 0.0},
        description="Price of one GPU-hour by accelerator type (a model's `placement.accelerator_type`, else its "
        "first custom resource, else `gpu`; `cpu` for replicas without a GPU); unlisted types cost 0.",
    )

    def limits_for(self, tenant: str) -> TenantLimits:
        """The defaults, with the fields this tenant's override sets."""
        override = self.overrides.get(tenant)
        if override is None:
            return self.defaults
        return self.defaults.model_copy(update={name: getattr(override, name) for name in override.model_fields_set})

    def price_per_gpu_hour(self, accelerator: str) -> float:
        """The configured price of one GPU-hour on `accelerator`; 0 when none is set."""
        return self.gpu_hour_price.get(accelerator, 0.0)


class SpineArgs(_Args):
    """The spine's part of `args:` in serve_config.yaml; each model adds its own section (see `app_args_model`)."""

    storage: StorageArgs = Field(default_factory=StorageArgs)
    inputs: InputArgs = Field(default_factory=InputArgs)
    queue: QueueArgs = Field(default_factory=QueueArgs)
    webhooks: WebhookArgs = Field(default_factory=WebhookArgs)
    gateway: GatewayArgs = Field(default_factory=GatewayArgs)
    tenants: TenantsArgs = Field(default_factory=TenantsArgs)
    queue_num_cpus: float = Field(0.25, ge=0, description="CPUs reserved by each model's JobQueue.")

    def spine(self) -> SpineArgs:
        """Only the spine's sections, as the gateway and the queues receive them."""
        return SpineArgs.model_validate({name: getattr(self, name) for name in SpineArgs.model_fields})

    def models(self) -> dict[str, ModelArgs]:
        """Every model section by its API name, enabled or not."""
        return {name: value for name in type(self).model_fields if isinstance(value := getattr(self, name), ModelArgs)}


def app_args_model(sections: Mapping[str, type[ModelArgs]]) -> type[SpineArgs]:
    """The whole `args:` schema: the spine's sections plus one section per model, each defaulted."""
    fields: dict[str, Any] = {name: (args, Field(default_factory=args)) for name, args in sections.items()}
    return create_model(
        "AppArgs", __base__=SpineArgs, __doc__="Everything under `args:` in serve_config.yaml.", **fields
    )


TENANT_NAME = re.compile(r"[A-Za-z0-9_]{1,32}")  # no dash: an upload prefix is `{key_id}-{group}`


class ApiKey(BaseModel):
    """One Bearer key and the id that stands for it in job records and logs (never the key itself)."""

    model_config = ConfigDict(frozen=True)

    key_id: str
    key: SecretStr
    admin: bool = False
    named: bool = False  # `name:key`: the name is both the key id and the tenant

    @property
    def tenant(self) -> str:
        """The tenant whose limits and usage this key shares: its name, or `default` for an unnamed key."""
        return self.key_id if self.named else DEFAULT_TENANT

    @classmethod
    def parse(cls, entry: str, admin: bool = False) -> ApiKey:
        """`name:key` names the tenant; a plain key's id is a hash of it."""
        name, sep, key = entry.partition(":")
        if not sep:
            return cls(key_id=key_id_of(entry), key=SecretStr(entry), admin=admin)
        if not TENANT_NAME.fullmatch(name) or not key:
            raise ValueError(f"API key entry named {name[:40]!r}: expected name:key with name matching [A-Za-z0-9_]")
        return cls(key_id=name, key=SecretStr(key), admin=admin, named=True)


def key_id_of(key: str) -> str:
    """The id of a plain key: a short hash, stable across restarts (idempotency keys are scoped by it)."""
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def parse_keys(value: str, admin: bool = False) -> tuple[ApiKey, ...]:
    """A comma-separated list of `key` or `name:key` entries."""
    return tuple(ApiKey.parse(entry.strip(), admin) for entry in value.split(",") if entry.strip())


class Secrets(BaseModel):
    """Secrets, from the environment only; never logged, never written to a job record."""

    model_config = ConfigDict(frozen=True)

    api_keys: tuple[ApiKey, ...] = ()
    webhook_secret: SecretStr | None = None
    url_signing_secret: SecretStr | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Secrets:
        """API_KEYS and ADMIN_API_KEYS (comma-separated `key` or `name:key`), WEBHOOK_SECRET (whsec_...),
        URL_SIGNING_SECRET (local storage links)."""
        keys = parse_keys(environ.get("API_KEYS", "")) + parse_keys(environ.get("ADMIN_API_KEYS", ""), admin=True)
        return cls(
            api_keys=keys,
            webhook_secret=environ.get("WEBHOOK_SECRET") or None,
            url_signing_secret=environ.get("URL_SIGNING_SECRET") or None,
        )

"""The app builder: `import_path: serve_app.app:build_app` in serve_config.yaml, `args:` validated into AppArgs.

Graph: Gateway -> one JobQueue per enabled model -> that model's deployment (the GPU replicas). The builder is
the one place that joins the spine and the models: it reads the catalogue's specs and hands each deployment
what it needs of them.
"""

# No `from __future__ import annotations` here: Serve validates `args:` into AppArgs only when the builder's
# annotation is the class itself, not a string.
import logging
from pathlib import Path
from typing import Any

from ray import serve
from ray.serve import Application

from deployments.contract import ModelArgs, ModelSpec
from serve_app.catalogue import CATALOGUE, AppArgs, Catalogue
from serve_app.http.ingress import GatewayIngress
from serve_app.jobs.queue import JobQueue
from serve_app.runs.coordinator import MAX_ONGOING_CHAINS, ChainCoordinator
from serve_app.runs.replica import ModelDeployment
from serve_app.settings import Secrets, SpineArgs
from serve_app.tenants.service import TenantLedger

logger = logging.getLogger("serve_app.app")


def model_deployment_options(spec: ModelSpec, args: ModelArgs) -> dict[str, Any]:
    """One job per replica, autoscaled on the jobs waiting at its handle, pinned by `args.placement`."""
    p = args.placement
    actor: dict[str, Any] = {"num_cpus": p.num_cpus, "num_gpus": p.num_gpus}
    if p.accelerator_type:
        actor["accelerator_type"] = p.accelerator_type
    if p.resources:
        actor["resources"] = dict(p.resources)
    autoscaling = {
        "min_replicas": p.min_replicas,
        "max_replicas": p.max_replicas,
        "target_ongoing_requests": 1,  # desired replicas = running + waiting jobs
        "upscale_delay_s": p.upscale_delay_s,
        "downscale_delay_s": p.downscale_delay_s,
        "look_back_period_s": p.look_back_period_s,
    }
    if p.initial_replicas is not None:
        autoscaling["initial_replicas"] = p.initial_replicas
    return {
        "name": spec.deployment,
        "max_ongoing_requests": 1,  # a pipeline keeps per-call state, and one job fills a GPU
        "ray_actor_options": actor,
        "autoscaling_config": autoscaling,
        "graceful_shutdown_timeout_s": p.graceful_shutdown_timeout_s,  # a downscale never kills a running job
        "health_check_timeout_s": 120,  # a replica busy in a long CUDA call still answers late
    }


def build_app(args: AppArgs) -> Application:
    """Bind the deployment graph for every enabled model of the catalogue."""
    return build_app_from(CATALOGUE, args)


def build_app_from(catalogue: Catalogue, args: SpineArgs) -> Application:
    """Bind the graph for `catalogue`; `args` is an instance of `catalogue.args_model`."""
    secrets = Secrets.from_env()
    # Replicas do not share the builder's working directory: pin a relative local store to where it was meant.
    local_dir = str(Path(args.storage.local_dir).expanduser().resolve())
    spine = args.spine().model_copy(update={"storage": args.storage.model_copy(update={"local_dir": local_dir})})
    enabled = {name: model_args for name, model_args in args.models().items() if model_args.enabled}
    if not enabled:
        raise ValueError("no model is enabled: set `enabled: true` in at least one model's args section")
    limiter = bind_limiter(spine, secrets)
    queues: dict[str, Application] = {}
    for name, model_args in enabled.items():  # catalogue order: a chain comes after the models of its stages
        spec = catalogue[name]
        if spec.stages:
            queues[name] = bind_chain(spec, model_args, spine, secrets, queues, limiter)
        else:
            queues[name] = bind_model(spec, model_args, spine, secrets, limiter)
    gateway = serve.deployment(serve.ingress()(GatewayIngress)).options(
        name="Gateway",
        num_replicas=spine.gateway.num_replicas,
        max_ongoing_requests=spine.gateway.max_ongoing_requests,  # open event streams count here
        ray_actor_options={"num_cpus": spine.gateway.num_cpus},
        # A replaced or downscaled replica gets no new requests and drains the ones in flight (checked each second).
        graceful_shutdown_wait_loop_s=1,
        graceful_shutdown_timeout_s=spine.gateway.graceful_shutdown_timeout_s,
    )
    # The API's request body (and so /openapi.json and the playground) offers the enabled models only.
    request_type = catalogue.only(enabled).request_type
    return gateway.bind(spine, secrets, catalogue.specs, request_type, enabled, queues, limiter)


def bind_limiter(spine: SpineArgs, secrets: Secrets) -> Application:
    """The tenant limits that span models (submissions per minute, daily budget): one replica, so every gateway
    replica counts against the same numbers; it rebuilds the day's spending from the usage ledger on restart."""
    limiter = serve.deployment(TenantLedger).options(
        name="TenantLedger",
        num_replicas=1,
        max_ongoing_requests=10_000,  # cheap async calls: one per submission and one per ended job
        ray_actor_options={"num_cpus": spine.queue_num_cpus},
        graceful_shutdown_timeout_s=10,
    )
    return limiter.bind(spine, secrets)


def bind_model(
    spec: ModelSpec, model_args: ModelArgs, spine: SpineArgs, secrets: Secrets, limiter: Application | None = None
) -> Application:
    """One model's GPU deployment and the JobQueue in front of it; returns the bound queue."""
    options = model_deployment_options(spec, model_args)
    logger.info("%s deployment options: %s", spec.deployment, options)
    runner = serve.deployment(ModelDeployment).options(**options)
    bound = runner.bind(spec.name, model_args.runner or spec.runner, model_args, spine.storage, secrets, spec.queue)
    return bind_queue(spec, bound, model_args, spine, secrets, limiter=limiter)


def bind_chain(
    spec: ModelSpec,
    model_args: ModelArgs,
    spine: SpineArgs,
    secrets: Secrets,
    queues: dict[str, Application],
    limiter: Application | None = None,
) -> Application:
    """A chained model: its CPU coordinator, handed the queues of its stages' models, and its own JobQueue."""
    missing = sorted({stage.model for stage in spec.stages} - queues.keys())
    if missing:
        raise ValueError(f"{spec.name} runs stages on {missing}: enable them (and list them before it)")
    options = model_deployment_options(spec, model_args)
    options["max_ongoing_requests"] = MAX_ONGOING_CHAINS  # a chained job only waits on its stages' queues
    options["autoscaling_config"]["target_ongoing_requests"] = MAX_ONGOING_CHAINS // 2
    logger.info("%s deployment options: %s", spec.deployment, options)
    coordinator = serve.deployment(ChainCoordinator).options(**options)
    stage_queues = {stage.model: queues[stage.model] for stage in spec.stages}
    bound = coordinator.bind(spec.name, stage_queues, spine.storage, secrets, spec.queue)
    window = MAX_ONGOING_CHAINS * model_args.placement.max_replicas
    return bind_queue(spec, bound, model_args, spine, secrets, window, limiter, chain=True)


def bind_queue(
    spec: ModelSpec,
    deployment: Application,
    model_args: ModelArgs,
    spine: SpineArgs,
    secrets: Secrets,
    window: int | None = None,
    limiter: Application | None = None,
    chain: bool = False,
) -> Application:
    """The JobQueue of one model, in front of the deployment that runs its jobs (`chain`: a chained model's, in
    front of its coordinator: its GPU time is counted by its stages' queues)."""
    queue = serve.deployment(JobQueue).options(
        name=spec.queue,
        num_replicas=1,  # the single writer of its model's job records
        max_ongoing_requests=10_000,  # cheap async calls: submits, polls, progress reports
        ray_actor_options={"num_cpus": spine.queue_num_cpus},
        graceful_shutdown_timeout_s=10,
    )
    return queue.bind(spec.name, deployment, spine, model_args, secrets, window, limiter, chain)

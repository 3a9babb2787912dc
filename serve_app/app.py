"""The app builder: `import_path: serve_app.app:build_app` in serve_config.yaml, `args:` validated into AppArgs.

Graph: Gateway -> one JobQueue per enabled model -> that model's deployment (the GPU replicas).
"""

# No `from __future__ import annotations` here: Serve validates `args:` into AppArgs only when the builder's
# annotation is the class itself, not a string.
import logging
from pathlib import Path
from typing import Any

from ray import serve
from ray.serve import Application

from deployments.base import ModelArgs
from deployments.serving import ModelDeployment
from serve_app.gateway import Gateway, app
from serve_app.queue import JobQueue
from serve_app.settings import AppArgs, Secrets

logger = logging.getLogger("serve_app.app")

# API model name -> (model deployment, queue deployment), as `serve status` and the dashboard show them.
DEPLOYMENT_NAMES: dict[str, tuple[str, str]] = {
    "ltx2": ("LTX2Generator", "LTX2Queue"),
    "wav2lip": ("Wav2LipSyncer", "Wav2LipQueue"),
}


def model_deployment_options(model: str, args: ModelArgs) -> dict[str, Any]:
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
        "name": DEPLOYMENT_NAMES[model][0],
        "max_ongoing_requests": 1,  # a pipeline keeps per-call state, and one job fills a GPU
        "ray_actor_options": actor,
        "autoscaling_config": autoscaling,
        "graceful_shutdown_timeout_s": p.graceful_shutdown_timeout_s,  # a downscale never kills a running job
        "health_check_timeout_s": 120,  # a replica busy in a long CUDA call still answers late
    }


def build_app(args: AppArgs) -> Application:
    """Bind the deployment graph for every enabled model."""
    secrets = Secrets.from_env()
    # Replicas do not share the builder's working directory: pin a relative local store to where it was meant.
    local_dir = str(Path(args.storage.local_dir).expanduser().resolve())
    args = args.model_copy(update={"storage": args.storage.model_copy(update={"local_dir": local_dir})})
    queues = {}
    for model, model_args in args.models().items():
        model_name, queue_name = DEPLOYMENT_NAMES[model]
        options = model_deployment_options(model, model_args)
        logger.info("%s deployment options: %s", model_name, options)
        runner = serve.deployment(ModelDeployment).options(**options)
        bound = runner.bind(model, model_args, args.storage, secrets, queue_name)
        queue = serve.deployment(JobQueue).options(
            name=queue_name,
            num_replicas=1,  # the single writer of its model's job records
            max_ongoing_requests=10_000,  # cheap async calls: submits, polls, progress reports
            ray_actor_options={"num_cpus": args.queue_num_cpus},
            graceful_shutdown_timeout_s=10,
        )
        queues[model] = queue.bind(model, bound, args, secrets)
    gateway = serve.deployment(serve.ingress(app)(Gateway)).options(
        name="Gateway",
        num_replicas=args.gateway.num_replicas,
        max_ongoing_requests=200,
        ray_actor_options={"num_cpus": args.gateway.num_cpus},
    )
    return gateway.bind(args, secrets, queues)

"""The deployable configs validate with the validators Ray and KubeRay's operator would run on them.

No Ray cluster: these check the files as `serve deploy`, `ray up` and the RayService would read them.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from ray.serve.schema import ServeDeploySchema

from serve_app.app import model_deployment_options
from serve_app.catalogue import CATALOGUE, AppArgs
from tests.cluster.fake_cluster import CONFIG as FAKE_CLUSTER_CONFIG
from tests.cluster.fake_cluster import REPO

SERVE_CONFIGS = ["serve_config.yaml", "serve_config.local.yaml"]


def load(path: str | Path) -> Any:
    return yaml.safe_load((REPO / path).read_text())


def prepared_cluster_config(config: dict[str, Any]) -> dict[str, Any]:
    """What `ray up` does before it talks to the cloud: merge the provider's defaults, then validate."""
    from ray.autoscaler._private.util import prepare_config, validate_config

    prepared = prepare_config(copy.deepcopy(config))
    validate_config(prepared)
    return prepared


@pytest.mark.parametrize("path", SERVE_CONFIGS)
def test_serve_config_validates_as_ray_schema_and_app_args(path):
    schema = ServeDeploySchema.model_validate(load(path))
    (app,) = schema.applications
    assert app.import_path == "serve_app.app:build_app"
    args = AppArgs.model_validate(app.args)  # what Serve does with the builder's annotated parameter
    assert set(args.models()) == {"ltx2", "wav2lip", "talking_video"}


@pytest.mark.parametrize("path", SERVE_CONFIGS)
def test_the_builder_takes_args_as_serve_deploy_passes_them(path):
    import inspect

    from ray.serve import Application

    from serve_app.app import build_app

    # `serve deploy` validates the plain `args:` dict into the builder's parameter type only when that
    # annotation is a class (a string annotation would hand the builder the raw dict).
    assert inspect.signature(build_app).parameters["args"].annotation is AppArgs
    raw = load(path)["applications"][0]["args"]
    assert isinstance(build_app(AppArgs.model_validate(raw)), Application)


def test_a_typo_in_args_is_refused_and_named():
    config = load("serve_config.yaml")
    config["applications"][0]["args"]["ltx2"]["placement"]["max_replica"] = 3
    with pytest.raises(ValueError, match="max_replica"):
        AppArgs.model_validate(config["applications"][0]["args"])


def test_production_pins_each_model_to_its_gpu_node_type_and_scales_to_zero():
    config = ServeDeploySchema.model_validate(load("serve_config.yaml"))
    assert config.proxy_location.value == "EveryNode"
    assert (config.http_options.host, config.http_options.port) == ("0.0.0.0", 8000)
    assert config.logging_config.encoding == "JSON"
    args = AppArgs.model_validate(config.applications[0].args)
    assert args.storage.backend == "s3"

    ltx2 = model_deployment_options(CATALOGUE["ltx2"], args.ltx2)
    assert ltx2["ray_actor_options"]["num_gpus"] == 1
    assert ltx2["ray_actor_options"]["accelerator_type"] == "A100"
    wav2lip = model_deployment_options(CATALOGUE["wav2lip"], args.wav2lip)
    assert wav2lip["ray_actor_options"]["num_gpus"] == 1
    assert wav2lip["ray_actor_options"]["resources"] == {"rtx4090": 1}
    for options in (ltx2, wav2lip):
        scaling = options["autoscaling_config"]
        assert scaling["min_replicas"] == 0 and scaling["downscale_delay_s"] == 300
        assert scaling["upscale_delay_s"] < scaling["downscale_delay_s"]
    # A downscale waits for the running job: longer than the longest job of each model.
    assert ltx2["graceful_shutdown_timeout_s"] >= 1800 and wav2lip["graceful_shutdown_timeout_s"] >= 600


def test_cluster_yaml_passes_the_autoscaler_validator_and_offers_every_pinned_resource():
    cluster = prepared_cluster_config(load("cluster.yaml"))
    types = cluster["available_node_types"]
    args = AppArgs.model_validate(load("serve_config.yaml")["applications"][0]["args"])
    for model, node_type in (("ltx2", "a100_node"), ("wav2lip", "rtx4090_node")):
        placement = getattr(args, model).placement
        node = types[node_type]
        assert node["min_workers"] == 0, node_type  # scale to zero: no idle GPU node
        wanted = {"GPU": placement.num_gpus, **placement.resources}
        if placement.accelerator_type:
            wanted[f"accelerator_type:{placement.accelerator_type}"] = 0.001  # what Ray adds for accelerator_type
        for resource, amount in wanted.items():
            assert node["resources"].get(resource, 0) >= amount, (node_type, resource)
        # The node type can hold max_replicas replicas, or the autoscaler would leave some pending forever.
        per_node = int(node["resources"]["GPU"] // placement.num_gpus)
        assert per_node * node["max_workers"] >= placement.max_replicas, node_type
        assert node["resources"]["CPU"] >= placement.num_cpus
    head = types[cluster["head_node_type"]]
    assert head["resources"].get("GPU", 0) == 0  # models never land on the head


def test_the_fake_cluster_passes_the_same_validator():
    from ray.autoscaler._private.util import validate_config

    cluster = load(FAKE_CLUSTER_CONFIG)  # complete as written: the wheel has no fake-provider defaults to merge
    validate_config(cluster)
    assert set(cluster["available_node_types"]) == {"ray.head.default", "a100_node", "rtx4090_node"}


def test_rayservice_serves_exactly_serve_config_yaml():
    docs = list(yaml.safe_load_all((REPO / "deploy/kuberay/rayservice.yaml").read_text()))
    (service,) = [d for d in docs if d["kind"] == "RayService"]
    assert service["apiVersion"] == "ray.io/v1"
    serve_config = yaml.safe_load(service["spec"]["serveConfigV2"])
    assert serve_config == load("serve_config.yaml")  # one source of truth; regenerate with docs/cluster.md

    cluster = service["spec"]["rayClusterConfig"]
    assert cluster["enableInTreeAutoscaling"] is True
    assert cluster["autoscalerOptions"]["version"] == "v2"
    groups = {g["groupName"]: g for g in cluster["workerGroupSpecs"]}
    assert groups["a100"]["resources"]["accelerator_type:A100"] == "1"
    assert groups["rtx4090"]["resources"]["rtx4090"] == "1"
    for group in groups.values():
        assert group["minReplicas"] == 0
        (container,) = group["template"]["spec"]["containers"]
        assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
        secret_refs = [e["secretRef"]["name"] for e in container.get("envFrom", [])]
        assert secret_refs == ["video-serve-secrets"]

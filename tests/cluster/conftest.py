"""Fixtures of the cluster session: one fake multi-node Ray cluster per module, the real app on it, and a
sampler that records which node type every model replica ever ran on.

This directory is its own pytest session (`pytest tests/cluster`, see the Makefile): the fake cluster is
started with `ray start`, not `ray.init`, and must never overlap the cluster of tests/conftest.py.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.cluster.fake_cluster import REPO, FakeCluster, start_fake_cluster
from tests.conftest import API_KEY, AUTH, WEBHOOK_SECRET, app_args, free_port, wait_terminal, wait_until
from tests.media_files import face_png_bytes, wav_bytes

# Test-speed autoscaling: the model and node timings are seconds, not minutes. Everything that pins a
# model to its node type comes from serve_config.yaml itself (see `pinned_placement`).
MAX_REPLICAS = 2
FAST_AUTOSCALING = {
    "num_cpus": 1,
    "min_replicas": 0,
    "max_replicas": MAX_REPLICAS,
    "upscale_delay_s": 0.5,
    "downscale_delay_s": 4,
    "look_back_period_s": 2,
    "graceful_shutdown_timeout_s": 10,
}
# Serve pushes queue-depth metrics every 10 s by default; the tests' delays are shorter than that.
FAST_METRICS_ENV = {
    "RAY_SERVE_HANDLE_AUTOSCALING_METRIC_PUSH_INTERVAL_S": "0.5",
    "RAY_SERVE_REPLICA_AUTOSCALING_METRIC_PUSH_INTERVAL_S": "0.5",
}
MODELS = ("ltx2", "wav2lip")
REPLICA_CLASS = {"ltx2": "ServeReplica:video:LTX2Generator", "wav2lip": "ServeReplica:video:Wav2LipSyncer"}
NODE_TYPE_OF_MODEL = {"ltx2": "a100_node", "wav2lip": "rtx4090_node"}
MAX_QUEUED_JOBS = 5
RETRY_AFTER_S = 11


def production_config() -> dict[str, Any]:
    return yaml.safe_load((REPO / "serve_config.yaml").read_text())


def pinned_placement(model: str) -> dict[str, Any]:
    """The production placement's pinning (GPUs, accelerator type, custom resources) with test timings."""
    production = production_config()["applications"][0]["args"][model]["placement"]
    pins = {k: production[k] for k in ("num_gpus", "accelerator_type", "resources") if k in production}
    return {**FAST_AUTOSCALING, **pins}


def node_type_of(resources: dict[str, float]) -> str:
    """Which fake_cluster.yaml node type a node is, from the resources it advertises."""
    if resources.get("accelerator_type:A100"):
        return "a100_node"
    if resources.get("rtx4090"):
        return "rtx4090_node"
    return "head"


def alive_node_types() -> dict[str, str]:
    """Node id -> node type, for every live node."""
    import ray

    return {n["NodeID"]: node_type_of(n["Resources"]) for n in ray.nodes() if n["Alive"]}


def replica_node_types(model: str) -> list[str]:
    """The node type under each live replica of `model` (one entry per replica)."""
    from ray.util.state import list_actors

    types = alive_node_types()
    actors = list_actors(filters=[("state", "=", "ALIVE")], limit=10_000, raise_on_missing_output=False)
    return [types.get(a.node_id, "unknown") for a in actors if a.class_name == REPLICA_CLASS[model]]


def running_replicas(model: str) -> int:
    """RUNNING replicas of `model` as Serve reports them."""
    from ray import serve

    name = {"ltx2": "LTX2Generator", "wav2lip": "Wav2LipSyncer"}[model]
    status = serve.status().applications["video"].deployments[name]
    return int(status.replica_states.get("RUNNING", 0))


@dataclass
class PlacementLog:
    """Everything the sampler saw: per model, the node types replicas ran on and the most alive at once."""

    seen: dict[str, set[str]] = field(default_factory=lambda: {m: set() for m in MODELS})
    peak: dict[str, int] = field(default_factory=lambda: dict.fromkeys(MODELS, 0))
    samples: int = 0
    errors: list[str] = field(default_factory=list)

    def sample(self) -> None:
        for model in MODELS:
            types = replica_node_types(model)
            self.seen[model].update(types)
            self.peak[model] = max(self.peak[model], len(types))
        self.samples += 1


@dataclass
class VideoApp:
    """The app deployed on the fake cluster, and a client for its API."""

    cluster: FakeCluster
    client: httpx.Client
    placements: PlacementLog
    data: Path

    def wait_done(self, job_id: str, timeout_s: float = 120) -> dict[str, Any]:
        """The job's terminal view; a timeout says what storage, Serve and the nodes looked like."""
        try:
            return wait_terminal(self.client, job_id, timeout_s=timeout_s)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.explain(job_id)}") from None

    def explain(self, job_id: str) -> str:
        """The job's files in storage, each deployment's replica states, and the live nodes and replicas."""
        from ray import serve

        folder = self.data / "jobs" / job_id
        files = {p.name: p.stat().st_size for p in folder.iterdir()} if folder.exists() else {}
        result = (folder / "result.json").read_text() if (folder / "result.json").exists() else None
        deployments = {
            name: (str(d.status), dict(d.replica_states))
            for name, d in serve.status().applications["video"].deployments.items()
        }
        replicas = {m: replica_node_types(m) for m in MODELS}
        logs = [
            f"{path.name}: {line}"
            for path in sorted(serve_logs().glob("*.log"))
            for line in path.read_text(errors="replace").splitlines()
            if job_id in line or "Traceback" in line or "ERROR" in line
        ]
        return (
            f"files of {job_id}: {files}; result.json: {result}\ndeployments: {deployments}\n"
            f"nodes: {sorted(alive_node_types().values())}; replicas by node type: {replicas}\n"
            "serve log lines naming the job, or errors:\n" + "\n".join(logs[-40:])
        )

    def submit_ltx2(self, prompt: str = "a red ball") -> httpx.Response:
        return self.client.post("/api/v1/generate", json={"model": "ltx2", "prompt": prompt, "duration": 1})

    def submit_wav2lip(self) -> httpx.Response:
        """A lip-sync job from uploaded inputs: a still face image and one second of audio."""
        keys = {}
        for kind, content_type, body in (("image", "image/png", face_png_bytes()), ("audio", "audio/wav", wav_bytes())):
            slot = self.client.post(
                "/api/v1/presign/upload", json={"input_type": kind, "content_type": content_type, "size": len(body)}
            )
            assert slot.status_code == 200, slot.text
            put = httpx.put(slot.json()["upload_url"], content=body, headers={"content-type": content_type})
            assert put.status_code == 200, put.text
            keys[f"{kind}_key"] = slot.json()["key"]
        return self.client.post("/api/v1/generate", json={"model": "wav2lip", **keys})


def serve_logs() -> Path:
    """The Serve log folder of the session this driver joined (fake nodes share the head's session)."""
    import ray

    # No public API names the session folder; /tmp/ray/session_latest may be another cluster's.
    return Path(ray._private.worker._global_node.get_session_dir_path()) / "logs" / "serve"


@pytest.fixture(scope="module")
def fake_cluster() -> Iterator[FakeCluster]:
    """A fake multi-node cluster, this process connected to it; torn down completely at module end."""
    import ray

    cluster = start_fake_cluster(extra_env=FAST_METRICS_ENV)
    try:
        with pytest.MonkeyPatch.context() as env:
            for name, value in cluster.driver_env().items():
                env.setenv(name, value)
            env.setenv("API_KEYS", API_KEY)  # read by the app builder (Secrets.from_env) in this process
            env.setenv("WEBHOOK_SECRET", WEBHOOK_SECRET)
            ray.init(address=cluster.address, log_to_driver=False)
            try:
                yield cluster
            finally:
                ray.shutdown()
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def video_app(fake_cluster: FakeCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[VideoApp]:
    """The real app (fake runners, production pinning, test timings) behind Serve's proxy on the head."""
    from ray import serve

    from serve_app.app import build_app
    from serve_app.catalogue import AppArgs

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    # One proxy, on the head: fake nodes share this machine's address, so per-node proxies would collide.
    serve.start(proxy_location="HeadOnly", http_options={"host": "127.0.0.1", "port": port})
    data = tmp_path_factory.mktemp("cluster") / "data"  # every fake node sees this disk
    storage = {"backend": "local", "local_dir": str(data), "public_base_url": url}
    args = app_args(
        storage,
        runner="tests.fakes:HoldingRunner",
        queue={"max_queued_jobs": MAX_QUEUED_JOBS, "retry_after_s": RETRY_AFTER_S},
    )
    for model in MODELS:
        args[model]["placement"] = pinned_placement(model)
    serve.run(build_app(AppArgs.model_validate(args)), name="video", route_prefix="/")

    log, stop = PlacementLog(), threading.Event()

    def sample_forever() -> None:
        while not stop.wait(0.5):
            try:
                log.sample()
            except Exception as exc:  # a state-API hiccup must not kill the sampler; the tests check it ran
                log.errors.append(repr(exc))

    sampler = threading.Thread(target=sample_forever, daemon=True)
    sampler.start()
    client = httpx.Client(base_url=url, headers=AUTH, timeout=30)
    try:
        yield VideoApp(fake_cluster, client, log, data)
    finally:
        stop.set()
        sampler.join(timeout=30)
        client.close()
        serve.shutdown()


def wait_for_zero_replicas(timeout_s: float = 90) -> None:
    """Both models back at zero replicas (the state every test starts from)."""
    wait_until(
        lambda: [running_replicas(m) + len(replica_node_types(m)) for m in MODELS], lambda v: v == [0, 0], timeout_s
    )

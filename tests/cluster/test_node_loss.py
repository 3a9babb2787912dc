"""Node loss on the fake multi-node cluster: the GPU node running a job dies (its raylet and every process under
it SIGKILLed, as a host that loses power would leave it); the job runs again on another node of the same type
and ends exactly once.

Ray notices the dead raylet by its missed health checks, Serve replaces the replica, and the autoscaler replaces
the node once it has missed its heartbeats (AUTOSCALER_HEARTBEAT_TIMEOUT_S, 30 s by default): minutes on this
machine, hence the long deadlines.
"""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

import pytest

from tests.cluster.conftest import REPLICA_CLASS, VideoApp, node_type_of, wait_for_zero_replicas
from tests.cluster.fake_cluster import MARKER
from tests.conftest import WebhookReceiver, get_job, wait_until

pytestmark = pytest.mark.cluster

# The fake provider starts each node's raylet with this variable; the raylet's workers inherit it.
NODE_ID_VARIABLE = "RAY_OVERRIDE_NODE_ID_FOR_TESTING"


def node_pids(marker: str, node_id: str) -> list[int]:
    """The processes of one fake node of one cluster: its raylet and everything the raylet started."""
    needles = {f"{MARKER}={marker}".encode(), f"{NODE_ID_VARIABLE}={node_id}".encode()}
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if needles <= set((entry / "environ").read_bytes().split(b"\0")):
                    pids.append(int(entry.name))
            except OSError:  # gone meanwhile, or not ours to read
                continue
    return pids


def kill_node(marker: str, node_id: str) -> list[int]:
    """SIGKILL every process of the node, with no chance to clean up; returns the pids once they are gone."""
    pids = node_pids(marker, node_id)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    wait_until(lambda: node_pids(marker, node_id), lambda left: not left, timeout_s=30)
    return pids


def node_types_by_id() -> dict[str, str]:
    """Node id -> node type, for every node the cluster has had, dead ones included."""
    import ray

    return {n["NodeID"]: node_type_of(n["Resources"]) for n in ray.nodes()}


def ltx2_replica_nodes() -> list[str]:
    """The node id under each live ltx2 replica."""
    from ray.util.state import list_actors

    actors = list_actors(filters=[("state", "=", "ALIVE")], limit=10_000, raise_on_missing_output=False)
    return [a.node_id for a in actors if a.class_name == REPLICA_CLASS["ltx2"]]


def test_a_job_whose_gpu_node_dies_completes_once_on_another_node_of_its_type(video_app: VideoApp):
    import ray

    wait_for_zero_replicas()
    release = video_app.data / "release-node-loss"
    receiver = WebhookReceiver()
    try:
        body = {"model": "ltx2", "prompt": f"hold:{release}", "duration": 1, "webhook_url": receiver.url}
        created = video_app.client.post("/api/v1/generate", json=body)
        assert created.status_code == 201, created.text
        job_id = created.json()["job_id"]
        wait_until(lambda: get_job(video_app.client, job_id), lambda j: j["status"] == "processing", timeout_s=180)
        (lost,) = ltx2_replica_nodes()
        assert node_type_of(next(n["Resources"] for n in ray.nodes() if n["NodeID"] == lost)) == "a100_node"

        killed = kill_node(video_app.cluster.env[MARKER], lost)
        assert killed, f"no process of node {lost} found"
        release.touch()  # the run that died never finishes; the next one may

        job = video_app.wait_done(job_id, timeout_s=360)
        assert job["status"] == "completed", job
        assert job["attempts"] >= 2, job  # the lost run counted; the retry is the one that finished
        ran_on = job["details"]["node_id"]
        assert ran_on != lost and node_types_by_id()[ran_on] == "a100_node", (ran_on, lost, node_types_by_id())
        # Exactly once: one result (the last attempt's), one output, one terminal webhook.
        result = (video_app.data / "jobs" / job_id / "result.json").read_text()
        assert f'"attempt":{job["attempts"]}' in result.replace(" ", ""), result
        assert (video_app.data / "jobs" / job_id / "output.mp4").stat().st_size > 0
        wait_until(lambda: list((video_app.data / "index" / "ltx2" / "webhooks").glob("*")), lambda w: not w)
        assert [d["body"]["status"] for d in receiver.deliveries] == ["completed"], receiver.deliveries
        assert all(d["valid"] for d in receiver.deliveries)
    finally:
        receiver.close()

"""Invariant 3: killing any one replica loses no accepted job. Replicas are killed for real with `ray.kill`."""

from __future__ import annotations

import ray

from tests.conftest import app_args, get_job, wait_terminal, wait_until


def kill_replica(app: str, deployment: str) -> None:
    """Kill one running replica actor of `deployment`; Serve's controller starts a new one."""
    names = [a["name"] for a in ray.util.list_named_actors(all_namespaces=True)]
    replicas = [n for n in names if n.startswith(f"SERVE_REPLICA::{app}#{deployment}#")]
    assert replicas, f"no replica of {deployment} among {names}"
    ray.kill(ray.get_actor(replicas[0], namespace="serve"), no_restart=True)


def test_a_model_replica_killed_mid_job_is_retried_and_the_job_completes(deploy, local_storage):
    client = deploy(app_args(local_storage, runner="tests.fakes:SlowRunner", placement={"max_replicas": 1}))
    job_id = client.post("/api/v1/generate", json={"model": "ltx2", "prompt": "survive"}).json()["job_id"]
    wait_until(lambda: get_job(client, job_id), lambda j: j["progress"] > 10)

    kill_replica("video", "LTX2Generator")

    job = wait_terminal(client, job_id, timeout_s=90)
    assert job["status"] == "completed" and job["attempts"] == 2, job
    assert job["details"]["attempt"] == 2  # the result is the retry's, under the job's own key


def test_a_stalled_model_replica_is_noticed_by_its_silence_and_the_job_runs_again(deploy, local_storage):
    # Two replicas: the retry needs one that answers. Serve itself would only replace the stalled replica once
    # its health check timed out (120 s), long after heartbeat_timeout_s (5 s here).
    placement = {"min_replicas": 2, "max_replicas": 2}
    client = deploy(app_args(local_storage, runner="tests.fakes:StallingRunner", placement=placement))
    job_id = client.post("/api/v1/generate", json={"model": "ltx2", "prompt": "stall"}).json()["job_id"]

    job = wait_terminal(client, job_id, timeout_s=120)
    assert job["status"] == "completed" and job["attempts"] == 2, job
    assert job["details"]["attempt"] == 2


def test_the_queue_replica_killed_with_a_backlog_of_ten_loses_none(deploy, local_storage):
    client = deploy(app_args(local_storage, runner="tests.fakes:MediumRunner"))
    job_ids = [
        client.post("/api/v1/generate", json={"model": "ltx2", "prompt": f"job {i}"}).json()["job_id"]
        for i in range(10)
    ]
    wait_until(lambda: get_job(client, job_ids[0]), lambda j: j["status"] == "processing")

    kill_replica("video", "LTX2Queue")

    jobs = [wait_terminal(client, job_id, timeout_s=120) for job_id in job_ids]
    assert [j["status"] for j in jobs] == ["completed"] * 10, [(j["job_id"], j["status"]) for j in jobs]
    assert all(1 <= j["attempts"] <= 2 for j in jobs), [j["attempts"] for j in jobs]


def test_a_gateway_replica_killed_after_accepting_jobs_loses_none(deploy, local_storage):
    client = deploy(app_args(local_storage, runner="tests.fakes:MediumRunner"))
    job_ids = [
        client.post("/api/v1/generate", json={"model": "ltx2", "prompt": f"job {i}"}).json()["job_id"] for i in range(3)
    ]

    kill_replica("video", "Gateway")  # stateless: the proxy routes to its replacement

    jobs = [wait_terminal(client, job_id, timeout_s=90) for job_id in job_ids]
    assert [j["status"] for j in jobs] == ["completed"] * 3
    after = client.post("/api/v1/generate", json={"model": "ltx2", "prompt": "after the restart"})
    assert after.status_code == 201, after.text

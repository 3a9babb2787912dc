"""Queue-depth autoscaling on a fake multi-node cluster: the real app, fake runners, production pinning.

The tests run in file order on one cluster; each starts from zero replicas. Replicas of each model are
sampled every 0.5 s for the whole module (`PlacementLog`), and the last test checks every sample.
"""

from __future__ import annotations

import pytest

from tests.cluster.conftest import (
    MAX_QUEUED_JOBS,
    MAX_REPLICAS,
    NODE_TYPE_OF_MODEL,
    RETRY_AFTER_S,
    VideoApp,
    alive_node_types,
    replica_node_types,
    running_replicas,
    wait_for_zero_replicas,
)
from tests.conftest import TERMINAL, get_job, wait_until

pytestmark = pytest.mark.cluster


def gpu_nodes(node_type: str) -> int:
    return sum(1 for t in alive_node_types().values() if t == node_type)


def test_models_deploy_at_zero_replicas_on_a_cluster_with_no_gpu_nodes(video_app: VideoApp):
    wait_for_zero_replicas()
    assert set(alive_node_types().values()) == {"head"}  # min_workers 0: nothing to pay for while idle


def test_a_job_at_zero_replicas_cold_starts_a_replica_on_an_a100_node(video_app: VideoApp):
    wait_for_zero_replicas()
    created = video_app.submit_ltx2("cold start")
    assert created.status_code == 201, created.text
    job = video_app.wait_done(created.json()["job_id"])
    assert job["status"] == "completed", job
    assert replica_node_types("ltx2") == ["a100_node"]  # still up: the downscale delay has not passed
    assert gpu_nodes("a100_node") == 1 and gpu_nodes("rtx4090_node") == 0


def test_a_burst_scales_ltx2_to_max_replicas_on_a100_nodes_and_the_overflow_gets_429(video_app: VideoApp):
    wait_for_zero_replicas()
    jobs = []
    for i in range(MAX_QUEUED_JOBS):
        created = video_app.submit_ltx2(f"burst {i}")
        assert created.status_code == 201, created.text
        jobs.append(created.json()["job_id"])
    overflow = video_app.submit_ltx2("one too many")
    assert overflow.status_code == 429, overflow.text
    assert overflow.headers["retry-after"] == str(RETRY_AFTER_S)

    # 5 waiting jobs want 5 replicas; max_replicas caps it, and the autoscaler adds one A100 node per replica.
    wait_until(lambda: running_replicas("ltx2"), lambda n: n == MAX_REPLICAS, timeout_s=120)
    assert replica_node_types("ltx2") == ["a100_node"] * MAX_REPLICAS
    assert gpu_nodes("a100_node") == MAX_REPLICAS
    for job_id in jobs:
        assert video_app.wait_done(job_id)["status"] == "completed"
    assert video_app.submit_ltx2("room again").status_code == 201  # the limit counts unfinished jobs only


def test_a_wav2lip_job_completes_while_ltx2_has_a_backlog(video_app: VideoApp):
    wait_until(lambda: running_replicas("wav2lip"), lambda n: n == 0, timeout_s=90)
    # The backlog holds until this test releases it: the lip-sync job must finish while every ltx2 job is
    # still unfinished, however long the wav2lip cold start takes on this machine.
    release = video_app.data / "release-backlog"
    backlog = [video_app.submit_ltx2(f"hold:{release}").json()["job_id"] for _ in range(MAX_QUEUED_JOBS - 1)]
    wait_until(lambda: get_job(video_app.client, backlog[0]), lambda j: j["status"] == "processing", timeout_s=120)

    created = video_app.submit_wav2lip()
    assert created.status_code == 201, created.text
    lip_sync = video_app.wait_done(created.json()["job_id"], timeout_s=180)
    assert lip_sync["status"] == "completed", lip_sync
    unfinished = [j for j in backlog if get_job(video_app.client, j)["status"] not in TERMINAL]
    assert unfinished == backlog, "an ltx2 job ended before it was released"
    assert replica_node_types("wav2lip") == ["rtx4090_node"]
    release.touch()
    for job_id in backlog:
        assert video_app.wait_done(job_id)["status"] == "completed"


def test_idle_models_scale_to_zero_and_their_gpu_nodes_go_away(video_app: VideoApp):
    wait_for_zero_replicas(timeout_s=120)  # downscale_delay_s after the last job
    # The autoscaler then removes each drained node after idle_timeout_minutes.
    wait_until(lambda: set(alive_node_types().values()), lambda types: types == {"head"}, timeout_s=120)


def test_every_replica_ever_seen_ran_on_its_models_node_type(video_app: VideoApp):
    log = video_app.placements
    assert log.samples > 20, log  # the sampler ran through the module
    for model, node_type in NODE_TYPE_OF_MODEL.items():
        assert log.seen[model] == {node_type}, (model, log.seen)
    assert log.peak == {"ltx2": MAX_REPLICAS, "wav2lip": 1}, log.peak  # never above max_replicas

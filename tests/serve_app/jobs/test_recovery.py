"""A queue that restarts recovers its backlog from storage; entries it cannot recover are moved aside, never
allowed to keep it from starting, and a run lost in a restart still counts against `queue.max_attempts`.
The storage is prepared as a crash would leave it, then the real app is deployed on it."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

from serve_app.jobs.store import JobStore
from serve_app.schemas import JobRecord, utcnow
from serve_app.settings import key_id_of
from serve_app.storage.backends import LocalStorage
from tests.conftest import API_KEY, app_args, wait_terminal, wait_until


def job_id(model: str = "ltx2") -> str:
    return f"{model}-{uuid.uuid4().hex}"


def record(model: str = "ltx2", **fields: Any) -> JobRecord:
    """A job of the tests' own key, as the queue would have stored it."""
    new = job_id(model)
    params = {"prompt": "recovered", "num_frames": 9}
    output = f"jobs/{new}/output.mp4"
    return JobRecord(job_id=new, model=model, params=params, output_key=output, owner=key_id_of(API_KEY), **fields)


def storage_of(local_storage: dict[str, Any]) -> LocalStorage:
    return LocalStorage(Path(local_storage["local_dir"]), local_storage["public_base_url"], b"k" * 32)


def test_index_entries_without_a_usable_record_are_quarantined_and_the_queue_starts(deploy, local_storage):
    storage = storage_of(local_storage)
    store = JobStore(storage, "ltx2")
    healthy = record()
    store.create(healthy)
    dangling = job_id()  # a queue killed between its write and its reply, cleaned up piecemeal
    storage.put_bytes(f"index/ltx2/active/{dangling}", b"")
    truncated = record()
    store.create(truncated)
    storage.put_bytes(f"jobs/{truncated.job_id}/job.json", truncated.model_dump_json().encode()[:40])
    foreign = record("wav2lip")  # another model's record under ltx2's index
    store.create(foreign)

    client = deploy(app_args(local_storage))

    assert wait_terminal(client, healthy.job_id)["status"] == "completed"
    health = wait_until(lambda: client.get("/health"), lambda r: r.status_code == 200)
    assert health.json()["models"]["ltx2"]["pending"] == 0, health.json()
    assert storage.list_keys("index/ltx2/active/") == []
    quarantined = storage.list_keys("index/ltx2/quarantine/")
    reasons = {key.rsplit("/", 1)[1]: storage.get_bytes(key).decode() for key in quarantined}
    assert set(reasons) == {dangling, truncated.job_id, foreign.job_id}, reasons
    assert reasons[dangling].startswith("active: no record")
    assert reasons[truncated.job_id].startswith("active: unreadable record")
    assert reasons[foreign.job_id].startswith("active: no record")
    assert storage.size(f"jobs/{truncated.job_id}/job.json") is not None  # kept for the operator


def test_a_run_lost_in_a_restart_on_its_last_attempt_fails_the_job_instead_of_running_again(deploy, local_storage):
    storage = storage_of(local_storage)
    lost = record(status="processing", attempts=3, started_at=utcnow() - timedelta(minutes=5))  # max_attempts 3
    JobStore(storage, "ltx2").create(lost)

    client = deploy(app_args(local_storage))

    job = wait_terminal(client, lost.job_id)  # after heartbeat_timeout_s (5 s) with no heartbeat
    assert job["status"] == "failed" and job["error_code"] == "retries_exhausted", job
    assert job["attempts"] == 3
    assert "no heartbeat" in job["error_message"]
    assert storage.size(f"jobs/{lost.job_id}/output.mp4") is None  # a fourth run never happened


def test_an_interrupted_job_with_attempts_left_runs_again(deploy, local_storage):
    storage = storage_of(local_storage)
    lost = record(status="processing", attempts=1, started_at=utcnow() - timedelta(minutes=5))
    JobStore(storage, "ltx2").create(lost)

    client = deploy(app_args(local_storage))

    job = wait_terminal(client, lost.job_id)
    assert job["status"] == "completed" and job["attempts"] == 2, job
    assert httpx.get(job["result_url"]).status_code == 200


def test_an_idempotency_key_whose_job_was_never_stored_creates_the_job_again(deploy, local_storage):
    client = deploy(app_args(local_storage))
    body, key = {"model": "ltx2", "prompt": "once"}, {"Idempotency-Key": "order-17"}
    first = client.post("/api/v1/generate", json=body, headers=key)
    assert first.status_code == 201, first.text
    assert wait_terminal(client, first.json()["job_id"])["status"] == "completed"
    # The view is served from memory as soon as the job ends; its record is written a moment later.
    store = JobStore(storage_of(local_storage), "ltx2")
    wait_until(lambda: store.load(first.json()["job_id"]).status, lambda status: status == "completed")
    # What a creation that failed part-way leaves: the key's marker, and no job behind it.
    storage_of(local_storage).delete_prefix(f"jobs/{first.json()['job_id']}")

    again = client.post("/api/v1/generate", json=body, headers=key)
    assert again.status_code == 201, again.text
    assert again.json()["job_id"] != first.json()["job_id"]
    replay = client.post("/api/v1/generate", json=body, headers=key)
    assert (replay.status_code, replay.json()["job_id"]) == (200, again.json()["job_id"])

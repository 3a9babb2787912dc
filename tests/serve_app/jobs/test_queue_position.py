"""`queue_position` follows the queue: the queue computes the places once per change instead of once per read
(a scan per read made polling cost grow with the square of the active jobs), so every change must show."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import app_args, get_job, wait_terminal, wait_until


def test_queue_positions_shift_when_a_job_ahead_starts_or_is_cancelled(deploy, local_storage, tmp_path: Path):
    client = deploy(
        app_args(
            local_storage,
            runner="tests.fakes:HoldingRunner",
            queue={"dispatch_window": 1},
            placement={"min_replicas": 1, "max_replicas": 1},
        )
    )
    release = tmp_path / "release"
    jobs = [
        client.post("/api/v1/generate", json={"model": "ltx2", "prompt": f"hold:{release}"}).json()["job_id"]
        for _ in range(4)
    ]
    wait_until(lambda: get_job(client, jobs[0]), lambda j: j["status"] == "processing")

    def positions() -> list[int | None]:
        return [get_job(client, job_id)["queue_position"] for job_id in jobs]

    assert positions() == [None, 0, 1, 2]
    assert positions() == [None, 0, 1, 2]  # the second read comes from the places computed by the first

    assert client.post(f"/api/v1/jobs/{jobs[1]}/cancel").json()["status"] == "cancelled"
    assert positions() == [None, None, 0, 1]
    late = client.post("/api/v1/generate", json={"model": "ltx2", "prompt": f"hold:{release}"}).json()["job_id"]
    assert get_job(client, late)["queue_position"] == 2  # submitted after the places were computed

    release.touch()  # the first job ends and the next one starts: every place moves up
    wait_until(lambda: get_job(client, jobs[2]), lambda j: j["status"] == "processing", timeout_s=60)
    assert [get_job(client, j)["queue_position"] for j in (jobs[3], late)] == [0, 1]
    for job_id in (*jobs[2:], late):
        assert wait_terminal(client, job_id, timeout_s=120)["status"] == "completed"

"""The storage layout of jobs: create, finish, find by idempotency key, and the retention sweep."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from serve_app.jobs.store import JobStore, listing_prefix
from serve_app.schemas import JobRecord
from serve_app.storage.backends import LocalStorage


def record(job_id: str, idempotency_hash: str | None = None) -> JobRecord:
    return JobRecord(
        job_id=job_id,
        model="ltx2",
        params={"prompt": "x"},
        output_key=f"jobs/{job_id}/output.mp4",
        idempotency_hash=idempotency_hash,
    )


def test_a_job_is_active_until_it_finishes(tmp_path: Path) -> None:
    store = JobStore(LocalStorage(tmp_path, "http://gw", b"k"), "ltx2")
    job = record("ltx2-a", idempotency_hash="h1")
    store.create(job, body_hash="b1")
    assert store.active_ids() == ["ltx2-a"] and store.load("ltx2-a") == job
    assert store.find_idempotent("h1") == ("ltx2-a", "b1")

    job.status, job.completed_at = "completed", datetime.now(UTC)
    store.finish(job, pending_webhook=True)
    assert store.active_ids() == [] and store.pending_webhook_ids() == ["ltx2-a"]
    store.webhook_done("ltx2-a")
    assert store.pending_webhook_ids() == []


def test_retention_deletes_old_jobs_with_their_keys_and_keeps_recent_ones(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path, "http://gw", b"k")
    store = JobStore(storage, "ltx2")
    for job_id, age_days, key_hash in (("ltx2-old", 10, "h-old"), ("ltx2-new", 1, "h-new")):
        job = record(job_id, idempotency_hash=key_hash)
        store.create(job, body_hash="b")
        storage.put_bytes(f"jobs/{job_id}/output.mp4", b"mp4")
        job.status, job.completed_at = "completed", datetime.now(UTC) - timedelta(days=age_days)
        store.finish(job, pending_webhook=False)

    assert store.sweep_finished(older_than_s=7 * 86400) == 1
    assert storage.list_keys("jobs/ltx2-old/") == [] and store.find_idempotent("h-old") is None
    assert storage.size("jobs/ltx2-new/output.mp4") == 3 and store.find_idempotent("h-new") == ("ltx2-new", "b")
    assert store.sweep_finished(older_than_s=7 * 86400) == 0


def test_the_list_index_is_per_owner_newest_first_and_pages_after_a_key(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path, "http://gw", b"k")
    store = JobStore(storage, "ltx2")
    start = datetime(2026, 12, 1, tzinfo=UTC)
    for i in range(5):
        job = record(f"ltx2-{i}")
        job.owner, job.created_at = ("a" if i % 2 == 0 else "b"), start + timedelta(seconds=i)
        store.create(job)
    owned = storage.list_page(listing_prefix("a"), "", 10)
    assert [k.rsplit("-", 1)[1] for k in owned] == ["4", "2", "0"]
    assert storage.list_page(listing_prefix("a"), owned[0], 1) == owned[1:2]
    assert len(storage.list_page(listing_prefix(None), "", 10)) == 5

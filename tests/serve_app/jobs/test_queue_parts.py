"""The queue's parts that touch storage, alone on a local directory (no Ray): the record book, recovery's backlog
and the event-stream wake-ups."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from serve_app.errors import IdempotencyConflict, JobNotFound
from serve_app.jobs.notify import Watchers
from serve_app.jobs.records import RecordBook
from serve_app.jobs.recovery import recover
from serve_app.jobs.store import JobStore
from serve_app.schemas import JobRecord, WebhookState, utcnow
from serve_app.storage.backends import LocalStorage


def record(model: str = "m", **fields: Any) -> JobRecord:
    job_id = f"{model}-{uuid.uuid4().hex}"
    return JobRecord(job_id=job_id, model=model, params={}, output_key=f"jobs/{job_id}/output.mp4", **fields)


@pytest.fixture
def store(tmp_path: Path) -> JobStore:
    return JobStore(LocalStorage(tmp_path, "http://127.0.0.1:1", b"k" * 32), "m")


def test_the_book_holds_a_created_job_until_its_end_is_written(store: JobStore):
    async def scenario() -> None:
        book = RecordBook(store, store, "m")
        job = record(owner="alice", idempotency_hash="h1")
        await book.create(job, "body-1")
        assert job.job_id in book and store.active_ids() == [job.job_id]
        assert (await book.visible(job.job_id, "alice")) is job
        with pytest.raises(JobNotFound):
            await book.visible(job.job_id, "bob")  # another owner's job does not exist
        assert (await book.find_idempotent("h1", "body-1")) is job
        with pytest.raises(IdempotencyConflict):
            await book.find_idempotent("h1", "body-2")
        job.status = "completed"
        book.close(job)
        assert job.job_id not in book and book.unwritten_ends() == [job]
        assert await book.write_end(job)
        assert book.unwritten_ends() == [] and store.active_ids() == []
        assert (await book.visible(job.job_id, None)).status == "completed"  # from storage now

    asyncio.run(scenario())


def test_a_dirty_record_is_written_by_the_next_flush(store: JobStore):
    async def scenario() -> None:
        book = RecordBook(store, store, "m")
        job = record()
        await book.create(job, None)
        job.progress = 42.0
        book.touched(job.job_id)
        assert store.load(job.job_id).progress == 0.0
        await book.flush()
        assert store.load(job.job_id).progress == 42.0

    asyncio.run(scenario())


def test_recovery_sorts_the_backlog_and_quarantines_entries_without_a_record(store: JobStore):
    now = utcnow()
    newer, older = record(created_at=now), record(created_at=now - timedelta(minutes=1))
    running = record(status="processing", attempts=1)
    retried = record(attempts=1)  # queued again after a lost run: adopted, its run may still be going
    ended = record(status="completed", webhook=WebhookState(url="https://example.com/hook"))
    for job in (newer, older, running, retried, ended):
        store.create(job)
    store.finish(ended, pending_webhook=True)
    store.storage.put_bytes("index/m/active/m-" + "0" * 32, b"")  # an entry whose record is gone

    backlog = asyncio.run(recover(store, RecordBook(store, store, "m"), "m"))

    assert [r.job_id for r in backlog.queued] == [older.job_id, newer.job_id]
    assert {r.job_id for r in backlog.running} == {running.job_id, retried.job_id}
    assert [r.job_id for r in backlog.webhooks] == [ended.job_id]
    assert store.storage.list_keys("index/m/quarantine/") == ["index/m/quarantine/m-" + "0" * 32]


def test_watchers_wake_every_open_stream_of_a_job_and_only_it():
    async def scenario() -> None:
        watchers = Watchers()
        first, second, other = watchers.watch("a"), watchers.watch("a"), watchers.watch("b")
        watchers.wake("a")
        assert first.is_set() and second.is_set() and not other.is_set()
        watchers.unwatch("a", first)
        first.clear()
        watchers.wake("a")
        assert not first.is_set()

    asyncio.run(scenario())

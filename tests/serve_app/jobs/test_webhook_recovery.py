"""A queue that restarts sends the webhooks its predecessor had not delivered: the storage is prepared as a
queue killed during a webhook outage leaves it (terminal records, `index/{model}/webhooks/` entries), then the
real app is deployed on it."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from serve_app.jobs.store import JobStore
from serve_app.schemas import JobRecord, WebhookState, utcnow
from serve_app.settings import key_id_of
from serve_app.storage.backends import LocalStorage
from tests.conftest import API_KEY, WebhookReceiver, app_args, wait_until

PENDING = 30


def finished_job(webhook_url: str) -> JobRecord:
    job_id = f"ltx2-{uuid.uuid4().hex}"
    return JobRecord(
        job_id=job_id,
        model="ltx2",
        params={"prompt": "finished before the restart"},
        output_key=f"jobs/{job_id}/output.mp4",
        owner=key_id_of(API_KEY),
        status="completed",
        progress=100.0,
        completed_at=utcnow(),
        attempts=1,
        webhook=WebhookState(url=webhook_url, attempts=2, last_status=503),  # the outage
    )


def test_every_undelivered_webhook_is_sent_by_the_next_queue(
    deploy, local_storage: dict[str, Any], webhook_receiver: WebhookReceiver
):
    storage = LocalStorage(Path(local_storage["local_dir"]), local_storage["public_base_url"], b"k" * 32)
    store = JobStore(storage, "ltx2")
    jobs = [finished_job(webhook_receiver.url) for _ in range(PENDING)]
    for job in jobs:
        store.create(job)
        store.finish(job, pending_webhook=True)

    webhook_receiver.delay_s = 0.1  # answers overlap, so the queue's bound on deliveries in flight shows
    deploy(app_args(local_storage, webhooks={"max_concurrent": 4}))

    expected = {job.job_id for job in jobs}
    wait_until(lambda: {d["body"]["job_id"] for d in webhook_receiver.deliveries}, lambda got: got == expected, 90)
    assert all(d["valid"] and d["body"]["status"] == "completed" for d in webhook_receiver.deliveries)
    assert all(d["headers"]["webhook-id"] == f"msg_{d['body']['job_id']}" for d in webhook_receiver.deliveries)
    wait_until(lambda: storage.list_keys("index/ltx2/webhooks/"), lambda left: left == [], 30)
    attempts = {store.load(job.job_id).webhook.attempts for job in jobs}
    assert attempts == {3}, attempts  # numbering went on from the outage's two attempts
    assert 2 <= webhook_receiver.most_in_flight <= 4, webhook_receiver.most_in_flight

"""Storage outages: moto's S3 server behind a TCP proxy that the test cuts (every connection reset) and restores.

The app runs for real (Ray, Serve's proxy, the gateway, the queue, a model replica with a fake runner) against
S3 through the proxy, while the test reads the bucket directly, around the proxy.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

from serve_app.errors import NotFound, StorageError
from serve_app.settings import StorageArgs
from serve_app.storage.backends import RetryingStorage, S3Storage
from tests.conftest import WebhookReceiver, app_args, deploy_app, get_job, wait_terminal, wait_until
from tests.tcp_proxy import TcpProxy

OUTAGE_S = 20
JOB_ID = re.compile(r"ltx2-[0-9a-f]{32}")


@pytest.fixture(scope="module")
def s3_proxy(s3_endpoint: str) -> Iterator[TcpProxy]:
    host, port = s3_endpoint.removeprefix("http://").split(":")
    proxy = TcpProxy((host, int(port)))
    yield proxy
    proxy.close()


@pytest.fixture(scope="module")
def bucket(s3_endpoint: str) -> str:
    name = f"outage-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket=name)
    return name


def proxied_storage(proxy: TcpProxy, bucket: str) -> S3Storage:
    return S3Storage(StorageArgs(backend="s3", bucket=bucket, endpoint_url=proxy.url, region="us-east-1"))


# ---- the storage layer alone -----------------------------------------------------------------------


def test_an_unreachable_endpoint_is_a_storage_error_and_a_missing_key_is_not(s3_proxy: TcpProxy, bucket: str) -> None:
    storage = proxied_storage(s3_proxy, bucket)
    storage.put_bytes("probe/a", b"1")
    s3_proxy.cut()
    try:
        started = time.monotonic()
        with pytest.raises(StorageError) as raised:
            storage.put_bytes("probe/b", b"2")
        assert raised.value.status_code == 503 and raised.value.code == "storage_unavailable"
        assert time.monotonic() - started < 30, "a request path must fail within seconds, not hang"
        with pytest.raises(StorageError):
            storage.get_bytes("probe/a")
    finally:
        s3_proxy.restore()
    assert storage.get_bytes("probe/a") == b"1"
    with pytest.raises(NotFound):  # an answer from S3, not an outage: never retried
        storage.get_bytes("probe/missing")


def test_retrying_storage_waits_out_a_short_outage_and_gives_up_on_a_long_one(s3_proxy: TcpProxy, bucket: str) -> None:
    storage = proxied_storage(s3_proxy, bucket)
    s3_proxy.cut()
    restore = threading.Timer(3, s3_proxy.restore)  # the outage itself: 3 s
    restore.start()
    try:
        RetryingStorage(storage, window_s=60).put_bytes("probe/after-outage", b"ok")
    finally:
        restore.join()
    assert storage.get_bytes("probe/after-outage") == b"ok"

    s3_proxy.cut()
    try:
        started = time.monotonic()
        with pytest.raises(StorageError):
            RetryingStorage(storage, window_s=2).put_bytes("probe/never", b"x")
        assert time.monotonic() - started < 30, "past its window the wrapper must give up"
    finally:
        s3_proxy.restore()


# ---- the whole app through a 20 s outage ---------------------------------------------------------


@dataclass
class OutageApp:
    client: httpx.Client
    bucket: str
    s3: Any  # a boto3 client that reaches moto directly, around the proxy

    def list(self, prefix: str = "") -> list[str]:
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return [o["Key"] for page in pages for o in page.get("Contents", [])]

    def record(self, job_id: str) -> dict[str, Any]:
        import json

        return json.loads(self.s3.get_object(Bucket=self.bucket, Key=f"jobs/{job_id}/job.json")["Body"].read())


@pytest.fixture(scope="module")
def outage_app(serve_url: str, s3_endpoint: str, s3_proxy: TcpProxy, bucket: str) -> Iterator[OutageApp]:
    from ray import serve

    storage = {"backend": "s3", "bucket": bucket, "endpoint_url": s3_proxy.url, "region": "us-east-1"}
    args = app_args(
        storage,
        runner="tests.fakes:HoldingRunner",
        placement={"min_replicas": 1, "max_replicas": 1},  # one replica: a second job waits behind the first
        webhooks={"backoff_s": 1, "backoff_max_s": 4, "max_attempts": 20},  # keeps trying through the outage
    )
    client = deploy_app(args, serve_url, name="outage", prefix="/outage")
    yield OutageApp(client, bucket, boto3.client("s3", endpoint_url=s3_endpoint))
    client.close()
    serve.delete("outage")


def submit(client: httpx.Client, prompt: str, webhook_url: str) -> str:
    body = {"model": "ltx2", "prompt": prompt, "duration": 1, "webhook_url": webhook_url}
    response = client.post("/api/v1/generate", json=body)
    assert response.status_code == 201, response.text
    return response.json()["job_id"]


def health(client: httpx.Client) -> tuple[int, dict[str, Any]]:
    response = client.get("/health")
    return response.status_code, response.json()


def test_a_storage_outage_delays_jobs_and_loses_none(
    outage_app: OutageApp, s3_proxy: TcpProxy, webhook_receiver: WebhookReceiver, tmp_path: Path
) -> None:
    client, release = outage_app.client, tmp_path / "release"
    webhook_receiver.fail_first = 10**6  # the receiver refuses until storage is back: its retries span the outage

    # 1. Before: one job finished (its webhook being retried), one running until released, one waiting behind it
    done = submit(client, "quick", webhook_receiver.url)
    assert wait_terminal(client, done, timeout_s=120)["status"] == "completed"
    wait_until(lambda: len(webhook_receiver.deliveries), lambda n: n >= 1, timeout_s=30)
    running = submit(client, f"hold:{release}", webhook_receiver.url)
    wait_until(lambda: get_job(client, running), lambda j: j.get("stage") == "holding", timeout_s=120)
    waiting = submit(client, "after", webhook_receiver.url)
    presigned = client.post(
        "/api/v1/presign/upload", json={"input_type": "image", "content_type": "image/png", "size": 4}
    )
    assert presigned.status_code == 200, presigned.text
    uploaded = httpx.put(presigned.json()["upload_url"], content=b"\x89PNG", headers={"Content-Type": "image/png"})
    assert uploaded.status_code == 200, uploaded.text

    # 2. Storage goes away
    s3_proxy.cut()
    cut_at = time.monotonic()
    _, body = wait_until(lambda: health(client), lambda h: h[0] == 503, timeout_s=60)
    assert body["storage"].startswith("unreachable"), body
    refused = client.post("/api/v1/generate", json={"model": "ltx2", "prompt": "during", "duration": 1})
    assert refused.status_code == 503, refused.text
    assert refused.json()["error"]["code"] == "storage_unavailable", refused.text
    image_job = {"model": "ltx2", "prompt": "x", "image_key": presigned.json()["key"]}
    staged = client.post("/api/v1/generate", json=image_job)
    assert staged.status_code == 503, staged.text  # not a 422 "no upload": the upload is there, storage is not
    assert staged.json()["error"]["code"] == "storage_unavailable", staged.text
    finished = client.get(f"/api/v1/jobs/{done}")  # a finished job lives only in storage
    assert finished.status_code == 503 and finished.json()["error"]["code"] == "storage_unavailable"
    release.touch()  # the held job runs to its end now: its output and result writes meet the outage

    # 3. While it lasts, accepted jobs keep going and none fails; the held one gets as far as its upload
    progress = 0.0
    while time.monotonic() - cut_at < OUTAGE_S:
        views = [get_job(client, job_id) for job_id in (running, waiting)]
        assert all(v["status"] in ("queued", "processing") for v in views), views
        progress = max(progress, views[0]["progress"])
        time.sleep(0.5)
    assert progress >= 99, f"the running job stopped at {progress} % during the outage"
    assert health(client)[0] == 503

    # 4. Storage is back: every accepted job completes on its first attempt, and a new one is accepted
    s3_proxy.restore()
    webhook_receiver.fail_first = 0
    wait_until(lambda: health(client), lambda h: h[0] == 200, timeout_s=60)
    accepted = [done, running, waiting, submit(client, "later", webhook_receiver.url)]
    for job_id in accepted:
        job = wait_terminal(client, job_id, timeout_s=180)
        assert (job["status"], job["attempts"]) == ("completed", 1), job
        video = httpx.get(job["result_url"], timeout=30)  # presigned, through the proxy
        assert video.status_code == 200 and video.content[4:8] == b"ftyp", job["result_url"]

    # 5. The bookkeeping reached storage: records, webhooks, indexes; the refused submit left nothing
    def delivered() -> set[str]:
        return {
            d["body"]["job_id"]
            for d in webhook_receiver.deliveries
            if d["valid"] and d["body"]["status"] == "completed"
        }

    wait_until(delivered, lambda ids: ids >= set(accepted), timeout_s=60)
    wait_until(lambda: outage_app.list("index/ltx2/webhooks/") + outage_app.list("index/ltx2/active/"), lambda k: not k)
    for job_id in accepted:
        record = outage_app.record(job_id)
        assert record["status"] == "completed" and record["webhook"]["delivered"], record
    assert outage_app.record(done)["webhook"]["attempts"] > 1
    wait_until(lambda: {m for k in outage_app.list() for m in JOB_ID.findall(k)}, lambda ids: ids == set(accepted))
    # the queue never restarted (its counters start at zero with each replica)
    assert health(client)[1]["models"]["ltx2"]["completed"] == len(accepted)


def test_an_outage_longer_than_the_retry_window_fails_the_job_and_its_end_is_written_later(
    deploy, s3_endpoint: str, tmp_path: Path
) -> None:
    """Past `storage.retry_window_s` a run gives up its GPU: it fails like a crashed run, the job ends after
    `queue.max_attempts`, its end is served from the queue's memory, and written once storage is back."""
    host, port = s3_endpoint.removeprefix("http://").split(":")
    proxy, bucket, release = TcpProxy((host, int(port))), f"long-{uuid.uuid4().hex[:12]}", tmp_path / "release"
    direct = boto3.client("s3", endpoint_url=s3_endpoint)
    direct.create_bucket(Bucket=bucket)
    try:
        storage = {"backend": "s3", "bucket": bucket, "endpoint_url": proxy.url, "region": "us-east-1"}
        storage["retry_window_s"] = 2
        placement = {"min_replicas": 1, "max_replicas": 1}
        client = deploy(
            app_args(storage, runner="tests.fakes:HoldingRunner", placement=placement, queue={"max_attempts": 2})
        )
        job_id = submit_plain(client, f"hold:{release}")
        wait_until(lambda: get_job(client, job_id), lambda j: j.get("stage") == "holding", timeout_s=120)
        proxy.cut()
        release.touch()
        job = wait_terminal(client, job_id, timeout_s=120)  # from the queue's memory: storage is still down
        assert (job["status"], job["error_code"], job["attempts"]) == ("failed", "retries_exhausted", 2), job
        assert "StorageError" in job["error_message"], job
        assert health(client)[0] == 503
        proxy.restore()

        def stored() -> dict[str, Any]:
            import json

            body = direct.get_object(Bucket=bucket, Key=f"jobs/{job_id}/job.json")["Body"].read()
            return json.loads(body)

        assert wait_until(stored, lambda r: r["status"] == "failed", timeout_s=60)["attempts"] == 2

        def active() -> list:
            return direct.list_objects_v2(Bucket=bucket, Prefix="index/ltx2/active/").get("Contents", [])

        wait_until(active, lambda entries: not entries, timeout_s=120)  # the end is written, then the entry goes
    finally:
        proxy.close()


def submit_plain(client: httpx.Client, prompt: str) -> str:
    response = client.post("/api/v1/generate", json={"model": "ltx2", "prompt": prompt, "duration": 1})
    assert response.status_code == 201, response.text
    return response.json()["job_id"]

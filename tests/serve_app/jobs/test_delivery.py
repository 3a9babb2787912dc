"""Files in and results out: presigned uploads on both backends, and signed webhooks with retries."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from tests.conftest import WebhookReceiver, app_args, wait_terminal, wait_until


def png_bytes() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), (10, 200, 90)).save(buffer, format="PNG")
    return buffer.getvalue()


def upload_then_generate(client: httpx.Client) -> dict[str, Any]:
    slot = {"input_type": "image", "content_type": "image/png", "size": len(png_bytes())}
    presign = client.post("/api/v1/presign/upload", json=slot)
    assert presign.status_code == 200, presign.text
    upload = presign.json()
    assert upload["key"].startswith("uploads/") and upload["expires_in"] > 0
    put = httpx.put(upload["upload_url"], content=png_bytes(), headers={"Content-Type": "image/png"})
    assert put.status_code == 200, put.text
    created = client.post("/api/v1/generate", json={"model": "ltx2", "prompt": "x", "image_key": upload["key"]})
    assert created.status_code == 201, created.text
    return wait_terminal(client, created.json()["job_id"])


def test_presigned_upload_then_generate_with_the_key_on_local_storage(shared_app):
    job = upload_then_generate(shared_app.client)
    assert job["status"] == "completed" and job["details"]["input_sizes"] == {"image": len(png_bytes())}


def test_presigned_upload_then_generate_with_the_key_on_s3(deploy, serve_url, s3_endpoint, s3_bucket):
    storage = {"backend": "s3", "bucket": s3_bucket, "endpoint_url": s3_endpoint, "region": "us-east-1"}
    client = deploy(app_args(storage))
    job = upload_then_generate(client)
    assert job["status"] == "completed" and job["details"]["input_sizes"] == {"image": len(png_bytes())}
    assert "X-Amz-Signature" in job["result_url"]
    assert httpx.get(job["result_url"]).content[4:8] == b"ftyp"  # the mp4, straight from the S3 endpoint


def test_generate_with_a_key_that_was_never_uploaded_is_a_422(shared_app):
    body = {"model": "ltx2", "prompt": "x", "image_key": "uploads/nothing/image-1.png"}
    response = shared_app.client.post("/api/v1/generate", json=body)
    assert response.status_code == 422 and response.json()["error"]["fields"][0]["field"] == "image_key"


def test_upload_links_refuse_other_keys_and_bad_signatures(shared_app):
    slot = {"input_type": "audio", "content_type": "audio/wav", "size": 2}
    upload = shared_app.client.post("/api/v1/presign/upload", json=slot).json()
    assert upload["key"].endswith(".wav")  # audio/wav is unknown to Python's mimetypes; the subtype names it
    other = upload["upload_url"].replace(upload["key"], "jobs/x/job.json")
    assert httpx.put(other, content=b"{}").status_code == 401
    assert httpx.put(upload["upload_url"].replace("signature=", "signature=f"), content=b"xx").status_code == 401
    assert httpx.put(upload["upload_url"].replace("size=2", "size=3"), content=b"xyz").status_code == 401


def test_presign_needs_the_file_size(shared_app):
    response = shared_app.client.post(
        "/api/v1/presign/upload", json={"input_type": "image", "content_type": "image/png"}
    )
    assert response.status_code == 422 and response.json()["error"]["fields"][0]["field"] == "size", response.text


def test_an_upload_over_the_limit_or_its_signed_size_is_refused_and_stores_nothing(deploy, local_storage):
    """A presign over the limit (inputs.max_input_mb here) is 413 naming `size`; a PUT of another length than the
    URL was signed for is refused (413 when longer, declared or chunked; 422 when shorter) and stores nothing."""
    client = deploy(app_args(local_storage, inputs={"max_input_mb": 1}))
    limit = 1024 * 1024
    presign = {"input_type": "video", "content_type": "video/mp4"}
    over = client.post("/api/v1/presign/upload", json=presign | {"size": limit + 1})
    assert over.status_code == 413, over.text
    assert over.json()["error"]["fields"][0]["field"] == "size" and str(limit) in over.text, over.text
    fits = client.post("/api/v1/presign/upload", json=presign | {"size": limit}).json()
    for body, status in (
        (bytes(limit + 1), 413),
        (iter([bytes(limit), b"x"]), 413),  # chunked: no Content-Length, counted as it comes
        (bytes(limit - 1), 422),
        (iter([bytes(limit - 1)]), 422),
    ):
        refused = httpx.put(fits["upload_url"], content=body)
        assert refused.status_code == status and refused.json()["error"]["fields"][0]["field"] == "body", refused.text
    uploads = Path(local_storage["local_dir"]) / "uploads"
    assert not [p for p in uploads.rglob("*") if p.is_file()], "a refused body was stored"
    stored = httpx.put(fits["upload_url"], content=bytes(limit))
    assert stored.json() == {"key": fits["key"], "size": limit}
    assert sorted(str(p.relative_to(uploads.parent)) for p in uploads.rglob("*") if p.is_file()) == [fits["key"]]


def test_an_s3_upload_url_is_signed_for_the_size_and_refused_over_the_limit(deploy, s3_endpoint, s3_bucket):
    """S3 refuses a presigned PUT whose Content-Length is not the signed one (403 SignatureDoesNotMatch). moto
    checks no signatures (a longer body to this URL is stored there), so this test can only assert what makes
    real S3 refuse it: `content-length` is among the URL's signed headers, with the size asked for; and that a
    size over the limit gets no URL at all."""
    storage = {"backend": "s3", "bucket": s3_bucket, "endpoint_url": s3_endpoint, "region": "us-east-1"}
    client = deploy(app_args(storage, inputs={"max_input_mb": 1}))
    presign = {"input_type": "image", "content_type": "image/png"}
    over = client.post("/api/v1/presign/upload", json=presign | {"size": 1024 * 1024 + 1})
    assert over.status_code == 413 and over.json()["error"]["fields"][0]["field"] == "size", over.text
    upload = client.post("/api/v1/presign/upload", json=presign | {"size": len(png_bytes())}).json()
    query = parse_qs(urlsplit(upload["upload_url"]).query)
    assert "content-length" in query["X-Amz-SignedHeaders"][0].split(";"), upload["upload_url"]
    put = httpx.put(upload["upload_url"], content=png_bytes(), headers={"Content-Type": "image/png"})
    assert put.status_code == 200, put.text


def test_webhook_is_signed_and_retried_until_the_receiver_accepts(shared_app, webhook_receiver: WebhookReceiver):
    webhook_receiver.fail_first = 1
    body = {"model": "ltx2", "prompt": "x", "webhook_url": webhook_receiver.url}
    job_id = shared_app.client.post("/api/v1/generate", json=body).json()["job_id"]
    assert wait_terminal(shared_app.client, job_id)["status"] == "completed"
    wait_until(lambda: len(webhook_receiver.deliveries), lambda n: n >= 2)
    first, second = webhook_receiver.deliveries[:2]
    assert first["valid"] and second["valid"]
    assert first["headers"]["webhook-id"] == second["headers"]["webhook-id"]  # one message, retried
    payload = second["body"]
    assert payload["job_id"] == job_id and payload["status"] == "completed" and payload["model"] == "ltx2"
    assert httpx.get(payload["video_url"]).status_code == 200

    record = lambda: json.loads((shared_app.data_dir / "jobs" / job_id / "job.json").read_text())  # noqa: E731
    webhook = wait_until(record, lambda r: r["webhook"]["delivered"])["webhook"]
    assert webhook["attempts"] == 2 and webhook["last_status"] == 200
    assert not (shared_app.data_dir / "index" / "ltx2" / "webhooks" / job_id).exists()


def test_a_failed_job_webhook_carries_the_error(shared_app, webhook_receiver: WebhookReceiver):
    body = {"model": "ltx2", "prompt": "fail permanently", "webhook_url": webhook_receiver.url}
    job_id = shared_app.client.post("/api/v1/generate", json=body).json()["job_id"]
    wait_until(lambda: webhook_receiver.deliveries, bool)
    payload = webhook_receiver.deliveries[0]["body"]
    assert payload["job_id"] == job_id and payload["status"] == "failed" and "video_url" not in payload
    assert payload["error"]["code"] == "unsupported_prompt"


def test_webhooks_to_internal_addresses_are_refused_at_submission(shared_app):
    body = {"model": "ltx2", "prompt": "x", "webhook_url": "http://169.254.169.254/hook"}
    response = shared_app.client.post("/api/v1/generate", json=body)
    assert response.status_code == 422 and response.json()["error"]["fields"][0]["field"] == "webhook_url"

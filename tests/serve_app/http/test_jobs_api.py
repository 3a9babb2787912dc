"""The HTTP API end to end: real HTTP through Serve's proxy, the real gateway, queues and storage,
with fake runners in place of GPU models (tests/fakes.py)."""

from __future__ import annotations

import base64
import io

import av
import httpx
import numpy as np
import pytest

from tests.conftest import API_KEY, app_args, get_job, url, wait_terminal, wait_until
from tests.media_files import png_bytes


def test_job_runs_to_completion_with_progress_and_a_playable_result(deploy, local_storage, tmp_path):
    client = deploy(app_args(local_storage, runner="tests.fakes:SlowRunner"))
    created = client.post("/api/v1/generate", json={"model": "ltx2", "prompt": "a red ball", "duration": 2})
    assert created.status_code == 201, created.text
    job_id = created.json()["job_id"]
    assert created.json()["params"]["num_frames"] == 49  # 2 s at 24 fps -> 8k+1

    running = wait_until(lambda: get_job(client, job_id), lambda j: 0 < j["progress"] < 100)
    assert running["status"] == "processing" and running["stage"] == "denoising"
    job = wait_terminal(client, job_id)
    assert job["status"] == "completed" and job["progress"] == 100 and job["attempts"] == 1, job
    assert job["started_at"] and job["completed_at"] and job["weights"] == "fake"

    video = tmp_path / "result.mp4"
    video.write_bytes(httpx.get(job["result_url"]).content)
    with av.open(str(video)) as container:
        assert container.streams.video[0].codec_context.name == "h264"
    fresh = client.get(f"/api/v1/presign/download/{job_id}").json()["download_url"]
    assert httpx.get(fresh).content == video.read_bytes()


def app_args_slow(storage: dict) -> dict:
    return app_args(storage, runner="tests.fakes:SlowRunner")


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": API_KEY}])
def test_requests_without_a_valid_key_get_401(shared_app, headers):
    client = shared_app.client
    for method, path, body in (
        ("POST", "/api/v1/generate", {"model": "ltx2", "prompt": "x"}),
        ("GET", "/api/v1/jobs/ltx2-0", None),
        ("POST", "/api/v1/presign/upload", {"input_type": "image", "content_type": "image/png", "size": 1}),
    ):
        response = httpx.request(method, url(client, path), json=body, headers=headers)
        assert response.status_code == 401, (path, response.text)
        assert response.json()["error"]["code"] == "unauthorized"
    assert httpx.get(url(client, "/health")).status_code == 200  # public


BAD_BODIES = [
    ({"model": "ltx2"}, "prompt"),
    ({"model": "ltx2", "prompt": "x", "width": 10000, "height": 512}, "width"),
    ({"model": "ltx2", "prompt": "x", "duration": -1}, "duration"),
    ({"model": "ltx2", "prompt": "x", "duration": 30}, "duration"),  # over the deployment's 20 s limit
    ({"model": "ltx2", "prompt": "x", "type": "i2v"}, "type"),  # i2v with no image
    ({"model": "ltx2", "type": "t2v", "image_urls": ["https://e.com/a.png"]}, "type"),
    (
        {"model": "ltx2", "prompt": "x", "image_urls": ["https://e.com/a.png"], "image_url": "https://e.com/b.png"},
        "image_urls",
    ),
    ({"model": "ltx2", "prompt": "x", "extend": "start"}, "extend"),  # nothing to extend
    ({"model": "ltx2", "prompt": "x", "aspect_ratio": "21:9", "resolution": "1080p"}, "aspect_ratio"),
    ({"model": "ltx2", "prompt": "x", "camera_lora": "orbit"}, "camera_lora"),
    ({"model": "ltx2", "prompt": "x", "camera_lora": "dolly_in"}, "camera_lora"),  # valid but not configured
    ({"model": "ltx2", "prompt": "x", "quality": "ultra"}, "quality"),
    ({"model": "ltx2", "prompt": "x", "width": 512}, "height"),
    ({"model": "ltx2", "prompt": "x", "image_base64": "!!!"}, "image_base64"),
    ({"model": "ltx2", "prompt": "x", "colour": "red"}, "colour"),
    ({"model": "ltx2", "prompt": "x", "webhook_url": "not a url"}, "webhook_url"),
    ({"model": "sora", "prompt": "x"}, "model"),
    ({"model": "talking_video", "image_url": "https://e.com/a.png", "audio_url": "https://e.com/a.wav"}, "model"),
    ({"model": "wav2lip", "video_url": "https://example.com/a.mp4"}, "audio_url"),
    ({"model": "wav2lip", "audio_url": "https://example.com/a.wav"}, "video_url"),
    (
        {
            "model": "wav2lip",
            "video_url": "https://e.com/a.mp4",
            "image_url": "https://e.com/a.png",
            "audio_url": "https://e.com/a.wav",
        },
        "image_url",
    ),
    ({"model": "wav2lip", "video_key": "../../etc/passwd", "audio_key": "uploads/a/b.wav"}, "video_key"),
]


@pytest.mark.parametrize(("body", "field"), BAD_BODIES, ids=[f"{b['model']}-{f}" for b, f in BAD_BODIES])
def test_bad_bodies_get_422_naming_the_field_and_leave_nothing(shared_app, body, field):
    before = shared_app.job_dirs()
    response = shared_app.client.post("/api/v1/generate", json=body)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert field in [f["field"] for f in error["fields"]], error
    assert shared_app.job_dirs() == before


@pytest.mark.parametrize("content", [b"not json", b"", b"[1, 2]", b'{"model": "ltx2", "prompt": "x"'])
def test_bodies_that_are_not_a_json_object_get_422_naming_the_body(shared_app, content):
    headers = {"Content-Type": "application/json"}
    response = shared_app.client.post("/api/v1/generate", content=content, headers=headers)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["fields"][0]["field"] in ("body", "model"), response.text


@pytest.mark.parametrize("job_id", ["ltx2-" + "0" * 32, "wav2lip-" + "f" * 32, "ltx2-../../etc", "sora-" + "0" * 32])
def test_unknown_or_malformed_job_ids_are_404_on_every_job_route(shared_app, job_id):
    for method, path in (
        ("GET", f"/api/v1/jobs/{job_id}"),
        ("POST", f"/api/v1/jobs/{job_id}/cancel"),
        ("GET", f"/api/v1/presign/download/{job_id}"),
    ):
        response = shared_app.client.request(method, path)
        assert response.status_code == 404, (path, response.text)
        assert response.json()["error"]["code"] == "job_not_found"


def test_camera_lora_error_lists_the_choices(shared_app):
    message = shared_app.client.post(
        "/api/v1/generate", json={"model": "ltx2", "prompt": "x", "camera_lora": "orbit"}
    ).text
    for choice in ("static", "dolly_in", "jib_down"):
        assert choice in message


def test_idempotency_key_returns_the_same_job_and_refuses_another_body(shared_app):
    client, before = shared_app.client, shared_app.job_dirs()
    body = {"model": "ltx2", "prompt": "same", "seed": 7}
    first = client.post("/api/v1/generate", json=body, headers={"Idempotency-Key": "k-1"})
    again = client.post("/api/v1/generate", json=body, headers={"Idempotency-Key": "k-1"})
    assert first.status_code == 201 and again.status_code == 200, again.text
    assert first.json()["job_id"] == again.json()["job_id"]
    other = client.post("/api/v1/generate", json={**body, "prompt": "other"}, headers={"Idempotency-Key": "k-1"})
    assert other.status_code == 409 and other.json()["error"]["code"] == "idempotency_key_reused"
    fresh = client.post("/api/v1/generate", json=body, headers={"Idempotency-Key": "k-2"})
    assert fresh.status_code == 201 and fresh.json()["job_id"] != first.json()["job_id"]
    assert len(shared_app.job_dirs() - before) == 2  # the replays made nothing


def test_cancel_a_queued_job_and_a_running_job(deploy, local_storage):
    client = deploy(app_args(local_storage, runner="tests.fakes:SlowRunner", queue={"dispatch_window": 1}))
    running = client.post("/api/v1/generate", json={"model": "ltx2", "prompt": "first"}).json()["job_id"]
    queued = client.post("/api/v1/generate", json={"model": "ltx2", "prompt": "second"}).json()["job_id"]
    wait_until(lambda: get_job(client, running), lambda j: j["status"] == "processing")
    assert get_job(client, queued)["queue_position"] == 0

    assert client.post(f"/api/v1/jobs/{queued}/cancel").json()["status"] == "cancelled"
    assert client.post(f"/api/v1/jobs/{running}/cancel").status_code == 200
    stopped = wait_terminal(client, running)
    assert stopped["status"] == "cancelled" and stopped["progress"] < 100, stopped
    never_ran = get_job(client, queued)
    assert never_ran["status"] == "cancelled" and never_ran["attempts"] == 0 and never_ran["started_at"] is None
    assert client.post(f"/api/v1/jobs/{running}/cancel").json()["status"] == "cancelled"  # idempotent
    assert client.get(f"/api/v1/presign/download/{running}").status_code == 409


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/x.png",
        "http://169.254.169.254/latest/meta-data",
        "http://localhost/a.png",
        "http://10.1.2.3/a.png",
    ],
)
def test_url_inputs_that_resolve_to_internal_addresses_are_refused(shared_app, url):
    before = shared_app.job_dirs()
    response = shared_app.client.post("/api/v1/generate", json={"model": "ltx2", "prompt": "x", "image_url": url})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["fields"][0]["field"] == "image_url"
    assert "address" in response.json()["error"]["message"]
    assert shared_app.job_dirs() == before


def test_a_permanent_failure_fails_the_job_once_and_says_why(shared_app):
    client = shared_app.client
    job_id = client.post("/api/v1/generate", json={"model": "ltx2", "prompt": "fail permanently"}).json()["job_id"]
    job = wait_terminal(client, job_id)
    assert job["status"] == "failed" and job["attempts"] == 1
    assert job["error_code"] == "unsupported_prompt" and "refuses" in job["error_message"]


def test_health_reports_storage_and_per_model_counts(deploy, local_storage):
    client = deploy(app_args(local_storage))
    done = client.post("/api/v1/generate", json={"model": "ltx2", "prompt": "count me"}).json()["job_id"]
    wait_terminal(client, done)
    health = httpx.get(url(client, "/health")).json()
    assert health["status"] == "ok" and health["storage"] == "ok"
    assert health["models"]["ltx2"]["completed"] == 1 and health["models"]["wav2lip"]["completed"] == 0


def test_a_full_queue_answers_429_with_retry_after(deploy, local_storage):
    args = app_args(local_storage, runner="tests.fakes:SlowRunner", queue={"max_queued_jobs": 2, "retry_after_s": 7})
    client = deploy(args)
    for _ in range(2):
        assert client.post("/api/v1/generate", json={"model": "ltx2", "prompt": "x"}).status_code == 201
    response = client.post("/api/v1/generate", json={"model": "ltx2", "prompt": "x"})
    assert response.status_code == 429 and response.headers["retry-after"] == "7", response.text
    assert (
        client.post(
            "/api/v1/generate",
            json={"model": "wav2lip", "video_url": "https://e.com/a.mp4", "audio_url": "http://127.0.0.1/a.wav"},
        ).status_code
        == 422
    )


def test_image_as_base64_is_staged_under_the_job(shared_app):
    client = shared_app.client
    image = base64.b64encode(png_bytes()).decode()
    created = client.post("/api/v1/generate", json={"model": "ltx2", "prompt": "x", "image_base64": image})
    assert created.status_code == 201, created.text
    job = wait_terminal(client, created.json()["job_id"])
    assert job["params"]["image_to_video"] is True
    assert job["details"]["input_sizes"] == {"image": len(png_bytes())}
    staged = shared_app.data_dir / "jobs" / job["job_id"] / "inputs" / "image.png"
    assert staged.read_bytes() == png_bytes()


def test_the_seed_requests_are_accepted_with_their_frame_counts(shared_app):
    runpod = {"prompt": "a lighthouse", "type": "t2v", "mode": "fast", "width": 1920, "height": 1080, "duration": 20}
    created = shared_app.client.post("/api/v1/generate", json={"model": "ltx2", **runpod, "seed": 5})
    assert created.status_code == 201, created.text
    assert created.json()["params"].items() >= {"num_frames": 481, "width": 1920, "height": 1088}.items()
    first_last = {"model": "ltx2", "type": "i2v", "image_base64": base64.b64encode(png_bytes()).decode()}
    created = shared_app.client.post(
        "/api/v1/generate", json={**first_last, "end_image_base64": first_last["image_base64"]}
    )
    assert created.status_code == 201, created.text
    job = wait_terminal(shared_app.client, created.json()["job_id"])
    assert (job["params"]["image_to_video"], job["params"]["end_image"]) == (True, True)
    assert job["details"]["input_sizes"] == {"image": len(png_bytes()), "end_image": len(png_bytes())}


def mp4_bytes(seconds: float, fps: int = 24) -> bytes:
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        for _ in range(round(seconds * fps)):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(np.zeros((64, 64, 3), np.uint8), format="rgb24")))
        container.mux(stream.encode(None))
    return buffer.getvalue()


def test_an_extension_past_the_frame_limit_is_refused_at_staging(shared_app):
    client, before = shared_app.client, shared_app.job_dirs()
    video = mp4_bytes(2.0)
    slot = {"input_type": "video", "content_type": "video/mp4", "size": len(video)}
    upload = client.post("/api/v1/presign/upload", json=slot).json()
    put = httpx.put(upload["upload_url"], content=video, headers={"Content-Type": "video/mp4"})
    assert put.status_code == 200, put.text
    body = {"model": "ltx2", "video_key": upload["key"], "extend": "end", "duration": 20}  # 48 + 480 > 505 frames
    response = client.post("/api/v1/generate", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["fields"][0]["field"] == "video_key" and "505" in response.text
    assert shared_app.job_dirs() == before
    accepted = client.post("/api/v1/generate", json={**body, "duration": 5})  # 48 + 120 frames
    assert accepted.status_code == 201, accepted.text
    assert accepted.json()["params"].items() >= {"extend": "end", "num_frames": 120, "width": None}.items()


def test_text_bytes_named_as_an_image_are_refused(shared_app):
    client = shared_app.client
    fake = base64.b64encode(b"#!/bin/sh\necho not an image\n").decode()
    response = client.post("/api/v1/generate", json={"model": "ltx2", "prompt": "x", "image_base64": fake})
    assert response.status_code == 422 and "not a recognised image" in response.text


def test_signed_file_links_work_without_a_key_and_refuse_tampering(shared_app):
    client = shared_app.client
    job = wait_terminal(client, client.post("/api/v1/generate", json={"model": "ltx2", "prompt": "x"}).json()["job_id"])
    assert httpx.get(job["result_url"]).status_code == 200
    tampered = job["result_url"].replace("signature=", "signature=0")
    assert httpx.get(tampered).status_code == 401
    assert httpx.get(job["result_url"].split("?")[0]).status_code == 422  # unsigned: refused

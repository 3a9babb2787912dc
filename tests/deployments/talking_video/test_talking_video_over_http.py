"""Talking video through the whole app: a photo and a speech track in over HTTP, the LTX-2 stage then the Wav2Lip
stage as jobs on their own queues (both real pipelines on tiny random weights, CPU), one mp4 out. Replicas are
killed for real with `ray.kill`; files are read from the app's local storage directory."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import httpx
import numpy as np
import pytest
from PIL import Image
from scipy import signal
from scipy.io import wavfile
from video_serve_client import Client

from deployments.media import decode_audio
from serve_app.runs.coordinator import stage_job_id
from tests.conftest import API_KEY, SharedApp, WebhookReceiver, app_args, deploy_app, get_job, wait_terminal, wait_until
from tests.deployments.wav2lip.wav2lip_inputs import astronaut, speech_like
from tests.serve_app.jobs.test_resilience import kill_replica

APP = "talking"
RATE = 16_000
MODELS = {
    # a 10 s limit (the default is 20) keeps the over-long speech of the bounds test small
    "ltx2": {
        "allow_random_weights": True,
        "device": "cpu",
        "max_duration_s": 10,
        "runner": "tests.deployments.talking_video.holding:HoldingLTX2Runner",
        "placement": {"max_replicas": 1},
    },
    "wav2lip": {"allow_random_weights": True, "device": "cpu", "batch_size": 8},
    "talking_video": {"enabled": True, "placement": {"num_cpus": 0, "min_replicas": 1, "max_replicas": 1}},
}
SMALL = {"width": 64, "height": 64, "fps": 16, "seed": 1}


@pytest.fixture(scope="module")
def webhooks() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    yield receiver
    receiver.close()


@pytest.fixture(scope="module")
def talking(serve_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharedApp]:
    from ray import serve

    data = tmp_path_factory.mktemp("talking") / "data"
    storage = {"backend": "local", "local_dir": str(data), "public_base_url": f"{serve_url}/{APP}"}
    args = app_args(storage)
    for model, values in MODELS.items():
        placement = {**args.get(model, {}).get("placement", args["ltx2"]["placement"]), **values.get("placement", {})}
        args[model] = {**values, "placement": placement}
    client = deploy_app(args, serve_url, name=APP, prefix=f"/{APP}")
    client.timeout = httpx.Timeout(120)
    yield SharedApp(client, data)
    client.close()
    serve.delete(APP)


def upload(client: httpx.Client, kind: str, content_type: str, data: bytes) -> str:
    slot = {"input_type": kind, "content_type": content_type, "size": len(data)}
    presign = client.post("/api/v1/presign/upload", json=slot).json()
    assert httpx.put(presign["upload_url"], content=data, headers={"Content-Type": content_type}).status_code == 200
    return presign["key"]


def png(image_bgr: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image_bgr[..., ::-1]).save(buffer, format="PNG")
    return buffer.getvalue()


def wav(samples: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    wavfile.write(buffer, RATE, (samples * 32767).astype(np.int16))
    return buffer.getvalue()


def body(client: httpx.Client, speech: np.ndarray, face: np.ndarray | None = None, **fields: Any) -> dict[str, Any]:
    face = astronaut() if face is None else face
    return {
        "model": "talking_video",
        "image_key": upload(client, "image", "image/png", png(face)),
        "audio_key": upload(client, "audio", "audio/wav", wav(speech)),
        **fields,
    }


def record(app: SharedApp, job_id: str) -> dict[str, Any] | None:
    """The job's record as its queue last saved it, straight from storage (stage jobs have no API owner)."""
    path = app.data_dir / "jobs" / job_id / "job.json"
    return json.loads(path.read_text()) if path.exists() else None


def events(client: httpx.Client, job_id: str) -> list[dict[str, Any]]:
    """Every event of the job's SSE stream, read until its `done` event."""
    seen: list[dict[str, Any]] = []
    with client.stream("GET", f"/api/v1/jobs/{job_id}/events", timeout=httpx.Timeout(600)) as response:
        assert response.status_code == 200, response.read()
        name = None
        for line in response.iter_lines():
            if line.startswith("event: "):
                name = line.removeprefix("event: ")
            elif line.startswith("data: "):
                seen.append({"event": name, **json.loads(line.removeprefix("data: "))})
                if name == "done":
                    return seen
    raise AssertionError(f"the stream ended without a done event; saw {seen}")


def mp4_streams(path: Path) -> tuple[int, float, np.ndarray]:
    """(video frames, fps, mono audio at 16 kHz) of an mp4."""
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        frames = sum(1 for _ in container.decode(video))
        fps = float(video.average_rate)
    return frames, fps, decode_audio(path, sample_rate=RATE)[0]


def test_a_talking_video_job_completes_with_the_speech_as_its_audio(talking, webhooks, tmp_path):
    speech = speech_like(1.0)
    created = talking.client.post("/api/v1/generate", json=body(talking.client, speech, **SMALL,
                                                                  webhook_url=webhooks.url))  # fmt: skip
    assert created.status_code == 201, created.text
    job_id = created.json()["job_id"]
    assert [s["name"] for s in created.json()["params"]["stages"]] == ["ltx2", "wav2lip"]

    seen = events(talking.client, job_id)
    job = seen[-1]
    assert job["status"] == "completed", job
    progress = [e["progress"] for e in seen]
    assert progress == sorted(progress), progress  # never backwards
    stages = [e.get("stage", "") for e in seen[:-1]]
    assert any(s.startswith("ltx2:") for s in stages) and any(s.startswith("wav2lip:") for s in stages), stages
    assert [s.startswith("ltx2:") for s in stages if ":" in s] == sorted(
        (s.startswith("ltx2:") for s in stages if ":" in s), reverse=True
    ), stages  # the LTX-2 stage, then the Wav2Lip one
    details = job["details"]["stages"]
    assert [(s["name"], s["status"]) for s in details] == [("ltx2", "completed"), ("wav2lip", "completed")]
    assert details[0]["params"]["num_frames"] == 17  # 1 s at 16 fps -> 16 frames, snapped up to 8k+1
    assert details[1]["params"]["sync_mode"] == "cut_off"
    assert all(s["seconds"] > 0 for s in details), details
    assert details[0]["output_key"] == f"jobs/{job_id}/stages/0-ltx2.mp4"
    assert (talking.data_dir / details[0]["output_key"]).is_file()  # the intermediate clip under the job
    listed = {j["job_id"] for j in talking.client.get("/api/v1/jobs", params={"limit": 100}).json()["jobs"]}
    assert job_id in listed and not listed & {s["job_id"] for s in details}, listed  # the caller sees one job
    assert talking.client.get(f"/api/v1/jobs/{details[0]['job_id']}").status_code == 404  # stage jobs: admin only

    path = tmp_path / "talking.mp4"
    path.write_bytes(httpx.get(job["result_url"], timeout=60).content)
    frames, fps, audio = mp4_streams(path)
    assert fps == 16.0 and abs(frames / fps - 1.0) <= 1 / fps, (frames, fps)  # the speech's length, within a frame
    lag = int(np.argmax(signal.correlate(audio, speech, mode="full"))) - (len(speech) - 1)
    assert abs(lag) < RATE // 50, lag  # AAC priming moves it by a few ms at most
    aligned = audio[max(lag, 0) :][: len(speech) - max(-lag, 0)]
    reference = speech[max(-lag, 0) :][: len(aligned)]
    error = np.sqrt(np.mean((aligned - reference) ** 2)) / np.sqrt(np.mean(reference**2))
    assert error < 0.15 and len(aligned) > 0.95 * len(speech), (error, len(aligned))  # the speech, not LTX-2's sound

    delivered = wait_until(lambda: list(webhooks.deliveries), lambda d: any(x["body"]["job_id"] == job_id for x in d))
    assert [d["body"]["job_id"] for d in delivered] == [job_id], delivered  # one, the chained job's; stages send none


def test_the_readmes_client_and_cli_calls_make_a_talking_video_from_local_files(talking, tmp_path):
    """The README's `client.run("talking_video", image="face.png", audio="speech.wav")` and its CLI line."""
    face, speech = tmp_path / "face.png", tmp_path / "speech.wav"
    face.write_bytes(png(astronaut()))
    speech.write_bytes(wav(speech_like(1.0)))
    base_url = str(talking.client.base_url)
    with Client(base_url, API_KEY) as client:
        job = client.run("talking_video", out=tmp_path / "client.mp4", image=face, audio=speech, **SMALL)
    assert [s["status"] for s in job.data["details"]["stages"]] == ["completed", "completed"], job.data
    frames, fps, _ = mp4_streams(tmp_path / "client.mp4")
    assert abs(frames / fps - 1.0) <= 1 / fps, (frames, fps)

    fields = [arg for name, value in SMALL.items() for arg in (f"--{name}", str(value))]
    command = ["generate", "talking_video", "--image", str(face), "--audio", str(speech), *fields]
    done = subprocess.run(
        [sys.executable, "-m", "video_serve_client.cli", *command, "--out", str(tmp_path / "cli.mp4"), "--json"],
        env={**os.environ, "VIDEO_SERVE_URL": base_url, "VIDEO_SERVE_API_KEY": API_KEY},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-2000:])
    assert json.loads(done.stdout.splitlines()[-1])["status"] == "completed"
    assert mp4_streams(tmp_path / "cli.mp4")[0] == frames


def held(release: Path) -> dict[str, Any]:
    """Fields that keep the LTX-2 stage in `ltx2:holding` until `release` exists (HoldingLTX2Runner)."""
    return {**SMALL, "prompt": f"hold:{release} a person talking"}


def test_cancel_during_the_ltx2_stage_never_starts_the_wav2lip_stage(talking, tmp_path):
    created = talking.client.post(
        "/api/v1/generate", json=body(talking.client, speech_like(2.0), **held(tmp_path / "go"))
    )
    assert created.status_code == 201, created.text
    job_id = created.json()["job_id"]
    wait_until(lambda: get_job(talking.client, job_id), lambda j: j["stage"] == "ltx2:holding", timeout_s=300)

    assert talking.client.post(f"/api/v1/jobs/{job_id}/cancel").status_code == 200
    job = wait_terminal(talking.client, job_id, timeout_s=120)

    assert job["status"] == "cancelled", job
    animate = stage_job_id(job_id, 0, "ltx2")
    assert wait_until(lambda: record(talking, animate), lambda r: r and r["status"] == "cancelled")
    assert [s["name"] for s in job["details"]["stages"]] == ["ltx2"], job["details"]
    assert record(talking, stage_job_id(job_id, 1, "wav2lip")) is None  # never submitted


def test_a_killed_ltx2_replica_then_a_killed_coordinator_still_complete_the_job_once(talking, webhooks, tmp_path):
    before = talking.job_dirs()
    release = tmp_path / "go"
    created = talking.client.post("/api/v1/generate", json=body(talking.client, speech_like(2.0), **held(release),
                                                                  webhook_url=webhooks.url))  # fmt: skip
    assert created.status_code == 201, created.text
    job_id = created.json()["job_id"]
    animate = stage_job_id(job_id, 0, "ltx2")
    wait_until(lambda: get_job(talking.client, job_id), lambda j: j["stage"] == "ltx2:holding", timeout_s=300)

    kill_replica(APP, "LTX2Generator")  # the stage's second attempt holds again, so the coordinator dies mid-stage
    wait_until(lambda: record(talking, animate), lambda r: r["attempts"] == 2 and r["stage"] == "holding", 300)
    kill_replica(APP, "TalkingVideoCoordinator")
    release.touch()

    job = wait_terminal(talking.client, job_id, timeout_s=600)
    assert job["status"] == "completed" and job["attempts"] == 2, job
    stages = job["details"]["stages"]
    assert [(s["name"], s["job_id"], s["attempts"]) for s in stages] == [
        ("ltx2", animate, 2),  # retried by its own queue, then followed again by the new coordinator run
        ("wav2lip", stage_job_id(job_id, 1, "wav2lip"), 1),
    ], stages
    assert talking.job_dirs() - before == {job_id, animate, stages[1]["job_id"]}  # no stage ran twice as a job
    wait_until(lambda: record(talking, job_id), lambda r: r["webhook"]["delivered"])
    assert [d["body"]["job_id"] for d in webhooks.deliveries].count(job_id) == 1, webhooks.deliveries
    assert [d["body"]["status"] for d in webhooks.deliveries if d["body"]["job_id"] == job_id] == ["completed"]


def test_a_photo_without_a_face_is_refused_before_any_stage_runs(talking):
    before = talking.job_dirs()
    sky = np.zeros((256, 256, 3), np.uint8)
    sky[:] = np.linspace(80, 200, 256, dtype=np.uint8)[:, None, None]  # a gradient: no face anywhere
    response = talking.client.post("/api/v1/generate", json=body(talking.client, speech_like(1.0), face=sky, **SMALL))

    assert response.status_code == 422, response.text
    assert response.json()["error"]["fields"][0]["field"] == "image_key", response.json()
    assert "no face" in response.json()["error"]["message"]
    assert talking.job_dirs() == before  # no job, no stage, nothing staged left behind


@pytest.mark.parametrize(
    ("speech", "field", "words"),
    [
        (speech_like(0.1), "audio_key", "at least"),  # too short for speech
        (speech_like(11.0), "audio_key", "over the 10 s limit"),  # past ltx2.max_duration_s
    ],
)
def test_speech_out_of_bounds_is_refused_naming_the_audio(talking, speech, field, words):
    response = talking.client.post("/api/v1/generate", json=body(talking.client, speech, **SMALL))
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["fields"][0]["field"] == field and words in error["message"], error


def test_audio_that_is_not_audio_is_refused_naming_the_audio(talking):
    before = talking.job_dirs()
    request = body(talking.client, speech_like(1.0), **SMALL)
    request["audio_key"] = upload(talking.client, "audio", "audio/wav", b"RIFF\x00\x00\x00\x00WAVEnot a sound")
    response = talking.client.post("/api/v1/generate", json=request)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["fields"][0]["field"] == "audio_key", response.json()
    assert talking.job_dirs() == before


def test_a_bad_ltx2_size_is_a_422_naming_the_field(talking):
    response = talking.client.post("/api/v1/generate", json=body(talking.client, speech_like(1.0), resolution="9k"))
    assert response.status_code == 422, response.text
    assert response.json()["error"]["fields"][0]["field"] == "resolution", response.json()


def test_a_failed_stage_fails_the_job_with_that_stages_error_code(talking):
    # A speaker point where the animated clip has no face: the Wav2Lip stage fails with speaker_not_found.
    speaker = {"x": 1, "y": 1, "at_s": 0.0}
    created = talking.client.post(
        "/api/v1/generate", json=body(talking.client, speech_like(0.5), **SMALL, active_speaker=speaker)
    )
    assert created.status_code == 201, created.text
    job = wait_terminal(talking.client, created.json()["job_id"], timeout_s=300)

    assert (job["status"], job["error_code"]) == ("failed", "speaker_not_found"), job
    assert "stage wav2lip" in job["error_message"], job["error_message"]
    outcomes = [(s["name"], s["status"]) for s in job["details"]["stages"]]
    assert outcomes == [("ltx2", "completed"), ("wav2lip", "failed")], outcomes

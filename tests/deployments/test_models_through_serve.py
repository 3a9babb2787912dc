"""Both real models through the whole app: HTTP upload, gateway, queue, the model deployment running the real
pipeline (tiny random weights built in code, on CPU), the mp4 in storage, read back with PyAV."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from pathlib import Path

import av
import httpx
import numpy as np
import pytest
from scipy.io import wavfile

from tests.conftest import SharedApp, app_args, deploy_app, wait_terminal
from tests.deployments.wav2lip.wav2lip_inputs import astronaut, speech_like, write_clip

REAL_MODELS = {
    "ltx2": {"allow_random_weights": True, "device": "cpu", "pro_steps": 2},
    "wav2lip": {"allow_random_weights": True, "device": "cpu", "batch_size": 8},
}


@pytest.fixture(scope="module")
def models_app(serve_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharedApp]:
    from ray import serve

    data = tmp_path_factory.mktemp("models") / "data"
    storage = {"backend": "local", "local_dir": str(data), "public_base_url": f"{serve_url}/models"}
    args = app_args(storage)
    for model in ("ltx2", "wav2lip"):
        args[model] = {**REAL_MODELS[model], "placement": args[model]["placement"]}
    client = deploy_app(args, serve_url, name="models", prefix="/models")
    client.timeout = httpx.Timeout(120)
    yield SharedApp(client, data)
    client.close()
    serve.delete("models")


def upload(client: httpx.Client, kind: str, content_type: str, data: bytes) -> str:
    slot = {"input_type": kind, "content_type": content_type, "size": len(data)}
    presign = client.post("/api/v1/presign/upload", json=slot).json()
    assert httpx.put(presign["upload_url"], content=data, headers={"Content-Type": content_type}).status_code == 200
    return presign["key"]


def fetch_mp4(job: dict, tmp_path: Path) -> Path:
    path = tmp_path / f"{job['job_id']}.mp4"
    path.write_bytes(httpx.get(job["result_url"], timeout=60).content)
    return path


def streams(path: Path) -> tuple[int, int, int, float, float, float]:
    """(frames, width, height, fps, video seconds, audio seconds) of an mp4, frames counted by decoding."""
    with av.open(str(path)) as container:
        video, audio = container.streams.video[0], container.streams.audio[0]
        frames = sum(1 for _ in container.decode(video))
        width, height, fps = video.codec_context.width, video.codec_context.height, float(video.average_rate)
    with av.open(str(path)) as container:
        samples = sum(f.samples for f in container.decode(container.streams.audio[0]))
    return frames, width, height, fps, frames / fps, samples / audio.codec_context.sample_rate


def wav_bytes(seconds: float) -> bytes:
    buffer = io.BytesIO()
    wavfile.write(buffer, 16_000, (speech_like(seconds) * 32767).astype(np.int16))
    return buffer.getvalue()


def test_lip_sync_job_over_http_returns_an_mp4_as_long_as_the_audio(models_app, tmp_path):
    face = astronaut()
    frames = [np.roll(face, shift, axis=1) for shift in range(0, 16)]  # a little motion
    clip = write_clip(tmp_path / "face.mp4", frames, fps=25)
    body = {
        "model": "wav2lip",
        "video_key": upload(models_app.client, "video", "video/mp4", clip.read_bytes()),
        "audio_key": upload(models_app.client, "audio", "audio/wav", wav_bytes(1.2)),
    }
    created = models_app.client.post("/api/v1/generate", json=body)
    assert created.status_code == 201, created.text
    job = wait_terminal(models_app.client, created.json()["job_id"], timeout_s=300)
    assert job["status"] == "completed", job
    assert job["weights"] == "random-tiny"

    frames_out, width, height, fps, video_s, audio_s = streams(fetch_mp4(job, tmp_path))
    assert (width, height, fps) == (256, 256, 25.0)
    assert frames_out == 30  # 1.2 s of audio at 25 fps: the 16-frame clip loops
    assert abs(audio_s - 1.2) < 0.05 and abs(video_s - audio_s) <= 1 / 25 + 0.05


@pytest.mark.parametrize(("mode", "frames"), [("loop", 12), ("bounce", 12), ("remap", 12), ("cut_off", 8),
                                              ("silence", 8)])  # fmt: skip
def test_each_sync_mode_over_http_gives_its_length(models_app, tmp_path, mode, frames):
    clip = write_clip(tmp_path / "face.mp4", [np.roll(astronaut(), s, axis=1) for s in range(8)], fps=25)
    body = {
        "model": "wav2lip",
        "sync_mode": mode,
        "video_key": upload(models_app.client, "video", "video/mp4", clip.read_bytes()),
        "audio_key": upload(models_app.client, "audio", "audio/wav", wav_bytes(0.48)),  # 12 frames; the video 8
    }
    created = models_app.client.post("/api/v1/generate", json=body)
    assert created.status_code == 201, created.text
    job = wait_terminal(models_app.client, created.json()["job_id"], timeout_s=300)
    assert job["status"] == "completed", job
    assert (job["details"]["sync_mode"], job["details"]["frames"]) == (mode, frames)
    frames_out, _, _, fps, video_s, audio_s = streams(fetch_mp4(job, tmp_path))
    assert (frames_out, fps) == (frames, 25.0)
    assert abs(audio_s - video_s) <= 1 / 25 + 0.03  # AAC frames round the audio up by up to 21 ms


def test_a_speaker_point_on_no_face_fails_the_job_over_http_naming_the_time(models_app, tmp_path):
    clip = write_clip(tmp_path / "face.mp4", [astronaut()] * 8, fps=25)
    body = {
        "model": "wav2lip",
        "active_speaker": {"x": 1, "y": 1, "at_s": 0.12},  # the top-left corner: no face there
        "video_key": upload(models_app.client, "video", "video/mp4", clip.read_bytes()),
        "audio_key": upload(models_app.client, "audio", "audio/wav", wav_bytes(0.32)),
    }
    created = models_app.client.post("/api/v1/generate", json=body)
    assert created.status_code == 201, created.text
    job = wait_terminal(models_app.client, created.json()["job_id"], timeout_s=300)
    assert (job["status"], job["error_code"]) == ("failed", "speaker_not_found"), job
    assert "0.12" in job["error_message"], job["error_message"]


def test_a_still_image_with_another_sync_mode_is_refused(models_app):
    body = {
        "model": "wav2lip",
        "sync_mode": "bounce",
        "image_key": "uploads/a/face.png",
        "audio_key": "uploads/a/s.wav",
    }
    response = models_app.client.post("/api/v1/generate", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["fields"][0]["field"] == "sync_mode"


def test_corrupt_audio_is_refused_before_it_reaches_a_gpu(models_app, tmp_path):
    clip = write_clip(tmp_path / "face.mp4", [astronaut()] * 4, fps=25)
    body = {
        "model": "wav2lip",
        "video_key": upload(models_app.client, "video", "video/mp4", clip.read_bytes()),
        "audio_key": upload(models_app.client, "audio", "audio/wav", b"RIFF\x24\x00\x00\x00WAVEfmt garbage"),
    }
    response = models_app.client.post("/api/v1/generate", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["fields"][0]["field"] == "audio_key"


@pytest.mark.parametrize("quality", ["fast", "pro"])
def test_text_to_video_job_over_http_has_the_snapped_size_frames_and_audio(models_app, tmp_path, quality):
    body = {
        "model": "ltx2",
        "prompt": "a red ball",
        "width": 100,
        "height": 70,
        "duration": 0.5,
        "fps": 16,
        "quality": quality,
        "seed": 3,
    }
    created = models_app.client.post("/api/v1/generate", json=body)
    assert created.status_code == 201, created.text
    params = created.json()["params"]
    multiple = 64 if quality == "pro" else 32
    assert (params["width"], params["height"]) == ((128, 64) if multiple == 64 else (96, 64))
    assert params["num_frames"] == 9  # 0.5 s at 16 fps -> 8k+1
    job = wait_terminal(models_app.client, created.json()["job_id"], timeout_s=300)
    assert job["status"] == "completed", job
    frames, width, height, fps, _, audio_s = streams(fetch_mp4(job, tmp_path))
    assert (frames, width, height, fps) == (9, params["width"], params["height"], 16.0)
    assert audio_s > 0


def test_image_to_video_job_over_http(models_app, tmp_path):
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(astronaut()[..., ::-1]).save(buffer, format="PNG")
    body = {
        "model": "ltx2",
        "prompt": "the astronaut smiles",
        "width": 64,
        "height": 64,
        "duration": 0.5,
        "fps": 16,
        "image_base64": base64.b64encode(buffer.getvalue()).decode(),
    }
    created = models_app.client.post("/api/v1/generate", json=body)
    assert created.status_code == 201, created.text
    job = wait_terminal(models_app.client, created.json()["job_id"], timeout_s=300)
    assert job["status"] == "completed" and job["details"]["image_to_video"] is True, job
    frames, width, height, _, _, _ = streams(fetch_mp4(job, tmp_path))
    assert (frames, width, height) == (9, 64, 64)


def test_first_last_frame_job_then_its_extension_over_http(models_app, tmp_path):
    from PIL import Image

    def png(colour: tuple[int, int, int]) -> str:
        buffer = io.BytesIO()
        Image.new("RGB", (80, 64), colour).save(buffer, format="PNG")
        return base64.b64encode(buffer.getvalue()).decode()

    # the seed's image-to-video form: no prompt (the deployment's default is used), first and last frame
    body = {"model": "ltx2", "type": "i2v", "image_base64": png((200, 40, 40)), "end_image_base64": png((40, 40, 200))}
    keyframes = {**body, "width": 64, "height": 64, "duration": 0.5, "fps": 16, "seed": 4}
    created = models_app.client.post("/api/v1/generate", json=keyframes)
    assert created.status_code == 201, created.text
    assert created.json()["params"]["end_image"] is True and created.json()["params"]["prompt"]
    job = wait_terminal(models_app.client, created.json()["job_id"], timeout_s=300)
    assert job["status"] == "completed" and job["details"]["end_image"] is True, job
    clip = fetch_mp4(job, tmp_path)
    assert streams(clip)[:3] == (9, 64, 64)

    extension = {"model": "ltx2", "video_key": upload(models_app.client, "video", "video/mp4", clip.read_bytes())}
    created = models_app.client.post("/api/v1/generate", json={**extension, "duration": 0.5, "fps": 16, "seed": 4})
    assert created.status_code == 201, created.text
    assert created.json()["params"]["extend"] == "end" and created.json()["params"]["num_frames"] == 8
    job = wait_terminal(models_app.client, created.json()["job_id"], timeout_s=300)
    assert job["status"] == "completed", job
    assert (job["details"]["input_frames"], job["details"]["num_frames"]) == (9, 17)
    frames, width, height, fps, _, _ = streams(fetch_mp4(job, tmp_path))
    assert (frames, width, height, fps) == (17, 64, 64, 16.0)

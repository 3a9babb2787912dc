"""LTX-2.3 and LTX-2.5 through the whole app on the local profile: HTTP, gateway, queue, the LTX-2 deployment
running each release's real pipeline on tiny random weights (CPU), the mp4 in storage, read back with PyAV."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import av
import httpx
import pytest

from tests.conftest import SharedApp, app_args, deploy_app, wait_terminal

LOCAL_PROFILE = {"allow_random_weights": True, "device": "cpu", "pro_steps": 2, "max_prompt_tokens": 32}
DURATION_BOUNDS = {"min_duration_s": 1.0, "max_duration_s": 10.0}  # what the 2.5 duration head may pick


@pytest.fixture(scope="module")
def version_apps(serve_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, SharedApp]]:
    """One app per release, each with the real LTX-2 runner (wav2lip keeps the fake one)."""
    from ray import serve

    apps: dict[str, SharedApp] = {}
    for version in ("2.3", "2.5"):
        name = f"ltx{version.replace('.', '')}"
        data = tmp_path_factory.mktemp(name) / "data"
        storage = {"backend": "local", "local_dir": str(data), "public_base_url": f"{serve_url}/{name}"}
        args = app_args(storage)
        args["ltx2"] = {
            **LOCAL_PROFILE,
            **DURATION_BOUNDS,
            "model_version": version,
            "placement": args["ltx2"]["placement"],
        }
        client = deploy_app(args, serve_url, name=name, prefix=f"/{name}")
        client.timeout = httpx.Timeout(120)
        apps[version] = SharedApp(client, data)
    yield apps
    for version, app in apps.items():
        app.client.close()
        serve.delete(f"ltx{version.replace('.', '')}")


def fetch(job: dict, tmp_path: Path) -> dict:
    """Decoded frame count, size and audio rate (None without an audio stream) of the job's mp4."""
    path = tmp_path / f"{job['job_id']}.mp4"
    path.write_bytes(httpx.get(job["result_url"], timeout=60).content)
    with av.open(str(path)) as container:
        video, audio = container.streams.video[0], container.streams.audio
        return {
            "frames": sum(1 for _ in container.decode(video)),
            "size": (video.codec_context.width, video.codec_context.height),
            "sample_rate": audio[0].codec_context.sample_rate if audio else None,
        }


def test_ltx_2_3_job_has_48_khz_audio(version_apps: dict[str, SharedApp], tmp_path: Path) -> None:
    client = version_apps["2.3"].client
    body = {"model": "ltx2", "prompt": "a red ball", "width": 64, "height": 64, "duration": 0.5, "fps": 16, "seed": 3}
    created = client.post("/api/v1/generate", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["params"]["num_frames"] == 9
    job = wait_terminal(client, created.json()["job_id"], timeout_s=300)
    assert job["status"] == "completed", job
    assert job["details"]["model_version"] == "2.3" and job["details"]["sample_rate"] == 48000
    assert fetch(job, tmp_path) == {"frames": 9, "size": (64, 64), "sample_rate": 48000}


def test_ltx_2_5_pro_job_picks_its_duration_and_can_drop_the_audio(
    version_apps: dict[str, SharedApp], tmp_path: Path
) -> None:
    client = version_apps["2.5"].client
    body = {"model": "ltx2", "prompt": "a red ball", "quality": "pro", "width": 128, "height": 64, "fps": 16}
    created = client.post("/api/v1/generate", json=body | {"generate_audio": False})
    assert created.status_code == 201, created.text
    assert created.json()["params"]["num_frames"] == "auto"  # decided by the duration head when the job runs
    job = wait_terminal(client, created.json()["job_id"], timeout_s=300)
    assert job["status"] == "completed", job
    frames = job["details"]["num_frames"]
    assert (frames - 1) % 8 == 0 and 1 * 16 <= frames <= 10 * 16  # within min/max_duration_s (1-10 s) at 16 fps
    assert job["details"]["stage_steps"] == [2, 3] and job["details"]["sample_rate"] is None
    assert fetch(job, tmp_path) == {"frames": frames, "size": (128, 64), "sample_rate": None}

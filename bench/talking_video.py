"""A talking-video job end to end against its two stages run as separate jobs by a client, same inputs, same
app, same run. Writes bench/results_talking_video.md.

    PYTHONPATH=. .venv/bin/python bench/talking_video.py [--rounds 3] [--speech 1.5] [--size 128]

Baseline (what a client does without the chain): POST an LTX-2 image-to-video job, poll it every second,
download its mp4, upload it again through presign, POST a Wav2Lip job on it and the speech, poll every second.
Chain: POST one talking_video job with the same photo, speech and LTX-2 fields, poll every second (the same
client behaviour; a second row waits on the event stream instead). Both real pipelines on tiny random weights,
on CPU. Rounds alternate the two, so drift on a shared machine hits both alike; medians are compared.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import ray
from PIL import Image
from ray import serve
from scipy.io import wavfile

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
TERMINAL = {"completed", "failed", "cancelled"}
POLL_S = 1.0


def inputs(speech_s: float) -> tuple[bytes, bytes]:
    """A face photo (skimage's astronaut, 256 px) and speech-like audio, as PNG and 16 kHz WAV bytes."""
    from tests.deployments.wav2lip.wav2lip_inputs import astronaut, speech_like

    photo, sound = io.BytesIO(), io.BytesIO()
    Image.fromarray(astronaut()[..., ::-1]).save(photo, format="PNG")
    wavfile.write(sound, 16_000, (speech_like(speech_s) * 32767).astype(np.int16))
    return photo.getvalue(), sound.getvalue()


def upload(client: httpx.Client, kind: str, content_type: str, data: bytes) -> str:
    body = {"input_type": kind, "content_type": content_type, "size": len(data)}
    presign = client.post("/api/v1/presign/upload", json=body)
    presign.raise_for_status()
    httpx.put(presign.json()["upload_url"], content=data, headers={"Content-Type": content_type}).raise_for_status()
    return presign.json()["key"]


def submit(client: httpx.Client, body: dict[str, Any]) -> str:
    response = client.post("/api/v1/generate", json=body)
    if response.status_code != 201:
        raise RuntimeError(f"{body['model']} refused: {response.text}")
    return response.json()["job_id"]


def poll(client: httpx.Client, job_id: str) -> dict[str, Any]:
    """The job once it ends, polled every second as a simple client would."""
    while True:
        job = client.get(f"/api/v1/jobs/{job_id}").json()
        if job["status"] in TERMINAL:
            if job["status"] != "completed":
                raise RuntimeError(f"job {job_id} {job['status']}: {job.get('error_message')}")
            return job
        time.sleep(POLL_S)


def wait_events(client: httpx.Client, job_id: str) -> dict[str, Any]:
    """The job once its event stream says it is done."""
    with client.stream("GET", f"/api/v1/jobs/{job_id}/events", timeout=httpx.Timeout(600)) as response:
        for line in response.iter_lines():
            if line.startswith("data: ") and '"completed_at"' in line:  # the done event carries the job view
                return json.loads(line.removeprefix("data: "))
    raise RuntimeError(f"the event stream of {job_id} ended early")


def run_seconds(job: dict[str, Any]) -> float:
    """How long a job ran on its model (started to completed)."""
    started, completed = (datetime.fromisoformat(job[k]) for k in ("started_at", "completed_at"))
    return (completed - started).total_seconds()


def client_pair(client: httpx.Client, photo: bytes, speech: bytes, ltx2: dict[str, Any]) -> tuple[float, float]:
    """(seconds from the first upload to the lip-synced job's end, seconds the two jobs ran on their models)."""
    start = time.perf_counter()
    image_key, audio_key = upload(client, "image", "image/png", photo), upload(client, "audio", "audio/wav", speech)
    animated = poll(client, submit(client, {"model": "ltx2", "image_key": image_key, **ltx2}))
    clip = httpx.get(animated["result_url"], timeout=120).content
    video_key = upload(client, "video", "video/mp4", clip)
    body = {"model": "wav2lip", "video_key": video_key, "audio_key": audio_key, "sync_mode": "cut_off"}
    synced = poll(client, submit(client, body))
    return time.perf_counter() - start, run_seconds(animated) + run_seconds(synced)


def chain(
    client: httpx.Client, photo: bytes, speech: bytes, fields: dict[str, Any], wait: Callable
) -> tuple[float, float]:
    """(seconds from the first upload to the talking-video job's end, seconds its stages ran on their models)."""
    start = time.perf_counter()
    image_key, audio_key = upload(client, "image", "image/png", photo), upload(client, "audio", "audio/wav", speech)
    body = {"model": "talking_video", "image_key": image_key, "audio_key": audio_key, **fields}
    job = wait(client, submit(client, body))
    total = time.perf_counter() - start
    if job["status"] != "completed":
        raise RuntimeError(f"talking video {job['job_id']} {job['status']}: {job.get('error_message')}")
    return total, sum(stage["seconds"] for stage in job["details"]["stages"])


def deploy(base: str) -> httpx.Client:
    from serve_app.app import build_app
    from serve_app.catalogue import AppArgs

    placement = {"num_cpus": 0, "min_replicas": 1, "max_replicas": 1, "graceful_shutdown_timeout_s": 1}
    tiny = {"allow_random_weights": True, "device": "cpu", "placement": placement}
    args = AppArgs.model_validate(
        {
            "storage": {"local_dir": tempfile.mkdtemp(prefix="bench-tv-"), "public_base_url": base + "/tv"},
            "gateway": {"num_cpus": 0},
            "queue_num_cpus": 0,
            "ltx2": tiny,
            "wav2lip": {**tiny, "batch_size": 8},
            "talking_video": {"placement": placement},
        }
    )
    serve.run(build_app(args), name="tv", route_prefix="/tv")
    return httpx.Client(base_url=base + "/tv", headers={"Authorization": "Bearer bench-key"}, timeout=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--speech", type=float, default=2.0, help="speech seconds (the clip's length)")
    parser.add_argument("--size", type=int, default=192, help="LTX-2 width and height")
    opts = parser.parse_args()

    os.environ["API_KEYS"] = "bench-key"
    os.environ["PYTHONPATH"] = str(REPO)
    ray.init(address="local", num_cpus=8, include_dashboard=False, log_to_driver=False)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    client = deploy(f"http://127.0.0.1:{port}")
    photo, speech = inputs(opts.speech)
    fps = 24
    frames = 8 * max(1, -(-round(opts.speech * fps - 1) // 8)) + 1  # the chain's snapped-up clip, for equal work
    ltx2 = {"prompt": "A person talking to the camera", "width": opts.size, "height": opts.size, "fps": fps,
            "duration": (frames - 1) / fps, "seed": 1}  # fmt: skip
    fields = {"width": opts.size, "height": opts.size, "fps": fps, "seed": 1, "prompt": ltx2["prompt"]}

    chain(client, photo, speech, fields, poll)  # warm-up: first runs pay lazy imports and the face detector
    client_pair(client, photo, speech, ltx2)
    times: dict[str, list[tuple[float, float]]] = {"pair": [], "chain, polled": [], "chain, events": []}
    for _ in range(opts.rounds):
        times["pair"].append(client_pair(client, photo, speech, ltx2))
        times["chain, polled"].append(chain(client, photo, speech, fields, poll))
        times["chain, events"].append(chain(client, photo, speech, fields, wait_events))
    serve.shutdown()
    ray.shutdown()
    write_results(times, opts, frames)


def write_results(times: dict[str, list[tuple[float, float]]], opts: argparse.Namespace, frames: int) -> None:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    pair = statistics.median(total for total, _ in times["pair"])
    lines = [
        "# Talking video: one chained job vs the client-driven pair",
        "",
        f"Machine: {cpu}, {os.cpu_count()} cores, CPU only (no GPU); Python {platform.python_version()}, "
        f"Ray {ray.__version__}. Tiny random LTX-2 and Wav2Lip on CPU, {opts.size}x{opts.size}, {frames} frames "
        f"at 24 fps for {opts.speech:g} s of speech; {opts.rounds} alternating rounds after one warm-up each.",
        "",
        f"Command: `PYTHONPATH=. .venv/bin/python bench/talking_video.py --rounds {opts.rounds} "
        f"--speech {opts.speech:g} --size {opts.size}`",
        "",
        "| path | median s | each run s | vs pair | median s on the models | median s around them |",
        "|---|---|---|---|---|---|",
    ]
    for name, values in times.items():
        median = statistics.median(total for total, _ in values)
        work = statistics.median(run for _, run in values)
        around = statistics.median(total - run for total, run in values)
        each = ", ".join(f"{total:.1f}" for total, _ in values)
        lines.append(f"| {name} | {median:.1f} | {each} | {median / pair:.2f}x | {work:.1f} | {around:.1f} |")
    lines += [
        "",
        "pair: LTX-2 job polled every second, its mp4 downloaded and uploaded again, then a Wav2Lip job polled "
        "every second. chain, polled: one talking_video job polled every second. chain, events: the same job "
        "awaited on its SSE stream. On the models: the stage jobs' own run time (started to completed); around "
        "them: the rest (uploads, queueing, polling or events, the client's download and re-upload, the "
        "coordinator).",
    ]
    out = REPO / "bench" / "results_talking_video.md"
    out.write_text("\n".join(lines) + "\n")
    print(out.read_text())
    print(json.dumps(times))


if __name__ == "__main__":
    main()

"""Every corpus file (tests/media_corpus.py) through every upload field of every model on the real served app:
a hostile file gets a 4xx naming the field and never a 500; an odd but valid one is accepted and its job
completes in one attempt (its orientation and length are checked where it is read: tests/deployments/
test_media_limits.py); /health stays 200; the gateway replica's memory stays bounded while it stages the bombs;
a staged input swapped for a bomb fails its job once, as invalid_image, with a message that leaks nothing.
Runners are fakes (no GPU here); the image-reading one reads the staged image as a model does."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from tests.conftest import SharedApp, app_args, deploy_app, wait_terminal, wait_until
from tests.media_corpus import Sample, hostile, mp4, odd_but_valid, wav
from tests.media_files import face_png_bytes, png_bytes

READER = "tests.serve_app.storage.reading_runner:ImageReadingRunner"
ONE_REPLICA = {"num_cpus": 0, "min_replicas": 1, "max_replicas": 1}
LEAKS = re.compile(r"ray::|pid=|\b\d{1,3}(\.\d{1,3}){3}\b|\x1b\[|/tmp/|/home/")


@pytest.fixture(scope="module")
def hostile_app(serve_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharedApp]:
    from ray import serve

    data = tmp_path_factory.mktemp("hostile") / "data"
    storage = {"backend": "local", "local_dir": str(data), "public_base_url": f"{serve_url}/hostile"}
    args = app_args(storage, runner=READER)
    args["ltx2"]["placement"] = ONE_REPLICA  # one job at a time: a held job keeps the next one queued
    args["talking_video"] = {"enabled": True, "placement": {"num_cpus": 0, "min_replicas": 1, "max_replicas": 1}}
    client = deploy_app(args, serve_url, name="hostile", prefix="/hostile")
    yield SharedApp(client, data)
    client.close()
    serve.delete("hostile")


def upload(client: httpx.Client, kind: str, sample: Sample) -> str:
    subtype = sample.content_type.split("/")[1]  # declared as the field's kind: the bytes decide, not the label
    body = {"input_type": kind, "content_type": f"{kind}/{subtype}", "size": len(sample.data)}
    presign = client.post("/api/v1/presign/upload", json=body)
    assert presign.status_code == 200, presign.text
    put = httpx.put(presign.json()["upload_url"], content=sample.data, timeout=30)
    assert put.status_code == 200, put.text
    return presign.json()["key"]


def companions(client: httpx.Client) -> dict[str, str]:
    """Valid uploads for the other fields of a request: a face photo, speech, a face video."""
    valid = {
        "image": Sample("face", face_png_bytes(), "image/png"),
        "audio": Sample("speech", wav(seconds=1.0), "audio/wav"),
        "video": Sample("clip", mp4(), "video/mp4"),
    }
    return {kind: upload(client, kind, sample) for kind, sample in valid.items()}


# model, field, kind, the rest of the body (upload keys of other kinds named by kind)
FIELDS: list[tuple[str, str, str, dict[str, Any]]] = [
    ("ltx2", "image_key", "image", {"prompt": "a walk"}),
    ("ltx2", "end_image_key", "image", {"prompt": "a walk"}),
    ("ltx2", "video_key", "video", {"prompt": "a walk", "extend": "end", "duration": 1}),
    ("wav2lip", "image_key", "image", {"audio_key": "audio"}),
    ("wav2lip", "video_key", "video", {"audio_key": "audio"}),
    ("wav2lip", "audio_key", "audio", {"video_key": "video"}),
    ("talking_video", "image_key", "image", {"audio_key": "audio", "prompt": "hello"}),
    ("talking_video", "audio_key", "audio", {"image_key": "image", "prompt": "hello"}),
]


def body(model: str, field: str, key: str, rest: dict[str, Any], others: dict[str, str]) -> dict[str, Any]:
    filled = {name: others[value] if name.endswith("_key") else value for name, value in rest.items()}
    return {"model": model, field: key, **filled}


class PeakRSS:
    """Samples one process's resident memory every 20 ms while in use: the gateway replica's."""

    def __init__(self, pid: int) -> None:
        self.process, self.peak, self._stop = psutil.Process(pid), 0, threading.Event()
        self.idle = self.process.memory_info().rss
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(0.02)

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def gateway_pid() -> int:
    """The gateway replica of app `hostile`: Ray titles each actor's process `ray::<actor class>`."""
    found = [
        p.pid
        for p in psutil.process_iter(["cmdline"])
        if any("ServeReplica:hostile:Gateway" in part for part in p.info["cmdline"] or [])
    ]
    assert len(found) == 1, f"gateway replica processes of app `hostile`: {found}"
    return found[0]


def test_every_file_through_every_media_field(hostile_app):
    client = hostile_app.client
    others = companions(client)
    samples = [*hostile(), *odd_but_valid()]
    keys = {(s.name, kind): upload(client, kind, s) for s in samples for kind in ("image", "video", "audio")}
    # the gateway loads Wav2Lip's face detector (and torch) on its first face check: not a cost of any input
    warm = client.post(
        "/api/v1/generate", json={"model": "wav2lip", "image_key": others["image"], "audio_key": others["audio"]}
    )
    assert warm.status_code == 201, warm.text
    wrong, created = [], []
    with PeakRSS(gateway_pid()) as memory:
        for sample in samples:
            for model, field, kind, rest in FIELDS:
                started = time.monotonic()
                answer = client.post("/api/v1/generate", json=body(model, field, keys[sample.name, kind], rest, others))
                seconds = time.monotonic() - started
                verdict = judge(sample, model, field, kind, answer, seconds)
                if verdict == "created":
                    created.append((sample.name, model, field, answer.json()["job_id"]))
                elif verdict != "refused":
                    wrong.append(f"{sample.name} -> {model}.{field}: {verdict}")
    assert wrong == []
    assert (memory.peak - memory.idle) / 2**20 < 500, f"gateway RSS {memory.idle >> 20} -> {memory.peak >> 20} MiB"
    for name, model, field, job_id in created:
        job = wait_terminal(client, job_id, timeout_s=120)
        assert (job["status"], job["attempts"]) == ("completed", 1), (name, model, field, job)
    assert {model for _, model, _, _ in created} >= {"ltx2", "wav2lip", "talking_video"}
    assert client.get("/health").status_code == 200


def judge(sample: Sample, model: str, field: str, kind: str, answer: httpx.Response, seconds: float) -> str:
    """'created', 'refused', or what was wrong with the answer."""
    if answer.status_code >= 500:
        return f"{answer.status_code} {answer.text[:300]}"
    if seconds > 5:  # a refusal within a second on a quiet machine; generous for a loaded 2-core box
        return f"answered in {seconds:.1f} s"
    if answer.status_code == 201:
        return "created" if kind in sample.valid_as else f"accepted a hostile file: {answer.text[:200]}"
    message = answer.json().get("error", {}).get("message", "")
    if not 400 <= answer.status_code < 500 or not message.startswith(field):
        return f"{answer.status_code} not naming {field}: {message[:300]}"
    if LEAKS.search(message):
        return f"leaks: {message[:300]}"
    if kind in sample.valid_as and not re.search(r"no face|limit", message):
        return f"refused a valid file without a documented limit: {message[:300]}"
    return "refused"


def test_a_staged_image_swapped_for_a_bomb_fails_once_as_invalid_image(hostile_app, tmp_path):
    client, release = hostile_app.client, tmp_path / "release"
    held = client.post("/api/v1/generate", json={"model": "ltx2", "prompt": f"hold:{release}"}).json()["job_id"]
    good = upload(client, "image", Sample("photo", png_bytes(), "image/png"))
    job_id = client.post("/api/v1/generate", json={"model": "ltx2", "prompt": "go", "image_key": good}).json()["job_id"]
    staged = wait_until(lambda: list((hostile_app.data_dir / "jobs" / job_id / "inputs").glob("image.*")), bool, 30)
    bomb = next(s for s in hostile() if s.name == "png_bomb")
    staged[0].write_bytes(bomb.data)  # swapped after staging, before the replica reads it
    release.touch()
    assert wait_terminal(client, held, timeout_s=60)["status"] == "completed"
    job = wait_terminal(client, job_id, timeout_s=60)
    assert (job["status"], job["error_code"], job["attempts"]) == ("failed", "invalid_image", 1), job
    assert not LEAKS.search(job["error_message"]) and "image" in job["error_message"], job["error_message"]


def test_an_upload_over_the_size_limit_is_413_and_nothing_is_stored(hostile_app):
    """A presign over the largest audio file any model takes (200 MiB, inputs.max_input_mb) gets no URL; a URL
    signed for a small file refuses a bigger body, declared or chunked, before storing a byte."""
    client, limit = hostile_app.client, 200 * 1024 * 1024
    slot = {"input_type": "audio", "content_type": "audio/wav"}
    refused = client.post("/api/v1/presign/upload", json=slot | {"size": limit + 1})
    assert refused.status_code == 413 and f"over the {limit} byte limit" in refused.text, refused.text
    presign = client.post("/api/v1/presign/upload", json=slot | {"size": 1024}).json()
    too_big = b"\0" * (8 * 1024 * 1024)
    answer = httpx.put(presign["upload_url"], content=too_big, timeout=60)
    assert answer.status_code == 413, answer.text
    assert not any(hostile_app.data_dir.glob(presign["key"] + "*")), "the refused body was stored"
    chunked = httpx.put(presign["upload_url"], content=iter([too_big[:1000], too_big[1000:]]), timeout=60)
    assert chunked.status_code == 413, chunked.text
    assert not (hostile_app.data_dir / presign["key"]).exists()


def test_a_chained_input_over_a_stage_models_limit_is_a_422_at_submit(deploy, local_storage):
    """48 kHz speech is within talking_video's own limits but over this Wav2Lip's (16 kHz here): the talking_video
    job is refused at submit naming its `audio_key` and Wav2Lip's limit, and nothing of it is kept."""
    chain = {"enabled": True, "placement": {"num_cpus": 0, "min_replicas": 1, "max_replicas": 1}}
    tight = {"limits": {"audio": {"max_sample_rate": 16_000}}}
    client = deploy(app_args(local_storage, talking_video=chain, wav2lip=tight))
    photo = upload(client, "image", Sample("face", face_png_bytes(), "image/png"))
    speech = upload(client, "audio", Sample("speech", wav(rate=48_000), "audio/wav"))
    answer = client.post("/api/v1/generate", json={"model": "talking_video", "image_key": photo, "audio_key": speech})
    assert answer.status_code == 422, answer.text
    fields = answer.json()["error"]["fields"]
    assert fields[0]["field"] == "audio_key" and "wav2lip.limits.audio.max_sample_rate" in fields[0]["message"], fields
    jobs = Path(local_storage["local_dir"]) / "jobs"
    assert not jobs.exists() or not any(jobs.iterdir()), "the refused job left files behind"

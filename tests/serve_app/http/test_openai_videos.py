"""The OpenAI Videos API surface (`/v1/videos`) with the real `openai` SDK against the real served app: LTX-2,
Wav2Lip and the talking-video chain on tiny random weights (CPU), real HTTP through Serve's proxy, local storage.

openai 3.x sends every create as multipart; 2.2-2.26 send JSON. The pinned 3.x is imported here; 2.26 runs in a
subprocess from its own folder (`make install` puts it in `.venv/openai-json-sdk`)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import av
import httpx
import numpy as np
import openai
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from scipy.io import wavfile

from deployments.previews import sheet_layout
from tests.conftest import API_KEY, OTHER_KEY, SharedApp, app_args, deploy_app, wait_until
from tests.deployments.wav2lip.wav2lip_inputs import astronaut, speech_like

# The SDK marks every videos method deprecated (OpenAI shut the hosted API down); nothing else is filtered.
pytestmark = pytest.mark.filterwarnings("ignore:The Sora API is scheduled to permanently shut down:DeprecationWarning")

APP = "oai"
JSON_SDK = Path(sys.prefix) / "openai-json-sdk"  # openai 2.26, installed there by `make install`
MODELS = {
    "ltx2": {"allow_random_weights": True, "device": "cpu", "max_side": 256, "max_duration_s": 4},
    "wav2lip": {"allow_random_weights": True, "device": "cpu", "batch_size": 8},
    "talking_video": {"enabled": True, "placement": {"num_cpus": 0, "min_replicas": 1, "max_replicas": 1}},
}
SMALL = {"size": "64x64", "seconds": "1", "extra_body": {"fps": 8}}  # 9 frames of 64x64: seconds on CPU


@pytest.fixture(scope="module")
def app(serve_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharedApp]:
    from ray import serve

    data = tmp_path_factory.mktemp(APP) / "data"
    storage = {"backend": "local", "local_dir": str(data), "public_base_url": f"{serve_url}/{APP}"}
    args = app_args(storage)
    for model, values in MODELS.items():
        placement = {**args["ltx2"]["placement"], **values.get("placement", {})}
        args[model] = {**values, "placement": placement}
    client = deploy_app(args, serve_url, name=APP, prefix=f"/{APP}")
    client.timeout = httpx.Timeout(120)
    yield SharedApp(client, data)
    client.close()
    serve.delete(APP)


def sdk(app: SharedApp, key: str = API_KEY) -> openai.OpenAI:
    """The official client, pointed at this app; no retries, so a test sees the first answer."""
    return openai.OpenAI(base_url=v1_url(app), api_key=key, max_retries=0, timeout=120)


def v1_url(app: SharedApp) -> str:
    return str(app.client.base_url).rstrip("/") + "/v1"


def png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image[..., ::-1]).save(buffer, format="PNG")
    return buffer.getvalue()


def upload_speech(app: SharedApp, seconds: float) -> str:
    """A speech track uploaded through /api/v1 (the SDK sends only `input_reference` as a file): its key."""
    buffer = io.BytesIO()
    wavfile.write(buffer, 16_000, (speech_like(seconds) * 32767).astype(np.int16))
    slot = {"input_type": "audio", "content_type": "audio/wav", "size": len(buffer.getvalue())}
    presign = app.client.post("/api/v1/presign/upload", json=slot)
    put = httpx.put(presign.json()["upload_url"], content=buffer.getvalue(), headers={"Content-Type": "audio/wav"})
    assert put.status_code == 200, put.text
    return presign.json()["key"]


def stream_kinds(data: bytes) -> list[str]:
    with av.open(io.BytesIO(data)) as container:
        return sorted(stream.type for stream in container.streams)


def assert_previews(client: openai.OpenAI, video_id: str) -> None:
    """The video's thumbnail is a decodable WebP, its spritesheet a JPEG with the grid its frames give."""
    video = client.videos.download_content(video_id, variant="video").content
    with av.open(io.BytesIO(video)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        expected = sheet_layout(frames, stream.codec_context.width, stream.codec_context.height).size
    with Image.open(io.BytesIO(client.videos.download_content(video_id, variant="thumbnail").content)) as poster:
        assert poster.format == "WEBP"
        poster.load()
    with Image.open(io.BytesIO(client.videos.download_content(video_id, variant="spritesheet").content)) as sheet:
        assert (sheet.format, sheet.size) == ("JPEG", expected)


def test_create_and_poll_text_to_video_then_download_all_three_variants(app):
    client = sdk(app)
    video = client.videos.create_and_poll(model="ltx-2", prompt="a red ball", poll_interval_ms=200, **SMALL)

    assert (video.status, video.object, video.model, video.progress) == ("completed", "video", "ltx-2", 100), video
    assert (video.size, video.seconds, video.prompt, video.error) == ("64x64", "1", "a red ball", None)
    assert video.completed_at >= video.created_at
    content = client.videos.download_content(video.id, variant="video").content
    assert stream_kinds(content) == ["audio", "video"]
    assert_previews(client, video.id)


def test_create_with_an_input_reference_file_is_image_to_video(app):
    client = sdk(app)
    photo = ("face.png", png(astronaut(64)), "image/png")
    video = client.videos.create(model="ltx-2", prompt="a face", input_reference=photo, **SMALL)

    assert video.status == "queued", video
    job = app.client.get(f"/api/v1/jobs/{video.id}").json()  # the same job on both surfaces
    assert job["params"]["image_to_video"] is True, job
    assert job["labels"] == {"api": "openai", "model": "ltx-2", "prompt": "a face"}


def test_the_same_seed_gives_the_same_params_in_multipart_and_in_json(app):
    client = sdk(app)
    first = client.videos.create(
        model="ltx-2", prompt="seeded", size="64x64", seconds="1", extra_body={"seed": 7, "fps": 8}
    )
    script = (
        "import json, openai, sys\n"
        "c = openai.OpenAI(base_url=sys.argv[1], api_key=sys.argv[2], max_retries=0)\n"
        "v = c.videos.create(model='ltx-2', prompt='seeded', size='64x64', seconds=1,\n"
        "                    extra_body={'seed': 7, 'fps': 8})\n"
        "print(json.dumps({'version': openai.__version__, 'id': v.id}))\n"
    )
    assert (JSON_SDK / "openai").is_dir(), f"openai 2.26 is not installed in {JSON_SDK}; run `make install`"
    env = {**os.environ, "PYTHONPATH": str(JSON_SDK), "PYTHONWARNINGS": "ignore::DeprecationWarning"}
    run = subprocess.run(
        [sys.executable, "-c", script, v1_url(app), API_KEY],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    second = json.loads(run.stdout)
    assert second["version"].startswith("2.26"), second  # a JSON-sending release (seconds an integer)

    params = [app.client.get(f"/api/v1/jobs/{job_id}").json()["params"] for job_id in (first.id, second["id"])]
    assert params[0]["seed"] == 7 and params[0] == params[1], params


def test_list_pages_with_after(app):
    client = sdk(app)
    made = [client.videos.create(model="ltx2", prompt=f"page {i}", **SMALL).id for i in range(3)]

    first = client.videos.list(limit=2)
    assert [v.id for v in first.data] == made[::-1][:2]  # newest first
    assert first.has_more and first.last_id == made[1]
    after = client.videos.list(limit=2, after=first.last_id)
    assert after.data[0].id == made[0], [v.id for v in after.data]
    seen = [v.id for v in client.videos.list(limit=2)]  # the SDK follows `after` page by page
    assert seen[:3] == made[::-1] and len(seen) == len(set(seen))


def test_an_idempotency_key_makes_a_retried_multipart_create_the_same_video(app):
    client = sdk(app)
    photo = ("face.png", png(astronaut(64)), "image/png")
    request = {"model": "ltx-2", "prompt": "once", "input_reference": photo, **SMALL}
    first = client.videos.create(**request, extra_headers={"Idempotency-Key": "retry-1"})
    again = client.videos.create(**request, extra_headers={"Idempotency-Key": "retry-1"})
    assert again.id == first.id  # the file is stored under its content hash: the same body both times
    other = client.videos.create(**request)
    assert other.id != first.id


def test_the_v1_routes_are_documented_beside_api_v1(app):
    paths = app.client.get("/openapi.json").json()["paths"]
    assert {"/v1/videos", "/v1/videos/{video_id}", "/v1/videos/{video_id}/content",
            "/v1/videos/{video_id}/remix"} <= set(paths)  # fmt: skip
    create = paths["/v1/videos"]["post"]
    assert create["tags"] == ["openai"] and set(create["requestBody"]["content"]) == {
        "application/json",
        "multipart/form-data",
    }
    assert paths["/api/v1/generate"]["post"]["tags"] == ["jobs"]


def test_another_keys_video_is_a_404_in_openai_envelope(app):
    video = sdk(app).videos.create(model="ltx-2", prompt="mine", **SMALL)
    with pytest.raises(openai.NotFoundError) as caught:
        sdk(app, OTHER_KEY).videos.retrieve(video.id)
    assert caught.value.status_code == 404
    assert caught.value.body["type"] == "not_found" and "message" in caught.value.body, caught.value.body
    with pytest.raises(openai.AuthenticationError):
        sdk(app, "not-a-key").videos.retrieve(video.id)


@pytest.mark.parametrize(
    ("fields", "param", "says"),
    [
        ({"size": "100x100"}, "size", "nearest allowed: 96x96"),
        ({"size": "4096x4096"}, "size", "nearest allowed: 256x256"),
        ({"size": "wide"}, "size", "{width}x{height}"),
        ({"seconds": "9"}, "seconds", "nearest allowed: 4"),
        ({"model": "ltx-2.5"}, "model", "serves ltx-2, ltx2, wav2lip, talking_video"),
        ({"extra_body": {"colour": "red"}}, "colour", "unknown field"),
        ({"extra_body": {"seed": -1}}, "seed", "greater than or equal to 0"),
    ],
)
def test_a_bad_field_is_a_bad_request_naming_it(app, fields, param, says):
    request = {"model": "ltx-2", "prompt": "x", **fields}
    with pytest.raises(openai.BadRequestError) as caught:
        sdk(app).videos.create(**request)
    assert (caught.value.param, caught.value.type) == (param, "invalid_request_error"), caught.value.body
    assert says in caught.value.message, caught.value.message


def test_wav2lip_and_talking_video_jobs_have_previews(app):
    client = sdk(app)
    photo = ("face.png", png(astronaut()), "image/png")
    synced = client.videos.create(model="wav2lip", prompt="-", input_reference=photo,
                                  extra_body={"audio": upload_speech(app, 0.4)})  # fmt: skip
    talking = client.videos.create(
        model="talking_video",
        prompt="a person talking",
        size="64x64",
        input_reference=photo,
        extra_body={"audio": upload_speech(app, 0.5), "fps": 8, "seed": 1},
    )
    for video in (synced, talking):
        done = client.videos.poll(video.id, poll_interval_ms=200)
        assert done.status == "completed", done
        assert_previews(client, video.id)
        job = app.client.get(f"/api/v1/jobs/{video.id}").json()  # /api/v1 lists them as signed URLs
        for kind, media_type in (("thumbnail_url", "image/webp"), ("spritesheet_url", "image/jpeg")):
            download = httpx.get(job[kind], timeout=30)
            assert (download.status_code, download.headers["content-type"]) == (200, media_type), job


def test_delete_removes_the_video_and_cancels_a_running_one_first(app):
    client = sdk(app)
    done = client.videos.create_and_poll(model="ltx-2", prompt="to delete", poll_interval_ms=200, **SMALL)
    running = client.videos.create(model="ltx-2", prompt="still running", size="256x256", seconds="4")

    for video in (done, running):
        deleted = client.videos.delete(video.id)
        assert (deleted.id, deleted.deleted, deleted.object) == (video.id, True, "video.deleted")
        with pytest.raises(openai.NotFoundError):
            client.videos.retrieve(video.id)
        with pytest.raises(openai.NotFoundError):
            client.videos.download_content(video.id)
        assert not (app.data_dir / "jobs" / video.id).exists()
    assert done.id not in [v.id for v in client.videos.list(limit=100).data]


def test_remix_extends_the_source_video_and_names_it(app):
    client = sdk(app)
    source = client.videos.create_and_poll(model="ltx-2", prompt="a calm sea", poll_interval_ms=200, **SMALL)
    remix = client.videos.remix(source.id, prompt="a storm comes")
    assert remix.remixed_from_video_id == source.id, remix

    done = client.videos.poll(remix.id, poll_interval_ms=200)
    assert (done.status, done.prompt, done.remixed_from_video_id) == ("completed", "a storm comes", source.id), done
    job = app.client.get(f"/api/v1/jobs/{remix.id}").json()
    assert job["params"]["extend"] == "end", job["params"]
    with av.open(io.BytesIO(client.videos.download_content(remix.id).content)) as container:
        frames = sum(1 for _ in container.decode(video=0))
    assert frames > 9, frames  # the source's 9 frames, and more after them


def test_a_v1_job_sends_openais_signed_webhook_event(app, webhook_receiver):
    video = sdk(app).videos.create_and_poll(
        model="ltx-2", prompt="hooked", size="64x64", seconds="1",
        extra_body={"fps": 8, "webhook_url": webhook_receiver.url}, poll_interval_ms=200,
    )  # fmt: skip
    delivery = wait_until(lambda: webhook_receiver.deliveries, bool, timeout_s=30)[0]
    assert delivery["valid"], delivery["headers"]
    body = delivery["body"]
    assert (body["type"], body["object"], body["data"]) == ("video.completed", "event", {"id": video.id}), body


# ---- fuzz: whatever a client sends to /v1, the answer is never a 5xx, and every error is in OpenAI's envelope ----

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)
STANDARD = {
    "model": st.sampled_from(["ltx-2", "ltx2", "wav2lip", "talking_video", "ltx-2.5", "sora-2"]) | VALUES,
    "prompt": st.text(max_size=40) | VALUES,
    "seconds": st.sampled_from(["1", "0", "-1", "1e9", "nan", "inf", "0.4", "4"]) | VALUES,
    "size": st.sampled_from(["64x64", "0x0", "99999x1", "x", "64X64", " 64 x 64 "]) | VALUES,
    "input_reference": st.sampled_from([{"file_id": "uploads/x/y.png"}, {"image_url": "data:,"}, {}]) | VALUES,
}
EXTRA_NAMES = st.sampled_from(["seed", "fps", "quality", "audio", "negative_prompt", "generate_audio", "width", "pads"])
BODIES = st.fixed_dictionaries({}, optional=STANDARD).flatmap(
    lambda standard: st.dictionaries(EXTRA_NAMES | st.text(max_size=10), VALUES, max_size=3).map(
        lambda extra: {**extra, **standard}
    )
)


def assert_openai_answer(response: httpx.Response) -> None:
    assert response.status_code < 500, (response.status_code, response.text)
    if response.status_code >= 400:
        error = response.json()["error"]
        assert set(error) == {"message", "type", "param", "code"} and error["message"], error


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=BODIES, as_form=st.booleans(), file=st.none() | st.binary(max_size=64))
def test_no_create_body_gets_a_5xx(app, body, as_form, file):
    headers = {"Authorization": f"Bearer {OTHER_KEY}"}
    with httpx.Client(base_url=v1_url(app), headers=headers, timeout=60) as client:
        if as_form:  # multipart, as openai>=2.27 sends: every value a text part, files as file parts
            parts = [(name, (None, v if isinstance(v, str) else json.dumps(v))) for name, v in body.items()]
            if file is not None:
                parts.append(("input_reference", ("f.png", file, "image/png")))
            response = client.post("/videos", files=parts or [("prompt", (None, ""))])
        else:
            response = client.post("/videos", json=body)
    assert_openai_answer(response)


@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    video_id=st.text(min_size=1, max_size=60),
    variant=st.sampled_from(["video", "thumbnail", "spritesheet"]) | st.text(max_size=12),
    after=st.none() | st.text(max_size=60),
    limit=st.integers(-5, 200),
    order=st.sampled_from(["asc", "desc"]) | st.text(max_size=6),
)
def test_no_read_gets_a_5xx(app, video_id, variant, after, limit, order):
    with httpx.Client(base_url=v1_url(app), headers={"Authorization": f"Bearer {OTHER_KEY}"}, timeout=60) as client:
        quoted = f"/videos/{quote(video_id, safe='')}"
        responses = [
            client.get(quoted),
            client.get(f"{quoted}/content", params={"variant": variant}),
            client.get("/videos", params={"limit": limit, "order": order, **({"after": after} if after else {})}),
        ]
    for response in responses:
        assert_openai_answer(response)

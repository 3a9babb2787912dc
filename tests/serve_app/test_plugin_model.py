"""A third model, defined under tests/ and served through the same catalogue: its request fields are in
/openapi.json, its input is staged from an upload, its job runs end to end over HTTP, and its 422s name its
own fields. Nothing under serve_app/ names it (tests/test_layering.py checks that)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import av
import httpx
import pytest
from PIL import Image

from serve_app.catalogue import CATALOGUE
from tests.conftest import app_args, deploy_app, wait_terminal
from tests.plugin_model.spec import SPEC as FLIPBOOK

WITH_FLIPBOOK = CATALOGUE.with_models(FLIPBOOK)


def png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (90, 60, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def client(serve_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """The app with a three-model catalogue, at /plugins for this module."""
    from ray import serve

    data = tmp_path_factory.mktemp("plugins") / "data"
    args = app_args({"backend": "local", "local_dir": str(data), "public_base_url": f"{serve_url}/plugins"})
    args["flipbook"] = {"max_frames": 12, "max_side": 128, "placement": args["ltx2"]["placement"]}
    client = deploy_app(args, serve_url, name="plugins", prefix="/plugins", catalogue=WITH_FLIPBOOK)
    yield client
    client.close()
    serve.delete("plugins")


def upload(client: httpx.Client, body: bytes) -> str:
    slot = client.post(
        "/api/v1/presign/upload", json={"input_type": "image", "content_type": "image/png", "size": len(body)}
    )
    assert slot.status_code == 200, slot.text
    put = httpx.put(slot.json()["upload_url"], content=body, headers={"content-type": "image/png"})
    assert put.status_code == 200, put.text
    return slot.json()["key"]


def refusal(response: httpx.Response) -> list[str]:
    assert response.status_code == 422, response.text
    return [f["field"] for f in response.json()["error"]["fields"]]


def test_its_request_fields_are_documented_in_openapi_beside_the_other_models(client):
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    for spec in WITH_FLIPBOOK.only(("ltx2", "wav2lip", "flipbook")).specs:  # the models this app enables
        documented = schemas[spec.request.__name__]["properties"]
        for name, field in spec.request.model_fields.items():
            if name != "model":
                assert documented[name].get("description") == field.description, (spec.name, name)
    body = client.get("/openapi.json").json()["paths"]["/api/v1/generate"]["post"]["requestBody"]
    assert "FlipbookRequest" in str(body) and "LTX2Request" in str(body) and "Wav2LipRequest" in str(body)
    assert "TalkingVideoRequest" not in str(body)  # in the catalogue, but not enabled here: not offered


def test_a_job_with_an_uploaded_input_runs_end_to_end(client, tmp_path):
    key = upload(client, png(64, 48))
    created = client.post("/api/v1/generate", json={"model": "flipbook", "page_key": key, "frames": 6})
    assert created.status_code == 201, created.text
    assert created.json()["job_id"].startswith("flipbook-")
    assert created.json()["params"] == {"frames": 6, "brighten": 10}

    job = wait_terminal(client, created.json()["job_id"])
    assert job["status"] == "completed", job
    previews = {
        "thumbnail": f"jobs/{job['job_id']}/thumbnail.webp",
        "spritesheet": f"jobs/{job['job_id']}/spritesheet.jpg",
    }
    assert job["details"] == {"frames": 6, "size": [64, 48], "previews": previews} and job["weights"] == "none"
    assert httpx.get(job["thumbnail_url"]).headers["content-type"] == "image/webp"  # any model's video gets previews
    video = tmp_path / "flipbook.mp4"
    video.write_bytes(httpx.get(job["result_url"]).content)
    with av.open(str(video)) as container:
        frames = list(container.decode(video=0))
    assert len(frames) == 6
    assert frames[-1].to_ndarray(format="gray").mean() > frames[0].to_ndarray(format="gray").mean() + 30


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"frames": 13}, "frames"),  # plan: the deployment's own limit (max_frames 12)
        ({"frames": 1}, "frames"),  # schema: ge=2
        ({"brighten": "lots"}, "brighten"),
        ({"page_key": None}, "page_url"),  # exactly one of page_url, page_key
        ({"pages": 3}, "pages"),  # a key the model does not have
    ],
)
def test_bad_input_is_a_422_naming_its_own_field(client, body: dict[str, Any], field: str):
    request = {"model": "flipbook", "page_key": "uploads/x/page.png", **body}
    assert refusal(client.post("/api/v1/generate", json=request)) == [field]


def test_its_input_check_runs_on_the_staged_file_before_the_job_exists(client):
    key = upload(client, png(200, 100))  # over max_side 128
    response = client.post("/api/v1/generate", json={"model": "flipbook", "page_key": key})
    assert refusal(response) == ["page_key"]
    assert "200x100" in response.json()["error"]["message"]


def test_its_deployments_appear_in_serve_status_under_their_declared_names(client):
    from ray import serve

    deployments = serve.status().applications["plugins"].deployments
    assert {"FlipbookRenderer", "FlipbookQueue", "LTX2Generator", "Wav2LipQueue", "Gateway"} <= set(deployments)

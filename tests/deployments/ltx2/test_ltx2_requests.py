"""The LTX-2 request forms and their plan: the seeds' requests, sizes, keyframes, extension limits. Pure, no model."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from deployments.contract import StagedInput
from deployments.ltx2.args import DEFAULT_PROMPT, LTX2Args
from deployments.ltx2.request import LTX2Request
from deployments.ltx2.spec import SPEC, check_input, plan
from deployments.media import MediaInfo
from serve_app.errors import InvalidInput

ARGS = LTX2Args(allow_random_weights=True)
PNG, PNG2 = "https://example.com/first.png", "https://example.com/last.png"
VIDEO = StagedInput("video_url", "video", "video")


def planned(**body: Any) -> dict[str, Any]:
    return plan(LTX2Request.model_validate({"model": "ltx2", **body}), ARGS)


def refused_field(**body: Any) -> str:
    """The field a 422 names: a request-model error's `field:` prefix, or the plan's InvalidInput field."""
    try:
        planned(**body)
    except ValidationError as exc:
        (error,) = exc.errors()
        loc = [str(p) for p in error["loc"]]
        return ".".join(loc) if loc else str(error["msg"]).removeprefix("Value error, ").split(": ", 1)[0]
    except InvalidInput as exc:
        return exc.field
    raise AssertionError(f"{body} was accepted")


@pytest.mark.parametrize(("duration", "frames"), [(10, 241), (15, 361), (20, 481)])
def test_runpod_handler_input_is_accepted_with_its_frame_count(duration: int, frames: int) -> None:
    body = {
        "prompt": "a lighthouse at dusk",
        "type": "t2v",
        "mode": "fast",
        "width": 1920,
        "height": 1080,
        "duration": duration,
        "seed": 42,
        "camera_lora": "static",
    }
    params = planned(**body)
    assert (params["num_frames"], params["fps"], params["quality"], params["seed"]) == (frames, 24, "fast", 42)
    assert (params["width"], params["height"]) == (1920, 1088)  # 1080 snapped to a multiple of 32
    assert params["image_to_video"] is False and params["end_image"] is False and params["extend"] is None


def test_image_urls_first_and_last_without_prompt() -> None:
    request = LTX2Request.model_validate({"model": "ltx2", "type": "i2v", "image_urls": [PNG, PNG2]})
    assert (str(request.image_url), str(request.end_image_url), request.image_urls) == (PNG, PNG2, None)
    staged = [i.name for i in SPEC.inputs if getattr(request, i.field) is not None]
    assert staged == ["image", "end_image"]
    params = plan(request, ARGS)
    assert (params["image_to_video"], params["end_image"], params["prompt"]) == (True, True, DEFAULT_PROMPT)
    assert params["num_frames"] == 121  # the default 5 s at 24 fps


def test_image_urls_first_only_and_end_image_alone() -> None:
    first = planned(image_urls=[PNG], prompt="waves")
    assert (first["image_to_video"], first["end_image"], first["prompt"]) == (True, False, "waves")
    last = planned(end_image_key="uploads/k1/last.png", type="i2v")
    assert (last["image_to_video"], last["end_image"]) == (False, True)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"prompt": "x", "type": "i2v"}, "type"),  # i2v with no image
        ({"prompt": "x", "type": "t2v", "image_url": PNG}, "type"),
        ({"prompt": "x", "type": "t2v", "image_urls": [PNG]}, "type"),
        ({"prompt": "x", "type": "t2v", "video_url": "https://e.com/a.mp4"}, "type"),
        ({"prompt": "x", "type": "i2v", "video_url": "https://e.com/a.mp4"}, "type"),
        ({}, "prompt"),  # text-to-video needs its prompt
        ({"prompt": "x", "image_urls": [PNG], "image_url": PNG}, "image_urls"),
        ({"prompt": "x", "image_urls": [PNG, PNG2], "end_image_url": PNG2}, "image_urls"),
        ({"prompt": "x", "image_urls": [PNG, PNG2, PNG]}, "image_urls"),
        ({"prompt": "x", "image_urls": []}, "image_urls"),
        ({"prompt": "x", "end_image_url": PNG, "end_image_key": "uploads/k/a.png"}, "end_image_key"),
        ({"prompt": "x", "extend": "end"}, "extend"),  # nothing to extend
        ({"prompt": "x", "video_url": "https://e.com/a.mp4", "image_url": PNG}, "image_url"),
        ({"prompt": "x", "video_url": "https://e.com/a.mp4", "end_image_url": PNG}, "end_image_url"),
        ({"prompt": "x", "video_url": "https://e.com/a.mp4", "width": 640, "height": 480}, "width"),
        ({"prompt": "x", "video_key": "uploads/k/a.mp4", "aspect_ratio": "1:1"}, "aspect_ratio"),
        ({"prompt": "x", "video_url": "https://e.com/a.mp4", "video_key": "uploads/k/a.mp4"}, "video_key"),
        ({"prompt": "x", "extend": "middle", "video_url": "https://e.com/a.mp4"}, "extend"),
        ({"prompt": "x", "aspect_ratio": "16:9", "width": 640, "height": 360}, "aspect_ratio"),
        ({"prompt": "x", "aspect_ratio": "2:1"}, "aspect_ratio"),
        ({"prompt": "x", "aspect_ratio": "21:9", "resolution": "1080p"}, "aspect_ratio"),  # 2528 px > 1920
        ({"prompt": "x", "duration": 25}, "duration"),  # over the 20 s default limit
        ({"video_key": "uploads/k/a.mp4", "extend": "start"}, "duration"),  # an extension needs the seconds to add
        ({"prompt": "x", "type": "v2v"}, "type"),
    ],
)
def test_contradictions_are_refused_naming_the_field(body: dict[str, Any], field: str) -> None:
    assert refused_field(**body) == field


@pytest.mark.parametrize(
    ("aspect_ratio", "resolution", "size"),
    [
        ("16:9", None, (896, 512)),  # 480p's short side is 512: 910 px wide, snapped to 896
        ("9:16", "720p", (704, 1280)),
        ("1:1", "1080p", (1088, 1088)),
        ("4:3", "480p", (672, 512)),
        ("3:4", "720p", (704, 960)),
        ("21:9", "480p", (1184, 512)),
    ],
)
def test_aspect_ratio_with_resolution_as_short_side(
    aspect_ratio: str, resolution: str | None, size: tuple[int, int]
) -> None:
    body = {"prompt": "x", "aspect_ratio": aspect_ratio} | ({"resolution": resolution} if resolution else {})
    params = planned(**body)
    assert (params["width"], params["height"]) == size


def test_pro_snaps_aspect_ratio_to_64() -> None:
    params = planned(prompt="x", aspect_ratio="16:9", quality="pro")
    assert (params["width"], params["height"]) == (896, 512)
    assert planned(prompt="x", aspect_ratio="4:3", quality="pro")["width"] == 704  # 682.7 -> 11 x 64


def test_extension_plan_adds_8k_frames_at_the_end_and_8k_plus_1_at_the_start() -> None:
    end = planned(video_url="https://e.com/a.mp4", duration=2)
    assert (end["extend"], end["num_frames"], end["width"], end["height"]) == ("end", 48, None, None)
    assert end["prompt"] == DEFAULT_PROMPT
    start = planned(video_key="uploads/k/a.mp4", extend="start", duration=2, prompt="earlier")
    assert (start["extend"], start["num_frames"], start["prompt"]) == ("start", 49, "earlier")


def test_extension_frame_limit_is_checked_on_the_staged_video() -> None:
    request = LTX2Request.model_validate({"model": "ltx2", "video_url": "https://e.com/a.mp4", "duration": 5})
    fits = MediaInfo(has_video=True, has_audio=False, width=1280, height=720, fps=30.0, duration_s=15.0)
    check_input(request, ARGS, VIDEO, fits)  # 360 frames at 24 fps + 120 added = 480 <= 505
    too_long = MediaInfo(has_video=True, has_audio=False, width=1280, height=720, fps=30.0, duration_s=16.5)
    with pytest.raises(InvalidInput) as err:
        check_input(request, ARGS, VIDEO, too_long)  # 396 + 120 = 516
    assert err.value.field == "video_url"
    assert "516" in err.value.message and "505" in err.value.message
    image = StagedInput("image_url", "image", "image")
    big_image = MediaInfo(has_video=True, has_audio=False, width=8000, height=8000)
    check_input(request, ARGS, image, big_image)  # images are cropped and resized by LTX-2: no limit here

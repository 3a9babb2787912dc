"""The flipbook model's declaration: request, settings, plan, input and its check, deployment names."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, HttpUrl, PositiveInt, model_validator

from deployments.contract import JobRequest, ModelArgs, ModelSpec, StagedInput, UploadKey, exactly_one
from deployments.media import MediaInfo
from serve_app.errors import InvalidInput


class FlipbookArgs(ModelArgs):
    max_frames: PositiveInt = Field(48, description="Most frames a flipbook may have.")
    max_side: PositiveInt = Field(256, description="Largest width or height of the page image.")


class FlipbookRequest(JobRequest):
    """A still image flipped through `frames` frames, each a step brighter."""

    model: Literal["flipbook"]
    page_url: HttpUrl | None = Field(None, description="The page image, fetched over http(s).")
    page_key: UploadKey | None = Field(None, description="The page image, uploaded through presign.")
    frames: int = Field(8, ge=2, le=1000, description="How many frames the flipbook has.")
    brighten: int = Field(10, ge=0, le=50, description="Levels (of 255) each frame adds to the last.")

    @model_validator(mode="after")
    def _one_page(self) -> FlipbookRequest:
        exactly_one(self, ("page_url", "page_key"), required=True)
        return self


def plan(request: FlipbookRequest, args: FlipbookArgs) -> dict[str, Any]:
    if request.frames > args.max_frames:
        raise InvalidInput("frames", f"{request.frames} is over the {args.max_frames} frame limit")
    return {"frames": request.frames, "brighten": request.brighten}


def check_page(request: FlipbookRequest, args: FlipbookArgs, staged: StagedInput, media: MediaInfo) -> None:
    if max(media.width, media.height) > args.max_side:
        raise InvalidInput(staged.field, f"{media.width}x{media.height} is over the {args.max_side} px limit")


SPEC = ModelSpec(
    name="flipbook",
    request=FlipbookRequest,
    args=FlipbookArgs,
    plan=plan,
    runner="tests.plugin_model.runner:FlipbookRunner",
    deployment="FlipbookRenderer",
    queue="FlipbookQueue",
    inputs=(StagedInput("page_url", "page", "image"), StagedInput("page_key", "page", "image")),
    check_input=check_page,
)

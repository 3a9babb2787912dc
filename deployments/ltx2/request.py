"""The body of an LTX-2 job (`"model": "ltx2"`). `Field(description=...)` is the API doc."""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, ConfigDict, Field, HttpUrl, model_validator

from deployments.ltx2.args import CAMERA_MOTIONS
from deployments.ltx2.params import RESOLUTION_PRESETS
from deployments.plugin import JobRequest, UploadKey, exactly_one

CameraMotion = Literal[CAMERA_MOTIONS]  # type: ignore[valid-type]
Resolution = Literal[tuple(RESOLUTION_PRESETS)]  # type: ignore[valid-type]


class LTX2Request(JobRequest):
    """Text-to-video, or image-to-video when an image is given."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    model: Literal["ltx2"]
    prompt: str = Field(min_length=1, max_length=4000, description="What the video shows.")
    negative_prompt: str = Field("", max_length=4000, description="What the video should avoid.")
    image_url: HttpUrl | None = Field(None, description="First frame, fetched over http(s).")
    image_base64: str | None = Field(None, description="First frame as base64 (or a data: URI).")
    image_key: UploadKey | None = Field(None, description="First frame uploaded through /api/v1/presign/upload.")
    quality: Literal["fast", "pro"] = Field(
        "fast",
        validation_alias=AliasChoices("quality", "mode"),
        description="fast = distilled, few steps; pro = full model, two stages. Alias: mode.",
    )
    width: int | None = Field(None, ge=64, le=4096, description="Snapped to a multiple of 32 (64 for pro).")
    height: int | None = Field(None, ge=64, le=4096, description="Snapped to a multiple of 32 (64 for pro).")
    resolution: Resolution | None = Field(None, description="A preset instead of width/height.")
    duration: float | None = Field(
        None,
        gt=0,
        le=60,
        description="Seconds; snapped to 8k+1 frames at `fps`. Omitted: LTX-2.5 lets its duration head pick the "
        "length from the prompt; other versions use the deployment's default_duration_s (5 s).",
    )
    fps: int = Field(24, ge=1, le=60, description="Frames per second of the output.")
    seed: int | None = Field(None, ge=0, le=2**32 - 1, description="Same seed, same video. Random if absent.")
    camera_lora: CameraMotion = Field("static", description="Camera motion LoRA.")
    generate_audio: bool = Field(True, description="false: no audio is decoded and the mp4 has a video stream only.")

    @model_validator(mode="after")
    def _one_size_source(self) -> LTX2Request:
        if self.resolution is not None and (self.width is not None or self.height is not None):
            raise ValueError("resolution: give either resolution or width/height, not both")
        if (self.width is None) != (self.height is None):
            raise ValueError(f"{'height' if self.height is None else 'width'}: width and height go together")
        exactly_one(self, ("image_url", "image_base64", "image_key"), required=False)
        return self

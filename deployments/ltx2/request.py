"""The body of an LTX-2 job (`"model": "ltx2"`). `Field(description=...)` is the API doc."""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, ConfigDict, Field, HttpUrl, model_validator

from deployments.contract import JobRequest, UploadKey, exactly_one
from deployments.ltx2.args import CAMERA_MOTIONS
from deployments.ltx2.params import ASPECT_RATIOS, RESOLUTION_PRESETS

CameraMotion = Literal[CAMERA_MOTIONS]  # type: ignore[valid-type]
Resolution = Literal[tuple(RESOLUTION_PRESETS)]  # type: ignore[valid-type]
AspectRatio = Literal[tuple(ASPECT_RATIOS)]  # type: ignore[valid-type]

IMAGE_FIELDS = ("image_url", "image_base64", "image_key")
END_IMAGE_FIELDS = ("end_image_url", "end_image_base64", "end_image_key")
VIDEO_FIELDS = ("video_url", "video_key")
SIZE_FIELDS = ("width", "height", "resolution", "aspect_ratio")


class LTX2Request(JobRequest):
    """Text-to-video; image-to-video with a first and/or last frame; or a video extended at its end or start."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    model: Literal["ltx2"]
    prompt: str | None = Field(
        None,
        min_length=1,
        max_length=4000,
        description="What the video shows. Required for text-to-video; with an image or a video to extend it may "
        "be omitted, and the deployment's `default_prompt` is used.",
    )
    negative_prompt: str = Field("", max_length=4000, description="What the video should avoid.")
    type: Literal["t2v", "i2v"] | None = Field(
        None,
        description="Optional check of the inputs: `t2v` takes no image, `i2v` needs a first or last frame. "
        "Without it, the inputs alone decide.",
    )
    image_url: HttpUrl | None = Field(None, description="First frame, fetched over http(s).")
    image_base64: str | None = Field(None, description="First frame as base64 (or a data: URI).")
    image_key: UploadKey | None = Field(None, description="First frame uploaded through /api/v1/presign/upload.")
    end_image_url: HttpUrl | None = Field(None, description="Last frame: the clip ends on it. Fetched over http(s).")
    end_image_base64: str | None = Field(None, description="Last frame as base64 (or a data: URI).")
    end_image_key: UploadKey | None = Field(None, description="Last frame uploaded through /api/v1/presign/upload.")
    image_urls: list[HttpUrl] | None = Field(
        None,
        min_length=1,
        max_length=2,
        description="`[first]` or `[first, last]`: the same as `image_url` (+ `end_image_url`).",
    )
    video_url: HttpUrl | None = Field(None, description="Video to extend, fetched over http(s).")
    video_key: UploadKey | None = Field(None, description="Video to extend, uploaded through /api/v1/presign/upload.")
    extend: Literal["end", "start"] | None = Field(
        None,
        description="With a video: add `duration` seconds after its end (default) or before its start. The output "
        "is the input followed (or preceded) by the new frames, at the input's size snapped to the size multiple.",
    )
    quality: Literal["fast", "pro"] = Field(
        "fast",
        validation_alias=AliasChoices("quality", "mode"),
        description="fast = distilled, few steps; pro = full model, two stages. Alias: mode.",
    )
    width: int | None = Field(None, ge=64, le=4096, description="Snapped to a multiple of 32 (64 for pro).")
    height: int | None = Field(None, ge=64, le=4096, description="Snapped to a multiple of 32 (64 for pro).")
    resolution: Resolution | None = Field(
        None, description="A preset instead of width/height; with `aspect_ratio`, the short side (480p = 512 px)."
    )
    aspect_ratio: AspectRatio | None = Field(
        None, description="Shape of the clip; `resolution` (default 480p) gives its short side. Not with width/height."
    )
    duration: float | None = Field(
        None,
        gt=0,
        le=60,
        description="Seconds; snapped to 8k+1 frames at `fps`. Omitted: LTX-2.5 lets its duration head pick the "
        "length from the prompt; other versions use the deployment's default_duration_s (5 s). Extending: the "
        "seconds to add, required.",
    )
    fps: int = Field(24, ge=1, le=60, description="Frames per second of the output.")
    seed: int | None = Field(None, ge=0, le=2**32 - 1, description="Same seed, same video. Random if absent.")
    camera_lora: CameraMotion = Field("static", description="Camera motion LoRA.")
    generate_audio: bool = Field(True, description="false: no audio is decoded and the mp4 has a video stream only.")

    def given(self, fields: tuple[str, ...]) -> list[str]:
        """The fields among `fields` this request sets."""
        return [f for f in fields if getattr(self, f) is not None]

    @model_validator(mode="after")
    def _consistent_inputs(self) -> LTX2Request:
        # Cross-field messages start with `field:` so the 422 names the field.
        self._unpack_image_urls()
        self._one_size_source()
        for fields in (IMAGE_FIELDS, END_IMAGE_FIELDS, VIDEO_FIELDS):
            exactly_one(self, fields, required=False)
        images = self.given(IMAGE_FIELDS + END_IMAGE_FIELDS)
        if self.given(VIDEO_FIELDS):
            if images:
                raise ValueError(f"{images[0]}: a video extension takes no image")
            if sizes := self.given(SIZE_FIELDS):
                raise ValueError(f"{sizes[0]}: an extension keeps the input video's size")
            self.extend = self.extend or "end"
        elif self.extend is not None:
            raise ValueError("extend: needs the video to extend (video_url or video_key)")
        if self.type == "i2v" and not images:
            raise ValueError("type: i2v needs an image (image_url/_base64/_key, end_image_*, or image_urls)")
        if self.type == "t2v" and (images or self.given(VIDEO_FIELDS)):
            raise ValueError(f"type: t2v takes no image or video, but {(images + self.given(VIDEO_FIELDS))[0]} is set")
        if self.prompt is None and not (images or self.given(VIDEO_FIELDS)):
            raise ValueError("prompt: required for text-to-video (it may be omitted only with an image or a video)")
        if self.extend is not None and self.duration is None:  # LTX-2.5's duration head sizes whole clips only
            raise ValueError("duration: an extension needs the seconds to add")
        return self

    def _unpack_image_urls(self) -> None:
        """`image_urls` (the multi-model plan's form) becomes `image_url` and `end_image_url`, which are staged."""
        if self.image_urls is None:
            return
        if others := self.given(IMAGE_FIELDS + END_IMAGE_FIELDS):
            raise ValueError(f"image_urls: give either image_urls or {others[0]}, not both")
        self.image_url = self.image_urls[0]
        self.end_image_url = self.image_urls[1] if len(self.image_urls) == 2 else None
        self.image_urls = None  # the request now reads as if written with image_url/end_image_url

    def _one_size_source(self) -> None:
        if self.aspect_ratio is not None and (self.width is not None or self.height is not None):
            raise ValueError("aspect_ratio: give either aspect_ratio (with resolution) or width/height, not both")
        if self.resolution is not None and (self.width is not None or self.height is not None):
            raise ValueError("resolution: give either resolution or width/height, not both")
        if (self.width is None) != (self.height is None):
            raise ValueError(f"{'height' if self.height is None else 'width'}: width and height go together")

"""The body of a talking-video job (`"model": "talking_video"`). `Field(description=...)` is the API doc.

Fields that belong to a stage's model are passed through to that stage's request as given and checked there at
submit (so a new size option of the video model works here as soon as that model accepts it).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, HttpUrl, model_validator

from deployments.contract import JobRequest, UploadKey, exactly_one

DEFAULT_PROMPT = (
    "A person talking to the camera, natural head motion, subtle facial expressions, steady framing, soft even lighting"
)


class TalkingVideoRequest(JobRequest):
    """A portrait animated by the video model, then lip-synced to the given speech; the speech is the audio."""

    model: Literal["talking_video"]
    image_url: HttpUrl | None = Field(None, description="The face photo, fetched over http(s).")
    image_base64: str | None = Field(None, description="The face photo as base64 (or a data: URI).")
    image_key: UploadKey | None = Field(None, description="The face photo uploaded through /api/v1/presign/upload.")
    audio_url: HttpUrl | None = Field(None, description="The speech (wav, mp3, m4a, ogg, flac...); sets the length.")
    audio_key: UploadKey | None = Field(None, description="The speech uploaded through /api/v1/presign/upload.")
    prompt: str = Field(DEFAULT_PROMPT, min_length=1, max_length=4000, description="What the animated clip shows.")
    negative_prompt: str | None = Field(None, max_length=4000, description="LTX-2: what the clip should avoid.")
    # LTX-2 stage (passed through; LTX-2 validates them)
    quality: str | None = Field(None, description="LTX-2 quality: fast or pro (LTX-2's default when absent).")
    resolution: str | None = Field(None, description="LTX-2 size preset (480p, 720p, 1080p).")
    aspect_ratio: str | None = Field(None, description="LTX-2 aspect ratio (16:9, 9:16...); resolution = short side.")
    width: int | None = Field(None, description="LTX-2 width in pixels (with height), snapped by LTX-2.")
    height: int | None = Field(None, description="LTX-2 height in pixels (with width), snapped by LTX-2.")
    fps: int = Field(24, ge=1, le=60, description="Frames per second of the clip.")
    seed: int | None = Field(None, description="LTX-2 seed: same seed, same animation. Random if absent.")
    camera_lora: str | None = Field(None, description="LTX-2 camera motion LoRA (static when absent).")
    # Wav2Lip stage (passed through; Wav2Lip validates them)
    pads: tuple[int, int, int, int] | None = Field(None, description="Wav2Lip face box pads: top, bottom, left, right.")
    blend: str | None = Field(None, description="Wav2Lip paste: feather or hard.")
    active_speaker: Any = Field(
        None, description="Wav2Lip speaker: 'largest' or {x, y, at_s} in the animated clip's pixels and seconds."
    )

    @model_validator(mode="after")
    def _one_face_one_speech(self) -> TalkingVideoRequest:
        exactly_one(self, ("image_url", "image_base64", "image_key"), required=True)
        exactly_one(self, ("audio_url", "audio_key"), required=True)
        return self

    def given(self, *fields: str) -> dict[str, Any]:
        """The named fields the request sets (absent ones keep the stage model's defaults)."""
        return self.model_dump(include=set(fields), exclude_none=True, mode="json")

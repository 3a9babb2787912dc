"""Limits of the media a model accepts, per input kind: checked from container and codec headers at staging,
and again while the replica decodes (a header may lie). Each model's args holds one `InputLimits`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt, model_validator


class MediaLimits(BaseModel):
    """The bounds of one kind of input file (image, video or audio); fields that do not apply are not checked."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_file_mb: PositiveFloat = Field(200.0, description="Largest file, in MiB (the spine's own cap applies too).")
    max_width: PositiveInt = Field(4096, description="Widest picture, in pixels (after the display rotation).")
    max_height: PositiveInt = Field(4096, description="Tallest picture, in pixels (after the display rotation).")
    max_pixels: PositiveInt = Field(4096 * 4096, description="Most pixels in one picture (width x height).")
    max_frames: PositiveInt = Field(36_000, description="Most video frames (fps x duration).")
    max_fps: PositiveFloat = Field(120.0, description="Highest video frame rate.")
    max_duration_s: PositiveFloat = Field(600.0, description="Longest video or audio, in seconds.")
    min_sample_rate: PositiveInt = Field(8_000, description="Lowest audio sample rate, in Hz.")
    max_sample_rate: PositiveInt = Field(192_000, description="Highest audio sample rate, in Hz.")
    max_channels: PositiveInt = Field(8, description="Most audio channels (5.1 is 6).")
    max_streams: PositiveInt = Field(4, description="Most streams in one container (video, audio, subtitles...).")
    max_metadata_kb: PositiveInt = Field(64, description="Most container metadata (tags), in KiB.")

    @property
    def max_bytes(self) -> int:
        return int(self.max_file_mb * 1024 * 1024)

    @model_validator(mode="after")
    def _rates_ordered(self) -> MediaLimits:
        if self.min_sample_rate > self.max_sample_rate:
            raise ValueError("min_sample_rate must not be above max_sample_rate")
        return self


def _image() -> MediaLimits:
    # phone photos reach 48 MP (8064x6048); a 1x10000 strip is a valid image, its use is the model's call
    return MediaLimits(max_file_mb=50, max_width=10_000, max_height=10_000, max_pixels=50_000_000)


def _audio() -> MediaLimits:
    return MediaLimits(max_file_mb=200, max_duration_s=600)


class InputLimits(BaseModel):
    """One `MediaLimits` per input kind; a model's args sets defaults suited to it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    image: MediaLimits = Field(default_factory=_image, description="Still images (png, jpeg, webp, gif...).")
    video: MediaLimits = Field(default_factory=MediaLimits, description="Video files (mp4, mov, webm...).")
    audio: MediaLimits = Field(default_factory=_audio, description="Audio files (wav, mp3, m4a, ogg, flac...).")

    def of(self, kind: str) -> MediaLimits:
        """The limits of input kind `kind` (image, video or audio)."""
        return getattr(self, kind)


def over_defaults(defaults: InputLimits, given: Any) -> Any:
    """Partial limits from config (`given`) laid over a model's own `defaults`: each kind keeps every field it does
    not name. Anything that is not a mapping (an `InputLimits`, a `MediaLimits`) replaces its default whole."""
    if not isinstance(given, Mapping):
        return given
    merged: dict[str, Any] = defaults.model_dump()
    for kind, fields in given.items():
        own = merged.get(kind)
        merged[kind] = {**own, **fields} if isinstance(own, dict) and isinstance(fields, Mapping) else fields
    return merged

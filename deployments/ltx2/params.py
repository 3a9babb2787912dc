"""Request fields -> the exact sizes and frame count LTX-2 will use. Pure functions, no torch."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

Quality = Literal["fast", "pro"]

RESOLUTION_PRESETS: dict[str, tuple[int, int]] = {  # (width, height) before snapping
    "480p": (768, 512),  # LTX-2's native training size
    "720p": (1280, 720),
    "1080p": (1920, 1080),
}
DEFAULT_SIZE = RESOLUTION_PRESETS["480p"]
VAE_TEMPORAL_RATIO = 8  # the video VAE compresses 8 frames into one latent frame: clips have 8k+1 frames


class LTX2Params(BaseModel):
    """Everything a runner needs to render one clip, already snapped to what the model accepts."""

    model_config = ConfigDict(frozen=True)

    prompt: str
    negative_prompt: str = ""
    quality: Quality = "fast"
    width: int
    height: int
    num_frames: int | Literal["auto"]  # auto: LTX-2.5's duration head picks it when the job runs
    fps: int
    seed: int
    camera_lora: str = "static"
    image_to_video: bool = False
    generate_audio: bool = True  # False: the audio is neither decoded nor muxed


def size_multiple(quality: Quality) -> int:
    """Width and height must be multiples of 32; two-stage (pro) renders half size first, so 64."""
    return 64 if quality == "pro" else 32


def snap_size(value: int, multiple: int) -> int:
    """Nearest multiple of `multiple`, never below one multiple."""
    return max(multiple, multiple * round(value / multiple))


def frames_for_duration(duration_s: float, fps: int) -> int:
    """Nearest valid frame count 8k+1 (at least 9) for a clip of `duration_s` seconds at `fps`."""
    k = max(1, round(duration_s * fps / VAE_TEMPORAL_RATIO))
    return VAE_TEMPORAL_RATIO * k + 1


def resolve_size(quality: Quality, width: int | None, height: int | None, resolution: str | None) -> tuple[int, int]:
    """The snapped (width, height) for a request's explicit size or preset."""
    if resolution is not None:
        width, height = RESOLUTION_PRESETS[resolution]
    elif width is None or height is None:
        width, height = DEFAULT_SIZE
    multiple = size_multiple(quality)
    return snap_size(width, multiple), snap_size(height, multiple)

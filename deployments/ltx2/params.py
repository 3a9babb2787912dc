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
DEFAULT_RESOLUTION = "480p"
DEFAULT_SIZE = RESOLUTION_PRESETS[DEFAULT_RESOLUTION]
ASPECT_RATIOS: dict[str, tuple[int, int]] = {  # (width, height) proportions; `resolution` gives the short side
    "16:9": (16, 9),
    "9:16": (9, 16),
    "1:1": (1, 1),
    "4:3": (4, 3),
    "3:4": (3, 4),
    "21:9": (21, 9),
}
VAE_TEMPORAL_RATIO = 8  # the video VAE compresses 8 frames into one latent frame: clips have 8k+1 frames


class LTX2Params(BaseModel):
    """Everything a runner needs to render one clip, already snapped to what the model accepts."""

    model_config = ConfigDict(frozen=True)

    prompt: str
    negative_prompt: str = ""
    quality: Quality = "fast"
    width: int | None  # None only for an extension: the input video's size, snapped (`fit_size`)
    height: int | None
    num_frames: int | Literal["auto"]  # auto: LTX-2.5's duration head picks it when the job runs (no extension)
    fps: int
    seed: int
    camera_lora: str = "static"
    image_to_video: bool = False
    generate_audio: bool = True  # False: the audio is neither decoded nor muxed
    end_image: bool = False  # the clip ends on the staged `end_image` (a keyframe at the last latent frame)
    # Extend the staged `video`: `num_frames` are the frames to add; width/height None = the input's, snapped.
    extend: Literal["end", "start"] | None = None


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


def frames_to_add(duration_s: float, fps: int, extend: Literal["end", "start"]) -> int:
    """Frames an extension adds: 8k after the input (the input's last 8j+1 frames are the context, and the
    clip rendered is 8(j+k)+1), or 8k+1 before it (its context sits at the latent frame after them)."""
    k = max(1, round(duration_s * fps / VAE_TEMPORAL_RATIO))
    return VAE_TEMPORAL_RATIO * k + (1 if extend == "start" else 0)


def resolve_size(
    quality: Quality,
    width: int | None,
    height: int | None,
    resolution: str | None,
    aspect_ratio: str | None = None,
) -> tuple[int, int]:
    """The snapped (width, height) for a request's explicit size, preset, or aspect ratio (whose short side is
    the preset's short side, 480p by default)."""
    if aspect_ratio is not None:
        short = min(RESOLUTION_PRESETS[resolution or DEFAULT_RESOLUTION])
        across, down = ASPECT_RATIOS[aspect_ratio]
        width, height = (short * across / down, short) if across >= down else (short, short * down / across)
    elif resolution is not None:
        width, height = RESOLUTION_PRESETS[resolution]
    elif width is None or height is None:
        width, height = DEFAULT_SIZE
    multiple = size_multiple(quality)
    return snap_size(round(width), multiple), snap_size(round(height), multiple)


def fit_size(width: int, height: int, quality: Quality, max_side: int) -> tuple[int, int]:
    """An input video's size as an extension renders it: shrunk (aspect kept) so no side exceeds `max_side`,
    each side snapped to the nearest multiple of the quality's (never past `max_side`); the input frames are
    then scaled to cover that size and centre-cropped."""
    scale = min(1.0, max_side / max(width, height))
    multiple = size_multiple(quality)
    cap = max(multiple, multiple * (max_side // multiple))
    return min(cap, snap_size(round(width * scale), multiple)), min(cap, snap_size(round(height * scale), multiple))

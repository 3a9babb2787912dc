"""Checks of an input against its kind's `MediaLimits`, from the headers a probe read, and the decoders' own caps
set to agree with the limits (Pillow's MAX_IMAGE_PIXELS, FFmpeg's max_pixels, OpenCV's imread cap)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import PIL.Image

from deployments.contract.errors import InvalidInput, InvalidMedia
from deployments.contract.limits import InputLimits, MediaLimits
from deployments.images import probe_image, read_image
from deployments.media import DECODE_LIMITS, MediaError, MediaInfo, probe

DECLARED_SLACK_BYTES = 64 * 1024  # container overhead a header's bit rate leaves out
STILL_IMAGE_DEMUXERS = ("_pipe", "image2", "gif", "apng")  # FFmpeg reads pictures as one-frame videos
_APPLIED = {"max_pixels": 0}  # the largest picture of every limits applied in this process


def inspect_input(field: str, kind: str, path: Path, limits: MediaLimits) -> MediaInfo:
    """What an input file holds, refused (InvalidInput naming `field`) unless it is readable `kind` media within
    `limits`: headers first, then an image is decoded (bounded by those limits, so a truncated one is caught)."""
    try:
        info = probe_image(path) if kind == "image" else probe(path)
        check_media(field, kind, info, limits)
        needs_audio = kind == "audio"
        if (needs_audio and not info.has_audio) or (not needs_audio and not info.has_video):
            raise InvalidInput(field, f"holds no {kind} stream")
        if kind != "image" and info.container.endswith(STILL_IMAGE_DEMUXERS):
            raise InvalidInput(field, f"is a still image, not {kind}")
        if kind == "image":
            read_image(path, limits).close()
        return info
    except MediaError as exc:
        raise InvalidInput(field, f"unreadable {kind}: {exc}") from None


def check_media(field: str, kind: str, info: MediaInfo, limits: MediaLimits, owner: str = "") -> None:
    """Raise InvalidInput naming `field` and the limit when the probed input breaks one of `limits`; `owner`
    names whose limits they are when they are not the requested model's own (`wav2lip`: wav2lip.limits...)."""
    for problem in _problems(kind, info, limits, owner):
        raise InvalidInput(field, problem)


def recheck_media(name: str, kind: str, info: MediaInfo, limits: MediaLimits) -> None:
    """In a replica: raise `InvalidMedia` (final, `invalid_<kind>`) when a staged input breaks `limits` (it was
    changed since staging, or staged under other limits)."""
    for problem in _problems(kind, info, limits):
        raise InvalidMedia(kind, f"{name}: {problem}")


def _problems(kind: str, info: MediaInfo, limits: MediaLimits, owner: str = "") -> Iterable[str]:
    name = f"{owner}.limits.{kind}" if owner else f"limits.{kind}"
    if info.file_bytes > limits.max_bytes:
        yield f"{info.file_bytes} bytes is over the {limits.max_bytes} byte limit ({name}.max_file_mb)"
    if info.streams > limits.max_streams:
        yield f"{info.streams} streams is over the limit of {limits.max_streams} ({name}.max_streams)"
    if info.metadata_bytes > limits.max_metadata_kb * 1024:
        yield f"{info.metadata_bytes} bytes of metadata is over the {limits.max_metadata_kb} KiB limit"
    if info.declared_bytes > info.file_bytes * 2 + DECLARED_SLACK_BYTES:
        yield (
            f"its headers claim {info.declared_bytes} bytes of stream data but the file holds {info.file_bytes} "
            "(truncated, or a lying header)"
        )
    if kind in ("image", "video"):
        yield from _picture_problems(name, info, limits)
    if kind == "video":
        yield from _time_problems(name, info, limits)
    if info.has_audio:
        yield from _audio_problems(name, info, limits)
    if kind == "audio" and info.duration_s > limits.max_duration_s:
        yield f"{info.duration_s:.1f} s is over the {limits.max_duration_s:g} s limit ({name}.max_duration_s)"


def _picture_problems(name: str, info: MediaInfo, limits: MediaLimits) -> Iterable[str]:
    size = f"{info.width}x{info.height}"
    if info.width > limits.max_width:
        yield f"{size} is wider than the {limits.max_width} px limit ({name}.max_width)"
    if info.height > limits.max_height:
        yield f"{size} is taller than the {limits.max_height} px limit ({name}.max_height)"
    if info.width * info.height > limits.max_pixels:
        yield f"{size} is over the {limits.max_pixels} pixel limit ({name}.max_pixels)"


def _time_problems(name: str, info: MediaInfo, limits: MediaLimits) -> Iterable[str]:
    if info.fps > limits.max_fps:
        yield f"{info.fps:g} fps is over the {limits.max_fps:g} fps limit ({name}.max_fps)"
    if info.frames > limits.max_frames:
        yield f"{info.frames} frames is over the limit of {limits.max_frames} ({name}.max_frames)"
    if info.duration_s > limits.max_duration_s:
        yield f"{info.duration_s:.1f} s is over the {limits.max_duration_s:g} s limit ({name}.max_duration_s)"


def _audio_problems(name: str, info: MediaInfo, limits: MediaLimits) -> Iterable[str]:
    if not limits.min_sample_rate <= info.sample_rate <= limits.max_sample_rate:
        yield (
            f"an audio sample rate of {info.sample_rate} Hz is outside {limits.min_sample_rate}-"
            f"{limits.max_sample_rate} Hz ({name}.min_sample_rate, {name}.max_sample_rate)"
        )
    if info.channels > limits.max_channels:
        yield f"{info.channels} audio channels is over the limit of {limits.max_channels} ({name}.max_channels)"


def apply_decoder_limits(limits: InputLimits) -> None:
    """Set the process's decoder caps to cover `limits` and every limits applied before (one gateway serves every
    model): the largest picture any of them allows.

    Pillow refuses an image over twice MAX_IMAGE_PIXELS as a bomb; FFmpeg refuses a frame over max_pixels before
    allocating it; OpenCV reads OPENCV_IO_MAX_IMAGE_PIXELS at its first imread. `check_media` holds the exact
    limits; these caps are the backstop inside the decoders."""
    pixels = max(limits.image.max_pixels, limits.video.max_pixels, _APPLIED["max_pixels"])
    _APPLIED["max_pixels"] = pixels
    PIL.Image.MAX_IMAGE_PIXELS = pixels
    DECODE_LIMITS["max_pixels"] = pixels
    os.environ["OPENCV_IO_MAX_IMAGE_PIXELS"] = str(pixels)

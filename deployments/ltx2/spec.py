"""LTX-2 as the spine sees it: its request, its settings, the check-and-snap plan, and its deployments.
Light (no torch): the gateway imports it through the catalogue."""

from __future__ import annotations

import secrets
from typing import Any, Literal

from deployments.contract import InvalidInput, ModelSpec, StagedInput
from deployments.ltx2.args import LTX2Args, check_camera_lora, check_quality
from deployments.ltx2.params import LTX2Params, frames_for_duration, frames_to_add, resolve_size
from deployments.ltx2.request import END_IMAGE_FIELDS, IMAGE_FIELDS, VIDEO_FIELDS, LTX2Request
from deployments.ltx2.versions import VERSIONS
from deployments.ltx2.videos_api import MAPPING as OPENAI
from deployments.media import MediaInfo


def plan(request: LTX2Request, args: LTX2Args) -> dict[str, Any]:
    """The parameters the runner will use: limits checked, sizes and frame count snapped, a seed drawn."""
    check_quality(args, request.quality)
    check_camera_lora(args, request.camera_lora)
    if request.extend is not None:  # the size follows the input video, known once it is staged
        width = height = None
        num_frames: int | Literal["auto"] = frames_to_add(
            _checked_duration(request.duration, args), request.fps, request.extend
        )
    else:
        width, height = resolve_size(
            request.quality, request.width, request.height, request.resolution, request.aspect_ratio
        )
        if max(width, height) > args.max_side:
            raise InvalidInput(_size_field(request), f"{width}x{height} is over the {args.max_side} px side limit")
        num_frames = _num_frames(request, args)
    return LTX2Params(
        prompt=request.prompt or args.default_prompt,
        negative_prompt=request.negative_prompt,
        quality=request.quality,
        width=width,
        height=height,
        num_frames=num_frames,
        fps=request.fps,
        seed=request.seed if request.seed is not None else secrets.randbelow(2**32),
        camera_lora=request.camera_lora,
        image_to_video=bool(request.given(IMAGE_FIELDS)),
        end_image=bool(request.given(END_IMAGE_FIELDS)),
        extend=request.extend,
        generate_audio=request.generate_audio,
    ).model_dump()


def _checked_duration(seconds: float | None, args: LTX2Args) -> float:
    """A requested duration within the deployment's limit; an extension must give one (LTX2Request checks so
    too: the duration head sizes a whole clip from its prompt, not the seconds to add to a video)."""
    if seconds is None:
        raise InvalidInput("duration", "an extension needs the seconds to add")
    if seconds > args.max_duration_s:
        raise InvalidInput("duration", f"{seconds:g} s is over the {args.max_duration_s:g} s limit")
    return seconds


def _num_frames(request: LTX2Request, args: LTX2Args) -> int | Literal["auto"]:
    """Frames for the requested duration; with none given, `auto` on LTX-2.5 (its duration head decides when the
    job runs, within min/max_duration_s), else the deployment's default duration."""
    if request.duration is None:
        if VERSIONS[args.model_version].duration_head:
            return "auto"
        return frames_for_duration(min(args.default_duration_s, args.max_duration_s), request.fps)
    return frames_for_duration(_checked_duration(request.duration, args), request.fps)


def _size_field(request: LTX2Request) -> str:
    """The request field that chose the size, for a 422."""
    if request.width is not None:
        return "width" if request.width >= (request.height or 0) else "height"
    return "aspect_ratio" if request.aspect_ratio is not None else "resolution"


def input_frames(media: MediaInfo, fps: int) -> int:
    """Frames of a staged video once resampled to the output's `fps` (as the runner reads it)."""
    return max(1, round(media.duration_s * fps))


def check_input(request: LTX2Request, args: LTX2Args, staged: StagedInput, media: MediaInfo) -> None:
    """A video to extend is bounded before any GPU work: its frames plus the added ones (the clip LTX-2 renders)
    (a larger input is shrunk to `max_side`, so its size needs no check). Images need none: LTX-2 crops and
    resizes them to the clip's size."""
    if staged.kind != "video" or request.extend is None:
        return
    added = frames_to_add(_checked_duration(request.duration, args), request.fps, request.extend)
    total = input_frames(media, request.fps) + added
    if total > args.max_extend_frames:
        raise InvalidInput(
            staged.field,
            f"{media.duration_s:.2f} s at {request.fps} fps is {total - added} frames; with the {added} added that "
            f"is {total}, over the {args.max_extend_frames} frame limit of an extension",
        )
    if not (media.width and media.height and media.duration_s):
        raise InvalidInput(staged.field, "the video stream states no frame size or duration")


SPEC = ModelSpec(
    name="ltx2",
    request=LTX2Request,
    args=LTX2Args,
    plan=plan,
    runner="deployments.ltx2.runner:LTX2Runner",
    deployment="LTX2Generator",
    queue="LTX2Queue",
    inputs=(
        *(StagedInput(field, "image", "image") for field in IMAGE_FIELDS),
        *(StagedInput(field, "end_image", "image") for field in END_IMAGE_FIELDS),
        *(StagedInput(field, "video", "video") for field in VIDEO_FIELDS),
    ),
    check_input=check_input,
    openai=OPENAI,
)

"""LTX-2 as the spine sees it: its request, its settings, the check-and-snap plan, and its deployments.
Light (no torch): the gateway imports it through the catalogue."""

from __future__ import annotations

import secrets
from typing import Any, Literal

from deployments.ltx2.args import LTX2Args, check_camera_lora, check_quality
from deployments.ltx2.params import LTX2Params, frames_for_duration, resolve_size
from deployments.ltx2.request import LTX2Request
from deployments.ltx2.versions import VERSIONS
from deployments.plugin import ModelSpec, StagedInput
from serve_app.errors import InvalidInput


def plan(request: LTX2Request, args: LTX2Args) -> dict[str, Any]:
    """The parameters the runner will use: limits checked, sizes and frame count snapped, a seed drawn."""
    num_frames = _num_frames(request, args)
    width, height = resolve_size(request.quality, request.width, request.height, request.resolution)
    if max(width, height) > args.max_side:
        field = "width" if width >= height else "height"
        raise InvalidInput(field, f"{max(width, height)} px is over the {args.max_side} px limit")
    check_quality(args, request.quality)
    check_camera_lora(args, request.camera_lora)
    has_image = any(v is not None for v in (request.image_url, request.image_base64, request.image_key))
    return LTX2Params(
        prompt=request.prompt,
        negative_prompt=request.negative_prompt,
        quality=request.quality,
        width=width,
        height=height,
        num_frames=num_frames,
        fps=request.fps,
        seed=request.seed if request.seed is not None else secrets.randbelow(2**32),
        camera_lora=request.camera_lora,
        image_to_video=has_image,
        generate_audio=request.generate_audio,
    ).model_dump()


def _num_frames(request: LTX2Request, args: LTX2Args) -> int | Literal["auto"]:
    """Frames for the requested duration; with none given, `auto` on LTX-2.5 (its duration head decides when the
    job runs, within min/max_duration_s), else the deployment's default duration."""
    if request.duration is None:
        if VERSIONS[args.model_version].duration_head:
            return "auto"
        return frames_for_duration(min(args.default_duration_s, args.max_duration_s), request.fps)
    if request.duration > args.max_duration_s:
        raise InvalidInput("duration", f"{request.duration:g} s is over the {args.max_duration_s:g} s limit")
    return frames_for_duration(request.duration, request.fps)


SPEC = ModelSpec(
    name="ltx2",
    request=LTX2Request,
    args=LTX2Args,
    plan=plan,
    runner="deployments.ltx2.runner:LTX2Runner",
    deployment="LTX2Generator",
    queue="LTX2Queue",
    # LTX-2 resizes its first frame to the requested size, so any image size is fine: no check_input.
    inputs=tuple(StagedInput(field, "image", "image") for field in ("image_url", "image_base64", "image_key")),
)

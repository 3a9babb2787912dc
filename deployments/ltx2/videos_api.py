"""LTX-2 on the OpenAI Videos API (`/v1/videos`): its release names, and the standard fields as an LTX2Request.

`model` names the release the deployment serves (`args.model_version`): `ltx-2` (2.0), `ltx-2.3`, `ltx-2.5`.
`size` must be a size LTX-2 renders as asked (no silent snapping on this surface: the Video object says what was
made); `seconds` becomes `duration` (snapped to 8k+1 frames, as on /api/v1). A remix extends the source video at
its end by as many seconds as it lasts, conditioned on it (LTX-2's video extension), with the new prompt.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from deployments.contract import InvalidInput, OpenAIMapping, Reference, VideoFields
from deployments.ltx2.args import LTX2Args
from deployments.ltx2.params import fit_size, size_multiple

RELEASE_NAMES = {"2.0": "ltx-2", "2.3": "ltx-2.3", "2.5": "ltx-2.5"}
SIZE_SOURCES = ("width", "height", "resolution", "aspect_ratio")
DEFAULT_REMIX_S = 4.0  # when the source's length is not in its params (an LTX-2.5 clip sized by its duration head)


def names(args: LTX2Args) -> tuple[str, ...]:
    """The release this deployment serves, by its OpenAI-style name."""
    return (RELEASE_NAMES[args.model_version],)


def to_request(fields: VideoFields, args: LTX2Args) -> dict[str, Any]:
    """An LTX2Request body: `size` -> width/height, `seconds` -> duration, `input_reference` -> the first frame."""
    body: dict[str, Any] = {**fields.extra, "model": "ltx2"}
    if fields.prompt is not None:
        body["prompt"] = fields.prompt
    if fields.size is not None:
        _refuse_extra(fields, SIZE_SOURCES, "size")
        body["width"], body["height"] = checked_size(fields.size, str(body.get("quality", "fast")), args)
    if fields.seconds is not None:
        _refuse_extra(fields, ("duration",), "seconds")
        body["duration"] = checked_seconds(fields.seconds, args)
    if fields.input_reference is not None:
        if fields.input_reference.kind != "image":
            raise InvalidInput("input_reference", "LTX-2 takes an image here (the first frame)")
        body |= fields.input_reference.as_field("image")
    return body


def checked_size(size: tuple[int, int], quality: str, args: LTX2Args) -> tuple[int, int]:
    """`size` if LTX-2 renders it exactly; else a 400 naming the nearest size it does."""
    width, height = size
    multiple = size_multiple("pro" if quality == "pro" else "fast")
    if width % multiple or height % multiple or max(width, height) > args.max_side or min(width, height) < multiple:
        near_w, near_h = fit_size(max(width, 1), max(height, 1), "pro" if quality == "pro" else "fast", args.max_side)
        raise InvalidInput(
            "size",
            f"{width}x{height} is not a size this LTX-2 deployment makes (width and height multiples of {multiple}, "
            f"at most {args.max_side}); nearest allowed: {near_w}x{near_h}",
        )
    return width, height


def checked_seconds(seconds: float, args: LTX2Args) -> float:
    """`seconds` within the deployment's limit; else a 400 naming the allowed range."""
    if not 0 < seconds <= args.max_duration_s:
        nearest = args.max_duration_s if seconds > 0 else args.min_duration_s
        raise InvalidInput(
            "seconds",
            f"{seconds:g} is not a length this deployment makes (more than 0, at most {args.max_duration_s:g}); "
            f"nearest allowed: {nearest:g}",
        )
    return seconds


def remix(prompt: str, source: Reference, params: Mapping[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """The source video extended at its end, as long again, following the new prompt."""
    frames, fps = params.get("num_frames"), params.get("fps") or 24
    seconds = (frames - 1) / fps if isinstance(frames, int) else DEFAULT_REMIX_S
    body = {**extra, "model": "ltx2", "prompt": prompt, "extend": "end", "duration": seconds, "fps": fps}
    return body | source.as_field("video")


def _refuse_extra(fields: VideoFields, names: tuple[str, ...], standard: str) -> None:
    for name in names:
        if name in fields.extra:
            raise InvalidInput(name, f"give either {standard} or {name}, not both")


MAPPING = OpenAIMapping(
    names=names,
    request=to_request,
    fields={
        "duration": "seconds",
        "width": "size",
        "height": "size",
        "image_key": "input_reference",
        "image_url": "input_reference",
        "image_base64": "input_reference",
    },
    remix=remix,
)

"""Talking video on the OpenAI Videos API (`/v1/videos`): `input_reference` is the face photo, the extra field
`audio` the speech (a file in multipart, or an upload key or URL), `prompt` what the animated clip shows, `size` the
clip's width and height (LTX-2 checks them in its stage). The speech sets the length, so `seconds` is refused."""

from __future__ import annotations

from typing import Any

from deployments.contract import InvalidInput, ModelArgs, OpenAIMapping, VideoFields, speech_fields


def to_request(fields: VideoFields, args: ModelArgs) -> dict[str, Any]:
    """A TalkingVideoRequest body from the photo (`input_reference`), the speech (`audio`) and the prompt."""
    if fields.seconds is not None:
        raise InvalidInput("seconds", "a talking video lasts as long as its speech (`audio`); omit seconds")
    extra = dict(fields.extra)
    body: dict[str, Any] = {"model": "talking_video"}
    if fields.prompt is not None:
        body["prompt"] = fields.prompt
    if fields.size is not None:
        body["width"], body["height"] = fields.size
    if fields.input_reference is not None:
        if fields.input_reference.kind != "image":
            raise InvalidInput("input_reference", "a talking video starts from a photo (an image)")
        body |= fields.input_reference.as_field("image")
    body |= speech_fields(extra)
    return {**extra, **body}


MAPPING = OpenAIMapping(
    names=lambda args: ("talking_video",),
    request=to_request,
    fields={
        "image_key": "input_reference",
        "image_url": "input_reference",
        "image_base64": "input_reference",
        "audio_key": "audio",
        "audio_url": "audio",
        "width": "size",
        "height": "size",
    },
)

"""Wav2Lip on the OpenAI Videos API (`/v1/videos`): `input_reference` is the face (an image or a video), the extra
field `audio` the speech (a file in multipart, or an upload key or URL). The output keeps the face's size and lasts
as long as the audio, so `seconds` and `size` are refused; the prompt is not used."""

from __future__ import annotations

from typing import Any

from deployments.contract import InvalidInput, OpenAIMapping, VideoFields, speech_fields
from deployments.wav2lip.args import Wav2LipArgs


def to_request(fields: VideoFields, args: Wav2LipArgs) -> dict[str, Any]:
    """A Wav2LipRequest body from the face (`input_reference`) and the speech (`audio`)."""
    for name, value in (("seconds", fields.seconds), ("size", fields.size)):
        if value is not None:
            raise InvalidInput(name, "Wav2Lip keeps the face's size and the audio's length; omit it")
    extra = dict(fields.extra)
    body: dict[str, Any] = {"model": "wav2lip"}
    face = fields.input_reference
    if face is not None:
        if face.base64 is not None or face.kind == "audio":
            raise InvalidInput("input_reference", "Wav2Lip takes the face as an image or video file, key or URL")
        body |= face.as_field(face.kind)
    body |= speech_fields(extra)
    return {**extra, **body}


MAPPING = OpenAIMapping(
    names=lambda args: ("wav2lip",),
    request=to_request,
    fields={
        "video_key": "input_reference",
        "video_url": "input_reference",
        "image_key": "input_reference",
        "image_url": "input_reference",
        "audio_key": "audio",
        "audio_url": "audio",
    },
)

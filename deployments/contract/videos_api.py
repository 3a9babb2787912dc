"""How a model answers on the OpenAI Videos API surface (`/v1/videos`): the names it answers to, and how the
API's standard create fields (`prompt`, `seconds`, `size`, `input_reference`) become its own request.

The spine parses and checks the wire format; the model package says what the fields mean for it. A field the
OpenAI API does not define (`seed`, `negative_prompt`, `audio`...) reaches the mapping in `extra`, as sent.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from deployments.contract.errors import InvalidInput


class Reference(BaseModel):
    """An input file as the surface received it: exactly one of an upload key (a file sent with the request,
    stored, or a `file_id`), an http(s) URL, or a base64 data URL."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["image", "video", "audio"] = "image"  # spec.MediaKind (spec imports this module)
    key: str | None = None
    url: str | None = None
    base64: str | None = None

    @classmethod
    def from_text(cls, value: str, kind: Literal["image", "video", "audio"]) -> Reference:
        """A reference given as text (a form field or a JSON string): a data URL, an upload key, or a URL."""
        if value.startswith("data:"):
            return cls(kind=kind, base64=value)
        if value.startswith("uploads/"):
            return cls(kind=kind, key=value)
        return cls(kind=kind, url=value)

    def as_field(self, stem: str) -> dict[str, str]:
        """The request field this reference fills for an input named `stem` (`image` -> `image_key`/`_url`/
        `_base64`)."""
        if self.key is not None:
            return {f"{stem}_key": self.key}
        if self.url is not None:
            return {f"{stem}_url": self.url}
        return {f"{stem}_base64": self.base64 or ""}


class VideoFields(BaseModel):
    """The standard create fields of `POST /v1/videos`, parsed: `seconds` a number, `size` (width, height)."""

    model_config = ConfigDict(frozen=True)

    prompt: str | None = None
    seconds: float | None = None
    size: tuple[int, int] | None = None
    input_reference: Reference | None = None
    extra: dict[str, Any] = Field(default_factory=dict)  # fields OpenAI does not define, as sent (files as Reference)


def speech_fields(extra: dict[str, Any]) -> dict[str, str]:
    """The request fields of the speech a lip-sync model takes as the extra field `audio` (a file, an upload key or
    a URL), taken out of `extra`; none when it is absent."""
    audio = extra.pop("audio", None)
    if audio is None:
        return {}
    speech = audio if isinstance(audio, Reference) else Reference.from_text(str(audio), "audio")
    if speech.base64 is not None:
        raise InvalidInput("audio", "send the speech as a file, an upload key or a URL")
    return speech.as_field("audio")


# request(fields, args) -> the model's request body (a dict with its `model`), checked by its request type and plan.
# Raises InvalidInput naming `seconds`/`size` (with the nearest allowed values) for what the deployment cannot make.
VideoRequest = Callable[[VideoFields, Any], dict[str, Any]]
# remix(prompt, source_video, source_params, extra) -> the model's request body of a remix of a finished video.
Remix = Callable[[str, Reference, Mapping[str, Any], dict[str, Any]], dict[str, Any]]
# describe(params, details) -> (seconds, size) of a job as the Video object shows them, e.g. ("4", "768x512").
Describe = Callable[[Mapping[str, Any], Mapping[str, Any]], tuple[str | None, str | None]]


def describe_from_params(params: Mapping[str, Any], details: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """`seconds` and `size` from the usual param names (`width`, `height`, `num_frames`, `fps`), or the details'."""
    values = {**details, **{k: v for k, v in params.items() if v is not None}}
    size = f"{values['width']}x{values['height']}" if values.get("width") and values.get("height") else None
    seconds = None
    if isinstance(values.get("num_frames"), int) and values.get("fps"):
        seconds = f"{(values['num_frames'] - 1) / values['fps']:.3g}"  # 8k+1 frames: the last one is the end
    return seconds, size


@dataclass(frozen=True)
class OpenAIMapping:
    """A model on `/v1/videos`. `names(args)` are the `model` values this deployment answers to (the first is
    the one its Video objects show); the catalogue name always works too."""

    names: Callable[[Any], tuple[str, ...]]
    request: VideoRequest
    # the model request's field -> the OpenAI field its errors are reported under (e.g. `duration` -> `seconds`)
    fields: Mapping[str, str] = field(default_factory=dict)
    remix: Remix | None = None  # None: `POST /v1/videos/{id}/remix` is a 400 for this model's videos
    describe: Describe = describe_from_params

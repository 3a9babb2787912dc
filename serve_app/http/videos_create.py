"""The body of `POST /v1/videos` (and of a remix), read from JSON or `multipart/form-data` alike.

openai 2.2-2.26 sends JSON when no file is attached (numbers stay numbers, `extra_body` merged at the top);
2.27 and later always send multipart (every value a string, `extra_body` keys as more form fields). Both read
here into the model name and `VideoFields`. A file part is stored under the caller's uploads, named by its content
hash: a retried request (the SDK retries without an idempotency key) names the same upload, so with an
`Idempotency-Key` it is the same body.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from starlette.datastructures import UploadFile

from deployments.contract import Reference, VideoFields
from serve_app.errors import InvalidInput
from serve_app.schemas import Caller
from serve_app.storage.backends import Storage

SIZE = re.compile(r"\s*(\d{1,5})\s*[xX]\s*(\d{1,5})\s*")
MEDIA_KINDS = ("image", "video", "audio")
CHUNK = 1 << 20


class StandardFields(BaseModel):
    """The fields OpenAI's create defines, checked; anything else is a model's extra field."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = Field(None, min_length=1, max_length=64, description="A served model, e.g. ltx-2.")
    prompt: str | None = Field(None, min_length=1, max_length=32000, description="What the video shows.")
    seconds: float | None = Field(None, description='Length in seconds: a string ("4") or a number.')
    size: tuple[int, int] | None = Field(None, description='"{width}x{height}" in pixels.')

    @field_validator("seconds", mode="before")
    @classmethod
    def _number(cls, value: Any) -> float | None:
        if value is None:
            return None
        if isinstance(value, bool):
            raise ValueError('must be a number of seconds, e.g. "4"')
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            raise ValueError(f'must be a number of seconds, e.g. "4"; got {str(value)[:40]!r}') from None
        if not math.isfinite(seconds):
            raise ValueError("must be a finite number of seconds")
        return seconds

    @field_validator("size", mode="before")
    @classmethod
    def _width_x_height(cls, value: Any) -> tuple[int, int] | None:
        if value is None:
            return None
        match = SIZE.fullmatch(value) if isinstance(value, str) else None
        if match is None:
            raise ValueError(f'must be "{{width}}x{{height}}" in pixels, e.g. "768x512"; got {str(value)[:40]!r}')
        return int(match[1]), int(match[2])


def _create_body_doc() -> dict[str, Any]:
    """The create body in /openapi.json (the route reads it by hand: JSON and multipart alike)."""
    schema = StandardFields.model_json_schema()
    properties = schema["properties"]
    properties["size"] = {"type": "string", "pattern": r"^\d+x\d+$", "description": properties["size"]["description"]}
    seconds_doc = properties["seconds"]["description"]
    properties["seconds"] = {"anyOf": [{"type": "string"}, {"type": "number"}], "description": seconds_doc}
    properties["input_reference"] = {
        "description": "An image file (multipart), or {image_url} / {file_id: an upload key} (JSON)."
    }
    schema["additionalProperties"] = True  # a model's own fields: seed, negative_prompt, audio...
    schema["required"] = ["prompt"]
    content = {"application/json": {"schema": schema}, "multipart/form-data": {"schema": schema}}
    return {"requestBody": {"required": True, "content": content}}


CREATE_BODY = _create_body_doc()


@dataclass(frozen=True)
class UploadLimits:
    """Where the files of a request go, and how big one may be."""

    storage: Storage
    max_bytes: int


async def read_create(request: Request, caller: Caller, limits: UploadLimits) -> tuple[str | None, VideoFields]:
    """(model name, fields) of a create request, JSON or multipart; InvalidInput names the field at fault."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        values = await _form_values(request, caller, limits)
    elif content_type in ("application/json", ""):
        values = await _json_values(request)
    else:
        raise InvalidInput("body", f"send application/json or multipart/form-data, not {content_type[:60]}")
    return split_fields(values)


def split_fields(values: dict[str, Any]) -> tuple[str | None, VideoFields]:
    """The standard fields checked, `input_reference` read, the rest passed on as the model's extra fields."""
    standard = {name: values.pop(name) for name in ("model", "prompt", "seconds", "size") if name in values}
    reference = values.pop("input_reference", None)
    try:
        checked = StandardFields.model_validate(standard)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][0]) if error["loc"] else "body"
        raise InvalidInput(field, str(error["msg"]).removeprefix("Value error, ")) from None
    fields = VideoFields(
        prompt=checked.prompt,
        seconds=checked.seconds,
        size=checked.size,
        input_reference=_reference(reference),
        extra=values,
    )
    return checked.model, fields


def _reference(value: Any) -> Reference | None:
    """`input_reference`: a stored file, `{"image_url": ...}` or `{"file_id": <upload key>}`, or the same as text."""
    if value is None or isinstance(value, Reference):
        return value
    if isinstance(value, str):
        return Reference.from_text(value, "image")
    if isinstance(value, dict) and len(value) == 1:
        name, given = next(iter(value.items()))
        if name in ("image_url", "file_id") and isinstance(given, str) and given:
            return Reference.from_text(given, "image") if name == "image_url" else Reference(key=given)
    raise InvalidInput("input_reference", 'give a file, or exactly one of {"image_url": ...} or {"file_id": ...}')


async def _json_values(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        values = json.loads(raw) if raw.strip() else {}
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput("body", "is not valid JSON") from None
    if not isinstance(values, dict):
        raise InvalidInput("body", "must be a JSON object")
    return values


async def _form_values(request: Request, caller: Caller, limits: UploadLimits) -> dict[str, Any]:
    """Form fields as values (JSON arrays and objects decoded), files stored as upload references."""
    values: dict[str, Any] = {}
    async with request.form(max_files=8, max_fields=200) as form:
        for name, value in form.multi_items():
            if name in values:
                raise InvalidInput(name, "is given more than once")
            if isinstance(value, UploadFile):
                values[name] = await store_file(name, value, caller, limits)
            else:
                values[name] = _form_value(value)
    return values


def _form_value(value: str) -> Any:
    """A form field's text; `[...]` and `{...}` are read as JSON (a list or object field sent as a form field)."""
    if value[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


async def store_file(field: str, upload: UploadFile, caller: Caller, limits: UploadLimits) -> Reference:
    """Store a file part under `uploads/{key_id}-v1/`, named by its content hash; its kind from its type."""
    kind = (upload.content_type or "").split("/")[0]
    if kind not in MEDIA_KINDS:
        guessed = {".png": "image", ".jpg": "image", ".jpeg": "image", ".webp": "image", ".mp4": "video"}
        kind = guessed.get(Path(upload.filename or "").suffix.lower(), "")
    if kind not in MEDIA_KINDS:
        raise InvalidInput(field, f"a file of type {upload.content_type or 'unknown'} is not an image, video or audio")
    digest, size = hashlib.sha256(), 0
    with tempfile.NamedTemporaryFile(prefix="v1-upload-") as spool:
        while chunk := await upload.read(CHUNK):
            size += len(chunk)
            if size > limits.max_bytes:
                raise InvalidInput(field, f"the file is over the {limits.max_bytes} byte limit")
            digest.update(chunk)
            spool.write(chunk)
        spool.flush()
        if size == 0:
            raise InvalidInput(field, "the file is empty")
        suffix = re.sub(r"[^a-z0-9]", "", Path(upload.filename or "").suffix.lower())[:8] or "bin"
        # `uploads/{key_id}-...`: the gateway's upload prefix, so the upload-owner check accepts it
        key = f"uploads/{caller.key_id}-v1/{kind}-{digest.hexdigest()[:32]}.{suffix}"
        content_type = upload.content_type or f"{kind}/{suffix}"
        await asyncio.to_thread(limits.storage.put_file, key, Path(spool.name), content_type)
    return Reference(kind=kind, key=key)  # type: ignore[arg-type]

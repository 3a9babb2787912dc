"""The OpenAI Videos API's shapes (`/v1/videos`): the Video object, its list page, the delete answer, the error
envelope, and how a job's view reads as a Video. Field names and meanings follow OpenAI's API reference."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from deployments.contract import ModelArgs, ModelSpec
from serve_app.schemas import JobView
from serve_app.storage.backends import Storage

VideoStatus = Literal["queued", "in_progress", "completed", "failed"]
STATUS = {"queued": "queued", "processing": "in_progress", "completed": "completed"}  # the rest read as failed
ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error", 404: "not_found"}
ERROR_TYPES |= {409: "conflict", 429: "rate_limit_exceeded", 503: "service_unavailable"}


@dataclass(frozen=True)
class VideosContext:
    """What the `/v1/videos` surface needs of its gateway besides the API calls: the enabled models and their args,
    the storage (files sent with a request, previews, remix sources), and the limits that show in its answers."""

    models: Mapping[str, tuple[ModelSpec, ModelArgs]]
    storage: Storage
    max_input_bytes: int
    retention_s: float | None  # finished jobs are deleted after this long (None: kept)


class VideoError(BaseModel):
    code: str
    message: str


class Video(BaseModel):
    """A video job, as OpenAI's `VideoResource`."""

    id: str
    object: Literal["video"] = "video"
    model: str = Field(description="The model name the job was created with.")
    status: VideoStatus
    progress: int = Field(ge=0, le=100, description="Approximate completion percentage.")
    created_at: int = Field(description="Unix seconds.")
    completed_at: int | None = Field(description="Unix seconds, once it ended.")
    expires_at: int | None = Field(description="Unix seconds when the downloadable assets expire; null: kept.")
    prompt: str | None
    seconds: str | None = Field(description="Length of the video in seconds, as made.")
    size: str | None = Field(description="`{width}x{height}` of the video, as made.")
    remixed_from_video_id: str | None
    error: VideoError | None


class VideoList(BaseModel):
    """A page of the caller's videos."""

    object: Literal["list"] = "list"
    data: list[Video]
    first_id: str | None
    last_id: str | None
    has_more: bool


class VideoDeleted(BaseModel):
    id: str
    object: Literal["video.deleted"] = "video.deleted"
    deleted: bool = True


def openai_error(
    status: int, message: str, param: str | None = None, code: str | None = None, kind: str | None = None
) -> JSONResponse:
    """OpenAI's error envelope: `{"error": {"message", "type", "param", "code"}}`, `type` by the status unless
    given. 422s read as 400s, as OpenAI's own validation errors do."""
    status = 400 if status == 422 else status
    kind = kind or ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return JSONResponse(body, status_code=status)


def video_of(view: JobView, model_name: str, seconds: str | None, size: str | None, expires_s: int | None) -> Video:
    """The Video object of a job. A cancelled job reads as failed (the API has no cancelled state)."""
    labels: dict[str, Any] = view.labels
    error = None
    if view.status in ("failed", "cancelled"):
        error = VideoError(
            code=view.error_code or view.status, message=view.error_message or f"the job was {view.status}"
        )
    completed_at = int(view.completed_at.timestamp()) if view.completed_at else None
    expires_at = completed_at + expires_s if completed_at is not None and expires_s else None
    return Video(
        id=view.job_id,
        model=labels.get("model") or model_name,
        status=STATUS.get(view.status, "failed"),  # type: ignore[arg-type]
        progress=int(view.progress),
        created_at=int(view.created_at.timestamp()),
        completed_at=completed_at,
        expires_at=expires_at,
        prompt=labels.get("prompt") or view.params.get("prompt"),
        seconds=seconds,
        size=size,
        remixed_from_video_id=labels.get("remixed_from"),
        error=error,
    )

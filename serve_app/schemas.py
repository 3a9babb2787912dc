"""HTTP requests and views, and the job record kept in storage. `Field(description=...)` is the API doc."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, HttpUrl, model_validator

from deployments.ltx2.args import CAMERA_MOTIONS
from deployments.ltx2.params import RESOLUTION_PRESETS

JobStatus = Literal["queued", "processing", "completed", "failed", "cancelled"]
TERMINAL: frozenset[str] = frozenset({"completed", "failed", "cancelled"})
CameraMotion = Literal[CAMERA_MOTIONS]  # type: ignore[valid-type]
Resolution = Literal[tuple(RESOLUTION_PRESETS)]  # type: ignore[valid-type]
UploadKey = Annotated[str, Field(pattern=r"^uploads/[A-Za-z0-9_-]{1,64}/[A-Za-z0-9_.-]{1,64}$", max_length=200)]


def utcnow() -> datetime:
    return datetime.now(UTC)


def _exactly_one(model: BaseModel, fields: tuple[str, ...], required: bool) -> str | None:
    """Name of the one field set among `fields`; else a ValueError. Cross-field messages start with
    `field:` so the 422 handler can name the field (pydantic gives model-level errors no field)."""
    given = [f for f in fields if getattr(model, f) is not None]
    if len(given) > 1:
        raise ValueError(f"{given[1]}: give only one of {', '.join(fields)}; got {', '.join(given)}")
    if required and not given:
        raise ValueError(f"{fields[0]}: one of {', '.join(fields)} is required")
    return given[0] if given else None


class LTX2Request(BaseModel):
    """Text-to-video, or image-to-video when an image is given."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    model: Literal["ltx2"]
    prompt: str = Field(min_length=1, max_length=4000, description="What the video shows.")
    negative_prompt: str = Field("", max_length=4000, description="What the video should avoid.")
    image_url: HttpUrl | None = Field(None, description="First frame, fetched over http(s).")
    image_base64: str | None = Field(None, description="First frame as base64 (or a data: URI).")
    image_key: UploadKey | None = Field(None, description="First frame uploaded through /api/v1/presign/upload.")
    quality: Literal["fast", "pro"] = Field(
        "fast",
        validation_alias=AliasChoices("quality", "mode"),
        description="fast = distilled, few steps; pro = full model, two stages. Alias: mode.",
    )
    width: int | None = Field(None, ge=64, le=4096, description="Snapped to a multiple of 32 (64 for pro).")
    height: int | None = Field(None, ge=64, le=4096, description="Snapped to a multiple of 32 (64 for pro).")
    resolution: Resolution | None = Field(None, description="A preset instead of width/height.")
    duration: float = Field(5.0, gt=0, le=60, description="Seconds; snapped to 8k+1 frames at `fps`.")
    fps: int = Field(24, ge=1, le=60, description="Frames per second of the output.")
    seed: int | None = Field(None, ge=0, le=2**32 - 1, description="Same seed, same video. Random if absent.")
    camera_lora: CameraMotion = Field("static", description="Camera motion LoRA.")
    webhook_url: HttpUrl | None = Field(None, description="Receives a signed POST when the job ends.")

    @model_validator(mode="after")
    def _one_size_source(self) -> LTX2Request:
        if self.resolution is not None and (self.width is not None or self.height is not None):
            raise ValueError("resolution: give either resolution or width/height, not both")
        if (self.width is None) != (self.height is None):
            raise ValueError(f"{'height' if self.height is None else 'width'}: width and height go together")
        _exactly_one(self, ("image_url", "image_base64", "image_key"), required=False)
        return self


class Wav2LipRequest(BaseModel):
    """Lip-sync a face (video or still image) to an audio track."""

    model_config = ConfigDict(extra="forbid")

    model: Literal["wav2lip"]
    video_url: HttpUrl | None = Field(None, description="Face video, fetched over http(s).")
    video_key: UploadKey | None = Field(None, description="Face video uploaded through presign.")
    image_url: HttpUrl | None = Field(None, description="Still face image, fetched over http(s).")
    image_key: UploadKey | None = Field(None, description="Still face image uploaded through presign.")
    audio_url: HttpUrl | None = Field(None, description="Speech audio (wav, mp3, m4a, ogg, flac...).")
    audio_key: UploadKey | None = Field(None, description="Speech audio uploaded through presign.")
    fps: float = Field(25.0, gt=0, le=60, description="Output fps for a still image (a video keeps its own).")
    pads: tuple[int, int, int, int] = Field(
        (0, 10, 0, 0), description="Pixels added to the face box: top, bottom, left, right."
    )
    smooth: bool = Field(True, description="Average face boxes over 5 frames to steady the mouth region.")
    blend: Literal["feather", "hard"] = Field("feather", description="Feathered paste, or the official hard box.")
    on_no_face: Literal["keep", "fail"] = Field("keep", description="A frame without a face: keep it, or fail.")
    webhook_url: HttpUrl | None = Field(None, description="Receives a signed POST when the job ends.")

    @model_validator(mode="after")
    def _one_face_one_audio(self) -> Wav2LipRequest:
        _exactly_one(self, ("video_url", "video_key", "image_url", "image_key"), required=True)
        _exactly_one(self, ("audio_url", "audio_key"), required=True)
        if any(p < 0 or p > 256 for p in self.pads):
            raise ValueError("pads: each must be between 0 and 256 pixels")
        return self


GenerateRequest = Annotated[LTX2Request | Wav2LipRequest, Field(discriminator="model")]


class PresignUploadRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    input_type: Literal["image", "video", "audio"]
    content_type: str = Field(pattern=r"^(image|video|audio)/[A-Za-z0-9.+-]{1,64}$", description="MIME type.")
    job_id: str | None = Field(None, pattern=r"^[A-Za-z0-9_-]{1,64}$", description="Groups uploads; optional.")

    @model_validator(mode="after")
    def _type_matches(self) -> PresignUploadRequest:
        if self.content_type.split("/")[0] != self.input_type:
            raise ValueError(f"content_type: {self.content_type} is not an {self.input_type} type")
        return self


class JobError(BaseModel):
    code: str
    message: str


class WebhookState(BaseModel):
    url: str
    attempts: int = 0
    delivered: bool = False
    last_status: int | None = None
    last_error: str | None = None


class JobRecord(BaseModel):
    """`jobs/{job_id}/job.json`. The JobQueue of the job's model is its only writer."""

    job_id: str
    model: str
    status: JobStatus = "queued"
    stage: str = "queued"
    progress: float = Field(0.0, ge=0, le=100)
    attempts: int = 0
    params: dict[str, Any]
    inputs: dict[str, str] = Field(default_factory=dict)
    output_key: str
    weights: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)
    error: JobError | None = None
    webhook: WebhookState | None = None
    cancel_requested: bool = False
    idempotency_hash: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    started_at: datetime | None = None
    completed_at: datetime | None = None
    heartbeat_at: datetime | None = None

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL


class JobView(BaseModel):
    """`GET /api/v1/jobs/{id}`."""

    job_id: str
    model: str
    status: JobStatus
    progress: float = Field(description="0-100.")
    stage: str
    queue_position: int | None = Field(description="Jobs ahead of this one; null once it runs.")
    result_url: str | None = Field(description="Signed download URL of the mp4 once completed.")
    error_message: str | None
    error_code: str | None
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    attempts: int
    params: dict[str, Any] = Field(description="The parameters used, after snapping.")
    details: dict[str, Any] = Field(description="What the model reported using (sizes, frames, seed).")
    weights: str | None = Field(description="Weights source; 'random-tiny' means no real model is loaded.")


class CreatedView(BaseModel):
    """`201` answer of `POST /api/v1/generate`."""

    job_id: str
    model: str
    status: JobStatus
    created_at: datetime
    params: dict[str, Any]


class PresignUploadView(BaseModel):
    upload_url: str
    key: str
    expires_in: int
    method: Literal["PUT"] = "PUT"


class PresignDownloadView(BaseModel):
    download_url: str
    expires_in: int

"""The spine's HTTP requests and views, and the job record kept in storage. Each model's request body is in
its own package (its `ModelSpec.request`). `Field(description=...)` is the API doc."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

JobStatus = Literal["queued", "processing", "completed", "failed", "cancelled"]
TERMINAL: frozenset[str] = frozenset({"completed", "failed", "cancelled"})


def utcnow() -> datetime:
    return datetime.now(UTC)


class PresignUploadRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    input_type: Literal["image", "video", "audio"]
    content_type: str = Field(pattern=r"^(image|video|audio)/[A-Za-z0-9.+-]{1,64}$", description="MIME type.")
    size: int = Field(
        ge=0,
        description="The file's exact size in bytes. The upload URL is signed for this length: a PUT of any other "
        "length is refused and stores nothing. Over the largest file any enabled model takes for `input_type`, "
        "the presign itself is refused (413).",
    )
    job_id: str | None = Field(None, pattern=r"^[A-Za-z0-9_-]{1,64}$", description="Groups uploads; optional.")

    @model_validator(mode="after")
    def _type_matches(self) -> PresignUploadRequest:
        if self.content_type.split("/")[0] != self.input_type:
            raise ValueError(f"content_type: {self.content_type} is not an {self.input_type} type")
        return self


@dataclass(frozen=True)
class Caller:
    """Who is calling: the id of their key (never the key) and whether it is an admin key."""

    key_id: str
    admin: bool = False
    tenant: str = "default"  # the configured name of the key; unnamed keys share `default`

    @property
    def scope(self) -> str | None:
        """The owner whose jobs this caller may see; None (every owner) for an admin key."""
        return None if self.admin else self.key_id


class JobError(BaseModel):
    code: str
    message: str


class WebhookState(BaseModel):
    url: str
    attempts: int = 0
    delivered: bool = False
    last_status: int | None = None
    last_error: str | None = None


class RunTiming(BaseModel):
    """One attempt's run on a model replica, as the queue saw it: from its first report to its end."""

    attempt: int
    started_at: datetime
    ended_at: datetime | None = None  # None while it runs
    devices: float = Field(1.0, description="GPUs of the replica (a replica without a GPU counts as one device).")
    accelerator: str = "cpu"
    produced_result: bool = False  # the run whose outcome the job ended with (not a crashed or lost one)


class Usage(BaseModel):
    """What a job used. `gpu_s` counts every attempt (the operator's cost); `billable_gpu_s` and `cost` only the
    run that produced the result (the caller's)."""

    queued_s: float = Field(0.0, description="Submission to the first run's start (or to the end, if it never ran).")
    run_s: float = Field(0.0, description="Wall time of every run, summed over attempts (and stages of a chain).")
    gpu_s: float = Field(0.0, description="Run time x GPUs of the replica, summed over attempts, crashed ones too.")
    billable_gpu_s: float = Field(0.0, description="GPU-seconds of the run(s) that produced the result.")
    accelerator: str | None = Field(None, description="Accelerator type(s) the job ran on, `+`-joined for a chain.")
    attempts: int = Field(0, description="Runs started (all stages of a chain).")
    cost: float = Field(0.0, description="billable_gpu_s x the configured price per GPU-hour of the accelerator.")


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
    owner: str | None = None  # the key id of the creator; records from before ownership have none
    labels: dict[str, str] = Field(default_factory=dict)  # what the creating surface keeps (`api: openai`, `model`...)
    revision: int = 0  # bumped on every visible change; the id of the job's SSE events
    created_at: datetime = Field(default_factory=utcnow)
    started_at: datetime | None = None
    completed_at: datetime | None = None
    heartbeat_at: datetime | None = None
    tenant: str | None = None  # the configured name of the creator's key (`default` if unnamed); a stage: its chain's
    runs: list[RunTiming] = Field(default_factory=list)  # one per attempt that started running
    usage: Usage | None = None  # set at the terminal state

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
    thumbnail_url: str | None = Field(None, description="Signed URL of a WebP poster of the video once completed.")
    spritesheet_url: str | None = Field(
        None, description="Signed URL of a JPEG grid of evenly spaced frames of the video once completed."
    )
    labels: dict[str, str] = Field(
        default_factory=dict,
        description="What the API that created the job keeps with it (on /v1/videos: the model name asked for, the "
        "prompt, the video a remix came from).",
    )
    usage: Usage | None = Field(None, description="Time, GPU-seconds and cost; set once the job has ended.")


class JobListView(BaseModel):
    """`GET /api/v1/jobs`: a page of the caller's jobs, newest first."""

    jobs: list[JobView]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")


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


class UsageTotals(BaseModel):
    """Sums over a set of ended jobs."""

    jobs: dict[str, int] = Field(default_factory=dict, description="Ended jobs by status.")
    queued_s: float = 0.0
    run_s: float = 0.0
    gpu_s: float = 0.0
    billable_gpu_s: float = 0.0
    cost: float = 0.0


class UsageRow(UsageTotals):
    """The totals of one tenant for one day or one model."""

    tenant: str
    group: str = Field(description="The day (YYYY-MM-DD) or the model, as `group_by` asked.")


class UsageView(BaseModel):
    """`GET /api/v1/usage`: ended jobs counted from the usage ledger, by the UTC day they were submitted."""

    start: str = Field(description="First day counted (YYYY-MM-DD, UTC).")
    end: str = Field(description="Last day counted (YYYY-MM-DD, UTC), included.")
    group_by: Literal["day", "model"]
    rows: list[UsageRow]
    totals: UsageTotals

"""The contract between the job queue and a model: what a job looks like to a runner, and what it returns.

A *runner* is a plain Python object that holds one model's weights and turns one job into one video file.
The Serve wrapper in the spine (`serve_app/runs/replica.py`) owns storage, the per-job directory and progress reporting,
so a runner only sees local paths and a `Reporter`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, NonNegativeFloat, PositiveFloat, PositiveInt, model_validator

from deployments.contract.limits import InputLimits, over_defaults

if TYPE_CHECKING:
    import torch

RANDOM_WEIGHTS = "random-tiny"


class PlacementArgs(BaseModel):
    """Where a model's replicas run and how many there may be (applied by the app builder)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    num_cpus: NonNegativeFloat = Field(1.0, description="CPUs reserved per replica.")
    num_gpus: NonNegativeFloat = Field(0.0, description="GPUs per replica (1 in production).")
    accelerator_type: str | None = Field(None, description="Ray accelerator_type, e.g. A100.")
    resources: dict[str, float] = Field(default_factory=dict, description="Custom Ray resources, e.g. rtx4090.")
    min_replicas: int = Field(0, ge=0, description="Autoscaling floor; 0 scales to zero when idle.")
    max_replicas: PositiveInt = Field(1, description="Autoscaling ceiling.")
    initial_replicas: int | None = Field(None, ge=0, description="Replicas started at deploy time.")
    upscale_delay_s: NonNegativeFloat = Field(5.0, description="Backlog must persist this long to add replicas.")
    downscale_delay_s: NonNegativeFloat = Field(300.0, description="Idle time before replicas are removed.")
    look_back_period_s: float = Field(
        15.0, gt=0, description="Window over which queue depth is averaged (longer than Serve's 10 s metric push)."
    )
    graceful_shutdown_timeout_s: NonNegativeFloat = Field(
        1800.0, description="A downscaled replica may finish its job for this long; longer than any job."
    )


class ModelArgs(BaseModel):
    """Settings every model shares; each model package subclasses this with its own options."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(True, description="Deploy this model and accept its jobs.")
    runner: str | None = Field(
        None, description="Import path `module:Class` of the runner; None = the model's own (tests inject fakes)."
    )
    weights: str | None = Field(
        None, description="Weights source: a local path, hf://org/repo[@rev], or s3://bucket/prefix."
    )
    allow_random_weights: bool = Field(
        False, description="With no `weights`, build tiny random models (local profile only)."
    )
    weights_cache_dir: str = Field(
        "~/.cache/video-serve/weights", description="Node-local directory that caches downloaded weights."
    )
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto = cuda when a GPU is visible.")
    placement: PlacementArgs = Field(default_factory=PlacementArgs)
    limits: InputLimits = Field(
        default_factory=InputLimits,
        description="Bounds of each input kind, checked from headers at staging and while the replica decodes. "
        "A field left out keeps the model's own default for that kind.",
    )

    @model_validator(mode="before")
    @classmethod
    def _limits_over_own_defaults(cls, data: Any) -> Any:
        """Config naming some limits (`limits: {video: {max_fps: 60}}`) keeps this model's own defaults for the
        rest, not the generic ones a bare `MediaLimits` would start from."""
        if isinstance(data, dict) and "limits" in data:
            defaults = cls.model_fields["limits"].get_default(call_default_factory=True)
            data = {**data, "limits": over_defaults(defaults, data["limits"])}
        return data


def resolve_device(device: Literal["auto", "cpu", "cuda"]) -> torch.device:
    """The torch device for `ModelArgs.device`: auto = cuda when a GPU is visible; cuda without one is an error."""
    import torch  # here, not at the top: the gateway imports this module and needs no torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' is configured but torch sees no GPU on this node")
    return torch.device(device)


class JobSpec(BaseModel):
    """One job as a model replica receives it from the queue."""

    model_config = ConfigDict(frozen=True)

    job_id: str
    model: str
    attempt: PositiveInt
    params: dict[str, Any] = Field(description="The validated request fields of the job's model.")
    inputs: dict[str, str] = Field(default_factory=dict, description="Input name -> storage key.")
    output_key: str
    heartbeat_s: PositiveFloat = Field(10.0, description="Report at least this often while running.")
    tenant: str | None = Field(None, description="Whose job it is (a key's name); a chain gives it to its stages.")


class RunOutput(BaseModel):
    """What a runner hands back: the finished video on local disk and the parameters it really used."""

    video_path: Path
    content_type: str = "video/mp4"
    details: dict[str, Any] = Field(default_factory=dict)


class Reporter(Protocol):
    """Progress and cancellation, as a runner sees them. Both calls are cheap and never block on the network."""

    def report(self, stage: str, progress: float) -> None:
        """Record the current stage and the whole job's progress as a fraction in [0, 1]."""

    def raise_if_cancelled(self) -> None:
        """Raise `JobCancelled` if the job was cancelled; call it between steps or batches."""


class ModelRunner(Protocol):
    """A loaded model. Constructed once per replica with its `ModelArgs` subclass; runs one job at a time."""

    weights: str  # RANDOM_WEIGHTS or the source the weights came from; written into each job record

    def run(self, job: JobSpec, inputs: dict[str, Path], workdir: Path, reporter: Reporter) -> RunOutput:
        """Turn one job into a video under `workdir`. Raise `JobFailed` for input a retry cannot fix."""

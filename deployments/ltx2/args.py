"""Settings of the LTX-2 deployment (serve_config.yaml `args.ltx2`). Light: imported by the gateway too."""

from __future__ import annotations

from pydantic import Field, PositiveInt

from deployments.base import ModelArgs

CAMERA_MOTIONS = ("static", "dolly_in", "dolly_out", "dolly_left", "dolly_right", "jib_up", "jib_down")


class LTX2Args(ModelArgs):
    runner: str = Field("deployments.ltx2.runner:LTX2Runner", description="Import path of the runner.")
    camera_loras: dict[str, str] = Field(
        default_factory=dict,
        description="Camera motion -> LoRA source (local path, hf://, s3://). `static` with no entry = base model.",
    )
    max_duration_s: float = Field(10.0, gt=0, description="Longest clip a request may ask for, in seconds.")
    max_side: PositiveInt = Field(1920, description="Largest width or height a request may ask for, in pixels.")

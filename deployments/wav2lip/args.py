"""Settings of the Wav2Lip deployment (serve_config.yaml `args.wav2lip`). Light: imported by the gateway too."""

from __future__ import annotations

from pydantic import Field, PositiveInt

from deployments.base import ModelArgs


class Wav2LipArgs(ModelArgs):
    runner: str = Field("deployments.wav2lip.runner:Wav2LipRunner", description="Import path of the runner.")
    max_duration_s: float = Field(120.0, gt=0, description="Longest audio (and so output) accepted, in seconds.")
    max_side: PositiveInt = Field(1920, description="Largest width or height of the face video or image.")

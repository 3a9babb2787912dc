"""Settings of the Wav2Lip deployment (serve_config.yaml `args.wav2lip`). Light: imported by the gateway too."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, PositiveInt

from deployments.contract import InputLimits, MediaLimits, ModelArgs


def _limits() -> InputLimits:
    """A face video up to 4K and ten minutes (only as much as the audio needs is read); speech up to ten minutes.
    `max_side` and `max_duration_s` below are the tighter limits of what Wav2Lip renders."""
    video = MediaLimits(max_file_mb=1000, max_width=3840, max_height=3840, max_pixels=3840 * 2160)
    return InputLimits(video=video)


class Wav2LipArgs(ModelArgs):
    limits: InputLimits = Field(
        default_factory=_limits,
        description="Bounds of the face (image or video) and the audio, checked from headers before decoding.",
    )
    max_duration_s: float = Field(120.0, gt=0, description="Longest audio (and so output) accepted, in seconds.")
    max_side: PositiveInt = Field(1920, description="Largest width or height of the face video or image.")
    batch_size: PositiveInt = Field(
        16,
        description="Faces per generator call. 8-16 is fastest on CPU (larger batches fall out of cache); "
        "use 64-128 on a GPU (the official script uses 128).",
    )
    precision: Literal["auto", "fp32", "fp16", "bf16"] = Field(
        "auto",
        description="Generator precision. auto: fp16 autocast on CUDA, fp32 on CPU (as the official recipe). "
        "bf16/fp16: autocast to that type (bf16 on CPU pays off only with native AVX512-BF16/AMX).",
    )
    detector: Literal["auto", "s3fd", "opencv"] = Field(
        "auto", description="Face detector: auto = s3fd when `detector_weights` is set, else OpenCV's Haar cascade."
    )
    detector_weights: str | None = Field(
        None, description="S3FD weights (s3fd-619a316812.pth) as a local path, hf://org/repo/file or s3://bucket/key."
    )
    face_det_batch_size: PositiveInt = Field(16, description="Frames per face-detector call.")
    detect_max_side: PositiveInt | None = Field(
        480,
        description="Frames are shrunk to this longest side for detection (boxes are scaled back); None = full size.",
    )
    detect_every: PositiveInt = Field(
        5,
        description="Detect every Nth frame and interpolate boxes between (a gap gets a face only if both ends "
        "have one); 1 = every frame, as the official script.",
    )
    smooth_window: PositiveInt = Field(5, description="Frames averaged per box when a job asks for smoothing.")
    video_crf: int = Field(18, ge=0, le=51, description="libx264 constant rate factor of the output (lower = better).")
    video_preset: Literal["ultrafast", "superfast", "veryfast", "faster", "fast", "medium"] = Field(
        "veryfast", description="libx264 speed/size trade-off of the output."
    )

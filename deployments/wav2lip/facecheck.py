"""A face check of a still image before a job is queued, with the detector the Wav2Lip replicas use.

Runs where requests are checked (the gateway, on CPU): a still face image without a face would give a video
with no lip-sync at all, and a chained job would have spent its first stage's GPU minutes for nothing.
"""

from __future__ import annotations

import functools
from pathlib import Path

import torch

from deployments.images import image_array
from deployments.wav2lip.args import Wav2LipArgs
from deployments.wav2lip.face import FaceDetector, build_detector
from deployments.wav2lip.pipeline import shrink
from deployments.wav2lip.runner import checkpoint_file
from deployments.weights import fetch_weights


@functools.cache
def _detector(kind: str, weights: str | None, cache_dir: str) -> FaceDetector:
    """One detector per process and configuration: S3FD weights load once, the Haar cascade costs nothing."""
    path = checkpoint_file(fetch_weights(weights, cache_dir)) if weights else None
    return build_detector(kind, path, torch.device("cpu"))


def image_has_face(image: str | Path, args: Wav2LipArgs) -> bool:
    """Whether the configured detector finds a face in `image`, shrunk as the replicas shrink frames."""
    frame = shrink(image_array(image, args.limits.image), args.detect_max_side)
    detector = _detector(args.detector, args.detector_weights, args.weights_cache_dir)
    return len(detector.detect([frame])[0]) > 0

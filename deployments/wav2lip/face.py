"""Face boxes for Wav2Lip: a detector (S3FD with weights, OpenCV's bundled Haar cascade without) and the
per-frame box arithmetic around it (choosing, rescaling, padding, gap filling and smoothing).

Boxes are float arrays [x1, y1, x2, y2]; a frame without a face has a NaN row in a (frames, 4) track.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
import torch

from deployments.wav2lip.s3fd import S3FDDetector

logger = logging.getLogger(__name__)

_CASCADE = "haarcascade_frontalface_default.xml"
# Haar boxes end at the lower lip; S3FD's (what Wav2Lip was used with) reach the chin
_HAAR_CHIN_EXTENSION = 0.2


class FaceDetector(Protocol):
    """Finds faces in same-sized BGR frames."""

    def detect(self, frames: Sequence[np.ndarray]) -> list[np.ndarray]:
        """(k, 5) [x1, y1, x2, y2, score] arrays, one per frame, best face first (k may be 0)."""


class HaarDetector:
    """OpenCV's bundled frontal-face Haar cascade: no download, CPU only, frontal faces only."""

    def __init__(self) -> None:
        path = Path(cv2.data.haarcascades) / _CASCADE
        self._cascade = cv2.CascadeClassifier(str(path))
        if self._cascade.empty():  # OpenCV 5 no longer ships the cascades (we pin <5)
            raise RuntimeError(f"OpenCV Haar cascade {path} is missing; install opencv-python-headless<5")

    def detect(self, frames: Sequence[np.ndarray]) -> list[np.ndarray]:
        """(k, 5) arrays per frame, ranked by the cascade's confidence (its final-stage weight)."""
        return [self._detect_one(frame) for frame in frames]

    def _detect_one(self, frame: np.ndarray) -> np.ndarray:
        gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        # faces under a tenth of the frame are too small to lip-sync well; skipping them halves the cost
        min_side = max(24, min(gray.shape) // 10)
        rects, _, weights = self._cascade.detectMultiScale3(
            gray, scaleFactor=1.1, minNeighbors=5, minSize=(min_side, min_side), outputRejectLevels=True
        )
        if len(rects) == 0:
            return np.zeros((0, 5), np.float32)
        x, y, w, h = np.asarray(rects, np.float32).T
        boxes = np.stack([x, y, x + w, y + h + _HAAR_CHIN_EXTENSION * h, np.ravel(weights)], axis=1)
        boxes[:, 3] = np.minimum(boxes[:, 3], gray.shape[0])
        return boxes[np.argsort(-boxes[:, 4])]


def build_detector(kind: str, weights: Path | None, device: torch.device) -> FaceDetector:
    """The detector named by `kind` ("auto" = S3FD when weights are given, else the Haar cascade)."""
    if kind == "s3fd" or (kind == "auto" and weights is not None):
        if weights is None:
            raise ValueError("detector 's3fd' needs detector_weights (the public s3fd-619a316812.pth)")
        return S3FDDetector(weights, device)
    logger.info("face detector: OpenCV Haar cascade (no S3FD weights configured)")
    return HaarDetector()


def best_boxes(detections: Sequence[np.ndarray], scale: float) -> np.ndarray:
    """(frames, 4) track of each frame's best face, divided by `scale` back to full-frame pixels."""
    track = np.full((len(detections), 4), np.nan)
    for i, faces in enumerate(detections):
        if len(faces):
            track[i] = np.clip(faces[0, :4], 0, None) / scale
    return track


def fill_between_keyframes(keys: np.ndarray, every: int, frames: int) -> np.ndarray:
    """Expand a track detected on every `every`-th frame to all `frames` by linear interpolation.

    A frame between two keyframes gets a face only when both have one: holding a box across a cut or
    a face leaving the picture would paste a mouth onto whatever is there now.
    """
    if every == 1:
        return keys[:frames]
    track = np.full((frames, 4), np.nan)
    for k in range(len(keys)):
        start = k * every
        end = min(start + every, frames)
        nxt = keys[k + 1] if k + 1 < len(keys) else keys[k]  # after the last keyframe, hold it
        t = (np.arange(start, end) - start)[:, None] / every
        track[start:end] = keys[k] * (1 - t) + nxt * t  # NaN at either end -> NaN
    return track


def smooth_track(track: np.ndarray, window: int) -> np.ndarray:
    """Mean of each box over the next `window` frames with a face, as the official script (forward-looking)."""
    if window <= 1 or len(track) == 0:
        return track
    out = track.copy()
    found = ~np.isnan(track[:, 0])
    for i in np.flatnonzero(found):
        lo = max(0, min(i, len(track) - window))  # near the end, the last `window` frames
        rows = track[lo : lo + window][found[lo : lo + window]]
        out[i] = rows.mean(axis=0)
    return out


def pad_box(box: np.ndarray, pads: Sequence[int], width: int, height: int) -> tuple[int, int, int, int]:
    """Integer (x1, y1, x2, y2) grown by pads (top, bottom, left, right) and clipped to the frame."""
    top, bottom, left, right = pads
    x1, y1, x2, y2 = (int(v) for v in box)
    return max(0, x1 - left), max(0, y1 - top), min(width, x2 + right), min(height, y2 + bottom)

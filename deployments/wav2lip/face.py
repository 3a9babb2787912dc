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
# Keyframes are up to `detect_every` frames apart: a moving face still overlaps itself this much, a neighbour does not
MIN_TRACK_IOU = 0.25


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


def scaled_faces(detections: Sequence[np.ndarray], scale: float) -> list[np.ndarray]:
    """Each frame's (k, 4) face boxes, divided by `scale` back to full-frame pixels."""
    return [np.clip(faces[:, :4].astype(np.float64), 0, None) / scale for faces in detections]


def iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Intersection over union of one box with each of (k, 4) `boxes`."""
    width = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    height = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    inter = width * height
    return inter / (_area(box[None])[0] + _area(boxes) - inter)


def _area(boxes: np.ndarray) -> np.ndarray:
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def follow_face(faces: Sequence[np.ndarray], start: int, first: np.ndarray) -> np.ndarray:
    """(frames, 4) track of one person: `first` at frame `start`, then, both ways, the face overlapping most the
    last one kept. A frame where none overlaps enough is a miss (NaN), never another person's face."""
    track = np.full((len(faces), 4), np.nan)
    track[start] = first
    for steps in (range(start + 1, len(faces)), range(start - 1, -1, -1)):
        last = first
        for k in steps:
            if not len(faces[k]):
                continue
            overlaps = iou(last, faces[k])
            best = int(np.argmax(overlaps))
            if overlaps[best] >= MIN_TRACK_IOU:
                track[k] = last = faces[k][best]
    return track


def largest_speaker(faces: Sequence[np.ndarray]) -> np.ndarray:
    """Track of the largest face of the first frame that has one (all NaN when no frame has a face)."""
    for k, found in enumerate(faces):
        if len(found):
            return follow_face(faces, k, found[int(np.argmax(_area(found)))])
    return np.full((len(faces), 4), np.nan)


def face_at(found: np.ndarray, x: float, y: float) -> np.ndarray | None:
    """The smallest of `found` boxes that contains the point (x, y), or None."""
    inside = found[(found[:, 0] <= x) & (x <= found[:, 2]) & (found[:, 1] <= y) & (y <= found[:, 3])]
    return inside[int(np.argmin(_area(inside)))] if len(inside) else None


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


def pad_track(track: np.ndarray, pads: Sequence[int], width: int, height: int) -> np.ndarray:
    """Boxes truncated to whole pixels, grown by pads (top, bottom, left, right) and clipped to the frame, in the
    official order (int() of the detector's box, then padding and clipping, before any smoothing)."""
    top, bottom, left, right = pads
    boxes = np.trunc(track)
    lo = np.maximum(0, boxes[:, :2] - (left, top))  # NaN (no face) stays NaN
    hi = np.minimum((width, height), boxes[:, 2:] + (right, bottom))
    return np.concatenate([lo, hi], axis=1)


def smooth_track(track: np.ndarray, window: int) -> np.ndarray:
    """Each box the truncated mean of the next `window` frames with a face, as the official script does it:
    in place (the last windows, which look back, see already smoothed boxes), truncated to whole pixels, and
    with its window for clips shorter than `window` (Python's negative slice start)."""
    if window <= 1 or len(track) == 0:
        return track
    out, found, frames = track.copy(), ~np.isnan(track[:, 0]), len(track)
    tail = frames - window if frames >= window else max(0, 2 * frames - window)  # boxes[len - T:]
    for i in np.flatnonzero(found):
        lo = i if i + window <= frames else tail
        rows = out[lo : lo + window][found[lo : lo + window]]
        out[i] = np.trunc(rows.mean(axis=0))
    return out

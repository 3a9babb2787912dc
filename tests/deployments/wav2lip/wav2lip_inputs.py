"""Helpers of the Wav2Lip tests (a module of its own so test files can import it): inputs and a fake reporter."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from skimage import data

from deployments.media import VideoWriter
from serve_app.errors import JobCancelled

SIZE, FPS, CLIP_FRAMES, AUDIO_S = 256, 25, 16, 1.0


class FakeReporter:
    """Records progress; raises `JobCancelled` at the `cancel_at`-th cancellation check when set."""

    def __init__(self, cancel_at: int | None = None) -> None:
        self.events: list[tuple[str, float]] = []
        self.checks = 0
        self.cancel_at = cancel_at

    def report(self, stage: str, progress: float) -> None:
        self.events.append((stage, progress))

    def raise_if_cancelled(self) -> None:
        self.checks += 1
        if self.cancel_at is not None and self.checks >= self.cancel_at:
            raise JobCancelled()


def astronaut(size: int = SIZE) -> np.ndarray:
    """skimage's astronaut photo as a BGR frame of `size` x `size`."""
    return cv2.resize(data.astronaut()[..., ::-1], (size, size), interpolation=cv2.INTER_AREA)


def speech_like(seconds: float, sample_rate: int = 16_000) -> np.ndarray:
    """Voiced harmonics with a 4 Hz syllable envelope and a little noise (mel features never NaN or flat)."""
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    voice = sum(np.sin(2 * np.pi * f0 * t) / k for k, f0 in enumerate((140, 280, 420, 700), start=1))
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * t)
    noise = np.random.default_rng(0).normal(0, 0.01, t.shape)
    return (0.2 * voice * envelope + noise).astype(np.float32)


def write_clip(path: Path, frames: list[np.ndarray], fps: float = FPS) -> Path:
    """An H.264 mp4 of BGR `frames`, no audio."""
    height, width = frames[0].shape[:2]
    with VideoWriter(path, width=width, height=height, fps=fps) as writer:
        for frame in frames:
            writer.write(frame)
    return path

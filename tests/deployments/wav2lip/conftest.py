"""Fixtures of the Wav2Lip tests: the synthetic media files and one CPU runner shared by the session."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from scipy.io import wavfile
from wav2lip_inputs import AUDIO_S, CLIP_FRAMES, SIZE, astronaut, speech_like, write_clip

from deployments.wav2lip.args import Wav2LipArgs
from deployments.wav2lip.runner import Wav2LipRunner


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """face.mp4 (the astronaut drifting a few pixels), face.png, speech.wav (1 s), noface.mp4, corrupt.wav."""
    root = tmp_path_factory.mktemp("wav2lip-media")
    image = astronaut()
    moving = [
        cv2.warpAffine(image, np.float32([[1, 0, 3 * np.sin(i / 4)], [0, 1, i % 3]]), (SIZE, SIZE),
                       borderMode=cv2.BORDER_REFLECT)
        for i in range(CLIP_FRAMES)
    ]  # fmt: skip
    gradient = np.tile(np.linspace(0, 255, 128, dtype=np.uint8)[None, :, None], (96, 1, 3))
    cv2.imwrite(str(root / "face.png"), image)
    wavfile.write(root / "speech.wav", 16_000, speech_like(AUDIO_S))
    (root / "corrupt.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(range(200)))
    return {
        "video": write_clip(root / "face.mp4", moving),
        "image": root / "face.png",
        "audio": root / "speech.wav",
        "noface": write_clip(root / "noface.mp4", [np.roll(gradient, 4 * i, axis=1) for i in range(8)]),
        "corrupt": root / "corrupt.wav",
    }


@pytest.fixture(scope="session")
def runner() -> Wav2LipRunner:
    """The real runner with a randomly initialised (full-size) generator and the OpenCV detector, on CPU."""
    return Wav2LipRunner(Wav2LipArgs(allow_random_weights=True, device="cpu", batch_size=8, face_det_batch_size=4))

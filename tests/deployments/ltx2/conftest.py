"""Fixtures of the LTX-2 tests: no Hub access, the frames each run encodes, keyframe images, an input clip."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from deployments.ltx2 import runner as runner_module
from deployments.media import VideoWriter
from tests.deployments.ltx2.tiny_runs import COLOURS, FPS, INPUT_FRAMES, INPUT_RATE, SIZE, TONE_HZ


@pytest.fixture(scope="module", autouse=True)
def _offline() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")  # any Hub access would fail loudly instead of downloading
        yield


@pytest.fixture
def encoded() -> Iterator[list[np.ndarray]]:
    """The frames each run hands to the mp4 encoder, in run order. Frames are compared here, not decoded from
    the mp4: libx264's threaded encoder does not reproduce its bitstream exactly from run to run."""
    seen: list[np.ndarray] = []
    real = runner_module.encode_video

    def spy(video: np.ndarray, **kwargs: Any) -> None:
        seen.append(np.array(video, copy=True))
        real(video, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(runner_module, "encode_video", spy)
        yield seen


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One flat image per colour in COLOURS, SIZE x SIZE."""
    folder = tmp_path_factory.mktemp("images")
    for name, colour in COLOURS.items():
        Image.new("RGB", (SIZE, SIZE), colour).save(folder / f"{name}.png")
    return {name: folder / f"{name}.png" for name in COLOURS}


@pytest.fixture(scope="module")
def input_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """INPUT_FRAMES flat frames, each a different grey, with a tone: any frame out of place shows."""
    path = tmp_path_factory.mktemp("video") / "input.mp4"
    tone = 0.3 * np.sin(2 * np.pi * TONE_HZ * np.arange(INPUT_RATE * INPUT_FRAMES // FPS) / INPUT_RATE)
    with VideoWriter(
        path, width=SIZE, height=SIZE, fps=FPS, audio=tone, sample_rate=INPUT_RATE, pixel_format="rgb24"
    ) as writer:
        for i in range(INPUT_FRAMES):
            writer.write(np.full((SIZE, SIZE, 3), 10 + 12 * i, np.uint8))
    return path

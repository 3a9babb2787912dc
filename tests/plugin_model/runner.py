"""The flipbook runner: the staged page image in, an H.264 clip out, progress per frame."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
from PIL import Image

from deployments.contract import JobSpec, Reporter, RunOutput
from tests.plugin_model.spec import FlipbookArgs


class FlipbookRunner:
    def __init__(self, args: FlipbookArgs) -> None:
        self.weights = "none"

    def run(self, job: JobSpec, inputs: dict[str, Path], workdir: Path, reporter: Reporter) -> RunOutput:
        page = np.asarray(Image.open(inputs["page"]).convert("RGB"), dtype=np.int16)
        page = page[: page.shape[0] // 2 * 2, : page.shape[1] // 2 * 2]  # yuv420p wants even sides
        out = workdir / "flipbook.mp4"
        frames, brighten = job.params["frames"], job.params["brighten"]
        with av.open(str(out), "w") as container:
            stream = container.add_stream("libx264", rate=8)
            stream.height, stream.width = page.shape[:2]
            stream.pix_fmt = "yuv420p"
            for i in range(frames):
                reporter.raise_if_cancelled()
                image = np.clip(page + i * brighten, 0, 255).astype(np.uint8)
                container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
                reporter.report("flipping", (i + 1) / frames)
            container.mux(stream.encode())
        return RunOutput(video_path=out, details={"frames": frames, "size": list(page.shape[1::-1])})

"""A test runner that reads its staged image as a model would (header checked against its limits, then a
bounded decode), after an optional hold: a test swaps the staged file while the job waits behind a held one."""

from __future__ import annotations

from pathlib import Path

from deployments.contract import InvalidMedia, JobSpec, ModelArgs, Reporter, RunOutput
from deployments.images import probe_image, read_image
from deployments.limits import recheck_media
from deployments.media import MediaError
from tests.fakes import HoldingRunner


class ImageReadingRunner(HoldingRunner):
    """HoldingRunner that first reads `inputs["image"]` under its model's image limits."""

    STEPS = 2

    def __init__(self, args: ModelArgs) -> None:
        super().__init__(args)
        self.limits = args.limits.image

    def run(self, job: JobSpec, inputs: dict[str, Path], workdir: Path, reporter: Reporter) -> RunOutput:
        output = super().run(job, inputs, workdir, reporter)  # the hold, if any, comes first
        if "image" in inputs:
            try:
                recheck_media("image", "image", probe_image(inputs["image"]), self.limits)
                read_image(inputs["image"], self.limits).close()
            except MediaError as exc:
                raise InvalidMedia("image", f"image: {exc}") from exc
        return output

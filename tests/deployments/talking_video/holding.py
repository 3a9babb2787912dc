"""The real LTX-2 runner with a gate a test controls, for the talking-video tests that act during the LTX-2 stage."""

from __future__ import annotations

import time
from pathlib import Path

from deployments.contract import JobSpec, Reporter, RunOutput
from deployments.ltx2.runner import LTX2Runner
from serve_app.errors import JobFailed


class HoldingLTX2Runner(LTX2Runner):
    """A prompt `hold:<path> …` first reports stage `holding` until that file exists, then renders as always:
    a test cancels or kills during the stage whatever the machine's speed (a tiny clip renders in a second)."""

    HOLD_LIMIT_S = 600.0

    def run(self, job: JobSpec, inputs: dict[str, Path], workdir: Path, reporter: Reporter) -> RunOutput:
        prompt = str(job.params.get("prompt", ""))
        if prompt.startswith("hold:"):
            release, deadline = Path(prompt.removeprefix("hold:").split()[0]), time.monotonic() + self.HOLD_LIMIT_S
            while not release.exists():
                if time.monotonic() > deadline:
                    raise JobFailed(f"{release} did not appear within {self.HOLD_LIMIT_S} s", code="not_released")
                reporter.raise_if_cancelled()
                reporter.report("holding", 0.0)
                time.sleep(0.1)
        return super().run(job, inputs, workdir, reporter)

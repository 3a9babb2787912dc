"""Test-only runners: the real serving path (storage, queue, progress, cancel) around a model that needs
no weights. Each behaviour is its own class, picked through `args.<model>.runner`."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import av
import numpy as np
import ray

from deployments.contract import JobSpec, ModelArgs, Reporter, RunOutput
from serve_app.errors import JobFailed


def write_test_mp4(path: Path, frames: int = 4, size: int = 32, fps: int = 8) -> None:
    """A tiny real H.264 mp4, so result downloads are playable files."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        for i in range(frames):
            image = np.full((size, size, 3), 40 * i % 255, dtype=np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())


class FakeRunner:
    """Steps through `STEPS` steps of `STEP_S` seconds, reporting progress and honouring cancel."""

    STEPS = 5
    STEP_S = 0.05

    def __init__(self, args: ModelArgs) -> None:
        self.weights = "fake"

    def run(self, job: JobSpec, inputs: dict[str, Path], workdir: Path, reporter: Reporter) -> RunOutput:
        if job.params.get("prompt") == "fail permanently":
            raise JobFailed("the fake model refuses this prompt", code="unsupported_prompt")
        for step in range(self.STEPS):
            reporter.raise_if_cancelled()
            time.sleep(self.STEP_S)
            reporter.report("denoising", (step + 1) / self.STEPS)
        out = workdir / "out.mp4"
        write_test_mp4(out)
        sizes = {name: path.stat().st_size for name, path in inputs.items()}
        return RunOutput(video_path=out, details={"steps": self.STEPS, "input_sizes": sizes, "attempt": job.attempt})


class SlowRunner(FakeRunner):
    """Long enough to cancel, or to kill the replica, while it runs."""

    STEPS = 40
    STEP_S = 0.1


class MediumRunner(FakeRunner):
    """About a second a job: a backlog of ten lasts long enough to kill the queue under it."""

    STEPS = 10
    STEP_S = 0.1


class HoldingRunner(SlowRunner):
    """SlowRunner, except that a prompt `hold:<path>` keeps the job running until that file exists, so a test
    (not the machine's speed) decides how long a backlog lasts."""

    HOLD_LIMIT_S = 600

    def run(self, job: JobSpec, inputs: dict[str, Path], workdir: Path, reporter: Reporter) -> RunOutput:
        prompt = str(job.params.get("prompt", ""))
        if prompt.startswith("hold:"):
            release, deadline = Path(prompt.removeprefix("hold:")), time.monotonic() + self.HOLD_LIMIT_S
            while not release.exists() and time.monotonic() < deadline:
                reporter.raise_if_cancelled()
                reporter.report("holding", 0.01)
                time.sleep(0.1)
        output = super().run(job, inputs, workdir, reporter)
        output.details["node_id"] = ray.get_runtime_context().get_node_id()  # where it ran (node-loss test)
        return output


class StallingRunner(SlowRunner):
    """The prompt `stall` stops every Python thread of the replica for `STALL_S` on the first attempt: the run
    holds the GIL and never lets go (as a C extension stuck in a call would), so no heartbeat and no answer
    leave the replica, while its process lives on."""

    STALL_S = 30.0

    def run(self, job: JobSpec, inputs: dict[str, Path], workdir: Path, reporter: Reporter) -> RunOutput:
        if job.params.get("prompt") == "stall" and job.attempt == 1:
            interval = sys.getswitchinterval()
            sys.setswitchinterval(self.STALL_S * 10)  # the interpreter never asks this thread to yield
            deadline = time.monotonic() + self.STALL_S
            while time.monotonic() < deadline:
                pass
            sys.setswitchinterval(interval)
        return super().run(job, inputs, workdir, reporter)


class PacedRunner(FakeRunner):
    """Four seconds a job, but a fifth of a second for a prompt that starts with "quick": fast and slow jobs
    from one app."""

    STEP_S = 0.1

    def run(self, job: JobSpec, inputs: dict[str, Path], workdir: Path, reporter: Reporter) -> RunOutput:
        self.STEPS = 2 if str(job.params.get("prompt", "")).startswith("quick") else 40
        return super().run(job, inputs, workdir, reporter)


class UntilCancelledRunner(FakeRunner):
    """Runs until its job is cancelled (failing after `LIMIT_S` if never), so a test that cancels from a browser
    does not race the machine's speed."""

    LIMIT_S = 600.0

    def run(self, job: JobSpec, inputs: dict[str, Path], workdir: Path, reporter: Reporter) -> RunOutput:
        deadline = time.monotonic() + self.LIMIT_S
        while time.monotonic() < deadline:
            reporter.raise_if_cancelled()
            reporter.report("waiting for cancel", 0.25)
            time.sleep(0.1)
        raise JobFailed(f"not cancelled within {self.LIMIT_S} s", code="not_cancelled")


class GatedRunner(FakeRunner):
    """FakeRunner (a quarter second a job) with two prompts a test steers: `hold:<path>` reports until that file
    exists, so the test decides when each job ends and in which order jobs can start; `crash once` reports its
    progress for `CRASH_AFTER_S` on its first attempt, then crashes (a run that used GPU time, with no result)."""

    HOLD_LIMIT_S = 600.0
    CRASH_AFTER_S = 2.0

    def run(self, job: JobSpec, inputs: dict[str, Path], workdir: Path, reporter: Reporter) -> RunOutput:
        prompt = str(job.params.get("prompt", ""))
        if prompt == "crash once" and job.attempt == 1:
            started = time.monotonic()
            while (elapsed := time.monotonic() - started) < self.CRASH_AFTER_S:
                reporter.report("denoising", elapsed / self.CRASH_AFTER_S)  # progress moves: each one is sent
                time.sleep(0.1)
            raise RuntimeError("simulated crash of the model run")
        if prompt.startswith("hold:"):
            release, deadline = Path(prompt.removeprefix("hold:")), time.monotonic() + self.HOLD_LIMIT_S
            while not release.exists() and time.monotonic() < deadline:
                reporter.raise_if_cancelled()
                reporter.report("holding", 0.01)
                time.sleep(0.1)
        return super().run(job, inputs, workdir, reporter)

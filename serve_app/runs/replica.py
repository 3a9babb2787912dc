"""The Serve deployment around a runner: inputs from storage, the run in a thread, output to storage,
progress and heartbeats to the model's JobQueue. Replicas hold only weights (invariant 4).
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import tempfile
import time
from pathlib import Path

import PIL.Image
from ray import serve
from ray.serve.handle import DeploymentHandle

from deployments.contract import JobSpec, ModelArgs, ModelRunner, caller_safe
from deployments.limits import apply_decoder_limits
from deployments.media import MediaError
from deployments.previews import PREVIEW_TYPES, PreviewError, make_previews, preview_keys
from serve_app import joblogs, metrics
from serve_app.errors import InvalidInput, JobCancelled, JobFailed, NotFound
from serve_app.jobs.store import JobResult, result_key
from serve_app.schemas import JobError
from serve_app.settings import Secrets, StorageArgs
from serve_app.storage.backends import build_storage, retrying

logger = logging.getLogger("serve_app.runs.replica")
REPORT_MIN_INTERVAL_S = 0.5  # progress messages are coalesced; a stage change is always sent
PROGRESS_POINT = 0.01  # progress moves by a point: worth a report
# Errors a decoder raises on an input no check caught: final (a retry reads the same bytes), with a fixed message
# (theirs may hold server paths); the detail goes to the server log under the job id.
DECODER_ERRORS: dict[type[BaseException], tuple[str, str]] = {
    PIL.Image.DecompressionBombError: ("invalid_image", "an input image declares more pixels than the limit"),
    PIL.UnidentifiedImageError: ("invalid_image", "an input image cannot be decoded"),
    NotFound: ("input_missing", "a staged input of the job is gone from storage"),
}


def input_error(exc: BaseException) -> JobError | None:
    """The job error for an input the run could not use, or None for an error worth a retry (a lost run)."""
    if isinstance(exc, (JobFailed, InvalidInput)):
        return JobError(code=exc.code, message=caller_safe(exc.message))
    if isinstance(exc, MediaError):
        return JobError(code="invalid_media", message=caller_safe(str(exc)))
    for kind, (code, message) in DECODER_ERRORS.items():
        if isinstance(exc, kind):
            return JobError(code=code, message=message)
    return None


def load_runner(runner: str, args: ModelArgs) -> ModelRunner:
    """Import `runner` (`module:Class`) and build it: the slow part, weights to device, once per replica."""
    module_name, _, class_name = runner.partition(":")
    runner_cls = getattr(importlib.import_module(module_name), class_name)
    return runner_cls(args)


class QueueReporter:
    """A runner's `Reporter`: called from the run's thread, sends to the queue on the replica's event loop
    without waiting, and remembers whether the queue asked the run to stop. It sends when the stage changes or
    progress moves by a point (at most every REPORT_MIN_INTERVAL_S), and `heartbeat` at least once a heartbeat."""

    def __init__(self, job: JobSpec, queue: DeploymentHandle, loop: asyncio.AbstractEventLoop) -> None:
        self._job, self._queue, self._loop = job, queue, loop
        self._stop = False
        self._stage, self._progress, self._sent_progress, self._sent_at = "", 0.0, 0.0, 0.0

    def report(self, stage: str, progress: float) -> None:
        now = time.monotonic()
        self._progress = progress
        moved = abs(progress - self._sent_progress) >= PROGRESS_POINT
        if stage == self._stage and (not moved or now - self._sent_at < REPORT_MIN_INTERVAL_S):
            return
        self._stage, self._sent_progress, self._sent_at = stage, progress, now
        asyncio.run_coroutine_threadsafe(self.send(), self._loop)

    @property
    def stopped(self) -> bool:
        """Whether the queue has asked this run to stop (cancelled, or superseded by a retry)."""
        return self._stop

    def raise_if_cancelled(self) -> None:
        if self._stop:
            raise JobCancelled(self._job.job_id)

    async def send(self) -> bool:
        """Send the latest stage and progress; True when the queue wants the run stopped."""
        try:
            stop = await self._queue.report.remote(self._job.job_id, self._job.attempt, self._stage, self._progress)
        except Exception as exc:  # the queue restarting must not fail the run; the next report retries
            logger.warning("progress report for job %s failed: %s", self._job.job_id, type(exc).__name__)
            return self._stop
        self._stop = self._stop or bool(stop)
        return self._stop

    async def heartbeat(self) -> None:
        """Report every `job.heartbeat_s` for as long as the run lasts: the queue retries a silent run."""
        while True:
            await asyncio.sleep(self._job.heartbeat_s)
            await self.send()


class ModelDeployment:
    """One model replica: runs one job at a time (max_ongoing_requests=1) with weights loaded once."""

    def __init__(
        self,
        model: str,
        runner: str,
        args: ModelArgs,
        storage_args: StorageArgs,
        secrets: Secrets,
        queue_deployment: str,
    ) -> None:
        joblogs.route_logs_to_serve()
        started = time.monotonic()
        self._model = model
        apply_decoder_limits(args.limits)  # the decoders' own caps agree with this model's limits
        self._runner = load_runner(runner, args)
        load_s = time.monotonic() - started
        metrics.model_loaded(model, load_s)
        logger.info("%s runner loaded in %.1f s (weights: %s)", model, load_s, self._runner.weights)
        # Inputs, output and result wait out a storage outage (up to storage.retry_window_s), so a transient
        # error never fails a finished job; past the window the run raises and the queue retries it.
        self._storage = retrying(build_storage(storage_args, secrets), storage_args)
        self._queue = serve.get_deployment_handle(queue_deployment, serve.get_replica_context().app_name)

    async def run(self, job: JobSpec) -> dict:
        """Run one job end to end and return its `JobResult`; raises only for errors worth a retry."""
        joblogs.tag_job_logs(job.job_id, self._model)
        reporter = QueueReporter(job, self._queue, asyncio.get_running_loop())
        reporter.report("starting", 0.0)
        if await reporter.send():  # cancelled while it waited: it never runs
            return await self._conclude(job, "cancelled", None, {})
        heartbeat = asyncio.create_task(reporter.heartbeat())
        try:
            with tempfile.TemporaryDirectory(prefix=f"job-{job.job_id}-") as tmp:
                details = await self._run_in(job, Path(tmp), reporter)
            return await self._conclude(job, "completed", None, details)
        except JobCancelled:
            return await self._conclude(job, "cancelled", None, {})
        except Exception as exc:
            error = input_error(exc)
            if error is None:
                raise  # a crash: the queue decides whether the run is retried
            extra = {"job_id": job.job_id, "model": self._model}
            logger.info("job %s failed: %s", job.job_id, exc, exc_info=error.code.startswith("invalid"), extra=extra)
            return await self._conclude(job, "failed", error, {})
        finally:
            heartbeat.cancel()

    async def _run_in(self, job: JobSpec, workdir: Path, reporter: QueueReporter) -> dict:
        inputs: dict[str, Path] = {}
        for name, key in job.inputs.items():
            inputs[name] = workdir / key.rsplit("/", 1)[-1]
            await asyncio.to_thread(self._storage.download, key, inputs[name])
        output = await asyncio.to_thread(self._runner.run, job, inputs, workdir, reporter)
        reporter.raise_if_cancelled()
        reporter.report("uploading", 0.99)
        await asyncio.to_thread(self._storage.put_file, job.output_key, output.video_path, output.content_type)
        return output.details | await self._store_previews(job, output.video_path, workdir)

    async def _store_previews(self, job: JobSpec, video: Path, workdir: Path) -> dict:
        """The video's thumbnail and spritesheet, stored beside it: `{"previews": {kind: key}}` for the job's
        details. A video that yields no preview still completes its job (without them)."""
        keys = preview_keys(job.output_key)
        paths = {kind: workdir / key.rsplit("/", 1)[-1] for kind, key in keys.items()}
        try:
            await asyncio.to_thread(make_previews, video, paths["thumbnail"], paths["spritesheet"])
        except PreviewError as exc:
            logger.warning("job %s: no previews (%s)", job.job_id, exc, extra={"job_id": job.job_id})
            return {}
        for kind, key in keys.items():
            await asyncio.to_thread(self._storage.put_file, key, paths[kind], PREVIEW_TYPES[kind])
        return {"previews": keys}

    async def _conclude(self, job: JobSpec, status: str, error: JobError | None, details: dict) -> dict:
        """Write the result file (a restarted queue finds it there) and return the same result."""
        result = JobResult(
            status=status, attempt=job.attempt, error=error, details=details, weights=self._runner.weights
        )
        body = result.model_dump_json().encode()
        await asyncio.to_thread(self._storage.put_bytes, result_key(job.job_id), body, "application/json")
        return result.model_dump()

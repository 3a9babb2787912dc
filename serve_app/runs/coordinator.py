"""The coordinator of chained jobs: a light CPU deployment that runs a chained job's stages in order, each as a
job on its own model's queue (so that queue's retries, durability, recovery and GPU type apply to it).

It resumes: a stage's job id and idempotency key derive from the chained job's id and the stage's index, so a
coordinator run again after a crash finds the stages it already submitted; a finished stage is not run again
and a running one is followed, never duplicated. Stage jobs send no webhook and belong to no API key (only an
admin key sees them); the chained job's `details.stages` names each one. Intermediate videos are written under
the chained job's prefix, `jobs/{id}/stages/{index}-{name}.mp4`; the last stage writes the chained job's output.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable
from typing import Any

from ray import serve
from ray.exceptions import RayTaskError
from ray.serve.handle import DeploymentHandle

from deployments.contract import JobSpec
from serve_app import joblogs
from serve_app.errors import VideoServeError
from serve_app.jobs.store import JobResult, result_key
from serve_app.runs.chains import STAGE_OUTPUT, StagePlan
from serve_app.runs.replica import QueueReporter
from serve_app.schemas import JobError, JobView, Usage
from serve_app.settings import Secrets, StorageArgs
from serve_app.storage.backends import build_storage
from serve_app.tenants.usage import chain_usage

logger = logging.getLogger("serve_app.runs.coordinator")
CHECK_PERIOD_S = 1.0  # how often the chained job's cancel flag is read during a stage (a read, not a report)
MAX_ONGOING_CHAINS = 100  # chained jobs one coordinator replica follows at once: each only waits on its stages


def stage_job_id(job_id: str, index: int, model: str) -> str:
    """The id of stage `index` of chained job `job_id`: the same on every run of the chained job."""
    return f"{model}-{_stage_digest(job_id, index)[:32]}"


def stage_output_key(job: JobSpec, index: int, plan: StagePlan, last: bool) -> str:
    """Where a stage writes its video: the chained job's output for the last one, else under its prefix."""
    return job.output_key if last else f"jobs/{job.job_id}/stages/{index}-{plan.name}.mp4"


def _stage_digest(job_id: str, index: int) -> str:
    return hashlib.sha256(f"{job_id}/stages/{index}".encode()).hexdigest()


class RunSuperseded(Exception):
    """The chained job's queue runs this job again elsewhere (this run went silent): stop, touching nothing."""


class ChainCoordinator:
    """Runs chained jobs of one model (a spec with `stages`); many at once, each mostly waiting."""

    def __init__(
        self,
        model: str,
        stage_queues: dict[str, DeploymentHandle],
        storage_args: StorageArgs,
        secrets: Secrets,
        queue_deployment: str,
    ) -> None:
        joblogs.route_logs_to_serve()
        self._model = model
        self._stage_queues = stage_queues
        self._storage = build_storage(storage_args, secrets)
        self._queue = serve.get_deployment_handle(queue_deployment, serve.get_replica_context().app_name)

    async def run(self, job: JobSpec) -> dict:
        """Run (or resume) every stage of `job` and return its `JobResult`; raises only for errors worth a retry."""
        joblogs.tag_job_logs(job.job_id, self._model)
        reporter = QueueReporter(job, self._queue, asyncio.get_running_loop())
        reporter.report("starting", 0.0)  # sent, with the cancel check, before the first stage
        heartbeat = asyncio.create_task(reporter.heartbeat())
        try:
            return await self._run_stages(job, reporter)
        except RunSuperseded:
            logger.warning("job %s runs again elsewhere; this run stops", job.job_id, extra={"job_id": job.job_id})
            return JobResult(status="cancelled", attempt=job.attempt).model_dump()  # read by no one
        finally:
            heartbeat.cancel()

    async def _run_stages(self, job: JobSpec, reporter: QueueReporter) -> dict:
        plans = [StagePlan.model_validate(plan) for plan in job.params["stages"]]
        total, done = sum(plan.cost for plan in plans), 0.0
        outputs: dict[str, str] = {}
        stages: list[dict[str, Any]] = []
        for index, plan in enumerate(plans):
            if await reporter.send() and await self._cancel_requested(job):  # never start a stage after a cancel
                return await self._conclude(job, "cancelled", None, stages)
            output_key = stage_output_key(job, index, plan, last=index == len(plans) - 1)
            inputs = {name: outputs.get(key.removeprefix(STAGE_OUTPUT), key) for name, key in plan.inputs.items()}

            def progress(stage: str, percent: float, plan: StagePlan = plan, done: float = done) -> None:
                reporter.report(f"{plan.name}:{stage}", (done + plan.cost * percent / 100) / total)

            view = await self._run_stage(job, index, plan, inputs, output_key, reporter, progress)
            stages.append(stage_details(plan, view, output_key))
            if view.status == "cancelled" or (await reporter.send() and await self._cancel_requested(job)):
                return await self._conclude(job, "cancelled", None, stages)
            if view.status == "failed":
                message = f"stage {plan.name} ({plan.model}, job {view.job_id}) failed: {view.error_message}"
                return await self._conclude(job, "failed", JobError(code=view.error_code or "stage_failed",
                                                                    message=message), stages)  # fmt: skip
            outputs[plan.name] = output_key
            done += plan.cost
        return await self._conclude(job, "completed", None, stages)

    async def _run_stage(
        self,
        job: JobSpec,
        index: int,
        plan: StagePlan,
        inputs: dict[str, str],
        output_key: str,
        reporter: QueueReporter,
        progress: Callable[[str, float], None],
    ) -> JobView:
        """Submit stage `index` (a no-op when an earlier run did) and follow it to its end; a cancel of the chained
        job cancels it."""
        queue = self._stage_queues[plan.model]
        stage_id, key = stage_job_id(job.job_id, index, plan.model), _stage_digest(job.job_id, index)
        await queue.submit.remote(
            stage_id, plan.params, inputs, None, key, key, None, output_key=output_key, tenant=job.tenant
        )
        follow = asyncio.ensure_future(self._follow(queue, stage_id, progress))
        cancel_sent = False
        try:
            while True:
                done, _ = await asyncio.wait({follow}, timeout=CHECK_PERIOD_S)
                if done:
                    return follow.result()
                if not cancel_sent and await self._stop_asked(job, reporter):
                    cancel_sent = True
                    await queue.cancel.remote(stage_id, None)
        finally:
            follow.cancel()

    async def _stop_asked(self, job: JobSpec, reporter: QueueReporter) -> bool:
        """True once the chained job was cancelled (its flag, read without reporting); raises RunSuperseded when
        the queue told this run to stop without a cancel (it runs again elsewhere)."""
        if await self._queue.cancel_requested.remote(job.job_id):
            return True
        if reporter.stopped:
            raise RunSuperseded(job.job_id)
        return False

    async def _cancel_requested(self, job: JobSpec) -> bool:
        """True when the chained job was cancelled; raises RunSuperseded when this run is only stale."""
        if await self._queue.cancel_requested.remote(job.job_id):
            return True
        raise RunSuperseded(job.job_id)

    async def _follow(self, queue: DeploymentHandle, stage_id: str, progress: Callable[[str, float], None]) -> JobView:
        """The stage job's view once it ends, reporting its progress on the way; a stream cut by its queue's
        restart is opened again where it stopped."""
        after = -1
        while True:
            try:
                async for event in queue.options(stream=True).events.remote(stage_id, None, after):
                    after = event["id"]
                    if event["event"] == "done":
                        return JobView.model_validate(event["data"])
                    progress(event["data"]["stage"], event["data"]["progress"])
            except Exception as exc:  # the stage's queue restarting: its job is in storage, follow it again
                if isinstance(exc, RayTaskError) and isinstance(exc.cause, VideoServeError):
                    raise exc.cause from None
                logger.warning("events of stage job %s cut: %s", stage_id, type(exc).__name__)
            await asyncio.sleep(CHECK_PERIOD_S)

    async def _conclude(self, job: JobSpec, status: str, error: JobError | None, stages: list[dict]) -> dict:
        """Write the result file (a restarted queue finds it there) and return the same result."""
        weights = sorted({str(stage["weights"]) for stage in stages if stage.get("weights")})
        result = JobResult(
            status=status,
            attempt=job.attempt,
            error=error,
            # the last stage wrote this job's video, and its previews beside it: they are this job's previews
            details={"stages": stages} | last_previews(stages),
            weights=", ".join(weights) or None,
            usage=chain_usage(0.0, [Usage.model_validate(stage["usage"]) for stage in stages if stage.get("usage")]),
        )
        body = result.model_dump_json().encode()
        await asyncio.to_thread(self._storage.put_bytes, result_key(job.job_id), body, "application/json")
        return result.model_dump()


def last_previews(stages: list[dict]) -> dict[str, Any]:
    """`{"previews": ...}` of the last stage's run, if it completed with them."""
    last = stages[-1] if stages else {}
    previews = (last.get("details") or {}).get("previews") if last.get("status") == "completed" else None
    return {"previews": previews} if previews else {}


def stage_details(plan: StagePlan, view: JobView, output_key: str) -> dict[str, Any]:
    """What the chained job's `details.stages` shows of one stage: its job, params, timing and outcome."""
    seconds = None
    if view.started_at is not None and view.completed_at is not None:
        seconds = round((view.completed_at - view.started_at).total_seconds(), 3)
    return {
        "name": plan.name,
        "model": plan.model,
        "job_id": view.job_id,
        "status": view.status,
        "attempts": view.attempts,
        "params": plan.params,
        "created_at": view.created_at.isoformat(),
        "started_at": view.started_at.isoformat() if view.started_at else None,
        "completed_at": view.completed_at.isoformat() if view.completed_at else None,
        "seconds": seconds,
        "output_key": output_key,
        "error_code": view.error_code,
        "details": view.details,
        "weights": view.weights,
        "usage": view.usage.model_dump() if view.usage else None,
    }

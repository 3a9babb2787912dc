"""One attempt of a job on its model: the `JobSpec` the replica gets, sent through the model's handle and watched
until the model answers, or until run supervision finds the run silent."""

from __future__ import annotations

import asyncio
from typing import Any

from ray.serve.handle import DeploymentHandle

from deployments.contract import JobSpec
from serve_app.jobs.failures import RunLost
from serve_app.jobs.records import RecordBook
from serve_app.jobs.store import JobResult
from serve_app.jobs.supervision import RunSupervisor
from serve_app.schemas import JobRecord

WATCH_PERIOD_S = 1.0  # how often a dispatched run's heartbeat is checked
MAX_HEARTBEAT_S = 10.0  # a running job reports at least this often, and 4 times per heartbeat_timeout_s


class ModelCalls:
    """Sends attempts to one model's deployment and watches them."""

    def __init__(
        self, model: str, handle: DeploymentHandle, supervisor: RunSupervisor, book: RecordBook, timeout_s: float
    ) -> None:
        self._model, self._handle, self._supervisor, self._book = model, handle, supervisor, book
        self._timeout_s = timeout_s

    def spec(self, record: JobRecord) -> JobSpec:
        """The job as the replica receives it, for the record's current attempt."""
        return JobSpec(
            job_id=record.job_id,
            model=self._model,
            attempt=record.attempts,
            params=record.params,
            inputs=record.inputs,
            output_key=record.output_key,
            heartbeat_s=min(MAX_HEARTBEAT_S, self._timeout_s / 4),
            tenant=record.tenant,
        )

    async def run(self, record: JobRecord) -> JobResult:
        """The model's result for the record's current attempt. A replica that stops reporting may never answer (a
        frozen process answers nothing until Serve's health check gives up on it), so silence raises RunLost."""
        spec = self.spec(record)
        self._supervisor.dispatched(spec.job_id)
        call = asyncio.ensure_future(self._handle.run.remote(spec))
        try:
            while True:
                done, _ = await asyncio.wait({call}, timeout=WATCH_PERIOD_S)
                if done:
                    return JobResult.model_validate(call.result())
                if self._supervisor.lost(spec.job_id):
                    return await self._left_result(spec)
        finally:
            # Stop waiting, nothing more: DeploymentResponse.cancel() blocks this event loop on an actor that
            # may never answer. A stale run that wakes up is told to stop by its next report().
            call.cancel()

    async def _left_result(self, spec: JobSpec) -> Any:
        """A silent run may have ended with only its answer lost: its result file says so; else it is lost."""
        result = await self._book.result(spec.job_id)
        if result is not None and result.attempt == spec.attempt:
            return result
        raise RunLost(f"no report from its replica for {self._timeout_s:g} s")

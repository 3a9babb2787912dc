"""JobQueue: one replica per model, owning the lifecycle of that model's jobs.

The deployment wires parts that each own their state: the records (`records.RecordBook`), the dispatch order
(`dispatch`), run supervision (`supervision.RunSupervisor`), recovery after a restart (`recovery`), and
notification (`notify`: event streams and webhooks). This class moves jobs through their states: it writes each
record before answering, sends runnable jobs to the model through a DeploymentHandle (a window of them; the rest
wait in the dispatch order, and those waiting at the handle are the queue depth Serve autoscales on), retries lost
runs with backoff, relays cancellation and progress, and ends every job in exactly one terminal state.

Through a storage outage, calls that answer a request (submit, reading a finished job) fail at once with a 503,
while the bookkeeping of accepted jobs waits storage out (see `records`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from ray.serve.handle import DeploymentHandle

from deployments.contract import ModelArgs, caller_safe
from serve_app import joblogs, metrics
from serve_app.errors import QueueFull, StorageError
from serve_app.jobs.attempts import ModelCalls
from serve_app.jobs.failures import RunLost, final_error, lost_run_reason
from serve_app.jobs.fairshare import FairShareOrder
from serve_app.jobs.notify import Watchers, WebhookSender
from serve_app.jobs.records import RecordBook
from serve_app.jobs.recovery import recover
from serve_app.jobs.store import JobResult, JobStore
from serve_app.jobs.supervision import RunSupervisor
from serve_app.jobs.views import QueuePlaces, job_view, stream_event, webhook_payload
from serve_app.schemas import JobError, JobRecord, JobView, WebhookState, utcnow
from serve_app.settings import DEFAULT_TENANT, Secrets, SpineArgs
from serve_app.storage.backends import build_storage, retrying
from serve_app.tenants.accounting import TenantAccounts, tenant_of

logger = logging.getLogger("serve_app.jobs.queue")
RETENTION_SWEEP_PERIOD_S = 3600.0


class JobQueue:
    """Owns one model's jobs: submit, dispatch, retry, cancel, progress, webhooks, recovery."""

    async def __init__(
        self,
        model: str,
        model_handle: DeploymentHandle,
        args: SpineArgs,
        model_args: ModelArgs,
        secrets: Secrets,
        window: int | None = None,
        limiter: DeploymentHandle | None = None,
        chain: bool = False,
    ) -> None:
        joblogs.route_logs_to_serve()
        self._model = model
        self._args, self._qargs = args, args.queue
        storage = build_storage(args.storage, secrets)
        store = JobStore(retrying(storage, args.storage), model)  # bookkeeping: waits out an outage
        self._direct = JobStore(storage, model)  # request paths and monitor passes: fail now, answer 503
        self._book = RecordBook(store, self._direct, model)
        self._order = FairShareOrder(args.tenants, model)
        charge = limiter.charge.remote if limiter is not None else None  # the TenantLedger deployment
        # `chain`: a chained model's queue, whose GPU time its stages' queues count
        self._accounts = TenantAccounts(model, args.tenants, model_args.placement, store.storage, charge,
                                        self._qargs.retry_after_s, chain=chain)  # fmt: skip
        self._supervisor = RunSupervisor(self._qargs.heartbeat_timeout_s)
        self._calls = ModelCalls(model, model_handle, self._supervisor, self._book, self._qargs.heartbeat_timeout_s)
        self._watchers = Watchers()
        self._webhooks = WebhookSender(model, args.webhooks, secrets.webhook_secret, store, self._book.save,
                                       lambda record: webhook_payload(record, self._sign))  # fmt: skip
        self._places = QueuePlaces()
        self._runs: dict[str, asyncio.Task] = {}  # sent to the model (or backing off between tries)
        self._counts = {"completed": 0, "failed": 0, "cancelled": 0}
        self._lock = asyncio.Lock()
        self._background: set[asyncio.Task] = set()
        # `window`: a deployment that runs many jobs at once per replica (a chain's coordinator) sets its own
        self._window = window or args.queue.dispatch_window or 2 * model_args.placement.max_replicas
        await self._recover(store)
        self._spawn(self._monitor())

    # ---- API used by the gateway ----------------------------------------------------------------

    async def submit(
        self,
        job_id: str,
        params: dict[str, Any],
        inputs: dict[str, str],
        webhook_url: str | None,
        idempotency_hash: str | None = None,
        body_hash: str | None = None,
        owner: str | None = None,
        output_key: str | None = None,
        labels: dict[str, str] | None = None,
        tenant: str | None = None,
        admin: bool = False,
    ) -> tuple[JobView, bool]:
        """Persist a new job and queue it; returns (view, created). An idempotent replay returns the old job.
        `output_key` (a chained job's stage) puts the video under another prefix than `jobs/{job_id}/`. Over the
        tenant's `max_queued` on this model: 429 rate_limited."""
        async with self._lock:
            if idempotency_hash and (existing := await self.find_idempotent(idempotency_hash, body_hash)):
                return existing, False
            if len(self._book) >= self._qargs.max_queued_jobs:
                raise QueueFull(
                    f"{self._model} has {len(self._book)} unfinished jobs (limit {self._qargs.max_queued_jobs})",
                    self._qargs.retry_after_s,
                )
            self._accounts.check_submit(tenant or DEFAULT_TENANT, self._order, admin)
            record = JobRecord(
                job_id=job_id,
                model=self._model,
                params=params,
                inputs=inputs,
                output_key=output_key or f"jobs/{job_id}/output.mp4",
                webhook=WebhookState(url=webhook_url) if webhook_url else None,
                idempotency_hash=idempotency_hash,
                owner=owner,
                labels=labels or {},
                tenant=tenant,
            )
            try:
                await self._book.create(record, body_hash)  # durable before the 201
            except StorageError:
                self._spawn(self._book.discard(record))
                raise
            self._order.push(job_id, tenant_of(record))
        logger.info("job %s queued", job_id, extra={"job_id": job_id, "model": self._model})
        metrics.job_submitted(self._model)
        self._pump()
        return self._view(record), True

    async def get(self, job_id: str, scope: str | None = None) -> JobView:
        """The job's current view, if `scope` (an owner's key id; None for an admin) may see it."""
        return self._view(await self._book.visible(job_id, scope))

    async def cancel(self, job_id: str, scope: str | None = None, remove: bool = False) -> JobView:
        """A queued job never runs; a running one stops at its next step. `remove`: an ended one is deleted."""
        record = await self._book.visible(job_id, scope)
        if remove and record.terminal:
            await self._book.remove(record)
        if job_id not in self._book:
            return self._view(record)  # already terminal: cancelling is a no-op
        record.cancel_requested = True
        if self._order.discard(job_id):
            await self._finish(record, "cancelled", None)
        else:
            self._book.touched(job_id)
        return self._view(record)

    async def events(self, job_id: str, scope: str | None = None, after: int = -1) -> AsyncIterator[dict[str, Any]]:
        """The job's state now and its changes as they happen (a streaming handle call), each newer than revision
        `after` (-1: all): `progress` events with status, stage and progress, then one `done` event with the job
        view; it ends there. Changes between two reads coalesce, so a slow reader never makes the queue buffer."""
        record = await self._book.visible(job_id, scope)
        changed = self._watchers.watch(job_id)
        try:
            while True:
                changed.clear()  # before reading the state, so a change made while we yield is not lost
                if record.revision > after:
                    after = record.revision
                    yield stream_event(record, self._view)
                if record.terminal:
                    return
                await changed.wait()
        finally:
            self._watchers.unwatch(job_id, changed)

    async def wait(self, job_id: str, scope: str | None, timeout_s: float) -> JobView:
        """The job's view once it ends, or after `timeout_s`, whichever comes first (`Prefer: wait`)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s), contextlib.aclosing(self.events(job_id, scope)) as events:
                async for _ in events:
                    pass
        return await self.get(job_id, scope)

    async def counts(self) -> dict[str, int]:
        """Per-model counts for /health: unfinished now, and finished since this replica started."""
        unfinished = self._book.unfinished()
        processing = sum(1 for r in unfinished if r.status == "processing")
        return {"pending": len(unfinished) - processing, "processing": processing, **self._counts}

    async def find_idempotent(self, idempotency_hash: str, body_hash: str | None) -> JobView | None:
        """The job first created with this Idempotency-Key; 409 if that job had another body."""
        record = await self._book.find_idempotent(idempotency_hash, body_hash)
        return self._view(record) if record is not None else None

    # ---- API used by model replicas -------------------------------------------------------------

    async def report(self, job_id: str, attempt: int, stage: str, progress: float) -> bool:
        """Progress and heartbeat from a model replica. Returns True when the run should stop."""
        record = self._book.get(job_id)
        if record is None or attempt != record.attempts:
            # finished (a late report may land while the terminal record is being saved), or a stale run
            return True
        self._supervisor.beat(job_id)
        self._accounts.run_started(record)  # its first report starts the attempt's run (once per attempt)
        record.heartbeat_at = utcnow()
        # Never backwards within a run: a runner ends at 100 % and the replica then reports "uploading" at 99 %.
        percent = max(record.progress, round(100 * min(max(progress, 0.0), 1.0), 1))
        if (record.status, record.stage, record.progress) != ("processing", stage, percent):
            if record.status == "queued":
                record.status, record.started_at = "processing", record.started_at or record.heartbeat_at
            record.stage, record.progress = stage, percent
            self._book.touched(job_id)
            self._changed(record)  # a heartbeat alone is no visible change: no new revision
        return record.cancel_requested

    async def cancel_requested(self, job_id: str) -> bool:
        """Whether the job's cancel was asked for. A run that `report` tells to stop may only be stale (superseded
        by a retry): a run that steers other jobs (a chain's coordinator) asks this before cancelling them."""
        return (await self._book.visible(job_id, None)).cancel_requested

    # ---- dispatch and retries -------------------------------------------------------------------

    def _pump(self) -> None:
        """Send waiting jobs to the model while the window has room, in the dispatch order's choice."""
        while len(self._runs) < self._window and (job_id := self._order.pop()) is not None:
            self._order.started(job_id, tenant_of(self._book.get(job_id)))
            self._runs[job_id] = asyncio.get_running_loop().create_task(self._execute(job_id))

    async def _execute(self, job_id: str) -> None:
        joblogs.tag_job_logs(job_id, self._model)
        record = self._book.get(job_id)
        try:
            while record is not None and not record.terminal:
                if record.cancel_requested:
                    await self._finish(record, "cancelled", None)
                    break
                await self._attempt(record)
        finally:
            self._runs.pop(job_id, None)
            if record is not None:
                self._order.ended(job_id, tenant_of(record), self._accounts.job_gpu_s(record))
            self._pump()

    async def _attempt(self, record: JobRecord) -> None:
        """One run of the job on the model; a lost run is retried after a backoff, anything else ends the job."""
        record.attempts += 1
        await self._book.save(record)
        try:
            result = await self._calls.run(record)
        except Exception as exc:  # a crashed, frozen or vanished replica, or an input error it raised
            error = final_error(exc)
            self._accounts.run_ended(record, produced_result=error is not None)  # a lost run is not billed
            if error is not None:  # bad input: a retry cannot fix it
                await self._finish(record, "failed", JobResult(status="failed", attempt=record.attempts, error=error))
            else:
                await self._after_lost_run(record, exc)
        else:
            self._accounts.run_ended(record, produced_result=True)
            await self._finish(record, result.status, result)

    async def _after_lost_run(self, record: JobRecord, exc: Exception) -> None:
        """Retry a lost run after a backoff, or give up once `max_attempts` runs were used."""
        detail = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300]  # for the log only
        if record.attempts >= self._qargs.max_attempts:
            await self._give_up(record, lost_run_reason(exc), detail)
            return
        delay = min(self._qargs.retry_backoff_s * 2 ** (record.attempts - 1), self._qargs.retry_backoff_max_s)
        logger.warning("job %s attempt %d failed (%s); retry in %.1f s", record.job_id, record.attempts, detail,
                       delay, extra={"job_id": record.job_id, "model": self._model})  # fmt: skip
        metrics.job_retried(self._model, "lost_heartbeat" if isinstance(exc, RunLost) else "crash")
        record.status, record.stage, record.progress = "queued", "retrying", 0.0  # the next run starts over
        self._changed(record)
        await self._book.save(record)
        await asyncio.sleep(delay)

    async def _give_up(self, record: JobRecord, reason: str, detail: str) -> None:
        """Fail a job whose `max_attempts` runs have all been lost; the caller reads `reason`, the log `detail`."""
        extra = {"job_id": record.job_id, "model": self._model}
        logger.error("job %s attempt %d failed, giving up: %s", record.job_id, record.attempts, detail, extra=extra)
        error = JobError(code="retries_exhausted", message=f"{record.attempts} attempts failed; last: {reason}")
        await self._finish(record, "failed", JobResult(status="failed", attempt=record.attempts, error=error))

    async def _finish(self, record: JobRecord, status: str, result: JobResult | None) -> None:
        """Move a job to its one terminal state, persist it, and start its webhook."""
        if record.terminal:
            return
        record.status, record.completed_at = status, utcnow()  # type: ignore[assignment]
        record.stage = status
        if result is not None:
            record.error, record.details, record.weights = result.error, result.details, result.weights
        if record.error is not None:  # written for the caller, whoever raised it
            record.error.message = caller_safe(record.error.message)
        if status == "completed":
            record.progress = 100.0
        self._accounts.close(record, result.usage if result is not None else None)
        record.revision += 1  # saved with the terminal record: a stream resumed later still sees the end
        self._book.close(record)
        self._supervisor.forget(record.job_id)
        self._counts[status] += 1
        self._changed(record, bump=False)
        metrics.job_finished(record)
        logger.info("job %s %s", record.job_id, status, extra={"job_id": record.job_id, "model": self._model})
        await self._write_end(record)

    async def _write_end(self, record: JobRecord, now: bool = False) -> None:
        """Bill the job (its ledger entry first: a restart before the record is written bills the same entry again),
        write the terminal record, then send its webhook; unwritten, the monitor tries again each pass."""
        if await self._book.write_end(record, now, before=self._accounts.bill) and record.webhook is not None:
            self._spawn(self._webhooks.send(record))

    # ---- recovery and the monitor loop ----------------------------------------------------------

    async def _recover(self, store: JobStore) -> None:
        """Rebuild the backlog from storage: queued jobs go back in the dispatch order, running ones are adopted
        (each has one heartbeat timeout to report or leave its result), undelivered webhooks are sent again."""
        backlog = await recover(store, self._book, self._model)
        self._order.seed(await self._accounts.load_shares())  # the shares the previous replica dispatched by
        for record in backlog.queued:
            self._book.hold(record)
            self._order.push(record.job_id, tenant_of(record))
        for record in backlog.running:
            self._book.hold(record)
            self._supervisor.adopted(record.job_id)
            self._order.started(record.job_id, tenant_of(record))
        for record in backlog.webhooks:
            self._spawn(self._webhooks.send(record))
        if backlog.queued or backlog.running:
            logger.info("recovered %d unfinished %s jobs (%d adopted)",
                        len(backlog.queued) + len(backlog.running), self._model, len(backlog.running))  # fmt: skip
        self._pump()

    async def _monitor(self) -> None:
        next_sweep = time.monotonic()
        while True:
            await asyncio.sleep(self._qargs.record_flush_s)
            try:
                metrics.queue_state(self._model, await self.counts())
                await self._check_adopted()
                await self._book.flush()
                await self._accounts.save_shares(self._order.shares())
                for record in self._book.unwritten_ends():
                    await self._write_end(record, now=True)
                if self._qargs.retention_days and time.monotonic() >= next_sweep:
                    next_sweep = time.monotonic() + RETENTION_SWEEP_PERIOD_S
                    await asyncio.to_thread(self._direct.sweep_finished, self._qargs.retention_days * 86400)
            except StorageError as exc:  # an outage: one line per pass, not a traceback
                logger.warning("queue monitor pass stopped: %s; will retry", exc)
            except Exception:
                logger.exception("queue monitor pass failed; will retry")

    async def _check_adopted(self) -> None:
        """An adopted run ends when its result file appears, or is run again once the supervisor finds it lost."""
        for job_id in self._supervisor.adopted_ids():
            record = self._book.get(job_id)
            if record is None:
                self._supervisor.forget(job_id)
                continue
            result = await self._book.result(job_id, now=True)
            if result is not None and result.attempt == record.attempts:
                self._accounts.run_ended(record, produced_result=True)
                self._order.ended(job_id, tenant_of(record), self._accounts.job_gpu_s(record))
                await self._finish(record, result.status, result)
            elif self._supervisor.lost(job_id):
                self._supervisor.forget(job_id)
                if record.attempts >= self._qargs.max_attempts:  # the lost run was its last
                    await self._give_up(record, lost_run_reason(RunLost()), "no heartbeat after a queue restart")
                    continue
                metrics.job_retried(self._model, "lost_heartbeat")
                logger.warning("job %s lost its run (no heartbeat); running it again", job_id,
                               extra={"job_id": job_id, "model": self._model})  # fmt: skip
                self._runs[job_id] = asyncio.get_running_loop().create_task(self._execute(job_id))

    # ---- helpers --------------------------------------------------------------------------------

    def _sign(self, key: str) -> str:
        return self._direct.storage.presign_get(key, self._args.storage.presign_expires_s)

    def _view(self, record: JobRecord) -> JobView:
        position = self._places.of(record.job_id, self._queued_in_order) if record.status == "queued" else None
        return job_view(record, position, self._sign)

    def _queued_in_order(self) -> list[str]:
        """Every queued job, first to run first: those already sent to the model (waiting at its handle, or
        backing off before a retry), then the dispatch order's."""
        sent = [r.job_id for r in self._book.unfinished() if r.status == "queued" and r.job_id not in self._order]
        return [*sent, *self._order.waiting()]

    def _changed(self, record: JobRecord, bump: bool = True) -> None:
        """A visible change of a job: a new revision (the SSE event id) and a wake-up for its streams."""
        self._places.changed(record.job_id, record.status == "queued")
        if bump:
            record.revision += 1
        self._watchers.wake(record.job_id)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

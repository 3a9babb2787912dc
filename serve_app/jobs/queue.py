"""JobQueue: one replica per model, owning the lifecycle of that model's jobs.

It writes each record before answering, sends runnable jobs to the model through a DeploymentHandle
(a window of them; the rest wait here in order, and those waiting at the handle are the queue depth
Serve autoscales on), retries crashed runs with backoff, relays cancellation, sends webhooks, and on
restart rebuilds its backlog from `index/{model}/active/`.

Through a storage outage, calls that answer a request (submit, reading a finished job) fail at once with a 503,
while the bookkeeping of accepted jobs waits storage out: record writes go through `RetryingStorage`, progress
flushes stay pending until a pass succeeds, and a terminal record that still cannot be written is served from
memory and written by the monitor once storage is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from ray.serve.handle import DeploymentHandle

from deployments.contract import JobSpec, ModelArgs
from serve_app import joblogs, metrics
from serve_app.errors import IdempotencyConflict, JobNotFound, NotFound, QueueFull, StorageError
from serve_app.jobs import webhooks
from serve_app.jobs.store import JobResult, JobStore
from serve_app.schemas import TERMINAL, JobError, JobRecord, JobView, WebhookState, utcnow
from serve_app.settings import Secrets, SpineArgs
from serve_app.storage.backends import build_storage, retrying

logger = logging.getLogger("serve_app.jobs.queue")
RETENTION_SWEEP_PERIOD_S = 3600.0
WATCH_PERIOD_S = 1.0  # how often a dispatched run's heartbeat is checked
MAX_HEARTBEAT_S = 10.0  # a running job reports at least this often, and 4 times per heartbeat_timeout_s


class RunLost(Exception):
    """The replica running a job went silent: no report for `heartbeat_timeout_s` (frozen, hung or gone)."""


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
    ) -> None:
        joblogs.route_logs_to_serve()
        self._model = model
        self._handle = model_handle
        self._args, self._qargs = args, args.queue
        self._secrets = secrets
        storage = build_storage(args.storage, secrets)
        self._store = JobStore(retrying(storage, args.storage), model)  # bookkeeping: waits out an outage
        self._direct = JobStore(storage, model)  # request paths and monitor passes: fail now, answer 503
        self._jobs: dict[str, JobRecord] = {}  # unfinished jobs, in submission order
        self._ending: dict[str, JobRecord] = {}  # terminal, record not yet written (storage down): served here
        self._end_writes: set[str] = set()  # terminal records being written now
        self._pending: list[str] = []  # not yet sent to the model
        self._runs: dict[str, asyncio.Task] = {}  # sent to the model (or backing off between tries)
        self._adopted: dict[str, float] = {}  # running before a restart: job -> monotonic deadline
        self._beats: dict[str, float] = {}
        self._dirty: set[str] = set()
        self._watchers: dict[str, set[asyncio.Event]] = {}  # job -> one event per open stream or wait
        self._positions: dict[str, int] = {}  # queued job -> its place; emptied when a job joins or leaves the queue
        self._counts = {"completed": 0, "failed": 0, "cancelled": 0}
        self._lock = asyncio.Lock()
        self._background: set[asyncio.Task] = set()
        self._webhook_slots = asyncio.Semaphore(args.webhooks.max_concurrent)
        # `window`: a deployment that runs many jobs at once per replica (a chain's coordinator) sets its own
        self._window = window or args.queue.dispatch_window or 2 * model_args.placement.max_replicas
        await self._recover()
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
    ) -> tuple[JobView, bool]:
        """Persist a new job and queue it; returns (view, created). An idempotent replay returns the old job.
        `output_key` (a chained job's stage) puts the video under another prefix than `jobs/{job_id}/`."""
        async with self._lock:
            if idempotency_hash and (existing := await self.find_idempotent(idempotency_hash, body_hash)):
                return existing, False
            if len(self._jobs) >= self._qargs.max_queued_jobs:
                raise QueueFull(
                    f"{self._model} has {len(self._jobs)} unfinished jobs (limit {self._qargs.max_queued_jobs})",
                    self._qargs.retry_after_s,
                )
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
            )
            try:
                await asyncio.to_thread(self._direct.create, record, body_hash)  # durable before the 201
            except StorageError:
                self._spawn(self._discard(record))
                raise
            self._jobs[job_id] = record
            self._pending.append(job_id)
        logger.info("job %s queued", job_id, extra={"job_id": job_id, "model": self._model})
        metrics.job_submitted(self._model)
        self._pump()
        return self._view(record), True

    async def get(self, job_id: str, scope: str | None = None) -> JobView:
        """The job's current view, if `scope` (an owner's key id; None for an admin) may see it."""
        return self._view(await self._visible(job_id, scope))

    async def cancel(self, job_id: str, scope: str | None = None) -> JobView:
        """A queued job never runs; a running one stops at its next step (the model sees the flag)."""
        record = await self._visible(job_id, scope)
        if job_id not in self._jobs:
            return self._view(record)  # already terminal: cancelling is a no-op
        record.cancel_requested = True
        if job_id in self._pending:
            self._pending.remove(job_id)
            await self._finish(record, "cancelled", None)
        else:
            self._dirty.add(job_id)
        return self._view(record)

    async def events(self, job_id: str, scope: str | None = None, after: int = -1) -> AsyncIterator[dict[str, Any]]:
        """The job's state now and its changes as they happen (a streaming handle call), each newer than revision
        `after` (-1: all):
        `progress` events with status, stage and progress, then one `done` event with the job view; it ends
        there. Changes between two reads coalesce, so a slow reader never makes the queue buffer."""
        record = await self._visible(job_id, scope)
        changed = asyncio.Event()
        self._watchers.setdefault(job_id, set()).add(changed)
        try:
            while True:
                changed.clear()  # before reading the state, so a change made while we yield is not lost
                if record.revision > after:
                    after = record.revision
                    yield self._event(record)
                if record.terminal:
                    return
                await changed.wait()
        finally:
            self._unwatch(job_id, changed)

    async def wait(self, job_id: str, scope: str | None, timeout_s: float) -> JobView:
        """The job's view once it ends, or after `timeout_s`, whichever comes first (`Prefer: wait`)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s), contextlib.aclosing(self.events(job_id, scope)) as events:
                async for _ in events:
                    pass
        return await self.get(job_id, scope)

    async def counts(self) -> dict[str, int]:
        """Per-model counts for /health: unfinished now, and finished since this replica started."""
        processing = sum(1 for r in self._jobs.values() if r.status == "processing")
        return {"pending": len(self._jobs) - processing, "processing": processing, **self._counts}

    # ---- API used by model replicas -------------------------------------------------------------

    async def report(self, job_id: str, attempt: int, stage: str, progress: float) -> bool:
        """Progress and heartbeat from a model replica. Returns True when the run should stop."""
        record = self._jobs.get(job_id)
        if record is None or record.terminal or attempt != record.attempts:
            # finished (a late report may land while the terminal record is being saved), or a stale run
            return True
        now = utcnow()
        if record.status == "queued":
            record.status, record.started_at = "processing", record.started_at or now
        # Never backwards within a run: a runner ends at 100 % and the replica then reports "uploading" at 99 %.
        reported = round(100 * min(max(progress, 0.0), 1.0), 1)
        record.stage, record.progress = stage, max(record.progress, reported)
        record.heartbeat_at = now
        self._beats[job_id] = time.monotonic()
        self._dirty.add(job_id)
        self._changed(record)
        return record.cancel_requested

    async def cancel_requested(self, job_id: str) -> bool:
        """Whether the job's cancel was asked for. A run that `report` tells to stop may only be stale (superseded
        by a retry): a run that steers other jobs (a chain's coordinator) asks this before cancelling them."""
        return (await self._visible(job_id, None)).cancel_requested

    # ---- dispatch and retries -------------------------------------------------------------------

    def _pump(self) -> None:
        """Send waiting jobs to the model while the window has room."""
        while self._pending and len(self._runs) < self._window:
            job_id = self._pending.pop(0)
            self._runs[job_id] = asyncio.get_running_loop().create_task(self._execute(job_id))

    async def _execute(self, job_id: str) -> None:
        joblogs.tag_job_logs(job_id, self._model)
        record = self._jobs[job_id]
        try:
            while not record.terminal:
                if record.cancel_requested:
                    await self._finish(record, "cancelled", None)
                    break
                record.attempts += 1
                self._beats.pop(job_id, None)  # silence is timed from this attempt's first report
                await self._save(record)
                spec = JobSpec(
                    job_id=job_id,
                    model=self._model,
                    attempt=record.attempts,
                    params=record.params,
                    inputs=record.inputs,
                    output_key=record.output_key,
                    heartbeat_s=min(MAX_HEARTBEAT_S, self._qargs.heartbeat_timeout_s / 4),
                )
                try:
                    result = JobResult.model_validate(await self._watched_run(spec))
                except Exception as exc:  # a crashed, frozen or vanished replica, or a transient error
                    await self._after_crash(record, exc)
                else:
                    await self._finish(record, result.status, result)
        finally:
            self._runs.pop(job_id, None)
            self._pump()

    async def _watched_run(self, spec: JobSpec) -> Any:
        """The model's answer for `spec`. A replica that stops reporting may never answer (a frozen process
        answers nothing until Serve's health check gives up on it), so silence raises RunLost."""
        response = self._handle.run.remote(spec)
        call = asyncio.ensure_future(response)
        try:
            while True:
                done, _ = await asyncio.wait({call}, timeout=WATCH_PERIOD_S)
                if done:
                    return call.result()
                beat = self._beats.get(spec.job_id)
                if beat is not None and time.monotonic() - beat > self._qargs.heartbeat_timeout_s:
                    # The run may have ended with only its answer lost: its result file says so.
                    result = await asyncio.to_thread(self._store.load_result, spec.job_id)
                    if result is not None and result.attempt == spec.attempt:
                        return result.model_dump()
                    raise RunLost(f"no report from its replica for {self._qargs.heartbeat_timeout_s:g} s")
        finally:
            # Stop waiting, nothing more: DeploymentResponse.cancel() blocks this event loop on an actor that
            # may never answer. A stale run that wakes up is told to stop by its next report().
            call.cancel()

    async def _after_crash(self, record: JobRecord, exc: Exception) -> None:
        reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300]
        extra = {"job_id": record.job_id, "model": self._model}
        if record.attempts >= self._qargs.max_attempts:
            await self._give_up(record, reason)
            return
        delay = min(self._qargs.retry_backoff_s * 2 ** (record.attempts - 1), self._qargs.retry_backoff_max_s)
        logger.warning(
            "job %s attempt %d failed (%s); retry in %.1f s",
            record.job_id,
            record.attempts,
            reason,
            delay,
            extra=extra,
        )
        metrics.job_retried(self._model, "lost_heartbeat" if isinstance(exc, RunLost) else "crash")
        record.status, record.stage, record.progress = "queued", "retrying", 0.0  # the next run starts over
        self._changed(record)
        await self._save(record)
        await asyncio.sleep(delay)

    async def _give_up(self, record: JobRecord, reason: str) -> None:
        """Fail a job whose `max_attempts` runs have all been used."""
        extra = {"job_id": record.job_id, "model": self._model}
        logger.error("job %s attempt %d failed, giving up: %s", record.job_id, record.attempts, reason, extra=extra)
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
        if status == "completed":
            record.progress = 100.0
        record.revision += 1  # saved with the terminal record: a stream resumed later still sees the end
        self._ending[record.job_id] = record  # visible from memory until written
        self._jobs.pop(record.job_id, None)
        self._adopted.pop(record.job_id, None)
        self._beats.pop(record.job_id, None)
        self._dirty.discard(record.job_id)
        self._counts[status] += 1
        self._changed(record, bump=False)
        metrics.job_finished(record)
        logger.info("job %s %s", record.job_id, status, extra={"job_id": record.job_id, "model": self._model})
        await self._write_end(record, self._store)

    async def _discard(self, record: JobRecord) -> None:
        """Remove what a create that failed part-way wrote, once storage is back: the client got a 503."""
        try:
            await asyncio.to_thread(self._store.discard, record)
        except StorageError:  # leftovers: an orphan record is never run; its index entries are quarantined
            logger.error("job %s: leftovers of a failed create not removed", record.job_id)

    async def _write_end(self, record: JobRecord, store: JobStore) -> None:
        """Write a terminal record and leave the active index, then start the webhook. If storage stays down
        past the retry window, the record stays in `_ending` and the monitor tries again each pass."""
        self._end_writes.add(record.job_id)
        try:
            await asyncio.to_thread(store.finish, record, record.webhook is not None)
        except StorageError as exc:
            extra = {"job_id": record.job_id, "model": self._model}
            logger.error("job %s ended but its record is not written yet (%s)", record.job_id, exc, extra=extra)
            return
        finally:
            self._end_writes.discard(record.job_id)
        self._ending.pop(record.job_id, None)
        if record.webhook is not None:
            self._spawn(self._send_webhook(record))

    async def _save(self, record: JobRecord) -> None:
        """Write a record, waiting out a storage outage; past the retry window an unfinished job's record is
        left for the next flush, and a terminal one's for its next webhook attempt."""
        try:
            await asyncio.to_thread(self._store.save, record)
        except StorageError as exc:
            extra = {"job_id": record.job_id, "model": self._model}
            logger.error("job %s record not written (%s); will write it later", record.job_id, exc, extra=extra)
            if record.job_id in self._jobs:
                self._dirty.add(record.job_id)

    # ---- webhooks -------------------------------------------------------------------------------

    async def _send_webhook(self, record: JobRecord) -> None:
        assert record.webhook is not None
        joblogs.tag_job_logs(record.job_id, self._model)
        secret = self._secrets.webhook_secret
        if secret is None:  # the gateway refuses webhook_url without a secret; this is a config change since
            record.webhook.last_error = "WEBHOOK_SECRET is not set"
            await self._save(record)
            return

        async def persist(attempt: webhooks.Attempt) -> None:
            record.webhook.attempts, record.webhook.last_status = attempt.number, attempt.status_code
            record.webhook.last_error, record.webhook.delivered = attempt.error, attempt.delivered
            metrics.webhook_attempt(self._model, attempt, self._args.webhooks.max_attempts)
            await self._save(record)

        await webhooks.deliver(
            record.webhook.url,
            self._webhook_payload(record),
            f"msg_{record.job_id}",
            secret.get_secret_value(),
            self._args.webhooks,
            persist,
            self._webhook_slots,
            first_attempt=record.webhook.attempts + 1,
        )
        try:
            await asyncio.to_thread(self._store.webhook_done, record.job_id)
        except StorageError:  # the entry stays: a restarted queue sends it again, under the same webhook-id
            logger.error("job %s webhook index entry not removed", record.job_id, extra={"job_id": record.job_id})

    def _webhook_payload(self, record: JobRecord) -> dict[str, Any]:
        payload: dict[str, Any] = {"job_id": record.job_id, "model": record.model, "status": record.status}
        if record.status == "completed":
            payload["video_url"] = self._result_url(record)
        elif record.error is not None:
            payload["error"] = record.error.model_dump()
        return payload

    # ---- recovery and the monitor loop ----------------------------------------------------------

    async def _recover(self) -> None:
        """Rebuild the backlog from the active index: queued jobs re-queue, running ones are adopted. An entry
        that cannot be recovered is moved aside; it never keeps the queue from starting."""
        active = await asyncio.to_thread(self._store.active_ids)
        loaded = await asyncio.gather(*(self._recoverable(job_id, "active") for job_id in active))
        records = [r for r in loaded if r is not None]
        deadline = time.monotonic() + self._qargs.heartbeat_timeout_s
        for record in sorted((r for r in records if not r.terminal), key=lambda r: r.created_at):
            self._jobs[record.job_id] = record
            if record.status == "processing" or record.attempts > 0:
                self._adopted[record.job_id] = deadline
            else:
                self._pending.append(record.job_id)
        # Concurrently, like the active index: one read after another made a restart after a webhook outage slow.
        webhook_ids = await asyncio.to_thread(self._store.pending_webhook_ids)
        for record in await asyncio.gather(*(self._recoverable(job_id, "webhooks") for job_id in webhook_ids)):
            if record is not None:
                self._spawn(self._send_webhook(record))
        if self._jobs:
            logger.info(
                "recovered %d unfinished %s jobs (%d adopted)",
                len(self._jobs),
                self._model,
                len(self._adopted),
            )
        self._pump()

    async def _recoverable(self, job_id: str, index: str) -> JobRecord | None:
        """The record behind an index entry; None, with the entry quarantined, when there is no usable record
        (missing, unreadable, or another model's). A storage outage still raises: the restart is retried."""
        try:
            return await self._load(job_id)
        except (JobNotFound, ValueError) as exc:  # pydantic's ValidationError is a ValueError
            reason = "no record" if isinstance(exc, JobNotFound) else "unreadable record"
            detail = f"{reason}: {str(exc).splitlines()[0]}"[:300]
            logger.error(
                "job %s in index/%s/%s cannot be recovered (%s); moved to index/%s/quarantine/",
                job_id,
                self._model,
                index,
                detail,
                self._model,
                extra={"job_id": job_id, "model": self._model},
            )
            metrics.job_quarantined(self._model, reason)
            await asyncio.to_thread(self._store.quarantine, job_id, index, detail)
            return None

    async def _monitor(self) -> None:
        next_sweep = time.monotonic()
        while True:
            await asyncio.sleep(self._qargs.record_flush_s)
            try:
                metrics.queue_state(self._model, await self.counts())
                await self._check_adopted()
                await self._flush()
                for record in [r for job_id, r in self._ending.items() if job_id not in self._end_writes]:
                    await self._write_end(record, self._direct)
                if self._qargs.retention_days and time.monotonic() >= next_sweep:
                    next_sweep = time.monotonic() + RETENTION_SWEEP_PERIOD_S
                    await asyncio.to_thread(self._direct.sweep_finished, self._qargs.retention_days * 86400)
            except StorageError as exc:  # an outage: one line per pass, not a traceback
                logger.warning("queue monitor pass stopped: %s; will retry", exc)
            except Exception:
                logger.exception("queue monitor pass failed; will retry")

    async def _check_adopted(self) -> None:
        """An adopted run ends when its result file appears, or is retried once its heartbeat stops."""
        for job_id, deadline in list(self._adopted.items()):
            record = self._jobs[job_id]
            result = await asyncio.to_thread(self._direct.load_result, job_id)
            if result is not None and result.attempt == record.attempts:
                await self._finish(record, result.status, result)
                continue
            last_beat = self._beats.get(job_id)
            if max(deadline, (last_beat or 0) + self._qargs.heartbeat_timeout_s) < time.monotonic():
                del self._adopted[job_id]
                if record.attempts >= self._qargs.max_attempts:  # the lost run was its last
                    await self._give_up(record, "its run was lost (no heartbeat after a queue restart)")
                    continue
                metrics.job_retried(self._model, "lost_heartbeat")
                logger.warning(
                    "job %s lost its run (no heartbeat); running it again",
                    job_id,
                    extra={"job_id": job_id, "model": self._model},
                )
                self._runs[job_id] = asyncio.get_running_loop().create_task(self._execute(job_id))

    async def _flush(self) -> None:
        """Write the records changed since the last pass; through an outage they stay pending for the next."""
        dirty, self._dirty = self._dirty, set()
        for job_id in dirty:
            if (record := self._jobs.get(job_id)) is None:
                continue
            try:
                await asyncio.to_thread(self._direct.save, record)
            except StorageError:
                self._dirty |= {j for j in dirty if j in self._jobs}  # written or not, write again: cheap, rare
                raise

    # ---- helpers --------------------------------------------------------------------------------

    async def find_idempotent(self, idempotency_hash: str, body_hash: str | None) -> JobView | None:
        """The job first created with this Idempotency-Key; 409 if that job had another body. A key whose job was
        never stored (its creation failed part-way) is free again."""
        found = await asyncio.to_thread(self._direct.find_idempotent, idempotency_hash)
        if found is None:
            return None
        job_id, stored_body_hash = found
        try:
            view = await self.get(job_id)
        except JobNotFound:
            return None
        if view.status not in TERMINAL and job_id not in self._jobs:
            return None  # a record left by a create that failed (storage went down); it never runs
        if stored_body_hash != (body_hash or ""):  # same key, other body: refuse instead of guessing
            raise IdempotencyConflict("Idempotency-Key was already used with a different request body")
        return view

    async def _visible(self, job_id: str, scope: str | None) -> JobRecord:
        """The record, from memory while unfinished, else from storage; another owner's job does not exist."""
        record = self._jobs.get(job_id) or self._ending.get(job_id) or await self._load(job_id)
        if scope is not None and record.owner != scope:
            raise JobNotFound(f"no job {job_id}")  # the same answer as a missing job: ids are not an oracle
        return record

    async def _load(self, job_id: str) -> JobRecord:
        try:
            record = await asyncio.to_thread(self._direct.load, job_id)
        except NotFound:
            raise JobNotFound(f"no job {job_id}") from None
        if record.model != self._model:
            raise JobNotFound(f"no job {job_id}")
        return record

    def _result_url(self, record: JobRecord) -> str:
        return self._direct.storage.presign_get(record.output_key, self._args.storage.presign_expires_s)

    def _view(self, record: JobRecord) -> JobView:
        position = self._queue_position(record.job_id) if record.status == "queued" else None
        return JobView(
            job_id=record.job_id,
            model=record.model,
            status=record.status,
            progress=record.progress,
            stage=record.stage,
            queue_position=position,
            result_url=self._result_url(record) if record.status == "completed" else None,
            error_message=record.error.message if record.error else None,
            error_code=record.error.code if record.error else None,
            created_at=record.created_at,
            started_at=record.started_at,
            completed_at=record.completed_at,
            attempts=record.attempts,
            params=record.params,
            details=record.details,
            weights=record.weights,
            labels=record.labels,
        )

    def _queue_position(self, job_id: str) -> int | None:
        """The job's place among queued jobs. The places are computed once per change, not once per read: a scan
        per read would make polling cost (active jobs)^2."""
        if job_id not in self._positions:  # a change since the last scan, or a job submitted since
            waiting = (j for j, r in self._jobs.items() if r.status == "queued")
            self._positions = {j: place for place, j in enumerate(waiting)}
        return self._positions.get(job_id)

    def _changed(self, record: JobRecord, bump: bool = True) -> None:
        """A visible change of a job: a new revision (the SSE event id) and a wake-up for its streams."""
        if (record.job_id in self._positions) != (record.status == "queued"):
            self._positions = {}  # it left or re-entered the queue: places are computed again at the next read
        if bump:
            record.revision += 1
        for watcher in self._watchers.get(record.job_id, ()):
            watcher.set()

    def _unwatch(self, job_id: str, watcher: asyncio.Event) -> None:
        watchers = self._watchers.get(job_id, set())
        watchers.discard(watcher)
        if not watchers:
            self._watchers.pop(job_id, None)

    def _event(self, record: JobRecord) -> dict[str, Any]:
        """One stream event: its id (the record's revision), its name, and its data."""
        if record.terminal:
            return {"id": record.revision, "event": "done", "data": self._view(record).model_dump(mode="json")}
        data = {"status": record.status, "stage": record.stage, "progress": record.progress}
        return {"id": record.revision, "event": "progress", "data": data}

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

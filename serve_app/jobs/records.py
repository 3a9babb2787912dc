"""The records of one model's jobs: unfinished ones held in memory in submission order, terminal ones until their
record is written, and the writes themselves.

Two views of storage: bookkeeping writes go through `RetryingStorage` and wait out an outage; request paths and
monitor passes use the direct store and fail at once (the caller gets a 503, the monitor tries again next pass).
A progress change marks a record dirty and is written by the next flush; a terminal record that still cannot be
written is served from memory until a later pass writes it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from serve_app.errors import IdempotencyConflict, JobNotFound, NotFound, StorageError
from serve_app.jobs.store import JobResult, JobStore
from serve_app.schemas import JobRecord

logger = logging.getLogger("serve_app.jobs.records")
EndStep = Callable[[JobRecord], Awaitable[None]]  # a step before a terminal record is written (raises StorageError)
END_WRITE_WAIT_S = 10.0


class RecordBook:
    """Owns the in-memory records of one model's jobs and their writes to storage."""

    def __init__(self, store: JobStore, direct: JobStore, model: str) -> None:
        self._store, self._direct, self._model = store, direct, model
        self._unfinished: dict[str, JobRecord] = {}  # in submission order
        self._ending: dict[str, JobRecord] = {}  # terminal, record not yet written (storage down): served here
        self._end_writes: set[str] = set()  # terminal records being written now
        self._dirty: set[str] = set()
        self._removed: set[str] = set()  # deleted jobs: a late write (a webhook attempt's) must not bring one back

    # ---- unfinished jobs ------------------------------------------------------------------------

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._unfinished

    def __len__(self) -> int:
        return len(self._unfinished)

    def get(self, job_id: str) -> JobRecord | None:
        """The unfinished job's record, or None."""
        return self._unfinished.get(job_id)

    def unfinished(self) -> list[JobRecord]:
        """Every unfinished record, in submission order."""
        return list(self._unfinished.values())

    async def create(self, record: JobRecord, body_hash: str | None) -> None:
        """Store a new job (durable before the caller is answered), then hold it; StorageError if storage is down."""
        await asyncio.to_thread(self._direct.create, record, body_hash)
        self._unfinished[record.job_id] = record

    def hold(self, record: JobRecord) -> None:
        """Hold an unfinished record read back from storage (recovery)."""
        self._unfinished[record.job_id] = record

    def touched(self, job_id: str) -> None:
        """The record changed: the next flush writes it."""
        self._dirty.add(job_id)

    async def save(self, record: JobRecord) -> None:
        """Write a record, waiting out a storage outage; past the retry window an unfinished job's record is
        left for the next flush, and a terminal one's for its next webhook attempt."""
        if record.job_id in self._removed:
            return
        try:
            await asyncio.to_thread(self._store.save, record)
        except StorageError as exc:
            logger.error(
                "job %s record not written (%s); will write it later", record.job_id, exc, extra=self._log(record)
            )
            if record.job_id in self._unfinished:
                self._dirty.add(record.job_id)

    async def flush(self) -> None:
        """Write the records changed since the last pass; through an outage they stay pending for the next."""
        dirty, self._dirty = self._dirty, set()
        for job_id in dirty:
            if (record := self._unfinished.get(job_id)) is None:
                continue
            try:
                await asyncio.to_thread(self._direct.save, record)
            except StorageError:
                self._dirty |= {j for j in dirty if j in self._unfinished}  # written or not, write again: cheap, rare
                raise

    # ---- terminal records -----------------------------------------------------------------------

    def close(self, record: JobRecord) -> None:
        """A job reached its terminal state: it leaves the unfinished jobs and is served from memory until written."""
        self._ending[record.job_id] = record
        self._unfinished.pop(record.job_id, None)
        self._dirty.discard(record.job_id)

    async def write_end(self, record: JobRecord, now: bool = False, before: EndStep | None = None) -> bool:
        """Write a terminal record and leave the active index; True once written, False when it is not written yet
        or another call is writing it. `now`: one direct try (the monitor's), else wait out an outage up to the
        retry window. `before` (the job's ledger entry) runs first, inside the same guard: one write at a time."""
        if record.job_id in self._end_writes:
            return False
        self._end_writes.add(record.job_id)
        try:
            if before is not None:
                await before(record)
            store = self._direct if now else self._store
            await asyncio.to_thread(store.finish, record, record.webhook is not None)
        except StorageError as exc:
            logger.error(
                "job %s ended but its record is not written yet (%s)", record.job_id, exc, extra=self._log(record)
            )
            return False
        finally:
            self._end_writes.discard(record.job_id)
        self._ending.pop(record.job_id, None)
        return True

    def unwritten_ends(self) -> list[JobRecord]:
        """Terminal records not written yet and not being written now."""
        return [record for job_id, record in self._ending.items() if job_id not in self._end_writes]

    async def discard(self, record: JobRecord) -> None:
        """Remove what a create that failed part-way wrote, once storage is back: the client got a 503."""
        try:
            await asyncio.to_thread(self._store.discard, record)
        except StorageError:  # leftovers: an orphan record is never run; its index entries are quarantined
            logger.error("job %s: leftovers of a failed create not removed", record.job_id)

    async def remove(self, record: JobRecord) -> None:
        """Delete a terminal job from storage: its files and record, then its index entries. Its terminal record is
        written first (else that write would bring the job back): past END_WRITE_WAIT_S, a StorageError (503)."""
        deadline = time.monotonic() + END_WRITE_WAIT_S
        while record.job_id in self._ending and time.monotonic() < deadline:  # a run that just stopped
            await asyncio.sleep(0.05)
        if record.job_id in self._ending:
            raise StorageError(f"job {record.job_id} is still being written; delete it again shortly")
        self._removed.add(record.job_id)
        await asyncio.to_thread(self._direct.remove, record)

    # ---- reads ----------------------------------------------------------------------------------

    async def find_idempotent(self, idempotency_hash: str, body_hash: str | None) -> JobRecord | None:
        """The job first created with this Idempotency-Key; IdempotencyConflict if it had another body. A key whose
        job was never stored (its creation failed part-way) is free again."""
        found = await asyncio.to_thread(self._direct.find_idempotent, idempotency_hash)
        if found is None:
            return None
        job_id, stored_body_hash = found
        try:
            record = await self.visible(job_id, None)
        except JobNotFound:
            return None
        if not record.terminal and job_id not in self._unfinished:
            return None  # a record left by a create that failed (storage went down); it never runs
        if stored_body_hash != (body_hash or ""):  # same key, other body: refuse instead of guessing
            raise IdempotencyConflict("Idempotency-Key was already used with a different request body")
        return record

    async def visible(self, job_id: str, scope: str | None) -> JobRecord:
        """The record, from memory while unfinished or unwritten, else from storage; another owner's job (scope:
        an owner's key id; None for an admin) does not exist."""
        record = self._unfinished.get(job_id) or self._ending.get(job_id) or await self.load(job_id)
        if scope is not None and record.owner != scope:
            raise JobNotFound(f"no job {job_id}")  # the same answer as a missing job: ids are not an oracle
        return record

    async def load(self, job_id: str) -> JobRecord:
        """The stored record of one of this model's jobs; JobNotFound when there is none."""
        try:
            record = await asyncio.to_thread(self._direct.load, job_id)
        except NotFound:
            raise JobNotFound(f"no job {job_id}") from None
        if record.model != self._model:
            raise JobNotFound(f"no job {job_id}")
        return record

    async def result(self, job_id: str, now: bool = False) -> JobResult | None:
        """The result file a run left, if any. `now`: one direct read (a monitor pass), else wait out an outage."""
        return await asyncio.to_thread((self._direct if now else self._store).load_result, job_id)

    def _log(self, record: JobRecord) -> dict[str, str]:
        return {"job_id": record.job_id, "model": self._model}

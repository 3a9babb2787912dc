"""Where a model's jobs live in object storage: records, the active index, idempotency keys, result files.

```
jobs/{job_id}/job.json                      the record (JobQueue is its only writer)
jobs/{job_id}/result.json                   the model's outcome, written by the model replica
index/{model}/active/{job_id}               an unfinished job
index/{model}/webhooks/{job_id}             a terminal job whose webhook is not delivered yet
index/{model}/idempotency/{sha256}          -> job_id
index/{model}/finished/{epoch}-{job_id}     for the retention sweep (keys sort by time)
index/{model}/quarantine/{job_id}           an entry with no usable record, moved aside at recovery
index/owners/{key_id}/{inverted}-{job_id}   the jobs of one API key, newest first (inverted creation time)
index/created/{inverted}-{job_id}           every job, newest first (what an admin key lists)
```
All calls block (boto3); the queue runs them in threads.
"""

from __future__ import annotations

import contextlib
import json
import time
from datetime import datetime

from pydantic import BaseModel

from serve_app.errors import NotFound
from serve_app.schemas import JobError, JobRecord, Usage
from serve_app.storage.backends import Storage


class JobResult(BaseModel):
    """`jobs/{id}/result.json`: what a model replica reports when a run ends (also its return value)."""

    status: str  # completed | failed | cancelled
    attempt: int
    error: JobError | None = None
    details: dict = {}
    weights: str | None = None
    usage: Usage | None = None  # a chain's: the sum of its stages' (a model's own usage is timed by its queue)


OWNERS_INDEX, CREATED_INDEX = "index/owners", "index/created"
INVERTED_MS_BASE = 10**13  # ms since 1970 stays under this until the year 2286; keys sort newest first


def record_key(job_id: str) -> str:
    return f"jobs/{job_id}/job.json"


def result_key(job_id: str) -> str:
    return f"jobs/{job_id}/result.json"


def listing_keys(record: JobRecord) -> list[str]:
    """The list-index entries of a job: its owner's (if it has one) and the global one."""
    entry = f"{INVERTED_MS_BASE - int(record.created_at.timestamp() * 1000):013d}-{record.job_id}"
    owner = [f"{OWNERS_INDEX}/{record.owner}/{entry}"] if record.owner else []
    return [*owner, f"{CREATED_INDEX}/{entry}"]


def listing_prefix(owner: str | None) -> str:
    """Where the jobs of `owner` (None: every owner) are listed, newest first."""
    return f"{OWNERS_INDEX}/{owner}/" if owner is not None else f"{CREATED_INDEX}/"


class JobStore:
    """Typed reads and writes of one model's job data."""

    def __init__(self, storage: Storage, model: str) -> None:
        self.storage = storage
        self._index = f"index/{model}"

    def save(self, record: JobRecord) -> None:
        self.storage.put_bytes(record_key(record.job_id), record.model_dump_json().encode(), "application/json")

    def load(self, job_id: str) -> JobRecord:
        return JobRecord.model_validate_json(self.storage.get_bytes(record_key(job_id)))

    def create(self, record: JobRecord, body_hash: str | None = None) -> None:
        """Record first, index second: a crash between them leaves an orphan record, never a phantom job."""
        self.save(record)
        self.storage.put_bytes(f"{self._index}/active/{record.job_id}", b"")
        for key in listing_keys(record):
            self.storage.put_bytes(key, b"")
        if record.idempotency_hash:
            marker = f"{record.job_id} {body_hash or ''}".encode()
            self.storage.put_bytes(f"{self._index}/idempotency/{record.idempotency_hash}", marker)

    def discard(self, record: JobRecord) -> None:
        """Undo a `create` that failed part-way: index entries first, then the record."""
        key_hash = record.idempotency_hash
        if key_hash and (self.find_idempotent(key_hash) or ("",))[0] == record.job_id:  # a later create may own it
            self.storage.delete(f"{self._index}/idempotency/{key_hash}")
        for key in listing_keys(record):
            self.storage.delete(key)
        self.storage.delete(f"{self._index}/active/{record.job_id}")
        self.storage.delete(record_key(record.job_id))

    def finish(self, record: JobRecord, pending_webhook: bool) -> None:
        """Persist a terminal record and move the job out of the active index."""
        self.save(record)
        if pending_webhook:
            self.storage.put_bytes(f"{self._index}/webhooks/{record.job_id}", b"")
        epoch = int((record.completed_at or datetime.now()).timestamp())
        # The marker holds the idempotency key's hash, so the retention sweep can forget the key with the job.
        marker = (record.idempotency_hash or "").encode()
        self.storage.put_bytes(f"{self._index}/finished/{epoch:012d}-{record.job_id}", marker)
        self.storage.delete(f"{self._index}/active/{record.job_id}")

    def remove(self, record: JobRecord) -> None:
        """Delete a finished job (`DELETE /v1/videos/{id}`): its prefix (record, inputs, outputs) first, then its
        index entries; a crash between leaves only entries that name no record, which lists skip."""
        self.storage.delete_prefix(f"jobs/{record.job_id}/")
        epoch = int((record.completed_at or datetime.now()).timestamp())
        self.storage.delete(f"{self._index}/finished/{epoch:012d}-{record.job_id}")
        self.storage.delete(f"{self._index}/webhooks/{record.job_id}")
        for key in listing_keys(record):
            self.storage.delete(key)
        key_hash = record.idempotency_hash
        if key_hash and (self.find_idempotent(key_hash) or ("",))[0] == record.job_id:
            self.storage.delete(f"{self._index}/idempotency/{key_hash}")

    def quarantine(self, job_id: str, index: str, reason: str) -> None:
        """Move an index entry that has no usable record aside, for an operator to inspect: the reason goes to
        `index/{model}/quarantine/{job_id}`, and the entry leaves `index/{model}/{index}/`."""
        self.storage.put_bytes(f"{self._index}/quarantine/{job_id}", f"{index}: {reason}".encode())
        self.storage.delete(f"{self._index}/{index}/{job_id}")

    def webhook_done(self, job_id: str) -> None:
        self.storage.delete(f"{self._index}/webhooks/{job_id}")

    def active_ids(self) -> list[str]:
        return [k.rsplit("/", 1)[1] for k in self.storage.list_keys(f"{self._index}/active/")]

    def pending_webhook_ids(self) -> list[str]:
        return [k.rsplit("/", 1)[1] for k in self.storage.list_keys(f"{self._index}/webhooks/")]

    def find_idempotent(self, key_hash: str) -> tuple[str, str] | None:
        """(job_id, body hash) of the job first created with this key, if any."""
        try:
            job_id, _, body_hash = (
                self.storage.get_bytes(f"{self._index}/idempotency/{key_hash}").decode().partition(" ")
            )
        except NotFound:
            return None
        return job_id, body_hash

    def load_result(self, job_id: str) -> JobResult | None:
        try:
            return JobResult.model_validate(json.loads(self.storage.get_bytes(result_key(job_id))))
        except NotFound:
            return None

    def sweep_finished(self, older_than_s: float) -> int:
        """Delete finished jobs older than `older_than_s`; returns how many. Stops at the first young one."""
        cutoff, removed = time.time() - older_than_s, 0
        for key in self.storage.list_keys(f"{self._index}/finished/"):
            epoch, _, job_id = key.rsplit("/", 1)[1].partition("-")
            if int(epoch) >= cutoff:
                break
            if key_hash := self.storage.get_bytes(key).decode():
                self.storage.delete(f"{self._index}/idempotency/{key_hash}")
            with contextlib.suppress(NotFound):
                for listing in listing_keys(self.load(job_id)):
                    self.storage.delete(listing)
            self.storage.delete_prefix(f"jobs/{job_id}")
            self.storage.delete(key)
            removed += 1
        return removed

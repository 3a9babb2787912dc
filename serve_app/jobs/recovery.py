"""Recovery: a restarted queue's backlog, read from storage. The active index lists the unfinished jobs (queued
ones go back in the dispatch order, running ones are adopted); the webhook index lists terminal jobs whose webhook
is not delivered yet. An entry with no usable record is moved aside; it never keeps the queue from starting."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from serve_app import metrics
from serve_app.errors import JobNotFound
from serve_app.jobs.records import RecordBook
from serve_app.jobs.store import JobStore
from serve_app.schemas import JobRecord

logger = logging.getLogger("serve_app.jobs.recovery")


@dataclass(frozen=True)
class Backlog:
    """What a restarted queue picks up again."""

    queued: list[JobRecord]  # never ran: dispatched again, oldest first
    running: list[JobRecord]  # ran before the restart: adopted, oldest first
    webhooks: list[JobRecord]  # terminal, webhook not delivered yet


async def recover(store: JobStore, book: RecordBook, model: str) -> Backlog:
    """Read the backlog of `model` (a storage outage raises: the restart is retried)."""
    active = await asyncio.to_thread(store.active_ids)
    # Concurrently: one read after another made a restart after a webhook outage slow.
    loaded = await asyncio.gather(*(_recoverable(store, book, model, job_id, "active") for job_id in active))
    unfinished = sorted((r for r in loaded if r is not None and not r.terminal), key=lambda r: r.created_at)
    webhook_ids = await asyncio.to_thread(store.pending_webhook_ids)
    pending = await asyncio.gather(*(_recoverable(store, book, model, job_id, "webhooks") for job_id in webhook_ids))
    return Backlog(
        queued=[r for r in unfinished if not _ran(r)],
        running=[r for r in unfinished if _ran(r)],
        webhooks=[r for r in pending if r is not None],
    )


def _ran(record: JobRecord) -> bool:
    return record.status == "processing" or record.attempts > 0


async def _recoverable(store: JobStore, book: RecordBook, model: str, job_id: str, index: str) -> JobRecord | None:
    """The record behind an index entry; None, with the entry quarantined, when there is no usable record
    (missing, unreadable, or another model's)."""
    try:
        return await book.load(job_id)
    except (JobNotFound, ValueError) as exc:  # pydantic's ValidationError is a ValueError
        reason = "no record" if isinstance(exc, JobNotFound) else "unreadable record"
        detail = f"{reason}: {str(exc).splitlines()[0]}"[:300]
        logger.error(
            "job %s in index/%s/%s cannot be recovered (%s); moved to index/%s/quarantine/",
            job_id,
            model,
            index,
            detail,
            model,
            extra={"job_id": job_id, "model": model},
        )
        metrics.job_quarantined(model, reason)
        await asyncio.to_thread(store.quarantine, job_id, index, detail)
        return None

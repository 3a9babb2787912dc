"""Notification of one model's jobs: wake-ups for the open event streams and waits, and the signed webhook sent
when a job ends (bounded deliveries in flight, each attempt recorded on the job's record)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import SecretStr

from serve_app import joblogs, metrics
from serve_app.errors import StorageError
from serve_app.jobs import webhooks
from serve_app.jobs.store import JobStore
from serve_app.schemas import JobRecord
from serve_app.settings import WebhookArgs

logger = logging.getLogger("serve_app.jobs.notify")


class Watchers:
    """One event per open stream or wait of a job, set on each of its visible changes."""

    def __init__(self) -> None:
        self._events: dict[str, set[asyncio.Event]] = {}

    def watch(self, job_id: str) -> asyncio.Event:
        """A new event, set whenever the job changes from now on; pass it to `unwatch` when done."""
        event = asyncio.Event()
        self._events.setdefault(job_id, set()).add(event)
        return event

    def unwatch(self, job_id: str, event: asyncio.Event) -> None:
        events = self._events.get(job_id, set())
        events.discard(event)
        if not events:
            self._events.pop(job_id, None)

    def wake(self, job_id: str) -> None:
        """The job changed: wake every stream and wait on it."""
        for event in self._events.get(job_id, ()):
            event.set()


class WebhookSender:
    """Delivers the terminal webhook of a job, with at most `args.max_concurrent` deliveries in flight."""

    def __init__(
        self,
        model: str,
        args: WebhookArgs,
        secret: SecretStr | None,
        store: JobStore,
        save: Callable[[JobRecord], Awaitable[None]],
        payload: Callable[[JobRecord], dict[str, Any]],
    ) -> None:
        self._model, self._args, self._secret = model, args, secret
        self._store, self._save, self._payload = store, save, payload
        self._slots = asyncio.Semaphore(args.max_concurrent)

    async def send(self, record: JobRecord) -> None:
        """Deliver the job's webhook (retried with backoff), then drop it from the pending-webhook index."""
        assert record.webhook is not None
        joblogs.tag_job_logs(record.job_id, self._model)
        if self._secret is None:  # the gateway refuses webhook_url without a secret; this is a config change since
            record.webhook.last_error = "WEBHOOK_SECRET is not set"
            await self._save(record)
            return

        async def persist(attempt: webhooks.Attempt) -> None:
            record.webhook.attempts, record.webhook.last_status = attempt.number, attempt.status_code
            record.webhook.last_error, record.webhook.delivered = attempt.error, attempt.delivered
            metrics.webhook_attempt(self._model, attempt, self._args.max_attempts)
            await self._save(record)

        await webhooks.deliver(
            record.webhook.url,
            self._payload(record),
            f"msg_{record.job_id}",
            self._secret.get_secret_value(),
            self._args,
            persist,
            self._slots,
            first_attempt=record.webhook.attempts + 1,
        )
        try:
            await asyncio.to_thread(self._store.webhook_done, record.job_id)
        except StorageError:  # the entry stays: a restarted queue sends it again, under the same webhook-id
            logger.error("job %s webhook index entry not removed", record.job_id, extra={"job_id": record.job_id})

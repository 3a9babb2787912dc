"""TenantAccounts: a JobQueue's part for tenants. It says whose a job is, checks the tenant's per-model limits
at submit, times each attempt's run, and at the terminal state sets the job's usage, writes its ledger entry and
tells the limiter what it cost. It also keeps the dispatch order's shares in `index/{model}/fairshare.json`, so a
restarted queue dispatches with the shares its predecessor had.

Order at the end of a job: `close` (usage into the record) -> `bill` (the ledger entry) -> the terminal record.
The entry is written before the record leaves the active index, so a queue that dies in between ends the job
again after its restart and rewrites the same entry: each job is counted once.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable

from deployments.contract import PlacementArgs
from serve_app import metrics
from serve_app.errors import NotFound, RateLimited
from serve_app.jobs.fairshare import FairShareOrder
from serve_app.schemas import JobRecord, Usage, utcnow
from serve_app.settings import DEFAULT_TENANT, TenantsArgs
from serve_app.storage.backends import Storage
from serve_app.tenants.ledger import Ledger, LedgerEntry, entry_of
from serve_app.tenants.limits import check_submit
from serve_app.tenants.usage import accelerator_of, chain_usage, run_ended, run_gpu_s, run_started, usage_of

logger = logging.getLogger("serve_app.tenants.accounting")
Charge = Callable[[LedgerEntry], Awaitable[None]]


def tenant_of(record: JobRecord | None) -> str:
    """The tenant a job counts for: its creator's key name (a stage: its chain's), else `default`."""
    return (record.tenant if record is not None else None) or DEFAULT_TENANT


class TenantAccounts:
    """Per-model tenant limits, run timings, usage and billing for one model's queue."""

    def __init__(
        self,
        model: str,
        tenants: TenantsArgs,
        placement: PlacementArgs,
        storage: Storage,
        charge: Charge | None = None,
        retry_after_s: int = 30,
        chain: bool = False,
    ) -> None:
        self._model, self._tenants, self._charge = model, tenants, charge
        self._storage, self._ledger = storage, Ledger(storage)
        self._chain = chain
        self._billed: set[str] = set()  # jobs billed by this replica: a retried terminal write bills once
        self._shares_key, self._saved_shares = f"index/{model}/fairshare.json", ""
        self._accelerator, self._devices = accelerator_of(placement)
        self._retry_after_s = retry_after_s

    def check_submit(self, tenant: str, order: FairShareOrder, admin: bool = False) -> None:
        """Refuse a new job of `tenant` over its `max_queued` (or, with `max_queued: 0`, its `max_running`)."""
        if admin and self._tenants.admin_exempt:
            return
        try:
            check_submit(
                self._tenants.limits_for(tenant),
                tenant,
                self._model,
                order.waiting_of(tenant),
                order.running_of(tenant),
                self._retry_after_s,
            )
        except RateLimited as refused:
            metrics.tenant_rejected(self._model, tenant, refused.limit)
            raise

    def run_started(self, record: JobRecord) -> None:
        """The current attempt reported for the first time: its run starts now (on this model's accelerator)."""
        run_started(record, utcnow(), self._accelerator, self._devices)

    def run_ended(self, record: JobRecord, produced_result: bool) -> float:
        """The current attempt's run is over; returns its GPU-seconds (for the dispatch order). A lost run ends
        when its replica was last heard from."""
        at = utcnow() if produced_result or record.heartbeat_at is None else record.heartbeat_at
        run_ended(record, at, produced_result)
        return sum(run_gpu_s(run) for run in record.runs if run.attempt == record.attempts)

    def close(self, record: JobRecord, stages: Usage | None = None) -> None:
        """Set the ended job's usage: from its runs, or for a chain from its stages' sum (`stages`)."""
        price = self._tenants.price_per_gpu_hour
        if stages is None:
            record.usage = usage_of(record, price)
            return
        own = usage_of(record, price)  # the chain's own wait; its coordinator's CPU time is not billed
        record.usage = chain_usage(own.queued_s, [stages])

    async def bill(self, record: JobRecord) -> None:
        """Write the ended job's ledger entry (idempotent) and tell the limiter. Raises StorageError when the
        entry cannot be written: the caller keeps the job unwritten and tries again."""
        if record.job_id in self._billed:
            return
        entry = entry_of(record)
        if entry is not None:  # None for a chain's stage: it is in its chain's entry
            await asyncio.to_thread(self._ledger.write, entry)
        self._billed.add(record.job_id)
        metrics.job_usage(record, gpu=not self._chain)  # a chain's GPU time is counted by its stages' models
        if entry is not None and self._charge is not None:
            try:
                await self._charge(entry)
            except Exception as exc:  # the limiter restarting: it rebuilds the day from the ledger anyway
                logger.warning("job %s: limiter not told of its usage (%s)", record.job_id, exc)

    def job_gpu_s(self, record: JobRecord) -> float:
        """GPU-seconds of every run of the job so far (what the dispatch order is told when its runs end)."""
        return sum(run_gpu_s(run) for run in record.runs)

    async def save_shares(self, shares: dict[str, float]) -> None:
        """Keep the dispatch order's used GPU-seconds per tenant in storage (when they changed), for a restart."""
        body = json.dumps(shares, sort_keys=True)
        if body != self._saved_shares:
            await asyncio.to_thread(self._storage.put_bytes, self._shares_key, body.encode(), "application/json")
            self._saved_shares = body

    async def load_shares(self) -> dict[str, float]:
        """The used GPU-seconds per tenant a previous replica saved; empty the first time."""
        try:
            body = await asyncio.to_thread(self._storage.get_bytes, self._shares_key)
        except NotFound:
            return {}
        self._saved_shares = body.decode()
        return {str(tenant): float(gpu_s) for tenant, gpu_s in json.loads(body).items()}

"""TenantLedger: the one-replica deployment that holds the tenant limits spanning models.

Gateways are stateless and may be many, so a count kept in a gateway replica would let a tenant send N jobs per
minute to each replica. Every gateway replica instead asks this deployment (`admit`) before it takes a job, and
every queue tells it what an ended job used (`charge`) after writing the job's ledger entry. Its state is
small (a sliding minute of submission times per tenant, the day's GPU-seconds per tenant) and comes back from
the ledger when it restarts: submissions of the last minute are forgotten then (a restart lets at most one
extra minute's worth through), spending is not.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from serve_app import joblogs
from serve_app.settings import Secrets, SpineArgs
from serve_app.storage.backends import build_storage, retrying
from serve_app.tenants.ledger import Ledger, LedgerEntry
from serve_app.tenants.limits import Quota, TenantLimiter, utc_day

logger = logging.getLogger("serve_app.tenants.service")


class TenantLedger:
    """Cross-model tenant limits: submissions per minute and the daily GPU budget (one replica)."""

    async def __init__(self, args: SpineArgs, secrets: Secrets, clock: Callable[[], float] = time.time) -> None:
        joblogs.route_logs_to_serve()
        self._ledger = Ledger(retrying(build_storage(args.storage, secrets), args.storage))
        self._limiter = TenantLimiter(args.tenants, clock)
        today = utc_day(clock())
        entries = await asyncio.to_thread(self._ledger.entries, today, today)
        self._limiter.seed((e.job_id, e.tenant, e.day, e.usage.billable_gpu_s) for e in entries)
        logger.info("tenant budgets rebuilt from %d ledger entries of %s", len(entries), today)

    async def admit(self, tenant: str, admin: bool = False) -> Quota:
        """Count one submission, or raise RateLimited / BudgetExhausted (a 429)."""
        return self._limiter.admit(tenant, admin)

    async def charge(self, entry: LedgerEntry) -> None:
        """An ended job's ledger entry was written: count its billable GPU-seconds against its day's budget."""
        self._limiter.charge(entry.job_id, entry.tenant, entry.day, entry.usage.billable_gpu_s)

    async def spent(self, tenant: str) -> float:
        """Billable GPU-seconds of `tenant`'s jobs submitted today (UTC) that have ended."""
        return self._limiter.spent(tenant)

"""The limits that span a tenant's models: submissions per minute and the daily GPU budget (`TenantLimiter`),
the per-model ones the model's queue checks (`check_queued`), and the RateLimit headers of the answers.

`TenantLimiter` is plain logic on an injected clock; one instance lives in the single-replica `TenantLedger`
deployment (`serve_app/tenants/service.py`), so every gateway replica asks the same counters, and it rebuilds
the day's spending from the usage ledger when it restarts.

Headers follow draft-ietf-httpapi-ratelimit-headers-10 (structured fields, a quoted policy name):
`RateLimit-Policy: "minute";q=60;w=60` and `RateLimit: "minute";r=59;t=42`. Only the per-minute policy is
advertised there, since the draft's quota units count requests, not GPU-seconds; the budget is in the 429 body.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from serve_app.errors import BudgetExhausted, RateLimited
from serve_app.settings import TenantLimits, TenantsArgs

WINDOW_S = 60  # submissions_per_minute counts over a sliding minute
POLICY = "minute"  # the policy's name in the RateLimit headers


@dataclass(frozen=True)
class Quota:
    """The state of a tenant's per-minute policy after a request: the header fields (None: no limit)."""

    limit: int | None = None
    remaining: int = 0
    reset_s: int = 0

    def headers(self) -> dict[str, str]:
        """`RateLimit-Policy` and `RateLimit` for this answer; none when the tenant has no per-minute limit."""
        if self.limit is None:
            return {}
        return {
            "RateLimit-Policy": f'"{POLICY}";q={self.limit};w={WINDOW_S}',
            "RateLimit": f'"{POLICY}";r={self.remaining};t={self.reset_s}',
        }


def utc_day(at: float) -> date:
    """The UTC calendar day of a Unix time."""
    return datetime.fromtimestamp(at, UTC).date()


def seconds_to_next_utc_day(at: float) -> int:
    """Whole seconds from `at` to the next UTC midnight (at least 1)."""
    midnight = datetime.combine(utc_day(at) + timedelta(days=1), datetime.min.time(), UTC)
    return max(math.ceil(midnight.timestamp() - at), 1)


class TenantLimiter:
    """Per-tenant sliding-minute submission counts and the day's billable GPU-seconds, checked on submit."""

    def __init__(self, args: TenantsArgs, clock: Callable[[], float] = time.time) -> None:
        self._args, self._clock = args, clock
        self._submissions: dict[str, deque[float]] = {}
        self._day = utc_day(clock())
        self._spent: dict[str, float] = {}  # tenant -> billable GPU-seconds of jobs submitted on `_day`
        self._charged: set[str] = set()  # job ids already counted on `_day`: each job counts once

    def admit(self, tenant: str, admin: bool = False) -> Quota:
        """Count one submission of `tenant`, or refuse it: 429 `budget_exhausted` past the daily budget,
        429 `rate_limited` past `submissions_per_minute`. Admin keys pass when `admin_exempt`."""
        if admin and self._args.admin_exempt:
            return Quota()
        now, limits = self._clock(), self._args.limits_for(tenant)
        self._check_budget(tenant, limits, now)
        if limits.submissions_per_minute is None:
            return Quota()
        recent = self._recent(tenant, now)
        if len(recent) >= limits.submissions_per_minute:
            retry = _ceil(recent[0] + WINDOW_S - now)
            raise RateLimited(
                f"tenant {tenant} sent {len(recent)} jobs in the last minute "
                f"(limit submissions_per_minute={limits.submissions_per_minute})",
                "submissions_per_minute",
                limits.submissions_per_minute,
                retry,
            )
        recent.append(now)
        return Quota(
            limits.submissions_per_minute,
            limits.submissions_per_minute - len(recent),
            _ceil(recent[0] + WINDOW_S - now),
        )

    def charge(self, job_id: str, tenant: str, day: date, billable_gpu_s: float) -> None:
        """A job of `tenant` submitted on `day` ended having used `billable_gpu_s`; each job counts once."""
        self._roll(self._clock())
        if day != self._day or job_id in self._charged:
            return
        self._charged.add(job_id)
        self._spent[tenant] = self._spent.get(tenant, 0.0) + max(billable_gpu_s, 0.0)

    def seed(self, charges: Iterable[tuple[str, str, date, float]]) -> None:
        """Rebuild the day's spending after a restart: (job id, tenant, day, billable GPU-seconds) per ended job."""
        for job_id, tenant, day, gpu_s in charges:
            self.charge(job_id, tenant, day, gpu_s)

    def spent(self, tenant: str) -> float:
        """Billable GPU-seconds of `tenant`'s jobs submitted today (UTC) that have ended."""
        self._roll(self._clock())
        return self._spent.get(tenant, 0.0)

    def _check_budget(self, tenant: str, limits: TenantLimits, now: float) -> None:
        self._roll(now)
        budget, used = limits.daily_gpu_seconds, self._spent.get(tenant, 0.0)
        if budget is not None and used >= budget:
            raise BudgetExhausted(
                f"tenant {tenant} used {used:.0f} of its {budget:g} GPU-seconds for today (UTC)",
                budget,
                round(used, 3),
                seconds_to_next_utc_day(now),
            )

    def _recent(self, tenant: str, now: float) -> deque[float]:
        recent = self._submissions.setdefault(tenant, deque())
        while recent and recent[0] <= now - WINDOW_S:
            recent.popleft()
        return recent

    def _roll(self, now: float) -> None:
        """A new UTC day starts with nothing spent."""
        if (today := utc_day(now)) != self._day:
            self._day, self._spent, self._charged = today, {}, set()


def check_submit(limits: TenantLimits, tenant: str, model: str, waiting: int, running: int, retry_after_s: int) -> None:
    """429 `rate_limited` when `tenant` already has `max_queued` jobs waiting on `model`. `max_queued: 0` takes a
    job only if it can run at once: under `max_running` (the answer then names max_running), never without it."""
    max_queued, max_running = limits.max_queued_for(model), limits.max_running_for(model)
    if max_queued == 0 and max_running is not None:
        if waiting + running < max_running:
            return
        raise RateLimited(
            f"tenant {tenant} has {waiting + running} {model} jobs unfinished (limit max_running={max_running})",
            "max_running",
            max_running,
            retry_after_s,
        )
    if max_queued is not None and waiting >= max_queued:
        raise RateLimited(
            f"tenant {tenant} has {waiting} {model} jobs waiting (limit max_queued={max_queued})",
            "max_queued",
            max_queued,
            retry_after_s,
        )


def _ceil(seconds: float) -> int:
    return max(math.ceil(seconds), 1)

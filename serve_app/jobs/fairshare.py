"""`FairShareOrder`: the dispatch order that shares a model's GPUs between tenants by weight.

The rule is start-time fair queuing over GPU-seconds. Each tenant has a virtual time: the GPU-seconds it used,
divided by its weight. The next job is the head of the tenant with the lowest virtual time among those with a
waiting job and room under their `max_running` (ties: the job that became ready first), so within one tenant
jobs keep their order. A run's length is known only when it ends, so a dispatched job is charged an estimate at
once (the mean GPU-seconds of this model's recent runs) and the estimate is replaced by the real figure when
the run ends; a tenant with many jobs running is thus already "ahead" while they run.

A tenant that was idle comes back at the virtual time of the least-served active tenant (the system's virtual
time), not at its old, low one: idleness earns no credit to starve others with later. After a restart,
`seed` sets the tenants' used GPU-seconds (from the records), so shares carry over.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from itertools import count

from serve_app.settings import TenantsArgs

FIRST_ESTIMATE_S = 1.0  # before any run has ended; any positive figure works, the real ones replace it
ESTIMATE_SMOOTHING = 0.2  # weight of the newest run in the moving mean of run GPU-seconds


@dataclass
class _Tenant:
    weight: float
    max_running: int | None
    done_v: float = 0.0  # GPU-seconds of ended runs / weight
    waiting: deque[tuple[int, str]] = field(default_factory=deque)  # (arrival number, job id), in order
    running: dict[str, float] = field(default_factory=dict)  # job id -> GPU-seconds charged on dispatch

    @property
    def vtime(self) -> float:
        """Virtual time: GPU-seconds used and charged for running jobs, per unit of weight."""
        return self.done_v + sum(self.running.values()) / self.weight

    @property
    def active(self) -> bool:
        return bool(self.waiting or self.running)

    def may_run(self) -> bool:
        return bool(self.waiting) and (self.max_running is None or len(self.running) < self.max_running)


class FairShareOrder:
    """Weighted fair share of one model's GPU time between the tenants with waiting jobs (a `DispatchOrder`)."""

    def __init__(self, tenants: TenantsArgs, model: str) -> None:
        self._args, self._model = tenants, model
        self._tenants: dict[str, _Tenant] = {}
        self._tenant_of: dict[str, str] = {}  # waiting job -> tenant
        self._arrivals = count()
        self._estimate_s = FIRST_ESTIMATE_S
        self._seeded: set[str] = set()  # seeded tenants keep their virtual time on their first push
        self._idle_vtime = 0.0  # the system's virtual time while no tenant is active: where the last one ended

    # ---- the DispatchOrder protocol -------------------------------------------------------------------

    def push(self, job_id: str, tenant: str) -> None:
        """A job is ready to run; it waits behind the tenant's earlier jobs."""
        state = self._tenant(tenant)
        if not state.active and tenant not in self._seeded:
            state.done_v = max(state.done_v, self._system_vtime())  # idleness earns no credit
        self._seeded.discard(tenant)
        state.waiting.append((next(self._arrivals), job_id))
        self._tenant_of[job_id] = tenant

    def discard(self, job_id: str) -> bool:
        """Forget a waiting job (cancelled); False when it was not waiting."""
        tenant = self._tenant_of.pop(job_id, None)
        if tenant is None:
            return False
        waiting = self._tenants[tenant].waiting
        waiting.remove(next(entry for entry in waiting if entry[1] == job_id))
        return True

    def pop(self) -> str | None:
        """The head job of the least-served tenant that may run one more; None if none may."""
        tenant = self._next_tenant(self._tenants)
        if tenant is None:
            return None
        state = self._tenants[tenant]
        _, job_id = state.waiting.popleft()
        del self._tenant_of[job_id]
        state.running[job_id] = self._estimate_s  # charged now: the next pop already sees it
        return job_id

    def started(self, job_id: str, tenant: str) -> None:
        """A job runs: a popped one (already counted), or one adopted after a restart (counted from now)."""
        self._tenant(tenant).running.setdefault(job_id, self._estimate_s)

    def ended(self, job_id: str, tenant: str, gpu_s: float) -> None:
        """A run is over: its estimate gives way to the GPU-seconds it really used."""
        state = self._tenant(tenant)
        state.running.pop(job_id, None)
        state.done_v += max(gpu_s, 0.0) / state.weight
        if gpu_s > 0:
            self._estimate_s += ESTIMATE_SMOOTHING * (gpu_s - self._estimate_s)
        if not any(s.active for s in self._tenants.values()):
            self._idle_vtime = max(self._idle_vtime, state.done_v)

    def waiting(self) -> Iterator[str]:
        """The waiting jobs in the order `pop` would hand them out if no run ended meanwhile; jobs held back by
        `max_running` follow, as if their tenants' runs ended one by one."""
        shadow = {
            name: _Tenant(s.weight, s.max_running, s.done_v, deque(s.waiting), dict(s.running))
            for name, s in self._tenants.items()
        }
        order: list[str] = []
        while any(s.waiting for s in shadow.values()):
            tenant = self._next_tenant(shadow)
            if tenant is None:  # every tenant left is capped: let the longest-running job of each end
                for s in shadow.values():
                    if s.running:
                        s.running.pop(next(iter(s.running)))
                continue
            _, job_id = shadow[tenant].waiting.popleft()
            shadow[tenant].running[job_id] = self._estimate_s
            order.append(job_id)
        return iter(order)

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._tenant_of

    def __len__(self) -> int:
        return len(self._tenant_of)

    # ---- beyond the protocol --------------------------------------------------------------------------

    def seed(self, used_gpu_s: Mapping[str, float]) -> None:
        """Set each tenant's used GPU-seconds (a restarted queue, from its records) before jobs are pushed."""
        for tenant, gpu_s in used_gpu_s.items():
            state = self._tenant(tenant)
            state.done_v = max(gpu_s, 0.0) / state.weight
            self._seeded.add(tenant)

    def waiting_of(self, tenant: str) -> int:
        """How many of `tenant`'s jobs wait (for its `max_queued`)."""
        state = self._tenants.get(tenant)
        return len(state.waiting) if state else 0

    def running_of(self, tenant: str) -> int:
        """How many of `tenant`'s jobs run now."""
        state = self._tenants.get(tenant)
        return len(state.running) if state else 0

    def shares(self) -> dict[str, float]:
        """GPU-seconds used per tenant (ended runs), as `seed` takes them."""
        return {name: s.done_v * s.weight for name, s in self._tenants.items()}

    # ---- internals ------------------------------------------------------------------------------------

    def _tenant(self, tenant: str) -> _Tenant:
        if tenant not in self._tenants:
            limits = self._args.limits_for(tenant)
            self._tenants[tenant] = _Tenant(limits.weight, limits.max_running_for(self._model))
        return self._tenants[tenant]

    def _system_vtime(self) -> float:
        """The virtual time of the least-served active tenant, counting ended runs only; when none is active, that
        of the last tenant whose run ended."""
        return min((s.done_v for s in self._tenants.values() if s.active), default=self._idle_vtime)

    @staticmethod
    def _next_tenant(tenants: Mapping[str, _Tenant]) -> str | None:
        ready = [(s.vtime, s.waiting[0][0], name) for name, s in tenants.items() if s.may_run()]
        return min(ready)[2] if ready else None

"""FairShareOrder on fake numbers: no Ray, a simulated clock and simulated GPUs."""

from __future__ import annotations

import heapq
from collections import Counter

import pytest

from serve_app.jobs.dispatch import DispatchOrder
from serve_app.jobs.fairshare import FairShareOrder
from serve_app.settings import TenantLimits, TenantsArgs

MODEL = "m"


def tenants(**overrides: dict) -> TenantsArgs:
    return TenantsArgs(overrides={name: TenantLimits(**limits) for name, limits in overrides.items()})


def fill(order: FairShareOrder, tenant: str, n: int) -> list[str]:
    jobs = [f"{tenant}-{i}" for i in range(n)]
    for job_id in jobs:
        order.push(job_id, tenant)
    return jobs


def dispatch(order: FairShareOrder) -> str | None:
    """What the queue does: pop, then tell the order the job was sent."""
    job_id = order.pop()
    if job_id is not None:
        order.started(job_id, job_id.split("-")[0])
    return job_id


def simulate(order: FairShareOrder, gpus: int, run_s: dict[str, float], jobs_to_end: int) -> dict[str, float]:
    """Run saturated backlogs on `gpus` simulated GPUs until `jobs_to_end` runs ended; GPU-seconds per tenant."""
    now, running, used = 0.0, [], Counter()
    ended = 0
    while ended < jobs_to_end:
        while len(running) < gpus and (job_id := dispatch(order)) is not None:
            heapq.heappush(running, (now + run_s[job_id.split("-")[0]], job_id))
        now, job_id = heapq.heappop(running)
        tenant = job_id.split("-")[0]
        order.ended(job_id, tenant, run_s[tenant])
        used[tenant] += run_s[tenant]
        ended += 1
    return dict(used)


def test_it_is_a_dispatch_order() -> None:
    order: DispatchOrder = FairShareOrder(tenants(), MODEL)
    order.push("a-0", "a")
    assert "a-0" in order and len(order) == 1 and list(order.waiting()) == ["a-0"]
    assert order.discard("a-0") and not order.discard("a-0") and order.pop() is None


def test_one_job_of_a_second_tenant_runs_before_the_first_tenants_backlog() -> None:
    order = FairShareOrder(tenants(), MODEL)
    fill(order, "a", 30)
    running = [dispatch(order), dispatch(order)]  # two GPUs busy with A's first jobs
    assert running == ["a-0", "a-1"]
    order.push("b-0", "b")
    assert next(order.waiting()) == "b-0"
    assert dispatch(order) == "b-0", "B waits behind A's running jobs only, not its backlog"


def test_order_is_kept_within_a_tenant() -> None:
    order = FairShareOrder(tenants(), MODEL)
    a_jobs, b_jobs = fill(order, "a", 5), fill(order, "b", 5)
    popped = [dispatch(order) for _ in range(10)]
    assert [j for j in popped if j.startswith("a")] == a_jobs
    assert [j for j in popped if j.startswith("b")] == b_jobs
    assert list(order.waiting()) == [] and order.pop() is None


@pytest.mark.parametrize("run_s", [{"a": 1.0, "b": 1.0, "c": 1.0}, {"a": 3.0, "b": 1.0, "c": 2.0}])
def test_weights_1_1_2_give_gpu_shares_within_10_percent_over_40_jobs(run_s: dict[str, float]) -> None:
    order = FairShareOrder(tenants(c={"weight": 2}), MODEL)
    for tenant in "abc":
        fill(order, tenant, 40)
    used = simulate(order, gpus=2, run_s=run_s, jobs_to_end=40)
    total = sum(used.values())
    for tenant, weight in {"a": 0.25, "b": 0.25, "c": 0.5}.items():
        assert abs(used.get(tenant, 0.0) / total - weight) <= 0.1 * weight, (used, run_s)


def test_max_running_caps_a_tenant_even_with_free_gpus() -> None:
    order = FairShareOrder(tenants(a={"max_running": {MODEL: 2}}), MODEL)
    fill(order, "a", 5)
    assert [dispatch(order), dispatch(order), dispatch(order)] == ["a-0", "a-1", None]
    assert order.running_of("a") == 2 and order.waiting_of("a") == 3
    order.ended("a-0", "a", 1.0)
    assert dispatch(order) == "a-2"
    assert order.pop() is None


def test_a_capped_tenant_does_not_block_the_others() -> None:
    order = FairShareOrder(tenants(a={"max_running": 1}), MODEL)
    fill(order, "a", 3)
    fill(order, "b", 3)
    popped = [dispatch(order) for _ in range(5)]
    assert popped == ["a-0", "b-0", "b-1", "b-2", None]
    assert list(order.waiting()) == ["a-1", "a-2"]  # held back, listed after the runnable ones


def test_a_cap_for_another_model_does_not_apply() -> None:
    order = FairShareOrder(tenants(a={"max_running": {"other": 1}}), MODEL)
    fill(order, "a", 3)
    assert [dispatch(order) for _ in range(3)] == ["a-0", "a-1", "a-2"]


def test_an_idle_tenant_earns_no_credit() -> None:
    order = FairShareOrder(tenants(), MODEL)
    for i in range(10):  # A alone for a while: 10 s of GPU time
        order.push(f"a-{i}", "a")
        order.ended(dispatch(order), "a", 1.0)
    fill(order, "b", 10)  # B was idle meanwhile: it starts level with A, not 10 s ahead
    order.push("a-10", "a")
    order.push("a-11", "a")
    popped = [dispatch(order) for _ in range(4)]
    assert popped == ["b-0", "a-10", "b-1", "a-11"], popped


def test_seeded_shares_survive_a_restart() -> None:
    before = FairShareOrder(tenants(), MODEL)
    for i in range(6):
        before.push(f"a-{i}", "a")
        before.ended(dispatch(before), "a", 1.0)
    assert before.shares() == {"a": 6.0}
    after = FairShareOrder(tenants(), MODEL)
    after.seed({**before.shares(), "b": 0.0})
    fill(after, "a", 5)
    fill(after, "b", 10)
    popped = [dispatch(after) for _ in range(6)]
    assert popped[:6] == [f"b-{i}" for i in range(6)], "A used 6 s before the restart: B catches up first"


def test_the_estimate_charged_at_dispatch_gives_way_to_the_real_figure() -> None:
    order = FairShareOrder(tenants(), MODEL)
    fill(order, "a", 2)
    dispatch(order)
    order.ended("a-0", "a", 10.0)
    assert order.shares() == {"a": 10.0}

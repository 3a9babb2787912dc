"""The dispatch order alone (no Ray): within one tenant, first come, first served."""

from __future__ import annotations

from serve_app.jobs.dispatch import DispatchOrder
from serve_app.jobs.fairshare import FairShareOrder
from serve_app.settings import TenantsArgs


def one_tenant_order() -> DispatchOrder:
    return FairShareOrder(TenantsArgs(), "m")


def test_one_tenants_jobs_dispatch_in_arrival_order():
    order = one_tenant_order()
    for job in ("a1", "a2", "a3"):
        order.push(job, "a")
    assert list(order.waiting()) == ["a1", "a2", "a3"]
    popped = []
    while (job := order.pop()) is not None:
        order.started(job, "a")
        popped.append(job)
    assert popped == ["a1", "a2", "a3"]
    assert len(order) == 0 and order.pop() is None


def test_a_discarded_job_is_never_dispatched_and_the_rest_keep_their_places():
    order = one_tenant_order()
    for job in ("a1", "a2", "a3"):
        order.push(job, "a")
    assert order.discard("a2") and not order.discard("a2")
    assert "a2" not in order and "a3" in order
    assert list(order.waiting()) == ["a1", "a3"]
    assert [order.pop(), order.pop(), order.pop()] == ["a1", "a3", None]


def test_waiting_is_a_snapshot_the_caller_may_keep_while_the_order_changes():
    order = one_tenant_order()
    order.push("a1", "a")
    order.push("a2", "a")
    snapshot = order.waiting()
    order.pop()
    assert list(snapshot) == ["a1", "a2"]

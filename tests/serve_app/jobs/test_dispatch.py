"""The dispatch order alone (no Ray): FIFO takes jobs in the order they became ready, whoever sent them."""

from __future__ import annotations

from serve_app.jobs.dispatch import FifoOrder


def test_fifo_dispatches_in_arrival_order_across_tenants():
    order = FifoOrder()
    for job, tenant in [("a1", "a"), ("b1", "b"), ("a2", "a")]:
        order.push(job, tenant)
    assert list(order.waiting()) == ["a1", "b1", "a2"]
    popped = []
    while (job := order.pop()) is not None:
        order.started(job, job[0])
        popped.append(job)
    assert popped == ["a1", "b1", "a2"]
    assert len(order) == 0 and order.pop() is None


def test_a_discarded_job_is_never_dispatched_and_the_rest_keep_their_places():
    order = FifoOrder()
    for job in ("a1", "a2", "a3"):
        order.push(job, "a")
    assert order.discard("a2") and not order.discard("a2")
    assert "a2" not in order and "a3" in order
    assert list(order.waiting()) == ["a1", "a3"]
    assert [order.pop(), order.pop(), order.pop()] == ["a1", "a3", None]


def test_waiting_is_a_snapshot_the_caller_may_keep_while_the_order_changes():
    order = FifoOrder()
    order.push("a1", "a")
    order.push("a2", "a")
    snapshot = order.waiting()
    order.pop()
    assert list(snapshot) == ["a1", "a2"]

"""Run supervision alone, on a fake clock (no Ray): one heartbeat rule for dispatched and adopted runs."""

from __future__ import annotations

from serve_app.jobs.supervision import RunSupervisor


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_dispatched_run_is_never_lost_before_its_first_report():
    clock = FakeClock()
    supervisor = RunSupervisor(timeout_s=30, clock=clock)
    supervisor.dispatched("a")
    clock.now += 3600  # waiting at the handle for a replica to start: not silence
    assert not supervisor.lost("a")


def test_a_run_is_lost_once_its_last_report_is_older_than_the_timeout():
    clock = FakeClock()
    supervisor = RunSupervisor(timeout_s=30, clock=clock)
    supervisor.dispatched("a")
    supervisor.beat("a")
    clock.now += 30
    assert not supervisor.lost("a")  # exactly the timeout: still alive
    supervisor.beat("a")
    clock.now += 30.5
    assert supervisor.lost("a")


def test_an_adopted_run_gets_one_timeout_from_its_adoption_and_each_report_extends_it():
    clock = FakeClock()
    supervisor = RunSupervisor(timeout_s=30, clock=clock)
    supervisor.adopted("a")
    assert supervisor.is_adopted("a") and supervisor.adopted_ids() == ["a"]
    clock.now += 20
    supervisor.beat("a")
    clock.now += 20  # 40 s after adoption, 20 s after the report
    assert not supervisor.lost("a")
    clock.now += 11
    assert supervisor.lost("a")


def test_a_new_attempt_of_an_adopted_job_is_timed_like_any_dispatched_run():
    clock = FakeClock()
    supervisor = RunSupervisor(timeout_s=30, clock=clock)
    supervisor.adopted("a")
    clock.now += 31
    assert supervisor.lost("a")
    supervisor.dispatched("a")
    assert not supervisor.is_adopted("a") and supervisor.adopted_ids() == []
    assert not supervisor.lost("a")


def test_a_forgotten_run_is_not_supervised():
    clock = FakeClock()
    supervisor = RunSupervisor(timeout_s=30, clock=clock)
    supervisor.adopted("a")
    supervisor.forget("a")
    clock.now += 3600
    assert not supervisor.lost("a") and supervisor.adopted_ids() == []

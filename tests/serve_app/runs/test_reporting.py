"""How a run reports to its queue (no Ray: a stand-in for the queue's handle records each report): on a stage
change or a point of progress, and at least once a heartbeat; nothing more, whatever the runner calls."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from deployments.contract import JobSpec
from serve_app.runs import replica
from serve_app.runs.replica import QueueReporter


class RecordingQueue:
    """Stands in for the queue's DeploymentHandle: `report.remote(...)` records the report."""

    def __init__(self) -> None:
        self.reports: list[tuple[str, float]] = []
        self.report = self

    async def remote(self, job_id: str, attempt: int, stage: str, progress: float) -> bool:
        self.reports.append((stage, progress))
        return False


def job(heartbeat_s: float = 10.0) -> JobSpec:
    return JobSpec(job_id="m-" + "0" * 32, model="m", attempt=1, params={}, output_key="o", heartbeat_s=heartbeat_s)


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def test_a_report_goes_out_on_a_stage_change_or_a_point_of_progress(monkeypatch: pytest.MonkeyPatch):
    clock = {"now": 100.0}
    monkeypatch.setattr(replica.time, "monotonic", lambda: clock["now"])

    async def scenario() -> list[tuple[str, float]]:
        queue = RecordingQueue()
        reporter = QueueReporter(job(), queue, asyncio.get_running_loop())  # type: ignore[arg-type]
        reporter.report("denoising", 0.0)
        for step in range(1, 10):  # a tenth of a point each, a second apart: no report
            clock["now"] += 1
            reporter.report("denoising", step / 1000)
        clock["now"] += 1
        reporter.report("denoising", 0.02)  # two points since the last report
        reporter.report("denoising", 0.04)  # two more, but within REPORT_MIN_INTERVAL_S: coalesced
        reporter.report("decoding", 0.05)  # a new stage: always
        await settle()
        return queue.reports

    reports = asyncio.run(scenario())
    assert len(reports) == 3, reports  # the first, the two-point move, the new stage
    assert reports[-1] == ("decoding", 0.05)  # each report carries the latest state when it goes out


def test_the_heartbeat_reports_the_latest_state_at_least_once_a_heartbeat():
    async def scenario() -> list[tuple[str, float]]:
        queue = RecordingQueue()
        reporter = QueueReporter(job(heartbeat_s=0.05), queue, asyncio.get_running_loop())  # type: ignore[arg-type]
        reporter.report("holding", 0.5)
        await settle()
        reporter.report("holding", 0.501)  # not worth a report by itself
        heartbeat = asyncio.create_task(reporter.heartbeat())
        await asyncio.sleep(0.2)
        heartbeat.cancel()
        return queue.reports

    reports: list[Any] = asyncio.run(scenario())
    assert reports[0] == ("holding", 0.5)
    assert len(reports) >= 3, reports  # the first report, then a heartbeat every 0.05 s
    assert reports[-1] == ("holding", 0.501)

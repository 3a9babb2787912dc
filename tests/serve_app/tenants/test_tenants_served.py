"""Tenants on the real served app: fair dispatch, limits answered with 429 through two gateway replicas, and usage
from job views to the ledger. The model is held by a test runner (tests.fakes), so the test, not the machine's
speed, decides how long a backlog lasts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import TERMINAL, app_args, get_job, wait_terminal, wait_until

KEYS = {"acme": "key-acme", "beta": "key-beta"}


def as_tenant(client: httpx.Client, tenant: str) -> httpx.Client:
    return httpx.Client(base_url=client.base_url, headers={"Authorization": f"Bearer {KEYS[tenant]}"}, timeout=30)


def submit(client: httpx.Client, prompt: str = "a red ball") -> httpx.Response:
    return client.post("/api/v1/generate", json={"model": "ltx2", "prompt": prompt, "duration": 1})


@pytest.fixture
def tenant_keys(monkeypatch: pytest.MonkeyPatch, serve_url: str) -> None:
    """Named keys: the builder reads API_KEYS when it builds the app."""
    monkeypatch.setenv("API_KEYS", ",".join(f"{name}:{key}" for name, key in KEYS.items()))


def test_one_job_of_a_second_tenant_runs_before_the_first_tenants_backlog(
    deploy: Any, local_storage: dict, tenant_keys: None, tmp_path: Path
) -> None:
    release = tmp_path / "release"
    args = app_args(local_storage, runner="tests.fakes:HoldingRunner", queue={"dispatch_window": 1},
                    placement={"max_replicas": 1})  # fmt: skip
    client = deploy(args)
    acme, beta = as_tenant(client, "acme"), as_tenant(client, "beta")
    held = submit(acme, f"hold:{release}")
    assert held.status_code == 201, held.text
    backlog = [submit(acme).json()["job_id"] for _ in range(30)]
    wait_until(lambda: get_job(acme, held.json()["job_id"]), lambda j: j["status"] == "processing", timeout_s=60)
    b_job = submit(beta).json()["job_id"]
    assert get_job(beta, b_job)["queue_position"] == 0, "B's job is next, ahead of A's 30 waiting jobs"
    release.touch()
    b_view = wait_terminal(beta, b_job, timeout_s=120)
    assert b_view["status"] == "completed", b_view
    a_started = [get_job(acme, job_id)["started_at"] for job_id in backlog]
    assert sum(started is not None and started < b_view["started_at"] for started in a_started) == 0, a_started
    for job_id in backlog:
        acme.post(f"/api/v1/jobs/{job_id}/cancel")


def test_limits_answer_429_with_their_code_and_headers_through_two_gateways(
    deploy: Any, local_storage: dict, tenant_keys: None
) -> None:
    tenants = {"overrides": {"acme": {"submissions_per_minute": 3}, "beta": {"daily_gpu_seconds": 0.01}}}
    client = deploy(app_args(local_storage, gateway={"num_replicas": 2}, tenants=tenants))
    acme, beta = as_tenant(client, "acme"), as_tenant(client, "beta")
    answers = [submit(acme) for _ in range(5)]
    assert [r.status_code for r in answers] == [201, 201, 201, 429, 429], [r.text for r in answers]
    assert answers[0].headers["RateLimit-Policy"] == '"minute";q=3;w=60'
    assert answers[2].headers["RateLimit"].startswith('"minute";r=0;t=')
    refused = answers[3]
    assert (
        refused.json()["error"]["code"] == "rate_limited"
        and refused.json()["error"]["limit"] == "submissions_per_minute"
    )
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    first = submit(beta)
    assert first.status_code == 201 and "RateLimit" not in first.headers
    assert wait_terminal(beta, first.json()["job_id"])["status"] == "completed"
    over = wait_until(lambda: submit(beta), lambda r: r.status_code == 429, timeout_s=30)  # the charge is async
    error = over.json()["error"]
    assert (error["code"], error["limit"], error["value"]) == ("budget_exhausted", "daily_gpu_seconds", 0.01)
    assert error["used"] > 0.01 and int(over.headers["Retry-After"]) >= 1


def test_max_queued_is_per_tenant_and_model(
    deploy: Any, local_storage: dict, tenant_keys: None, tmp_path: Path
) -> None:
    release = tmp_path / "release"
    args = app_args(local_storage, runner="tests.fakes:HoldingRunner", queue={"dispatch_window": 1},
                    placement={"max_replicas": 1}, tenants={"overrides": {"acme": {"max_queued": 1}}})  # fmt: skip
    client = deploy(args)
    acme, beta = as_tenant(client, "acme"), as_tenant(client, "beta")
    running = submit(acme, f"hold:{release}").json()["job_id"]
    wait_until(lambda: get_job(acme, running), lambda j: j["status"] == "processing", timeout_s=60)
    assert submit(acme).status_code == 201  # waits: one queued is the limit
    refused = submit(acme)
    assert refused.status_code == 429, refused.text
    assert (refused.json()["error"]["limit"], refused.json()["error"]["value"]) == ("max_queued", 1)
    assert "Retry-After" in refused.headers
    assert submit(beta).status_code == 201, "another tenant's backlog is its own"
    release.touch()


def test_usage_totals_equal_the_sum_of_the_job_views(deploy: Any, local_storage: dict, tenant_keys: None) -> None:
    tenants = {"gpu_hour_price": {"cpu": 3600.0}}  # a CPU-second costs 1, so costs are visible
    client = deploy(app_args(local_storage, tenants=tenants))
    acme = as_tenant(client, "acme")
    jobs = [submit(acme).json()["job_id"] for _ in range(3)]
    views = [wait_terminal(acme, job_id) for job_id in jobs]
    assert all(v["status"] == "completed" and v["usage"]["gpu_s"] > 0 for v in views), views
    assert all(
        v["usage"]["billable_gpu_s"] == v["usage"]["gpu_s"] and v["usage"]["accelerator"] == "cpu" for v in views
    )
    report = acme.get("/api/v1/usage", params={"group_by": "model"}).json()
    totals = report["totals"]
    assert totals["jobs"] == {"completed": 3}
    for name in ("gpu_s", "billable_gpu_s", "run_s", "cost"):
        assert totals[name] == pytest.approx(sum(v["usage"][name] for v in views), abs=0.01), name
    assert [(r["tenant"], r["group"]) for r in report["rows"]] == [("acme", "ltx2")]
    other = as_tenant(client, "beta").get("/api/v1/usage", params={"tenant": "acme"})
    assert other.status_code == 422 and other.json()["error"]["fields"][0]["field"] == "tenant"
    assert set(TERMINAL) >= {v["status"] for v in views}

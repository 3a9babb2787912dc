"""Tenants' shares and usage on one real served app whose model runs one job at a time (a dispatch window of one,
one replica), held by a test runner (tests.fakes.GatedRunner) so the test decides when jobs end: a crashed
attempt is in `gpu_s` but not billed, weights 1:1:2 split the GPU time under saturation, and a queue killed under
load dispatches by the shares its predecessor had and bills each job once. The last test kills the queue."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import API_KEY, AUTH, app_args, deploy_app, get_job, wait_terminal, wait_until
from tests.serve_app.jobs.test_resilience import kill_replica

APP = "tenants"
TENANTS = ("acme", "beta", "crashy", "one_a", "one_b", "two")
WEIGHTS = {"one_a": 1.0, "one_b": 1.0, "two": 2.0}


@dataclass
class TenantsApp:
    url: str
    data: Path  # the local storage's root
    gates: Path  # release files of held jobs

    def client(self, tenant: str | None = None) -> httpx.Client:
        """A client with `tenant`'s key (None: the unnamed test key, tenant `default`)."""
        headers = AUTH if tenant is None else {"Authorization": f"Bearer key-{tenant}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def ledger_ids(self, tenant: str) -> list[str]:
        """The job ids of `tenant`'s ledger entries, one per file, every day."""
        return sorted(path.stem for path in (self.data / "usage").glob(f"*/{tenant}/*.json"))

    def shares(self) -> dict[str, float]:
        """The used GPU-seconds per tenant the ltx2 queue keeps for its successor."""
        path = self.data / "index" / "ltx2" / "fairshare.json"
        return json.loads(path.read_text()) if path.exists() else {}


@pytest.fixture(scope="module")
def app(serve_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TenantsApp]:
    from ray import serve

    root = tmp_path_factory.mktemp(APP)
    (root / "gates").mkdir()
    storage = {"backend": "local", "local_dir": str(root / "data"), "public_base_url": f"{serve_url}/{APP}"}
    args = app_args(
        storage,
        runner="tests.fakes:GatedRunner",
        queue={"dispatch_window": 1},
        placement={"max_replicas": 1},
        wav2lip={"enabled": False},
        tenants={"overrides": {"two": {"weight": 2}}, "gpu_hour_price": {"cpu": 3600.0}},  # a CPU-second costs 1
    )
    with pytest.MonkeyPatch.context() as env:  # the builder reads the keys: `name:key` names the tenant
        env.setenv("API_KEYS", ",".join([API_KEY, *(f"{name}:key-{name}" for name in TENANTS)]))
        deploy_app(args, serve_url, name=APP, prefix=f"/{APP}").close()
    yield TenantsApp(f"{serve_url}/{APP}", root / "data", root / "gates")
    serve.delete(APP)


def submit(client: httpx.Client, prompt: str) -> str:
    response = client.post("/api/v1/generate", json={"model": "ltx2", "prompt": prompt, "duration": 1})
    assert response.status_code == 201, response.text
    return response.json()["job_id"]


def held(app: TenantsApp, client: httpx.Client, gate: str) -> str:
    """A job that runs until the test touches its gate."""
    return submit(client, f"hold:{app.gates / gate}")


def release(app: TenantsApp, *gates: str) -> None:
    for gate in gates:
        (app.gates / gate).touch()


def wait_status(client: httpx.Client, job_id: str, status: str, timeout_s: float = 60) -> dict[str, Any]:
    return wait_until(lambda: get_job(client, job_id), lambda job: job["status"] == status, timeout_s=timeout_s)


def test_a_crashed_attempt_is_in_gpu_s_but_not_billed(app: TenantsApp) -> None:
    with app.client("crashy") as crashy:
        job = wait_terminal(crashy, submit(crashy, "crash once"), timeout_s=120)
        assert job["status"] == "completed" and job["attempts"] == 2, job
        usage = job["usage"]
        assert usage["attempts"] == 2 and usage["accelerator"] == "cpu", usage
        assert usage["billable_gpu_s"] > 0, usage
        # The first attempt reported its progress for two seconds before it crashed: the operator's cost only.
        assert usage["gpu_s"] - usage["billable_gpu_s"] >= 1.0, usage
        assert usage["cost"] == pytest.approx(usage["billable_gpu_s"], abs=0.001), usage  # 1 per CPU-second
        totals = wait_until(
            lambda: crashy.get("/api/v1/usage").json()["totals"], lambda t: t["jobs"] == {"completed": 1}
        )
        assert (totals["gpu_s"], totals["billable_gpu_s"]) == (usage["gpu_s"], usage["billable_gpu_s"]), totals
        assert app.ledger_ids("crashy") == [job["job_id"]]


def test_weights_1_1_2_under_saturation_share_the_gpu_within_10_percent_over_40_jobs(app: TenantsApp) -> None:
    clients = {tenant: app.client(tenant) for tenant in WEIGHTS}
    with app.client() as default:
        gate = held(app, default, "weights")  # every job below waits until all are submitted
        wait_status(default, gate, "processing")
        owner: dict[str, str] = {}
        for round_ in range(24):  # interleaved; each tenant keeps a backlog over the first 40 runs (10, 10, 20)
            for tenant in WEIGHTS if round_ < 16 else ("two",):
                owner[submit(clients[tenant], f"job {round_}")] = tenant
        release(app, "weights")
        wait_until(lambda: sum(len(app.ledger_ids(t)) for t in WEIGHTS), lambda n: n >= 40, timeout_s=240)
        for job_id, tenant in owner.items():  # the rest: not needed, and the next test wants the model free
            clients[tenant].post(f"/api/v1/jobs/{job_id}/cancel")
        views = [wait_terminal(clients[tenant], job_id) for job_id, tenant in owner.items()]
    ran = sorted((v for v in views if v["status"] == "completed"), key=lambda v: v["started_at"])[:40]
    assert len(ran) == 40, [v["status"] for v in views]
    used = {tenant: 0.0 for tenant in WEIGHTS}
    for view in ran:
        used[owner[view["job_id"]]] += view["usage"]["gpu_s"]
    total, weights = sum(used.values()), sum(WEIGHTS.values())
    shares = {tenant: used[tenant] / total for tenant in WEIGHTS}
    for tenant, weight in WEIGHTS.items():
        assert abs(shares[tenant] - weight / weights) <= 0.1 * weight / weights, (shares, used)
    for client in clients.values():
        client.close()


def test_a_queue_restart_under_load_keeps_the_shares_and_bills_each_job_once(app: TenantsApp) -> None:
    acme, beta = app.client("acme"), app.client("beta")
    first = held(app, acme, "a0")
    wait_status(acme, first, "processing")
    acme_backlog = [held(app, acme, "a1"), held(app, acme, "a2")]  # submitted before beta's
    beta_jobs = [held(app, beta, "b1"), held(app, beta, "b2")]
    time.sleep(3)  # acme's first run lasts 3 s or more: it has used far more GPU time than beta
    release(app, "a0")
    wait_status(beta, beta_jobs[0], "processing")  # beta used less: its first job runs before acme's backlog
    assert [get_job(acme, job_id)["status"] for job_id in acme_backlog] == ["queued", "queued"]
    record = app.data / "jobs" / beta_jobs[0] / "job.json"
    wait_until(lambda: json.loads(record.read_text())["status"], lambda status: status == "processing")
    before = wait_until(app.shares, lambda shares: shares.get("acme", 0) >= 3 and "beta" in shares)

    kill_replica(APP, "LTX2Queue")

    # The replacement seeds the shares before it queues the backlog again: beta's second job is next although
    # acme's were submitted first (a queue that forgot the shares would run acme's, tied at zero, by age).
    waiting = [(beta, beta_jobs[1]), *((acme, job_id) for job_id in acme_backlog)]
    positions = wait_until(
        lambda: [get_job(client, job_id).get("queue_position") for client, job_id in waiting],
        lambda seen: None not in seen,
        timeout_s=120,
    )
    assert positions == [0, 1, 2], positions
    release(app, "b1", "b2", "a1", "a2")
    jobs_of = ((acme, [first, *acme_backlog]), (beta, beta_jobs))
    views = {job_id: wait_terminal(client, job_id, timeout_s=120) for client, ids in jobs_of for job_id in ids}
    assert {v["status"] for v in views.values()} == {"completed"}, views
    starts = [views[job_id]["started_at"] for job_id in (beta_jobs[1], *acme_backlog)]
    assert starts == sorted(starts), starts
    after = app.shares()
    assert after["acme"] >= before["acme"], (before, after)

    # One ledger entry per job, whichever replica ended it; the totals are the jobs' own usage.
    assert app.ledger_ids("acme") == sorted([first, *acme_backlog])
    assert app.ledger_ids("beta") == sorted(beta_jobs)
    for client, ids in jobs_of:
        totals = client.get("/api/v1/usage").json()["totals"]
        assert totals["jobs"] == {"completed": len(ids)}, totals
        assert totals["gpu_s"] == pytest.approx(sum(views[j]["usage"]["gpu_s"] for j in ids), abs=0.01), totals
    acme.close()
    beta.close()

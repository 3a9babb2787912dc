"""Observability end to end: jobs through the real HTTP API, metrics scraped by a real Prometheus (the
Debian `prometheus` binary, configured from deploy/prometheus/), JSON replica logs, and the docs table.

The app here has its own name, so every query filters on `application` and counts only what this module did.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from deployments.contract import JobSpec, Reporter, RunOutput
from serve_app.metrics import SPECS, metric_table
from tests.conftest import (
    API_KEY,
    AUTH,
    OTHER_KEY,
    REPO,
    WEBHOOK_SECRET,
    WebhookReceiver,
    app_args,
    free_port,
    wait_terminal,
    wait_until,
)
from tests.fakes import FakeRunner

APP = "observed"
TENANT, TENANT_KEY = "acme", "test-key-acme"  # a named key (`acme:...`); the scenario's other keys are unnamed
TENANTS = {"overrides": {TENANT: {"submissions_per_minute": 1}}, "gpu_hour_price": {"cpu": 3600.0}}  # 1 s costs 1
PROMETHEUS_DIR = REPO / "deploy" / "prometheus"
DASHBOARD = REPO / "deploy" / "grafana" / "video-jobs.json"
DOC = REPO / "docs" / "observability.md"
RUNNER_LOG = logging.getLogger("deployments.fake.runner")  # where a real runner logs: deployments.<model>.runner


class MetricsRunner(FakeRunner):
    """FakeRunner plus two behaviours: `crash once` raises on its first attempt (a retry), `linger` runs
    until cancelled (long enough for Prometheus to see it running)."""

    def run(self, job: JobSpec, inputs: dict[str, Path], workdir: Path, reporter: Reporter) -> RunOutput:
        prompt = job.params.get("prompt")
        RUNNER_LOG.info("run of %s, attempt %d", job.job_id, job.attempt)  # no extra=: the task's job tags it
        if prompt == "crash once" and job.attempt == 1:
            raise RuntimeError("simulated crash of the model run")
        if prompt == "linger":
            deadline = time.monotonic() + 600  # cancelled by the scenario once Prometheus has seen it run
            while time.monotonic() < deadline:
                reporter.raise_if_cancelled()
                reporter.report("denoising", 0.1)
                time.sleep(0.1)
        return super().run(job, inputs, workdir, reporter)


# ---- a real Prometheus -----------------------------------------------------------------------------


class Prometheus:
    """The HTTP query API of a running Prometheus, and the Ray metrics agent it scrapes."""

    def __init__(self, url: str, agent_url: str) -> None:
        self.url = url
        self.agent_url = agent_url

    def values(self, expr: str) -> dict[str, float]:
        """Instant query; one entry per series, keyed `label=value,...` (sorted, without the name)."""
        response = httpx.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=10)
        assert response.status_code == 200, (expr, response.text)
        out = {}
        for series in response.json()["data"]["result"]:
            labels = sorted((k, v) for k, v in series["metric"].items() if k != "__name__")
            out[",".join(f"{k}={v}" for k, v in labels)] = float(series["value"][1])
        return out

    def wait_for(self, expr: str, expected: dict[str, float], timeout_s: float = 120) -> dict[str, float]:
        """Poll until the query returns exactly `expected` (metrics travel replica -> agent -> scrape).
        On a timeout the failure names the scrape target's health and what the agent itself serves."""
        try:
            return wait_until(lambda: self.values(expr), lambda v: v == expected, timeout_s=timeout_s, period_s=0.5)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.diagnosis(expr)}") from None

    def diagnosis(self, expr: str) -> str:
        """The target's health and last scrape error, and the agent's own lines for the metric in `expr`."""
        targets = httpx.get(f"{self.url}/api/v1/targets", timeout=10).json()["data"]["activeTargets"]
        health = [
            (t["scrapeUrl"], t["health"], t["lastError"], t["lastScrapeDuration"], t["scrapeTimeout"]) for t in targets
        ]
        names = set(re.findall(r"\b(ray_video_\w+|ray_serve_\w+)", expr))
        try:
            text = httpx.get(f"{self.agent_url}/metrics", timeout=10).text
        except httpx.HTTPError as error:
            return f"targets: {health}; the agent's /metrics failed: {error!r}"
        lines = [line for line in text.splitlines() if any(line.startswith(n) for n in names)]
        ours = [line for line in lines if f'application="{APP}"' in line]
        return (
            f"targets (url, health, lastError, lastScrapeDuration, scrapeTimeout): {health}\n"
            f"agent /metrics: {len(text.splitlines())} lines, {len(lines)} for {sorted(names)}, "
            f"{len(ours)} of app {APP}:\n" + "\n".join((ours or lines)[:20])
        )


def prometheus_config(sd_file: Path) -> dict[str, Any]:
    """deploy/prometheus/prometheus.yml with test timings and this session's service-discovery file."""
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    # A scrape may take no longer than its interval. The agent's /metrics grows with every replica the session
    # has run (5 MB by this module, in 1.5 s on a loaded 2-core machine): with the 1 s interval this file had,
    # every scrape timed out and the target showed no series at all. 10 s is what `ray metrics
    # launch-prometheus` uses.
    config["global"] = {"scrape_interval": "10s", "scrape_timeout": "10s", "evaluation_interval": "1s"}
    config["rule_files"] = [str(PROMETHEUS_DIR / "alerts.yml")]
    [scrape] = config["scrape_configs"]
    scrape["file_sd_configs"][0]["files"] = [str(sd_file)]
    return config


@pytest.fixture(scope="module")
def prometheus(metrics_export_port: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    """Prometheus scraping the session's Ray metrics agent every second, with our alert rules loaded."""
    binary = shutil.which("prometheus")
    assert binary, "prometheus is not on PATH; `make system-deps` installs Debian's package"
    root = tmp_path_factory.mktemp("prometheus")
    sd_file = root / "prom_metrics_service_discovery.json"  # the same shape Ray writes for its own nodes
    sd_file.write_text(json.dumps([{"labels": {"job": "ray"}, "targets": [f"127.0.0.1:{metrics_export_port}"]}]))
    config = root / "prometheus.yml"
    config.write_text(yaml.safe_dump(prometheus_config(sd_file)))
    port = free_port()
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={root / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(root / "prometheus.log").open("wb"),
    )
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        assert process.poll() is None, (root / "prometheus.log").read_text()[-2000:]
        try:
            return httpx.get(f"{url}/-/ready", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(ready, bool, timeout_s=30, period_s=0.2)
    yield Prometheus(url, f"http://127.0.0.1:{metrics_export_port}")
    process.terminate()
    process.wait(timeout=30)


# ---- the jobs this module runs ---------------------------------------------------------------------


@dataclass
class Scenario:
    client: httpx.Client
    logs_dir: Path
    jobs: dict[str, dict[str, Any]]  # completed, failed, cancelled -> final job view
    running_seen: dict[str, float]  # the running gauge while the lingering job ran
    webhook_deliveries: int
    tenant_job: dict[str, Any]  # the final view of the named tenant's one job
    tenant_refused: httpx.Response  # its second submission, over its submissions_per_minute


@pytest.fixture(scope="module")
def scenario(serve_url: str, prometheus: Prometheus, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    """A completed job (one crash, then a retry; one rejected webhook, then a delivered one), a failed one,
    a cancelled one, and three rejected requests, all of the unnamed keys' tenant (`default`); then the named
    tenant's one completed job and its 429 (over `submissions_per_minute`); all on app `observed`, with CPU time
    priced so costs are not zero, and JSON logs in a known folder."""
    from ray import serve

    from serve_app.app import build_app
    from serve_app.catalogue import AppArgs

    for leftover in serve.status().applications:  # an earlier module's app whose teardown failed
        serve.delete(leftover)
    root = tmp_path_factory.mktemp(APP)
    storage = {"backend": "local", "local_dir": str(root / "data"), "public_base_url": f"{serve_url}/{APP}"}
    args = app_args(storage, runner=f"{__name__}:MetricsRunner", placement={"max_replicas": 1}, tenants=TENANTS)
    logging_config = {"encoding": "JSON", "logs_dir": str(root / "logs")}
    with pytest.MonkeyPatch.context() as env:  # the builder reads the keys; the tenant's name comes with its key
        env.setenv("API_KEYS", f"{API_KEY},{OTHER_KEY},{TENANT}:{TENANT_KEY}")
        app = build_app(AppArgs.model_validate(args))
    serve.run(app, name=APP, route_prefix=f"/{APP}", logging_config=logging_config)
    client = httpx.Client(base_url=f"{serve_url}/{APP}", headers=AUTH, timeout=30)
    tenant = httpx.Client(base_url=f"{serve_url}/{APP}", headers={"Authorization": f"Bearer {TENANT_KEY}"}, timeout=30)
    receiver = WebhookReceiver()
    receiver.fail_first = 1

    def submit(prompt: str, caller: httpx.Client = client, **extra: Any) -> str:
        response = caller.post("/api/v1/generate", json={"model": "ltx2", "prompt": prompt, "duration": 1, **extra})
        assert response.status_code == 201, response.text
        return response.json()["job_id"]

    try:
        completed = submit("crash once", webhook_url=receiver.url)
        failed = submit("fail permanently")
        jobs = {"completed": wait_terminal(client, completed), "failed": wait_terminal(client, failed)}
        lingering = submit("linger")
        running = 'sum by (model) (ray_video_jobs_running{application="observed"})'
        running_seen = prometheus.wait_for(running, {"model=ltx2": 1.0, "model=wav2lip": 0.0})
        assert client.post(f"/api/v1/jobs/{lingering}/cancel").status_code == 200
        jobs["cancelled"] = wait_terminal(client, lingering)
        for body in (
            {"model": "ltx2", "prompt": "x", "duration": 30},  # the deployment's 20 s limit: a server check
            {"model": "ltx2"},  # no prompt and no image to animate: a cross-field rule on prompt
            {"model": "ltx2", "prompt": "x", "colour": "red"},  # schema: a key the API does not have
        ):
            assert client.post("/api/v1/generate", json=body).status_code == 422
        assert httpx.get(jobs["completed"]["result_url"]).status_code == 200  # a signed URL, used once
        wait_until(lambda: len(receiver.deliveries), lambda n: n == 2)
        tenant_job = wait_terminal(tenant, submit("a tenant's job", tenant))
        refused = tenant.post("/api/v1/generate", json={"model": "ltx2", "prompt": "one too many", "duration": 1})
        yield Scenario(client, root / "logs", jobs, running_seen, len(receiver.deliveries), tenant_job, refused)
    finally:
        receiver.close()
        client.close()
        tenant.close()
        serve.delete(APP)


def q(expr: str) -> str:
    """`expr` with this module's app filter in every selector written as `{APP}`."""
    return expr.replace("{APP}", f'{{application="{APP}"}}').replace("{APP,", f'{{application="{APP}",')


# ---- metrics ---------------------------------------------------------------------------------------


def test_the_jobs_end_as_the_scenario_intends(scenario):
    jobs = scenario.jobs
    assert jobs["completed"]["status"] == "completed" and jobs["completed"]["attempts"] == 2, jobs["completed"]
    assert jobs["failed"]["status"] == "failed" and jobs["failed"]["error_code"] == "unsupported_prompt"
    assert jobs["cancelled"]["status"] == "cancelled"
    assert scenario.webhook_deliveries == 2
    assert scenario.tenant_job["status"] == "completed", scenario.tenant_job
    assert scenario.tenant_refused.status_code == 429, scenario.tenant_refused.text
    assert scenario.tenant_refused.json()["error"]["limit"] == "submissions_per_minute"


def test_job_counters_equal_what_the_jobs_did(scenario, prometheus):
    prometheus.wait_for(q("sum by (model) (ray_video_jobs_submitted_total{APP})"), {"model=ltx2": 4})
    prometheus.wait_for(
        q("sum by (status) (ray_video_jobs_finished_total{APP, model='ltx2'})"),
        {"status=completed": 2, "status=failed": 1, "status=cancelled": 1},
    )
    prometheus.wait_for(q("sum by (code) (ray_video_job_failures_total{APP})"), {"code=unsupported_prompt": 1})
    prometheus.wait_for(q("sum by (model, reason) (ray_video_job_retries_total{APP})"), {"model=ltx2,reason=crash": 1})


def test_queue_gauges_showed_the_running_job_and_drain_to_zero(scenario, prometheus):
    assert scenario.running_seen == {"model=ltx2": 1, "model=wav2lip": 0}
    drained = {"model=ltx2": 0, "model=wav2lip": 0}
    prometheus.wait_for(q("sum by (model) (ray_video_jobs_running{APP})"), drained)
    prometheus.wait_for(q("sum by (model) (ray_video_jobs_queued{APP})"), drained)


def test_latency_histograms_observe_every_finished_job_once(scenario, prometheus):
    for name in ("ray_video_job_queue_wait_seconds", "ray_video_job_run_seconds"):
        prometheus.wait_for(q(f"sum by (model) ({name}_count{{APP}})"), {"model=ltx2": 4})
        prometheus.wait_for(q(f'sum by (model) ({name}_bucket{{APP, le="+Inf"}})'), {"model=ltx2": 4})
    prometheus.wait_for(
        q("sum by (status) (ray_video_job_e2e_seconds_count{APP})"),
        {"status=completed": 2, "status=failed": 1, "status=cancelled": 1},
    )
    # The lingering job ran for over a second, so the slowest run is past the first buckets.
    slowest = prometheus.values(q("histogram_quantile(1, sum by (le) (ray_video_job_run_seconds_bucket{APP}))"))
    assert slowest[""] > 1, slowest


def test_webhook_storage_and_model_load_metrics(scenario, prometheus):
    prometheus.wait_for(
        q("sum by (outcome) (ray_video_webhook_attempts_total{APP})"), {"outcome=delivered": 1, "outcome=rejected": 1}
    )
    assert prometheus.values(q("ray_video_webhooks_abandoned_total{APP}")) == {}
    # The model replica wrote two outputs, each a video, its thumbnail and its spritesheet (the crashed attempt
    # never got that far), and four result records.
    prometheus.wait_for(
        q("sum by (operation, backend) (ray_video_storage_operation_seconds_count{APP, deployment='LTX2Generator'})"),
        {"backend=local,operation=put_bytes": 4, "backend=local,operation=put_file": 6},
    )
    # min_replicas = max_replicas = 1: each model loaded exactly once.
    prometheus.wait_for(
        q("sum by (model) (ray_video_model_load_seconds_count{APP})"), {"model=ltx2": 1, "model=wav2lip": 1}
    )


def test_input_rejections_by_field_and_reason(scenario, prometheus):
    prometheus.wait_for(
        q("sum by (field, reason) (ray_video_input_rejections_total{APP})"),
        {
            "field=duration,reason=input_check": 1,
            "field=prompt,reason=value_error": 1,
            "field=unknown,reason=extra_forbidden": 1,  # never the client's own key as a label
        },
    )


def test_tenant_metrics_are_labelled_with_the_configured_name_and_default_for_unnamed_keys(scenario, prometheus):
    default_jobs = list(scenario.jobs.values())
    tenant_job = scenario.tenant_job

    def close_to(expected: dict[str, float]):
        return lambda seen: (
            seen.keys() == expected.keys() and all(abs(seen[k] - v) <= 0.01 for k, v in expected.items())
        )

    for metric, field in (
        ("ray_video_gpu_seconds_total", "gpu_s"),
        ("ray_video_billable_gpu_seconds_total", "billable_gpu_s"),
        ("ray_video_job_cost_total", "cost"),
    ):
        expected = {
            f"model=ltx2,tenant={TENANT}": tenant_job["usage"][field],
            "model=ltx2,tenant=default": sum(job["usage"][field] for job in default_jobs),
        }
        assert all(value > 0 for value in expected.values()), (metric, expected)
        wait_until(lambda m=metric: prometheus.values(q(f"sum by (model, tenant) ({m}{{APP}})")), close_to(expected),
                   timeout_s=120, period_s=0.5)  # fmt: skip
    prometheus.wait_for(
        q("sum by (tenant, status) (ray_video_tenant_jobs_finished_total{APP, model='ltx2'})"),
        {f"status=completed,tenant={TENANT}": 1}
        | {f"status={status},tenant=default": 1 for status in ("completed", "failed", "cancelled")},
    )
    prometheus.wait_for(
        q("sum by (model, tenant, reason) (ray_video_tenant_rejections_total{APP})"),
        {f"model=ltx2,reason=submissions_per_minute,tenant={TENANT}": 1},
    )
    # The label's values are the configured names: never a key, whatever series carries it.
    labels = prometheus.values(f'count by (tenant) ({{application="{APP}", tenant!=""}})')
    assert set(labels) == {f"tenant={TENANT}", "tenant=default"}, labels


def test_serve_own_metrics_are_scraped_alongside(scenario, prometheus):
    prometheus.wait_for(
        q("sum by (deployment) (ray_serve_deployment_replica_healthy{APP})"),
        {"deployment=Gateway": 1, "deployment=LTX2Queue": 1, "deployment=Wav2LipQueue": 1}
        | {"deployment=LTX2Generator": 1, "deployment=Wav2LipSyncer": 1, "deployment=TenantLedger": 1},
    )
    # Five runs reached the model replica: four returned a result, the crash raised (Serve counts it apart).
    prometheus.wait_for(
        q("sum by (deployment) (ray_serve_deployment_request_counter_total{APP, deployment='LTX2Generator'})"),
        {"deployment=LTX2Generator": 4},
    )
    prometheus.wait_for(
        q("sum by (deployment) (ray_serve_deployment_error_counter_total{APP, deployment='LTX2Generator'})"),
        {"deployment=LTX2Generator": 1},
    )
    http = q("sum(ray_serve_num_http_requests_total{APP})")  # 8 POSTs and a cancel, plus polls
    wait_until(lambda: prometheus.values(http).get("", 0), lambda n: n >= 9, timeout_s=120)


def test_alert_rules_load_and_evaluate_in_prometheus(scenario, prometheus):
    expected = {
        r["alert"] for g in yaml.safe_load((PROMETHEUS_DIR / "alerts.yml").read_text())["groups"] for r in g["rules"]
    }

    def rules() -> dict[str, str]:
        groups = httpx.get(f"{prometheus.url}/api/v1/rules").json()["data"]["groups"]
        return {r["name"]: r["health"] for g in groups for r in g["rules"]}

    wait_until(rules, lambda seen: seen == dict.fromkeys(expected, "ok"), timeout_s=60)
    # One failure in four jobs is a quarter, over the ratio threshold, but under the 5-job minimum.
    firing = httpx.get(f"{prometheus.url}/api/v1/alerts").json()["data"]["alerts"]
    assert [a for a in firing if a["labels"].get("application") == APP] == []


def test_every_dashboard_panel_shows_data_from_this_app(scenario, prometheus):
    dashboard = json.loads(DASHBOARD.read_text())
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert len(panels) >= 10

    def empty_panels() -> list[tuple[str, list[str]]]:
        empty = []
        for panel in panels:
            exprs = [
                target["expr"]
                .replace("$application", APP)
                .replace("$model", ".*")
                .replace("$__rate_interval", "5m")
                .replace("$__range", "1h")
                for target in panel["targets"]
            ]
            if not any(prometheus.values(expr) for expr in exprs):  # a PromQL error fails inside values()
                empty.append((panel["title"], exprs))
        return empty

    # A rate needs two scrapes of a series, and the last counters of the scenario may not have been
    # scraped twice yet: poll until every panel has data, and fail naming the panels that never did.
    wait_until(empty_panels, lambda empty: empty == [], timeout_s=120, period_s=1)


# ---- logs ------------------------------------------------------------------------------------------


def test_job_log_lines_are_json_tagged_with_job_and_model_without_secrets(scenario):
    files = sorted(scenario.logs_dir.glob("replica_*.log"))
    assert {f.name.split("_")[2] for f in files} >= {"Gateway", "LTX2Queue", "LTX2Generator"}, files
    lines = [json.loads(line) for f in files for line in f.read_text().splitlines() if line.strip()]
    for name, job in scenario.jobs.items():
        about = [line for line in lines if job["job_id"] in line["message"]]
        assert about, f"no log line names the {name} job"
        untagged = [line for line in about if (line.get("video_job_id"), line.get("model")) != (job["job_id"], "ltx2")]
        assert untagged == [], untagged
        # The runner's own line names the job without extra=; it is tagged from the task it runs in.
        model_lines = [line for line in lines if "LTX2Generator" in line.get("deployment", "")]
        assert any(line.get("video_job_id") == job["job_id"] for line in model_lines), name

    text = "\n".join(f.read_text() for f in scenario.logs_dir.iterdir())
    signature = re.search(r"signature=([0-9a-f]+)", scenario.jobs["completed"]["result_url"])
    assert signature
    secrets = (API_KEY, OTHER_KEY, TENANT_KEY, WEBHOOK_SECRET, WEBHOOK_SECRET.removeprefix("whsec_"))
    for secret in (*secrets, signature.group(1)):
        assert secret not in text


# ---- config and docs, no cluster needed ------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        ["check", "config", "prometheus.yml"],
        ["check", "rules", "alerts.yml"],
        ["test", "rules", "alerts_test.yml"],
    ],
    ids=" ".join,
)
def test_promtool_accepts_the_prometheus_files(command):
    promtool = shutil.which("promtool")
    assert promtool, "promtool is not on PATH; `make system-deps` installs Debian's prometheus package"
    result = subprocess.run([promtool, *command], cwd=PROMETHEUS_DIR, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_docs_list_every_metric_exactly_as_the_code_defines_it():
    doc = DOC.read_text()
    start, end = "<!-- metrics-table:start -->", "<!-- metrics-table:end -->"
    assert start in doc and end in doc
    table = doc.split(start, 1)[1].split(end, 1)[0].strip()
    assert table == metric_table(), "docs/observability.md is stale: paste serve_app.metrics.metric_table()"
    for spec in SPECS:  # Prometheus naming: counters end in _total, durations are in seconds
        assert spec.name.startswith("video_")
        assert spec.name.endswith("_total") == (spec.kind == "counter"), spec.name
        assert spec.kind != "histogram" or spec.name.endswith("_seconds"), spec.name

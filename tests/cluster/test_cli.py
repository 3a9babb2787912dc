"""The operator's path: `ray start --head` with the dashboard, `serve deploy serve_config.local.yaml`, `serve status`,
the Serve REST API behind the dashboard's Serve tab, and the Prometheus endpoint, all with Ray 2.60's token auth.

This module starts its own one-node cluster and ends it itself, by the marker in its processes' environment
(`fake_cluster.end_cluster`): `ray stop` would end every Ray process on the machine.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml

from tests.cluster.fake_cluster import MARKER, end_cluster
from tests.conftest import API_KEY, AUTH, REPO, WEBHOOK_SECRET, free_port, wait_until

BIN = Path(sys.executable).parent  # the venv's `ray` and `serve`, whatever PATH says


@dataclass
class HeadNode:
    """A `ray start --head` cluster and what a CLI needs to reach it."""

    dashboard: str
    metrics: str
    http_port: int  # Serve's proxy; http_options are cluster-wide, so the cluster's to choose
    env: dict[str, str]  # token auth on, the token, the import path

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def cli(self, *args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(BIN / args[0]), *args[1:]], env=env or self.env, capture_output=True, text=True, timeout=timeout
        )


def local_config(http_port: int, data_dir: Path) -> dict:
    """serve_config.local.yaml as shipped, on a free HTTP port with its own data directory."""
    config = yaml.safe_load((REPO / "serve_config.local.yaml").read_text())
    config["http_options"]["port"] = http_port
    (app,) = config["applications"]
    app["args"]["storage"]["local_dir"] = str(data_dir)
    app["args"]["storage"]["public_base_url"] = f"http://127.0.0.1:{http_port}"
    return config


@pytest.fixture(scope="module")
def head() -> Iterator[HeadNode]:
    marker = uuid.uuid4().hex
    token = uuid.uuid4().hex + uuid.uuid4().hex
    temp_dir = tempfile.mkdtemp(prefix="raycli-", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    ports = {
        name: free_port()
        for name in (
            "port",
            "dashboard-port",
            "metrics-export-port",
            "ray-client-server-port",
            "dashboard-agent-listen-port",
            "dashboard-agent-grpc-port",
            "runtime-env-agent-port",
            "node-manager-port",
            "object-manager-port",
        )
    }
    assert len(set(ports.values())) == len(ports), ports
    env = {
        **os.environ,
        MARKER: marker,
        "RAY_AUTH_MODE": "token",  # what a production cluster runs with; see docs/observability.md
        "RAY_AUTH_TOKEN": token,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        "API_KEYS": API_KEY,  # read where the app is built: in the cluster, from the environment of `ray start`
        "WEBHOOK_SECRET": WEBHOOK_SECRET,
    }
    start = [
        str(BIN / "ray"),
        "start",
        "--head",
        "--num-cpus=2",
        "--include-dashboard=true",
        "--dashboard-host=127.0.0.1",
        "--node-ip-address=127.0.0.1",
        f"--temp-dir={temp_dir}",
        "--disable-usage-stats",
        *(f"--{name}={port}" for name, port in ports.items()),
    ]
    try:
        started = subprocess.run(start, env=env, capture_output=True, text=True, timeout=120)
        assert started.returncode == 0, started.stdout + started.stderr
        yield HeadNode(
            dashboard=f"http://127.0.0.1:{ports['dashboard-port']}",
            metrics=f"http://127.0.0.1:{ports['metrics-export-port']}/metrics",
            http_port=free_port(),
            env=env,
        )
    finally:
        end_cluster(marker)
        shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def deployed(head: HeadNode, tmp_path_factory: pytest.TempPathFactory) -> HeadNode:
    """`serve deploy` of the local profile, then `serve status` polled until the app is RUNNING."""
    root = tmp_path_factory.mktemp("cli")
    config = root / "serve_config.yaml"
    config.write_text(yaml.safe_dump(local_config(head.http_port, root / "data")))
    sent = head.cli("serve", "deploy", str(config), "--address", head.dashboard)
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert "Sent deploy request successfully" in sent.stdout + sent.stderr

    def app_status() -> dict:
        result = head.cli("serve", "status", "--address", head.dashboard)
        assert result.returncode == 0, result.stdout + result.stderr
        apps = (yaml.safe_load(result.stdout) or {}).get("applications") or {}
        app = apps.get("video", {"status": "absent"})
        assert app["status"] != "DEPLOY_FAILED", result.stdout
        return app  # a timeout shows each deployment's status and message

    # Both tiny models are built at replica start: minutes on a slow, loaded 2-core machine.
    wait_until(app_status, lambda app: app["status"] == "RUNNING", timeout_s=300, period_s=1)
    return head


def test_serve_status_reports_the_app_running_with_its_deployments(deployed):
    result = deployed.cli("serve", "status", "--address", deployed.dashboard)
    assert result.returncode == 0, result.stderr
    app = yaml.safe_load(result.stdout)["applications"]["video"]
    assert app["status"] == "RUNNING"
    assert set(app["deployments"]) == {
        *("Gateway", "LTX2Queue", "Wav2LipQueue", "LTX2Generator", "Wav2LipSyncer"),
        *("TalkingVideoQueue", "TalkingVideoCoordinator", "TenantLedger"),
    }
    assert all(d["status"] == "HEALTHY" for d in app["deployments"].values()), app["deployments"]


def test_the_app_answers_on_the_configured_port(deployed):
    health = httpx.get(f"{deployed.http}/health", timeout=30)
    assert health.status_code == 200, health.text
    assert set(health.json()["models"]) == {"ltx2", "wav2lip", "talking_video"}
    assert httpx.get(f"{deployed.http}/api/v1/jobs/ltx2-0", headers=AUTH, timeout=30).status_code == 404


def test_cli_and_dashboard_refuse_a_client_without_the_token(deployed):
    no_token = {k: v for k, v in deployed.env.items() if k != "RAY_AUTH_TOKEN"} | {"RAY_AUTH_MODE": "disabled"}
    refused = deployed.cli("serve", "status", "--address", deployed.dashboard, env=no_token)
    assert refused.returncode != 0
    assert "auth" in (refused.stdout + refused.stderr).lower()
    api = f"{deployed.dashboard}/api/serve/applications/"
    assert httpx.get(api, timeout=30).status_code == 401
    # The dashboard's Serve tab reads this endpoint; with the token it lists the app.
    token = {"Authorization": f"Bearer {deployed.env['RAY_AUTH_TOKEN']}"}
    listed = httpx.get(api, headers=token, timeout=30)
    assert listed.status_code == 200, listed.text
    assert listed.json()["applications"]["video"]["status"] == "RUNNING"


def test_prometheus_endpoint_serves_serve_metrics_without_a_token(deployed):
    def scrape() -> str:
        try:
            return httpx.get(deployed.metrics, timeout=10).text
        except httpx.HTTPError:
            return ""

    def queue_gauges(text: str) -> list[str]:
        return [line for line in text.splitlines() if line.startswith("ray_video_jobs_queued{")]

    # One queue gauge per model (each JobQueue replica reports on its own; the chained talking_video has one too),
    # next to Serve's own metrics.
    text = wait_until(scrape, lambda t: "ray_serve_deployment_replica_healthy" in t and len(queue_gauges(t)) == 3, 60)
    assert all('application="video"' in line and line.endswith(" 0.0") for line in queue_gauges(text)), text

"""Shared real parts: one local Ray cluster with Serve on a free port, moto's S3 server, a webhook receiver.

Ray is started lazily by the fixtures that need it, so model unit tests run without it.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

REPO = Path(__file__).resolve().parents[1]
API_KEY = "test-key-1"
OTHER_KEY = "test-key-2"
WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"test-webhook-secret-32-bytes-lng").decode()
AUTH = {"Authorization": f"Bearer {API_KEY}"}
TERMINAL = {"completed", "failed", "cancelled"}
FAST_PLACEMENT = {
    "num_cpus": 0,
    "min_replicas": 1,
    "max_replicas": 2,
    "upscale_delay_s": 0.5,
    "downscale_delay_s": 5,
    "look_back_period_s": 11,
    "graceful_shutdown_timeout_s": 5,
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(fetch: Callable[[], Any], done: Callable[[Any], bool], timeout_s: float = 30, period_s: float = 0.1):
    """Poll `fetch` until `done(value)`; fail with the last value seen."""
    deadline, value = time.monotonic() + timeout_s, None
    while time.monotonic() < deadline:
        value = fetch()
        if done(value):
            return value
        time.sleep(period_s)
    raise AssertionError(f"condition not met within {timeout_s} s; last value: {value!r}")


# ---- S3 through moto's standalone HTTP server ----------------------------------------------------


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A real HTTP S3 endpoint (moto). Credentials are set before Ray starts so replicas inherit them."""
    from moto.server import ThreadedMotoServer

    for name, value in (
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
    ):
        os.environ[name] = value
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3_bucket(s3_endpoint: str) -> str:
    import uuid

    import boto3

    name = f"test-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket=name)
    return name


# ---- Ray and Serve -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def metrics_export_port() -> int:
    """Where Ray's metrics agent serves Prometheus text (`/metrics`) for the session's cluster."""
    return free_port()


@pytest.fixture(scope="session")
def serve_url(s3_endpoint: str, metrics_export_port: int) -> Iterator[str]:
    """One Ray cluster and Serve instance for the whole run, HTTP on a free loopback port."""
    import ray
    from ray import serve

    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    os.environ["API_KEYS"] = f"{API_KEY},{OTHER_KEY}"  # read by the app builder (Secrets.from_env)
    os.environ["WEBHOOK_SECRET"] = WEBHOOK_SECRET
    ray.init(
        address="local",  # always a new cluster: never join one another session left running on this machine
        num_cpus=8,
        include_dashboard=False,
        log_to_driver=False,
        _metrics_export_port=metrics_export_port,
        _system_config={"metrics_report_interval_ms": 1000},  # metrics reach /metrics within a second, not 10
    )
    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    yield f"http://127.0.0.1:{port}"
    serve.shutdown()
    ray.shutdown()


def app_args(storage: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    """AppArgs for a test app: fake runners, zero-CPU replicas, short backoffs, loopback webhooks allowed."""
    runner = overrides.pop("runner", "tests.fakes:FakeRunner")
    placement = {**FAST_PLACEMENT, **overrides.pop("placement", {})}
    args: dict[str, Any] = {
        "storage": storage,
        "queue": {"retry_backoff_s": 0.2, "heartbeat_timeout_s": 5, "record_flush_s": 0.2},
        "webhooks": {"backoff_s": 0.2, "timeout_s": 5, "allow_networks": ["127.0.0.0/8"]},
        "gateway": {"num_cpus": 0, "graceful_shutdown_timeout_s": 5},  # teardowns wait on open streams
        "queue_num_cpus": 0,
        "ltx2": {"runner": runner, "placement": placement},
        "wav2lip": {"runner": runner, "placement": placement},
        "talking_video": {"enabled": False},  # a chain of the two: its own tests enable it (one queue fewer elsewhere)
    }
    for section, values in overrides.items():
        args[section] = {**args.get(section, {}), **values} if isinstance(values, dict) else values
    return args


@pytest.fixture
def local_storage(tmp_path: Path, serve_url: str) -> dict[str, Any]:
    return {"backend": "local", "local_dir": str(tmp_path / "data"), "public_base_url": serve_url}


def deploy_app(
    args: dict[str, Any], serve_url: str, name: str = "video", prefix: str = "/", catalogue: Any = None
) -> httpx.Client:
    """Deploy the real app with `args` (and another catalogue than the app's own, if given); returns a client
    with a valid key, based at the app's prefix."""
    from ray import serve

    from serve_app.app import build_app_from
    from serve_app.catalogue import CATALOGUE

    catalogue = catalogue or CATALOGUE
    serve.run(build_app_from(catalogue, catalogue.args_model.model_validate(args)), name=name, route_prefix=prefix)
    return httpx.Client(base_url=serve_url + prefix.rstrip("/"), headers=AUTH, timeout=30)


@pytest.fixture
def deploy(serve_url: str) -> Iterator[Callable[..., httpx.Client]]:
    """Deploy app `video` at `/` with a test's own args (and catalogue); deleted after the test."""
    from ray import serve

    clients: list[httpx.Client] = []

    def _deploy(args: dict[str, Any], catalogue: Any = None) -> httpx.Client:
        clients.append(deploy_app(args, serve_url, catalogue=catalogue))
        return clients[-1]

    yield _deploy
    for client in clients:
        client.close()
    serve.delete("video")


@dataclass
class SharedApp:
    client: httpx.Client
    data_dir: Path

    def job_dirs(self) -> set[str]:
        jobs = self.data_dir / "jobs"
        return {p.name for p in jobs.iterdir()} if jobs.exists() else set()


@pytest.fixture(scope="module")
def shared_app(serve_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharedApp]:
    """One app with default test args for a whole module, at `/shared` (tests that need no special args)."""
    from ray import serve

    data = tmp_path_factory.mktemp("shared") / "data"
    storage = {"backend": "local", "local_dir": str(data), "public_base_url": f"{serve_url}/shared"}
    client = deploy_app(app_args(storage), serve_url, name="shared", prefix="/shared")
    yield SharedApp(client, data)
    client.close()
    serve.delete("shared")


def url(client: httpx.Client, path: str) -> str:
    """Absolute URL of `path` under the client's app prefix (for requests made without the client's key)."""
    return str(client.base_url).rstrip("/") + path


def get_job(client: httpx.Client, job_id: str) -> dict[str, Any]:
    response = client.get(f"/api/v1/jobs/{job_id}")
    assert response.status_code in (200, 503), response.text  # 503 only while a queue replica restarts
    return response.json() if response.status_code == 200 else {"status": "unavailable"}


def wait_terminal(client: httpx.Client, job_id: str, timeout_s: float = 60) -> dict[str, Any]:
    return wait_until(lambda: get_job(client, job_id), lambda j: j["status"] in TERMINAL, timeout_s)


# ---- webhook receiver ----------------------------------------------------------------------------


class WebhookReceiver:
    """A real HTTP server on loopback that checks each delivery's Standard Webhooks signature."""

    def __init__(self) -> None:
        self.deliveries: list[dict[str, Any]] = []
        self.fail_first = 0
        self.delay_s = 0.0  # each answer waits this long, so deliveries overlap
        self.most_in_flight = 0  # the most deliveries that were being answered at once
        in_flight, lock = [0], threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                from serve_app.jobs.webhooks import verify

                with lock:
                    in_flight[0] += 1
                    receiver.most_in_flight = max(receiver.most_in_flight, in_flight[0])
                body = self.rfile.read(int(self.headers["content-length"]))
                headers = {k.lower(): v for k, v in self.headers.items()}
                valid = verify(WEBHOOK_SECRET, headers, body)
                time.sleep(receiver.delay_s)
                with lock:
                    in_flight[0] -= 1
                    receiver.deliveries.append({"body": json.loads(body), "headers": headers, "valid": valid})
                    failing = len(receiver.deliveries) <= receiver.fail_first
                self.send_response(500 if failing else (200 if valid else 401))
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            request_queue_size = 128  # the default 5 resets connections when many deliveries arrive at once

        self._server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hook"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()


@pytest.fixture
def webhook_receiver() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    yield receiver
    receiver.close()

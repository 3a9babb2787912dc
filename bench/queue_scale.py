"""The job queue at scale: how submissions, reads and a queue restart behave with 1,000 and 5,000 active jobs,
against the same measurements with a handful of active jobs (the baseline), in one run on one Ray cluster.
Writes bench/results_queue_scale.md.

    .venv/bin/python bench/queue_scale.py [--jobs 1000 5000] [--backends local s3] [--requests 300]

For each storage backend (`local`: a directory; `s3`: moto's S3 server over HTTP, in this process) the real app
is deployed with a model whose one replica holds its first job forever, so every later job stays active
(queued). The backlog is then filled to each size by writing jobs to storage exactly as the queue writes them
(`JobStore.create`, the record copied from a job submitted over HTTP), and the queue replica is killed: the
replacement rebuilds its backlog from the active index before it serves. Measured at each size:

- restart to ready: from `ray.kill` of the queue replica to the first 200 for a job of that queue, and the
  replacement's /health must count every active job (nothing lost, nothing invented);
- submissions/s and their p50/p99 through the gateway (`--requests` POSTs, `--concurrency` clients);
- GET /api/v1/jobs/{id} p50/p99 on random queued jobs, and the first page of GET /api/v1/jobs (20 jobs);
- the queue replica's resident memory (VmRSS).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import platform
import random
import re
import socket
import statistics
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import ray
from ray import serve

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
API_KEY = "bench-key"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
BODY = {"model": "ltx2", "prompt": "a lighthouse at dusk, waves, slow dolly", "duration": 5, "seed": 1}
APP, PREFIX, QUEUE = "qs", "/qs", "LTX2Queue"
LOG_TIME = re.compile(r"^\w+ (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ")
GET_CALL = re.compile(r" -- CALL get OK ([\d.]+)ms")


class HoldingRunner:
    """A model whose one replica stays busy with its first job until the run ends: every later job stays queued."""

    def __init__(self, args: object) -> None:
        self.weights = "none"

    def run(self, job: object, inputs: dict, workdir: Path, reporter: object) -> None:
        time.sleep(3600)


@dataclass
class Row:
    backend: str
    active: int  # active jobs when the queue restarted
    restart_s: float
    init_s: float  # the replacement queue replica's initialisation, recovery included (Serve's log)
    submit_rate: float
    submit_p50: float
    submit_p99: float
    get_p50: float
    get_p99: float
    queue_get_p50: float  # the queue's own time per get (Serve's access log of the replica)
    list_p50: float
    rss_mib: float


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ms(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1] * 1000


async def closed_loop(calls: list[tuple[str, str, dict | None]], concurrency: int) -> tuple[float, list[float]]:
    """`concurrency` clients share `calls` (method, url, json); returns (calls/s, latencies). Any non-2xx fails."""
    latencies: list[float] = []
    pending = iter(calls)

    async def client_loop(client: httpx.AsyncClient) -> None:
        for method, url, body in pending:
            start = time.perf_counter()
            response = await client.request(method, url, json=body, headers=AUTH)
            latencies.append(time.perf_counter() - start)
            assert response.is_success, f"{method} {url}: {response.status_code} {response.text[:300]}"

    async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=concurrency)) as client:
        started = time.perf_counter()
        await asyncio.gather(*(client_loop(client) for _ in range(concurrency)))
        return len(calls) / (time.perf_counter() - started), latencies


class Bench:
    """One backend's app and the storage it writes to."""

    def __init__(self, base: str, storage_args: dict[str, Any], concurrency: int, requests: int) -> None:
        from serve_app.app import build_app
        from serve_app.catalogue import AppArgs
        from serve_app.jobs.store import JobStore
        from serve_app.settings import Secrets
        from serve_app.storage.backends import build_storage

        self.url = base + PREFIX
        self.concurrency, self.requests = concurrency, requests
        placement = {"num_cpus": 0, "min_replicas": 1, "max_replicas": 1, "graceful_shutdown_timeout_s": 1}
        args = AppArgs.model_validate(
            {
                "storage": {**storage_args, "public_base_url": self.url},
                "queue": {"max_queued_jobs": 1_000_000, "dispatch_window": 1, "heartbeat_timeout_s": 3600},
                "gateway": {"num_cpus": 0},
                "queue_num_cpus": 0,
                "ltx2": {"runner": "bench.queue_scale:HoldingRunner", "placement": placement},
                "wav2lip": {"enabled": False, "runner": "bench.queue_scale:HoldingRunner"},
            }
        )
        serve.run(build_app(args), name=APP, route_prefix=PREFIX)
        self.store = JobStore(build_storage(args.storage, Secrets()), "ltx2")
        self.job_ids = [self.post_one() for _ in range(2)]  # the first holds the replica; the second is queued
        self.template = self.store.load(self.job_ids[1])

    def post_one(self) -> str:
        response = httpx.post(f"{self.url}/api/v1/generate", json=BODY, headers=AUTH, timeout=120)
        assert response.status_code == 201, response.text
        return response.json()["job_id"]

    def active(self) -> int:
        return len(self.store.active_ids())

    def fill(self, target: int) -> None:
        """Write jobs to storage as the queue would have, until `target` are active."""
        from serve_app.schemas import utcnow

        def create(_: int) -> str:
            job_id = f"ltx2-{uuid.uuid4().hex}"
            update = {"job_id": job_id, "output_key": f"jobs/{job_id}/output.mp4", "created_at": utcnow()}
            self.store.create(self.template.model_copy(update=update))
            return job_id

        with ThreadPoolExecutor(16) as pool:
            self.job_ids += list(pool.map(create, range(target - self.active())))

    def restart_queue(self) -> tuple[float, float]:
        """Kill the queue replica; seconds until its replacement answers for a job (every job recovered), and
        seconds its initialisation took."""
        active = self.active()
        names = [a["name"] for a in ray.util.list_named_actors(all_namespaces=True)]
        (replica,) = [n for n in names if n.startswith(f"SERVE_REPLICA::{APP}#{QUEUE}#")]
        started = time.perf_counter()
        ray.kill(ray.get_actor(replica, namespace="serve"), no_restart=True)
        probe = f"{self.url}/api/v1/jobs/{self.job_ids[-1]}"
        while True:
            try:
                if httpx.get(probe, headers=AUTH, timeout=300).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
        counts = httpx.get(f"{self.url}/health", timeout=60).json()["models"]["ltx2"]
        recovered = counts["pending"] + counts["processing"]
        assert recovered == active, f"{active} active jobs in storage, {recovered} recovered: {counts}"
        lines = self.queue_log().read_text().splitlines()
        stamps = [LOG_TIME.match(line) for line in lines if "initializing replica." in line]
        started_at, finished_at = (datetime.strptime(m[1], "%Y-%m-%d %H:%M:%S,%f") for m in stamps[:2] if m)
        return elapsed, (finished_at - started_at).total_seconds()

    def queue_log(self) -> Path:
        """The log file of the live queue replica (Serve writes one per replica)."""
        names = [a["name"] for a in ray.util.list_named_actors(all_namespaces=True)]
        (replica,) = [n for n in names if n.startswith(f"SERVE_REPLICA::{APP}#{QUEUE}#")]
        # No public API names the session folder.
        logs = Path(ray._private.worker._global_node.get_session_dir_path()) / "logs" / "serve"
        return logs / f"replica_{APP}_{QUEUE}_{replica.rsplit('#', 1)[1]}.log"

    def queue_rss_mib(self) -> float:
        names = [a["name"] for a in ray.util.list_named_actors(all_namespaces=True)]
        (replica,) = [n for n in names if n.startswith(f"SERVE_REPLICA::{APP}#{QUEUE}#")]
        pid = ray.get(ray.get_actor(replica, namespace="serve").__ray_call__.remote(lambda _: os.getpid()))
        status = Path(f"/proc/{pid}/status").read_text()
        return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:"))) / 1024

    def measure(self, backend: str, active: int, restart: tuple[float, float]) -> Row:
        posts = [("POST", f"{self.url}/api/v1/generate", BODY)] * self.requests
        submit_rate, submit = asyncio.run(closed_loop(posts, self.concurrency))
        queued = random.choices(self.job_ids[1:], k=self.requests)
        log_offset = self.queue_log().stat().st_size
        _, gets = asyncio.run(closed_loop([("GET", f"{self.url}/api/v1/jobs/{j}", None) for j in queued], 8))
        with self.queue_log().open() as log:
            log.seek(log_offset)
            queue_gets = [float(m[1]) / 1000 for m in GET_CALL.finditer(log.read())]
        pages = [("GET", f"{self.url}/api/v1/jobs?limit=20", None)] * 20
        _, lists = asyncio.run(closed_loop(pages, 2))
        return Row(
            backend,
            active,
            *restart,
            submit_rate,
            ms(submit, 50),
            ms(submit, 99),
            ms(gets, 50),
            ms(gets, 99),
            ms(queue_gets, 50),
            ms(lists, 50),
            self.queue_rss_mib(),
        )


def run_backend(backend: str, base: str, storage_args: dict, opts: argparse.Namespace) -> list[Row]:
    bench = Bench(base, storage_args, opts.concurrency, opts.requests)
    rows = [bench.measure(backend, bench.active(), bench.restart_queue())]  # the baseline: two active jobs
    print(rows[-1], flush=True)
    for size in opts.jobs:
        started = time.perf_counter()
        bench.fill(size)
        print(f"{backend}: filled to {bench.active()} active jobs in {time.perf_counter() - started:.0f} s", flush=True)
        rows.append(bench.measure(backend, bench.active(), bench.restart_queue()))
        print(rows[-1], flush=True)
    serve.delete(APP)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1000, 5000], help="active jobs at each restart")
    parser.add_argument("--backends", nargs="+", choices=("local", "s3"), default=["local", "s3"])
    parser.add_argument("--requests", type=int, default=300, help="POSTs, and GETs, measured at each size")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--note", default="", help="a line on the conditions of this run, for the results")
    opts = parser.parse_args()

    from moto.server import ThreadedMotoServer

    for name, value in (("AWS_ACCESS_KEY_ID", "bench"), ("AWS_SECRET_ACCESS_KEY", "bench")):
        os.environ[name] = value  # before Ray starts, so the replicas inherit them
    os.environ["AWS_DEFAULT_REGION"] = "us-east-1"
    os.environ["API_KEYS"] = API_KEY
    os.environ["PYTHONPATH"] = str(REPO)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's server logs every request otherwise
    moto_port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=moto_port)
    moto.start()
    ray.init(address="local", num_cpus=8, include_dashboard=False, log_to_driver=False)
    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    base = f"http://127.0.0.1:{port}"
    rows: list[Row] = []
    try:
        for backend in opts.backends:
            if backend == "local":
                storage = {"backend": "local", "local_dir": tempfile.mkdtemp(prefix="bench-qs-")}
            else:
                import boto3

                endpoint, bucket = f"http://127.0.0.1:{moto_port}", f"bench-{uuid.uuid4().hex[:8]}"
                boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=bucket)
                storage = {"backend": "s3", "bucket": bucket, "endpoint_url": endpoint, "region": "us-east-1"}
            rows += run_backend(backend, base, storage, opts)
    finally:
        serve.shutdown()
        ray.shutdown()
        moto.stop()
    write_results(rows, opts)


def write_results(rows: list[Row], opts: argparse.Namespace) -> None:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    lines = [
        "## The queue at scale (`bench/queue_scale.py`)",
        "",
        f"Machine: {cpu}, {os.cpu_count()} cores, no GPU (CPU-only); Python {platform.python_version()}, "
        f"Ray {ray.__version__}. Command: `bench/queue_scale.py --jobs {' '.join(map(str, opts.jobs))} "
        f"--backends {' '.join(opts.backends)} --requests {opts.requests}`.",
        *([opts.note] if opts.note else []),
        f"Each row: {opts.requests} POSTs ({opts.concurrency} clients) and {opts.requests} GETs (8 clients); 20 list "
        "pages (2 clients). The first row of each backend (2 active jobs) is the baseline of the ratios.",
        "",
        "| backend | active jobs | restart to ready s | queue init (recovery) s | init ms per job | submissions/s "
        "| x baseline | submit p50 / p99 ms | GET p50 / p99 ms | queue's get p50 ms | list page p50 ms "
        "| queue RSS MiB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        base = next(r for r in rows if r.backend == row.backend)
        lines.append(
            f"| {row.backend} | {row.active} | {row.restart_s:.1f} | {row.init_s:.2f} "
            f"| {'-' if row is base else f'{1000 * row.init_s / row.active:.2f}'} "
            f"| {row.submit_rate:.0f} | {row.submit_rate / base.submit_rate:.2f} "
            f"| {row.submit_p50:.0f} / {row.submit_p99:.0f} | {row.get_p50:.0f} / {row.get_p99:.0f} "
            f"| {row.queue_get_p50:.2f} | {row.list_p50:.0f} | {row.rss_mib:.0f} |"
        )
    text = "\n".join([*lines, ""])
    (REPO / "bench" / "results_queue_scale.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()

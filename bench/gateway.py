"""Job submissions per second and latency through the gateway, against a bare Serve echo ingress measured in
the same run on the same Ray cluster. Writes bench/results_gateway.md.

    .venv/bin/python bench/gateway.py [--requests 1500] [--concurrency 8] [--streams 200]

The gateway path is the real one: auth, validation, parameter snapping, the queue's durable write of the
record and index (local storage), then 201. The model is busy with one long job for the whole run, so the
burst queues behind it (the case a burst meets in production) and no job execution competes for the CPU
with the submissions being measured. A third row repeats the gateway load with `--streams` SSE streams open
(on queued jobs, so they stay open), a fourth the plain load again.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import socket
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import ray
from fastapi import FastAPI
from ray import serve

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
BODY = {"model": "ltx2", "prompt": "a lighthouse at dusk, waves, slow dolly", "duration": 5, "seed": 1}

echo_app = FastAPI()


@serve.deployment(name="Echo", ray_actor_options={"num_cpus": 0})
@serve.ingress(echo_app)
class Echo:
    """Bare Serve: the same FastAPI ingress shape, answering 201 without any work."""

    @echo_app.post("/api/v1/generate", status_code=201)
    async def generate(self, body: dict) -> dict:
        return {"job_id": f"{body.get('model')}-{uuid.uuid4().hex}", "status": "queued"}


async def load(url: str, headers: dict, requests: int, concurrency: int) -> tuple[float, list[float], int]:
    """Closed loop: `concurrency` clients send `requests` POSTs in all; returns (req/s, latencies, errors)."""
    latencies: list[float] = []
    errors = 0
    remaining = iter(range(requests))

    async def client_loop(client: httpx.AsyncClient) -> None:
        nonlocal errors
        for _ in remaining:
            start = time.perf_counter()
            response = await client.post(url, json=BODY, headers=headers)
            latencies.append(time.perf_counter() - start)
            errors += response.status_code != 201

    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        started = time.perf_counter()
        await asyncio.gather(*(client_loop(client) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return requests / elapsed, latencies, errors


async def open_streams(
    client: httpx.AsyncClient, base: str, headers: dict, count: int, stop: asyncio.Event
) -> list[asyncio.Task]:
    """`count` SSE streams, one per new job (they stay queued: the one model replica is busy), each read to its
    first event before this returns; they stay open until `stop` is set."""
    opened = asyncio.Semaphore(0)

    async def follow(job_id: str) -> None:
        async with client.stream("GET", f"{base}/api/v1/jobs/{job_id}/events", headers=headers) as response:
            lines = response.aiter_lines()
            while not (await anext(lines)).startswith("data:"):
                pass
            opened.release()
            await stop.wait()

    job_ids = []
    for _ in range(count):
        response = await client.post(f"{base}/api/v1/generate", json=BODY, headers=headers)
        job_ids.append(response.json()["job_id"])
    tasks = [asyncio.create_task(follow(job_id)) for job_id in job_ids]
    for _ in range(count):
        await opened.acquire()
    return tasks


async def load_with_streams(base: str, headers: dict, requests: int, concurrency: int, streams: int) -> tuple:
    """The same closed-loop load while `streams` event streams are open on the same gateway."""
    stop = asyncio.Event()
    limits = httpx.Limits(max_connections=streams + 1)
    async with httpx.AsyncClient(timeout=httpx.Timeout(60, read=None), limits=limits) as client:
        tasks = await open_streams(client, base, headers, streams, stop)
        try:
            return await load(f"{base}/api/v1/generate", headers, requests, concurrency)
        finally:
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=1500)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--streams", type=int, default=200, help="open SSE streams in the third row")
    opts = parser.parse_args()

    from serve_app.app import build_app
    from serve_app.catalogue import AppArgs

    os.environ["API_KEYS"] = "bench-key"
    os.environ["PYTHONPATH"] = str(REPO)
    ray.init(num_cpus=8, include_dashboard=False, log_to_driver=False)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    base = f"http://127.0.0.1:{port}"
    placement = {"num_cpus": 0, "min_replicas": 1, "max_replicas": 1, "graceful_shutdown_timeout_s": 1}
    args = AppArgs.model_validate(
        {
            "storage": {"local_dir": tempfile.mkdtemp(prefix="bench-gw-"), "public_base_url": base + "/gw"},
            "queue": {"max_queued_jobs": 1_000_000, "dispatch_window": 1},
            "gateway": {"num_cpus": 0},
            "queue_num_cpus": 0,
            "ltx2": {"runner": "bench.gateway:BusyRunner", "placement": placement},
            "wav2lip": {"enabled": False, "runner": "bench.gateway:BusyRunner"},
        }
    )
    serve.run(build_app(args), name="gw", route_prefix="/gw")
    serve.run(Echo.bind(), name="echo", route_prefix="/echo")

    auth = {"Authorization": "Bearer bench-key"}
    rows = []
    for name, url, headers in (
        ("bare Serve echo", f"{base}/echo/api/v1/generate", {}),
        ("gateway", f"{base}/gw/api/v1/generate", auth),
    ):
        asyncio.run(load(url, headers, 100, opts.concurrency))  # warm-up
        rate, latencies, errors = asyncio.run(load(url, headers, opts.requests, opts.concurrency))
        rows.append((name, rate, percentile(latencies, 50), percentile(latencies, 99), errors))
    rate, latencies, errors = asyncio.run(
        load_with_streams(f"{base}/gw", auth, opts.requests, opts.concurrency, opts.streams)
    )
    rows.append((f"gateway, {opts.streams} open SSE streams", rate, *quantiles(latencies), errors))
    rate, latencies, errors = asyncio.run(load(f"{base}/gw/api/v1/generate", auth, opts.requests, opts.concurrency))
    rows.append(("gateway again, streams closed", rate, *quantiles(latencies), errors))
    serve.shutdown()
    ray.shutdown()
    write_results(rows, opts)


def quantiles(latencies: list[float]) -> tuple[float, float]:
    return percentile(latencies, 50), percentile(latencies, 99)


def write_results(rows: list[tuple], opts: argparse.Namespace) -> None:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    ratio = rows[1][1] / rows[0][1]
    lines = [
        "## Gateway submissions vs bare Serve (`bench/gateway.py`)",
        "",
        f"Machine: {cpu}, {os.cpu_count()} cores, no GPU; Python {platform.python_version()}, Ray {ray.__version__}.",
        f"Load: {opts.requests} POSTs after 100 warm-up, {opts.concurrency} concurrent clients (httpx, closed loop, "
        "same machine as the server). Local storage backend.",
        "",
        "| path | submissions/s | p50 ms | p99 ms | non-201 |",
        "|---|---|---|---|---|",
        *(f"| {n} | {r:.0f} | {p50:.1f} | {p99:.1f} | {e} |" for n, r, p50, p99, e in rows),
        "",
        f"**Gateway / bare throughput: {ratio:.2f}** (goal: at least 0.5).",
        f"**With {opts.streams} open event streams / without: {rows[2][1] / rows[1][1]:.2f}** (the streams are on "
        "queued jobs of the same queue; the last row repeats the plain load after they close, since the queue "
        "then holds more jobs).",
        "",
    ]
    text = "\n".join(lines)
    (REPO / "bench" / "results_gateway.md").write_text(text)
    print(text)


class BusyRunner:
    """A model whose one replica stays busy with its first job until the run ends."""

    def __init__(self, args: object) -> None:
        self.weights = "none"

    def run(self, job: object, inputs: dict, workdir: Path, reporter: object) -> None:
        time.sleep(3600)


if __name__ == "__main__":
    main()

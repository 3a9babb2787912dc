"""Queue-depth autoscaling on the fake multi-node cluster: how fast LTX-2 replicas follow a burst and go away.

    .venv/bin/python bench/autoscale.py [--burst 6] [--max-replicas 3]

Starts tests/cluster/fake_cluster.yaml (A100 node type allowed `--max-replicas` nodes), deploys the real app
with the fake `SlowRunner` (4 s jobs) and production pinning, then times, from the moment the requests are sent:
  1. cold start: one job at zero replicas -> first replica RUNNING, and the job done;
  2. burst: `--burst` jobs while one replica is up -> first extra replica RUNNING, and `max_replicas` RUNNING;
  3. idle: last job done -> zero replicas (downscale_delay_s), and no A100 node left (idle_timeout_minutes).
Fake nodes start in about a second, so real numbers add the cloud's node boot and the weights load.
Serve's metric push interval is left at its default (10 s) unless `--metrics-push-s` says otherwise.
Writes a markdown fragment to bench/results_autoscale.md.
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.* helpers, when run as a script

from tests.cluster.conftest import alive_node_types, pinned_placement, running_replicas
from tests.cluster.fake_cluster import CONFIG, start_fake_cluster
from tests.conftest import API_KEY, AUTH, app_args, free_port, wait_terminal

RESULTS = Path(__file__).parent / "results_autoscale.md"
DOWNSCALE_DELAY_S = 4.0
IDLE_TIMEOUT_MIN = 0.1


def seconds_until(start: float, condition: Callable[[], bool], timeout_s: float = 300) -> float:
    """Seconds from `start` (a monotonic time) until `condition()` holds, polled every 0.1 s."""
    while not condition():
        if time.monotonic() - start > timeout_s:
            raise TimeoutError(f"not reached within {timeout_s} s")
        time.sleep(0.1)
    return time.monotonic() - start


def a100_nodes() -> int:
    return sum(1 for t in alive_node_types().values() if t == "a100_node")


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def run(burst: int, max_replicas: int, metrics_push_s: float | None) -> dict[str, float]:
    import ray
    from ray import serve

    from serve_app.app import build_app
    from serve_app.catalogue import AppArgs

    types = copy.deepcopy(yaml.safe_load(CONFIG.read_text())["available_node_types"])
    types["a100_node"]["max_workers"] = max_replicas
    env = {}
    if metrics_push_s is not None:
        for scope in ("HANDLE", "REPLICA"):
            env[f"RAY_SERVE_{scope}_AUTOSCALING_METRIC_PUSH_INTERVAL_S"] = str(metrics_push_s)
    cluster = start_fake_cluster(extra_env=env, available_node_types=types, idle_timeout_minutes=IDLE_TIMEOUT_MIN)
    os.environ.update({**cluster.driver_env(), "API_KEYS": API_KEY})
    times: dict[str, float] = {}
    try:
        ray.init(address=cluster.address, log_to_driver=False)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        serve.start(proxy_location="HeadOnly", http_options={"host": "127.0.0.1", "port": port})
        storage = {"backend": "local", "local_dir": tempfile.mkdtemp(prefix="bench-autoscale-"), "public_base_url": url}
        args = app_args(storage, runner="tests.fakes:SlowRunner")
        args["ltx2"]["placement"] = {
            **pinned_placement("ltx2"),
            "max_replicas": max_replicas,
            "downscale_delay_s": DOWNSCALE_DELAY_S,
        }
        args["wav2lip"]["enabled"] = False
        serve.run(build_app(AppArgs.model_validate(args)), name="video", route_prefix="/")
        client = httpx.Client(base_url=url, headers=AUTH, timeout=30)

        def submit(prompt: str) -> str:
            response = client.post("/api/v1/generate", json={"model": "ltx2", "prompt": prompt, "duration": 1})
            response.raise_for_status()
            return response.json()["job_id"]

        # 1. Cold start
        start = time.monotonic()
        first = submit("cold")
        times["cold_first_replica_s"] = seconds_until(start, lambda: running_replicas("ltx2") >= 1)
        wait_terminal(client, first, timeout_s=300)
        times["cold_job_done_s"] = time.monotonic() - start
        # 2. Burst, with the cold-started replica still up
        start = time.monotonic()
        jobs = [submit(f"burst {i}") for i in range(burst)]
        times["burst_first_extra_replica_s"] = seconds_until(start, lambda: running_replicas("ltx2") >= 2)
        times["burst_full_scale_s"] = seconds_until(start, lambda: running_replicas("ltx2") >= max_replicas)
        for job_id in jobs:
            wait_terminal(client, job_id, timeout_s=300)
        times["burst_all_done_s"] = time.monotonic() - start
        # 3. Idle
        start = time.monotonic()
        times["idle_zero_replicas_s"] = seconds_until(start, lambda: running_replicas("ltx2") == 0)
        times["idle_zero_a100_nodes_s"] = seconds_until(start, lambda: a100_nodes() == 0)
        client.close()
        serve.shutdown()
    finally:
        ray.shutdown()
        cluster.stop()
    return times


def write_results(times: dict[str, float], burst: int, max_replicas: int, metrics_push_s: float | None) -> str:
    push = f"{metrics_push_s:g} s" if metrics_push_s is not None else "10 s (Ray default)"
    rows = [
        ("Cold start: 1 job at 0 replicas -> 1st replica RUNNING", "cold_first_replica_s"),
        ("Cold start: -> that job completed (4 s job)", "cold_job_done_s"),
        (f"Burst of {burst} jobs at 1 replica -> 2nd replica RUNNING", "burst_first_extra_replica_s"),
        (f"Burst -> {max_replicas} replicas RUNNING (max_replicas)", "burst_full_scale_s"),
        ("Burst -> all jobs completed", "burst_all_done_s"),
        (f"Last job done -> 0 replicas (downscale_delay_s {DOWNSCALE_DELAY_S:g})", "idle_zero_replicas_s"),
        (f"Last job done -> 0 A100 nodes (idle timeout {IDLE_TIMEOUT_MIN * 60:g} s)", "idle_zero_a100_nodes_s"),
    ]
    lines = [
        "## Autoscaling on the fake multi-node cluster (`bench/autoscale.py`)",
        "",
        f"Machine: {cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        "Ray 2.60.0, no GPU (fake_multinode provider: a node is a raylet started on this machine).",
        f"LTX-2 with the fake SlowRunner (4 s jobs), num_gpus 1 + accelerator_type A100, min 0, max "
        f"{max_replicas}, upscale_delay_s 0.5, look_back_period_s 2; Serve metric push interval {push}; "
        "autoscaler loop 1 s.",
        "",
        "| Step | Seconds |",
        "|---|---|",
        *(f"| {label} | {times[key]:.1f} |" for label, key in rows),
        "",
        "A real cluster adds the node boot (minutes for a GPU instance and its image), the weights download or "
        'cache read, and the pipeline load to every "replica RUNNING" line that needed a new node.',
        "",
    ]
    text = "\n".join(lines)
    RESULTS.write_text(text)
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--burst", type=int, default=6, help="Jobs sent at once in step 2.")
    parser.add_argument("--max-replicas", type=int, default=3, help="LTX-2 max_replicas (= A100 node max).")
    parser.add_argument("--metrics-push-s", type=float, default=None, help="Serve's metric push interval.")
    ns = parser.parse_args()
    times = run(ns.burst, ns.max_replicas, ns.metrics_push_s)
    print(write_results(times, ns.burst, ns.max_replicas, ns.metrics_push_s))


if __name__ == "__main__":
    main()

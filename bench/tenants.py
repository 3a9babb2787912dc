"""Tenants: does a flood of one tenant hold up another's job, do weights split the model's time, and what do the
limits cost a submission? One run, one Ray cluster. Writes bench/results_tenants.md.

    PYTHONPATH=. .venv/bin/python bench/tenants.py [--flood 200] [--share-jobs 24] [--requests 200]

1. **B's wait.** The real LTX-2 pipeline on tiny random weights (CPU, one replica, a dispatch window of one), 64x64,
   9 frames. B's wait (its job's `created_at` to `completed_at`) for one job, alone (median of `--alone` runs),
   against the same while tenant A has `--flood` jobs waiting (submitted just before it). Goal: about one job's
   run (A's, already running) plus B's own and the dispatch, not A's backlog.
2. **Shares.** Tenants `w1a`, `w1b`, `w2` (weights 1, 1, 2) submit interleaved backlogs; the GPU-seconds of the
   first `--share-jobs` runs per tenant against the weights, and Jain's fairness index of the weight-normalised
   shares, (sum x)^2 / (n sum x^2): 1.0 means exactly by weight.
3. **Limits' cost.** Submissions/s through the gateway (closed loop, `--concurrency` clients) for a tenant with
   every limit set (high enough never to refuse) against one with none, alternating `--rounds` rounds, on a
   second app whose model stays busy with one long job (as in bench/gateway.py), so no run competes with the
   submissions for the CPU. Every submission asks the TenantLedger either way (the gateway cannot know a
   tenant's limits are unset without it); the ratio is the cost of the checks themselves. Goal: >= 0.95.
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
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import ray
from ray import serve

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
TENANTS = ("a", "b", "w1a", "w1b", "w2", "limited", "unlimited")
WEIGHTS = {"w1a": 1.0, "w1b": 1.0, "w2": 2.0}
TINY_JOB = {"model": "ltx2", "prompt": "a red ball", "width": 64, "height": 64, "duration": 0.5, "fps": 16, "seed": 1}
TERMINAL = {"completed", "failed", "cancelled"}
HUGE = 10**9  # a limit that never refuses: the checks run, the answer is always yes


class BusyRunner:
    """A model whose one replica stays busy with its first job: every later submission only queues."""

    def __init__(self, args: object) -> None:
        self.weights = "none"

    def run(self, job: object, inputs: dict, workdir: Path, reporter: object) -> None:
        time.sleep(3600)


def headers(tenant: str) -> dict[str, str]:
    return {"Authorization": f"Bearer bench-{tenant}"}


def deploy(base: str, name: str, ltx2: dict[str, Any], tenants: dict[str, Any]) -> str:
    """Deploy the real app at `/{name}` with `ltx2` args (Wav2Lip off); returns its base URL."""
    from serve_app.app import build_app
    from serve_app.catalogue import AppArgs

    args = AppArgs.model_validate(
        {
            "storage": {"local_dir": tempfile.mkdtemp(prefix=f"bench-{name}-"), "public_base_url": f"{base}/{name}"},
            "queue": {"max_queued_jobs": 1_000_000, "dispatch_window": 1, "record_flush_s": 0.5},
            "gateway": {"num_cpus": 0},
            "queue_num_cpus": 0,
            "tenants": tenants,
            "ltx2": ltx2,
            "wav2lip": {"enabled": False},
            "talking_video": {"enabled": False},
        }
    )
    serve.run(build_app(args), name=name, route_prefix=f"/{name}")
    return f"{base}/{name}"


async def submit_many(url: str, tenant: str, bodies: list[dict], concurrency: int = 8) -> list[str]:
    """POST every body as `tenant`, `concurrency` at a time; the job ids, in submission order."""
    ids: list[str | None] = [None] * len(bodies)
    todo = iter(enumerate(bodies))

    async def worker(client: httpx.AsyncClient) -> None:
        for index, body in todo:
            response = await client.post("/api/v1/generate", json=body)
            response.raise_for_status()
            ids[index] = response.json()["job_id"]

    async with httpx.AsyncClient(base_url=url, headers=headers(tenant), timeout=60) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    return [job_id for job_id in ids if job_id]


async def cancel_all(url: str, tenant: str, job_ids: list[str]) -> None:
    async with httpx.AsyncClient(base_url=url, headers=headers(tenant), timeout=60) as client:
        for start in range(0, len(job_ids), 16):
            await asyncio.gather(*(client.post(f"/api/v1/jobs/{j}/cancel") for j in job_ids[start : start + 16]))


def wait_job(url: str, tenant: str, job_id: str, timeout_s: float = 600) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    with httpx.Client(base_url=url, headers=headers(tenant), timeout=60) as client:
        while time.monotonic() < deadline:
            view = client.get(f"/api/v1/jobs/{job_id}").json()
            if view.get("status") in TERMINAL:
                return view
            time.sleep(0.2)
    raise TimeoutError(f"job {job_id} not ended in {timeout_s} s: {view}")


def seconds(view: dict[str, Any], start: str, end: str) -> float:
    return (datetime.fromisoformat(view[end]) - datetime.fromisoformat(view[start])).total_seconds()


def b_waits(url: str, flood: int, alone_runs: int) -> dict[str, Any]:
    """B's wait alone (median) and behind A's flood, with the run times around them."""
    alone = []
    for _ in range(alone_runs):
        view = wait_job(url, "b", asyncio.run(submit_many(url, "b", [TINY_JOB]))[0])
        alone.append(view)
    backlog = asyncio.run(submit_many(url, "a", [{**TINY_JOB, "seed": i} for i in range(flood)]))
    flooded = wait_job(url, "b", asyncio.run(submit_many(url, "b", [TINY_JOB]))[0])
    with httpx.Client(base_url=url, headers=headers("a"), timeout=60) as client:
        a_views = [client.get(f"/api/v1/jobs/{job_id}").json() for job_id in backlog]
    # A's jobs that started while B's waited (the one running when B came is not among them: it started earlier)
    a_ahead = sum(
        1 for v in a_views if v.get("started_at") and flooded["created_at"] < v["started_at"] < flooded["started_at"]
    )
    asyncio.run(cancel_all(url, "a", backlog))
    # The A job running at the cancel ends too (waited for: the model is free for what follows).
    ended = [wait_job(url, "a", job_id) for job_id in backlog]
    a_runs = [v["usage"]["run_s"] for v in ended if v["status"] == "completed"]
    return {
        "alone_wait": statistics.median(seconds(v, "created_at", "completed_at") for v in alone),
        "alone_run": statistics.median(v["usage"]["run_s"] for v in alone),
        "flood_wait": seconds(flooded, "created_at", "completed_at"),
        "flood_run": flooded["usage"]["run_s"],
        "a_ahead": a_ahead,
        "a_run": statistics.median(a_runs) if a_runs else float("nan"),
        "flood": flood,
    }


def shares(url: str, jobs: int) -> dict[str, Any]:
    """GPU-seconds per tenant over the first `jobs` runs while all three keep a backlog."""
    per = {t: round(jobs * w / sum(WEIGHTS.values())) + 4 for t, w in WEIGHTS.items()}  # a backlog to the end
    owner: dict[str, str] = {}

    async def flood_all() -> None:
        for rnd in range(max(per.values())):
            tenants = [t for t in WEIGHTS if rnd < per[t]]
            ids = await asyncio.gather(*(submit_many(url, t, [{**TINY_JOB, "seed": rnd}], 1) for t in tenants))
            owner.update({job_ids[0]: t for t, job_ids in zip(tenants, ids, strict=True)})

    asyncio.run(flood_all())
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        views = {j: wait_view(url, t, j) for j, t in owner.items()}
        if sum(v["status"] == "completed" for v in views.values()) >= jobs:
            break
        time.sleep(2)
    for tenant in WEIGHTS:
        asyncio.run(cancel_all(url, tenant, [j for j, t in owner.items() if t == tenant]))
    ran = sorted((v for v in views.values() if v["status"] == "completed"), key=lambda v: v["started_at"])[:jobs]
    used = {t: sum(v["usage"]["gpu_s"] for v in ran if owner[v["job_id"]] == t) for t in WEIGHTS}
    total, weight_sum = sum(used.values()), sum(WEIGHTS.values())
    normalised = [(used[t] / total) / (w / weight_sum) for t, w in WEIGHTS.items()]
    jain = sum(normalised) ** 2 / (len(normalised) * sum(x * x for x in normalised))
    counts = {t: sum(1 for v in ran if owner[v["job_id"]] == t) for t in WEIGHTS}
    return {"used": used, "counts": counts, "jain": jain, "jobs": len(ran)}


def wait_view(url: str, tenant: str, job_id: str) -> dict[str, Any]:
    with httpx.Client(base_url=url, headers=headers(tenant), timeout=60) as client:
        return client.get(f"/api/v1/jobs/{job_id}").json()


async def closed_loop(url: str, tenant: str, requests: int, concurrency: int) -> float:
    """Submissions per second of `requests` POSTs by `concurrency` clients."""
    start = time.perf_counter()
    await submit_many(url, tenant, [TINY_JOB] * requests, concurrency)
    return requests / (time.perf_counter() - start)


def limits_cost(base: str, requests: int, rounds: int, concurrency: int) -> dict[str, list[float]]:
    limited = {"submissions_per_minute": HUGE, "max_queued": HUGE, "max_running": HUGE, "daily_gpu_seconds": HUGE}
    placement = {"num_cpus": 0, "min_replicas": 1, "max_replicas": 1, "graceful_shutdown_timeout_s": 1}
    url = deploy(base, "tsub", {"runner": "bench.tenants:BusyRunner", "placement": placement},
                 {"overrides": {"limited": limited}})  # fmt: skip
    rates: dict[str, list[float]] = {"limited": [], "unlimited": []}
    for tenant in rates:  # warm-up: connections, the queue's first records
        asyncio.run(closed_loop(url, tenant, 50, concurrency))
    for _ in range(rounds):
        for tenant in rates:
            rates[tenant].append(asyncio.run(closed_loop(url, tenant, requests, concurrency)))
    serve.delete("tsub")
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--flood", type=int, default=200)
    parser.add_argument("--alone", type=int, default=3, help="runs of B's job alone (the median is reported)")
    parser.add_argument("--share-jobs", type=int, default=24)
    parser.add_argument("--requests", type=int, default=200, help="POSTs per round of the limits' cost")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=8)
    opts = parser.parse_args()

    os.environ["API_KEYS"] = ",".join(f"{t}:bench-{t}" for t in TENANTS)
    os.environ["PYTHONPATH"] = str(REPO)
    started = time.monotonic()
    ray.init(address="local", num_cpus=8, include_dashboard=False, log_to_driver=False)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    base = f"http://127.0.0.1:{port}"
    placement = {"num_cpus": 0, "min_replicas": 1, "max_replicas": 1, "graceful_shutdown_timeout_s": 1}
    tiny = {"allow_random_weights": True, "device": "cpu", "placement": placement}
    url = deploy(base, "tn", tiny, {"overrides": {"w2": {"weight": 2}}})
    wait_job(url, "b", asyncio.run(submit_many(url, "b", [TINY_JOB]))[0])  # warm-up: lazy imports, first run
    load = [os.getloadavg()[0]]
    waits = b_waits(url, opts.flood, opts.alone)
    load.append(os.getloadavg()[0])
    share = shares(url, opts.share_jobs)
    load.append(os.getloadavg()[0])
    serve.delete("tn")
    rates = limits_cost(base, opts.requests, opts.rounds, opts.concurrency)
    load.append(os.getloadavg()[0])
    serve.shutdown()
    ray.shutdown()
    write_results(waits, share, rates, opts, load, time.monotonic() - started)


def write_results(
    waits: dict[str, Any],
    share: dict[str, Any],
    rates: dict[str, list[float]],
    opts: argparse.Namespace,
    load: list[float],
    elapsed_s: float,
) -> None:
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")),
        platform.processor(),
    )  # fmt: skip
    total = sum(share["used"].values())
    weight_sum = sum(WEIGHTS.values())
    limited, unlimited = statistics.median(rates["limited"]), statistics.median(rates["unlimited"])
    fifo_s = waits["flood"] * waits["a_run"]
    lines = [
        "## Tenants: fair dispatch, weights and the limits' cost (`bench/tenants.py`)",
        "",
        f"Machine: {cpu}, {os.cpu_count()} cores, no GPU; Python {platform.python_version()}, Ray {ray.__version__}. "
        f"Load average during the run: {', '.join(f'{x:.0f}' for x in load)} (other sessions' tests). "
        f"Whole run {elapsed_s:.0f} s. Command: `PYTHONPATH=. .venv/bin/python bench/tenants.py --flood {opts.flood} "
        f"--share-jobs {opts.share_jobs} --requests {opts.requests} --rounds {opts.rounds}`.",
        "",
        "### B's one job while A floods",
        "",
        "LTX-2 on tiny random weights (CPU), 64x64, 9 frames, one replica, dispatch window 1. Wait = the job's "
        "`created_at` to `completed_at`; run = its `usage.run_s`.",
        "",
        "| case | B's wait s | B's run s | A's jobs started while B's waited |",
        "|---|---|---|---|",
        f"| B alone (median of {opts.alone}) | {waits['alone_wait']:.2f} | {waits['alone_run']:.2f} | - |",
        f"| A has {waits['flood']} jobs waiting | {waits['flood_wait']:.2f} | {waits['flood_run']:.2f} | "
        f"{waits['a_ahead']} |",
        "",
        f"B's wait behind the flood is **{waits['flood_wait'] - waits['alone_wait']:.2f} s** longer than alone; one of "
        f"A's runs took {waits['a_run']:.2f} s (median). In FIFO order B would have waited for A's whole backlog, "
        f"about {waits['flood']} x {waits['a_run']:.2f} s = {fifo_s:.0f} s (arithmetic, not measured).",
        "",
        f"### Shares, weights 1:1:2, first {share['jobs']} runs",
        "",
        "| tenant | weight | runs | GPU-s | share | weight's share |",
        "|---|---|---|---|---|---|",
        *(
            f"| {t} | {w:g} | {share['counts'][t]} | {share['used'][t]:.1f} | {share['used'][t] / total:.3f} | "
            f"{w / weight_sum:.3f} |"
            for t, w in WEIGHTS.items()
        ),
        "",
        f"**Jain's index of the weight-normalised shares: {share['jain']:.4f}** (1.0 = exactly by weight).",
        "",
        "### Submissions/s, limits on vs off",
        "",
        f"{opts.rounds} alternating rounds of {opts.requests} POSTs, {opts.concurrency} clients, the model busy "
        "with one long job. `limited`: every tenant limit set, never reached; `unlimited`: none set.",
        "",
        "| tenant | submissions/s per round | median |",
        "|---|---|---|",
        f"| limited | {', '.join(f'{r:.1f}' for r in rates['limited'])} | {limited:.1f} |",
        f"| unlimited | {', '.join(f'{r:.1f}' for r in rates['unlimited'])} | {unlimited:.1f} |",
        "",
        f"**On / off: {limited / unlimited:.2f}** (goal: at least 0.95).",
        "",
    ]
    text = "\n".join(lines)
    (REPO / "bench" / "results_tenants.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()

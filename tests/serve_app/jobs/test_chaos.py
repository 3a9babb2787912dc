"""Chaos under load: the app on local storage with fast fake runners takes ~36 jobs of two models while one
replica of every kind is SIGKILLed in turn (the gateway, each queue, each model's replicas). Every accepted job
must end exactly once, with its output in storage, and every Idempotency-Key must name one job throughout.

Clients behave as the README asks: a submission that got no answer, or a 5xx while a replica restarts, is sent
again with the same Idempotency-Key. A job is "accepted" once a submission of it got a 2xx.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import ray

from tests.conftest import TERMINAL, WebhookReceiver, app_args, wait_until
from tests.media_files import face_png_bytes, wav_bytes

APP = "video"
WAVES = 6
# One kind killed after each wave but the last; each is a separate restart the load runs through.
KILLS = ("Gateway", "LTX2Queue", "LTX2Generator", "Wav2LipQueue", "Wav2LipSyncer")
RETRY_DEADLINE_S = 90  # how long a client keeps re-sending one submission (a restart on 2 slow cores)
SETTLE_DEADLINE_S = 150  # every accepted job terminal, after the last kill


def sigkill_replicas(deployment: str) -> list[int]:
    """SIGKILL the process of every live replica of `deployment` (Serve's controller starts new ones)."""
    names = [a["name"] for a in ray.util.list_named_actors(all_namespaces=True)]
    replicas = [n for n in names if n.startswith(f"SERVE_REPLICA::{APP}#{deployment}#")]
    assert replicas, f"no replica of {deployment} among {names}"
    pids = [
        ray.get(ray.get_actor(n, namespace="serve").__ray_call__.remote(lambda _: os.getpid()), timeout=60)
        for n in replicas
    ]
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    return pids


@dataclass
class Load:
    """The client's side of the run: every answer it got, by job and by Idempotency-Key."""

    client: httpx.Client
    webhook_url: str
    uploads: dict[str, str]
    accepted: dict[str, dict[str, Any]] = field(default_factory=dict)  # job_id -> body
    jobs_of_key: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    bodies_of_key: dict[str, dict[str, Any]] = field(default_factory=dict)
    resent: int = 0  # submissions sent again after no answer or a 5xx
    refused_unkeyed: int = 0  # submissions without a key that got no 2xx (not accepted; never resent)

    def body(self, i: int) -> dict[str, Any]:
        if i % 3 == 2:  # a third are lip-sync jobs (fake: every run takes PacedRunner's slow path)
            return {"model": "wav2lip", **self.uploads, "webhook_url": self.webhook_url}
        return {"model": "ltx2", "prompt": f"quick chaos {i}", "webhook_url": self.webhook_url}

    def submit(self, body: dict[str, Any], key: str | None) -> str | None:
        """POST until a 2xx (a keyed submission), or once (no key); the job id if accepted."""
        headers = {"Idempotency-Key": key} if key else {}
        deadline = time.monotonic() + RETRY_DEADLINE_S
        while True:
            try:
                response = self.client.post("/api/v1/generate", json=body, headers=headers)
            except httpx.TransportError as exc:
                response, problem = None, repr(exc)
            else:
                problem = f"{response.status_code} {response.text[:200]}"
                if response.status_code in (200, 201):
                    job_id = response.json()["job_id"]
                    self.accepted[job_id] = body
                    if key:
                        self.jobs_of_key[key].add(job_id)
                        self.bodies_of_key[key] = body
                    return job_id
                assert response.status_code >= 500, problem  # a 4xx is the test's own mistake
            if key is None:
                self.refused_unkeyed += 1
                return None
            assert time.monotonic() < deadline, f"submission with key {key} never accepted; last: {problem}"
            self.resent += 1
            time.sleep(0.2)

    def view(self, job_id: str) -> dict[str, Any]:
        """The job's view, or {"status": "unreachable"} while a restart keeps it from answering."""
        try:
            response = self.client.get(f"/api/v1/jobs/{job_id}")
        except httpx.TransportError:
            return {"status": "unreachable"}
        if response.status_code >= 500:
            return {"status": "unreachable"}
        assert response.status_code == 200, response.text
        return response.json()


def test_jobs_survive_every_replica_kind_being_killed_under_load(deploy, local_storage):
    receiver = WebhookReceiver()
    try:
        args = app_args(local_storage, runner="tests.fakes:PacedRunner", queue={"max_attempts": 5})
        client = deploy(args)
        uploads = {}
        for kind, content_type, data in (("image", "image/png", face_png_bytes()), ("audio", "audio/wav", wav_bytes())):
            slot = client.post(
                "/api/v1/presign/upload", json={"input_type": kind, "content_type": content_type, "size": len(data)}
            )
            assert slot.status_code == 200, slot.text
            put = httpx.put(slot.json()["upload_url"], content=data, headers={"content-type": content_type})
            assert put.status_code == 200, put.text
            uploads[f"{kind}_key"] = slot.json()["key"]
        load = Load(client, receiver.url, uploads)
        run = uuid.uuid4().hex[:8]
        killed: dict[str, list[int]] = {}
        slow = ""  # the job whose run the LTX2Generator kill interrupts

        for wave_no in range(WAVES):
            for i in range(wave_no * 6, wave_no * 6 + 6):
                key = None if i % 4 == 3 else f"chaos-{run}-{i}"  # a quarter without a key
                load.submit(load.body(i), key)
            if wave_no == len(KILLS):
                break
            target = KILLS[wave_no]
            if target == "LTX2Generator":  # a slow job, so the kill lands mid-run and the run is retried
                body = {"model": "ltx2", "prompt": "slow chaos", "webhook_url": receiver.url}
                slow = load.submit(body, f"chaos-{run}-slow")
                slow_job = wait_until(
                    lambda job_id=slow: load.view(job_id), lambda j: j["status"] not in ("queued", "unreachable"), 60
                )
                assert slow_job["status"] == "processing", slow_job  # 4 s to go: the kill lands mid-run
            killed[target] = sigkill_replicas(target)
            # Right after each kill, an earlier submission is sent again: it must answer with the same job.
            earlier = sorted(load.bodies_of_key)[wave_no]
            load.submit(load.bodies_of_key[earlier], earlier)

        assert set(killed) == set(KILLS), killed
        assert len(load.accepted) >= 28, (len(load.accepted), load.refused_unkeyed)  # every keyed one, at least

        def unfinished() -> list[tuple[str, str]]:
            views = {job_id: load.view(job_id) for job_id in load.accepted}
            return [(job_id, v["status"]) for job_id, v in views.items() if v["status"] not in TERMINAL]

        wait_until(unfinished, lambda left: not left, timeout_s=SETTLE_DEADLINE_S, period_s=1)
        views = {job_id: load.view(job_id) for job_id in load.accepted}
        data = Path(local_storage["local_dir"])

        # 1. One job per Idempotency-Key, through every restart, and a replay now still names it.
        assert all(len(jobs) == 1 for jobs in load.jobs_of_key.values()), dict(load.jobs_of_key)
        for key in sorted(load.bodies_of_key)[:5]:
            replay = client.post("/api/v1/generate", json=load.bodies_of_key[key], headers={"Idempotency-Key": key})
            assert (replay.status_code, replay.json()["job_id"]) == (200, *load.jobs_of_key[key]), replay.text

        # 2. Every accepted job completed, once: its result is its last attempt's, and its output is stored.
        statuses = {job_id: v["status"] for job_id, v in views.items()}
        assert set(statuses.values()) == {"completed"}, statuses
        assert views[slow]["attempts"] >= 2, views[slow]  # its run was killed, so it ran again
        for job_id, view in views.items():
            result = (data / "jobs" / job_id / "result.json").read_text()
            assert f'"attempt":{view["attempts"]},' in result.replace(" ", ""), (job_id, view["attempts"], result)
            assert (data / "jobs" / job_id / "output.mp4").stat().st_size > 0, job_id
        assert not list((data / "index" / "ltx2" / "active").glob("*")), "an unfinished job was left behind"
        assert not list((data / "index" / "wav2lip" / "active").glob("*")), "an unfinished job was left behind"

        # 3. Every job's webhook said "completed", under one webhook-id (a resend after a queue restart may
        #    repeat it: receivers dedupe on webhook-id, per Standard Webhooks).
        def undelivered() -> set[str]:
            return set(load.accepted) - {d["body"]["job_id"] for d in receiver.deliveries}

        wait_until(undelivered, lambda left: not left, timeout_s=60)
        by_job: dict[str, set[tuple[str, str]]] = defaultdict(set)
        for delivery in receiver.deliveries:
            by_job[delivery["body"]["job_id"]].add((delivery["headers"]["webhook-id"], delivery["body"]["status"]))
        for job_id in load.accepted:
            assert by_job[job_id] == {(f"msg_{job_id}", "completed")}, (job_id, by_job[job_id])
        assert all(d["valid"] for d in receiver.deliveries)
    finally:
        receiver.close()

"""A gateway replica that is replaced (a redeploy) finishes the request it holds instead of cutting it off."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from tests.conftest import app_args


def gateway_replicas() -> set[str]:
    """The ids of the live Gateway replica actors."""
    from ray.util.state import list_actors

    actors = list_actors(filters=[("state", "=", "ALIVE")], limit=1000)
    return {a.actor_id for a in actors if "Gateway" in (a.class_name or "") or "Gateway" in (a.name or "")}


def test_a_request_in_flight_completes_while_its_gateway_replica_is_replaced(
    deploy, serve_url: str, tmp_path: Path
) -> None:
    storage = {"backend": "local", "local_dir": str(tmp_path / "data"), "public_base_url": serve_url}
    args = app_args(storage, gateway={"graceful_shutdown_timeout_s": 60})
    client = deploy(args)
    old_replicas = gateway_replicas()
    assert old_replicas, "no Gateway replica found"
    presigned = client.post("/api/v1/presign/upload", json={"input_type": "audio", "content_type": "audio/wav"})
    assert presigned.status_code == 200, presigned.text

    # A slow upload: a chunk every 0.2 s until the redeploy is done, then a few more. Its replica is being
    # replaced all along; it must still answer 200 with every byte stored.
    redeployed, chunks_sent = threading.Event(), []
    outcome: dict[str, httpx.Response | BaseException] = {}

    def body() -> Iterator[bytes]:
        deadline = time.monotonic() + 300  # never hang the suite
        while not redeployed.is_set() and time.monotonic() < deadline:
            chunks_sent.append(1)
            yield b"x" * 1024
            time.sleep(0.2)
        for _ in range(5):
            chunks_sent.append(1)
            yield b"x" * 1024
            time.sleep(0.2)

    def upload() -> None:
        try:
            outcome["response"] = httpx.put(presigned.json()["upload_url"], content=body(), timeout=300)
        except BaseException as exc:  # reported by the assertion below
            outcome["response"] = exc

    uploader = threading.Thread(target=upload)
    uploader.start()
    deadline = time.monotonic() + 60
    while len(chunks_sent) < 3 and time.monotonic() < deadline:  # the request has reached the old replica
        time.sleep(0.1)
    assert len(chunks_sent) >= 3, "the upload never started"
    deploy(app_args(storage, gateway={"graceful_shutdown_timeout_s": 60, "keepalive_s": 14}))  # new gateway version
    redeployed.set()
    uploader.join(timeout=120)

    response = outcome.get("response")
    assert isinstance(response, httpx.Response), f"the upload failed: {response!r}"
    assert response.status_code == 200, response.text
    assert response.json()["size"] == 1024 * len(chunks_sent)
    assert not old_replicas & gateway_replicas(), "the old Gateway replica is still alive: nothing was replaced"

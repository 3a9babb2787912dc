"""A gateway replica that is replaced (a redeploy) finishes the request it holds instead of cutting it off.

Without the drain, Serve's proxy would answer the request with a plain-text 500 (README, "Retrying").
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from tests.conftest import app_args, wait_until

DRAIN_S = 45
TAIL_S = 25  # the upload lasts this long after its replica starts draining: longer than Serve's default 20 s
# Serve stops the old replica only once the new one is up; on a loaded 2-core machine that start takes minutes.
REPLACE_WAIT_S = 300
CHUNK = 1024
# the upload URL is signed for an exact size: enough chunks for the longest run, the last one pads up to it
UPLOAD_BYTES = CHUNK * int((REPLACE_WAIT_S + TAIL_S) / 0.2 + 2)


def gateway_replicas() -> set[str]:
    """The names of the live Gateway replica actors (Serve names each `SERVE_REPLICA::<app>#<deployment>#<id>`)."""
    import ray

    return {a["name"] for a in ray.util.list_named_actors(all_namespaces=True) if "#Gateway#" in a["name"]}


def gateway_stopping() -> int:
    """Gateway replicas that Serve is stopping (draining) now."""
    from ray import serve

    app = serve.status().applications.get("video")
    states = app.deployments["Gateway"].replica_states if app and "Gateway" in app.deployments else {}
    return sum(n for state, n in states.items() if str(getattr(state, "value", state)) == "STOPPING")


def redeploy_without_waiting(args: dict) -> None:
    """Deploy a new version of app `video` and return at once (serve.run would wait for the old replica to go).
    From the test's own thread: Serve's deployment builder is not thread-safe (it registers modules with
    cloudpickle), so no other thread may call Serve meanwhile."""
    from ray import serve

    from serve_app.app import build_app_from
    from serve_app.catalogue import CATALOGUE

    app = build_app_from(CATALOGUE, CATALOGUE.args_model.model_validate(args))
    serve.run_many([serve.RunTarget(target=app, name="video", route_prefix="/")], wait_for_applications_running=False)


def test_a_request_in_flight_completes_while_its_gateway_replica_is_replaced(
    deploy, serve_url: str, tmp_path: Path
) -> None:
    storage = {"backend": "local", "local_dir": str(tmp_path / "data"), "public_base_url": serve_url}
    client = deploy(app_args(storage, gateway={"graceful_shutdown_timeout_s": DRAIN_S}))
    old_replicas = gateway_replicas()
    assert old_replicas, "no Gateway replica found"
    slot = {"input_type": "audio", "content_type": "audio/wav", "size": UPLOAD_BYTES}
    presigned = client.post("/api/v1/presign/upload", json=slot)
    assert presigned.status_code == 200, presigned.text

    # A slow upload: a chunk every 0.2 s until its replica is seen draining, then TAIL_S more, then the rest of
    # its signed size at once. It must still be answered 200 with every byte stored, by the replica being stopped.
    draining, chunks_sent = threading.Event(), []
    outcome: dict[str, httpx.Response | BaseException] = {}

    def body() -> Iterator[bytes]:
        deadline = time.monotonic() + REPLACE_WAIT_S  # never hang the suite
        while not draining.is_set() and time.monotonic() < deadline:
            chunks_sent.append(1)
            yield b"x" * CHUNK
            time.sleep(0.2)
        for _ in range(int(TAIL_S / 0.2)):
            chunks_sent.append(1)
            yield b"x" * CHUNK
            time.sleep(0.2)
        yield b"x" * (UPLOAD_BYTES - CHUNK * len(chunks_sent))

    def upload() -> None:
        try:
            outcome["response"] = httpx.put(presigned.json()["upload_url"], content=body(), timeout=3 * DRAIN_S)
        except BaseException as exc:  # reported by the assertion below
            outcome["response"] = exc

    uploader = threading.Thread(target=upload)
    uploader.start()
    deadline = time.monotonic() + 60
    while len(chunks_sent) < 3 and time.monotonic() < deadline:  # the request has reached the old replica
        time.sleep(0.1)
    assert len(chunks_sent) >= 3, "the upload never started"
    redeploy_without_waiting(app_args(storage, gateway={"graceful_shutdown_timeout_s": DRAIN_S, "keepalive_s": 14}))
    deadline = time.monotonic() + REPLACE_WAIT_S
    while not gateway_stopping() and time.monotonic() < deadline and uploader.is_alive():
        time.sleep(0.2)
    stopping_seen = gateway_stopping() > 0
    seen = f"upload alive: {uploader.is_alive()}, chunks: {len(chunks_sent)}, outcome: {outcome.get('response')!r}"
    draining.set()  # the upload goes on for TAIL_S more, longer than Serve's default drain
    uploader.join(timeout=3 * DRAIN_S)

    assert stopping_seen, f"Serve never stopped the old Gateway replica during the upload ({seen})"
    response = outcome.get("response")
    assert isinstance(response, httpx.Response), f"the upload failed: {response!r}"
    assert response.status_code == 200, response.text
    assert response.json()["size"] == UPLOAD_BYTES
    # The drained replica exits within Serve's next shutdown check: the old one must be gone, a new one serving.
    wait_until(gateway_replicas, lambda names: names and not old_replicas & names, timeout_s=120)

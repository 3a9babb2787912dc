"""Following a job without polling: the SSE stream of its changes, and `Prefer: wait` on the create."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import OTHER_KEY, app_args, deploy_app, get_job, url, wait_until

KEEPALIVE_S = 0.3


@pytest.fixture(scope="module")
def client(serve_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """One app for the module: jobs of about 4 s (0.2 s for "quick" prompts), run one at a time, and a short
    keep-alive so a queued job's stream shows it."""
    from ray import serve

    data = tmp_path_factory.mktemp("events") / "data"
    storage = {"backend": "local", "local_dir": str(data), "public_base_url": f"{serve_url}/events"}
    args = app_args(
        storage,
        runner="tests.fakes:PacedRunner",
        queue={"dispatch_window": 1},
        gateway={"keepalive_s": KEEPALIVE_S},
    )
    client = deploy_app(args, serve_url, name="events", prefix="/events")
    yield client
    client.close()
    serve.delete("events")


def create(client: httpx.Client, prompt: str, **headers: str) -> httpx.Response:
    response = client.post("/api/v1/generate", json={"model": "ltx2", "prompt": prompt}, headers=headers)
    assert response.status_code in (200, 201, 202), response.text
    return response


def read_events(client: httpx.Client, job_id: str, last_event_id: str | None = None) -> list[dict[str, Any]]:
    """Every message of the job's stream until the server ends it; comments come back as `{"comment": ...}`."""
    headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
    messages: list[dict[str, Any]] = []
    with client.stream("GET", f"/api/v1/jobs/{job_id}/events", headers=headers, timeout=60) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        message: dict[str, Any] = {}
        for line in response.iter_lines():
            if line.startswith(":"):
                messages.append({"comment": line[1:].strip()})
            elif line:
                name, _, value = line.partition(": ")
                message[name] = value
            elif message:
                messages.append({**message, "data": json.loads(message["data"])})
                message = {}
    return messages


def test_events_arrive_in_order_and_end_with_the_terminal_view(client):
    job_id = create(client, "watch me").json()["job_id"]
    messages = read_events(client, job_id)
    events = [m for m in messages if "event" in m]
    ids = [int(e["id"]) for e in events]
    assert ids == sorted(set(ids)), ids  # increasing, no repeats
    progress = [e["data"]["progress"] for e in events[:-1]]
    assert progress == sorted(progress) and any(0 < p < 100 for p in progress), progress
    assert {e["data"]["stage"] for e in events[:-1]} >= {"denoising"}
    assert events[-1]["event"] == "done" and events[-1] is messages[-1]
    assert events[-1]["data"]["status"] == "completed" and events[-1]["data"]["result_url"]
    assert events[-1]["data"] == get_job(client, job_id) | {"result_url": events[-1]["data"]["result_url"]}


def test_resume_with_last_event_id_skips_what_was_seen(client):
    job_id = create(client, "resume me").json()["job_id"]
    first = [m for m in read_events(client, job_id) if "event" in m]
    middle = first[len(first) // 2]["id"]
    resumed = [m for m in read_events(client, job_id, last_event_id=middle) if "event" in m]
    assert resumed and all(int(e["id"]) > int(middle) for e in resumed), (middle, resumed)
    assert resumed[-1]["event"] == "done"
    assert read_events(client, job_id, last_event_id=first[-1]["id"]) == []  # all seen: the stream just ends


def test_a_quiet_stream_gets_keep_alive_comments(client):
    create(client, "ahead in line")
    queued = create(client, "waits its turn").json()["job_id"]
    messages = read_events(client, queued)
    assert messages[0]["event"] == "progress" and messages[0]["data"]["status"] == "queued"  # the state at open
    started = next(i for i, m in enumerate(messages) if m.get("data", {}).get("status") == "processing")
    assert {"comment": "keep-alive"} in messages[:started], messages[:started]
    assert messages[-1]["event"] == "done"


def test_another_key_gets_404_on_the_events_of_a_job(client):
    job_id = create(client, "quick private").json()["job_id"]
    response = httpx.get(url(client, f"/api/v1/jobs/{job_id}/events"), headers={"Authorization": f"Bearer {OTHER_KEY}"})
    assert response.status_code == 404 and response.json()["error"]["code"] == "job_not_found"


def test_prefer_wait_answers_a_quick_job_completed(client):
    response = create(client, "quick one", Prefer="wait=60")
    assert response.status_code == 200, response.text
    assert response.headers["preference-applied"] == "wait=60"
    assert response.json()["status"] == "completed" and response.json()["result_url"]


def test_prefer_wait_answers_a_slow_job_unfinished_after_n_seconds(client):
    response = create(client, "a long one", Prefer="wait=1")
    assert response.status_code == 202, response.text
    assert response.headers["preference-applied"] == "wait=1"
    assert response.json()["status"] in ("queued", "processing")
    wait_until(lambda: get_job(client, response.json()["job_id"]), lambda j: j["status"] == "completed", 120)


@pytest.mark.parametrize("prefer", ["wait=61", "wait=0", "wait=soon"])
def test_prefer_wait_out_of_range_is_a_422_naming_the_header(client, prefer):
    response = client.post("/api/v1/generate", json={"model": "ltx2", "prompt": "x"}, headers={"Prefer": prefer})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["fields"][0]["field"] == "Prefer"

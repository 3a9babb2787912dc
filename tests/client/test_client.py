"""The Python client and the `video-serve` CLI against the real served app (fake runners)."""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import pty
import struct
import subprocess
import sys
import termios
from collections.abc import Iterator

import httpx
import pytest
from video_serve_client import AsyncClient, Client, InvalidRequestError, NotFoundError

from tests.conftest import API_KEY, AUTH, app_args, deploy_app, wait_terminal
from tests.serve_app.http.test_jobs_api import png_bytes

PREFIX = "/client"


@pytest.fixture(scope="module")
def base_url(serve_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One app for the module: one-second jobs, and a backlog of one job so a second submission gets a 429."""
    from ray import serve

    data = tmp_path_factory.mktemp("client") / "data"
    storage = {"backend": "local", "local_dir": str(data), "public_base_url": serve_url + PREFIX}
    args = app_args(storage, runner="tests.fakes:MediumRunner", queue={"max_queued_jobs": 1, "retry_after_s": 1})
    deploy_app(args, serve_url, name="client", prefix=PREFIX).close()
    yield serve_url + PREFIX
    serve.delete("client")


@pytest.fixture
def client(base_url: str) -> Iterator[Client]:
    with Client(base_url, API_KEY, max_retries=60) as client:
        yield client


def cli_env(base_url: str) -> dict[str, str]:
    return {**os.environ, "VIDEO_SERVE_URL": base_url, "VIDEO_SERVE_API_KEY": API_KEY}


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "video_serve_client.cli", *args]


def test_run_uploads_a_local_image_and_writes_the_mp4(client, tmp_path):
    image = tmp_path / "face.png"
    image.write_bytes(png_bytes())
    out = tmp_path / "clip.mp4"
    job = client.run("ltx2", out=out, prompt="a face", image=image, duration=1)
    assert job.status == "completed" and job.data["params"]["image_to_video"] is True
    assert job.data["details"]["input_sizes"] == {"image": len(png_bytes())}
    assert out.read_bytes()[4:8] == b"ftyp"
    poster = job.download(tmp_path / "poster.webp", "thumbnail").read_bytes()
    assert (poster[:4], poster[8:12]) == (b"RIFF", b"WEBP")
    assert job.id in [j.id for j in client.jobs(model="ltx2")]


def test_errors_are_typed_and_carry_the_field_list(client):
    with pytest.raises(InvalidRequestError) as refused:
        client.generate("ltx2", prompt="x", duration=-1)
    assert [f["field"] for f in refused.value.fields] == ["duration"]
    with pytest.raises(NotFoundError):
        client.job("ltx2-" + "0" * 32)


def test_a_429_is_retried_after_retry_after_with_the_same_idempotency_key(client, base_url):
    first = httpx.post(base_url + "/api/v1/generate", json={"model": "ltx2", "prompt": "ahead"}, headers=AUTH)
    assert first.status_code == 201, first.text
    seen: list[tuple[int, str]] = []
    client._http.event_hooks["response"].append(
        lambda r: seen.append((r.status_code, r.request.headers.get("idempotency-key", "")))
    )
    job = client.generate("ltx2", prompt="behind")
    assert seen[0][0] == 429 and seen[-1][0] == 201, seen
    assert len({key for _, key in seen}) == 1  # every retry carried the same key
    assert job.wait().status == "completed"
    wait_terminal(httpx.Client(base_url=base_url, headers=AUTH), first.json()["job_id"])


def test_the_async_client_runs_a_job_and_streams_its_events(base_url, tmp_path):
    async def scenario() -> tuple[str, list[dict]]:
        async with AsyncClient(base_url, API_KEY, max_retries=60) as client:
            job = await client.generate("ltx2", prompt="async")
            events = [event async for event in job.stream()]
            await job.download(tmp_path / "a.mp4")
            return job.status, events

    status, events = asyncio.run(scenario())
    assert status == "completed" and events[-1]["event"] == "done"
    assert [int(e["id"]) for e in events] == sorted(int(e["id"]) for e in events)
    assert (tmp_path / "a.mp4").read_bytes()[4:8] == b"ftyp"


def test_the_cli_prints_json_lines_that_parse(base_url, tmp_path):
    out = tmp_path / "cli.mp4"
    done = subprocess.run(
        cli("generate", "ltx2", "--prompt", "json lines", "--duration", "1", "--out", str(out), "--json"),
        env=cli_env(base_url),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert lines[0]["status"] == "queued" and lines[-1]["status"] == "completed"
    assert any(line.get("event") == "done" for line in lines)
    assert out.read_bytes()[4:8] == b"ftyp"
    listed = subprocess.run(cli("jobs", "--json"), env=cli_env(base_url), capture_output=True, text=True, timeout=60)
    assert lines[0]["job_id"] in [json.loads(line)["job_id"] for line in listed.stdout.splitlines()]
    sheet = tmp_path / "frames.jpg"
    saved = subprocess.run(
        cli("download", lines[0]["job_id"], str(sheet), "--variant", "spritesheet"),
        env=cli_env(base_url), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert saved.returncode == 0, saved.stderr
    assert sheet.read_bytes()[:3] == b"\xff\xd8\xff"  # a JPEG


def test_the_cli_progress_bar_renders_in_a_terminal_and_reaches_100(base_url, tmp_path):
    parent, child = pty.openpty()
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))  # a terminal of 100 columns
    process = subprocess.Popen(
        cli("generate", "ltx2", "--prompt", "a bar", "--out", str(tmp_path / "bar.mp4")),
        env=cli_env(base_url),
        stdin=child,
        stdout=child,
        stderr=child,
    )
    os.close(child)
    output = read_all(parent)
    assert process.wait(timeout=60) == 0, output
    assert "100%" in output and "completed" in output, output
    assert "denoising" in output, output  # the stage name shows next to the bar


def read_all(fd: int) -> str:
    """Everything written to a pseudo-terminal until its last writer closes it."""
    chunks: list[bytes] = []
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the child side is closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks).decode(errors="replace")


def test_the_cli_exit_code_says_a_request_was_refused(base_url):
    done = subprocess.run(
        cli("generate", "ltx2", "--prompt", "x", "--duration", "-1"),
        env=cli_env(base_url),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "duration" in done.stderr, done.stderr

"""The client's pure parts: which fields become uploads, SSE parsing, and CLI field values."""

from __future__ import annotations

from pathlib import Path

import pytest
from video_serve_client._core import SSEParser, prepare, usage_params, usage_table
from video_serve_client.cli import request_fields


def test_local_paths_become_uploads_and_everything_else_stays_in_the_body(tmp_path: Path) -> None:
    face, speech = tmp_path / "face.png", tmp_path / "speech.wav"
    face.write_bytes(b"png")
    speech.write_bytes(b"wav")
    prepared = prepare(
        "wav2lip", {"image": face, "audio_url": str(speech), "video_url": "https://e.com/a.mp4", "fps": 25}
    )
    assert prepared.body == {"model": "wav2lip", "video_url": "https://e.com/a.mp4", "fps": 25}
    uploads = {(u.field, u.kind, u.content_type) for u in prepared.uploads}
    assert uploads == {("image_key", "image", "image/png"), ("audio_key", "audio", "audio/wav")}
    assert prepare("ltx2", {"image_key": "uploads/abc-1/image-1.png"}).uploads == []  # a key, not a file


def test_sse_messages_parse_with_ids_and_comments_are_dropped() -> None:
    parser = SSEParser()
    lines = [": keep-alive", "", "id: 3", "event: progress", 'data: {"progress": 40.0}', ""]
    events = [event for line in lines for event in parser.feed(line)]
    assert events == [{"id": "3", "event": "progress", "data": {"progress": 40.0}}]


def test_cli_field_values_are_json_when_they_parse() -> None:
    argv = ["--prompt", "a lighthouse", "--duration", "3", "--pads", "[0, 10, 0, 0]", "--smooth", "false"]
    fields = request_fields(argv)
    assert fields == {"prompt": "a lighthouse", "duration": 3, "pads": [0, 10, 0, 0], "smooth": False}
    with pytest.raises(SystemExit, match="--name value"):
        request_fields(["--prompt"])


def test_usage_asks_only_for_what_was_given_and_prints_one_row_per_group() -> None:
    assert usage_params(None, "2026-03-14", "model", None) == {"end": "2026-03-14", "group_by": "model"}
    sums = {
        "jobs": {"completed": 3, "failed": 1},
        "queued_s": 4.0,
        "run_s": 40.0,
        "gpu_s": 42.5,
        "billable_gpu_s": 40.0,
        "cost": 0.0211,
    }
    report = {
        "start": "2026-03-01",
        "end": "2026-03-14",
        "group_by": "model",
        "rows": [{"tenant": "acme", "group": "ltx2", **sums}],
        "totals": sums,
    }
    lines = usage_table(report).splitlines()
    assert lines[0].split() == ["TENANT", "MODEL", "JOBS", "FAILED", "QUEUED_S", "RUN_S", "GPU_S", "BILLED_S", "COST"]
    assert lines[1].split() == ["acme", "ltx2", "4", "1", "4.0", "40.0", "42.5", "40.0", "0.0211"]
    assert lines[2].split()[:3] == ["total", "2026-03-01..2026-03-14", "4"]

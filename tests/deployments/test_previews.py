"""Previews of a video (deployments.previews): a WebP poster and a JPEG spritesheet, from real encoded mp4s."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from deployments.previews import (
    SHEET_MAX_TILES,
    THUMBNAIL_MAX_SIDE,
    TILE_WIDTH,
    PreviewError,
    make_previews,
    preview_keys,
    sheet_layout,
)


def write_mp4(path: Path, frames: int, width: int, height: int, fps: int = 24) -> Path:
    """An H.264 mp4 whose frame `i` is filled with gray level `i` (scaled), so a tile tells which frame it is."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(frames):
            level = int(255 * i / max(1, frames - 1))
            image = np.full((height, width, 3), level, dtype=np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())
    return path


def test_a_long_video_gets_a_full_grid_of_evenly_spaced_frames_and_a_webp_poster(tmp_path):
    video = write_mp4(tmp_path / "v.mp4", frames=120, width=320, height=192)
    layout = make_previews(video, tmp_path / "t.webp", tmp_path / "s.jpg")

    assert (layout.tiles, layout.columns, layout.rows) == (SHEET_MAX_TILES, 5, 5)
    assert layout.tile_size == (TILE_WIDTH, 96)  # the video's aspect ratio
    with Image.open(tmp_path / "s.jpg") as sheet:
        assert (sheet.format, sheet.size) == ("JPEG", (5 * TILE_WIDTH, 5 * 96))
        levels = [sheet.getpixel((c * TILE_WIDTH + 80, r * 96 + 48))[0] for r in range(5) for c in range(5)]
    assert levels == sorted(levels) and levels[-1] - levels[0] > 200, levels  # first to last, in order
    with Image.open(tmp_path / "t.webp") as poster:
        assert poster.format == "WEBP" and poster.size == (320, 192)
        assert 100 < poster.convert("RGB").getpixel((160, 96))[0] < 155  # the middle frame


def test_a_short_video_gets_one_tile_per_frame_and_a_large_one_a_bounded_poster(tmp_path):
    short = write_mp4(tmp_path / "short.mp4", frames=4, width=64, height=64)
    layout = make_previews(short, tmp_path / "t.webp", tmp_path / "s.jpg")
    assert (layout.tiles, layout.columns, layout.rows, layout.tile_size) == (4, 4, 1, (64, 64))
    with Image.open(tmp_path / "s.jpg") as sheet:
        assert sheet.size == (256, 64)

    large = write_mp4(tmp_path / "large.mp4", frames=2, width=1024, height=576)
    make_previews(large, tmp_path / "t2.webp", tmp_path / "s2.jpg")
    with Image.open(tmp_path / "t2.webp") as poster:
        assert poster.size == (THUMBNAIL_MAX_SIDE, 288)


def test_the_layout_a_client_can_compute_from_the_video_alone():
    assert sheet_layout(7, 100, 50).size == (5 * 100, 2 * 50)
    assert sheet_layout(1000, 1280, 720).size == (5 * TILE_WIDTH, 5 * 90)


def test_an_audio_file_has_no_previews(tmp_path):
    path = tmp_path / "a.m4a"
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=16000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), dtype=np.float32), format="fltp", layout="mono")
        frame.sample_rate = 16000
        container.mux(stream.encode(frame))
        container.mux(stream.encode())
    with pytest.raises(PreviewError, match="no video stream"):
        make_previews(path, tmp_path / "t.webp", tmp_path / "s.jpg")


def test_previews_are_stored_beside_the_video():
    assert preview_keys("jobs/ltx2-ab/output.mp4") == {
        "thumbnail": "jobs/ltx2-ab/thumbnail.webp",
        "spritesheet": "jobs/ltx2-ab/spritesheet.jpg",
    }
    assert preview_keys("jobs/t-1/stages/0-ltx2.mp4")["thumbnail"] == "jobs/t-1/stages/0-ltx2-thumbnail.webp"

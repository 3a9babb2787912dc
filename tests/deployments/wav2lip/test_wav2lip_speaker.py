"""`active_speaker`: in a two-face clip the largest face is kept for the whole clip, a point picks the other."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from wav2lip_inputs import FakeReporter, astronaut, write_clip

from deployments.contract import JobSpec
from deployments.media import iter_frames
from deployments.wav2lip import face
from serve_app.errors import JobFailed

FRAMES, HEIGHT, WIDTH = 16, 320, 640
LEFT_X = (60, 170)  # the static face's box spans about these columns (Haar: x 86-138 of its 256 px copy, +32)


def two_faces(i: int) -> np.ndarray:
    """Two astronauts side by side: the left static, the right drifting and growing from smaller to larger."""
    canvas = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    canvas[32:288, 32:288] = astronaut(256)
    side = int(216 + 64 * i / (FRAMES - 1))
    right = astronaut(side)
    x, y = 330 + (300 - side) // 2 + int(6 * np.sin(i / 3)), (HEIGHT - side) // 2
    canvas[y : y + side, x : x + side] = right
    return canvas


@pytest.fixture(scope="module")
def two_face_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_clip(tmp_path_factory.mktemp("speaker") / "two.mp4", [two_faces(i) for i in range(FRAMES)])


def job(**params: object) -> JobSpec:
    return JobSpec(job_id="j", model="wav2lip", attempt=1, params=params, output_key="jobs/j/o.mp4")


def changed_side(source: Path, output: Path) -> list[str]:
    """Per output frame, which half of the picture the lip sync redrew ("left", "right" or "both"/"none")."""
    sources = list(iter_frames(source))
    sides = []
    for i, frame in enumerate(iter_frames(output)):
        diff = np.abs(frame.astype(int) - sources[i % len(sources)]).mean(axis=2)
        left, right = diff[:, : WIDTH // 2].max() > 60, diff[:, WIDTH // 2 :].max() > 60
        sides.append({(True, False): "left", (False, True): "right", (True, True): "both"}.get((left, right), "none"))
    return sides


def test_the_clip_has_two_faces_and_the_right_one_outgrows_the_left() -> None:
    detector = face.HaarDetector()
    first, last = (face.scaled_faces(detector.detect([two_faces(i)]), 1.0)[0] for i in (0, FRAMES - 1))
    areas = [sorted(((b[2] - b[0]) * (b[3] - b[1]), b[0] < WIDTH // 2) for b in boxes)[-1] for boxes in (first, last)]
    assert areas[0][1] and not areas[1][1]  # largest per frame: left at the start, right at the end


def test_largest_stays_on_one_face_for_the_whole_clip(runner, media, two_face_clip, tmp_path) -> None:
    out = runner.run(job(), {"face": two_face_clip, "audio": media["audio"]}, tmp_path, FakeReporter())
    assert out.details["frames_without_face"] == 0
    assert changed_side(two_face_clip, out.video_path) == ["left"] * out.details["frames"]
    assert out.details["active_speaker"] == "largest"


def test_a_point_picks_the_other_face(runner, media, two_face_clip, tmp_path) -> None:
    point = {"x": 480, "y": 110, "at_s": 0.2}
    out = runner.run(job(active_speaker=point), {"face": two_face_clip, "audio": media["audio"]}, tmp_path,
                     FakeReporter())  # fmt: skip
    sides = changed_side(two_face_clip, out.video_path)
    assert set(sides) == {"right"}, sides
    assert out.details["active_speaker"] == point


def test_a_point_on_no_face_fails_naming_the_time(runner, media, two_face_clip, tmp_path) -> None:
    with pytest.raises(JobFailed, match=r"no face contains \(320, 300\) at 0.20 s") as info:
        runner.run(job(active_speaker={"x": 320, "y": 300, "at_s": 0.2}),
                   {"face": two_face_clip, "audio": media["audio"]}, tmp_path, FakeReporter())  # fmt: skip
    assert info.value.code == "speaker_not_found"


def test_tracking_never_jumps_to_a_face_that_does_not_overlap() -> None:
    a, b = np.array([[0, 0, 10, 10.0]]), np.array([[50, 0, 60, 10.0]])
    track = face.follow_face([a, b, a + 1, np.zeros((0, 4))], 0, a[0])
    assert track[0].tolist() == [0, 0, 10, 10] and np.isnan(track[1]).all()
    assert track[2].tolist() == [1, 1, 11, 11] and np.isnan(track[3]).all()


def test_a_point_tracks_backwards_as_well() -> None:
    faces = [np.array([[0, 0, 10, 10.0], [50, 0, 60, 10]]), np.array([[51, 1, 61, 11.0], [1, 0, 11, 10]])]
    chosen = face.face_at(faces[1], 55, 5)
    assert face.follow_face(faces, 1, chosen)[0].tolist() == [50, 0, 60, 10]

"""Face detection: the no-download Haar fallback, S3FD's layout and decoding, and the box-track arithmetic."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from wav2lip_inputs import astronaut

from deployments.wav2lip import face
from deployments.wav2lip.s3fd import S3FD, S3FDDetector, decode, nms

NAN = [np.nan] * 4


def test_haar_fallback_finds_the_astronaut_and_reaches_her_chin() -> None:
    (faces,) = face.HaarDetector().detect([astronaut(512)])
    x1, y1, x2, y2, _ = faces[0]
    # OpenCV finds x=177 y=66 w=95 h=95 here; the box is extended to the chin (y ~ 180)
    assert (x1, y1, x2) == pytest.approx((177, 66, 272), abs=4)
    assert 175 <= y2 <= 190
    assert faces[:, 4].tolist() == sorted(faces[:, 4], reverse=True)


def test_haar_fallback_finds_nothing_in_a_gradient() -> None:
    gradient = np.tile(np.linspace(0, 255, 320, dtype=np.uint8)[None, :, None], (240, 1, 3))
    assert [len(f) for f in face.HaarDetector().detect([gradient, gradient])] == [0, 0]


def test_s3fd_has_the_public_checkpoint_layout() -> None:
    state = S3FD().state_dict()
    assert len(state) == 65  # 19 convs x (weight, bias) + 3 L2Norm scales + 12 heads x (weight, bias)
    assert state["fc6.weight"].shape == (1024, 512, 3, 3)
    assert state["conv3_3_norm_mbox_conf.weight"].shape == (4, 256, 3, 3)
    assert state["conv7_2_mbox_loc.bias"].shape == (4,)
    assert state["conv4_3_norm.weight"].tolist() == [8.0] * 512


def test_s3fd_decoding_puts_a_zero_offset_anchor_on_its_cell() -> None:
    score = torch.zeros(1, 3, 3)
    score[0, 1, 2] = 0.9  # level 0: stride 4, anchor 16 px, cell (row 1, col 2) -> centre (10, 6)
    (boxes,) = decode([(score, torch.zeros(1, 4, 3, 3))])
    best = boxes[boxes[:, 4].argmax()]
    assert best.tolist() == pytest.approx([2.0, -2.0, 18.0, 14.0, 0.9])


def test_nms_keeps_the_best_of_overlapping_boxes_and_disjoint_ones() -> None:
    boxes = torch.tensor([[0, 0, 10, 10, 0.6], [1, 1, 11, 11, 0.9], [50, 50, 60, 60, 0.7]], dtype=torch.float32)
    assert nms(boxes, 0.3).tolist() == [1, 2]


def test_s3fd_detector_loads_weights_and_returns_one_array_per_frame(tmp_path: Path) -> None:
    torch.save(S3FD().state_dict(), tmp_path / "s3fd.pth")
    detector = face.build_detector("auto", tmp_path / "s3fd.pth", torch.device("cpu"))
    assert isinstance(detector, S3FDDetector)
    results = detector.detect([astronaut(64), astronaut(64)])
    assert len(results) == 2 and all(r.ndim == 2 and r.shape[1] == 5 for r in results)


def test_s3fd_without_weights_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="detector_weights"):
        face.build_detector("s3fd", None, torch.device("cpu"))


def test_faces_are_rescaled_to_full_frame() -> None:
    found = np.array([[10, 20, 30, 40, 0.9], [-2, 0, 5, 5, 0.1]], np.float32)
    first, second = face.scaled_faces([found, np.zeros((0, 5))], scale=0.5)
    assert first.tolist() == [[20, 40, 60, 80], [0, 0, 10, 10]]
    assert second.shape == (0, 4)


def test_keyframes_interpolate_only_between_two_faces() -> None:
    keys = np.array([[0, 0, 10, 10], [4, 4, 14, 14], NAN, [8, 8, 18, 18]])
    np.testing.assert_array_equal(face.fill_between_keyframes(keys, every=1, frames=3), keys[:3])
    track = face.fill_between_keyframes(keys, every=2, frames=8)
    assert track[1].tolist() == [2, 2, 12, 12]
    assert np.isnan(track[3]).all() and np.isnan(track[4:6]).all()  # a gap touching a miss has no face
    assert track[6].tolist() == track[7].tolist() == [8, 8, 18, 18]  # after the last keyframe: held


def test_smoothing_averages_forward_and_skips_misses() -> None:
    track = np.array([[0, 0, 10, 10], [2, 2, 12, 12], NAN, [4, 4, 14, 14]], dtype=float)
    smooth = face.smooth_track(track, window=2)
    assert smooth[0].tolist() == [1, 1, 11, 11]
    assert smooth[1].tolist() == [2, 2, 12, 12]  # its window is itself and a miss
    assert np.isnan(smooth[2]).all()
    assert smooth[3].tolist() == [4, 4, 14, 14]  # near the end: the last `window` frames


def test_pads_grow_the_box_and_clip_to_the_frame() -> None:
    track = face.pad_track(np.array([[5.7, 10, 50.9, 95], NAN]), (0, 10, 8, 2), width=100, height=100)
    assert track[0].tolist() == [0, 10, 52, 100] and np.isnan(track[1]).all()


def official_boxes(detected: np.ndarray, pads: tuple[int, int, int, int], width: int, height: int) -> np.ndarray:
    """inference.py's face_detect arithmetic, written from its description: int() of each clipped detector box,
    pads clipped to the frame, then get_smoothened_boxes(T=5) in place on the int array."""
    pady1, pady2, padx1, padx2 = pads
    results = []
    for d in detected:
        x1, y1, x2, y2 = map(int, np.clip(d, 0, None))
        results.append([max(0, x1 - padx1), max(0, y1 - pady1), min(width, x2 + padx2), min(height, y2 + pady2)])
    boxes = np.array(results)
    for i in range(len(boxes)):
        window = boxes[len(boxes) - 5 :] if i + 5 > len(boxes) else boxes[i : i + 5]
        boxes[i] = np.mean(window, axis=0)
    return boxes


@pytest.mark.parametrize("frames", [1, 2, 3, 4, 5, 6, 13, 40])
def test_padding_and_smoothing_match_the_official_arithmetic(frames: int) -> None:
    rng = np.random.default_rng(frames)
    centre = np.cumsum(rng.normal(0, 6, (frames, 2)), axis=0) + np.array([60, 50])  # drifts to the edges
    size = rng.uniform(40, 60, (frames, 1))
    detected = np.concatenate([centre - size / 2, centre + size / 2], axis=1) + rng.uniform(0, 1, (frames, 4))
    pads = (0, 10, 3, 4)
    ours = face.smooth_track(face.pad_track(detected.clip(0, None), pads, 120, 100), window=5)
    np.testing.assert_array_equal(ours, official_boxes(detected, pads, 120, 100))

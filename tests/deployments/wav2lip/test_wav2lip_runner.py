"""End-to-end jobs through `Wav2LipRunner.run` on small synthetic clips (real network, random weights, CPU)."""

from __future__ import annotations

import warnings
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from wav2lip_inputs import AUDIO_S, CLIP_FRAMES, FPS, SIZE, FakeReporter

from deployments.contract import RANDOM_WEIGHTS, JobSpec
from deployments.media import iter_frames
from deployments.wav2lip.args import Wav2LipArgs
from deployments.wav2lip.pipeline import autocast, paste
from deployments.wav2lip.runner import Wav2LipRunner
from serve_app.errors import JobCancelled, JobFailed


def job(**params: object) -> JobSpec:
    return JobSpec(job_id="j1", model="wav2lip", attempt=1, params=params, output_key="jobs/j1/output.mp4")


def streams(path: Path) -> dict[str, float]:
    """Frame count, fps and each stream's duration, read back with PyAV."""
    with av.open(str(path)) as container:
        video, audio = container.streams.video[0], container.streams.audio[0]
        return {
            "frames": sum(1 for _ in container.decode(video)),
            "fps": float(video.average_rate),
            "width": video.codec_context.width,
            "audio_s": float(audio.duration * audio.time_base),
            "audio_rate": audio.rate,
            "channels": audio.channels,
        }


def test_video_job_lasts_as_long_as_the_audio_and_loops_the_short_clip(runner, media, tmp_path) -> None:
    reporter = FakeReporter()
    out = runner.run(job(face_kind="video"), {"face": media["video"], "audio": media["audio"]}, tmp_path, reporter)
    got = streams(out.video_path)
    assert out.video_path == tmp_path / "output.mp4"
    assert got["frames"] == out.details["frames"] == round(AUDIO_S * FPS)  # 25 frames from a 16-frame clip
    assert abs(got["audio_s"] - AUDIO_S) < 0.01
    assert abs(got["frames"] / got["fps"] - got["audio_s"]) <= 1 / FPS
    assert (got["fps"], got["width"], got["audio_rate"], got["channels"]) == (FPS, SIZE, 48_000, 1)  # mono in
    assert out.details["source_frames"] == CLIP_FRAMES
    assert out.details["faces_found"] == 25 and out.details["frames_without_face"] == 0
    assert out.details["weights"] == runner.weights == RANDOM_WEIGHTS
    progress = [p for _, p in reporter.events]
    assert progress == sorted(progress) and progress[-1] == 1.0
    assert {"decoding", "detecting", "lip_sync", "encoding"} <= {s for s, _ in reporter.events}
    # the mouth region changed, the top of the frame did not
    first_in, first_out = next(iter_frames(media["video"])), next(iter_frames(out.video_path))
    diff = np.abs(first_in.astype(int) - first_out).mean(axis=2)
    assert diff[70:95, 95:130].mean() > 10 > diff[:25].mean()  # Haar box ~ x 88-136, y 33-100 with pads


def test_still_image_job_uses_the_requested_fps_and_hard_paste(runner, media, tmp_path) -> None:
    params = job(face_kind="image", fps=20.0, blend="hard", smooth=False, pads=[0, 0, 0, 0])
    out = runner.run(params, {"face": media["image"], "audio": media["audio"]}, tmp_path, FakeReporter())
    got = streams(out.video_path)
    assert (got["frames"], got["fps"]) == (20, 20.0)
    assert out.details["faces_found"] == 20 and out.details["blend"] == "hard"


def test_a_video_without_faces_keeps_its_frames(runner, media, tmp_path) -> None:
    out = runner.run(job(on_no_face="keep"), {"face": media["noface"], "audio": media["audio"]}, tmp_path,
                     FakeReporter())  # fmt: skip
    assert out.details["frames_without_face"] == out.details["frames"] == 25
    source = list(iter_frames(media["noface"]))
    for i, frame in enumerate(iter_frames(out.video_path)):
        assert np.abs(frame.astype(int) - source[i % len(source)]).mean() < 4  # re-encoded, otherwise unchanged


def test_a_video_without_faces_fails_when_asked(runner, media, tmp_path) -> None:
    with pytest.raises(JobFailed, match=r"no face found in frame 0 \(0.00 s\)") as info:
        runner.run(job(on_no_face="fail"), {"face": media["noface"], "audio": media["audio"]}, tmp_path, FakeReporter())
    assert info.value.code == "no_face"


def test_corrupt_audio_fails_with_a_readable_error(runner, media, tmp_path) -> None:
    with pytest.raises(JobFailed, match=r"^audio input: cannot read media") as info:
        runner.run(job(), {"face": media["video"], "audio": media["corrupt"]}, tmp_path, FakeReporter())
    assert info.value.code == "invalid_audio"


def test_a_corrupt_face_video_fails_with_a_readable_error(runner, media, tmp_path) -> None:
    junk = tmp_path / "face.mp4"
    junk.write_bytes(media["video"].read_bytes()[:2000])  # the header survives, the frames do not
    with pytest.raises(JobFailed, match=r"^face(:| input:) ") as info:
        runner.run(job(), {"face": junk, "audio": media["audio"]}, tmp_path, FakeReporter())
    assert info.value.code == "invalid_video"


def test_an_audio_file_as_face_fails_with_a_readable_error(runner, media, tmp_path) -> None:
    with pytest.raises(JobFailed, match="face input: holds no image or video stream"):
        runner.run(job(), {"face": media["audio"], "audio": media["audio"]}, tmp_path, FakeReporter())


def test_cancel_between_batches_stops_the_job(runner, media, tmp_path) -> None:
    reporter = FakeReporter(cancel_at=3)  # 1 detection batch (keyframes 0, 5, 10, 15), then generator batch 2
    with pytest.raises(JobCancelled):
        runner.run(job(), {"face": media["video"], "audio": media["audio"]}, tmp_path, reporter)
    assert reporter.checks == 3
    assert [s for s, _ in reporter.events].count("lip_sync") == 1  # one batch of 8 frames was made, not more
    assert max(p for _, p in reporter.events) < 1.0


def test_missing_input_fails(runner, media, tmp_path) -> None:
    with pytest.raises(JobFailed, match=r"missing \['audio'\]"):
        runner.run(job(), {"face": media["video"]}, tmp_path, FakeReporter())


def test_no_weights_and_no_random_fallback_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="`weights` is not set"):
        Wav2LipRunner(Wav2LipArgs(device="cpu"))


def test_feather_blend_keeps_the_upper_face_and_hard_paste_replaces_the_box() -> None:
    face96 = np.full((96, 96, 3), 255, np.uint8)
    soft, hard = np.zeros((200, 200, 3), np.uint8), np.zeros((200, 200, 3), np.uint8)
    paste(soft, face96, (50, 40, 150, 140), "feather")
    paste(hard, face96, (50, 40, 150, 140), "hard")
    assert hard[40:140, 50:150].min() == 255 and hard[:40].max() == 0
    assert soft[40:80, 50:150].max() == 0  # upper 40 % of the box: the original face
    assert soft[115, 100].min() > 250  # mouth area: the generated face
    assert 0 < soft[115, 55, 0] < 255  # box edge: blended


def test_precision_is_fp32_on_cpu_and_fp16_on_cuda_by_default_and_bf16_only_when_asked() -> None:
    assert Wav2LipArgs().precision == "auto"
    conv = torch.nn.Conv2d(3, 3, 3)
    with autocast(torch.device("cpu"), "auto"):
        assert conv(torch.zeros(1, 3, 8, 8)).dtype == torch.float32
    with autocast(torch.device("cpu"), "bf16"):
        assert conv(torch.zeros(1, 3, 8, 8)).dtype == torch.bfloat16
    with warnings.catch_warnings():  # without a GPU torch warns that it disables the (unused) context
        warnings.simplefilter("ignore")
        cuda = autocast(torch.device("cuda"), "auto")
    assert (cuda.device, cuda.fast_dtype) == ("cuda", torch.float16)

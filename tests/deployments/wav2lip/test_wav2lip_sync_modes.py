"""`sync_mode`: output lengths for audio longer and shorter than the video, and which source frame each shows."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from scipy.io import wavfile
from wav2lip_inputs import FPS, SIZE, FakeReporter, speech_like, write_clip

from deployments.contract import JobSpec
from deployments.media import iter_frames
from deployments.wav2lip import timing
from deployments.wav2lip.request import Wav2LipRequest
from deployments.wav2lip.spec import SPEC
from serve_app.errors import InvalidInput

VIDEO_FRAMES = 10  # 0.4 s
MODES = ["loop", "bounce", "remap", "cut_off", "silence"]


def numbered_frames(count: int) -> list[np.ndarray]:
    """Flat grey frames whose level encodes their index (no face: the frames come out unchanged)."""
    return [np.full((64, 96, 3), 20 + 20 * i, np.uint8) for i in range(count)]


@pytest.fixture(scope="module")
def numbered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("sync-modes")
    for name, seconds in (("long", 0.72), ("short", 0.24)):
        wavfile.write(root / f"{name}.wav", 16_000, speech_like(seconds))
    return {
        "video": write_clip(root / "numbered.mp4", numbered_frames(VIDEO_FRAMES)),
        "long": root / "long.wav",  # 18 frames: longer than the video
        "short": root / "short.wav",  # 6 frames
    }


def shown_indices(path: Path) -> list[int]:
    """The source index each output frame shows, read back from its grey level."""
    return [round((float(frame.mean()) - 20) / 20) for frame in iter_frames(path)]


def durations(path: Path) -> tuple[float, float]:
    """(video seconds by decoded frames, audio seconds by decoded samples)."""
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        frames = sum(1 for _ in container.decode(video))
        fps = float(video.average_rate)
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        samples = sum(f.samples for f in container.decode(stream))
        rate = stream.codec_context.sample_rate
    return frames / fps, samples / rate


EXPECTED_FRAMES = {  # (audio long: 18 frames, audio short: 6 frames) with a 10-frame video
    "loop": (18, 6),
    "bounce": (18, 6),
    "remap": (18, 6),
    "cut_off": (10, 6),
    "silence": (10, 10),
}


@pytest.mark.parametrize("audio", ["long", "short"])
@pytest.mark.parametrize("mode", MODES)
def test_each_mode_gives_its_output_length(runner, numbered, tmp_path, mode: str, audio: str) -> None:
    job = JobSpec(job_id="j", model="wav2lip", attempt=1, params={"sync_mode": mode}, output_key="jobs/j/o.mp4")
    out = runner.run(job, {"face": numbered["video"], "audio": numbered[audio]}, tmp_path, FakeReporter())
    frames = EXPECTED_FRAMES[mode][audio == "short"]
    video_s, audio_s = durations(out.video_path)
    assert out.details["frames"] == frames
    assert abs(video_s - frames / FPS) < 1e-6
    assert abs(audio_s - video_s) <= 1 / FPS  # the audio was cut or padded to the video where the mode says so
    assert out.details["sync_mode"] == mode
    assert out.details["input_audio_s"] == pytest.approx(0.72 if audio == "long" else 0.24, abs=1e-3)
    assert out.details["input_video_s"] == pytest.approx(VIDEO_FRAMES / FPS, abs=1 / FPS)
    assert out.details["duration_s"] == pytest.approx(frames / FPS)
    shown = shown_indices(out.video_path)
    assert shown == timing.source_order(mode, VIDEO_FRAMES, frames).tolist()


def test_bounce_plays_the_video_backwards_after_its_end() -> None:
    assert timing.source_order("bounce", 4, 11).tolist() == [0, 1, 2, 3, 2, 1, 0, 1, 2, 3, 2]


def test_remap_shows_every_source_frame_in_order() -> None:
    stretched = timing.source_order("remap", 10, 18)
    assert sorted(set(stretched.tolist())) == list(range(10))
    assert np.all(np.diff(stretched) >= 0)
    squeezed = timing.source_order("remap", 10, 6)
    assert np.all(np.diff(squeezed) > 0) and squeezed[0] == 0


def test_loop_restarts_and_cut_modes_never_run_past_the_video() -> None:
    assert timing.source_order("loop", 3, 7).tolist() == [0, 1, 2, 0, 1, 2, 0]
    assert timing.output_frames("cut_off", 10, 18) == 10 and timing.output_frames("silence", 10, 6) == 10


def test_backwards_runs_are_read_a_few_frames_at_a_time() -> None:
    frames = [np.full((2, 2, 3), i, np.uint8) for i in range(7)]
    reads: list[int] = []

    def decode():
        reads.append(1)
        yield from frames

    order = timing.source_order("bounce", 7, 20)
    shown = [int(f[0, 0, 0]) for f in timing.ordered_frames(decode, order, hold=2)]
    assert shown == order.tolist()
    assert len(reads) == 1 + 3 + 1 + 1  # forward, backward 5 4 | 3 2 | 1 0, forward 1..6, backward 5


def test_fit_audio_pads_with_silence_and_cuts() -> None:
    stereo = np.ones((2, 5), np.float32)
    assert timing.fit_audio(stereo, 3).shape == (2, 3)
    padded = timing.fit_audio(stereo, 8)
    assert padded.shape == (2, 8) and padded[:, 5:].max() == 0 and padded[:, :5].min() == 1


@pytest.mark.parametrize("mode", ["bounce", "remap", "cut_off", "silence"])
def test_a_still_image_allows_only_loop(mode: str) -> None:
    request = Wav2LipRequest(model="wav2lip", image_key="uploads/a/face.png", audio_key="uploads/a/s.wav",
                             sync_mode=mode)  # fmt: skip
    with pytest.raises(InvalidInput) as info:
        SPEC.plan(request, SPEC.args())
    assert info.value.field == "sync_mode"


def test_a_video_plans_its_sync_mode() -> None:
    request = Wav2LipRequest(model="wav2lip", video_key="uploads/a/f.mp4", audio_key="uploads/a/s.wav",
                             sync_mode="bounce")  # fmt: skip
    assert SPEC.plan(request, SPEC.args())["sync_mode"] == "bounce"


def test_a_mode_that_reads_the_whole_video_bounds_its_length() -> None:
    from deployments.media import MediaInfo

    request = Wav2LipRequest(model="wav2lip", video_key="uploads/a/f.mp4", audio_key="uploads/a/s.wav",
                             sync_mode="silence")  # fmt: skip
    long_video = MediaInfo(has_video=True, has_audio=False, width=SIZE, height=SIZE, fps=25, duration_s=300)
    with pytest.raises(InvalidInput, match="sync_mode 'silence'") as info:
        SPEC.check_input(request, SPEC.args(), SPEC.inputs[1], long_video)
    assert info.value.field == "video_key"
    SPEC.check_input(request.model_copy(update={"sync_mode": "loop"}), SPEC.args(), SPEC.inputs[1], long_video)


def test_the_numbered_clip_reads_back_its_indices(numbered) -> None:
    """The grey levels survive H.264 well enough to read indices back (guards the tests above)."""
    assert shown_indices(numbered["video"]) == list(range(VIDEO_FRAMES))

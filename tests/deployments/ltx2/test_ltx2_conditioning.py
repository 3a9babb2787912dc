"""Keyframes and video extension on tiny random components (CPU, no Ray, no Hub).

Random weights cannot draw an image, so a decoded frame says nothing about whether it "looks like" a keyframe.
What is deterministic is the conditioning itself: the first frame's latent tokens are replaced by the encoded
start image and the end image rides along as clean keyframe tokens at the last latent frame, at every step. The
keyframe tests therefore compare, in latent space, what the transformer sees against the encoded start, end and
a third image. An extension's output keeps the input's own frames, so those are compared in pixels.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
import torch

from deployments.contract import JobSpec
from deployments.ltx2 import conditioning
from deployments.ltx2.args import LTX2Args
from deployments.ltx2.request import LTX2Request
from deployments.ltx2.runner import LTX2Runner
from deployments.ltx2.spec import plan
from deployments.media import decode_audio
from serve_app.errors import InvalidInput
from tests.deployments.ltx2.tiny_runs import (
    FPS,
    INPUT_FRAMES,
    SIZE,
    FakeReporter,
    TransformerInputs,
    decoded,
    encoded_tokens,
    nearest,
)

FRAMES = 17  # 3 latent frames of 2x2 tokens with the tiny VAE (8x temporal)


@pytest.fixture(scope="module")
def args() -> LTX2Args:
    return LTX2Args(allow_random_weights=True, device="cpu", max_prompt_tokens=32, pro_steps=2)


@pytest.fixture(scope="module")
def runner(args: LTX2Args) -> LTX2Runner:
    return LTX2Runner(args)


def run(runner: LTX2Runner, workdir: Path, inputs: dict[str, Path], **params: Any) -> Any:
    base = {"prompt": "a ball", "width": SIZE, "height": SIZE, "num_frames": FRAMES, "fps": FPS, "seed": 3}
    workdir.mkdir(parents=True, exist_ok=True)
    job = JobSpec(job_id="j", model="ltx2", attempt=1, params=base | params, output_key="jobs/j/output.mp4")
    return runner.run(job, inputs, workdir, FakeReporter())


def test_first_and_last_frame_condition_every_step(runner: LTX2Runner, images: dict[str, Path]) -> None:
    encoded = {name: encoded_tokens(runner, path, num_frames=FRAMES) for name, path in images.items()}
    seen = TransformerInputs(runner.pipe.transformer)
    try:
        out = run(
            runner,
            Path(images["red"]).parent / "both",
            {"image": images["red"], "end_image": images["blue"]},
            image_to_video=True,
            end_image=True,
        )
    finally:
        seen.close()
    base = 3 * 4  # 3 latent frames x 2x2 tokens; the end keyframe's 4 tokens are appended after them
    assert len(seen.tokens) == 8 and all(t.shape[0] == base + 4 for t in seen.tokens)
    for tokens in seen.tokens:  # every step: first latent frame = start image, keyframe tokens = end image
        assert nearest(tokens[:4], encoded) == "red"
        assert nearest(tokens[base:], encoded) == "blue"
        torch.testing.assert_close(tokens[:4], encoded["red"], atol=1e-5, rtol=0)
        torch.testing.assert_close(tokens[base:], encoded["blue"], atol=1e-5, rtol=0)
    # the keyframe sits in the last latent frame: pixel frame (3 - 2) * 8 + 1 = 9 of 17, in seconds
    assert torch.allclose(seen.times[0][base:], torch.full((4,), 9 / FPS))
    assert out.details["end_image"] is True and out.details["image_to_video"] is True


def test_last_frame_alone_leaves_the_first_frame_free(runner: LTX2Runner, images: dict[str, Path]) -> None:
    encoded = {name: encoded_tokens(runner, path, num_frames=FRAMES) for name, path in images.items()}
    seen = TransformerInputs(runner.pipe.transformer)
    try:
        run(runner, Path(images["red"]).parent / "last", {"end_image": images["green"]}, end_image=True)
    finally:
        seen.close()
    first, last = seen.tokens[0], seen.tokens[-1]
    assert nearest(last[12:], encoded) == "green"
    torch.testing.assert_close(last[12:], encoded["green"], atol=1e-5, rtol=0)
    assert not torch.allclose(first[:4], last[:4])  # the first latent frame is denoised, not pinned


def test_end_image_changes_the_clip_and_the_same_inputs_repeat(
    runner: LTX2Runner, images: dict[str, Path], tmp_path: Path
) -> None:
    frames = {}
    for name, end in (("blue", "blue"), ("again", "blue"), ("green", "green")):
        out = run(
            runner,
            tmp_path / name,
            {"image": images["red"], "end_image": images[end]},
            image_to_video=True,
            end_image=True,
        )
        frames[name] = decoded(out.video_path)
    assert frames["blue"].shape == (FRAMES, SIZE, SIZE, 3)
    assert np.abs(frames["blue"] - frames["again"]).mean() < 1.0  # same seed: the same clip (codec aside)
    assert np.abs(frames["blue"][-1] - frames["green"][-1]).mean() > 1.0


def extension_params(extend: str, seconds: float, quality: str = "fast") -> dict[str, Any]:
    body = {
        "model": "ltx2",
        "video_key": "uploads/k/in.mp4",
        "extend": extend,
        "duration": seconds,
        "quality": quality,
        "seed": 3,
    }
    return plan(LTX2Request.model_validate(body), LTX2Args(allow_random_weights=True))


def stream_durations(path: Path) -> tuple[int, float, float]:
    with av.open(str(path)) as container:
        video, audio = container.streams.video[0], container.streams.audio[0]
        frames = sum(1 for _ in container.decode(video=0))
        return frames, float(video.duration * video.time_base), float(audio.duration * audio.time_base)


@pytest.mark.parametrize("quality", ["fast", "pro"])
def test_extend_end_keeps_the_input_and_adds_frames(
    runner: LTX2Runner, input_video: Path, tmp_path: Path, quality: str
) -> None:
    params = extension_params("end", 0.34, quality)  # 8 frames at 24 fps
    assert params["num_frames"] == 8
    out = run(runner, tmp_path, {"video": input_video}, **params)
    frames, _, audio_s = stream_durations(out.video_path)
    assert frames == INPUT_FRAMES + 8
    # the input's audio (its 440 Hz tone) is kept under the input's frames, then the new frames' audio follows
    assert audio_s > INPUT_FRAMES / FPS
    kept = decode_audio(out.video_path, sample_rate=24000)[0, 2400:18000]
    assert np.argmax(np.abs(np.fft.rfft(kept))) * 24000 / len(kept) == pytest.approx(440, abs=5)
    result, source = decoded(out.video_path), decoded(input_video)
    assert np.abs(result[:INPUT_FRAMES] - source).mean(axis=(1, 2, 3)).max() < 3  # the input, within the codec
    assert (
        out.details.items()
        >= {
            "num_frames": 28,
            "input_frames": 20,
            "added_frames": 8,
            "context_frames": 17,
            "rendered_frames": 25,
            "width": SIZE,
            "height": SIZE,
            "extend": "end",
        }.items()
    )


def test_extend_start_puts_new_frames_before_the_input(runner: LTX2Runner, input_video: Path, tmp_path: Path) -> None:
    params = extension_params("start", 0.34)  # 8k+1 = 9 frames
    out = run(runner, tmp_path, {"video": input_video}, **params)
    result, source = decoded(out.video_path), decoded(input_video)
    assert len(result) == 9 + INPUT_FRAMES
    assert np.abs(result[9:] - source).mean(axis=(1, 2, 3)).max() < 3
    assert (out.details["added_frames"], out.details["rendered_frames"]) == (9, 33)


def test_extension_conditions_on_the_frames_next_to_the_new_ones(args: LTX2Args, input_video: Path) -> None:
    end = conditioning.prepare(
        conditioning.LTX2Params(**extension_params("end", 0.34)), {"video": input_video}, args, 24000
    )
    start = conditioning.prepare(
        conditioning.LTX2Params(**extension_params("start", 0.34)), {"video": input_video}, args, 24000
    )
    assert end is not None and start is not None
    (end_condition,), (start_condition,) = end.conditions, start.conditions
    assert (end_condition.index, len(end_condition.frames), end_condition.strength) == (0, 17, 1.0)
    np.testing.assert_array_equal(end_condition.frames, end.source[3:])
    assert (start_condition.index, len(start_condition.frames)) == (2, 17)  # latent 2 starts at pixel frame 9
    np.testing.assert_array_equal(start_condition.frames, start.source[:17])


def test_input_fps_is_resampled_to_the_request_fps(args: LTX2Args, input_video: Path) -> None:
    params = conditioning.LTX2Params(**(extension_params("end", 0.34) | {"fps": 12}))
    extended = conditioning.prepare(params, {"video": input_video}, args, 24000)
    assert extended is not None and extended.details["input_frames"] == INPUT_FRAMES // 2  # every other frame


def test_extension_past_the_frame_limit_is_refused(input_video: Path) -> None:
    small = LTX2Args(allow_random_weights=True, device="cpu", max_extend_frames=24)
    with pytest.raises(InvalidInput) as err:
        conditioning.prepare(
            conditioning.LTX2Params(**extension_params("end", 0.34)), {"video": input_video}, small, 24000
        )
    assert err.value.field == "video"

"""Keyframes and video extension on each LTX-2 release (2.0, 2.3, 2.5), on tiny random components (CPU, no Ray,
no Hub): the condition pipelines use the release's schedulers and recipe, a first+last keyframe job pins both
images in latent space in `pro`, an extension keeps the input and muxes its audio at the release's vocoder rate
(or drops all audio with `generate_audio: false`), and 2.5 sizes a keyframe clip with its duration head.

As in test_ltx2_conditioning.py, random weights cannot draw an image, so keyframes are checked where the
conditioning is deterministic: the tokens the transformer sees."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from deployments.contract import JobSpec, RunOutput
from deployments.ltx2.args import LTX2Args
from deployments.ltx2.recipes import RECIPES, transformer_calls_per_step
from deployments.ltx2.request import LTX2Request
from deployments.ltx2.runner import LTX2Runner
from deployments.ltx2.spec import plan
from deployments.media import decode_audio
from tests.deployments.ltx2.tiny_runs import (
    FPS,
    INPUT_FRAMES,
    SAMPLE_RATES,
    SIZE,
    TONE_HZ,
    VERSIONS,
    FakeReporter,
    TransformerInputs,
    decoded,
    encoded_tokens,
    nearest,
    streams,
)

PRO_STEPS = 2


def version_args(version: str) -> LTX2Args:
    # max_duration_s 1 s keeps 2.5's duration-head clips short (at most 25 frames at 24 fps)
    return LTX2Args(
        allow_random_weights=True,
        device="cpu",
        model_version=version,
        pro_steps=PRO_STEPS,
        max_prompt_tokens=32,
        min_duration_s=0.3,
        max_duration_s=1.0,
    )


@pytest.fixture(scope="module")
def runners() -> dict[str, LTX2Runner]:
    return {version: LTX2Runner(version_args(version)) for version in VERSIONS}


def run_job(runner: LTX2Runner, workdir: Path, inputs: dict[str, Path], params: dict[str, Any]) -> RunOutput:
    workdir.mkdir(parents=True, exist_ok=True)
    job = JobSpec(job_id="j", model="ltx2", attempt=1, params=params, output_key="jobs/j/output.mp4")
    return runner.run(job, inputs, workdir, FakeReporter())


def planned(runner: LTX2Runner, **body: Any) -> dict[str, Any]:
    """A request's params as the gateway plans them on this runner's deployment settings."""
    return plan(LTX2Request.model_validate({"model": "ltx2", "seed": 3, **body}), runner.args)


@pytest.mark.parametrize("version", VERSIONS)
def test_condition_pipelines_share_the_releases_schedulers(runners: dict[str, LTX2Runner], version: str) -> None:
    runner = runners[version]
    for distilled in (False, True):
        assert runner._condition_pipes[distilled].scheduler is runner._pipes[False, distilled].scheduler
        assert runner._condition_pipes[distilled].transformer is runner.pipe.transformer  # no weights copied
    full = runner._condition_pipes[False].scheduler.config
    assert (full.use_dynamic_shifting, full.shift_terminal) == ((True, 0.1) if version == "2.5" else (False, None))


@pytest.mark.parametrize("version", VERSIONS)
def test_first_and_last_keyframes_in_pro_follow_the_releases_recipe(
    runners: dict[str, LTX2Runner], version: str, images: dict[str, Path], tmp_path: Path
) -> None:
    runner = runners[version]
    keyframes = {"image_key": "uploads/k/a.png", "end_image_key": "uploads/k/b.png"}
    params = planned(runner, quality="pro", width=SIZE, height=SIZE, duration=0.34, **keyframes)
    assert (params["num_frames"], params["image_to_video"], params["end_image"]) == (9, True, True)
    seen = TransformerInputs(runner.pipe.transformer)
    try:
        out = run_job(runner, tmp_path, {"image": images["red"], "end_image": images["blue"]}, params)
    finally:
        seen.close()
    first, second = RECIPES[version, "pro"].stages
    stage_1 = [2] + [1] * (transformer_calls_per_step(first) - 1)  # CFG batch (+ STG and modality on 2.3/2.5)
    assert seen.batches == stage_1 * PRO_STEPS + [1] * second.steps
    # stage 1 renders at half size (1x1 token per latent frame), stage 2 at full size (2x2); 2 latent frames each
    for size, calls, base in ((SIZE // 2, seen.tokens[: len(stage_1) * PRO_STEPS], 2), (SIZE, seen.tokens[-3:], 8)):
        encoded = {name: encoded_tokens(runner, path, size) for name, path in images.items()}
        per_frame = base // 2
        for tokens in calls:
            assert tokens.shape[0] == base + per_frame  # the end image's tokens are appended
            assert nearest(tokens[:per_frame], encoded) == "red" and nearest(tokens[base:], encoded) == "blue"
            torch.testing.assert_close(tokens[:per_frame], encoded["red"], atol=1e-5, rtol=0)
            torch.testing.assert_close(tokens[base:], encoded["blue"], atol=1e-5, rtol=0)
    assert streams(out.video_path) == {"frames": 9, "sample_rate": SAMPLE_RATES[version]}
    assert out.details.items() >= {"model_version": version, "end_image": True, "quality": "pro"}.items()


@pytest.mark.parametrize("version", VERSIONS)
def test_extension_keeps_the_input_with_its_audio_at_the_releases_rate(
    runners: dict[str, LTX2Runner], version: str, input_video: Path, tmp_path: Path
) -> None:
    params = planned(runners[version], video_key="uploads/k/in.mp4", duration=0.34)  # 8 frames after the end
    out = run_job(runners[version], tmp_path, {"video": input_video}, params)
    rate = SAMPLE_RATES[version]
    assert streams(out.video_path) == {"frames": INPUT_FRAMES + 8, "sample_rate": rate}
    result, source = decoded(out.video_path), decoded(input_video)
    assert np.abs(result[:INPUT_FRAMES] - source).mean(axis=(1, 2, 3)).max() < 3  # the input, within the codec
    kept = decode_audio(out.video_path, sample_rate=rate)[0, rate // 10 : rate * 3 // 4]  # under the input frames
    assert np.argmax(np.abs(np.fft.rfft(kept))) * rate / len(kept) == pytest.approx(TONE_HZ, abs=5)
    assert out.details.items() >= {"extend": "end", "added_frames": 8, "sample_rate": rate}.items()


@pytest.mark.parametrize("version", VERSIONS)
def test_extension_without_audio_has_no_audio_stream(
    runners: dict[str, LTX2Runner], version: str, input_video: Path, tmp_path: Path
) -> None:
    params = planned(
        runners[version], video_key="uploads/k/in.mp4", extend="start", duration=0.34, generate_audio=False
    )
    out = run_job(runners[version], tmp_path, {"video": input_video}, params)
    assert streams(out.video_path) == {"frames": 9 + INPUT_FRAMES, "sample_rate": None}  # the input's audio too
    assert np.abs(decoded(out.video_path)[9:] - decoded(input_video)).mean(axis=(1, 2, 3)).max() < 3
    assert out.details.items() >= {"generate_audio": False, "sample_rate": None, "added_frames": 9}.items()


def test_keyframes_on_2_5_without_duration_take_the_duration_heads_length(
    runners: dict[str, LTX2Runner], images: dict[str, Path], tmp_path: Path
) -> None:
    runner = runners["2.5"]
    params = planned(runner, end_image_key="uploads/k/b.png", width=SIZE, height=SIZE)  # no prompt, no duration
    assert (params["num_frames"], params["prompt"]) == ("auto", runner.args.default_prompt)
    seen = TransformerInputs(runner.pipe.transformer)
    try:
        out = run_job(runner, tmp_path, {"end_image": images["green"]}, params)
    finally:
        seen.close()
    frames = out.details["num_frames"]
    assert (frames - 1) % 8 == 0 and 0.3 * FPS <= frames <= 1.0 * FPS + 8  # within min/max_duration_s, on 8k+1
    assert streams(out.video_path)["frames"] == frames
    base = 4 * ((frames - 1) // 8 + 1)  # 2x2 tokens per latent frame of the chosen length
    encoded = {name: encoded_tokens(runner, path, SIZE) for name, path in images.items()}
    torch.testing.assert_close(seen.tokens[-1][base:], encoded["green"], atol=1e-5, rtol=0)
    # at the start of the last latent frame of that length: pixel frame (latent frames - 2) * 8 + 1
    assert torch.allclose(seen.times[-1][base:], torch.full((4,), ((frames - 1) // 8 - 1) * 8 + 1) / FPS)


def test_an_extension_needs_its_duration_on_every_release(runners: dict[str, LTX2Runner]) -> None:
    with pytest.raises(ValueError, match="duration: an extension needs the seconds to add"):
        LTX2Request.model_validate({"model": "ltx2", "video_key": "uploads/k/in.mp4"})
    # with it, every release plans the same added frames (no duration head for an extension)
    assert {planned(r, video_key="uploads/k/in.mp4", duration=1)["num_frames"] for r in runners.values()} == {24}

"""Each LTX-2 release (2.0, 2.3, 2.5) on its own tiny random components (CPU, no Ray, no Hub): the recipe's
transformer calls, seeds, the audio stream and its rate, audio off, LTX-2.5's duration head, the 2.5 repo layout,
and LoRAs of another release refused at start-up."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from diffusers import LTX2Pipeline
from PIL import Image
from pydantic import ValidationError

from deployments.contract import RunOutput
from deployments.ltx2.args import LTX2Args
from deployments.ltx2.params import frames_for_duration
from deployments.ltx2.recipes import RECIPES, transformer_calls_per_step
from deployments.ltx2.request import LTX2Request
from deployments.ltx2.runner import LTX2Runner
from deployments.ltx2.spec import plan
from deployments.ltx2.tiny import build_tiny_components, build_tiny_upsampler
from tests.deployments.ltx2.tiny_runs import (
    SAMPLE_RATES,
    VERSIONS,
    FakeReporter,
    ForwardCounter,
    job,
    streams,
    write_lora,
)

PRO_STEPS, STAGE_2_STEPS, FAST_STEPS = 2, 3, 8


def version_args(version: str, **extra: Any) -> LTX2Args:
    base = {"allow_random_weights": True, "device": "cpu", "pro_steps": PRO_STEPS, "max_prompt_tokens": 32}
    return LTX2Args(**base, model_version=version, **extra)


@pytest.fixture(scope="module")
def runners() -> dict[str, LTX2Runner]:
    return {version: LTX2Runner(version_args(version)) for version in VERSIONS}


def render(runner: LTX2Runner, workdir: Path, **params: Any) -> RunOutput:
    workdir.mkdir(parents=True, exist_ok=True)
    return runner.run(job(**params), {}, workdir, FakeReporter())


@pytest.mark.parametrize("version", VERSIONS)
def test_fast_calls_the_transformer_once_per_step(runners: dict[str, LTX2Runner], version: str, tmp_path: Path) -> None:
    calls = ForwardCounter(runners[version].pipe.transformer)
    try:
        render(runners[version], tmp_path, quality="fast", num_frames=9)
    finally:
        calls.close()
    assert calls.batches == [1] * FAST_STEPS


@pytest.mark.parametrize(
    ("version", "stage_1_step"),
    [
        ("2.0", [2]),  # plain CFG: the negative prompt rides in the same call as a batch of 2
        ("2.3", [2, 1, 1]),  # CFG batch, then the STG pass and the modality-isolation pass
        ("2.5", [2, 1, 1]),
    ],
)
def test_pro_calls_the_transformer_as_its_recipe_says(
    runners: dict[str, LTX2Runner], version: str, stage_1_step: list[int], tmp_path: Path
) -> None:
    first, second = RECIPES[version, "pro"].stages
    assert transformer_calls_per_step(first) == len(stage_1_step)
    assert transformer_calls_per_step(second) == 1
    calls = ForwardCounter(runners[version].pipe.transformer)
    try:
        out = render(runners[version], tmp_path, quality="pro", num_frames=9)
    finally:
        calls.close()
    assert calls.batches == stage_1_step * PRO_STEPS + [1] * STAGE_2_STEPS
    assert out.details["stage_steps"] == [PRO_STEPS, STAGE_2_STEPS]


def test_the_recipe_table_spells_out_each_release() -> None:
    full_guidance = RECIPES["2.3", "pro"].stages[0].guidance
    assert dict(full_guidance) == {
        "guidance_scale": 3.0,
        "audio_guidance_scale": 7.0,
        "stg_scale": 1.0,
        "audio_stg_scale": 1.0,
        "modality_scale": 3.0,
        "audio_modality_scale": 3.0,
        "guidance_rescale": 0.7,
        "audio_guidance_rescale": 0.7,
        "spatio_temporal_guidance_blocks": (28,),
    }
    assert RECIPES["2.5", "pro"] == RECIPES["2.3", "pro"]
    assert RECIPES["2.0", "pro"].stages[0].steps == 40 and RECIPES["2.3", "pro"].stages[0].steps == 30
    assert {RECIPES[v, "fast"].stages[0].sigmas for v in VERSIONS} == {RECIPES["2.0", "fast"].stages[0].sigmas}


@pytest.mark.parametrize("version", VERSIONS)
def test_same_seed_same_clip_other_seed_other_clip(
    runners: dict[str, LTX2Runner], version: str, tmp_path: Path, encoded: list
) -> None:
    for i, seed in enumerate((5, 5, 6)):
        render(runners[version], tmp_path / str(i), seed=seed, num_frames=9)
    assert np.array_equal(encoded[0], encoded[1])
    assert not np.array_equal(encoded[0], encoded[2])


@pytest.mark.parametrize("version", VERSIONS)
def test_audio_is_muxed_at_the_vocoders_rate_or_left_out(
    runners: dict[str, LTX2Runner], version: str, tmp_path: Path
) -> None:
    runner = runners[version]
    with_audio = render(runner, tmp_path / "on", num_frames=9)
    assert streams(with_audio.video_path) == {"frames": 9, "sample_rate": SAMPLE_RATES[version]}
    assert with_audio.details["sample_rate"] == SAMPLE_RATES[version]
    vocoder, audio_vae = ForwardCounter(runner.pipe.vocoder), ForwardCounter(runner.pipe.audio_vae.decoder)
    try:
        silent = render(runner, tmp_path / "off", num_frames=9, generate_audio=False)
    finally:
        vocoder.close()
        audio_vae.close()
    assert (vocoder.batches, audio_vae.batches) == ([], [])  # the audio is never decoded
    assert streams(silent.video_path)["sample_rate"] is None
    assert streams(silent.video_path)["frames"] == 9
    assert silent.details["sample_rate"] is None and silent.details["generate_audio"] is False


def test_generate_audio_false_keeps_the_same_frames(
    runners: dict[str, LTX2Runner], tmp_path: Path, encoded: list
) -> None:
    """Our VAE decode without the audio decode yields the frames the pipeline itself decodes."""
    render(runners["2.3"], tmp_path / "on", num_frames=9)
    render(runners["2.3"], tmp_path / "off", num_frames=9, generate_audio=False)
    np.testing.assert_allclose(encoded[0], encoded[1], atol=1e-6, rtol=0)


def test_duration_head_picks_the_length_within_bounds(tmp_path: Path) -> None:
    fps = 16
    free = LTX2Runner(version_args("2.5", min_duration_s=1.0, max_duration_s=10.0))
    out = render(free, tmp_path / "free", num_frames="auto", fps=fps)
    frames = out.details["num_frames"]
    assert (frames - 1) % 8 == 0 and 1.0 * fps <= frames <= 10.0 * fps
    assert frames == 33  # the seeded tiny head says just over 2 s: 33 frames at 16 fps, on the 8k+1 grid
    assert streams(out.video_path)["frames"] == frames
    narrow = LTX2Runner(version_args("2.5", min_duration_s=3.0, max_duration_s=4.0))
    clamped = render(narrow, tmp_path / "narrow", num_frames="auto", fps=8, width=32, height=32)
    assert clamped.details["num_frames"] == 25  # 2 s raised to the 3 s floor (24 frames), snapped up onto 8k+1


def test_omitted_duration_is_auto_on_2_5_and_the_default_elsewhere() -> None:
    request = LTX2Request(model="ltx2", prompt="a red ball", generate_audio=False)
    assert plan(request, version_args("2.5"))["num_frames"] == "auto"
    for version in ("2.0", "2.3"):
        planned = plan(request, version_args(version))
        assert planned["num_frames"] == frames_for_duration(5.0, 24) == 121
        assert planned["generate_audio"] is False
    timed = LTX2Request(model="ltx2", prompt="a red ball", duration=2)
    assert plan(timed, version_args("2.5"))["num_frames"] == 49


def test_camera_motions_are_checked_against_the_release() -> None:
    version_args("2.3", camera_loras={"focus_shift": "/loras/ltx-2.3-22b-lora-focus-shift.safetensors"})
    with pytest.raises(ValidationError, match=r"\['focus_shift'\] not known for LTX-2.0"):
        version_args("2.0", camera_loras={"focus_shift": "/loras/focus.safetensors"})
    with pytest.raises(ValidationError, match=r"\['dolly_in'\] not known for LTX-2.5"):
        version_args("2.5", camera_loras={"dolly_in": "/loras/dolly.safetensors"})


def test_a_lora_named_for_another_release_fails_the_deploy() -> None:
    with pytest.raises(ValidationError, match=r"is a LoRA for LTX-2\.0, but this deployment serves LTX-2\.3"):
        version_args("2.3", camera_loras={"dolly_in": "hf://Lightricks/LTX-2-19b-LoRA-Camera-Control-Dolly-In"})
    with pytest.raises(ValidationError, match=r"distilled_lora: .* is a LoRA for LTX-2\.5"):
        version_args("2.0", distilled_lora="/w/ltx-2.5-22b-distilled-lora-450-bf16.safetensors")


def test_a_lora_file_of_another_release_is_refused_at_start_up(tmp_path: Path) -> None:
    lora_dir = tmp_path / "dolly"  # the source names no release; the file inside it does
    lora_dir.mkdir()
    write_lora(lora_dir / "ltx-2-19b-lora-camera-control-dolly-in.safetensors")
    with pytest.raises(ValueError, match=r"'dolly_in'.* is a LoRA for LTX-2\.0, but this deployment serves LTX-2\.3"):
        LTX2Runner(version_args("2.3", camera_loras={"dolly_in": str(lora_dir)}))


def test_2_5_loads_transformer_full_with_its_schedule(tmp_path: Path) -> None:
    weights = tmp_path / "ltx-2.5"
    LTX2Pipeline(**build_tiny_components("2.5")).save_pretrained(weights)
    full = build_tiny_components("2.5", seed=1)["transformer"]  # other weights than transformer/
    full.save_pretrained(weights / "transformer_full")
    lora = write_lora(tmp_path / "ltx-2.5-22b-distilled-lora-450-bf16.safetensors", scale=0.1)
    args = LTX2Args(
        weights=str(weights), model_version="2.5", distilled_lora=str(lora), qualities=("fast",), device="cpu"
    )
    runner = LTX2Runner(args)
    loaded = runner.pipe.transformer.transformer_blocks[0].ff.net[2]
    loaded = getattr(loaded, "base_layer", loaded)
    assert torch.equal(loaded.weight, full.transformer_blocks[0].ff.net[2].weight)
    assert type(runner.pipe.text_encoder).__name__ == "Gemma4UnifiedForConditionalGeneration"
    assert runner.pipe.duration_head is not None
    full_schedule = runner._pipes[False, False].scheduler.config
    assert (full_schedule.use_dynamic_shifting, full_schedule.shift_terminal) == (True, 0.1)
    distilled_schedule = runner._pipes[False, True].scheduler.config
    assert (distilled_schedule.use_dynamic_shifting, distilled_schedule.shift_terminal) == (False, None)


def test_real_weights_shallower_than_the_stg_block_fail_at_start_up(tmp_path: Path) -> None:
    weights = tmp_path / "ltx-2.3"
    LTX2Pipeline(**build_tiny_components("2.3")).save_pretrained(weights)
    build_tiny_upsampler().save_pretrained(weights / "latent_upsampler")
    lora = write_lora(tmp_path / "ltx-2.3-22b-distilled-lora-384.safetensors", scale=0.1)
    args = LTX2Args(weights=str(weights), model_version="2.3", distilled_lora=str(lora), device="cpu")
    # 2.3's pro perturbs block 28; the tiny transformer has 2 (only random weights may map the block onto them)
    with pytest.raises(ValueError, match=r"STG blocks \[28\] need a transformer of 29\+ layers"):
        LTX2Runner(args)
    LTX2Runner(args.model_copy(update={"qualities": ("fast",)}))  # fast runs no STG: the same weights serve it


@pytest.mark.parametrize(("version", "quality"), [("2.3", "pro"), ("2.5", "fast")])
def test_image_to_video_on_the_newer_releases(
    runners: dict[str, LTX2Runner], version: str, quality: str, tmp_path: Path
) -> None:
    image = tmp_path / "red.png"
    Image.new("RGB", (90, 30), (255, 0, 0)).save(image)
    tmp_path.joinpath("out").mkdir()
    out = runners[version].run(
        job(quality=quality, num_frames=9, image_to_video=True), {"image": image}, tmp_path / "out", FakeReporter()
    )
    assert out.details["image_to_video"] is True
    assert streams(out.video_path) == {"frames": 9, "sample_rate": SAMPLE_RATES[version]}


def test_the_vocoder_runs_in_float32_in_a_bfloat16_pipeline(tmp_path: Path) -> None:
    runner = LTX2Runner(version_args("2.3", dtype="bfloat16"))
    assert runner.pipe.transformer.dtype == torch.bfloat16 and runner.pipe.audio_vae.dtype == torch.bfloat16
    assert {p.dtype for p in runner.pipe.vocoder.parameters()} == {torch.float32}
    seen: list[torch.dtype] = []
    hook = runner.pipe.vocoder.vocoder.register_forward_pre_hook(lambda module, args: seen.append(args[0].dtype))
    try:
        out = render(runner, tmp_path, num_frames=9)
    finally:
        hook.remove()
    assert seen == [torch.float32]  # the bf16 mel was cast on the way in
    assert streams(out.video_path) == {"frames": 9, "sample_rate": 48000}

"""LTX2Runner end to end on tiny random components (CPU, no Ray, no Hub): what a job gets back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
import torch
from diffusers import LTX2Pipeline
from PIL import Image

from deployments.contract import RANDOM_WEIGHTS, RunOutput
from deployments.ltx2.args import LTX2Args
from deployments.ltx2.runner import LTX2Runner
from deployments.ltx2.tiny import build_tiny_components, build_tiny_upsampler
from serve_app.errors import InvalidInput, JobCancelled
from tests.deployments.ltx2.tiny_runs import FakeReporter, ForwardCounter, job, write_lora

PRO_STEPS = 2  # explicit `pro_steps` override: the recipe's 40 steps are pointless on random weights
FAST_STEPS = 8  # fixed by the distilled sigma schedule
STAGE_2_STEPS = 3


def save_tiny_pipeline(path: Path) -> None:
    """The in-code tiny components written as a diffusers-layout dir, as a real deployment would ship them."""
    LTX2Pipeline(**build_tiny_components()).save_pretrained(path)


@pytest.fixture(scope="module")
def lora_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_lora(tmp_path_factory.mktemp("lora") / "dolly_in.safetensors")


@pytest.fixture(scope="module")
def runner(lora_file: Path) -> LTX2Runner:
    args = LTX2Args(
        allow_random_weights=True,
        device="cpu",
        pro_steps=PRO_STEPS,
        max_prompt_tokens=32,
        camera_loras={"dolly_in": str(lora_file)},
    )
    return LTX2Runner(args)


def render(
    runner: LTX2Runner, workdir: Path, reporter: FakeReporter | None = None, inputs: dict | None = None, **params: Any
) -> RunOutput:
    workdir.mkdir(parents=True, exist_ok=True)
    return runner.run(job(**params), inputs or {}, workdir, reporter or FakeReporter())


def probe(path: Path) -> dict[str, Any]:
    with av.open(str(path)) as container:
        video, audio = container.streams.video[0], container.streams.audio[0]
        return {
            "video_codec": video.codec_context.name,
            "size": (video.codec_context.width, video.codec_context.height),
            "fps": video.average_rate,
            "audio_codec": audio.codec_context.name,
            "sample_rate": audio.codec_context.sample_rate,
            "frames": sum(1 for _ in container.decode(video=0)),
        }


def test_text_to_video_fast_writes_mp4_with_audio(runner: LTX2Runner, tmp_path: Path) -> None:
    reporter = FakeReporter()
    out = render(runner, tmp_path, reporter, width=96, height=64, num_frames=17, fps=12)
    info = probe(out.video_path)
    assert out.video_path == tmp_path / "output.mp4"
    assert info == {
        "video_codec": "h264",
        "size": (96, 64),
        "fps": 12,
        "audio_codec": "aac",
        "sample_rate": 24000,  # the vocoder's rate, not the audio VAE's 16 kHz
        "frames": 17,
    }
    assert out.details | {"weights": None} == {
        "width": 96,
        "height": 64,
        "num_frames": 17,
        "fps": 12,
        "seed": 1,
        "quality": "fast",
        "camera_lora": "static",
        "image_to_video": False,
        "generate_audio": True,
        "end_image": False,
        "extend": None,
        "steps": FAST_STEPS,
        "stage_steps": [FAST_STEPS],
        "sample_rate": 24000,
        "model_version": "2.0",
        "weights": None,
    }
    assert runner.weights == out.details["weights"] == RANDOM_WEIGHTS
    assert reporter.stages() == ["encoding_prompt", "denoising", "decoding", "encoding_video"]
    progress = [p for _, p in reporter.reports]
    assert progress == sorted(progress) and progress[0] >= 0 and progress[-1] < 1


def test_image_to_video_uses_the_cropped_image(runner: LTX2Runner, tmp_path: Path, encoded: list) -> None:
    paths = {}
    for name, color in (("red", (255, 0, 0)), ("blue", (0, 0, 255))):
        paths[name] = tmp_path / f"{name}.png"
        Image.new("RGB", (90, 30), color).save(paths[name])  # 3:1, cropped to the 1:1 target
    outs = {
        name: render(runner, tmp_path / name, inputs={"image": path}, image_to_video=True)
        for name, path in paths.items()
    }
    info = probe(outs["red"].video_path)
    assert (info["frames"], info["size"], info["audio_codec"]) == (9, (64, 64), "aac")
    assert outs["red"].details["image_to_video"] is True
    assert not np.array_equal(encoded[0], encoded[1])
    two_stage = render(
        runner,
        tmp_path / "pro",
        inputs={"image": paths["red"]},
        image_to_video=True,
        quality="pro",
        width=128,
        height=64,
    )
    assert probe(two_stage.video_path)["size"] == (128, 64)


def test_image_to_video_without_image_is_rejected(runner: LTX2Runner, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput) as err:
        render(runner, tmp_path, image_to_video=True)
    assert err.value.field == "image"


def test_fast_runs_the_transformer_once_per_step(runner: LTX2Runner, tmp_path: Path) -> None:
    calls = ForwardCounter(runner.pipe.transformer)
    try:
        render(runner, tmp_path, quality="fast")
    finally:
        calls.close()
    assert calls.batches == [1] * FAST_STEPS  # no CFG batch, no STG or modality pass


def test_pro_runs_cfg_stage_upsampler_and_distilled_stage(runner: LTX2Runner, tmp_path: Path) -> None:
    calls, upsamples = ForwardCounter(runner.pipe.transformer), ForwardCounter(runner.upsample_pipe.latent_upsampler)
    reporter = FakeReporter()
    try:
        out = render(runner, tmp_path, reporter, quality="pro", width=64, height=64)
    finally:
        calls.close()
        upsamples.close()
    # Stage 1: CFG as one batch-2 call per step. Stage 2: guidance off, one call per step.
    assert calls.batches == [2] * PRO_STEPS + [1] * STAGE_2_STEPS
    assert upsamples.batches == [1]
    assert probe(out.video_path)["size"] == (64, 64)
    assert out.details["stage_steps"] == [PRO_STEPS, STAGE_2_STEPS]
    assert reporter.stages() == [
        "encoding_prompt",
        "denoising",
        "upsampling",
        "denoising",
        "decoding",
        "encoding_video",
    ]


def test_same_seed_same_frames_other_seed_other_frames(runner: LTX2Runner, tmp_path: Path, encoded: list) -> None:
    for i, seed in enumerate((5, 5, 6)):
        render(runner, tmp_path / str(i), seed=seed)
    assert np.array_equal(encoded[0], encoded[1])
    assert not np.array_equal(encoded[0], encoded[2])


def test_camera_lora_changes_output_and_static_restores_base(runner: LTX2Runner, tmp_path: Path, encoded: list) -> None:
    render(runner, tmp_path / "a", camera_lora="static")
    moved = render(runner, tmp_path / "b", camera_lora="dolly_in")
    render(runner, tmp_path / "c", camera_lora="static")
    base, with_lora, again = encoded
    assert moved.details["camera_lora"] == "dolly_in"
    assert not np.array_equal(base, with_lora)
    assert np.array_equal(base, again)


def test_unconfigured_camera_motion_is_rejected_before_the_model(runner: LTX2Runner, tmp_path: Path) -> None:
    calls = ForwardCounter(runner.pipe.text_encoder)
    try:
        with pytest.raises(InvalidInput) as err:
            render(runner, tmp_path, camera_lora="jib_up")
    finally:
        calls.close()
    assert err.value.field == "camera_lora"
    assert "jib_up" in err.value.message and "dolly_in" in err.value.message
    assert calls.batches == []


def test_cancel_in_the_step_callback_stops_the_job(runner: LTX2Runner, tmp_path: Path) -> None:
    calls = ForwardCounter(runner.pipe.transformer)
    try:
        with pytest.raises(JobCancelled):
            render(runner, tmp_path, FakeReporter(cancel_after=3))
    finally:
        calls.close()
    assert len(calls.batches) == 3  # stopped right after step 3, before decoding
    assert not (tmp_path / "output.mp4").exists()


def test_no_weights_without_random_opt_in_fails_clearly() -> None:
    with pytest.raises(ValueError, match="no weights configured"):
        LTX2Runner(LTX2Args(device="cpu"))


def test_quality_not_served_is_rejected(lora_file: Path, tmp_path: Path) -> None:
    fast_only = LTX2Runner(LTX2Args(allow_random_weights=True, device="cpu", qualities=("fast",)))
    with pytest.raises(InvalidInput) as err:
        render(fast_only, tmp_path, quality="pro", width=64, height=64)
    assert err.value.field == "quality"


def test_adapters_switch_per_stage(lora_file: Path, tmp_path: Path) -> None:
    args = LTX2Args(
        allow_random_weights=True,
        device="cpu",
        pro_steps=PRO_STEPS,
        max_prompt_tokens=32,
        distilled_lora=str(write_lora(tmp_path / "distilled.safetensors", scale=0.1)),
        camera_loras={"dolly_in": str(lora_file)},
    )
    lora_runner = LTX2Runner(args)
    layer = lora_runner.pipe.transformer.transformer_blocks[0].attn1.to_q  # a PEFT LoRA layer now
    seen: list[tuple[str, ...]] = []

    def record(module: torch.nn.Module, args: tuple, kwargs: dict) -> None:
        seen.append(() if layer.disable_adapters else tuple(sorted(layer.active_adapters)))

    handle = lora_runner.pipe.transformer.register_forward_pre_hook(record, with_kwargs=True)
    try:
        render(lora_runner, tmp_path / "a", quality="pro", width=64, height=64)
        render(lora_runner, tmp_path / "b", quality="pro", width=64, height=64, camera_lora="dolly_in")
        render(lora_runner, tmp_path / "c", quality="fast")
    finally:
        handle.remove()
    # Full model with CFG in stage 1; the distilled LoRA only where the recipe is distilled.
    assert seen == (
        [()] * PRO_STEPS
        + [("distilled",)] * STAGE_2_STEPS
        + [("dolly_in",)] * PRO_STEPS
        + [("distilled", "dolly_in")] * STAGE_2_STEPS
        + [("distilled",)] * FAST_STEPS
    )


def test_loads_a_local_diffusers_layout_dir(runner: LTX2Runner, tmp_path: Path, encoded: list) -> None:
    weights = tmp_path / "weights"
    save_tiny_pipeline(weights)
    local = LTX2Runner(
        LTX2Args(
            weights=str(weights), transformer_kind="distilled", qualities=("fast",), device="cpu", max_prompt_tokens=32
        )
    )
    assert local.weights == str(weights)
    render(local, tmp_path / "a")
    render(runner, tmp_path / "b")
    from_dir, in_code = encoded
    # Same seeded weights, loaded through from_pretrained; float32 kernels may round a last bit differently
    np.testing.assert_allclose(from_dir, in_code, atol=1e-5, rtol=0)


def test_fp8_storage_and_vae_tiling_keep_loras_working(lora_file: Path, tmp_path: Path, encoded: list) -> None:
    args = LTX2Args(
        allow_random_weights=True,
        device="cpu",
        max_prompt_tokens=32,
        fp8_layerwise=True,
        vae_tiling=True,
        camera_loras={"dolly_in": str(lora_file)},
    )
    small = LTX2Runner(args)
    to_q = small.pipe.transformer.transformer_blocks[0].attn1.to_q
    assert to_q.base_layer.weight.dtype == torch.float8_e4m3fn
    assert to_q.lora_A["dolly_in"].weight.dtype == torch.float32  # LoRA layers are never stored in fp8
    assert small.pipe.vae.use_tiling
    base = render(small, tmp_path / "a")
    render(small, tmp_path / "b", camera_lora="dolly_in")
    assert probe(base.video_path)["frames"] == 9
    assert not np.array_equal(encoded[0], encoded[1])


def test_local_dir_serves_pro_with_upsampler_lora_dir_and_separate_text_encoder(tmp_path: Path) -> None:
    weights = tmp_path / "weights"
    save_tiny_pipeline(weights)
    build_tiny_upsampler().save_pretrained(weights / "latent_upsampler")  # the default upsampler location
    lora_dir = tmp_path / "distilled_lora"
    lora_dir.mkdir()
    write_lora(lora_dir / "ltx-2-19b-distilled-lora-384.safetensors", scale=0.1)
    args = LTX2Args(
        weights=str(weights),
        distilled_lora=str(lora_dir),  # a dir holding exactly one .safetensors file
        text_encoder=str(weights),  # diffusers layout: text_encoder/ + tokenizer/
        pro_steps=PRO_STEPS,
        device="cpu",
        max_prompt_tokens=32,
    )
    local = LTX2Runner(args)
    assert local.pipe.get_list_adapters() == {"transformer": ["distilled"]}
    out = render(local, tmp_path / "out", quality="pro", width=64, height=64)
    assert (probe(out.video_path)["size"], out.details["stage_steps"]) == ((64, 64), [PRO_STEPS, STAGE_2_STEPS])

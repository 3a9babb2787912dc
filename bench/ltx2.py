"""LTX-2 speed: seconds per denoising step and per clip, `fast` and `pro`, at the nominal 768x512x121 request.

    .venv/bin/python -m bench.ltx2 [--out bench/results_ltx2.md] [--repeats 3]

With CUDA: the real-size LTX-2.0 transformer (48 layers, random bf16 weights) is timed per step at the exact
latent geometry of the request; a clip's denoising time is steps x step time (text encoding, upsampler and VAE
decode are not included). Compare with the anchor from research/ltx2.md: sglang on one H100, LTX-2 distilled,
8 steps at 768x512x121, 9.52 s end to end of which 6.01 s denoising.

Without CUDA: the tiny random transformer at the same latent geometry, plus whole tiny-runner jobs (prompt to
mp4) at 768x512x121; the tiny VAE keeps the real 32x/8x compression. These CPU numbers are a regression guard
for our own code path only; they say nothing about real-model speed.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from diffusers import LTX2VideoTransformer3DModel

from deployments.base import JobSpec
from deployments.ltx2.args import LTX2Args
from deployments.ltx2.recipes import RECIPES
from deployments.ltx2.runner import LTX2Runner
from deployments.ltx2.tiny import build_tiny_components

WIDTH, HEIGHT, FRAMES, FPS = 768, 512, 121, 24
TEXT_TOKENS = 1024  # the pipeline pads every prompt to 1024 tokens
REAL_VAE = {"spatial": 32, "temporal": 8, "audio_latents_per_s": 16000 / 160 / 4}
# LTX-2.0's transformer as diffusers' conversion script configures it; every other argument is the default.
LTX2_0_TRANSFORMER = {
    "num_layers": 48,
    "num_attention_heads": 32,
    "attention_head_dim": 128,
    "cross_attention_dim": 4096,
    "audio_num_attention_heads": 32,
    "audio_attention_head_dim": 64,
    "audio_cross_attention_dim": 2048,
    "caption_channels": 3840,
    "rope_type": "split",
}
ANCHOR = "sglang, 1x H100, LTX-2 distilled 8 steps at 768x512x121: 9.52 s per clip, 6.01 s denoising (0.75 s/step)"


@dataclass(frozen=True)
class StepShape:
    """One kind of denoising step: the batch (2 under CFG) and the request size it renders at."""

    name: str
    batch: int
    width: int
    height: int


def step_shapes() -> dict[str, StepShape]:
    """fast: full size, batch 1. pro: stage 1 at half size with CFG (batch 2), stage 2 full size, batch 1."""
    first, _ = RECIPES["pro"].stages
    half = (WIDTH // first.size_divisor, HEIGHT // first.size_divisor)
    return {
        "fast": StepShape("fast (batch 1, 768x512)", 1, WIDTH, HEIGHT),
        "pro_stage_1": StepShape(f"pro stage 1 (batch 2, {half[0]}x{half[1]})", 2, *half),
        "pro_stage_2": StepShape("pro stage 2 (batch 1, 768x512)", 1, WIDTH, HEIGHT),
    }


def transformer_inputs(model: LTX2VideoTransformer3DModel, shape: StepShape, device: str) -> dict:
    """Random inputs with exactly the shapes the pipeline feeds the transformer for this request."""
    cfg, dtype, batch = model.config, model.dtype, shape.batch
    frames = (FRAMES - 1) // REAL_VAE["temporal"] + 1
    height, width = shape.height // REAL_VAE["spatial"], shape.width // REAL_VAE["spatial"]
    audio_frames = round(FRAMES / FPS * REAL_VAE["audio_latents_per_s"])
    text = torch.randn(batch, TEXT_TOKENS, cfg.caption_channels, device=device, dtype=dtype)
    timestep = torch.full((batch,), 500.0, device=device)
    return {
        "hidden_states": torch.randn(batch, frames * height * width, cfg.in_channels, device=device, dtype=dtype),
        "audio_hidden_states": torch.randn(batch, audio_frames, cfg.audio_in_channels, device=device, dtype=dtype),
        "encoder_hidden_states": text,
        "audio_encoder_hidden_states": text,
        "timestep": timestep,
        "sigma": timestep,
        "encoder_attention_mask": torch.ones(batch, TEXT_TOKENS, device=device, dtype=torch.long),
        "audio_encoder_attention_mask": torch.ones(batch, TEXT_TOKENS, device=device, dtype=torch.long),
        "num_frames": frames,
        "height": height,
        "width": width,
        "fps": float(FPS),
        "audio_num_frames": audio_frames,
        "video_coords": model.rope.prepare_video_coords(batch, frames, height, width, device, fps=float(FPS)),
        "audio_coords": model.audio_rope.prepare_audio_coords(batch, audio_frames, device),
        "use_cross_timestep": False,  # LTX-2.0
        "return_dict": False,
    }


def timed(fn: Callable[[], object], repeats: int, device: str) -> float:
    """Median seconds of `fn` after one warm-up call."""

    def once() -> float:
        start = time.perf_counter()
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    once()
    return statistics.median(once() for _ in range(repeats))


def build_transformer(device: str) -> LTX2VideoTransformer3DModel:
    """Real-size LTX-2.0 transformer in bf16 on CUDA (random weights), else the tiny one on CPU."""
    if device != "cuda":
        return build_tiny_components()["transformer"]
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)  # build in bf16 on the GPU: an fp32 build would need ~75 GB
    try:
        with torch.device("cuda"):
            return LTX2VideoTransformer3DModel(**LTX2_0_TRANSFORMER).eval()
    finally:
        torch.set_default_dtype(default)


def bench_steps(device: str, repeats: int) -> dict[str, float]:
    """Seconds per transformer call for each step kind (one call per step: fast and stage 2 run no guidance,
    pro stage 1 runs CFG as one batch-2 call)."""
    model = build_transformer(device)
    results = {}
    with torch.no_grad():
        for key, shape in step_shapes().items():
            inputs = transformer_inputs(model, shape, device)
            results[key] = timed(lambda inputs=inputs: model(**inputs), repeats, device)
    return results


def bench_cpu_clips(repeats: int) -> dict[str, float]:
    """Whole tiny-runner jobs (prompt encoding to mp4) at 768x512x121, with the recipes' full step counts."""
    runner = LTX2Runner(LTX2Args(allow_random_weights=True, device="cpu"))

    class _Silent:
        def report(self, stage: str, progress: float) -> None: ...

        def raise_if_cancelled(self) -> None: ...

    results = {}
    with tempfile.TemporaryDirectory() as workdir:
        for quality in ("fast", "pro"):
            params = {"prompt": "a red ball", "quality": quality, "width": WIDTH, "height": HEIGHT}
            params |= {"num_frames": FRAMES, "fps": FPS, "seed": 0}
            job = JobSpec(job_id="bench", model="ltx2", attempt=1, params=params, output_key="bench.mp4")
            results[quality] = timed(lambda job=job: runner.run(job, {}, Path(workdir), _Silent()), repeats, "cpu")
    return results


def clip_denoise_s(steps: dict[str, float]) -> dict[str, float]:
    """Denoising seconds per clip: each recipe's step counts times the measured step times."""
    fast, (pro_1, pro_2) = RECIPES["fast"].stages[0], RECIPES["pro"].stages
    return {
        "fast": fast.steps * steps["fast"],
        "pro": pro_1.steps * steps["pro_stage_1"] + pro_2.steps * steps["pro_stage_2"],
    }


def machine(device: str) -> str:
    """One line naming the hardware and the software versions."""
    import diffusers

    accel = torch.cuda.get_device_name() if device == "cuda" else f"CPU only, {torch.get_num_threads()} threads"
    versions = f"torch {torch.__version__}, diffusers {diffusers.__version__}"
    return f"{platform.node()} ({platform.machine()}, {accel}); {versions}"


def report(device: str, steps: dict[str, float], clips: dict[str, float] | None, note: str | None) -> str:
    """The results as a Markdown fragment."""
    model = "real-size LTX-2.0 transformer (48 layers, random bf16 weights)" if device == "cuda" else "tiny random"
    shapes = step_shapes()
    lines = [
        f"### LTX-2 ({'CUDA' if device == 'cuda' else 'CPU, regression guard only'})",
        "",
        f"- Machine: {machine(device)}",
        *([f"- Conditions: {note}"] if note else []),
        f"- Model: {model}; request geometry 768x512x121 @ {FPS} fps (LTX-2.0 VAE: 16x16x24 latents, 6144 tokens)",
        "",
        "| Step kind | s/step |",
        "|---|---|",
        *(f"| {shapes[k].name} | {v:.4f} |" for k, v in steps.items()),
        "",
        "| Mode | steps | denoising s/clip (steps x s/step) |",
        "|---|---|---|",
    ]
    stage_steps = {q: "+".join(str(s.steps) for s in RECIPES[q].stages) for q in RECIPES}
    lines += [f"| {q} | {stage_steps[q]} | {v:.3f} |" for q, v in clip_denoise_s(steps).items()]
    if clips:
        lines += ["", f"Whole tiny-runner jobs at {WIDTH}x{HEIGHT}x{FRAMES} (prompt to mp4, full recipe steps):", ""]
        lines += [f"- {q}: {v:.3f} s/clip" for q, v in clips.items()]
    if device == "cuda":
        lines += ["", f"Anchor: {ANCHOR}."]
    else:
        lines += [
            "",
            "CPU tiny-model numbers only guard against regressions in our own code path. No CUDA device was visible,",
            "so the real-size transformer was not timed: run this script on a GPU node for that (anchor below).",
            "",
            f"Anchor (not ours): {ANCHOR}.",
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    """Run the benchmark for the visible device and write the Markdown fragment."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("bench/results_ltx2.md"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--note", help="Run conditions to record with the results (e.g. a shared machine).")
    args = parser.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    steps = bench_steps(device, args.repeats)
    clips = None if device == "cuda" else bench_cpu_clips(args.repeats)
    text = report(device, steps, clips, args.note)
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()

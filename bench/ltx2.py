"""LTX-2 speed: seconds per denoising step and per clip, `fast` and `pro`, at the nominal 768x512x121 request.

    .venv/bin/python -m bench.ltx2 [--out bench/results_ltx2.md] [--repeats 3] [--versions-only]

With CUDA: the real-size LTX-2.0 transformer (48 layers, random bf16 weights) is timed per step at the exact
latent geometry of the request; a clip's denoising time is steps x step time (text encoding, upsampler and VAE
decode are not included). Compare with the anchor from research/ltx2.md: sglang on one H100, LTX-2 distilled,
8 steps at 768x512x121, 9.52 s end to end of which 6.01 s denoising.

Without CUDA: the tiny random transformer at the same latent geometry, plus whole tiny-runner jobs (prompt to
mp4) at 768x512x121; the tiny VAE keeps the real 32x/8x compression. These CPU numbers are a regression guard
for our own code path only; they say nothing about real-model speed.

Per release (2.0, 2.3, 2.5), always: each release's tiny transformer, one `fast` step and one `pro` stage-1 step
(all the transformer calls its recipe makes: 3 for 2.3/2.5's CFG + STG + modality guidance) at the same geometry,
as ratios to LTX-2.0 measured in the same run.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from diffusers import LTX2VideoTransformer3DModel

from deployments.contract import JobSpec
from deployments.ltx2.args import LTX2Args
from deployments.ltx2.recipes import RECIPES, transformer_calls_per_step
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
    first, _ = RECIPES["2.0", "pro"].stages
    half = (WIDTH // first.size_divisor, HEIGHT // first.size_divisor)
    return {
        "fast": StepShape("fast (batch 1, 768x512)", 1, WIDTH, HEIGHT),
        "pro_stage_1": StepShape(f"pro stage 1 (batch 2, {half[0]}x{half[1]})", 2, *half),
        "pro_stage_2": StepShape("pro stage 2 (batch 1, 768x512)", 1, WIDTH, HEIGHT),
    }


def transformer_inputs(model: LTX2VideoTransformer3DModel, shape: StepShape, device: str) -> dict:
    """Random inputs with exactly the shapes the pipeline feeds the transformer for this request."""
    cfg, dtype, batch = model.config, model.dtype, shape.batch
    # 2.3+ (no caption projection in the transformer): the connectors hand over text at the cross-attention widths
    video_text = cfg.caption_channels if cfg.use_prompt_embeddings else cfg.cross_attention_dim
    audio_text = cfg.caption_channels if cfg.use_prompt_embeddings else cfg.audio_cross_attention_dim
    frames = (FRAMES - 1) // REAL_VAE["temporal"] + 1
    height, width = shape.height // REAL_VAE["spatial"], shape.width // REAL_VAE["spatial"]
    audio_frames = round(FRAMES / FPS * REAL_VAE["audio_latents_per_s"])
    timestep = torch.full((batch,), 500.0, device=device)
    return {
        "hidden_states": torch.randn(batch, frames * height * width, cfg.in_channels, device=device, dtype=dtype),
        "audio_hidden_states": torch.randn(batch, audio_frames, cfg.audio_in_channels, device=device, dtype=dtype),
        "encoder_hidden_states": torch.randn(batch, TEXT_TOKENS, video_text, device=device, dtype=dtype),
        "audio_encoder_hidden_states": torch.randn(batch, TEXT_TOKENS, audio_text, device=device, dtype=dtype),
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
        "use_cross_timestep": not cfg.use_prompt_embeddings,  # False for LTX-2.0, True for 2.3/2.5
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


VERSIONS = ("2.0", "2.3", "2.5")


def bench_versions(repeats: int) -> dict[str, dict[str, float]]:
    """Per release, seconds of one `fast` step and one `pro` stage-1 step with that release's tiny transformer."""
    with torch.no_grad():
        return {version: _time_release(version, repeats) for version in VERSIONS}


def _time_release(version: str, repeats: int) -> dict[str, float]:
    """One release on CPU: every transformer call its recipe makes per step (the CFG call at batch 2, the STG and
    modality passes at batch 1, on the positive prompt)."""
    shapes = step_shapes()
    model = build_tiny_components(version)["transformer"]
    extra = transformer_calls_per_step(RECIPES[version, "pro"].stages[0]) - 1
    fast = transformer_inputs(model, shapes["fast"], "cpu")
    cfg_call = transformer_inputs(model, shapes["pro_stage_1"], "cpu")
    single = transformer_inputs(model, replace(shapes["pro_stage_1"], batch=1), "cpu")

    def pro_step() -> None:
        model(**cfg_call)
        for _ in range(extra):
            model(**single)

    return {"fast": timed(lambda: model(**fast), repeats, "cpu"), "pro_stage_1": timed(pro_step, repeats, "cpu")}


def report_versions(results: dict[str, dict[str, float]], note: str | None = None) -> str:
    """The per-release rows, as ratios to LTX-2.0 measured in the same run."""
    base = results["2.0"]
    lines = [
        "### LTX-2 per release (CPU, tiny random transformers, regression guard only)",
        "",
        f"- Machine: {machine('cpu')}",
        *([f"- Conditions: {note}"] if note else []),
        "- One step at 768x512x121 (fast: full size, 1 call; pro stage 1: half size, the recipe's calls per step)",
        "",
        "| Release | pro stage-1 calls/step | fast s/step | x 2.0 | pro stage-1 s/step | x 2.0 |",
        "|---|---|---|---|---|---|",
    ]
    for version, r in results.items():
        calls = transformer_calls_per_step(RECIPES[version, "pro"].stages[0])
        lines.append(
            f"| {version} | {calls} | {r['fast']:.4f} | {r['fast'] / base['fast']:.2f} | "
            f"{r['pro_stage_1']:.4f} | {r['pro_stage_1'] / base['pro_stage_1']:.2f} |"
        )
    lines += [
        "",
        "No GPU was available here: the real-size per-release step times (research/ltx2.md §3-4 anchors) are not",
        "measured. The 2.3/2.5 pro stage-1 step costs 3 transformer calls against 2.0's 1 (batch-2) call.",
    ]
    return "\n".join(lines) + "\n"


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
    fast, (pro_1, pro_2) = RECIPES["2.0", "fast"].stages[0], RECIPES["2.0", "pro"].stages
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
    stage_steps = {q: "+".join(str(s.steps) for s in RECIPES["2.0", q].stages) for q in ("fast", "pro")}
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
    parser.add_argument("--versions-only", action="store_true", help="Only the per-release rows (CPU, tiny).")
    args = parser.parse_args()
    if args.versions_only:
        text = report_versions(bench_versions(args.repeats), args.note)
        args.out.write_text(text)
        print(text)
        return
    device = "cuda" if torch.cuda.is_available() else "cpu"
    steps = bench_steps(device, args.repeats)
    clips = None if device == "cuda" else bench_cpu_clips(args.repeats)
    text = report(device, steps, clips, args.note) + "\n" + report_versions(bench_versions(args.repeats), args.note)
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()

"""LTX-2 speed: seconds per denoising step and per clip, `fast` and `pro`, per release, at the nominal 768x512x121
request.

    PYTHONPATH=. .venv/bin/python -m bench.ltx2 [--out bench/results_ltx2.md] [--repeats 3] [--versions-only]
    PYTHONPATH=. python3 -m bench.ltx2 --release 2.3 --json ltx2_2.3.json   # one release (bench/gpu_check.sh)
    PYTHONPATH=. python3 -m bench.ltx2 --render ltx2_2.0.json ltx2_2.3.json ltx2_2.5.json --out ltx2.md
    PYTHONPATH=. python3 -m bench.ltx2 --vae --json vae.json --out vae.md

With CUDA: each release's real-size transformer (48 layers, random bf16 weights built on the GPU, config below) is
timed per step at the exact latent geometry of the request: a `fast` step (1 call), a `pro` stage-1 step (every
transformer call its recipe makes, as the pipeline makes them: one batch-2 CFG call, plus an STG pass and a
modality-isolation pass for 2.3/2.5) and a `pro` stage-2 step (1 call). A clip's denoising time is steps x step
time (text encoding, upsampler and VAE decode are not included). Compare with the anchor from research/ltx2.md:
sglang on one H100, LTX-2 distilled, 8 steps at 768x512x121, 9.52 s end to end of which 6.01 s denoising.
`--vae` times the real-size video VAE decoding that request's latents (2.0's VAE and 2.3's, which 2.5 reuses).

Without CUDA: the tiny random transformers (and the tiny VAE) at the same latent geometry, plus whole tiny-runner jobs
(prompt to mp4) at 768x512x121; the tiny VAE keeps the real 32x/8x compression. These CPU numbers are a regression
guard for our own code path only; they say nothing about real-model speed.

Releases are compared as ratios to LTX-2.0 measured on the same machine, at the same geometry and precision.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from diffusers import AutoencoderKLLTX2Video, LTX2VideoTransformer3DModel

from deployments.ltx2.recipes import RECIPES, transformer_calls_per_step
from deployments.ltx2.tiny import build_tiny_components

WIDTH, HEIGHT, FRAMES, FPS = 768, 512, 121, 24
TEXT_TOKENS = 1024  # the pipeline pads every prompt to 1024 tokens
REAL_VAE = {"spatial": 32, "temporal": 8, "audio_latents_per_s": 16000 / 160 / 4}
VERSIONS = ("2.0", "2.3", "2.5")
# Each release's transformer as diffusers' LTX-2 conversion presets configure it (`get_ltx2_transformer_config`,
# versions "2.0", "2.3", "2.5"); every argument not named here is the class default, which is the preset's value.
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
# 2.3: gated attention and cross-attention modulation in both streams, no caption projection in the transformer
# (the connectors hand over text at the cross-attention widths), STG-capable self-attention
LTX2_3_TRANSFORMER = LTX2_0_TRANSFORMER | {
    "gated_attn": True,
    "cross_attn_mod": True,
    "audio_gated_attn": True,
    "audio_cross_attn_mod": True,
    "use_prompt_embeddings": False,
    "perturbed_attn": True,
}
REAL_TRANSFORMERS = {
    "2.0": LTX2_0_TRANSFORMER,
    "2.3": LTX2_3_TRANSFORMER,
    # 2.5 = 2.3 without the video feed-forward bias, plus the learned keyframe position embedding
    "2.5": LTX2_3_TRANSFORMER | {"ff_bias": False, "use_keyframes_abs_pos_embedding": True},
}
# The video VAEs as the same presets configure them (`get_ltx2_video_vae_config`); 2.5 ships 2.3's VAE unchanged.
_VAE_COMMON = {"decoder_causal": False, "spatial_compression_ratio": 32, "temporal_compression_ratio": 8}
REAL_VAES = {
    "2.0": _VAE_COMMON,  # the class defaults are 2.0's layout
    "2.3": _VAE_COMMON
    | {
        "block_out_channels": (256, 512, 1024, 1024),
        "decoder_block_out_channels": (256, 512, 512, 1024),
        "layers_per_block": (4, 6, 4, 2, 2),
        "decoder_layers_per_block": (4, 6, 4, 2, 2),
        "decoder_spatio_temporal_scaling": (True, True, True, True),
        "decoder_inject_noise": (False, False, False, False, False),
        "upsample_type": ("spatiotemporal", "spatiotemporal", "temporal", "spatial"),
        "upsample_residual": (False, False, False, False),
        "upsample_factor": (2, 2, 1, 2),
        "decoder_spatial_padding_mode": "zeros",
    },
}
ANCHOR_DENOISE_S = 6.01  # sglang, 1x H100, LTX-2 distilled, 8 steps at 768x512x121 (research/ltx2.md §4.1)
ANCHOR = "sglang, 1x H100, LTX-2 distilled 8 steps at 768x512x121: 9.52 s per clip, 6.01 s denoising (0.75 s/step)"
STEP_KINDS = ("fast", "pro_stage_1", "pro_stage_2")


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


def pro_stage_1_calls(version: str, model: LTX2VideoTransformer3DModel, device: str) -> list[dict]:
    """The transformer calls of one pro stage-1 step, with the arguments LTX2Pipeline passes: CFG as one batch-2
    call, then (2.3/2.5) an STG pass with self-attention skipped in the guidance blocks and a modality-isolation
    pass (no audio-video cross-attention), each at batch 1 on the positive prompt."""
    stage = RECIPES[version, "pro"].stages[0]
    guidance, shape = stage.guidance, step_shapes()["pro_stage_1"]
    calls = [transformer_inputs(model, shape, device)]
    single = transformer_inputs(model, replace(shape, batch=1), device)
    if (guidance["stg_scale"] > 0 or guidance["audio_stg_scale"] > 0) and guidance["spatio_temporal_guidance_blocks"]:
        calls.append(single | {"spatio_temporal_guidance_blocks": list(guidance["spatio_temporal_guidance_blocks"])})
    if guidance["modality_scale"] != 1 or guidance["audio_modality_scale"] != 1:
        calls.append(single | {"isolate_modalities": True})
    if len(calls) != transformer_calls_per_step(stage):
        raise RuntimeError(f"LTX-{version} pro: {len(calls)} calls built, the recipe makes a different number")
    return calls


def timed(fn: Callable[[], object], repeats: int, device: str) -> list[float]:
    """Seconds of each of `repeats` calls of `fn`, after one warm-up call (kernel choice, allocator)."""

    def once() -> float:
        start = time.perf_counter()
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    once()
    return [once() for _ in range(repeats)]


def _build_on(device: str, build: Callable[[], torch.nn.Module]) -> torch.nn.Module:
    """`build()` with its weights allocated on `device` in bf16 directly: an fp32 build of the real transformer
    would need ~75 GB, and a CPU build then a copy would take minutes."""
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        with torch.device(device):
            return build().eval()
    finally:
        torch.set_default_dtype(default)


def build_transformer(version: str, device: str) -> LTX2VideoTransformer3DModel:
    """The release's real-size transformer in bf16 on CUDA (random weights), else its tiny one on CPU."""
    if device != "cuda":
        return build_tiny_components(version)["transformer"]
    return _build_on(device, lambda: LTX2VideoTransformer3DModel(**REAL_TRANSFORMERS[version]))


def machine(device: str) -> str:
    """One line naming the hardware and the software versions."""
    import diffusers

    if device == "cuda":
        accel = f"{torch.cuda.get_device_name()}, CUDA {torch.version.cuda}"
    else:
        accel = f"CPU only, {torch.get_num_threads()} threads"
    versions = f"torch {torch.__version__}, diffusers {diffusers.__version__}"
    return f"{platform.node()} ({platform.machine()}, {accel}); {versions}; {time.strftime('%Y-%m-%d')}"


def _free(device: str) -> None:
    """Return the memory of models already dropped, and restart the peak count."""
    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def _peak_gib(device: str) -> float | None:
    return torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else None


def measure_release(version: str, device: str, repeats: int) -> dict[str, Any]:
    """One release: seconds of each step kind (median of `repeats` after a warm-up), the clip's denoising seconds
    from its recipes' step counts, parameters, build time and peak GPU memory. JSON-ready."""
    _free(device)
    start = time.perf_counter()
    model = build_transformer(version, device)
    build_s = time.perf_counter() - start
    shapes = step_shapes()
    fast = transformer_inputs(model, shapes["fast"], device)
    stage_2 = transformer_inputs(model, shapes["pro_stage_2"], device)
    stage_1 = pro_stage_1_calls(version, model, device)
    with torch.no_grad():
        samples = {
            "fast": timed(lambda: model(**fast), repeats, device),
            "pro_stage_1": timed(lambda: [model(**call) for call in stage_1], repeats, device),
            "pro_stage_2": timed(lambda: model(**stage_2), repeats, device),
        }
    steps = {kind: statistics.median(s) for kind, s in samples.items()}
    recipes = {quality: [stage.steps for stage in RECIPES[version, quality].stages] for quality in ("fast", "pro")}
    return {
        "version": version,
        "device": device,
        "model": "real-size, random bf16 weights" if device == "cuda" else "tiny random (CPU)",
        "config": REAL_TRANSFORMERS[version] if device == "cuda" else None,
        "machine": machine(device),
        "params": sum(p.numel() for p in model.parameters()),
        "build_s": build_s,
        "calls_per_step": {"fast": 1, "pro_stage_1": len(stage_1), "pro_stage_2": 1},
        "recipe_steps": recipes,
        "steps_s": steps,
        "samples_s": samples,
        "clip_denoise_s": clip_denoise_s(version, steps),
        "peak_gib": _peak_gib(device),
    }


def clip_denoise_s(version: str, steps: dict[str, float]) -> dict[str, float]:
    """Denoising seconds per clip: the release's recipe step counts times the measured step times."""
    fast, (pro_1, pro_2) = RECIPES[version, "fast"].stages[0], RECIPES[version, "pro"].stages
    return {
        "fast": fast.steps * steps["fast"],
        "pro": pro_1.steps * steps["pro_stage_1"] + pro_2.steps * steps["pro_stage_2"],
    }


def _count(params: int) -> str:
    """A parameter count in billions, or millions for the tiny models."""
    return f"{params / 1e9:.2f} B" if params >= 1e8 else f"{params / 1e6:.2f} M"


def _times(value: float, base: float | None) -> str:
    """`value` as a multiple of LTX-2.0's (n/a when 2.0 was not measured)."""
    return "n/a" if base is None else f"{value / base:.2f}"


def report_versions(results: dict[str, dict[str, Any]], note: str | None = None) -> str:
    """The per-release rows, as ratios to LTX-2.0 measured on the same machine (releases missing from `results`
    are listed as not measured)."""
    first = next(iter(results.values()))
    cuda = first["device"] == "cuda"
    base = results.get("2.0")
    lines = [
        f"### LTX-2 per release ({'CUDA, real-size transformers' if cuda else 'CPU, tiny random transformers'})",
        "",
        f"- Machine: {first['machine']}",
        *([f"- Conditions: {note}"] if note else []),
        f"- Model: {first['model']}; one step at {WIDTH}x{HEIGHT}x{FRAMES} @ {FPS} fps (fast: full size, 1 call; "
        "pro stage 1: half size, every transformer call of the recipe's guidance; pro stage 2: full size, 1 call); "
        "median of the repeats after a warm-up",
        "",
        "| Release | params | fast s/step | x 2.0 | pro stage-1 calls/step | pro stage-1 s/step | x 2.0 "
        "| pro stage-2 s/step | fast s/clip | pro s/clip (steps) | x 2.0 | peak GiB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for version in VERSIONS:
        r = results.get(version)
        if r is None:
            lines.append(f"| {version} | not measured (see the log) |" + " |" * 10)
            continue
        steps, clip = r["steps_s"], r["clip_denoise_s"]
        base_steps = base["steps_s"] if base else dict.fromkeys(STEP_KINDS)
        cells = [
            version,
            _count(r["params"]),
            f"{steps['fast']:.4f}",
            _times(steps["fast"], base_steps["fast"]),
            str(r["calls_per_step"]["pro_stage_1"]),
            f"{steps['pro_stage_1']:.4f}",
            _times(steps["pro_stage_1"], base_steps["pro_stage_1"]),
            f"{steps['pro_stage_2']:.4f}",
            f"{clip['fast']:.2f}",
            f"{clip['pro']:.2f} ({'+'.join(str(n) for n in r['recipe_steps']['pro'])})",
            _times(clip["pro"], base["clip_denoise_s"]["pro"] if base else None),
            f"{r['peak_gib']:.1f}" if r["peak_gib"] is not None else "-",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Denoising only (no text encoding, upsampler or VAE decode); fast is 8 steps for every release."]
    if cuda:
        if base is not None:
            fast = base["clip_denoise_s"]["fast"]
            lines += [
                "",
                f"Anchor (not ours): {ANCHOR}. Ours, LTX-2.0 fast (8 steps, diffusers eager, bf16, this GPU): "
                f"{fast:.2f} s, **{fast / ANCHOR_DENOISE_S:.2f}x** the anchor's denoising time (another stack; an H200 "
                "has an H100's bf16 rate and 1.4x its memory bandwidth).",
            ]
        lines += ["", "Transformer configs (diffusers' conversion presets; every other argument is the default):", ""]
        lines += [f"- {v}: `{json.dumps(r['config'])}`" for v, r in results.items()]
    else:
        lines += [
            "",
            "CPU tiny-model numbers only guard against regressions in our own code path: real-size per-release step",
            "times need a GPU (bench/gpu_check.sh).",
        ]
    return "\n".join(lines) + "\n"


def build_vae(version: str, device: str) -> AutoencoderKLLTX2Video:
    """The release's real-size video VAE in bf16 on CUDA (random weights), else the tiny one on CPU."""
    if device != "cuda":
        return build_tiny_components(version)["vae"]
    return _build_on(device, lambda: AutoencoderKLLTX2Video(**REAL_VAES[version]))


def measure_vae(version: str, device: str, repeats: int) -> dict[str, Any]:
    """Seconds to decode the request's latents with the release's video VAE (no tiling, as the deployment's
    default `vae_tiling: false`); on CPU a 4x4-latent crop (128x128 px) keeps the tiny VAE quick."""
    _free(device)
    vae = build_vae(version, device)
    frames, spatial = (FRAMES - 1) // REAL_VAE["temporal"] + 1, REAL_VAE["spatial"]
    height, width = (HEIGHT // spatial, WIDTH // spatial) if device == "cuda" else (4, 4)
    latents = torch.randn(1, vae.config.latent_channels, frames, height, width, device=device, dtype=vae.dtype)
    with torch.no_grad():
        samples = timed(lambda: vae.decode(latents, None, return_dict=False), repeats, device)
    return {
        "version": version,
        "machine": machine(device),
        "model": "real-size, random bf16 weights" if device == "cuda" else "tiny random (CPU)",
        "decoder_params": sum(p.numel() for p in vae.decoder.parameters()),
        "pixels": f"{width * spatial}x{height * spatial}x{FRAMES}",
        "decode_s": statistics.median(samples),
        "samples_s": samples,
        "peak_gib": _peak_gib(device),
    }


def report_vae(results: list[dict[str, Any]]) -> str:
    """The VAE decode rows, as ratios to LTX-2.0's VAE."""
    base = results[0]["decode_s"]
    lines = [
        f"### LTX-2 video VAE decode ({results[0]['model']})",
        "",
        f"- Machine: {results[0]['machine']}",
        "- One clip's latents decoded at once (no tiling); 2.5 ships 2.3's VAE. Median of the repeats after a warm-up.",
        "",
        "| VAE | decoder params | pixels | decode s | x 2.0 | peak GiB |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        peak = f"{r['peak_gib']:.1f}" if r["peak_gib"] is not None else "-"
        lines.append(f"| {r['version']} | {_count(r['decoder_params'])} | {r['pixels']} | {r['decode_s']:.3f} "
                     f"| {r['decode_s'] / base:.2f} | {peak} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def bench_cpu_clips(repeats: int) -> dict[str, float]:
    """Whole tiny-runner jobs (prompt encoding to mp4) at 768x512x121, with the recipes' full step counts."""
    # Imported here: the runner muxes with PyAV, which the GPU machine of bench/gpu_check.sh does not have
    from deployments.contract import JobSpec
    from deployments.ltx2.args import LTX2Args
    from deployments.ltx2.runner import LTX2Runner

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
            run = lambda job=job: runner.run(job, {}, Path(workdir), _Silent())  # noqa: E731
            results[quality] = statistics.median(timed(run, repeats, "cpu"))
    return results


def report(result: dict[str, Any], clips: dict[str, float] | None, note: str | None) -> str:
    """LTX-2.0's step and clip times as a Markdown fragment."""
    cuda = result["device"] == "cuda"
    shapes = step_shapes()
    lines = [
        f"### LTX-2 ({'CUDA' if cuda else 'CPU, regression guard only'})",
        "",
        f"- Machine: {result['machine']}",
        *([f"- Conditions: {note}"] if note else []),
        f"- Model: LTX-2.0, {result['model']}; request geometry 768x512x121 @ {FPS} fps (LTX-2.0 VAE: 16x16x24 "
        "latents, 6144 tokens)",
        "",
        "| Step kind | s/step |",
        "|---|---|",
        *(f"| {shapes[k].name} | {v:.4f} |" for k, v in result["steps_s"].items()),
        "",
        "| Mode | steps | denoising s/clip (steps x s/step) |",
        "|---|---|---|",
    ]
    stage_steps = {q: "+".join(str(n) for n in steps) for q, steps in result["recipe_steps"].items()}
    lines += [f"| {q} | {stage_steps[q]} | {v:.3f} |" for q, v in result["clip_denoise_s"].items()]
    if clips:
        lines += ["", f"Whole tiny-runner jobs at {WIDTH}x{HEIGHT}x{FRAMES} (prompt to mp4, full recipe steps):", ""]
        lines += [f"- {q}: {v:.3f} s/clip" for q, v in clips.items()]
    if cuda:
        lines += ["", f"Anchor: {ANCHOR}."]
    else:
        lines += [
            "",
            "CPU tiny-model numbers only guard against regressions in our own code path. No CUDA device was visible,",
            "so the real-size transformer was not timed: run bench/gpu_check.sh on a GPU node for that (anchor below).",
            "",
            f"Anchor (not ours): {ANCHOR}.",
        ]
    return "\n".join(lines) + "\n"


def _write(text: str, out: Path | None, data: object = None, json_path: Path | None = None) -> None:
    """Print the Markdown, and write it and the raw numbers where asked."""
    print(text, flush=True)
    if out:
        out.write_text(text)
    if json_path:
        json_path.write_text(json.dumps(data, indent=1))


def main() -> None:
    """Run the benchmark for the visible device and write the Markdown fragment (and the raw numbers)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="Markdown output (default bench/results_ltx2.md for a full run).")
    parser.add_argument("--json", type=Path, help="Raw numbers as JSON (--release, --vae).")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--note", help="Run conditions to record with the results (e.g. a shared machine).")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--versions-only", action="store_true", help="Only the per-release rows.")
    mode.add_argument("--release", choices=VERSIONS, help="One release's step times (one process per release).")
    mode.add_argument("--render", type=Path, nargs="+", metavar="JSON", help="Per-release rows from --release JSONs.")
    mode.add_argument("--vae", action="store_true", help="Video VAE decode of the request's latents, 2.0 and 2.3.")
    args = parser.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.render:
        results = [json.loads(path.read_text()) for path in args.render]
        _write(report_versions({r["version"]: r for r in results}, args.note), args.out)
    elif args.release:
        result = measure_release(args.release, device, args.repeats)
        _write(report_versions({args.release: result}, args.note), args.out, result, args.json)
    elif args.vae:
        vaes: list[dict[str, Any]] = []
        for version in REAL_VAES:  # written after each VAE, so a time limit keeps the finished ones
            vaes.append(measure_vae(version, device, args.repeats))
            _write(report_vae(vaes), args.out, vaes, args.json)
    else:
        results = {version: measure_release(version, device, args.repeats) for version in VERSIONS}
        text = report_versions(results, args.note)
        if not args.versions_only:
            clips = None if device == "cuda" else bench_cpu_clips(args.repeats)
            text = report(results["2.0"], clips, args.note) + "\n" + text
        _write(text, args.out or Path("bench/results_ltx2.md"), results, args.json)


if __name__ == "__main__":
    main()

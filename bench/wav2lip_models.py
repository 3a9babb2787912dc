"""Wav2Lip's two networks alone, on tensors: generator and S3FD face-detector throughput for 720p video.

    PYTHONPATH=. python3 -m bench.wav2lip_models [--out FILE.md] [--json FILE.json] [--smoke]

No video is decoded or encoded, so this needs neither PyAV nor librosa and runs where bench/wav2lip.py (the whole
pipeline) cannot, such as the GPU machine of bench/gpu_check.sh. It bounds what the models allow; decoding, pasting
and encoding (CPU work, 16 % of the pipeline's time on the CPU run in bench/results_wav2lip.md) come on top.

- Generator: the stage as `LipSyncPipeline._sync_batch` runs it, from uint8 face crops and mel windows in host
  memory to uint8 faces back in host memory (upload, masking, the network, download); random weights cost exactly
  what the real ones do. Our setup (BatchNorm folded, channels-last weights) at several batch sizes and precisions,
  each against fp32 at the same batch, and the official inference.py's (fp32, batch 128, BatchNorm unfolded,
  NCHW weights) as the baseline.
- Detector: `S3FDDetector.detect` on batches of frames, as the pipeline calls it: the official shape (every frame
  at full 720p size) and our defaults (frames shrunk to 480 px, every 5th frame detected). Random weights whose face
  scores are pinned near 0, so no box reaches the threshold: with real weights a handful does and their NMS is
  negligible, while thousands of random boxes would time a greedy NMS that never runs on real video.

Each measurement follows a warm-up batch (cuDNN autotuning: the runner turns `cudnn.benchmark` on for CUDA).
`--smoke` shrinks every size for a quick check of the code path on a CPU.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from deployments.wav2lip.args import Wav2LipArgs
from deployments.wav2lip.network import IMG_SIZE, MEL_BINS, MEL_STEPS, build_wav2lip, fold_batchnorm
from deployments.wav2lip.s3fd import S3FDDetector

GOAL_FPS = 25.0  # bench/RESULTS.md: >= 25 fps at 720p on a GPU
OFFICIAL_BATCH, OFFICIAL_DETECT_BATCH = 128, 16  # inference.py's defaults
PRECISIONS = {"fp16": torch.float16, "bf16": torch.bfloat16}


@dataclass(frozen=True)
class Plan:
    """The sizes of one run."""

    batches: tuple[int, ...]  # generator batch sizes of our setup
    precisions: tuple[str, ...]  # fp32 first: the reference of the others' output differences
    official_batch: int
    faces: int  # faces through the generator per measurement (rounded up to whole batches)
    video: tuple[int, int]  # (width, height) of the frames the detector sees at full size
    detect_batch: int
    detect_batches: int  # timed detector batches per measurement


FULL = Plan((16, 32, 128), ("fp32", "fp16", "bf16"), OFFICIAL_BATCH, 2048, (1280, 720), OFFICIAL_DETECT_BATCH, 6)
SMOKE = Plan((1,), ("fp32", "bf16"), 1, 1, (256, 144), 1, 1)


def auto_precision(device: torch.device) -> str:
    """What the deployment's `precision: auto` runs: fp16 autocast on CUDA, fp32 elsewhere."""
    return "fp16" if device.type == "cuda" else "fp32"


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """`deployments.wav2lip.pipeline.autocast`, which this module cannot import (that module needs PyAV)."""
    if precision == "auto":
        precision = auto_precision(device)
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=PRECISIONS[precision])


def generator_run(
    generator: torch.nn.Module, device: torch.device, batch: int, precision: str, faces: int
) -> tuple[float, np.ndarray]:
    """Faces per second through the generator stage at `batch` faces a call, and the last batch's output (each
    call ends in a copy to host memory, so the clock stops after the GPU work)."""
    rng = np.random.default_rng(0)
    crops = rng.integers(0, 256, (batch, IMG_SIZE, IMG_SIZE, 3), dtype=np.uint8)
    windows = rng.standard_normal((batch, MEL_BINS, MEL_STEPS), dtype=np.float32)

    @torch.inference_mode()
    def stage() -> np.ndarray:
        # as LipSyncPipeline._sync_batch
        images = torch.from_numpy(crops).to(device).permute(0, 3, 1, 2).float() / 255.0
        masked = images.clone()
        masked[:, :, IMG_SIZE // 2 :] = 0
        audio = torch.from_numpy(windows).to(device)[:, None]
        with autocast(device, precision):
            out = generator(audio, torch.cat([masked, images], dim=1))
        return (out.float() * 255.0).clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()

    stage()  # warm-up: cuDNN autotuning, allocator
    calls = -(-faces // batch)
    start = time.perf_counter()
    for _ in range(calls):
        out = stage()
    return calls * batch / (time.perf_counter() - start), out


def silent_detector(device: torch.device) -> S3FDDetector:
    """S3FD with random weights and every face score pinned near 0 (see the module docstring)."""
    detector = S3FDDetector(None, device)
    with torch.no_grad():
        for name, module in detector.net.named_modules():
            if name.endswith("_mbox_conf"):  # background channel(s) first, face last
                module.weight.zero_()
                module.bias.fill_(10.0)
                module.bias[-1] = -10.0
    return detector


def detector_run(detector: S3FDDetector, size: tuple[int, int], batch: int, batches: int) -> float:
    """Frames per second through `detect` for frames of `size` (width, height), `batch` frames a call."""
    rng = np.random.default_rng(1)
    frames = [rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8) for _ in range(batch)]
    if any(len(faces) for faces in detector.detect(frames)):  # also the warm-up
        raise RuntimeError("pinned detector found faces: the timing would include NMS of random boxes")
    start = time.perf_counter()
    for _ in range(batches):
        detector.detect(frames)  # ends in copies to host memory
    return batches * batch / (time.perf_counter() - start)


def detect_size(video: tuple[int, int], max_side: int | None) -> tuple[int, int]:
    """The size frames are shrunk to for detection, as `iter_sampled_frames` does (aspect kept)."""
    width, height = video
    scale = min(1.0, max_side / max(width, height)) if max_side else 1.0
    return round(width * scale), round(height * scale)


def measure(plan: Plan, device: torch.device) -> dict[str, Any]:
    """Every generator and detector configuration of `plan`; JSON-ready."""
    defaults = Wav2LipArgs()
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # as Wav2LipRunner does on CUDA
    torch.manual_seed(0)
    official = build_wav2lip(None).to(device)
    ours = fold_batchnorm(copy.deepcopy(official)).to(memory_format=torch.channels_last)

    generator: list[dict[str, Any]] = []
    fps, _ = generator_run(official, device, plan.official_batch, "fp32", plan.faces)
    generator.append({"setup": "official", "batch": plan.official_batch, "precision": "fp32", "fps": fps})
    for batch in plan.batches:
        outputs = {}
        for precision in plan.precisions:
            fps, outputs[precision] = generator_run(ours, device, batch, precision, plan.faces)
            diff = np.abs(outputs[precision].astype(int) - outputs["fp32"])
            generator.append({"setup": "ours", "batch": batch, "precision": precision, "fps": fps,
                              "max_diff": int(diff.max()), "mean_diff": float(diff.mean())})  # fmt: skip

    detector = silent_detector(device)
    detection = []
    for setup, max_side, every in (("official", None, 1), ("ours", defaults.detect_max_side, defaults.detect_every)):
        size = detect_size(plan.video, max_side)
        fps = detector_run(detector, size, plan.detect_batch, plan.detect_batches)
        detection.append({"setup": setup, "size": f"{size[0]}x{size[1]}", "every": every, "fps": fps,
                          "batch": plan.detect_batch})  # fmt: skip
    return {
        "machine": machine(device),
        "device": device.type,
        "video": f"{plan.video[0]}x{plan.video[1]}",
        "cudnn_tf32": torch.backends.cudnn.allow_tf32,
        "defaults": defaults.model_dump(include={"batch_size", "precision", "detect_every", "detect_max_side"}),
        "generator": generator,
        "detector": detection,
        "pipeline": model_ceilings(generator, detection, plan.official_batch, defaults.batch_size, device),
    }


def model_ceilings(
    generator: list[dict], detection: list[dict], official_batch: int, default_batch: int, device: torch.device
) -> list[dict[str, Any]]:
    """Model seconds per output frame (generator + detection shared over `every` frames) for the official shape,
    our defaults, and our defaults at the largest batch measured: the fps the models alone would allow."""
    auto = auto_precision(device)
    gen = {(g["setup"], g["batch"], g["precision"]): g["fps"] for g in generator}
    det = {d["setup"]: d for d in detection}
    ours_batches = sorted(b for s, b, p in gen if s == "ours" and p == auto)
    rows = [("official shape", ("official", official_batch, "fp32"), det["official"])]
    default_batch = default_batch if default_batch in ours_batches else ours_batches[0]  # smoke: its one batch
    rows.append((f"our defaults ({auto}, batch {default_batch})", ("ours", default_batch, auto), det["ours"]))
    if ours_batches[-1] != default_batch:
        rows.append((f"our defaults, batch {ours_batches[-1]}", ("ours", ours_batches[-1], auto), det["ours"]))
    out = []
    for name, key, d in rows:
        seconds = 1 / gen[key] + 1 / (d["fps"] * d["every"])
        out.append({"config": name, "generator_fps": gen[key], "detect_fps_per_output_frame": d["fps"] * d["every"],
                    "model_fps": 1 / seconds})  # fmt: skip
    return out


def machine(device: torch.device) -> str:
    """One line naming the hardware and the software versions."""
    if device.type == "cuda":
        accel = f"{torch.cuda.get_device_name()}, CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}"
    else:
        accel = f"CPU only, {torch.get_num_threads()} threads"
    return f"{platform.node()} ({platform.machine()}, {accel}); torch {torch.__version__}; {time.strftime('%Y-%m-%d')}"


def report(result: dict[str, Any]) -> str:
    """The results as a Markdown fragment: ratios against fp32 at the same batch and against the official shape."""
    official = next(g for g in result["generator"] if g["setup"] == "official")
    fp32 = {g["batch"]: g["fps"] for g in result["generator"] if g["setup"] == "ours" and g["precision"] == "fp32"}
    lines = [
        f"### Wav2Lip networks alone, {result['video']} video ({result['device']})",
        "",
        f"- Machine: {result['machine']}",
        f"- Our defaults: {json.dumps(result['defaults'])}; `auto` precision = fp16 autocast on CUDA, fp32 on CPU.",
        f"- fp32 convolutions: cuDNN `allow_tf32` = {result['cudnn_tf32']} (PyTorch's default, TF32 tensor cores on "
        "GPUs that have them); the detector runs in fp32, as deployed.",
        "",
        "| generator setup | batch | precision | faces/s | x fp32 same batch | x official | max diff (of 255) "
        "| mean diff |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for g in result["generator"]:
        same = fp32.get(g["batch"]) if g["setup"] == "ours" else official["fps"]
        diff = ("-", "-") if g.get("max_diff") is None else (str(g["max_diff"]), f"{g['mean_diff']:.3f}")
        lines.append(f"| {g['setup']} | {g['batch']} | {g['precision']} | {g['fps']:.1f} | {g['fps'] / same:.2f} "
                     f"| {g['fps'] / official['fps']:.2f} | {diff[0]} | {diff[1]} |")  # fmt: skip
    lines += [
        "",
        "| detector setup | frames detected at | batch | detected frames/s | every | output frames/s covered |",
        "|---|---|---|---|---|---|",
    ]
    lines += [f"| {d['setup']} | {d['size']} | {d['batch']} | {d['fps']:.1f} | {d['every']} | "
              f"{d['fps'] * d['every']:.1f} |" for d in result["detector"]]  # fmt: skip
    base = result["pipeline"][0]["model_fps"]
    lines += [
        "",
        f"Models alone per output frame (generator + detection over `every` frames), goal >= {GOAL_FPS:g} fps for the "
        "whole pipeline (decode, paste and encode not included here):",
        "",
        "| config | generator faces/s | detection per output frame/s | model fps ceiling | x official |",
        "|---|---|---|---|---|",
    ]
    lines += [f"| {p['config']} | {p['generator_fps']:.1f} | {p['detect_fps_per_output_frame']:.1f} | "
              f"{p['model_fps']:.1f} | {p['model_fps'] / base:.2f} |" for p in result["pipeline"]]  # fmt: skip
    return "\n".join(lines) + "\n"


def main() -> None:
    """Measure on CUDA when visible (else CPU) and write the Markdown fragment and the raw numbers."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="Markdown output.")
    parser.add_argument("--json", type=Path, help="Raw numbers as JSON.")
    parser.add_argument("--smoke", action="store_true", help="Tiny sizes: a quick check of the code path.")
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    result = measure(SMOKE if args.smoke else FULL, device)
    text = report(result)
    print(text, flush=True)
    if args.out:
        args.out.write_text(text)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()

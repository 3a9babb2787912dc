"""What the LTX-2 runner tests share: a job on tiny random components, a reporter, hooks on the transformer,
and the latent and pixel views the keyframe and extension tests compare."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import av
import numpy as np
import torch
from diffusers.pipelines.ltx2 import LTX2VideoCondition
from PIL import Image
from safetensors.torch import save_file

from deployments.contract import JobSpec
from deployments.ltx2.runner import LTX2Runner
from deployments.media import iter_frames
from serve_app.errors import JobCancelled

SIZE, FPS = 64, 24  # 2x2 latent tokens per latent frame with the tiny VAE (32x spatial)
COLOURS = {"red": (230, 30, 30), "blue": (30, 30, 230), "green": (30, 230, 30)}
INPUT_FRAMES, INPUT_RATE, TONE_HZ = 20, 24000, 440  # the extension tests' input clip
VERSIONS = ("2.0", "2.3", "2.5")
SAMPLE_RATES = {"2.0": 24000, "2.3": 48000, "2.5": 48000}  # each release's vocoder


class FakeReporter:
    """Records every report; cancels once `cancel_after` denoising steps were reported."""

    def __init__(self, cancel_after: int | None = None) -> None:
        self.reports: list[tuple[str, float]] = []
        self.cancel_after = cancel_after

    def report(self, stage: str, progress: float) -> None:
        self.reports.append((stage, progress))

    def raise_if_cancelled(self) -> None:
        steps = sum(stage == "denoising" for stage, _ in self.reports)
        if self.cancel_after is not None and steps >= self.cancel_after:
            raise JobCancelled()

    def stages(self) -> list[str]:
        """Stage names in order, consecutive repeats collapsed."""
        return [s for i, (s, _) in enumerate(self.reports) if i == 0 or self.reports[i - 1][0] != s]


class ForwardCounter:
    """Counts calls of a module and records the batch size of each."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.batches: list[int] = []
        self._handle = module.register_forward_pre_hook(self._hook, with_kwargs=True)

    def _hook(self, module: torch.nn.Module, args: tuple, kwargs: dict) -> None:
        first = args[0] if args else next(iter(kwargs.values()))
        self.batches.append(first.shape[0])

    def close(self) -> None:
        self._handle.remove()


class TransformerInputs:
    """Records the batch size, the first sample's video tokens and their start times (s) at every transformer call."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.batches: list[int] = []
        self.tokens: list[torch.Tensor] = []
        self.times: list[torch.Tensor] = []
        self._handle = module.register_forward_pre_hook(self._hook, with_kwargs=True)

    def _hook(self, module: torch.nn.Module, args: tuple, kwargs: dict) -> None:
        self.batches.append(kwargs["hidden_states"].shape[0])
        self.tokens.append(kwargs["hidden_states"][0].detach().clone())
        self.times.append(kwargs["video_coords"][0, 0, :, 0].detach().clone())

    def close(self) -> None:
        self._handle.remove()


def job(**params: Any) -> JobSpec:
    """A small LTX-2 job; `params` override the defaults."""
    base = {"prompt": "a red ball", "width": SIZE, "height": SIZE, "num_frames": 9, "fps": FPS, "seed": 1}
    return JobSpec(job_id="j1", model="ltx2", attempt=1, params=base | params, output_key="jobs/j1/output.mp4")


def write_lora(path: Path, scale: float = 0.5) -> Path:
    """A synthetic camera LoRA in the original (non-diffusers) key format, for the tiny transformer."""
    generator = torch.Generator().manual_seed(7)
    tensors = {}
    for block in (0, 1):
        for proj in ("to_q", "to_k", "to_v", "to_out.0"):
            key = f"diffusion_model.transformer_blocks.{block}.attn1.{proj}"
            tensors[f"{key}.lora_A.weight"] = torch.randn(4, 16, generator=generator) * scale
            tensors[f"{key}.lora_B.weight"] = torch.randn(16, 4, generator=generator) * scale
    save_file(tensors, str(path))
    return path


def encoded_tokens(runner: LTX2Runner, image: Path, size: int = SIZE, num_frames: int = 9) -> torch.Tensor:
    """An image as the condition pipeline's packed, normalised latent tokens at `size` (one latent frame)."""
    pipe = runner._condition_pipes[True]
    condition = LTX2VideoCondition(frames=Image.open(image).convert("RGB"), crf=0)
    (pixels,), *_ = pipe.preprocess_conditions([condition], size, size, num_frames, device=torch.device("cpu"))
    with torch.no_grad():
        latent = pipe.vae.encode(pixels).latent_dist.mode()
    latent = pipe._normalize_latents(latent, pipe.vae.latents_mean, pipe.vae.latents_std)
    return pipe._pack_latents(latent, 1, 1)[0]


def nearest(tokens: torch.Tensor, candidates: dict[str, torch.Tensor]) -> str:
    """The name of the candidate closest to `tokens` (mean absolute difference)."""
    return min(candidates, key=lambda name: (tokens - candidates[name]).abs().mean().item())


def decoded(path: Path) -> np.ndarray:
    """Every frame of a video as float RGB, (frames, height, width, 3)."""
    return np.stack(list(iter_frames(path, pixel_format="rgb24"))).astype(np.float32)


def streams(path: Path) -> dict[str, Any]:
    """Decoded frame count and the audio stream's rate (None when there is no audio stream) of an mp4."""
    with av.open(str(path)) as container:
        audio = container.streams.audio
        rate = audio[0].codec_context.sample_rate if audio else None
        frames = sum(1 for _ in container.decode(video=0))
    return {"frames": frames, "sample_rate": rate}

"""Keyframes and video extension: LTX2ConditionPipeline conditions built from the staged inputs, and an
extension's output assembled from the input's own frames and the new ones.

- Keyframes: the first frame (if any) is a condition at latent index 0, which replaces the first latent frame;
  the last frame is a condition at latent index -1, which diffusers appends as keyframe tokens positioned at the
  start of the last latent frame's 8 pixel frames (its `_prepare_keyframe_coords`). Both at strength 1.0.
- Extension at the end: the input's last 8j+1 frames condition latent index 0 and the model renders them plus
  8k new frames; the output is the whole input, untouched, followed by the new frames (and their audio).
- Extension at the start: 8k+1 new frames, then the input's first 8j+1 frames as keyframe tokens at latent index
  k+1 (pixel frame 8k+1); the output is the new frames followed by the whole input.
- generate_audio false: no audio is rendered, and an extension drops the input's audio too (video-only output).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import PIL.Image
import torch
from diffusers import LTX2ConditionPipeline, LTX2Pipeline
from diffusers.pipelines.ltx2 import LTX2VideoCondition
from PIL import ImageOps

from deployments.contract import InvalidInput, InvalidMedia, MediaLimits
from deployments.images import probe_image, read_image
from deployments.limits import recheck_media
from deployments.ltx2.args import LTX2Args
from deployments.ltx2.params import VAE_TEMPORAL_RATIO, LTX2Params, fit_size
from deployments.media import MediaError, decode_audio, iter_frames, probe

KEYFRAME_STRENGTH = 1.0  # the frame is kept exactly (no noise) through every step


@dataclass
class Conditioned:
    """A job that runs through LTX2ConditionPipeline: what the model renders, and how the output is assembled."""

    params: LTX2Params  # the rendered clip's size and frame count
    conditions: list[LTX2VideoCondition]
    source: np.ndarray | None = None  # extension: the input's frames (F, H, W, 3) uint8 RGB, at the output size
    source_audio: np.ndarray | None = None  # extension: the input's audio (2, samples) at the vocoder's rate
    details: dict[str, Any] = field(default_factory=dict)

    def assemble(self, video: np.ndarray, audio: Any, sample_rate: int | None) -> tuple[np.ndarray, Any]:
        """The output clip: the rendered one, or for an extension the input joined with the new frames.
        `audio` and `sample_rate` None: a video-only clip (generate_audio false)."""
        if self.source is None or self.params.extend is None:
            return video, audio
        added, at_end = self.details["added_frames"], self.params.extend == "end"
        generated = np.asarray(video[0], dtype=np.float32)
        source = self.source.astype(np.float32) / 255.0  # the decoded frames' scale
        new = generated[len(generated) - added :] if at_end else generated[:added]
        frames = np.concatenate([source, new] if at_end else [new, source])[None]
        if audio is None or sample_rate is None:
            return frames, None
        wave = audio[0].float().cpu().numpy()
        # the new frames' share of the rendered audio (measured on the waveform, not assumed from the rate)
        new_samples = round(wave.shape[1] * added / self.params.num_frames)
        new_wave = wave[:, wave.shape[1] - new_samples :] if at_end else wave[:, :new_samples]
        source_audio = self._source_audio(sample_rate)
        sound = np.concatenate([source_audio, new_wave] if at_end else [new_wave, source_audio], axis=1)
        return frames, torch.from_numpy(np.ascontiguousarray(sound[None])).to(audio.dtype)

    def _source_audio(self, sample_rate: int) -> np.ndarray:
        """The input's audio, exactly as long as its frames (silence where it has none)."""
        samples = round(len(self.source) / self.params.fps * sample_rate)  # type: ignore[arg-type]
        audio = self.source_audio if self.source_audio is not None else np.zeros((2, 0), np.float32)
        audio = audio[:, :samples]
        return np.pad(audio, ((0, 0), (0, samples - audio.shape[1])))


def build_condition_pipelines(pipes: dict[bool, LTX2Pipeline]) -> dict[bool, LTX2ConditionPipeline]:
    """distilled -> LTX2ConditionPipeline sharing that pipeline's modules and scheduler (no weights copied)."""
    return {distilled: LTX2ConditionPipeline(**pipe.components) for distilled, pipe in pipes.items()}


def condition_noise_scale(stage_noise_scale: float) -> float | None:
    """The condition pipeline mixes noise into every token by `noise_scale`: 0 would start from no noise at all,
    so a stage that starts fresh passes None (= its first sigma) and a re-noising stage keeps its own value."""
    return stage_noise_scale or None


def prepare(params: LTX2Params, inputs: dict[str, Path], args: LTX2Args, sample_rate: int | None) -> Conditioned | None:
    """The conditions of a keyframe or extension job; None for plain text- or image-to-video. `sample_rate` is
    the vocoder's, which an extension's input audio is resampled to; None = no audio (not even the input's)."""
    if params.extend is not None:
        return _extension(params, inputs, args, sample_rate)
    if params.end_image:
        conditions = []
        if params.image_to_video:
            conditions.append(_image_condition(inputs, "image", 0, args))
        conditions.append(_image_condition(inputs, "end_image", -1, args))
        return Conditioned(params=params, conditions=conditions)
    return None


def open_image(inputs: dict[str, Path], name: str, limits: MediaLimits) -> PIL.Image.Image:
    """A staged image, upright and RGB, checked against `limits` from its header before it is decoded."""
    if name not in inputs:
        raise InvalidInput(name, f"the job needs its staged {name}")
    try:
        recheck_media(name, "image", probe_image(inputs[name]), limits)
        return read_image(inputs[name], limits)
    except MediaError as exc:
        raise InvalidMedia("image", f"{name}: cannot decode the staged image ({exc})") from exc


def _image_condition(inputs: dict[str, Path], name: str, index: int, args: LTX2Args) -> LTX2VideoCondition:
    # The pipeline scales the image to cover each stage's size and centre-crops it.
    image = open_image(inputs, name, args.limits.image)
    return LTX2VideoCondition(frames=image, index=index, strength=KEYFRAME_STRENGTH, crf=args.image_crf)


def _extension(params: LTX2Params, inputs: dict[str, Path], args: LTX2Args, sample_rate: int | None) -> Conditioned:
    if "video" not in inputs:
        raise InvalidInput("video", "an extension needs its staged video")
    if params.num_frames == "auto":  # planning refuses an extension without `duration`
        raise InvalidInput("duration", "an extension needs the seconds to add")
    path, added = inputs["video"], params.num_frames
    limits = args.limits.video
    try:
        info = probe(path)
        recheck_media("video", "video", info, limits)
        width, height = fit_size(info.width, info.height, params.quality, args.max_side)
        # checked at staging too (from the container's duration); this is the exact count
        source = read_frames(path, info.fps, params.fps, (width, height), args.max_extend_frames - added, limits)
        source_audio = load_source_audio(path, sample_rate, limits) if info.has_audio and sample_rate else None
    except MediaError as exc:
        raise InvalidMedia("video", f"video: cannot decode the staged video ({exc})") from exc
    context = VAE_TEMPORAL_RATIO * ((len(source) - 1) // VAE_TEMPORAL_RATIO) + 1  # the most 8j+1 frames it holds
    if params.extend == "end":
        condition = LTX2VideoCondition(frames=source[len(source) - context :], index=0, strength=KEYFRAME_STRENGTH)
        rendered = context + added
    else:  # the context's latent index k+1 starts at pixel frame 8k+1 = added; 7 spare frames follow it
        condition = LTX2VideoCondition(
            frames=source[:context], index=(added - 1) // VAE_TEMPORAL_RATIO + 1, strength=KEYFRAME_STRENGTH
        )
        rendered = added + context - 1 + VAE_TEMPORAL_RATIO
    return Conditioned(
        params=params.model_copy(update={"width": width, "height": height, "num_frames": rendered}),
        conditions=[condition],
        source=source,
        source_audio=source_audio,
        details={
            "num_frames": len(source) + added,
            "input_frames": len(source),
            "added_frames": added,
            "context_frames": context,
            "rendered_frames": rendered,
            "width": width,
            "height": height,
        },
    )


def read_frames(
    path: Path, source_fps: float, fps: int, size: tuple[int, int], limit: int, limits: MediaLimits | None = None
) -> np.ndarray:
    """The video's frames resampled to `fps` (each output frame shows the input frame on screen at its time),
    scaled to cover `size` and centre-cropped: (F, H, W, 3) uint8 RGB. More than `limit` frames is refused."""
    step = (source_fps or fps) / fps  # input frames per output frame
    frames: list[np.ndarray] = []
    for index, frame in enumerate(iter_frames(path, pixel_format="rgb24", limits=limits)):
        fitted = None  # resized once, only if shown: a slower input repeats it, a faster one skips frames
        while int(len(frames) * step + 1e-6) == index:
            if len(frames) >= limit:
                raise InvalidInput(
                    "video",
                    f"holds over {limit} frames at {fps} fps: with the added frames that is "
                    "over the frame limit of an extension",
                )
            if fitted is None:
                fitted = np.asarray(ImageOps.fit(PIL.Image.fromarray(frame), size, PIL.Image.LANCZOS))
            frames.append(fitted)
    if not frames:
        raise MediaError("no frames")
    return np.stack(frames)


def load_source_audio(path: Path, sample_rate: int, limits: MediaLimits | None = None) -> np.ndarray:
    """The input video's audio as stereo (2, samples) at `sample_rate`."""
    audio = decode_audio(path, sample_rate=sample_rate, mono=False, limits=limits)
    return np.repeat(audio, 2, axis=0) if audio.shape[0] == 1 else audio

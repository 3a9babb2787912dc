"""`Wav2LipRunner`: loads the generator and face detector once per replica, then runs one job at a time."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pydantic
import torch

from deployments.contract import RANDOM_WEIGHTS, JobFailed, JobSpec, Reporter, RunOutput, resolve_device
from deployments.wav2lip.args import Wav2LipArgs
from deployments.wav2lip.audio import SAMPLE_RATE, melspectrogram
from deployments.wav2lip.face import build_detector
from deployments.wav2lip.network import IMG_SIZE, MEL_BINS, MEL_STEPS, build_wav2lip, fold_batchnorm
from deployments.wav2lip.pipeline import LipSyncPipeline, SyncParams, autocast
from deployments.weights import fetch_weights

logger = logging.getLogger(__name__)

_CHECKPOINT_SUFFIXES = (".pth", ".pt", ".safetensors")


def checkpoint_file(path: Path) -> Path:
    """`path` itself, or the one checkpoint file inside a fetched directory (hf:// and s3:// give folders)."""
    if not path.is_dir():
        return path
    found = sorted(p for p in path.rglob("*") if p.suffix in _CHECKPOINT_SUFFIXES)
    if len(found) != 1:
        names = ", ".join(p.name for p in found) or "none"
        raise ValueError(f"{path} must hold exactly one {'/'.join(_CHECKPOINT_SUFFIXES)} file; found {names}")
    return found[0]


class Wav2LipRunner:
    """Implements `ModelRunner` for lip sync; construction is the slow part (weights -> device)."""

    def __init__(self, args: Wav2LipArgs) -> None:
        self.args = args
        self.device = resolve_device(args.device)
        if args.weights:
            generator = build_wav2lip(checkpoint_file(fetch_weights(args.weights, args.weights_cache_dir)))
            self.weights = args.weights
        elif args.allow_random_weights:
            logger.warning(
                "!!! wav2lip: NO WEIGHTS CONFIGURED - using a RANDOMLY INITIALISED generator. Output mouths are "
                "noise. Set args.wav2lip.weights to the official wav2lip.pth / wav2lip_gan.pth for real results !!!"
            )
            generator = build_wav2lip(None)
            self.weights = RANDOM_WEIGHTS
        else:
            raise ValueError(
                "wav2lip: `weights` is not set. Point it at wav2lip_gan.pth (local path, hf://, s3://), "
                "or set allow_random_weights: true for a local test profile"
            )
        detector_weights = None
        if args.detector_weights:
            detector_weights = checkpoint_file(fetch_weights(args.detector_weights, args.weights_cache_dir))
        self.detector = build_detector(args.detector, detector_weights, self.device)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed 96x96 shapes: autotuning pays off from the 2nd batch
        # Batches arrive as permuted NHWC arrays (channels_last strides): matching weights skip a relayout per conv.
        generator = fold_batchnorm(generator).to(self.device, memory_format=torch.channels_last)
        self.pipeline = LipSyncPipeline(generator, self.detector, self.device, args)
        self._warm_up(generator)

    @torch.inference_mode()
    def _warm_up(self, generator: torch.nn.Module) -> None:
        """One tiny mel + forward pass: the first job skips librosa's lazy imports and kernel selection, and a
        precision the device cannot run fails the replica's start, not a job."""
        melspectrogram(np.zeros(SAMPLE_RATE // 4, np.float32))
        audio = torch.zeros(1, 1, MEL_BINS, MEL_STEPS, device=self.device)
        with autocast(self.device, self.args.precision):
            generator(audio, torch.zeros(1, 6, IMG_SIZE, IMG_SIZE, device=self.device))

    def run(self, job: JobSpec, inputs: dict[str, Path], workdir: Path, reporter: Reporter) -> RunOutput:
        """Lip-sync `inputs["face"]` (video or image) to `inputs["audio"]`; write `workdir/output.mp4`."""
        try:
            params = SyncParams.model_validate(job.params)
        except pydantic.ValidationError as exc:
            raise JobFailed(f"invalid wav2lip params: {exc}", code="invalid_params") from exc
        missing = sorted({"face", "audio"} - inputs.keys())
        if missing:
            raise JobFailed(f"wav2lip needs inputs 'face' and 'audio'; missing {missing}", code="invalid_input")
        out = workdir / "output.mp4"
        details = self.pipeline(Path(inputs["face"]), Path(inputs["audio"]), out, params, reporter)
        details |= {"weights": self.weights, "detector": type(self.detector).__name__, "blend": params.blend,
                    "active_speaker": params.model_dump(mode="json")["active_speaker"]}  # fmt: skip
        return RunOutput(video_path=out, details=details)

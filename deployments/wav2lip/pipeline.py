"""One lip-sync job: audio -> mel windows, face track, batched generator, blended paste, H.264 + AAC mp4.

The face video is read twice, streaming: a detection pass at low resolution that keeps only boxes, then a
synthesis pass that decodes, generates, pastes and encodes one batch at a time. Nothing holds the whole video.
"""

from __future__ import annotations

import contextlib
import itertools
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypeVar

import cv2
import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from deployments.contract import InvalidMedia, JobFailed, Reporter
from deployments.images import image_array, probe_image
from deployments.limits import recheck_media
from deployments.media import MediaError, VideoWriter, decode_audio, iter_frames, iter_sampled_frames, probe
from deployments.wav2lip import audio as mels
from deployments.wav2lip import face, timing
from deployments.wav2lip.args import Wav2LipArgs
from deployments.wav2lip.network import IMG_SIZE, MEL_STEPS, Wav2Lip
from deployments.wav2lip.request import SpeakerPoint

_MUX_RATE = 48_000  # output audio rate; AAC's most common
_HOLD_BYTES = 256 << 20  # frames kept to play a video backwards (bounce)
_F = TypeVar("_F")
_END = object()


class SyncParams(BaseModel):
    """The job fields this pipeline reads from `JobSpec.params` (validated by the gateway; defaults here)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    face_kind: Literal["video", "image"] = "video"
    fps: float = Field(25.0, gt=0, description="Output frame rate for a still image.")
    pads: tuple[int, int, int, int] = Field((0, 10, 0, 0), description="Box padding: top, bottom, left, right.")
    smooth: bool = True
    blend: Literal["feather", "hard"] = "feather"
    on_no_face: Literal["keep", "fail"] = "keep"
    sync_mode: timing.SyncMode = "loop"
    active_speaker: Literal["largest"] | SpeakerPoint = "largest"


@dataclass
class StageClock:
    """Wall seconds per stage, summed; the bench reads it to split the time."""

    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))

    @contextlib.contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] += time.perf_counter() - start

    def frames(self, source: Iterator[_F]) -> Iterator[_F]:
        """`source`, with the time spent decoding each frame charged to "decode"."""
        while True:
            with self("decode"):
                frame = next(source, _END)
            if frame is _END:
                return
            yield frame


def _ramp(n: int, rise: tuple[float, float], fall: tuple[float, float]) -> np.ndarray:
    """1-D weights over n samples: 0 -> 1 across `rise`, 1 -> 0 across `fall` (fractions of n), smoothstepped."""
    x = (np.arange(n) + 0.5) / n
    up = np.clip((x - rise[0]) / (rise[1] - rise[0]), 0, 1)
    down = np.clip((fall[1] - x) / (fall[1] - fall[0]), 0, 1)
    t = np.minimum(up, down)
    return t * t * (3 - 2 * t)


# Only the lower face changes (the network sees the upper half unmasked), so blend from mid-face down and
# fade at the box edges: no visible seam, and the sharp original eyes are kept.
_FEATHER = np.outer(_ramp(IMG_SIZE, (0.42, 0.62), (0.9, 1.0)), _ramp(IMG_SIZE, (0.0, 0.15), (0.85, 1.0)))


def paste(frame: np.ndarray, face96: np.ndarray, box: tuple[int, int, int, int], blend: str) -> None:
    """Resize a generated 96x96 face into `box` of `frame`, in place; "hard" is the official rectangle paste."""
    x1, y1, x2, y2 = box
    patch = cv2.resize(face96, (x2 - x1, y2 - y1), interpolation=cv2.INTER_LINEAR)  # the official resize
    if blend == "hard":
        frame[y1:y2, x1:x2] = patch
        return
    weight = cv2.resize(_FEATHER, (x2 - x1, y2 - y1))[..., None]
    region = frame[y1:y2, x1:x2].astype(np.float32)
    frame[y1:y2, x1:x2] = (region + (patch - region) * weight + 0.5).astype(np.uint8)


@contextlib.contextmanager
def _readable(name: str, kind: str) -> Iterator[None]:
    """Turn a media error into a final job failure (`invalid_<kind>`) that names the input."""
    try:
        yield
    except MediaError as exc:
        raise InvalidMedia(kind, f"{name} input: {exc}") from exc


def shrink(frame: np.ndarray, max_side: int | None) -> np.ndarray:
    """`frame` shrunk (area interpolation, as the video path) so no side exceeds `max_side`."""
    scale = min(1.0, max_side / max(frame.shape[:2])) if max_side else 1.0
    if scale >= 1:
        return frame
    size = (max(1, round(frame.shape[1] * scale)), max(1, round(frame.shape[0] * scale)))
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """The generator's precision: "auto" is fp16 autocast on CUDA and fp32 elsewhere (the official recipe's
    numbers on CPU; bf16 moves outputs up to 40 of 255 levels, so it is used only when configured)."""
    if precision == "auto":
        precision = "fp16" if device.type == "cuda" else "fp32"
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype={"fp16": torch.float16, "bf16": torch.bfloat16}[precision])


def _crop_box(box: np.ndarray) -> tuple[int, int, int, int] | None:
    """A padded track row as integer crop corners; None without a face or for a box too thin to resize."""
    if np.isnan(box[0]):
        return None
    x1, y1, x2, y2 = (int(v) for v in box)
    return (x1, y1, x2, y2) if x2 - x1 >= 2 and y2 - y1 >= 2 else None


@dataclass(frozen=True)
class _Inputs:
    """What the job's inputs hold, once checked."""

    width: int
    height: int
    fps: float
    video_s: float  # the face video's probed length (0 for an image)
    wav: np.ndarray  # mono at mels.SAMPLE_RATE, for the mel features
    audio: np.ndarray  # (channels, samples) at _MUX_RATE, for the output
    audio_frames: int  # the audio's length in output frames


@dataclass(frozen=True)
class _Clip:
    """The output as the sync mode lays it out: its frames, their source frames and their audio."""

    width: int
    height: int
    fps: float
    mel: np.ndarray
    audio: np.ndarray  # (channels, samples) at _MUX_RATE, fitted to the output
    order: np.ndarray  # source frame of each output frame

    @property
    def frames(self) -> int:
        return len(self.order)


class LipSyncPipeline:
    """A loaded generator and face detector that turn (face, audio) into a lip-synced mp4."""

    def __init__(
        self, generator: Wav2Lip, detector: face.FaceDetector, device: torch.device, args: Wav2LipArgs
    ) -> None:
        self.generator, self.detector, self.device, self.args = generator, detector, device, args

    def __call__(
        self, face_path: Path, audio_path: Path, out_path: Path, params: SyncParams, reporter: Reporter
    ) -> dict[str, object]:
        """Write the lip-synced video to `out_path`; return what was made (sizes, counts, stage seconds)."""
        clock = StageClock()
        # 1. Check the inputs and compute the mel features
        reporter.report("decoding", 0.0)
        with clock("mel"):
            inputs = self._load(face_path, audio_path, params)
        # 2. Detect: one box (or NaN) per source frame used; the sync mode then lays out the output
        with _readable("face", params.face_kind):
            track = self._detect(face_path, inputs, params, reporter, clock)
        with clock("mel"):
            clip = self._lay_out(inputs, len(track), params)
        missing = np.isnan(track[clip.order, 0])
        if params.on_no_face == "fail" and missing.any():
            frame = int(np.argmax(missing))
            raise JobFailed(f"no face found in frame {frame} ({frame / clip.fps:.2f} s)", code="no_face")
        # 3. Generate and paste batch by batch, encoding as we go
        with _readable("face", params.face_kind):
            self._synthesise(face_path, out_path, clip, track, params, reporter, clock)
        reporter.report("encoding", 1.0)
        return {
            "fps": clip.fps, "frames": clip.frames, "width": clip.width - clip.width % 2,
            "height": clip.height - clip.height % 2, "duration_s": clip.frames / clip.fps,
            "faces_found": int((~missing).sum()), "frames_without_face": int(missing.sum()),
            "source_frames": len(track), "stage_seconds": {k: round(v, 3) for k, v in clock.seconds.items()},
            "sync_mode": params.sync_mode, "input_video_s": round(inputs.video_s, 3) if inputs.video_s else None,
            "input_audio_s": round(len(inputs.wav) / mels.SAMPLE_RATE, 3),
        }  # fmt: skip

    def _load(self, face_path: Path, audio_path: Path, params: SyncParams) -> _Inputs:
        limits = self.args.limits
        with _readable("face", params.face_kind):
            info = probe_image(face_path) if params.face_kind == "image" else probe(face_path)
        recheck_media("face", params.face_kind, info, limits.of(params.face_kind))
        if not info.has_video:
            raise InvalidMedia(params.face_kind, "face input: holds no image or video stream")
        with _readable("audio", "audio"):
            recheck_media("audio", "audio", probe(audio_path), limits.audio)
            wav = mels.load_wav(audio_path, limits.audio)
        duration = len(wav) / mels.SAMPLE_RATE
        if duration > self.args.max_duration_s:
            raise InvalidMedia("audio", f"audio lasts {duration:.1f} s; the limit is {self.args.max_duration_s} s")
        if 1 + len(wav) // mels.HOP < MEL_STEPS:  # one window, 0.2 s
            raise InvalidMedia("audio", f"audio lasts {duration:.2f} s; at least 0.2 s is needed")
        with _readable("audio", "audio"):
            mux = decode_audio(audio_path, sample_rate=_MUX_RATE, mono=False, limits=limits.audio)
        fps = params.fps if params.face_kind == "image" or not info.fps else info.fps
        video_s = info.duration_s if params.face_kind == "video" else 0.0
        return _Inputs(info.width, info.height, fps, video_s, wav, mux, mels.frame_count(len(wav), fps))

    def _lay_out(self, inputs: _Inputs, sources: int, params: SyncParams) -> _Clip:
        """The output's frames and audio under the job's sync mode (only cut_off and silence change the audio)."""
        total = timing.output_frames(params.sync_mode, sources, inputs.audio_frames)
        if total / inputs.fps > self.args.max_duration_s:  # silence: as long as the video
            raise JobFailed(f"the output would last {total / inputs.fps:.1f} s; the limit is "
                            f"{self.args.max_duration_s} s", code="invalid_video")  # fmt: skip
        wav, mux = inputs.wav, inputs.audio
        if params.sync_mode in ("cut_off", "silence"):
            seconds = total / inputs.fps
            mux = timing.fit_audio(mux, round(seconds * _MUX_RATE))
            # the mel needs one 0.2 s window even when a cut leaves less audio
            wav = timing.fit_audio(wav, max(round(seconds * mels.SAMPLE_RATE), (MEL_STEPS - 1) * mels.HOP))
        order = timing.source_order(params.sync_mode, sources, total)
        return _Clip(inputs.width, inputs.height, inputs.fps, mels.melspectrogram(wav), mux, order)

    def _source(self, face_path: Path, params: SyncParams) -> Iterator[np.ndarray]:
        if params.face_kind == "image":
            return iter([image_array(face_path, self.args.limits.image)])
        return iter_frames(face_path, limits=self.args.limits.video)

    def _detect(
        self, face_path: Path, inputs: _Inputs, params: SyncParams, reporter: Reporter, clock: StageClock
    ) -> np.ndarray:
        """(source frames used, 4) full-resolution face track, NaN rows where there is no face."""
        every, batch_size, keys = self.args.detect_every, self.args.face_det_batch_size, []
        used, batch, scale = 0, [], 1.0
        frames = self._sampled(face_path, params)
        # a video that outlasts the audio is read only as far as it is shown, unless the mode needs its length
        limit = None if timing.reads_whole_video(params.sync_mode) else inputs.audio_frames
        expected = max(inputs.audio_frames, round(inputs.video_s * inputs.fps))
        for index, small in enumerate(itertools.islice(clock.frames(frames), limit)):
            used = index + 1
            if small is None:  # between keyframes: decoded, not converted
                continue
            scale = small.shape[1] / inputs.width
            batch.append(small)
            if len(batch) == batch_size:
                keys.append(self._detect_batch(batch, scale, clock, reporter))
                reporter.report("detecting", 0.3 * min(1.0, used / expected))
                batch = []
        if batch:
            keys.append(self._detect_batch(batch, scale, clock, reporter))
        if used == 0:
            raise InvalidMedia(params.face_kind, "the face input holds no frames")
        speaker = self._speaker([f for batch in keys for f in batch], params, inputs.fps, used)
        track = face.fill_between_keyframes(speaker, every, used)
        track = face.pad_track(track, params.pads, inputs.width, inputs.height)
        return face.smooth_track(track, self.args.smooth_window) if params.smooth else track

    def _sampled(self, face_path: Path, params: SyncParams) -> Iterator[np.ndarray | None]:
        """Every `detect_every`th face frame shrunk for detection (the others None); an image is one frame."""
        max_side = self.args.detect_max_side
        if params.face_kind == "image":
            return iter([shrink(image_array(face_path, self.args.limits.image), max_side)])
        every, limits = self.args.detect_every, self.args.limits.video
        return iter_sampled_frames(face_path, every=every, max_side=max_side, limits=limits)

    def _detect_batch(
        self, batch: list[np.ndarray], scale: float, clock: StageClock, reporter: Reporter
    ) -> list[np.ndarray]:
        reporter.raise_if_cancelled()
        with clock("detect"):
            return face.scaled_faces(self.detector.detect(batch), scale)

    def _speaker(self, faces: list[np.ndarray], params: SyncParams, fps: float, used: int) -> np.ndarray:
        """(keyframes, 4) track of the face that speaks, NaN where it is not seen."""
        point = params.active_speaker
        if point == "largest":
            return face.largest_speaker(faces)
        frame = round(point.at_s * fps) if params.face_kind == "video" else 0
        if frame >= used:
            raise JobFailed(f"active_speaker: {point.at_s:.2f} s is past the part of the face video used "
                            f"({used / fps:.2f} s)", code="speaker_not_found")  # fmt: skip
        key = min(round(frame / self.args.detect_every), len(faces) - 1)
        first = face.face_at(faces[key], point.x, point.y)
        if first is None:
            raise JobFailed(f"active_speaker: no face contains ({point.x:g}, {point.y:g}) at {point.at_s:.2f} s",
                            code="speaker_not_found")  # fmt: skip
        return face.follow_face(faces, key, first)

    def _synthesise(
        self,
        face_path: Path,
        out_path: Path,
        clip: _Clip,
        track: np.ndarray,
        params: SyncParams,
        reporter: Reporter,
        clock: StageClock,
    ) -> None:
        starts = mels.window_starts(clip.mel.shape[1], clip.fps, clip.frames)
        writer = VideoWriter(
            out_path, width=clip.width, height=clip.height, fps=clip.fps, audio=clip.audio,
            sample_rate=_MUX_RATE, crf=self.args.video_crf, preset=self.args.video_preset,
        )  # fmt: skip
        hold = max(self.args.batch_size, _HOLD_BYTES // (3 * clip.width * clip.height))
        frames = timing.ordered_frames(lambda: clock.frames(self._source(face_path, params)), clip.order, hold)
        first = 0
        with writer:
            while batch := list(itertools.islice(frames, self.args.batch_size)):
                reporter.raise_if_cancelled()
                boxes = [_crop_box(track[r]) for r in clip.order[first : first + len(batch)]]
                self._sync_batch(batch, boxes, clip.mel, starts[first : first + len(batch)], params, clock)
                with clock("encode"):
                    for frame in batch:
                        writer.write(frame)
                first += len(batch)
                reporter.report("lip_sync", 0.3 + 0.69 * first / clip.frames)
            reporter.report("encoding", 0.99)
            with clock("encode"):
                writer.close()

    @torch.inference_mode()
    def _sync_batch(
        self,
        frames: list[np.ndarray],
        boxes: list[tuple[int, int, int, int] | None],
        mel: np.ndarray,
        starts: np.ndarray,
        params: SyncParams,
        clock: StageClock,
    ) -> None:
        """Replace the lower face of every frame that has a box, in place."""
        todo = [(i, box) for i, box in enumerate(boxes) if box is not None]
        if not todo:
            return
        with clock("paste"):
            size = (IMG_SIZE, IMG_SIZE)
            crops = np.stack([cv2.resize(frames[i][y1:y2, x1:x2], size) for i, (x1, y1, x2, y2) in todo])
        with clock("generator"):
            faces = torch.from_numpy(crops).to(self.device).permute(0, 3, 1, 2).float() / 255.0
            masked = faces.clone()
            masked[:, :, IMG_SIZE // 2 :] = 0  # the network redraws the lower half from the audio
            windows = mels.mel_windows(mel, starts[[i for i, _ in todo]])
            audio = torch.from_numpy(windows).to(self.device)[:, None]
            with autocast(self.device, self.args.precision):
                out = self.generator(audio, torch.cat([masked, faces], dim=1))
            # truncation, not rounding, as the official script's astype(uint8)
            generated = (out.float() * 255.0).clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        with clock("paste"):
            for face96, (i, box) in zip(generated, todo, strict=True):
                paste(frames[i], face96, box, params.blend)

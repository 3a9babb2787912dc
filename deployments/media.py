"""Video and audio I/O shared by the models and the gateway, in-process with PyAV (no ffmpeg shell).

Decoding streams frame by frame, so a long video is never held in memory; writing takes frames one at a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal

import av
import cv2
import numpy as np

_AAC_RATES = frozenset({96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000})


class MediaError(ValueError):
    """A file that PyAV cannot read as the media it claims to be."""


@dataclass(frozen=True)
class MediaInfo:
    """What a media file holds, read from its container headers (no full decode)."""

    has_video: bool
    has_audio: bool
    sample_rate: int = 0  # of the first audio stream
    width: int = 0
    height: int = 0
    fps: float = 0.0
    duration_s: float = 0.0
    path: str = ""  # the probed file, for checks that look inside it (a face in an image)


def probe(path: str | Path) -> MediaInfo:
    """Read the streams of an image, video or audio file; raise `MediaError` if it is not media."""
    try:
        with av.open(str(path)) as container:
            video = container.streams.video[0] if container.streams.video else None
            audio = container.streams.audio[0] if container.streams.audio else None
            duration = container.duration / av.time_base if container.duration else 0.0
            if video is None and audio is None:
                raise MediaError("no audio or video stream")
            sample_rate = audio.codec_context.sample_rate if audio is not None else 0
            if video is not None:
                if not duration and video.duration and video.time_base:
                    duration = float(video.duration * video.time_base)
                rate = video.average_rate or video.guessed_rate
                return MediaInfo(
                    has_video=True,
                    has_audio=audio is not None,
                    sample_rate=sample_rate,
                    width=video.codec_context.width,
                    height=video.codec_context.height,
                    fps=float(rate) if rate else 0.0,
                    duration_s=duration,
                    path=str(path),
                )
            if not duration and audio.duration and audio.time_base:
                duration = float(audio.duration * audio.time_base)
            return MediaInfo(
                has_video=False, has_audio=True, sample_rate=sample_rate, duration_s=duration, path=str(path)
            )
    except av.FFmpegError as exc:
        raise MediaError(f"cannot read media: {exc}") from exc


def _open(path: str | Path) -> av.container.InputContainer:
    try:
        return av.open(str(path))
    except av.FFmpegError as exc:
        raise MediaError(f"cannot read media: {exc}") from exc


def iter_frames(path: str | Path, *, pixel_format: str = "bgr24", max_side: int | None = None) -> Iterator[np.ndarray]:
    """Decode a video (or one image) frame by frame as HxWx3 uint8, shrunk so no side exceeds `max_side`."""
    for frame in iter_sampled_frames(path, every=1, pixel_format=pixel_format, max_side=max_side):
        assert frame is not None  # every=1 converts every frame
        yield frame


def iter_sampled_frames(
    path: str | Path, *, every: int, pixel_format: str = "bgr24", max_side: int | None = None
) -> Iterator[np.ndarray | None]:
    """`iter_frames`, converting only every Nth frame: the others are decoded (the codec needs them) but
    yielded as None, which saves the colour conversion and scaling while the caller still counts them."""
    with _open(path) as container:
        if not container.streams.video:
            raise MediaError("no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"  # frame + slice threads: decoding is otherwise single-core
        try:
            for index, frame in enumerate(container.decode(stream)):
                if index % every:
                    yield None
                    continue
                scale = min(1.0, max_side / max(frame.width, frame.height)) if max_side else 1.0
                size = {"width": round(frame.width * scale), "height": round(frame.height * scale)}
                # scaling inside the colour conversion costs nothing extra (one swscale pass)
                yield frame.to_ndarray(format=pixel_format, interpolation="AREA", **(size if scale < 1 else {}))
        except av.FFmpegError as exc:
            raise MediaError(f"cannot decode video: {exc}") from exc


def _layout(channels: int) -> str:
    if channels not in (1, 2):
        raise ValueError(f"audio must have 1 or 2 channels, got {channels}")
    return "mono" if channels == 1 else "stereo"


def decode_audio(path: str | Path, *, sample_rate: int | None = 16_000, mono: bool = True) -> np.ndarray:
    """The first audio stream as (channels, samples) float32 at `sample_rate` (None: the stream's own rate).

    `mono` averages all channels (as librosa does; swresample's downmix would be 3 dB louder). Otherwise the
    source's channels are kept, and more than two are downmixed to stereo.
    """
    with _open(path) as container:
        if not container.streams.audio:
            raise MediaError("no audio stream")
        stream = container.streams.audio[0]
        keep = mono or (stream.codec_context.channels or 1) <= 2
        resampler = av.AudioResampler(format="fltp", layout=None if keep else "stereo", rate=sample_rate)
        try:
            chunks = [out.to_ndarray() for frame in container.decode(stream) for out in resampler.resample(frame)]
            chunks += [out.to_ndarray() for out in resampler.resample(None)]
        except av.FFmpegError as exc:
            raise MediaError(f"cannot decode audio: {exc}") from exc
    if not chunks or sum(c.shape[1] for c in chunks) == 0:
        raise MediaError("audio stream holds no samples")
    samples = np.concatenate(chunks, axis=1)
    return (samples.mean(axis=0, keepdims=True) if mono else samples).astype(np.float32, copy=False)


def _encode_aac(container: av.container.OutputContainer, audio: np.ndarray, sample_rate: int) -> list[av.Packet]:
    """An AAC stream (at a rate AAC supports, 48 kHz otherwise) holding all of `audio`, as packets to mux."""
    samples = np.clip(np.atleast_2d(np.asarray(audio, dtype=np.float32)), -1.0, 1.0)
    layout = _layout(len(samples))
    stream = container.add_stream("aac", rate=sample_rate if sample_rate in _AAC_RATES else 48_000, layout=layout)
    frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples), format="fltp", layout=layout)
    frame.sample_rate, frame.pts, frame.time_base = sample_rate, 0, Fraction(1, sample_rate)
    # AAC takes exactly 1024 samples per frame; the resampler cuts them
    resampler = av.AudioResampler(format="fltp", layout=layout, rate=stream.rate, frame_size=1024)
    packets = [p for f in resampler.resample(frame) for p in stream.encode(f)]
    packets += [p for f in resampler.resample(None) for p in stream.encode(f)]
    return packets + list(stream.encode(None))


class VideoWriter:
    """An H.264 (yuv420p) + AAC mp4 written frame by frame; audio is interleaved with the video as it goes.

    Frames are HxWx3 uint8 in `pixel_format` ("bgr24" for OpenCV-style frames, "rgb24" otherwise). yuv420p
    needs even sizes, so an odd width or height loses its last column or row. `audio` is float in [-1, 1],
    shaped (samples,) or (channels, samples) with 1 or 2 channels, at any `sample_rate`.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        width: int,
        height: int,
        fps: float,
        audio: np.ndarray | None = None,
        sample_rate: int | None = None,
        pixel_format: Literal["bgr24", "rgb24"] = "bgr24",
        crf: int = 18,
        preset: str = "veryfast",
    ) -> None:
        if audio is not None:  # checked before the file is opened, so a bad call leaves nothing open
            if not sample_rate:
                raise ValueError("sample_rate is required with audio")
            _layout(np.atleast_2d(audio).shape[0])
        self.width, self.height = width - width % 2, height - height % 2
        self.frames = 0
        self._closed = False
        self._to_i420 = {"bgr24": cv2.COLOR_BGR2YUV_I420, "rgb24": cv2.COLOR_RGB2YUV_I420}[pixel_format]
        self._rate = Fraction(fps).limit_denominator(1001)  # 29.97 -> 30000/1001
        self._container = av.open(str(path), mode="w", options={"movflags": "+faststart"})
        self._video = self._container.add_stream("libx264", rate=self._rate)
        self._video.width, self._video.height, self._video.pix_fmt = self.width, self.height, "yuv420p"
        self._video.options = {"crf": str(crf), "preset": preset}
        self._audio: list[av.Packet] = []
        if audio is not None and sample_rate:
            self._audio = _encode_aac(self._container, audio, sample_rate)[::-1]  # reversed: pop() takes the earliest

    def write(self, frame: np.ndarray) -> None:
        """Encode one frame, then mux the audio that plays up to the end of it."""
        if frame.shape[0] < self.height or frame.shape[1] < self.width:
            raise ValueError(f"frame is {frame.shape[1]}x{frame.shape[0]}, writer is {self.width}x{self.height}")
        # OpenCV's SIMD conversion (BT.601 limited range, like swscale's default) is ~3x cheaper than PyAV's
        yuv = cv2.cvtColor(np.ascontiguousarray(frame[: self.height, : self.width]), self._to_i420)
        video_frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
        video_frame.pts, video_frame.time_base = self.frames, 1 / self._rate
        self._container.mux(self._video.encode(video_frame))
        self.frames += 1
        self._mux_audio_until(self.frames / self._rate)

    def _mux_audio_until(self, seconds: float | None) -> None:
        while self._audio and (seconds is None or self._audio[-1].pts * self._audio[-1].time_base < seconds):
            self._container.mux(self._audio.pop())

    def close(self) -> None:
        """Flush the encoders and finish the file (once; later calls do nothing)."""
        if self._closed:
            return
        self._closed = True
        self._container.mux(self._video.encode(None))
        self._mux_audio_until(None)
        self._container.close()

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        if exc_type is None:
            self.close()
        elif not self._closed:  # failing or cancelled: release the file, skip the flush
            self._closed = True
            self._container.close()

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

from deployments.contract.limits import MediaLimits

_AAC_RATES = frozenset({96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000})


class MediaError(ValueError):
    """A file that PyAV cannot read as the media it claims to be, or one past a decode limit."""


# The decoders' own pixel cap (FFmpeg's `max_pixels`): a frame over it is refused before its buffer is allocated.
# Raised to the largest picture the models allow by `deployments.limits.apply_decoder_limits` (FFmpeg: INT_MAX).
DECODE_LIMITS = {"max_pixels": 50_000_000}


@dataclass(frozen=True)
class MediaInfo:
    """What a media file holds, read from its container and codec headers (at most one frame decoded)."""

    has_video: bool
    has_audio: bool
    sample_rate: int = 0  # of the first audio stream
    width: int = 0  # as displayed: a picture turned by 90 or 270 degrees has its sides swapped
    height: int = 0
    fps: float = 0.0
    duration_s: float = 0.0
    path: str = ""  # the probed file, for checks that look inside it (a face in an image)
    channels: int = 0  # of the first audio stream
    frames: int = 0  # video frames the container declares (or fps x duration)
    streams: int = 0  # every stream in the container, of any type
    rotation: int = 0  # degrees the picture is turned counter-clockwise for display (0, 90, 180 or 270)
    metadata_bytes: int = 0  # container and stream tags
    declared_bytes: int = 0  # the stream data the headers claim (bit rate x duration)
    file_bytes: int = 0
    container: str = ""  # FFmpeg's demuxer (e.g. "wav", "mov,mp4,m4a,3gp,3g2,mj2", "png_pipe"); "" for Pillow


def _metadata_bytes(container: av.container.InputContainer) -> int:
    tags = [container.metadata, *(stream.metadata for stream in container.streams)]
    return sum(len(k) + len(v) for mapping in tags for k, v in mapping.items())


def _declared_bytes(container: av.container.InputContainer, duration: float) -> int:
    """What the headers say the streams hold: each stream's bit rate over the duration."""
    rates = sum(stream.bit_rate or 0 for stream in container.streams)
    return int(rates * duration / 8)


def _first_frame_rotation(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> int:
    """The display rotation of the first frame (a phone video's display matrix), decoded under the pixel cap."""
    stream.codec_context.options = {"max_pixels": str(DECODE_LIMITS["max_pixels"])}
    for frame in container.decode(stream):
        return round((frame.rotation or 0) / 90) % 4 * 90
    raise MediaError("the video stream holds no frames")


def probe(path: str | Path) -> MediaInfo:
    """Read the streams of a video or audio file from its headers and its first frame; raise `MediaError` if it
    is not media (images: `deployments.images.probe_image`)."""
    try:
        with av.open(str(path)) as container:
            return _probe(container, Path(path))
    except av.FFmpegError as exc:
        raise MediaError(f"cannot read media: {type(exc).__name__}") from exc


def _probe(container: av.container.InputContainer, path: Path) -> MediaInfo:
    video = container.streams.video[0] if container.streams.video else None
    audio = container.streams.audio[0] if container.streams.audio else None
    if video is None and audio is None:
        raise MediaError("no audio or video stream")
    # the longest any header claims: the container's and the stream's own may disagree (one of them lying)
    main = video or audio
    stream_s = float(main.duration * main.time_base) if main.duration and main.time_base else 0.0
    duration = max(container.duration / av.time_base if container.duration else 0.0, stream_s)
    common = {
        "has_audio": audio is not None,
        "sample_rate": audio.codec_context.sample_rate if audio is not None else 0,
        "channels": audio.codec_context.channels if audio is not None else 0,
        "duration_s": duration,
        "path": str(path),
        "streams": len(container.streams),
        "metadata_bytes": _metadata_bytes(container),
        "declared_bytes": _declared_bytes(container, duration),
        "file_bytes": path.stat().st_size,
        "container": container.format.name,
    }
    if video is None:
        return MediaInfo(has_video=False, **common)
    rate = video.average_rate or video.guessed_rate
    fps = float(rate) if rate else 0.0
    width, height = video.codec_context.width, video.codec_context.height
    rotation = _first_frame_rotation(container, video) if width * height <= DECODE_LIMITS["max_pixels"] else 0
    if rotation in (90, 270):
        width, height = height, width
    frames = video.frames or round(fps * duration)
    duration = max(duration, frames / fps if fps else 0.0)  # a dozen frames at 0.001 fps claim hours
    common["duration_s"] = duration
    return MediaInfo(has_video=True, width=width, height=height, fps=fps, frames=frames, rotation=rotation, **common)


def _open(path: str | Path) -> av.container.InputContainer:
    try:
        return av.open(str(path))
    except av.FFmpegError as exc:
        raise MediaError(f"cannot read media: {type(exc).__name__}") from exc


def iter_frames(
    path: str | Path, *, pixel_format: str = "bgr24", max_side: int | None = None, limits: MediaLimits | None = None
) -> Iterator[np.ndarray]:
    """Decode a video frame by frame as HxWx3 uint8, upright (its display rotation applied), shrunk so no side
    exceeds `max_side`; past `limits` (frame size, frame count) the decode stops with `MediaError`."""
    for frame in iter_sampled_frames(path, every=1, pixel_format=pixel_format, max_side=max_side, limits=limits):
        assert frame is not None  # every=1 converts every frame
        yield frame


def iter_sampled_frames(
    path: str | Path,
    *,
    every: int,
    pixel_format: str = "bgr24",
    max_side: int | None = None,
    limits: MediaLimits | None = None,
) -> Iterator[np.ndarray | None]:
    """`iter_frames`, converting only every Nth frame: the others are decoded (the codec needs them) but
    yielded as None, which saves the colour conversion and scaling while the caller still counts them."""
    with _open(path) as container:
        if not container.streams.video:
            raise MediaError("no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"  # frame + slice threads: decoding is otherwise single-core
        max_pixels = min(DECODE_LIMITS["max_pixels"], limits.max_pixels if limits else 2**31 - 1)
        stream.codec_context.options = {"max_pixels": str(max_pixels)}
        try:
            for index, frame in enumerate(container.decode(stream)):
                _check_frame(frame, index, limits)
                if index % every:
                    yield None
                    continue
                yield _upright(_to_array(frame, pixel_format, max_side), frame.rotation)
        except av.FFmpegError as exc:
            raise MediaError(f"cannot decode video: {type(exc).__name__}") from exc


def _check_frame(frame: av.VideoFrame, index: int, limits: MediaLimits | None) -> None:
    """A frame past the limits stops the decode: a stream may change size, or hold more frames than declared."""
    if limits is None:
        return
    if index >= limits.max_frames:
        raise MediaError(f"holds over {limits.max_frames} frames, the limit")
    if frame.width * frame.height > limits.max_pixels:
        raise MediaError(f"frame {index} is {frame.width}x{frame.height}, over the {limits.max_pixels} pixel limit")


def _to_array(frame: av.VideoFrame, pixel_format: str, max_side: int | None) -> np.ndarray:
    scale = min(1.0, max_side / max(frame.width, frame.height)) if max_side else 1.0
    size = {"width": round(frame.width * scale), "height": round(frame.height * scale)}
    # scaling inside the colour conversion costs nothing extra (one swscale pass)
    return frame.to_ndarray(format=pixel_format, interpolation="AREA", **(size if scale < 1 else {}))


def _upright(array: np.ndarray, rotation: float | None) -> np.ndarray:
    """The picture as displayed: the display matrix turns it counter-clockwise by `rotation` degrees."""
    turns = round((rotation or 0) / 90) % 4
    return np.ascontiguousarray(np.rot90(array, k=turns)) if turns else array


def _layout(channels: int) -> str:
    if channels not in (1, 2):
        raise ValueError(f"audio must have 1 or 2 channels, got {channels}")
    return "mono" if channels == 1 else "stereo"


def decode_audio(
    path: str | Path, *, sample_rate: int | None = 16_000, mono: bool = True, limits: MediaLimits | None = None
) -> np.ndarray:
    """The first audio stream as (channels, samples) float32 at `sample_rate` (None: the stream's own rate).

    `mono` averages all channels (as librosa does; swresample's downmix would be 3 dB louder). Otherwise the
    source's channels are kept, and more than two are downmixed to stereo. Audio longer than `limits` allow stops
    the decode with `MediaError` (a header may understate the length).
    """
    with _open(path) as container:
        if not container.streams.audio:
            raise MediaError("no audio stream")
        stream = container.streams.audio[0]
        keep = mono or (stream.codec_context.channels or 1) <= 2
        resampler = av.AudioResampler(format="fltp", layout=None if keep else "stereo", rate=sample_rate)
        rate = sample_rate or stream.codec_context.sample_rate or 1
        budget = int(limits.max_duration_s * rate * 1.01) + 4096 if limits else None  # a frame of slack
        chunks: list[np.ndarray] = []
        decoded = 0
        try:
            for frame in _frames_then_flush(container, stream):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray())
                    decoded += out.samples
                if budget is not None and decoded > budget:
                    raise MediaError(f"lasts over the {limits.max_duration_s:g} s limit")  # type: ignore[union-attr]
        except av.FFmpegError as exc:
            raise MediaError(f"cannot decode audio: {type(exc).__name__}") from exc
    if not chunks or sum(c.shape[1] for c in chunks) == 0:
        raise MediaError("audio stream holds no samples")
    samples = np.concatenate(chunks, axis=1)
    return (samples.mean(axis=0, keepdims=True) if mono else samples).astype(np.float32, copy=False)


def _frames_then_flush(
    container: av.container.InputContainer, stream: av.AudioStream
) -> Iterator[av.AudioFrame | None]:
    """The stream's frames one at a time, then None (the resampler's flush)."""
    yield from container.decode(stream)
    yield None


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

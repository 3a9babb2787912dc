"""Video and audio I/O shared by the models and the gateway, in-process with PyAV (no ffmpeg shell)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av


class MediaError(ValueError):
    """A file that PyAV cannot read as the media it claims to be."""


@dataclass(frozen=True)
class MediaInfo:
    """What a media file holds, read from its container headers (no full decode)."""

    has_video: bool
    has_audio: bool
    width: int = 0
    height: int = 0
    fps: float = 0.0
    duration_s: float = 0.0


def probe(path: str | Path) -> MediaInfo:
    """Read the streams of an image, video or audio file; raise `MediaError` if it is not media."""
    try:
        with av.open(str(path)) as container:
            video = container.streams.video[0] if container.streams.video else None
            audio = container.streams.audio[0] if container.streams.audio else None
            duration = container.duration / av.time_base if container.duration else 0.0
            if video is None and audio is None:
                raise MediaError("no audio or video stream")
            if video is not None:
                if not duration and video.duration and video.time_base:
                    duration = float(video.duration * video.time_base)
                rate = video.average_rate or video.guessed_rate
                return MediaInfo(
                    has_video=True,
                    has_audio=audio is not None,
                    width=video.codec_context.width,
                    height=video.codec_context.height,
                    fps=float(rate) if rate else 0.0,
                    duration_s=duration,
                )
            if not duration and audio.duration and audio.time_base:
                duration = float(audio.duration * audio.time_base)
            return MediaInfo(has_video=False, has_audio=True, duration_s=duration)
    except av.FFmpegError as exc:
        raise MediaError(f"cannot read media: {exc}") from exc

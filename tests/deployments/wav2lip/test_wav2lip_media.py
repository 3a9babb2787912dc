"""The shared PyAV I/O in deployments/media.py: streaming decode, audio decode, the H.264 + AAC writer."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from wav2lip_inputs import astronaut

from deployments.media import MediaError, VideoWriter, decode_audio, iter_frames, iter_sampled_frames, probe


def test_writer_takes_rgb_frames_and_stereo_audio_at_an_aac_unfriendly_rate(tmp_path: Path) -> None:
    rate = 37_000  # not an AAC rate: resampled to 48 kHz
    t = np.arange(int(rate * 0.8)) / rate
    stereo = np.stack([0.3 * np.sin(2 * np.pi * 440 * t), 0.3 * np.sin(2 * np.pi * 660 * t)])
    rgb = astronaut(65)[..., ::-1]  # odd size: cropped to 64x64
    with VideoWriter(tmp_path / "o.mp4", width=65, height=65, fps=20, audio=stereo, sample_rate=rate,
                     pixel_format="rgb24") as writer:  # fmt: skip
        for _ in range(16):
            writer.write(rgb)
    with av.open(str(tmp_path / "o.mp4")) as container:
        video, audio = container.streams.video[0], container.streams.audio[0]
        assert (video.codec_context.name, video.pix_fmt, video.codec_context.width) == ("h264", "yuv420p", 64)
        assert (audio.codec_context.name, audio.rate, audio.channels) == ("aac", 48_000, 2)
        assert float(audio.duration * audio.time_base) == pytest.approx(0.8, abs=0.01)
    first = next(iter_frames(tmp_path / "o.mp4", pixel_format="rgb24"))
    assert np.abs(first.astype(int) - rgb[:64, :64]).mean() < 6
    assert probe(tmp_path / "o.mp4").duration_s == pytest.approx(0.8, abs=0.01)


def test_frames_stream_and_shrink_to_max_side(tmp_path: Path) -> None:
    with VideoWriter(tmp_path / "v.mp4", width=128, height=64, fps=25) as writer:
        for i in range(5):
            writer.write(np.full((64, 128, 3), 40 * i, np.uint8))
    frames = iter_frames(tmp_path / "v.mp4", max_side=32)
    assert next(frames).shape == (16, 32, 3)
    assert sum(1 for _ in frames) == 4
    sampled = list(iter_sampled_frames(tmp_path / "v.mp4", every=2))
    assert [f is None for f in sampled] == [False, True, False, True, False]
    assert sampled[2][0, 0, 0] == pytest.approx(80, abs=3)  # the third frame, converted at full size


def test_mono_decode_averages_channels_at_16k(tmp_path: Path) -> None:
    t = np.arange(48_000) / 48_000
    left = 0.4 * np.sin(2 * np.pi * 300 * t)
    with VideoWriter(tmp_path / "a.mp4", width=16, height=16, fps=10, audio=np.stack([left, left]),
                     sample_rate=48_000) as writer:  # fmt: skip
        for _ in range(10):
            writer.write(np.zeros((16, 16, 3), np.uint8))
    mono = decode_audio(tmp_path / "a.mp4")
    assert mono.shape[0] == 1 and abs(mono.shape[1] - 16_000) < 1100  # AAC adds up to a frame of padding
    assert np.abs(mono).max() == pytest.approx(0.4, abs=0.03)  # averaged, not summed at -3 dB (0.57)
    native = decode_audio(tmp_path / "a.mp4", sample_rate=None, mono=False)
    assert native.shape[0] == 2 and abs(native.shape[1] - 48_000) < 3100  # the stream's own rate, both channels
    assert probe(tmp_path / "a.mp4").sample_rate == 48_000


def test_non_media_raises_media_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"not audio at all" * 20)
    with pytest.raises(MediaError, match="cannot read media"):
        decode_audio(junk)
    with pytest.raises(MediaError):
        list(iter_frames(junk))
